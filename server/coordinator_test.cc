// The coordinator core on real parts: a real SQLite file in a temporary directory, the real
// strategies and cost model, and an injected clock.
#include "server/coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>

namespace peaknas::server {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "peaknas-coordinator-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Inference budget of 32 MiB at 256x256 tiles over widths [8, 512]: many random candidates are
// far over budget, the narrow ones fit.
v1::JobSpec RandomSpec(int trials = 4, int parallelism = 2) {
  v1::JobSpec spec;
  spec.set_name("test");
  spec.set_strategy(v1::STRATEGY_RANDOM);
  spec.mutable_budget()->set_bytes(std::int64_t{32} << 20);
  spec.mutable_budget()->set_mode(v1::BUDGET_MODE_INFERENCE);
  spec.mutable_space()->mutable_levels()->set_min(1);
  spec.mutable_space()->mutable_levels()->set_max(4);
  spec.mutable_space()->mutable_width()->set_min(8);
  spec.mutable_space()->mutable_width()->set_max(512);
  spec.set_trials(trials);
  spec.set_parallelism(parallelism);
  spec.mutable_fidelity()->set_steps(10);
  spec.set_dataset("synthetic");
  spec.set_seed(7);
  return spec;
}

v1::ReportResultRequest Result(const v1::TrialAssignment& a, double psnr) {
  v1::ReportResultRequest r;
  r.set_lease_id(a.lease_id());
  r.set_fencing_token(a.fencing_token());
  r.mutable_metrics()->set_psnr(psnr);
  r.mutable_metrics()->set_noisy_psnr(20);
  r.mutable_metrics()->set_device("cpu");
  return r;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    coordinator_.reset();
    CoordinatorOptions options;
    options.lease_duration = std::chrono::milliseconds(10'000);
    options.max_attempts = 3;
    options.clock = [this] { return now_.load(); };
    auto opened = Coordinator::Open((dir_.path() / "peaknas.db").string(),
                                    (dir_.path() / "artifacts").string(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    coordinator_ = std::move(opened).value();
  }

  std::string Worker(const std::string& name = "w") {
    v1::RegisterWorkerRequest request;
    request.set_name(name);
    request.set_device("cpu");
    auto id = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }

  v1::TrialAssignment Lease(const std::string& worker) {
    auto a = coordinator_->LeaseTrial(worker);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_TRUE(a.ok() && a->has_value()) << "nothing to lease";
    return a.ok() && a->has_value() ? **a : v1::TrialAssignment();
  }

  TempDir dir_;
  std::atomic<std::int64_t> now_{1'700'000'000'000};
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, RefusesBadSpecsNamingTheField) {
  struct Case {
    const char* what;
    void (*mutate)(v1::JobSpec&);
    const char* field;
  };
  const Case cases[] = {
      {"unknown strategy", [](v1::JobSpec& s) { s.set_strategy(v1::Strategy(42)); }, "spec.strategy"},
      {"budget 0", [](v1::JobSpec& s) { s.mutable_budget()->set_bytes(0); }, "spec.budget.bytes"},
      {"inverted range",
       [](v1::JobSpec& s) {
         s.mutable_space()->mutable_levels()->set_min(4);
         s.mutable_space()->mutable_levels()->set_max(2);
       },
       "spec.space.levels"},
      {"parallelism 0", [](v1::JobSpec& s) { s.set_parallelism(0); }, "spec.parallelism"},
      {"impossible budget", [](v1::JobSpec& s) { s.mutable_budget()->set_bytes(1024); },
       "spec.budget.bytes"},
  };
  for (const Case& c : cases) {
    v1::JobSpec spec = RandomSpec();
    c.mutate(spec);
    auto job = coordinator_->SubmitJob(spec);
    ASSERT_FALSE(job.ok()) << c.what;
    EXPECT_EQ(job.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(job.status().message().rfind(c.field, 0), 0u)
        << c.what << ": " << job.status().message();
  }
  auto jobs = coordinator_->ListJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
}

TEST_F(CoordinatorTest, UnknownIdsAreNotFound) {
  EXPECT_EQ(coordinator_->GetJob("j-99").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->GetJob("nonsense").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->GetFrontier("j-99").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->ListTrials("j-99").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->CancelJob("j-99").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->LeaseTrial("w-99").status().code(), StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, SubmitQueuesAdmittedAndRecordsRejectedTrials) {
  auto job = coordinator_->SubmitJob(RandomSpec(4, 2));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(job->counts().pending(), 2);
  EXPECT_GT(job->counts().rejected(), 0) << "the budget should refuse some random candidates";
  EXPECT_EQ(job->spec().fidelity().learning_rate(), 1e-3);  // defaults filled in
  EXPECT_EQ(job->spec().budget().tile(), 256);

  auto rejected = coordinator_->ListTrials(job->id(), {v1::TRIAL_STATE_REJECTED});
  ASSERT_TRUE(rejected.ok());
  ASSERT_FALSE(rejected->empty());
  std::set<std::string> rejected_ids;
  for (const auto& t : *rejected) {
    EXPECT_FALSE(t.reason().empty());
    EXPECT_GT(t.predicted_inference_peak_bytes(), std::int64_t{32} << 20) << t.reason();
    rejected_ids.insert(t.id());
  }
  // Lease everything there is, reporting as we go: no rejected trial is ever leased and every
  // leased one fits the budget.
  const std::string worker = Worker();
  for (int i = 0; i < 4; ++i) {
    auto a = Lease(worker);
    EXPECT_FALSE(rejected_ids.contains(a.trial_id()));
    EXPECT_EQ(a.dataset(), "synthetic");
    EXPECT_EQ(a.fidelity().steps(), 10);
    EXPECT_EQ(a.tile(), 256);
    EXPECT_GT(a.fencing_token(), 0);
    ASSERT_TRUE(coordinator_->ReportResult(Result(a, 25 + i)).ok());
  }
  auto none = coordinator_->LeaseTrial(worker);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto done = coordinator_->GetJob(job->id());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done->counts().succeeded(), 4);
  EXPECT_EQ(done->counts().pending() + done->counts().running(), 0);
}

TEST_F(CoordinatorTest, ReportUpdatesFrontierWithinBudget) {
  auto job = coordinator_->SubmitJob(RandomSpec(6, 3));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string worker = Worker();
  auto empty = coordinator_->GetFrontier(job->id());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->version(), 0);
  EXPECT_EQ(empty->points_size(), 0);

  std::int64_t version = 0;
  for (int i = 0; i < 6; ++i) {
    auto a = Lease(worker);
    auto accepted = coordinator_->ReportResult(Result(a, 25 + i));
    ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
    EXPECT_TRUE(*accepted);
    // A duplicate of the same report is acknowledged without effect.
    auto again = coordinator_->ReportResult(Result(a, 99));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_FALSE(*again);

    auto frontier = coordinator_->GetFrontier(job->id());
    ASSERT_TRUE(frontier.ok());
    EXPECT_GE(frontier->version(), version);
    if (i == 0) {
      EXPECT_EQ(frontier->version(), 1);
    }
    version = frontier->version();
    ASSERT_GT(frontier->points_size(), 0);
    EXPECT_GT(frontier->hypervolume(), 0);
    for (int p = 0; p < frontier->points_size(); ++p) {
      const auto& point = frontier->points(p);
      EXPECT_LE(point.peak_bytes(), std::int64_t{32} << 20);
      EXPECT_GT(point.latency_100mp_s(), 0);
      if (p > 0) {
        EXPECT_LE(frontier->points(p - 1).peak_bytes(), point.peak_bytes());
      }
    }
  }
  // Increasing PSNR: the last trial has the best PSNR, so it is on the frontier.
  auto job_now = coordinator_->GetJob(job->id());
  ASSERT_TRUE(job_now.ok());
  EXPECT_EQ(job_now->frontier_version(), version);
  EXPECT_EQ(job_now->state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(CoordinatorTest, StaleTokenAfterExpiryIsRefusedAndChangesNothing) {
  auto job = coordinator_->SubmitJob(RandomSpec(1, 1));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string slow = Worker("slow");
  const std::string fast = Worker("fast");
  auto first = Lease(slow);

  // Heartbeat renews while the lease is live.
  v1::HeartbeatRequest beat;
  beat.set_lease_id(first.lease_id());
  beat.set_fencing_token(first.fencing_token());
  auto renewed = coordinator_->Heartbeat(beat);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(renewed->action(), v1::HEARTBEAT_ACTION_KEEP_GOING);

  now_ += 60'000;  // the slow worker is presumed dead
  auto released = coordinator_->ExpireLeases();
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(*released, 1);
  auto second = Lease(fast);
  EXPECT_EQ(second.trial_id(), first.trial_id());
  EXPECT_GT(second.fencing_token(), first.fencing_token());

  auto late = coordinator_->ReportResult(Result(first, 40));
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(coordinator_->Heartbeat(beat).status().code(), StatusCode::kFailedPrecondition);
  auto frontier = coordinator_->GetFrontier(job->id());
  ASSERT_TRUE(frontier.ok());
  EXPECT_EQ(frontier->version(), 0);
  auto state = coordinator_->GetJob(job->id());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->counts().running(), 1);
  EXPECT_EQ(state->counts().succeeded(), 0);

  ASSERT_TRUE(coordinator_->ReportResult(Result(second, 30)).ok());
  auto trials = coordinator_->ListTrials(job->id(), {v1::TRIAL_STATE_SUCCEEDED});
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].metrics().psnr(), 30);
  EXPECT_EQ((*trials)[0].attempts(), 2);
}

TEST_F(CoordinatorTest, ExpiredTooOftenFails) {
  auto job = coordinator_->SubmitJob(RandomSpec(1, 1));
  ASSERT_TRUE(job.ok());
  const std::string worker = Worker();
  for (int i = 0; i < 3; ++i) {
    Lease(worker);
    now_ += 60'000;
    ASSERT_TRUE(coordinator_->ExpireLeases().ok());
  }
  // The third expiry fails the trial; a failed trial counts toward `trials`, so the job ends.
  auto state = coordinator_->GetJob(job->id());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->counts().failed(), 1);
  EXPECT_EQ(state->state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(CoordinatorTest, CancelStopsLeasingAndHeartbeatSaysCancel) {
  auto job = coordinator_->SubmitJob(RandomSpec(4, 2));
  ASSERT_TRUE(job.ok());
  const std::string worker = Worker();
  auto a = Lease(worker);
  auto cancelled = coordinator_->CancelJob(job->id());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(coordinator_->CancelJob(job->id()).ok());  // idempotent
  v1::HeartbeatRequest beat;
  beat.set_lease_id(a.lease_id());
  beat.set_fencing_token(a.fencing_token());
  auto answer = coordinator_->Heartbeat(beat);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->action(), v1::HEARTBEAT_ACTION_CANCEL);
  auto none = coordinator_->LeaseTrial(worker);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(CoordinatorTest, LongPollWakesWhenATrialIsQueued) {
  const std::string worker = Worker();
  std::thread submitter([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(coordinator_->SubmitJob(RandomSpec(1, 1)).ok());
  });
  const auto start = std::chrono::steady_clock::now();
  auto a = coordinator_->LeaseTrial(worker, std::chrono::seconds(10));
  const auto waited = std::chrono::steady_clock::now() - start;
  submitter.join();
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->has_value());
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_F(CoordinatorTest, RestartResumesTheJobWithoutDuplicates) {
  auto job = coordinator_->SubmitJob(RandomSpec(5, 2));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  std::string worker = Worker();
  auto a = Lease(worker);
  ASSERT_TRUE(coordinator_->ReportResult(Result(a, 30)).ok());
  auto in_flight = Lease(worker);  // leased when the coordinator "crashes"

  Reopen();
  // The in-flight lease survives the restart: its worker can still report.
  ASSERT_TRUE(coordinator_->ReportResult(Result(in_flight, 31)).ok());
  int reported = 2;
  while (true) {
    auto next = coordinator_->LeaseTrial(worker);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (!next->has_value()) break;
    ASSERT_TRUE(coordinator_->ReportResult(Result(**next, 32 + reported)).ok());
    ++reported;
  }
  EXPECT_EQ(reported, 5);
  auto done = coordinator_->GetJob(job->id());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done->counts().succeeded(), 5);
  auto trials = coordinator_->ListTrials(job->id());
  ASSERT_TRUE(trials.ok());
  std::set<std::string> hashes;
  for (const auto& t : *trials) {
    EXPECT_TRUE(hashes.insert(t.arch_hash()).second) << "duplicate architecture " << t.arch_hash();
  }
  auto frontier = coordinator_->GetFrontier(job->id());
  ASSERT_TRUE(frontier.ok());
  EXPECT_GT(frontier->version(), 0);
}

TEST_F(CoordinatorTest, ArtifactUploadChecksTheLeaseAtCommitAndLeavesNoFileWhenRefused) {
  ASSERT_TRUE(coordinator_->SubmitJob(RandomSpec(1, 1)).ok());
  const v1::TrialAssignment a = Lease(Worker());
  EXPECT_TRUE(a.export_model());
  // A stale token is refused before anything is written.
  auto stale = coordinator_->BeginArtifactUpload(a.lease_id(), a.fencing_token() + 1);
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);

  auto upload = coordinator_->BeginArtifactUpload(a.lease_id(), a.fencing_token());
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  { std::ofstream(upload->partial_path, std::ios::binary) << "model"; }
  const std::string sha = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
  // The lease expires while the bytes travel: the commit is refused, the file removed.
  now_ += 60'000;
  auto late = coordinator_->CommitArtifactUpload(*upload, 5, sha, sha);
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(upload->partial_path));
  EXPECT_FALSE(std::filesystem::exists(upload->final_path));
  EXPECT_EQ(coordinator_->GetArtifact(a.job_id(), a.trial_id()).status().code(),
            StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, ArtifactCommitRecordsTheFileForGetArtifact) {
  ASSERT_TRUE(coordinator_->SubmitJob(RandomSpec(1, 1)).ok());
  const v1::TrialAssignment a = Lease(Worker());
  auto upload = coordinator_->BeginArtifactUpload(a.lease_id(), a.fencing_token());
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  { std::ofstream(upload->partial_path, std::ios::binary) << "model"; }
  const std::string sha = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
  // A size that does not match the file: DATA_LOSS, no file.
  EXPECT_EQ(coordinator_->CommitArtifactUpload(*upload, 6, sha, sha).status().code(),
            StatusCode::kDataLoss);
  EXPECT_FALSE(std::filesystem::exists(upload->partial_path));
  { std::ofstream(upload->partial_path, std::ios::binary) << "model"; }
  auto stored = coordinator_->CommitArtifactUpload(*upload, 5, sha, sha);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(upload->partial_path));
  EXPECT_TRUE(std::filesystem::exists(upload->final_path));
  auto file = coordinator_->GetArtifact(a.job_id(), a.trial_id());
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->path, upload->final_path);
  EXPECT_EQ(file->size_bytes, 5);
  EXPECT_EQ(file->sha256, sha);
  EXPECT_EQ(file->filename, a.trial_id() + ".pt");
  // Another job's id with this trial: NOT_FOUND.
  EXPECT_EQ(coordinator_->GetArtifact("j-999", a.trial_id()).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace peaknas::server
