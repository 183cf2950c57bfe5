// `peaknas-worker serve` end to end: a real `peaknas-server` process on 127.0.0.1:0 with a temp
// SQLite file, a tiny generated dataset (`peaknas-worker make-data`), jobs submitted through
// the JobService stub, and one worker process leasing, training and reporting over loopback
// gRPC. Waits are polls of the coordinator with deadlines, never fixed sleeps.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "peaknas/v1/peaknas.grpc.pb.h"
#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "tests/support/jobs.h"
#include "tests/support/process.h"

namespace peaknas::worker {
namespace {

namespace fs = std::filesystem;
namespace v1 = peaknas::v1;
using Clock = std::chrono::steady_clock;

using testing::PollUntil;
using testing::ReadFile;
using testing::Spawn;
using testing::Wait;

class WorkerServe : public testing::CoordinatorTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        MakeDirWithData("peaknas-serve", testing::TestData::kTiny, PEAKNAS_WORKER_BINARY));
    ASSERT_NO_FATAL_FAILURE(StartServer(PEAKNAS_SERVER_BINARY));
  }

  // A random search over a tiny space: levels 1-2, widths 8-16, one block, 16-pixel shapes.
  std::string Submit(int trials, int steps, const std::string& dataset = "synthetic") {
    return jobs_.Submit(testing::TinyRandomJob("serve-test", trials, steps, dataset, 7));
  }
  v1::Job GetJob(const std::string& id) { return jobs_.GetJob(id); }
  std::vector<v1::Trial> Trials(const std::string& id) { return jobs_.Trials(id); }
  static std::unique_ptr<grpc::ClientContext> Context() { return testing::CallContext(); }

  bool JobEnded(const std::string& id) {
    const v1::JobState s = GetJob(id).state();
    return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
           s == v1::JOB_STATE_CANCELLED;
  }

  void StartWorker(const std::string& data_flag) {
    worker_ = Spawn({PEAKNAS_WORKER_BINARY, "serve", "--coordinator", address_, "--data", data_flag,
                     "--threads", "1", "--name", "serve-test", "--lease-wait", "5",
                     "--no-latency-100mp"},  // timed in tests/cli/run_cli_test.sh
                    -1, (dir_ / "worker.log").string());
    ASSERT_GT(worker_, 0);
  }

  // GetArtifact into `to`; false on any error. `total` gets the announced size.
  bool Download(const std::string& job, const std::string& trial, const fs::path& to,
                std::int64_t* total) {
    v1::GetArtifactRequest request;
    request.set_job_id(job);
    request.set_trial_id(trial);
    auto context = Context();
    auto reader = jobs_->GetArtifact(context.get(), request);
    std::ofstream out(to, std::ios::binary);
    v1::ArtifactChunk chunk;
    bool first = true;
    while (reader->Read(&chunk)) {
      if (first) *total = chunk.total_size();
      first = false;
      out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    }
    out.close();
    const grpc::Status status = reader->Finish();
    if (!status.ok())
      std::cerr << "GetArtifact " << trial << ": " << status.error_message() << "\n";
    return status.ok() && !first && static_cast<bool>(out);
  }

  // The worker's trial process (`peaknas-worker once`, its child), or -1.
  pid_t TrialProcess() const {
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = ReadFile(entry.path() / "stat");
      // "pid (comm) state ppid ...": the fields after the last ')'.
      const auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 1));
      std::string state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid != worker_) continue;
      if (ReadFile(entry.path() / "cmdline").find(std::string("once") + '\0') !=
          std::string::npos) {
        return static_cast<pid_t>(std::stol(name));
      }
    }
    return -1;
  }

  // SIGTERM, then the exit status.
  int StopWorker() {
    kill(worker_, SIGTERM);
    const int status = Wait(worker_);
    worker_ = -1;
    return status;
  }
};

