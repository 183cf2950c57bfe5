// The coordinator core on real parts: a real SQLite file in a temporary directory, the real
// strategies and cost model, and an injected clock.
#include "server/coordinator.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "base/temp_dir.h"
#include "proto/convert.h"
#include "search/calibration.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/inheritance.h"
#include "server/test_coordinator.h"
#include "server/test_job_spec.h"
#include "storage/sqlite_store.h"
#include "storage/testing/controlled_store.h"
#include "storage/testing/powerloss_vfs.h"

namespace peaknas::server {
namespace {

namespace fs = std::filesystem;

using base::TempDir;

v1::JobSpec RandomSpec(int trials = 4, int parallelism = 2) {
  return testing::RandomJobSpec(trials, parallelism);
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

// A heartbeat on a's lease, reporting no progress.
v1::HeartbeatRequest Beat(const v1::TrialAssignment& a) {
  v1::HeartbeatRequest beat;
  beat.set_lease_id(a.lease_id());
  beat.set_fencing_token(a.fencing_token());
  return beat;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  CoordinatorOptions Options() {
    CoordinatorOptions options;
    options.lease_duration = std::chrono::milliseconds(10'000);
    options.max_attempts = 3;
    options.clock = [this] { return now_.load(); };
    return options;
  }

  void Reopen() { Reopen(Options()); }
  // Reopens with other options (limits a test sets low).
  void Reopen(const CoordinatorOptions& options) {
    coordinator_.reset();
    ASSERT_NO_FATAL_FAILURE(testing::OpenSqliteCoordinator(
        db_path(), (dir_.path() / "artifacts").string(), &coordinator_, options));
  }

  // Reopens over `store` (a wrapper of the SQLite file) instead.
  void ReopenWith(std::unique_ptr<storage::Store> store) {
    coordinator_.reset();
    auto opened =
        Coordinator::Open(std::move(store), (dir_.path() / "artifacts").string(), Options());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    coordinator_ = std::move(opened).value();
  }

  std::string db_path() const { return (dir_.path() / "peaknas.db").string(); }

  std::string Worker(const std::string& name = "w") {
    v1::RegisterWorkerRequest request;
    request.set_name(name);
    request.set_device("cpu");
    auto id = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }

  // Leases `n` trials to `worker` and reports each as run by a "cpu" worker on libtorch 1.13.0,
  // `fill(i, metrics)` setting the peaks of the i-th (calibration samples).
  void ReportCalibrationSamples(const std::string& worker, int n,
                                const std::function<void(int, v1::TrialMetrics&)>& fill) {
    for (int i = 0; i < n; ++i) {
      v1::ReportResultRequest r = Result(Lease(worker), 30);
      r.mutable_metrics()->set_device_profile("cpu");
      r.mutable_metrics()->set_framework("libtorch 1.13.0");
      fill(i, *r.mutable_metrics());
      ASSERT_TRUE(coordinator_->ReportResult(r).ok()) << i;
    }
  }

  v1::TrialAssignment Lease(const std::string& worker) {
    auto a = coordinator_->LeaseTrial(worker);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_TRUE(a.ok() && a->has_value()) << "nothing to lease";
    return a.ok() && a->has_value() ? **a : v1::TrialAssignment();
  }

  // Job `id` as it stands now (a default Job, and a failure, when GetJob fails).
  v1::Job JobNow(const std::string& id) {
    auto job = coordinator_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : v1::Job();
  }

  // Every assignment the worker can lease now, without waiting.
  std::vector<v1::TrialAssignment> LeaseAll(const std::string& worker) {
    std::vector<v1::TrialAssignment> out;
    for (;;) {
      auto a = coordinator_->LeaseTrial(worker);
      EXPECT_TRUE(a.ok()) << a.status().ToString();
      if (!a.ok() || !a->has_value()) return out;
      out.push_back(**a);
    }
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
      {"unknown strategy", [](v1::JobSpec& s) { s.set_strategy(v1::Strategy(42)); },
       "spec.strategy"},
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
  const v1::Job done = JobNow(job->id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded(), 4);
  EXPECT_EQ(done.counts().pending() + done.counts().running(), 0);
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
    if (frontier->points_size() == 1) {
      // Normalized against the job's fixed reference: gain x (1 - peak/budget) x (1 - lat/ref).
      const auto& only = frontier->points(0);
      const double ref = job->spec().hypervolume_reference_latency_s();
      ASSERT_GT(ref, only.latency_100mp_s());
      EXPECT_NEAR(frontier->hypervolume(),
                  (only.psnr() - 20) *
                      (1 - static_cast<double>(only.peak_bytes()) / (std::int64_t{32} << 20)) *
                      (1 - only.latency_100mp_s() / ref),
                  1e-9);
    }
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
  const v1::Job job_now = JobNow(job->id());
  EXPECT_EQ(job_now.frontier_version(), version);
  EXPECT_EQ(job_now.state(), v1::JOB_STATE_SUCCEEDED);
  // The job carries its frontier at a glance, the same as the frontier itself.
  auto last = coordinator_->GetFrontier(job->id());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(job_now.frontier_size(), last->points_size());
  EXPECT_EQ(job_now.hypervolume(), last->hypervolume());
  double best = 0;
  for (const auto& p : last->points()) best = std::max(best, p.psnr());
  EXPECT_GT(best, 0);
  EXPECT_EQ(job_now.best_psnr(), best);
}

TEST_F(CoordinatorTest, StaleTokenAfterExpiryIsRefusedAndChangesNothing) {
  auto job = coordinator_->SubmitJob(RandomSpec(1, 1));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string slow = Worker("slow");
  const std::string fast = Worker("fast");
  auto first = Lease(slow);

  // Heartbeat renews while the lease is live.
  const v1::HeartbeatRequest beat = Beat(first);
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
  const v1::Job state = JobNow(job->id());
  EXPECT_EQ(state.counts().running(), 1);
  EXPECT_EQ(state.counts().succeeded(), 0);

  ASSERT_TRUE(coordinator_->ReportResult(Result(second, 30)).ok());
  auto trials = coordinator_->ListTrials(job->id(), {v1::TRIAL_STATE_SUCCEEDED});
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].metrics().psnr(), 30);
  EXPECT_EQ((*trials)[0].attempts(), 2);
}

TEST_F(CoordinatorTest, StatsTimeTrialsAndQueueWaitsAndCountBusyAndOnlineWorkers) {
  // The job's first trial is queued at t0.
  auto job = coordinator_->SubmitJob(RandomSpec(4, 1));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string a = Worker("a");
  const std::string b = Worker("b");
  EXPECT_EQ(coordinator_->stats().workers_online, 0);  // registered, never asked for work
  now_ += 2'500;
  const auto first = Lease(a);  // waited 2.5 s
  now_ += 1'000;
  ASSERT_TRUE(coordinator_->LeaseTrial(b).ok());  // b asks, but parallelism 1: nothing
  CoordinatorStats s = coordinator_->stats();
  EXPECT_EQ(s.workers_busy, 1);
  EXPECT_EQ(s.workers_online, 2);
  EXPECT_EQ(s.queue_wait_seconds.count(), 1);
  EXPECT_DOUBLE_EQ(s.queue_wait_seconds.sum, 2.5);

  // a trains for 42 s, heartbeating; b is not seen for 41 s (> the 10 s lease duration).
  const v1::HeartbeatRequest beat = Beat(first);
  for (int i = 0; i < 41; ++i) {
    now_ += 1'000;
    if (i % 4 == 0) {
      ASSERT_TRUE(coordinator_->Heartbeat(beat).ok());
    }
  }
  ASSERT_TRUE(coordinator_->ReportResult(Result(first, 30)).ok());
  s = coordinator_->stats();
  EXPECT_EQ(s.workers_busy, 0);
  EXPECT_EQ(s.workers_online, 1);  // a, seen as it reported
  ASSERT_EQ(s.trial_seconds.count(), 1);
  EXPECT_DOUBLE_EQ(s.trial_seconds.sum, 42.0);
  // The next trial was queued by the report, at that moment.
  now_ += 500;
  const auto second = Lease(b);
  s = coordinator_->stats();
  EXPECT_EQ(s.queue_wait_seconds.count(), 2);
  EXPECT_DOUBLE_EQ(s.queue_wait_seconds.sum, 3.0);
  EXPECT_EQ(s.workers_busy, 1);

  // An expired lease ends without a duration; a restart finds the leased trial's worker busy.
  Reopen();
  s = coordinator_->stats();
  EXPECT_EQ(s.workers_busy, 1);
  EXPECT_EQ(s.workers_online, 1);
  now_ += 60'000;
  ASSERT_EQ(*coordinator_->ExpireLeases(), 1);
  s = coordinator_->stats();
  EXPECT_EQ(s.workers_busy, 0);
  EXPECT_EQ(s.workers_online, 0);
  EXPECT_EQ(s.trial_seconds.count(), 0);  // the counters start again with the process
  (void)second;
}

TEST_F(CoordinatorTest, ListWorkersShowsWhoIsOnlineAndWhatTheyRun) {
  ASSERT_TRUE(coordinator_->SubmitJob(RandomSpec(4, 1)).ok());
  const std::string a = Worker("a");
  const std::string b = Worker("b");
  const auto trial = Lease(a);
  ASSERT_TRUE(coordinator_->LeaseTrial(b).ok());  // nothing left for b (parallelism 1)
  auto online = coordinator_->ListWorkers(false);
  ASSERT_TRUE(online.ok()) << online.status().ToString();
  ASSERT_EQ(online->size(), 2u);
  EXPECT_EQ((*online)[0].id(), a);
  EXPECT_EQ((*online)[0].trial_ids_size(), 1);
  EXPECT_EQ((*online)[0].trial_ids(0), trial.trial_id());
  EXPECT_EQ((*online)[1].trial_ids_size(), 0);

  now_ += 20'000;  // twice the lease duration: b is gone; a's lease is still held (not expired)
  online = coordinator_->ListWorkers(false);
  ASSERT_TRUE(online.ok());
  ASSERT_EQ(online->size(), 1u);
  EXPECT_EQ(online->front().id(), a);
  EXPECT_TRUE(online->front().online());
  auto all = coordinator_->ListWorkers(true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].id(), b);
  EXPECT_FALSE((*all)[1].online());
  EXPECT_EQ((*all)[1].name(), "b");
}

// Reports carry calibration samples; ListCalibrations fits each device profile and framework
// on them, says why a pass has no fit yet, filters, and reads them back after a restart.
TEST_F(CoordinatorTest, ListCalibrationsFitsWhatWorkersMeasured) {
  ASSERT_TRUE(coordinator_->SubmitJob(RandomSpec(6, 1)).ok());
  const std::string worker = Worker();
  constexpr std::int64_t kMiB = 1 << 20;
  ReportCalibrationSamples(worker, 5, [](int i, v1::TrialMetrics& m) {
    // Inference on a line (170 MiB + the prediction); training on only three trials.
    const std::int64_t predicted = (10 + 40 * i) * kMiB;
    m.set_predicted_inference_peak_bytes(predicted);
    m.set_process_inference_peak_bytes(170 * kMiB + predicted);
    m.set_predicted_train_peak_bytes(predicted);
    if (i < 3) m.set_process_train_peak_bytes(200 * kMiB + 2 * predicted);
  });
  const auto a = Lease(worker);
  v1::ReportResultRequest other = Result(a, 30);
  other.mutable_metrics()->set_device_profile("h100");
  other.mutable_metrics()->set_framework("libtorch 2.4.0");
  other.mutable_metrics()->set_predicted_inference_peak_bytes(kMiB);
  other.mutable_metrics()->set_process_inference_peak_bytes(600 * kMiB);
  ASSERT_TRUE(coordinator_->ReportResult(other).ok());

  for (bool reopened : {false, true}) {
    if (reopened) Reopen();
    auto listed = coordinator_->ListCalibrations("", "");
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    ASSERT_EQ(listed->size(), 2u);
    const v1::Calibration& cpu = (*listed)[0];
    EXPECT_EQ(cpu.device_profile(), "cpu");
    EXPECT_EQ(cpu.framework(), "libtorch 1.13.0");
    EXPECT_EQ(cpu.inference().samples(), 5);
    EXPECT_EQ(cpu.inference().unfitted(), "");
    EXPECT_NEAR(cpu.inference().overhead_bytes(), 170.0 * kMiB, 1024);
    EXPECT_NEAR(cpu.inference().slope(), 1.0, 1e-6);
    EXPECT_NEAR(cpu.inference().margin(), 1.0, 1e-6);
    EXPECT_EQ(cpu.training().samples(), 3);
    EXPECT_NE(cpu.training().unfitted().find("at least 4"), std::string::npos)
        << cpu.training().unfitted();
    EXPECT_EQ(cpu.training().slope(), 0);
    EXPECT_EQ(cpu.updated().seconds() * 1000 + cpu.updated().nanos() / 1'000'000, now_.load());
    EXPECT_EQ((*listed)[1].device_profile(), "h100");
    EXPECT_EQ((*listed)[1].inference().samples(), 1);
    EXPECT_EQ((*listed)[1].training().samples(), 0);
  }
  auto only = coordinator_->ListCalibrations("h100", "");
  ASSERT_TRUE(only.ok());
  ASSERT_EQ(only->size(), 1u);
  EXPECT_EQ(only->front().framework(), "libtorch 2.4.0");
  EXPECT_TRUE(coordinator_->ListCalibrations("cpu", "libtorch 9").value().empty());
}

// A budget in device bytes becomes the largest allocator budget whose calibrated device peak
// fits, by the newest calibration of the job's profile; without one the job is refused.
TEST_F(CoordinatorTest, DeviceBudgetsConvertThroughTheCalibration) {
  constexpr std::int64_t kMiB = 1 << 20;
  v1::JobSpec spec = RandomSpec(4, 1);
  spec.mutable_budget()->clear_bytes();
  spec.mutable_budget()->set_device_bytes(300 * kMiB);
  auto refused = coordinator_->SubmitJob(spec);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("no calibration of device profile \"cpu\""),
            std::string::npos)
      << refused.status().message();

