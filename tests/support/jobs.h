// For tests that drive a real coordinator over gRPC: a job spec, a random search over a tiny
// space (levels 1-2, widths 8-16, one block, 16-pixel tiles and patches, a 1 GiB budget) that
// trains in seconds on the data of TestData::kTiny (process.h), and JobClient, the JobService
// calls such tests make.
#ifndef PEAKNAS_TESTS_SUPPORT_JOBS_H_
#define PEAKNAS_TESTS_SUPPORT_JOBS_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peaknas/v1/peaknas.grpc.pb.h"
#include "tests/support/process.h"

namespace peaknas::testing {

inline v1::JobSpec TinyRandomJob(const std::string& name, int trials, int steps,
                                 const std::string& dataset, std::uint64_t seed) {
  v1::JobSpec spec;
  spec.set_name(name);
  spec.set_strategy(v1::STRATEGY_RANDOM);
  v1::Budget& budget = *spec.mutable_budget();
  budget.set_bytes(std::int64_t{1} << 30);
  budget.set_mode(v1::BUDGET_MODE_INFERENCE);
  budget.set_batch(1);
  budget.set_tile(16);
  budget.set_train_batch(2);
  budget.set_patch(16);
  v1::SearchSpace& space = *spec.mutable_space();
  space.mutable_levels()->set_min(1);
  space.mutable_levels()->set_max(2);
  space.mutable_width()->set_min(8);
  space.mutable_width()->set_max(16);
  space.mutable_enc_blocks()->set_min(1);
  space.mutable_enc_blocks()->set_max(1);
  space.mutable_dec_blocks()->set_min(1);
  space.mutable_dec_blocks()->set_max(1);
  spec.set_trials(trials);
  spec.set_parallelism(1);
  spec.mutable_fidelity()->set_steps(steps);
  spec.set_dataset(dataset);
  spec.set_seed(seed);
  return spec;
}

// TinyRandomJob grown to the sizes device peaks are measured at: U-Nets of 1-3 levels, widths
// 8-64, 1-2 blocks, at tile 256 and training batch 8 of 64x64 patches (MakePatchData's data),
// under an 8 GiB budget: process peaks of about 175 to 300 MiB on CPU, an overhead and a slope.
inline v1::JobSpec PatchJob(const std::string& name, int trials, int steps, std::uint64_t seed) {
  v1::JobSpec spec = TinyRandomJob(name, trials, steps, "synthetic", seed);
  v1::Budget& budget = *spec.mutable_budget();
  budget.set_bytes(std::int64_t{8} << 30);
  budget.set_tile(256);
  budget.set_train_batch(8);
  budget.set_patch(64);
  v1::SearchSpace& space = *spec.mutable_space();
  space.mutable_levels()->set_max(3);
  space.mutable_width()->set_max(64);
  space.mutable_enc_blocks()->set_max(2);
  space.mutable_dec_blocks()->set_max(2);
  return spec;
}

// A deadline of `seconds` for one call.
inline std::unique_ptr<grpc::ClientContext> CallContext(int seconds = 10) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

// JobService over a channel to `address`; each call has a 10-second deadline, and a failed call
// is a test failure unless said otherwise.
class JobClient {
 public:
  void Connect(const std::shared_ptr<grpc::Channel>& channel) {
    stub_ = v1::JobService::NewStub(channel);
  }
  v1::JobService::Stub* operator->() { return stub_.get(); }