TEST_F(WorkerServe, RunsAJobToTheEnd) {
  const std::string job = Submit(/*trials=*/3, /*steps=*/5);
  ASSERT_FALSE(job.empty());
  StartWorker("synthetic=" + data_.string());
  ASSERT_TRUE(PollUntil(150, [&] { return JobEnded(job); })) << "job did not end; worker log:\n"
                                                             << ReadFile(dir_ / "worker.log");
  const v1::Job ended = GetJob(job);
  EXPECT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.error();
  EXPECT_EQ(ended.counts().succeeded(), 3);
  int succeeded = 0;
  std::vector<std::string> models;
  for (const v1::Trial& t : Trials(job)) {
    if (t.state() != v1::TRIAL_STATE_SUCCEEDED) continue;
    ++succeeded;
    const v1::TrialMetrics& m = t.metrics();
    EXPECT_GT(m.psnr(), 0) << t.id();
    EXPECT_GT(m.noisy_psnr(), 0) << t.id();
    EXPECT_EQ(m.steps(), 5) << t.id();
    EXPECT_GT(m.measured_inference_peak_bytes(), 0) << t.id();
    EXPECT_LE(m.measured_inference_peak_bytes(), m.predicted_inference_peak_bytes()) << t.id();
    EXPECT_GT(m.measured_train_peak_bytes(), 0) << t.id();
    EXPECT_LE(m.measured_train_peak_bytes(), m.predicted_train_peak_bytes()) << t.id();
    EXPECT_GT(m.latency_ms_per_tile(), 0) << t.id();
    EXPECT_EQ(t.worker_id().empty(), false);
    // The model was uploaded before the result: it downloads whole.
    EXPECT_TRUE(t.has_artifact()) << t.id();
    const fs::path model = dir_ / (t.id() + ".pt");
    std::int64_t total = -1;
    EXPECT_TRUE(Download(job, t.id(), model, &total)) << t.id();
    EXPECT_GT(total, 0) << t.id();
    EXPECT_EQ(static_cast<std::int64_t>(fs::file_size(model)), total) << t.id();
    models.push_back(model.string());
  }
  EXPECT_EQ(succeeded, 3);
  // Each one is a TorchScript module that Python's torch loads.
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0) {
    std::string command =
        "/usr/bin/python3 -c 'import sys, torch\n"
        "for p in sys.argv[1:]: torch.jit.load(p)'";
    for (const auto& m : models) command += " '" + m + "'";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
  } else {
    std::cerr << "python3 has no torch: TorchScript loading not checked\n";
  }
  // Idle in a long poll: SIGTERM stops it at once, exit 0.
  const auto start = Clock::now();
  EXPECT_EQ(StopWorker(), 0);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
}

TEST_F(WorkerServe, RunsATrialAtTheThreadsItsPeakFitsTheBudgetAt) {
  // One architecture (one level of 48 channels), trained at batch 8 on 64x64 patches, under a
  // budget 180 000 bytes over its one-thread training peak: oneDNN's per-thread buffers take
  // 174 592 bytes more at three threads and 257 728 at four, so a 4-thread worker runs the
  // trial at three, and the peak it measures is within the budget.
  const fs::path patches = dir_ / "patches";
  ASSERT_EQ(testing::MakeData(PEAKNAS_WORKER_BINARY, patches, testing::TestData::kPatches), "");
  const std::vector<int> width{48}, enc{1}, dec;
  auto arch = search::MakeArchitecture(
      width, enc, dec, search::SkipKind::kConcat, search::UpsampleKind::kTransposed,
      search::DownsampleKind::kStrided, search::ActivationKind::kRelu);
  ASSERT_TRUE(arch.ok());
  const std::int64_t budget =
      search::TrainPeakBytes(*arch, {8, 64}, search::DType::kFp32, search::DefaultDeviceProfile()) +
      180000;
  v1::JobSpec spec = testing::TinyRandomJob("threads", 1, 2, "synthetic", 7);
  spec.mutable_budget()->set_mode(v1::BUDGET_MODE_TRAINING);
  spec.mutable_budget()->set_bytes(budget);
  spec.mutable_budget()->set_train_batch(8);
  spec.mutable_budget()->set_patch(64);
  v1::SearchSpace& space = *spec.mutable_space();
  space.mutable_levels()->set_max(1);
  space.mutable_width()->set_min(48);
  space.mutable_width()->set_max(48);
  space.add_skips(v1::SKIP_KIND_CONCAT);
  space.add_upsamples(v1::UPSAMPLE_KIND_TRANSPOSED);
  space.add_downsamples(v1::DOWNSAMPLE_KIND_STRIDED);
  space.add_activations(v1::ACTIVATION_KIND_RELU);
  const std::string job = jobs_.Submit(spec);
  ASSERT_FALSE(job.empty());
  worker_ = Spawn({PEAKNAS_WORKER_BINARY, "serve", "--coordinator", address_, "--data",
                   "synthetic=" + patches.string(), "--threads", "4", "--name", "four-threads",
                   "--lease-wait", "5", "--no-latency-100mp"},
                  -1, (dir_ / "worker.log").string());
  ASSERT_GT(worker_, 0);
  ASSERT_TRUE(PollUntil(150, [&] { return JobEnded(job); })) << "job did not end; worker log:\n"
                                                             << ReadFile(dir_ / "worker.log");
  const std::vector<v1::Trial> trials = Trials(job);
  ASSERT_EQ(trials.size(), 1u);
  const v1::TrialMetrics& m = trials[0].metrics();
  ASSERT_EQ(trials[0].state(), v1::TRIAL_STATE_SUCCEEDED) << ReadFile(dir_ / "worker.log");
  EXPECT_EQ(m.intra_op_threads(), 3);
  EXPECT_GT(m.measured_train_peak_bytes(), 0);
  EXPECT_LE(m.measured_train_peak_bytes(), m.predicted_train_peak_bytes());
  EXPECT_LE(m.predicted_train_peak_bytes(), budget);
  EXPECT_NE(ReadFile(dir_ / "worker.log").find("runs at 3 threads"), std::string::npos);
}