  // Samples on device = 170 MiB + 1.25 x allocator: a fit with margin 1.
  ASSERT_TRUE(coordinator_->SubmitJob(RandomSpec(6, 1)).ok());
  const std::string worker = Worker();
  ReportCalibrationSamples(worker, 5, [](int i, v1::TrialMetrics& m) {
    const std::int64_t predicted = (8 + 24 * i) * kMiB;
    m.set_predicted_inference_peak_bytes(predicted);
    m.set_process_inference_peak_bytes(170 * kMiB + predicted * 5 / 4);
  });
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const v1::Budget& budget = job->spec().budget();
  // (300 - 1 - 170) / 1.25 = 103.2 MiB (1 MiB: search::kCalibrationResolutionBytes).
  EXPECT_NEAR(static_cast<double>(budget.bytes()),
              (300.0 * kMiB - search::kCalibrationResolutionBytes - 170.0 * kMiB) / 1.25, 2);
  EXPECT_EQ(budget.device_bytes(), 300 * kMiB);
  EXPECT_EQ(budget.device_calibration().framework(), "libtorch 1.13.0");
  EXPECT_EQ(budget.device_calibration().inference().samples(), 5);
  const auto trials = coordinator_->ListTrials(job->id());
  ASSERT_TRUE(trials.ok()) << trials.status().ToString();
  for (const v1::Trial& t : *trials) {
    if (t.state() == v1::TRIAL_STATE_REJECTED) continue;
    EXPECT_LE(t.predicted_inference_peak_bytes(), budget.bytes()) << t.id();
  }

