// Fault tests of the whole cluster: a real `peaknas-server` process with a
// temp SQLite file, real `peaknas-worker serve` processes on 127.0.0.1, a tiny generated
// dataset, and real signals. A worker SIGKILLed mid-trial loses its lease and the trial
// completes elsewhere; a coordinator SIGKILLed mid-job resumes from its database without losing
// or duplicating an acknowledged result; a late report with a stale fencing token is refused.
// Waits are polls of the coordinator with deadlines, never fixed sleeps.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "peaknas/v1/peaknas.grpc.pb.h"
#include "tests/support/jobs.h"
#include "tests/support/process.h"

namespace peaknas {
namespace {

namespace fs = std::filesystem;
namespace v1 = peaknas::v1;

using testing::PollUntil;
using testing::ReadFile;
using testing::Wait;
// The cluster's logs collect every start of a process (the coordinator is restarted).
pid_t Spawn(std::vector<std::string> args, int stdout_fd, const std::string& stderr_path) {
  return testing::Spawn(std::move(args), stdout_fd, stderr_path, /*append_stderr=*/true);
}

// One row of the coordinator's `trials` table, read straight from its SQLite file.
struct StoredTrial {
  std::string state;
  std::int64_t attempts = 0;
  std::int64_t fencing_token = 0;
  std::int64_t metrics_rows = 0;
};

class ClusterFault : public testing::CoordinatorTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        MakeDirWithData("peaknas-cluster", testing::TestData::kTiny, PEAKNAS_WORKER_BINARY));
  }

  void TearDown() override {
    for (pid_t& w : workers_) testing::StopAndReap(w, SIGKILL);
    testing::StopAndReap(server_, SIGKILL);
    std::vector<std::pair<std::string, fs::path>> logs = {{"server", dir_ / "server.log"}};
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      logs.emplace_back("worker " + std::to_string(i), WorkerLog(i));
    }
    testing::RemoveOrReport(dir_, HasFailure(), logs);
  }

  // Starts peaknas-server on `listen` with the test's database and `lease_seconds`; sets
  // address_ and the stubs. Logs of every start go (appended) to server.log.
  void StartServer(const std::string& listen, const std::string& lease_seconds) {
    ASSERT_NO_FATAL_FAILURE(CoordinatorTest::StartServer(
        PEAKNAS_SERVER_BINARY,
        {.listen = listen, .log_level = "info", .extra = {"--lease-seconds", lease_seconds}}));
    workers_stub_ = v1::WorkerService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  std::string Submit(int trials, int steps) {
    return jobs_.Submit(testing::TinyRandomJob("fault-test", trials, steps, "synthetic", 11));
  }
  // A failed call (e.g. the coordinator is restarting) reads as an unspecified state.
  v1::Job GetJob(const std::string& id) { return jobs_.GetJob(id, /*may_fail=*/true); }
  std::vector<v1::Trial> Trials(const std::string& id) { return jobs_.Trials(id); }
  static std::unique_ptr<grpc::ClientContext> Context(int seconds = 10) {
    return testing::CallContext(seconds);
  }

  void KillServer() {
    ASSERT_EQ(kill(server_, SIGKILL), 0);
    EXPECT_EQ(Wait(server_), 128 + SIGKILL);
    server_ = -1;
  }

  fs::path db() const { return dir_ / "db.sqlite"; }
  fs::path WorkerLog(std::size_t i) const {
    return dir_ / ("worker-" + std::to_string(i) + ".log");
  }

  // Starts a `peaknas-worker serve`; returns its index in workers_.
  std::size_t StartWorker() {
    const std::size_t i = workers_.size();
    const pid_t pid =
        Spawn({PEAKNAS_WORKER_BINARY, "serve", "--coordinator", address_, "--data",
               "synthetic=" + data_.string(), "--threads", "1", "--name",
               "fault-" + std::to_string(i), "--lease-wait", "5", "--no-latency-100mp"},
              -1, WorkerLog(i).string());
    EXPECT_GT(pid, 0);
    workers_.push_back(pid);
    return i;
  }

  v1::Trial FindTrial(const std::string& job, const std::string& trial) {
    for (v1::Trial& t : Trials(job)) {
      if (t.id() == trial) return t;
    }
    ADD_FAILURE() << "no trial " << trial << " in " << job;
    return {};
  }

  bool JobEnded(const std::string& id) {
    const v1::JobState s = GetJob(id).state();
    return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
           s == v1::JOB_STATE_CANCELLED;
  }

  // The row of trial "t-N" in the coordinator's SQLite file (read-only, beside the server).
  StoredTrial ReadStoredTrial(const std::string& trial_id) {
    StoredTrial row;
    sqlite3* handle = nullptr;
    if (sqlite3_open_v2(db().c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << db() << ": " << sqlite3_errmsg(handle);
      sqlite3_close(handle);
      return row;
    }
    sqlite3_busy_timeout(handle, 5000);
    const std::int64_t id = std::stoll(trial_id.substr(2));
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "SELECT state, attempts, fencing_token, "
        "(SELECT COUNT(*) FROM metrics WHERE trial_id = trials.id) FROM trials WHERE id = ?";
    EXPECT_EQ(sqlite3_prepare_v2(handle, sql, -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(handle);
    sqlite3_bind_int64(stmt, 1, id);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      row.state = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      row.attempts = sqlite3_column_int64(stmt, 1);
      row.fencing_token = sqlite3_column_int64(stmt, 2);
      row.metrics_rows = sqlite3_column_int64(stmt, 3);
    } else {
      ADD_FAILURE() << "no row for " << trial_id;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(handle);
    return row;
  }

  std::vector<pid_t> workers_;
  std::unique_ptr<v1::WorkerService::Stub> workers_stub_;
};

// Worker A is SIGKILLed while training; its lease (3 s, no more heartbeats) expires, the trial
// goes back to the queue, worker B leases it (attempt 2, a higher fencing token) and the job
// succeeds with the trial's metrics stored once.
TEST_F(ClusterFault, WorkerKilledMidTrialIsReleasedAndCompletesElsewhere) {
  StartServer("127.0.0.1:0", "3");
  const std::string job = Submit(/*trials=*/1, /*steps=*/150);
  ASSERT_FALSE(job.empty());
  const std::size_t a = StartWorker();
  std::string running;
  std::string worker_a;
  ASSERT_TRUE(PollUntil(60, [&] {
    for (const v1::Trial& t : Trials(job)) {
      if (t.state() == v1::TRIAL_STATE_RUNNING) {
        running = t.id();
        worker_a = t.worker_id();
      }
    }
    return !running.empty();
  })) << ReadFile(WorkerLog(a));
  // Into training, so that the kill lands mid-trial.
  ASSERT_TRUE(PollUntil(60, [&] {
    return ReadFile(WorkerLog(a)).find(": train ") != std::string::npos;
  })) << ReadFile(WorkerLog(a));
  ASSERT_EQ(kill(workers_[a], SIGKILL), 0);
  EXPECT_EQ(Wait(workers_[a]), 128 + SIGKILL);
  workers_[a] = -1;
  const StoredTrial before = ReadStoredTrial(running);
  EXPECT_EQ(before.state, "leased");
  EXPECT_EQ(before.attempts, 1);
  EXPECT_EQ(before.metrics_rows, 0);

  const std::size_t b = StartWorker();
  ASSERT_TRUE(PollUntil(120, [&] { return JobEnded(job); })) << ReadFile(WorkerLog(b));
  const v1::Job ended = GetJob(job);
  EXPECT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.error();
  EXPECT_EQ(ended.counts().succeeded(), 1);

  int seen = 0;
  for (const v1::Trial& t : Trials(job)) {
    if (t.id() != running) continue;
    ++seen;
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    EXPECT_EQ(t.attempts(), 2);
    EXPECT_FALSE(t.worker_id().empty());
    EXPECT_NE(t.worker_id(), worker_a);
    EXPECT_GT(t.metrics().psnr(), 0);
    EXPECT_EQ(t.metrics().steps(), 150);
  }
  EXPECT_EQ(seen, 1);
  const StoredTrial after = ReadStoredTrial(running);
  EXPECT_EQ(after.state, "succeeded");
  EXPECT_EQ(after.attempts, 2);
  EXPECT_GT(after.fencing_token, before.fencing_token);
  EXPECT_EQ(after.metrics_rows, 1);
  EXPECT_NE(ReadFile(dir_ / "server.log").find("lease expired, back in the queue"),
            std::string::npos);
}

// The coordinator is SIGKILLed once at least one result is acknowledged, and restarted on the
// same address and database; the worker (backing off meanwhile) carries on and the job
// finishes with every acknowledged result intact and no architecture twice.
TEST_F(ClusterFault, CoordinatorKilledMidJobResumes) {
  constexpr int kTrials = 4;
  StartServer("127.0.0.1:0", "5");
  const std::string address = address_;
  const std::string job = Submit(kTrials, /*steps=*/120);
  ASSERT_FALSE(job.empty());
  const std::size_t w = StartWorker();

  std::map<std::string, double> acknowledged;  // trial id -> PSNR, read before the kill
  std::map<std::string, std::string> acknowledged_hash;
  ASSERT_TRUE(PollUntil(120, [&] {
    for (const v1::Trial& t : Trials(job)) {
      if (t.state() == v1::TRIAL_STATE_SUCCEEDED) {
        acknowledged[t.id()] = t.metrics().psnr();
        acknowledged_hash[t.id()] = t.arch_hash();
      }
    }
    return !acknowledged.empty();
  })) << ReadFile(WorkerLog(w));
  ASSERT_FALSE(JobEnded(job)) << "the job ended before the kill; make trials longer";

  KillServer();
  StartServer(address, "5");
  ASSERT_EQ(address_, address);

  ASSERT_TRUE(PollUntil(150, [&] { return JobEnded(job); })) << ReadFile(WorkerLog(w));
  const v1::Job ended = GetJob(job);
  EXPECT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.error();
  EXPECT_EQ(ended.counts().succeeded(), kTrials);

  const std::vector<v1::Trial> trials = Trials(job);
  std::set<std::string> hashes;
  std::set<std::string> ids;
  int succeeded = 0;
  for (const v1::Trial& t : trials) {
    EXPECT_TRUE(hashes.insert(t.arch_hash()).second) << "architecture twice: " << t.arch_hash();
    EXPECT_TRUE(ids.insert(t.id()).second) << "trial listed twice: " << t.id();
    if (t.state() == v1::TRIAL_STATE_SUCCEEDED) {
      ++succeeded;
      EXPECT_EQ(ReadStoredTrial(t.id()).metrics_rows, 1) << t.id();
    }
    auto it = acknowledged.find(t.id());
    if (it == acknowledged.end()) continue;
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.id();
    EXPECT_EQ(t.metrics().psnr(), it->second) << t.id();
    EXPECT_EQ(t.arch_hash(), acknowledged_hash[t.id()]) << t.id();
  }
  for (const auto& [id, psnr] : acknowledged) {
    EXPECT_TRUE(ids.count(id)) << "acknowledged trial lost: " << id;
  }
  EXPECT_EQ(succeeded, kTrials);

  kill(workers_[w], SIGTERM);
  EXPECT_EQ(Wait(workers_[w]), 0) << ReadFile(WorkerLog(w));
  workers_[w] = -1;
}

// Over real gRPC against the process: fake worker A leases a trial and goes silent; its 2 s
// lease expires and fake worker B leases the same trial with a higher token. A's late report
// (and heartbeat) is refused with FAILED_PRECONDITION and changes nothing, before and after B's
// report is committed.
TEST_F(ClusterFault, StaleFencingTokenRefused) {
  StartServer("127.0.0.1:0", "2");
  const std::string job = Submit(/*trials=*/1, /*steps=*/5);
  ASSERT_FALSE(job.empty());

  auto register_worker = [&](const std::string& name) {
    v1::RegisterWorkerRequest request;
    request.set_name(name);
    request.set_device("cpu");
    request.add_datasets("synthetic");
    request.set_threads(1);
    v1::RegisterWorkerResponse response;
    const grpc::Status status = workers_stub_->RegisterWorker(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.worker_id();
  };
  auto lease = [&](const std::string& worker_id, double wait) {
    v1::LeaseTrialRequest request;
    request.set_worker_id(worker_id);
    request.set_wait_seconds(wait);
    v1::LeaseTrialResponse response;
    const grpc::Status status =
        workers_stub_->LeaseTrial(Context(static_cast<int>(wait) + 10).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  };
  auto report = [&](const v1::TrialAssignment& a, double psnr, v1::ReportResultResponse* out) {
    v1::ReportResultRequest request;
    request.set_lease_id(a.lease_id());
    request.set_fencing_token(a.fencing_token());
    v1::TrialMetrics& m = *request.mutable_metrics();
    m.set_device("cpu");
    m.set_device_profile(a.device_profile());
    m.set_steps(a.fidelity().steps());
    m.set_psnr(psnr);
    m.set_ssim(0.5);
    m.set_noisy_psnr(20);
    m.set_noisy_ssim(0.3);
    m.set_eval_blocks(2);
    m.set_measured_inference_peak_bytes(1000);
    m.set_measured_train_peak_bytes(2000);
    m.set_latency_ms_per_tile(1);
    return workers_stub_->ReportResult(Context().get(), request, out);
  };

  const std::string worker_a = register_worker("fake-a");
  const std::string worker_b = register_worker("fake-b");
  const v1::LeaseTrialResponse first = lease(worker_a, 5);
  ASSERT_TRUE(first.has_assignment());
  const v1::TrialAssignment stale = first.assignment();

  // A calls nothing; B's long poll returns once the expiry re-queues the trial.
  v1::TrialAssignment fresh;
  ASSERT_TRUE(PollUntil(20, [&] {
    const v1::LeaseTrialResponse r = lease(worker_b, 5);
    if (r.has_assignment()) fresh = r.assignment();
    return r.has_assignment();
  })) << ReadFile(dir_ / "server.log");
  EXPECT_EQ(fresh.trial_id(), stale.trial_id());
  EXPECT_GT(fresh.fencing_token(), stale.fencing_token());
  EXPECT_NE(fresh.lease_id(), stale.lease_id());

  const v1::Trial leased = FindTrial(job, stale.trial_id());
  EXPECT_EQ(leased.state(), v1::TRIAL_STATE_RUNNING);
  EXPECT_EQ(leased.attempts(), 2);
  EXPECT_EQ(leased.worker_id(), worker_b);
  const StoredTrial leased_row = ReadStoredTrial(stale.trial_id());

  // A's late result and heartbeat: refused, nothing changes.
  v1::ReportResultResponse refused;
  grpc::Status status = report(stale, 99, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  // The stale token with the current lease id is refused too.
  v1::TrialAssignment forged = fresh;
  forged.set_fencing_token(stale.fencing_token());
  status = report(forged, 99, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  {
    v1::HeartbeatRequest beat;
    beat.set_lease_id(stale.lease_id());
    beat.set_fencing_token(stale.fencing_token());
    v1::HeartbeatResponse response;
    status = workers_stub_->Heartbeat(Context().get(), beat, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  }
  const v1::Trial unchanged = FindTrial(job, stale.trial_id());
  EXPECT_EQ(unchanged.state(), v1::TRIAL_STATE_RUNNING);
  EXPECT_EQ(unchanged.attempts(), 2);
  EXPECT_EQ(unchanged.worker_id(), worker_b);
  EXPECT_FALSE(unchanged.has_metrics() && unchanged.metrics().psnr() != 0);
  const StoredTrial unchanged_row = ReadStoredTrial(stale.trial_id());
  EXPECT_EQ(unchanged_row.state, leased_row.state);
  EXPECT_EQ(unchanged_row.fencing_token, leased_row.fencing_token);
  EXPECT_EQ(unchanged_row.metrics_rows, 0);

  // B's report (before its own 2 s lease expires: a heartbeat renews it first) is committed.
  {
    v1::HeartbeatRequest beat;
    beat.set_lease_id(fresh.lease_id());
    beat.set_fencing_token(fresh.fencing_token());
    v1::HeartbeatResponse response;
    status = workers_stub_->Heartbeat(Context().get(), beat, &response);
    ASSERT_TRUE(status.ok()) << "B's lease expired before its heartbeat: "
                             << status.error_message();
  }
  v1::ReportResultResponse accepted;
  status = report(fresh, 31, &accepted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(accepted.accepted());

  // A's report after the commit: still refused; the stored result stays B's.
  status = report(stale, 99, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  const v1::Trial done = FindTrial(job, stale.trial_id());
  EXPECT_EQ(done.state(), v1::TRIAL_STATE_SUCCEEDED);
  EXPECT_EQ(done.metrics().psnr(), 31);
  EXPECT_EQ(done.attempts(), 2);
  EXPECT_EQ(ReadStoredTrial(stale.trial_id()).metrics_rows, 1);
  EXPECT_EQ(GetJob(job).state(), v1::JOB_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace peaknas