  // The new job's id ("" when refused).
  std::string Submit(const v1::JobSpec& spec) {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    v1::SubmitJobResponse response;
    const grpc::Status status = stub_->SubmitJob(CallContext().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.job().id();
  }
  // With `may_fail` (a coordinator that is restarting), a failed call reads as an empty job.
  v1::Job GetJob(const std::string& id, bool may_fail = false) {
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::GetJobResponse response;
    const grpc::Status status = stub_->GetJob(CallContext().get(), request, &response);
    if (!may_fail) {
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    return status.ok() ? response.job() : v1::Job();
  }
  std::vector<v1::Trial> Trials(const std::string& id) {
    v1::ListTrialsRequest request;
    request.set_job_id(id);
    v1::ListTrialsResponse response;
    const grpc::Status status = stub_->ListTrials(CallContext().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.trials().begin(), response.trials().end()};
  }

 private:
  std::unique_ptr<v1::JobService::Stub> stub_;
};

// How CoordinatorTest starts its server.
struct ServerFlags {
  std::string listen = "127.0.0.1:0";
  std::string log_level = "warn";
  std::vector<std::string> extra;  // more flags
};

// A test that runs jobs between real processes: a directory "<tmp>/<prefix>-XXXXXX" with a
// dataset in data/, and a peaknas-server on 127.0.0.1 keeping its database, artifacts and log
// (server.log, appended to by every start) there. TearDown stops worker_ (SIGKILL) and the server
// (SIGTERM), and keeps the directory, printing worker.log and server.log, when the test failed.
class CoordinatorTest : public ::testing::Test {
 protected:
  // For SetUp; a fatal failure when the directory or the data cannot be made.
  void MakeDirWithData(const std::string& prefix, TestData data, const std::string& worker_binary) {
    dir_ = MakeTestDir(prefix);
    ASSERT_FALSE(dir_.empty()) << "mkdtemp failed for " << prefix;
    data_ = dir_ / "data";
    ASSERT_EQ(MakeData(worker_binary, data_, data), "");
  }

  // Starts the server (SIGTERM gives running calls 0.5 s); sets server_, address_ and jobs_. A
  // fatal failure when it does not start.
  void StartServer(const std::string& server_binary, const ServerFlags& flags = {}) {
    const std::string db = (dir_ / "db.sqlite").string(), artifacts = (dir_ / "art").string();
    std::vector<std::string> args = {
        server_binary, "--listen", flags.listen,  "--db",          db,
        "--artifacts", artifacts,  "--log-level", flags.log_level, "--shutdown-grace-seconds",
        "0.5"};
    args.insert(args.end(), flags.extra.begin(), flags.extra.end());
    const SpawnedServer server =
        SpawnServer(std::move(args), (dir_ / "server.log").string(), /*append_stderr=*/true);
    server_ = server.pid;
    ASSERT_GT(server_, 0);
    address_ = server.address;
    ASSERT_FALSE(address_.empty()) << "first line: \"" << server.first_line << "\"\n"
                                   << ReadFile(dir_ / "server.log");
    jobs_.Connect(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  void StartCoordinator(const std::string& prefix, TestData data, const std::string& server_binary,
                        const std::string& worker_binary) {
    ASSERT_NO_FATAL_FAILURE(MakeDirWithData(prefix, data, worker_binary));
    ASSERT_NO_FATAL_FAILURE(StartServer(server_binary));
  }

  // Waits up to `seconds` for the job to succeed or fail; whether it ended.
  bool WaitForEnd(const std::string& job, double seconds) {
    return PollUntil(seconds, [&] {
      const v1::JobState s = jobs_.GetJob(job).state();
      return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED;
    });
  }

  // Waits up to `seconds` for worker.log to hold `text`; whether it did.
  bool WaitForWorkerLog(const std::string& text, double seconds) {
    return PollUntil(seconds,
                     [&] { return ReadFile(dir_ / "worker.log").find(text) != std::string::npos; });
  }

  void TearDown() override {
    StopAndReap(worker_, SIGKILL);
    StopAndReap(server_, SIGTERM);
    RemoveOrReport(dir_, HasFailure(),
                   {{"worker", dir_ / "worker.log"}, {"server", dir_ / "server.log"}});
  }

  std::filesystem::path dir_, data_;  // data_: dir_/data
  pid_t server_ = -1, worker_ = -1;
  std::string address_;
  JobClient jobs_;
};

}  // namespace peaknas::testing

#endif  // PEAKNAS_TESTS_SUPPORT_JOBS_H_