  v1::JobSpec both = spec;
  both.mutable_budget()->set_bytes(kMiB);
  EXPECT_EQ(coordinator_->SubmitJob(both).status().code(), StatusCode::kInvalidArgument);
  v1::JobSpec too_small = spec;
  too_small.mutable_budget()->set_device_bytes(100 * kMiB);
  auto small = coordinator_->SubmitJob(too_small);
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("below what any network needs"), std::string::npos)
      << small.status().message();
  v1::JobSpec training = spec;
  training.mutable_budget()->set_mode(v1::BUDGET_MODE_TRAINING);
  EXPECT_EQ(coordinator_->SubmitJob(training).status().code(), StatusCode::kFailedPrecondition);
}

// Packing: a worker stating its free bytes gets only a trial whose calibrated device peak fits,
// told how much that is; before a calibration exists, trials run alone; a trial that went over
// its reservation comes back with half as much again.
TEST_F(CoordinatorTest, PackingLeasesTrialsWhoseCalibratedPeakFitsTheFreeBytes) {
  constexpr std::int64_t kMiB = 1 << 20;
  constexpr std::int64_t kFree = std::int64_t{1} << 40;
  auto job = coordinator_->SubmitJob(RandomSpec(16, 8));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string w = Worker("w"), other = Worker("other");

  // No calibration: one trial per worker, with no reservation.
  auto alone = coordinator_->LeaseTrial(w, {}, kFree);
  ASSERT_TRUE(alone.ok() && alone->has_value()) << alone.status().ToString();
  EXPECT_EQ((*alone)->reserved_bytes(), 0);
  auto second = coordinator_->LeaseTrial(w, {}, kFree);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->has_value()) << "an uncalibrated trial must run alone";
  auto elsewhere = coordinator_->LeaseTrial(other, {}, kFree);
  ASSERT_TRUE(elsewhere.ok() && elsewhere->has_value());
  for (const v1::TrialAssignment& a : {**alone, **elsewhere}) {
    ASSERT_TRUE(coordinator_->ReportResult(Result(a, 25)).ok());
  }
  EXPECT_EQ(coordinator_->LeaseTrial(w, {}, -1).status().code(), StatusCode::kInvalidArgument);

  // Whole trials on 150 MiB + 2 x the larger predicted peak.
  ReportCalibrationSamples(w, 5, [](int i, v1::TrialMetrics& m) {
    const std::int64_t predicted = (4 + 16 * i) * kMiB;
    m.set_predicted_inference_peak_bytes(predicted / 2);
    m.set_predicted_train_peak_bytes(predicted);
    m.set_process_peak_bytes(150 * kMiB + 2 * predicted);
  });
  const auto calibrations = coordinator_->ListCalibrations("cpu", "");
  ASSERT_TRUE(calibrations.ok() && calibrations->size() == 1u);
  const auto fit = proto::FittedPass((*calibrations)[0], search::CalibratedPass::kTrial);
  ASSERT_TRUE(fit.has_value());
  EXPECT_EQ(fit->samples, 5);
  EXPECT_NEAR(fit->overhead_bytes, 150.0 * kMiB, 1024);
  EXPECT_NEAR(fit->slope, 2.0, 1e-6);
  // What each pending trial would reserve.
  std::map<std::string, std::int64_t> reservation;
  const auto trials = coordinator_->ListTrials(job->id());
  ASSERT_TRUE(trials.ok()) << trials.status().ToString();
  for (const v1::Trial& t : *trials) {
    if (t.state() != v1::TRIAL_STATE_PENDING) continue;
    reservation[t.id()] =
        fit->Predict(std::max(t.predicted_inference_peak_bytes(), t.predicted_train_peak_bytes()));
  }
  ASSERT_GE(reservation.size(), 3u);
  const auto smallest = std::min_element(reservation.begin(), reservation.end(),
                                         [](auto& a, auto& b) { return a.second < b.second; });

  // Below the smallest reservation: nothing. At it: that trial, even when it is not the oldest.
  auto none = coordinator_->LeaseTrial(w, {}, smallest->second - 1);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  auto packed = coordinator_->LeaseTrial(w, {}, smallest->second);
  ASSERT_TRUE(packed.ok() && packed->has_value()) << packed.status().ToString();
  EXPECT_EQ((*packed)->trial_id(), smallest->first);
  EXPECT_EQ((*packed)->reserved_bytes(), smallest->second);
  // Calibrated: a worker holding leases gets more, the oldest first.
  const auto number = [](const std::string& id) { return std::stoll(id.substr(2)); };
  std::string oldest;
  for (const auto& [id, bytes] : reservation) {
    if (id != smallest->first && (oldest.empty() || number(id) < number(oldest))) oldest = id;
  }
  auto more = coordinator_->LeaseTrial(w, {}, kFree);
  ASSERT_TRUE(more.ok() && more->has_value()) << more.status().ToString();
  EXPECT_EQ((*more)->trial_id(), oldest);
  EXPECT_EQ((*more)->reserved_bytes(), reservation[oldest]);

  // Over its reservation: back to pending, reserving 1.5 x what it reached.
  v1::ReportResultRequest over;
  over.set_lease_id((*packed)->lease_id());
  over.set_fencing_token((*packed)->fencing_token());
  over.mutable_failure()->set_code(static_cast<int>(StatusCode::kResourceExhausted));
  over.mutable_failure()->set_message("over its reservation");
  over.mutable_failure()->set_retryable(true);
  const std::int64_t reached = smallest->second + 10 * kMiB;
  over.mutable_failure()->set_over_reservation_bytes(reached);
  ASSERT_TRUE(coordinator_->ReportResult(over).ok());
  const std::int64_t headroom = reached + (reached + 1) / 2;
  ASSERT_GT(headroom, reservation[smallest->first]);
  // Under the raised floor every other trial that fits comes, never this one; at it, it does.
  for (auto a = coordinator_->LeaseTrial(other, {}, headroom - 1); a.ok() && a->has_value();
       a = coordinator_->LeaseTrial(other, {}, headroom - 1)) {
    EXPECT_NE((*a)->trial_id(), smallest->first);
  }
  std::optional<v1::TrialAssignment> again;
  for (auto a = coordinator_->LeaseTrial(other, {}, headroom); a.ok() && a->has_value();
       a = coordinator_->LeaseTrial(other, {}, headroom)) {
    if ((*a)->trial_id() == smallest->first) again = **a;
  }
  ASSERT_TRUE(again.has_value()) << "the raised trial was not leased at its new floor";
  EXPECT_EQ(again->reserved_bytes(), headroom);
}

