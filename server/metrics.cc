#include "server/metrics.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace peaknas::server {
namespace {

void Family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, std::string_view name, std::string_view label, std::string_view value,
            std::int64_t number) {
  out += name;
  if (!label.empty()) {
    out += '{';
    out += label;
    out += "=\"";
    out += EscapeLabelValue(value);
    out += "\"}";
  }
  out += ' ';
  out += std::to_string(number);
  out += '\n';
}

// A number to 9 significant digits (bounds print as written: 0.001, 60).
std::string Number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

void WriteHistogram(std::string& out, std::string_view name, std::string_view help,
                    const Histogram& h) {
  Family(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  std::int64_t cumulative = 0;
  for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    Sample(out, bucket, "le", i < h.bounds.size() ? Number(h.bounds[i]) : "+Inf", cumulative);
  }
  out += std::string(name) + "_sum " + Number(h.sum) + "\n";
  Sample(out, std::string(name) + "_count", "", "", cumulative);
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PrometheusText(const MetricsSnapshot& s) {
  // Every state is written, zeros included: a series that disappears reads as "no data".
  constexpr std::array<std::pair<v1::JobState, std::string_view>, 5> kJobStates = {{
      {v1::JOB_STATE_PENDING, "pending"},
      {v1::JOB_STATE_RUNNING, "running"},
      {v1::JOB_STATE_SUCCEEDED, "succeeded"},
      {v1::JOB_STATE_FAILED, "failed"},
      {v1::JOB_STATE_CANCELLED, "cancelled"},
  }};
  std::array<std::int64_t, kJobStates.size()> jobs{};
  std::int64_t pending = 0, running = 0, succeeded = 0, failed = 0, rejected = 0, cancelled = 0;
  for (const v1::Job& job : s.jobs) {
    for (std::size_t i = 0; i < kJobStates.size(); ++i) {
      if (job.state() == kJobStates[i].first) ++jobs[i];
    }
    const v1::TrialCounts& c = job.counts();
    pending += c.pending();
    running += c.running();
    succeeded += c.succeeded();
    failed += c.failed();
    rejected += c.rejected();
    cancelled += c.cancelled();
  }
  std::string out;
  Family(out, "peaknas_jobs", "gauge", "Jobs by state.");
  for (std::size_t i = 0; i < kJobStates.size(); ++i) {
    Sample(out, "peaknas_jobs", "state", kJobStates[i].second, jobs[i]);
  }
  Family(out, "peaknas_trials", "gauge",
         "Trials of every job by state; rejected ones were refused by the cost model before "
         "any training.");
  for (const auto& [state, n] : std::array<std::pair<std::string_view, std::int64_t>, 6>{{
           {"pending", pending},
           {"running", running},
           {"succeeded", succeeded},
           {"failed", failed},
           {"rejected", rejected},
           {"cancelled", cancelled},
       }}) {
    Sample(out, "peaknas_trials", "state", state, n);
  }
  Family(out, "peaknas_group_commits_total", "counter",
         "Store commits, each carrying every call that arrived during the previous one.");
  Sample(out, "peaknas_group_commits_total", "", "", s.stats.commits);
  Family(out, "peaknas_group_commit_writes_total", "counter",
         "State-changing calls the committed groups carried.");
  Sample(out, "peaknas_group_commit_writes_total", "", "", s.stats.writes);
  Family(out, "peaknas_group_commit_failures_total", "counter",
         "Commits that failed (their calls failed, the state was reloaded).");
  Sample(out, "peaknas_group_commit_failures_total", "", "", s.stats.failed_commits);
  const auto counter = [&](std::string_view name, std::string_view help, std::int64_t value) {
    Family(out, name, "counter", help);
    Sample(out, name, "", "", value);
  };
  counter("peaknas_candidates_rejected_total",
          "Candidates the cost model refused before any training (over the budget).",
          s.stats.candidates_rejected);
  counter("peaknas_leases_granted_total", "Trials leased to workers.", s.stats.leases_granted);
  counter("peaknas_lease_expiries_total", "Leases whose deadline passed without a report.",
          s.stats.lease_expiries);
  counter("peaknas_trial_retries_total", "Failed trials queued again (retryable failures).",
          s.stats.retries);
  Family(out, "peaknas_trials_finished_total", "counter", "Trials that ended, by outcome.");
  Sample(out, "peaknas_trials_finished_total", "outcome", "succeeded", s.stats.trials_succeeded);
  Sample(out, "peaknas_trials_finished_total", "outcome", "failed", s.stats.trials_failed);
  Family(out, "peaknas_queue_depth", "gauge",
         "Trials admitted by the cost model and waiting for a worker.");
  Sample(out, "peaknas_queue_depth", "", "", pending);
  Family(out, "peaknas_workers_online", "gauge",
         "Workers seen within one lease duration, or holding a lease.");
  Sample(out, "peaknas_workers_online", "", "", s.stats.workers_online);
  Family(out, "peaknas_workers_busy", "gauge", "Workers holding a lease (running a trial).");
  Sample(out, "peaknas_workers_busy", "", "", s.stats.workers_busy);
  WriteHistogram(out, "peaknas_trial_duration_seconds",
                 "Seconds from a trial's lease to its worker's report (success or failure).",
                 s.stats.trial_seconds);
  WriteHistogram(out, "peaknas_queue_wait_seconds",
                 "Seconds a trial waited in the queue before a worker leased it.",
                 s.stats.queue_wait_seconds);
  WriteHistogram(out, "peaknas_group_commit_duration_seconds",
                 "Seconds each group commit took at the store (with synchronous=FULL, its fsync).",
                 s.stats.commit_seconds);
  WriteHistogram(out, "peaknas_group_commit_size",
                 "State-changing calls each group commit carried.", s.stats.commit_size);
  // The cost model in production: measured over predicted inference peak, per report.
  WriteHistogram(out, "peaknas_peak_measured_over_predicted",
                 "Measured allocator peak over the cost model's prediction, per successful trial "
                 "(the contract: at most 1).",
                 s.stats.peak_ratio);
  Family(out, "peaknas_parked_calls", "gauge",
         "Long-polling leases and event watches waiting now (no thread each).");
  Sample(out, "peaknas_parked_calls", "", "", static_cast<std::int64_t>(s.parked_calls));
  return out;
}

}  // namespace peaknas::server