TEST_F(WorkerServe, FinishesItsTrialOnSigterm) {
  // Long enough (many steps) that the signal lands while the first trial runs.
  const std::string job = Submit(/*trials=*/2, /*steps=*/2000);
  StartWorker("synthetic=" + data_.string());
  std::string running;
  ASSERT_TRUE(PollUntil(60, [&] {
    for (const v1::Trial& t : Trials(job)) {
      if (t.state() == v1::TRIAL_STATE_RUNNING) running = t.id();
    }
    return !running.empty();
  })) << ReadFile(dir_ / "worker.log");
  EXPECT_EQ(StopWorker(), 0) << ReadFile(dir_ / "worker.log");
  int succeeded = 0, pending = 0;
  for (const v1::Trial& t : Trials(job)) {
    if (t.id() == running) {
      EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << ReadFile(dir_ / "worker.log");
      EXPECT_GT(t.metrics().psnr(), 0);
    }
    succeeded += t.state() == v1::TRIAL_STATE_SUCCEEDED;
    pending += t.state() == v1::TRIAL_STATE_PENDING;
  }
  // The trial leased when the signal came was reported; nothing was leased after it.
  EXPECT_EQ(succeeded, 1);
  EXPECT_EQ(pending, 1);
}

// A worker runs only jobs on datasets it has: the older sidd job stays untouched (never
// leased) while the synthetic one, submitted after it, runs to the end.
TEST_F(WorkerServe, SkipsJobsOnDatasetsItLacks) {
  const std::string sidd = Submit(/*trials=*/1, /*steps=*/5, "sidd");
  const std::string synthetic = Submit(/*trials=*/1, /*steps=*/5, "synthetic");
  StartWorker("synthetic=" + data_.string());
  ASSERT_TRUE(PollUntil(120, [&] { return JobEnded(synthetic); })) << ReadFile(dir_ / "worker.log");
  EXPECT_EQ(GetJob(synthetic).state(), v1::JOB_STATE_SUCCEEDED);
  const std::vector<v1::Trial> waiting = Trials(sidd);
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0].state(), v1::TRIAL_STATE_PENDING);
  EXPECT_EQ(waiting[0].attempts(), 0);
  EXPECT_EQ(StopWorker(), 0);
}

// A dataset directory without SIDD data: the trial fails with a reason that names it.
TEST_F(WorkerServe, ReportsABrokenDataset) {
  const fs::path empty = dir_ / "empty-sidd";
  fs::create_directories(empty);
  const std::string job = Submit(/*trials=*/1, /*steps=*/5, "sidd");
  StartWorker("sidd=" + empty.string());
  ASSERT_TRUE(PollUntil(120, [&] {
    for (const v1::Trial& t : Trials(job)) {
      if (t.state() == v1::TRIAL_STATE_FAILED) return true;
    }
    return JobEnded(job);
  })) << ReadFile(dir_ / "worker.log");
  const std::vector<v1::Trial> trials = Trials(job);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state(), v1::TRIAL_STATE_FAILED);
  EXPECT_NE(trials[0].reason().find("empty-sidd"), std::string::npos) << trials[0].reason();
  EXPECT_EQ(StopWorker(), 0);
}