TEST_F(CoordinatorTest, RegistrationsBeyondTheRateLimitAreRefusedAndStoreNothing) {
  CoordinatorOptions options = Options();
  options.registration_burst = 3;
  options.registrations_per_second = 1;
  ASSERT_NO_FATAL_FAILURE(Reopen(options));
  v1::RegisterWorkerRequest request;
  request.set_name("flood");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(coordinator_->RegisterWorker(request).ok()) << i;
  auto refused = coordinator_->RegisterWorker(request);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("registrations"), std::string::npos);
  EXPECT_EQ(coordinator_->ListWorkers(true)->size(), 3u);
  now_ += 1'000;  // one more token
  EXPECT_TRUE(coordinator_->RegisterWorker(request).ok());
  EXPECT_EQ(coordinator_->RegisterWorker(request).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(coordinator_->ListWorkers(true)->size(), 4u);
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
  const v1::Job state = JobNow(job->id());
  EXPECT_EQ(state.counts().failed(), 1);
  EXPECT_EQ(state.state(), v1::JOB_STATE_SUCCEEDED);
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
  auto answer = coordinator_->Heartbeat(Beat(a));
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
  const v1::Job done = JobNow(job->id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done.counts().succeeded(), 5);
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

TEST_F(CoordinatorTest, ArtifactsBeyondTheirLimitsAreRefusedAndNothingIsKept) {
  CoordinatorOptions options = Options();
  options.max_artifact_bytes = 8;
  options.max_total_artifact_bytes = 10;
  ASSERT_NO_FATAL_FAILURE(Reopen(options));
  ASSERT_TRUE(coordinator_->SubmitJob(RandomSpec(3, 3)).ok());
  const std::string w = Worker();
  const std::string sha = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
  const auto upload = [&](const v1::TrialAssignment& a, const std::string& bytes) {
    auto begun = coordinator_->BeginArtifactUpload(a.lease_id(), a.fencing_token());
    if (!begun.ok()) return begun.status();
    { std::ofstream(begun->partial_path, std::ios::binary) << bytes; }
    auto stored = coordinator_->CommitArtifactUpload(
        *begun, static_cast<std::int64_t>(bytes.size()), sha, sha);
    if (!stored.ok()) {
      EXPECT_FALSE(std::filesystem::exists(begun->partial_path));
    }
    return stored.status();
  };
  const v1::TrialAssignment a = Lease(w), b = Lease(w), c = Lease(w);
  // Over the per-upload limit (8 B).
  EXPECT_EQ(upload(a, "123456789").code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(upload(a, "1234567").ok());  // 7 B stored
  // 3 B are left of the 10 B total.
  const Status over = upload(b, "12345");
  EXPECT_EQ(over.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(upload(b, "123").ok());  // the total is reached
  const Status full = upload(c, "1");
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("10 B allowed"), std::string::npos) << full.message();
  EXPECT_EQ(coordinator_->GetArtifact(c.job_id(), c.trial_id()).status().code(),
            StatusCode::kNotFound);
  // A trial's new model replaces its old one: the total counts the newest only.
  EXPECT_TRUE(upload(b, "12").ok());
}

// --- Retries, worker matching, events, group commit ------------------------------------------

TEST_F(CoordinatorTest, RetryableFailureGoesBackToTheQueueUntilMaxAttempts) {
  auto job = coordinator_->SubmitJob(RandomSpec(1, 1));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string worker = Worker();
  const auto fail = [&](const v1::TrialAssignment& a, bool retryable) {
    v1::ReportResultRequest r;
    r.set_lease_id(a.lease_id());
    r.set_fencing_token(a.fencing_token());
    r.mutable_failure()->set_code(5);
    r.mutable_failure()->set_message("dataset \"synthetic\" is not on this worker");
    r.mutable_failure()->set_retryable(retryable);
    return coordinator_->ReportResult(r);
  };
  auto first = Lease(worker);
  ASSERT_TRUE(*fail(first, true));
  auto trials = coordinator_->ListTrials(job->id(), {v1::TRIAL_STATE_PENDING});
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].id(), first.trial_id());
  // The same trial again, on its second attempt; the first lease's token is dead.
  auto second = Lease(worker);
  EXPECT_EQ(second.trial_id(), first.trial_id());
  EXPECT_GT(second.fencing_token(), first.fencing_token());
  EXPECT_EQ(fail(first, true).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(*fail(second, true));
  // The third lease is the last (max_attempts 3): a retryable failure now fails the trial.
  auto third = Lease(worker);
  ASSERT_TRUE(*fail(third, true));
  auto failed = coordinator_->ListTrials(job->id(), {v1::TRIAL_STATE_FAILED});
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].attempts(), 3);
  EXPECT_NE((*failed)[0].reason().find("is not on this worker"), std::string::npos);
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(CoordinatorTest, NonRetryableFailureFailsAtOnce) {
  auto job = coordinator_->SubmitJob(RandomSpec(1, 1));
  ASSERT_TRUE(job.ok());
  auto a = Lease(Worker());
  v1::ReportResultRequest r;
  r.set_lease_id(a.lease_id());
  r.set_fencing_token(a.fencing_token());
  r.mutable_failure()->set_code(8);
  r.mutable_failure()->set_message("out of memory");
  ASSERT_TRUE(*coordinator_->ReportResult(r));
  auto failed = coordinator_->ListTrials(job->id(), {v1::TRIAL_STATE_FAILED});
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].attempts(), 1);
}

TEST_F(CoordinatorTest, TheFirstLeaseMakesTheJobRunningAcrossARestart) {
  auto job = coordinator_->SubmitJob(RandomSpec(3, 1));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_STATE_PENDING);
  const std::string worker = Worker();
  auto a = Lease(worker);
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), v1::JOB_STATE_RUNNING);
  Reopen();
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(*coordinator_->ReportResult(Result(a, 30)));
  Lease(worker);
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), v1::JOB_STATE_RUNNING);
}

