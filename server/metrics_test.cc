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
  s.stats = {.commits = 12, .writes = 30, .failed_commits = 1, .waiting_for_commit = 0};
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