// CancelJob while a (long) trial runs: the next heartbeat gets CANCEL, the trial stops
// without a report, and the worker goes back to leasing.
TEST_F(WorkerServe, StopsACancelledTrial) {
  const std::string job = Submit(/*trials=*/1, /*steps=*/1000000);
  StartWorker("synthetic=" + data_.string());
  ASSERT_TRUE(PollUntil(60, [&] { return GetJob(job).counts().running() == 1; }))
      << ReadFile(dir_ / "worker.log");
  // Into training, so that the stop comes from the progress callback.
  ASSERT_TRUE(WaitForWorkerLog(": train ", 60));
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job);
  v1::CancelJobResponse cancelled;
  ASSERT_TRUE(jobs_->CancelJob(Context().get(), cancel, &cancelled).ok());
  ASSERT_TRUE(WaitForWorkerLog("stopped; nothing reported", 30)) << ReadFile(dir_ / "worker.log");
  EXPECT_EQ(StopWorker(), 0);
}

// A second SIGTERM does not wait for the trial: exit status 128 + 15.
TEST_F(WorkerServe, SecondSignalExitsAtOnce) {
  const std::string job = Submit(/*trials=*/1, /*steps=*/1000000);
  StartWorker("synthetic=" + data_.string());
  ASSERT_TRUE(WaitForWorkerLog(": train ", 60)) << ReadFile(dir_ / "worker.log");
  kill(worker_, SIGTERM);
  ASSERT_TRUE(WaitForWorkerLog("signal 15", 30));
  const pid_t trial = TrialProcess();
  ASSERT_GT(trial, 0) << "no trial process under the worker";
  kill(worker_, SIGTERM);
  EXPECT_EQ(Wait(worker_), 128 + SIGTERM);
  worker_ = -1;
  // The trial's process does not outlive the worker.
  EXPECT_TRUE(PollUntil(30, [&] { return kill(trial, 0) != 0; }))
      << "trial process " << trial << " still runs";
}

// One trial, one process: the trial's process killed (as the kernel's out-of-memory killer
// would) fails that trial alone, as worth another try; the worker goes on, and runs the trial
// again to the end.
TEST_F(WorkerServe, ATrialProcessKilledIsRetriedAndTheWorkerGoesOn) {
  const std::string job = Submit(/*trials=*/1, /*steps=*/3000);
  StartWorker("synthetic=" + data_.string());
  ASSERT_TRUE(WaitForWorkerLog(": train ", 60)) << ReadFile(dir_ / "worker.log");
  const pid_t trial = TrialProcess();
  ASSERT_GT(trial, 0) << "no trial process under the worker";
  ASSERT_EQ(kill(trial, SIGKILL), 0);
  ASSERT_TRUE(PollUntil(240, [&] { return JobEnded(job); })) << ReadFile(dir_ / "worker.log");
  const std::string log = ReadFile(dir_ / "worker.log");
  EXPECT_NE(log.find("out-of-memory killer"), std::string::npos) << log;
  EXPECT_NE(log.find(".log"), std::string::npos) << log;  // the killed trial's log is kept
  EXPECT_EQ(GetJob(job).state(), v1::JOB_STATE_SUCCEEDED) << log;
  const std::vector<v1::Trial> trials = Trials(job);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state(), v1::TRIAL_STATE_SUCCEEDED);
  EXPECT_EQ(trials[0].attempts(), 2);
  // The process peak it reports is its own process's.
  EXPECT_GT(trials[0].metrics().process_train_peak_bytes(), 0);
  EXPECT_EQ(StopWorker(), 0) << log;
}

// The coordinator is down when the worker starts: the worker backs off (logging) and, once
// the coordinator is back on the same address and database, registers and runs the job.
TEST_F(WorkerServe, WaitsForTheCoordinator) {
  const std::string job = Submit(/*trials=*/1, /*steps=*/5);
  ASSERT_FALSE(job.empty());
  const std::string address = address_;
  kill(server_, SIGTERM);
  ASSERT_EQ(Wait(server_), 0);
  server_ = -1;
  StartWorker("synthetic=" + data_.string());
  ASSERT_TRUE(WaitForWorkerLog("cannot register", 30)) << ReadFile(dir_ / "worker.log");
  StartServer(PEAKNAS_SERVER_BINARY, {.listen = address});
  ASSERT_TRUE(PollUntil(60, [&] { return JobEnded(job); })) << ReadFile(dir_ / "worker.log");
  EXPECT_EQ(GetJob(job).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(StopWorker(), 0);
}

}  // namespace
}  // namespace peaknas::worker