TEST_F(CoordinatorTest, LeaseTrialRecordsWhenTheWorkerWasLastSeen) {
  const std::string worker = Worker();
  now_ += 5000;
  auto none = coordinator_->LeaseTrial(worker);  // nothing queued: still a sign of life
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto reader = storage::SqliteStore::Open(db_path());
  ASSERT_TRUE(reader.ok());
  auto stored = (*reader)->GetWorker(std::stoll(worker.substr(2)));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->last_seen_ms, now_.load());
  EXPECT_EQ(stored->registered_ms, now_.load() - 5000);
  // Within a second of that, another lease does not write the row again.
  now_ += 400;
  ASSERT_TRUE(coordinator_->LeaseTrial(worker).ok());
  EXPECT_EQ((*reader)->GetWorker(std::stoll(worker.substr(2)))->last_seen_ms, now_.load() - 400);
  now_ += 600;
  ASSERT_TRUE(coordinator_->LeaseTrial(worker).ok());
  EXPECT_EQ((*reader)->GetWorker(std::stoll(worker.substr(2)))->last_seen_ms, now_.load());
}

TEST_F(CoordinatorTest, WorkersGetOnlyTrialsTheyCanRun) {
  v1::JobSpec spec = RandomSpec(2, 2);
  spec.set_dataset("sidd");
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const auto worker = [&](const std::string& name, std::vector<std::string> datasets,
                          std::int64_t memory, std::vector<v1::DType> dtypes) {
    v1::RegisterWorkerRequest request;
    request.set_name(name);
    request.set_device("cpu");
    request.set_memory_bytes(memory);
    for (const auto& d : datasets) request.add_datasets(d);
    for (auto d : dtypes) request.add_dtypes(d);
    auto id = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  };
  const auto leases_nothing = [&](const std::string& w) {
    auto a = coordinator_->LeaseTrial(w);
    return a.ok() && !a->has_value();
  };
  EXPECT_TRUE(leases_nothing(worker("other-data", {"synthetic"}, 0, {})));
  // Every admitted trial's predicted peak is at least a few KiB: 1 KiB of memory fits none.
  EXPECT_TRUE(leases_nothing(worker("tiny", {"sidd"}, 1024, {})));
  const std::string fits = worker("fits", {"sidd"}, std::int64_t{64} << 30, {});
  auto a = coordinator_->LeaseTrial(fits);
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->dataset(), "sidd");
  // A worker that states no datasets and no memory is not restricted.
  EXPECT_FALSE(leases_nothing(worker("unstated", {}, 0, {})));

  // A bf16 job goes only to workers that list bf16.
  v1::JobSpec half = RandomSpec(1, 1);
  half.mutable_budget()->set_dtype(v1::DTYPE_BF16);
  auto half_job = coordinator_->SubmitJob(half);
  ASSERT_TRUE(half_job.ok()) << half_job.status().ToString();
  EXPECT_TRUE(leases_nothing(worker("fp32-only", {"synthetic"}, 0, {v1::DTYPE_FP32})));
  auto b = coordinator_->LeaseTrial(worker("bf16", {"synthetic"}, 0, {v1::DTYPE_BF16}));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->job_id(), half_job->id());

  v1::RegisterWorkerRequest bad;
  bad.set_name("bad");
  bad.add_datasets("a,b");
  auto refused = coordinator_->RegisterWorker(bad);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("datasets[0]"), std::string::npos);
}

TEST_F(CoordinatorTest, ATrialRunsAtTheMostThreadsAtWhichItsPeakFitsTheBudget) {
  // On CPU the peaks grow with the intra-op threads (oneDNN's per-thread buffers, its path for
  // 1x1 convolutions); the budget was checked at one. Each lease names the most threads, up to
  // the worker's, at which the trial's budgeted peak still fits.
  const auto worker = [&](const std::string& name, int threads) {
    v1::RegisterWorkerRequest request;
    request.set_name(name);
    request.set_device("cpu");
    request.set_threads(threads);
    auto id = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  };
  // One architecture (one level of 48 channels), trained at batch 8 on 64x64 patches: three
  // threads add 174 592 bytes to its training step, four 257 728 (search/cost_model_test.cc).
  v1::JobSpec one = RandomSpec(1, 1);
  ASSERT_TRUE(google::protobuf::TextFormat::MergeFromString(
      R"pb(levels { max: 1 }
           width { min: 48 max: 48 }
           enc_blocks { min: 1 max: 1 }
           skips: SKIP_KIND_CONCAT
           upsamples: UPSAMPLE_KIND_TRANSPOSED
           downsamples: DOWNSAMPLE_KIND_STRIDED
           activations: ACTIVATION_KIND_RELU)pb",
      one.mutable_space()));
  one.mutable_fidelity()->set_train_batch(8);
  one.mutable_fidelity()->set_patch(64);
  one.mutable_budget()->set_mode(v1::BUDGET_MODE_TRAINING);
  const std::vector<int> width{48}, enc{1}, dec;
  auto arch = search::MakeArchitecture(
      width, enc, dec, search::SkipKind::kConcat, search::UpsampleKind::kTransposed,
      search::DownsampleKind::kStrided, search::ActivationKind::kRelu);
  ASSERT_TRUE(arch.ok());
  one.mutable_budget()->set_bytes(
      search::TrainPeakBytes(*arch, {8, 64}, search::DType::kFp32, search::DefaultDeviceProfile()) +
      180000);
  ASSERT_TRUE(coordinator_->SubmitJob(one).ok());
  const std::string four = worker("four", 4);
  v1::TrialAssignment capped = Lease(four);
  EXPECT_EQ(capped.architecture().levels(), 1);
  EXPECT_EQ(capped.threads(), 3);
  ASSERT_TRUE(coordinator_->SubmitJob(one).ok());
  EXPECT_EQ(Lease(worker("two", 2)).threads(), 2);
  // A worker that does not state its threads gets no limit.
  ASSERT_TRUE(coordinator_->SubmitJob(one).ok());
  EXPECT_EQ(Lease(worker("unstated", 0)).threads(), 0);
  // The threads are stored: a restarted coordinator still limits the worker's trials.
  ASSERT_TRUE(coordinator_->SubmitJob(one).ok());
  Reopen();
  EXPECT_EQ(Lease(four).threads(), 3);

  // Sampled architectures in both budget modes: each lease's threads are the most, up to the
  // worker's 8, at which the cost model's budgeted peak fits.
  std::string training_job;
  for (const v1::BudgetMode mode : {v1::BUDGET_MODE_TRAINING, v1::BUDGET_MODE_INFERENCE}) {
    v1::JobSpec spec = RandomSpec(8, 8);
    spec.mutable_budget()->set_mode(mode);
    auto job = coordinator_->SubmitJob(spec);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    if (mode == v1::BUDGET_MODE_TRAINING) training_job = job->id();
  }
  const auto expected = [](const v1::TrialAssignment& a, bool training) {
    auto sampled = proto::FromProto(a.architecture(), "architecture");
    EXPECT_TRUE(sampled.ok());
    search::DeviceProfile cpu = search::DefaultDeviceProfile();
    const search::Shape tile{a.batch(), a.tile()};
    const search::Shape patch{a.fidelity().train_batch(), a.fidelity().patch()};
    for (int t = 8; t > 1; --t) {
      cpu.cpu_conv.intra_op_threads = t;
      const std::int64_t peak =
          training ? search::TrainPeakBytes(*sampled, patch, search::DType::kFp32, cpu)
                   : search::InferencePeakBytes(*sampled, tile, search::DType::kFp32, cpu);
      if (peak <= std::int64_t{32} << 20) return t;
    }
    return 1;
  };
  const std::vector<v1::TrialAssignment> leased = LeaseAll(worker("eight", 8));
  ASSERT_EQ(leased.size(), 16u);
  for (const v1::TrialAssignment& a : leased) {
    EXPECT_EQ(a.threads(), expected(a, a.job_id() == training_job)) << a.trial_id();
  }

  v1::RegisterWorkerRequest bad;
  bad.set_name("bad");
  bad.set_threads(5000);
  auto refused = coordinator_->RegisterWorker(bad);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("threads: must be in [0, 4096]"), std::string::npos);
}

