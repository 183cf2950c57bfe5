// /metrics' text, golden: every family with HELP and TYPE, every state present (zeros too),
// counts summed over jobs, and label values escaped.
#include "server/metrics.h"

#include <gtest/gtest.h>

namespace peaknas::server {
namespace {

v1::Job JobIn(v1::JobState state, int succeeded, int rejected, int running) {
  v1::Job job;
  job.set_state(state);
  job.mutable_counts()->set_succeeded(succeeded);
  job.mutable_counts()->set_rejected(rejected);
  job.mutable_counts()->set_running(running);
  return job;
}

TEST(Metrics, GoldenText) {
  MetricsSnapshot s;
  s.jobs = {JobIn(v1::JOB_STATE_RUNNING, 3, 5, 2), JobIn(v1::JOB_STATE_SUCCEEDED, 4, 1, 0),
            JobIn(v1::JOB_STATE_RUNNING, 0, 0, 1)};
  s.stats.commits = 12;
  s.stats.writes = 30;
  s.stats.failed_commits = 1;
  s.stats.candidates_rejected = 6;
  s.stats.leases_granted = 9;
  s.stats.lease_expiries = 1;
  s.stats.retries = 2;
  s.stats.trials_succeeded = 7;
  s.stats.trials_failed = 0;
  // Ratios 0.7 (<= 0.8), 0.85 and 0.9 (<= 0.9), 1.0 three times (<= 1), 1.02 (<= 1.05).
  for (double r : {0.7, 0.85, 0.9, 1.0, 1.0, 1.0, 1.02}) s.stats.peak_ratio.Observe(r);
  // A bound is its bucket's own (le: less or equal).
  s.stats.trial_seconds = Histogram({60, 600});
  for (double t : {30.0, 60.0, 100.0, 5000.0}) s.stats.trial_seconds.Observe(t);
  s.stats.queue_wait_seconds = Histogram({1});
  s.stats.queue_wait_seconds.Observe(0.25);
  s.stats.commit_seconds = Histogram({0.001, 0.01});
  for (double t : {0.0005, 0.004}) s.stats.commit_seconds.Observe(t);
  s.stats.commit_size = Histogram({1, 4});
  for (double n : {1.0, 3.0, 3.0}) s.stats.commit_size.Observe(n);
  s.stats.workers_online = 3;
  s.stats.workers_busy = 2;
  s.parked_calls = 7;
  EXPECT_EQ(PrometheusText(s),
            "# HELP peaknas_jobs Jobs by state.\n"
            "# TYPE peaknas_jobs gauge\n"
            "peaknas_jobs{state=\"pending\"} 0\n"
            "peaknas_jobs{state=\"running\"} 2\n"
            "peaknas_jobs{state=\"succeeded\"} 1\n"
            "peaknas_jobs{state=\"failed\"} 0\n"
            "peaknas_jobs{state=\"cancelled\"} 0\n"
            "# HELP peaknas_trials Trials of every job by state; rejected ones were refused by "
            "the cost model before any training.\n"
            "# TYPE peaknas_trials gauge\n"
            "peaknas_trials{state=\"pending\"} 0\n"
            "peaknas_trials{state=\"running\"} 3\n"
            "peaknas_trials{state=\"succeeded\"} 7\n"
            "peaknas_trials{state=\"failed\"} 0\n"
            "peaknas_trials{state=\"rejected\"} 6\n"
            "peaknas_trials{state=\"cancelled\"} 0\n"
            "# HELP peaknas_group_commits_total Store commits, each carrying every call that "
            "arrived during the previous one.\n"
            "# TYPE peaknas_group_commits_total counter\n"
            "peaknas_group_commits_total 12\n"
            "# HELP peaknas_group_commit_writes_total State-changing calls the committed groups "
            "carried.\n"
            "# TYPE peaknas_group_commit_writes_total counter\n"
            "peaknas_group_commit_writes_total 30\n"
            "# HELP peaknas_group_commit_failures_total Commits that failed (their calls "
            "failed, the state was reloaded).\n"
            "# TYPE peaknas_group_commit_failures_total counter\n"
            "peaknas_group_commit_failures_total 1\n"
            "# HELP peaknas_candidates_rejected_total Candidates the cost model refused before "
            "any training (over the budget).\n"
            "# TYPE peaknas_candidates_rejected_total counter\n"
            "peaknas_candidates_rejected_total 6\n"
            "# HELP peaknas_leases_granted_total Trials leased to workers.\n"
            "# TYPE peaknas_leases_granted_total counter\n"
            "peaknas_leases_granted_total 9\n"
            "# HELP peaknas_lease_expiries_total Leases whose deadline passed without a report.\n"
            "# TYPE peaknas_lease_expiries_total counter\n"
            "peaknas_lease_expiries_total 1\n"
            "# HELP peaknas_trial_retries_total Failed trials queued again (retryable failures).\n"
            "# TYPE peaknas_trial_retries_total counter\n"
            "peaknas_trial_retries_total 2\n"
            "# HELP peaknas_trials_finished_total Trials that ended, by outcome.\n"
            "# TYPE peaknas_trials_finished_total counter\n"
            "peaknas_trials_finished_total{outcome=\"succeeded\"} 7\n"
            "peaknas_trials_finished_total{outcome=\"failed\"} 0\n"
            "# HELP peaknas_queue_depth Trials admitted by the cost model and waiting for a "
            "worker.\n"
            "# TYPE peaknas_queue_depth gauge\n"
            "peaknas_queue_depth 0\n"
            "# HELP peaknas_workers_online Workers seen within one lease duration, or holding a "
            "lease.\n"
            "# TYPE peaknas_workers_online gauge\n"
            "peaknas_workers_online 3\n"
            "# HELP peaknas_workers_busy Workers holding a lease (running a trial).\n"
            "# TYPE peaknas_workers_busy gauge\n"
            "peaknas_workers_busy 2\n"
            "# HELP peaknas_trial_duration_seconds Seconds from a trial's lease to its worker's "
            "report (success or failure).\n"
            "# TYPE peaknas_trial_duration_seconds histogram\n"
            "peaknas_trial_duration_seconds_bucket{le=\"60\"} 2\n"
            "peaknas_trial_duration_seconds_bucket{le=\"600\"} 3\n"
            "peaknas_trial_duration_seconds_bucket{le=\"+Inf\"} 4\n"
            "peaknas_trial_duration_seconds_sum 5190\n"
            "peaknas_trial_duration_seconds_count 4\n"
            "# HELP peaknas_queue_wait_seconds Seconds a trial waited in the queue before a "
            "worker leased it.\n"
            "# TYPE peaknas_queue_wait_seconds histogram\n"
            "peaknas_queue_wait_seconds_bucket{le=\"1\"} 1\n"
            "peaknas_queue_wait_seconds_bucket{le=\"+Inf\"} 1\n"
            "peaknas_queue_wait_seconds_sum 0.25\n"
            "peaknas_queue_wait_seconds_count 1\n"
            "# HELP peaknas_group_commit_duration_seconds Seconds each group commit took at the "
            "store (with synchronous=FULL, its fsync).\n"
            "# TYPE peaknas_group_commit_duration_seconds histogram\n"
            "peaknas_group_commit_duration_seconds_bucket{le=\"0.001\"} 1\n"
            "peaknas_group_commit_duration_seconds_bucket{le=\"0.01\"} 2\n"
            "peaknas_group_commit_duration_seconds_bucket{le=\"+Inf\"} 2\n"
            "peaknas_group_commit_duration_seconds_sum 0.0045\n"
            "peaknas_group_commit_duration_seconds_count 2\n"
            "# HELP peaknas_group_commit_size State-changing calls each group commit carried.\n"
            "# TYPE peaknas_group_commit_size histogram\n"
            "peaknas_group_commit_size_bucket{le=\"1\"} 1\n"
            "peaknas_group_commit_size_bucket{le=\"4\"} 3\n"
            "peaknas_group_commit_size_bucket{le=\"+Inf\"} 3\n"
            "peaknas_group_commit_size_sum 7\n"
            "peaknas_group_commit_size_count 3\n"
            "# HELP peaknas_peak_measured_over_predicted Measured allocator peak over the cost "
            "model's prediction, per successful trial (the contract: at most 1).\n"
            "# TYPE peaknas_peak_measured_over_predicted histogram\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"0.5\"} 0\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"0.8\"} 1\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"0.9\"} 3\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"0.95\"} 3\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"1\"} 6\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"1.05\"} 7\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"1.1\"} 7\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"1.25\"} 7\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"1.5\"} 7\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"2\"} 7\n"
            "peaknas_peak_measured_over_predicted_bucket{le=\"+Inf\"} 7\n"
            "peaknas_peak_measured_over_predicted_sum 6.47\n"
            "peaknas_peak_measured_over_predicted_count 7\n"
            "# HELP peaknas_parked_calls Long-polling leases and event watches waiting now (no "
            "thread each).\n"
            "# TYPE peaknas_parked_calls gauge\n"
            "peaknas_parked_calls 7\n");
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("back\\slash"), "back\\\\slash");
  EXPECT_EQ(EscapeLabelValue("two\nlines"), "two\\nlines");
}

}  // namespace
}  // namespace peaknas::server