// The event kinds, as one letter each: Rejected, Started, Progress, Finished, frontier Changed,
// Job finished.
std::string Kinds(const std::vector<v1::JobEvent>& events) {
  constexpr std::pair<v1::JobEvent::EventCase, char> kLetters[] = {
      {v1::JobEvent::kTrialRejected, 'R'},   {v1::JobEvent::kTrialStarted, 'S'},
      {v1::JobEvent::kTrialProgress, 'P'},   {v1::JobEvent::kTrialFinished, 'F'},
      {v1::JobEvent::kFrontierChanged, 'C'}, {v1::JobEvent::kJobFinished, 'J'}};
  std::string out;
  for (const auto& e : events) {
    char letter = '?';
    for (const auto& [kind, kind_letter] : kLetters) {
      if (kind == e.event_case()) letter = kind_letter;
    }
    out += letter;
  }
  return out;
}

TEST_F(CoordinatorTest, EventLogReplaysAndFollowsAcrossARestart) {
  auto job = coordinator_->SubmitJob(RandomSpec(2, 1));
  ASSERT_TRUE(job.ok());
  const std::string worker = Worker();
  auto a = Lease(worker);
  v1::HeartbeatRequest beat = Beat(a);
  beat.set_step(5);
  beat.set_steps(10);
  beat.set_loss(0.125);
  ASSERT_TRUE(coordinator_->Heartbeat(beat).ok());
  ASSERT_TRUE(*coordinator_->ReportResult(Result(a, 30)));

  auto events = coordinator_->WatchEvents(job->id(), 0, 1000, {});
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  for (std::size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].sequence(), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ((*events)[i].job_id(), job->id());
  }
  // Rejections while filling the queue, then the first trial's life and the first frontier.
  const std::string kinds = Kinds(*events);
  const std::size_t started = kinds.find('S');
  ASSERT_NE(started, std::string::npos) << kinds;
  EXPECT_EQ(kinds.substr(0, started).find_first_not_of('R'), std::string::npos) << kinds;
  EXPECT_NE(kinds.find("SPF", started), std::string::npos) << kinds;
  EXPECT_NE(kinds.find('C', started), std::string::npos) << kinds;
  const auto& progress = (*events)[kinds.find('P')].trial_progress();
  EXPECT_EQ(progress.trial_id(), a.trial_id());
  EXPECT_EQ(progress.step(), 5);
  EXPECT_EQ(progress.loss(), 0.125);
  const auto& finished = (*events)[kinds.find('F')].trial_finished().trial();
  EXPECT_EQ(finished.state(), v1::TRIAL_STATE_SUCCEEDED);
  EXPECT_EQ(finished.metrics().psnr(), 30);
  const std::int64_t last = events->back().sequence();

  EXPECT_TRUE(coordinator_->IsRunning(job->id()));

  // The log survives a restart; a watcher waiting after it is woken by the next commit. The
  // events above came from the in-memory tail; after the restart they come from the store, and
  // must be the same to the byte.
  Reopen();
  auto replay = coordinator_->WatchEvents(job->id(), 0, 1000, {});
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(Kinds(*replay), kinds);
  ASSERT_EQ(replay->size(), events->size());
  for (std::size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*replay)[i].SerializeAsString(), (*events)[i].SerializeAsString()) << i;
  }
  std::thread reporter([&] {
    auto b = Lease(worker);
    ASSERT_TRUE(*coordinator_->ReportResult(Result(b, 29)));
  });
  std::string followed;
  std::int64_t after = last;
  while (followed.find('J') == std::string::npos) {
    auto more = coordinator_->WatchEvents(job->id(), after, 1000, std::chrono::seconds(30));
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    ASSERT_FALSE(more->empty()) << "no event within 30 s after " << after;
    EXPECT_EQ(more->front().sequence(), after + 1);
    after = more->back().sequence();
    followed += Kinds(*more);
  }
  reporter.join();
  EXPECT_EQ(followed.substr(0, 2), "SF") << followed;
  EXPECT_EQ(followed.back(), 'J') << followed;
  EXPECT_FALSE(coordinator_->IsRunning(job->id()));  // finished
  EXPECT_FALSE(coordinator_->IsRunning("j-999"));
  EXPECT_EQ(coordinator_->WatchEvents("j-999", 0, 10, {}).status().code(), StatusCode::kNotFound);
}

class ControlledCoordinatorTest : public CoordinatorTest {
 protected:
  // The coordinator again, over a ControlledStore of the same file.
  void SetUp() override {
    auto sqlite = storage::SqliteStore::Open(db_path());
    ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
    auto store = std::make_unique<storage::testing::ControlledStore>(std::move(sqlite).value());
    control_ = store->control();
    ReopenWith(std::move(store));
  }
  std::shared_ptr<storage::testing::ControlledStore::Control> control_;
};

TEST_F(ControlledCoordinatorTest, CallsArrivingDuringACommitShareTheNextOne) {
  auto control = control_;
  auto job = coordinator_->SubmitJob(RandomSpec(20, 20));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  constexpr int kWorkers = 8;
  std::vector<std::string> workers;
  for (int i = 0; i < kWorkers; ++i) {
    std::string name = "w";
    name += std::to_string(i);
    workers.push_back(Worker(name));
  }
  const CoordinatorStats before = coordinator_->stats();

  // One call commits and is held inside CommitGroup; the leases arriving meanwhile wait.
  {
    std::lock_guard lock(control->mu);
    control->hold = true;
  }
  std::thread first([&] { Worker("first"); });
  {
    std::unique_lock lock(control->mu);
    control->cv.wait(lock, [&] { return control->holding; });
  }
  std::vector<std::thread> leases;
  std::atomic<int> leased{0};
  for (const std::string& w : workers) {
    leases.emplace_back([&, w] {
      auto a = coordinator_->LeaseTrial(w);
      if (a.ok() && a->has_value()) ++leased;
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (coordinator_->stats().waiting_for_commit < kWorkers) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the leases never queued";
    std::this_thread::yield();
  }
  {
    std::lock_guard lock(control->mu);
    control->hold = false;
  }
  control->cv.notify_all();
  first.join();
  for (auto& t : leases) t.join();
  EXPECT_EQ(leased.load(), kWorkers);
  const CoordinatorStats after = coordinator_->stats();
  // The held commit (1 write) and one more for all eight leases.
  EXPECT_EQ(after.commits - before.commits, 2);
  EXPECT_EQ(after.writes - before.writes, 1 + kWorkers);
  // Each acknowledged lease is durable: another connection sees them all.
  auto reader = storage::SqliteStore::Open(db_path());
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->CountTrials(std::stoll(job->id().substr(2)))->leased, kWorkers);
}

TEST_F(ControlledCoordinatorTest, FailedCommitFailsItsCallsAndReloadsFromTheDatabase) {
  auto control = control_;
  auto job = coordinator_->SubmitJob(RandomSpec(2, 1));
  ASSERT_TRUE(job.ok());
  auto a = Lease(Worker());
  control->fail_next = true;
  auto lost = coordinator_->ReportResult(Result(a, 30));
  EXPECT_EQ(lost.status().code(), StatusCode::kInternal);
  EXPECT_NE(lost.status().message().find("not committed"), std::string::npos)
      << lost.status().ToString();
  EXPECT_EQ(coordinator_->stats().failed_commits, 1);
  // Nothing of the report remains, in the database or in memory: the lease is still current,
  // and the same report now succeeds once, with the first frontier.
  auto state = coordinator_->GetJob(job->id());
  EXPECT_EQ(state->counts().succeeded(), 0);
  EXPECT_EQ(state->frontier_version(), 0);
  ASSERT_TRUE(*coordinator_->ReportResult(Result(a, 30)));
  state = coordinator_->GetJob(job->id());
  EXPECT_EQ(state->counts().succeeded(), 1);
  EXPECT_EQ(state->frontier_version(), 1);
  auto events = coordinator_->WatchEvents(job->id(), 0, 1000, {});
  ASSERT_TRUE(events.ok());
  const std::string kinds = Kinds(*events);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), 'F'), 1) << kinds;
}

// Power loss: the coordinator runs on the VFS that keeps unsynced writes in memory; at the
// "cut" the files on disk are copied and opened as a restarted machine would find them.
struct PowerCut {
  int acknowledged = 0;       // ReportResult returned true
  std::int64_t survived = 0;  // succeeded trials in the copy
};

PowerCut ReportThenCutPower(storage::Synchronous synchronous) {
  EXPECT_TRUE(storage::testing::RegisterPowerLossVfs());
  TempDir dir;
  const std::string db = (dir.path() / "peaknas.db").string();
  PowerCut cut;
  auto store = storage::SqliteStore::Open(
      db, {.synchronous = synchronous, .vfs = storage::testing::kPowerLossVfs});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return cut;
  CoordinatorOptions options;
  auto coordinator = Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                       (dir.path() / "artifacts").string(), options);
  EXPECT_TRUE(coordinator.ok()) << coordinator.status().ToString();
  if (!coordinator.ok()) return cut;
  auto job = (*coordinator)->SubmitJob(RandomSpec(6, 2));
  EXPECT_TRUE(job.ok());
  v1::RegisterWorkerRequest request;
  request.set_name("w");
  const std::string worker = *(*coordinator)->RegisterWorker(request);
  while (true) {
    auto a = (*coordinator)->LeaseTrial(worker);
    if (!a.ok() || !a->has_value()) break;
    auto accepted = (*coordinator)->ReportResult(Result(**a, 25 + cut.acknowledged));
    if (accepted.ok() && *accepted) ++cut.acknowledged;
  }
  const std::string copy = (dir.path() / "after-power-cut.db").string();
  storage::testing::CopyDurableState(db, copy);
  auto reopened = storage::SqliteStore::Open(copy);
  EXPECT_TRUE(reopened.ok()) << reopened.status().ToString();
  if (!reopened.ok()) return cut;
  auto jobs = (*reopened)->ListJobs();
  if (jobs.ok() && !jobs->empty())
    cut.survived = (*reopened)->CountTrials(jobs->front().id)->succeeded;
  return cut;
}

TEST(CoordinatorPowerLoss, EveryAcknowledgedResultSurvivesWithFullSync) {
  const std::int64_t syncs = storage::testing::PowerLossSyncs();
  const PowerCut cut = ReportThenCutPower(storage::Synchronous::kFull);
  EXPECT_EQ(cut.acknowledged, 6);
  EXPECT_EQ(cut.survived, cut.acknowledged);
  EXPECT_GT(storage::testing::PowerLossSyncs(), syncs);
}

// The same run with synchronous = NORMAL loses acknowledged results: the simulation does cut
// what was never synced (and NORMAL is not the default for that reason).
TEST(CoordinatorPowerLoss, NormalSyncLosesAcknowledgedResults) {
  const PowerCut cut = ReportThenCutPower(storage::Synchronous::kNormal);
  EXPECT_EQ(cut.acknowledged, 6);
  EXPECT_LT(cut.survived, cut.acknowledged);
}

}  // namespace
}  // namespace peaknas::server

namespace peaknas::server {
namespace {

// A pruning job through the coordinator: the start trains from scratch over an inference
// budget, each round's proposals name their parent and fine-tune briefly, the next round waits
// for the previous one's results (and survives a restart in between), over-budget ancestors
// never reach the frontier, and the chain ends with a long fine-tune of its last node.
// A scaling job inherits by default: its sweep trains from the largest point down, each point
// leased only once its donor (the next larger point of the same depth) has a result, naming it
// as the parent, across a restart; with inherit set false every point trains from scratch.
TEST_F(CoordinatorTest, ScalingJobChainsItsSweepByDefault) {
  for (const bool explicit_off : {false, true}) {
    SCOPED_TRACE(explicit_off ? "inherit: false" : "default");
    Reopen();
    v1::JobSpec spec = RandomSpec(/*trials=*/4, /*parallelism=*/2);
    spec.set_strategy(v1::STRATEGY_SCALING);
    spec.clear_sampling();
    *spec.mutable_base_architecture() = proto::ToProto(*search::ParseArchitecture(
        R"({"activation":"relu","dec_blocks":[1],"downsample":"strided","enc_blocks":[1,1],)"
        R"("levels":2,"skip":"concat","upsample":"transposed","widths":[16,32]})"));
    if (explicit_off) spec.set_inherit(false);
    auto job = coordinator_->SubmitJob(spec);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    EXPECT_TRUE(job->spec().has_inherit()) << "the default is stored with the job";
    EXPECT_EQ(job->spec().inherit(), !explicit_off);

    const std::string worker = Worker();
    std::map<std::string, std::int64_t> peak_of;  // trial -> predicted peak
    int leased = 0, inheriting = 0;
    for (int guard = 0; guard < 20 && leased < 4; ++guard) {
      const std::vector<v1::TrialAssignment> round = LeaseAll(worker);
      ASSERT_FALSE(round.empty()) << "the sweep stalled after " << leased << " trials";
      auto trials = coordinator_->ListTrials(job->id());
      ASSERT_TRUE(trials.ok());
      for (const v1::TrialAssignment& a : round) {
        ++leased;
        for (const v1::Trial& t : *trials) {
          if (t.id() == a.trial_id()) peak_of[a.trial_id()] = t.predicted_inference_peak_bytes();
        }
        if (a.parent_trial_id().empty()) continue;
        ++inheriting;
        ASSERT_TRUE(peak_of.contains(a.parent_trial_id())) << "the parent was leased before";
        EXPECT_GT(peak_of[a.parent_trial_id()], peak_of[a.trial_id()]);
        EXPECT_TRUE(a.export_model()) << "a scaling point may become a parent";
        EXPECT_EQ(a.importance(), v1::IMPORTANCE_L1);
      }
      for (const v1::TrialAssignment& a : round) {
        ASSERT_TRUE(coordinator_->ReportResult(Result(a, 30)).ok());
      }
      Reopen();  // the chain picks up from the stored trials
    }
    EXPECT_EQ(leased, 4);
    if (explicit_off) {
      EXPECT_EQ(inheriting, 0);
    } else {
      EXPECT_GE(inheriting, 2) << "all but the heads of the sweep's chains inherit";
    }
    const v1::Job done = JobNow(job->id());
    EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  }
}

TEST_F(CoordinatorTest, PruningJobChainsInheritingTrials) {
  auto start = search::ParseArchitecture(
      R"({"activation":"relu","dec_blocks":[1],"downsample":"strided","enc_blocks":[1,1],)"
      R"("levels":2,"skip":"concat","upsample":"transposed","widths":[32,64]})");
  ASSERT_TRUE(start.ok());
  const std::int64_t start_peak = search::InferencePeakBytes(
      *start, {.batch = 1, .size = 256}, search::DType::kFp32, search::DefaultDeviceProfile());
  v1::JobSpec spec = RandomSpec(/*trials=*/100, /*parallelism=*/8);
  spec.set_strategy(v1::STRATEGY_PRUNING);
  spec.mutable_budget()->set_bytes(start_peak / 3);
  spec.mutable_fidelity()->set_steps(40);
  *spec.mutable_pruning()->mutable_start_architecture() = proto::ToProto(*start);
  spec.mutable_pruning()->set_iterations(2);
  spec.mutable_pruning()->set_below_budget_iterations(1);
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->spec().pruning().finetune_steps(), 10) << "defaults filled in";
  EXPECT_EQ(job->spec().pruning().final_finetune_steps(), 40);
  EXPECT_EQ(job->counts().pending(), 1) << "only the start until it is trained";
  EXPECT_EQ(job->counts().over_budget_ancestors(), 1);

  const std::string worker = Worker();
  const v1::TrialAssignment root = Lease(worker);
  EXPECT_TRUE(root.parent_trial_id().empty());
  EXPECT_EQ(root.fidelity().steps(), 40);
  EXPECT_TRUE(root.export_model());
  auto waiting = coordinator_->LeaseTrial(worker);
  ASSERT_TRUE(waiting.ok());
  EXPECT_FALSE(waiting->has_value()) << "nothing else before the start's result";
  ASSERT_TRUE(coordinator_->ReportResult(Result(root, 30)).ok());
  EXPECT_EQ(coordinator_->GetFrontier(job->id())->points_size(), 0)
      << "an ancestor over the budget is never a frontier point";
  Reopen();  // the queued round survives a restart

  std::map<std::string, v1::TrialAssignment> by_trial = {{root.trial_id(), root}};
  std::string final_trial;
  for (int guard = 0; guard < 50; ++guard) {
    const std::vector<v1::TrialAssignment> round = LeaseAll(worker);
    if (round.empty()) break;
    for (const v1::TrialAssignment& a : round) {
      ASSERT_FALSE(a.parent_trial_id().empty()) << a.trial_id();
      ASSERT_TRUE(by_trial.contains(a.parent_trial_id())) << "the parent is a trained trial";
      EXPECT_EQ(a.importance(), v1::IMPORTANCE_L1);
      const v1::TrialAssignment& parent = by_trial.at(a.parent_trial_id());
      auto child_arch = proto::FromProto(a.architecture(), "a");
      auto parent_arch = proto::FromProto(parent.architecture(), "p");
      ASSERT_TRUE(child_arch.ok() && parent_arch.ok());
      EXPECT_TRUE(search::CanInherit(*parent_arch, *child_arch));
      by_trial[a.trial_id()] = a;
    }
    // Smaller children lose a little PSNR; the final fine-tune gains.
    for (const v1::TrialAssignment& a : round) {
      auto t = coordinator_->ListTrials(job->id());
      ASSERT_TRUE(t.ok());
      const auto it = std::find_if(t->begin(), t->end(),
                                   [&](const v1::Trial& x) { return x.id() == a.trial_id(); });
      ASSERT_NE(it, t->end());
      ASSERT_TRUE(it->has_lineage());
      if (it->lineage().role() == "final") {
        final_trial = a.trial_id();
        EXPECT_EQ(a.fidelity().steps(), 40);
      } else {
        EXPECT_EQ(a.fidelity().steps(), 10);
      }
      const double peak_fraction = static_cast<double>(it->predicted_inference_peak_bytes()) /
                                   static_cast<double>(start_peak);
      ASSERT_TRUE(coordinator_->ReportResult(Result(a, 28 + 2 * peak_fraction)).ok());
    }
  }
  EXPECT_FALSE(final_trial.empty()) << "the chain ends with a final fine-tune";
  const v1::Job done = JobNow(job->id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_GE(done.counts().succeeded(), 5);

  auto frontier = coordinator_->GetFrontier(job->id());
  ASSERT_TRUE(frontier.ok());
  ASSERT_GT(frontier->points_size(), 0);
  auto trials = coordinator_->ListTrials(job->id());
  ASSERT_TRUE(trials.ok());
  for (const v1::FrontierPoint& p : frontier->points()) {
    EXPECT_LE(p.peak_bytes(), spec.budget().bytes());
    const auto it = std::find_if(trials->begin(), trials->end(),
                                 [&](const v1::Trial& t) { return t.id() == p.trial_id(); });
    ASSERT_NE(it, trials->end());
    EXPECT_FALSE(it->lineage().over_budget());
    EXPECT_FALSE(it->lineage().parent_trial_id().empty()) << "frontier points inherited";
    auto arch = proto::FromProto(it->architecture(), "x");
    ASSERT_TRUE(arch.ok());
    EXPECT_EQ(it->arch_hash(), search::CanonicalHashHex(*arch))
        << "the message carries the architecture's hash, not the candidate's";
  }
}

}  // namespace
}  // namespace peaknas::server
