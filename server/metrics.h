// What /metrics says (Prometheus text exposition format 0.0.4): the coordinator's jobs and
// trials by state (a state is a label, never an id), the group commit's counters and the calls
// parked now. Pure: a snapshot in, text out, so the text is tested without a server.
//
// Thread-safety: pure functions.
#ifndef PEAKNAS_SERVER_METRICS_H_
#define PEAKNAS_SERVER_METRICS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "peaknas/v1/peaknas.pb.h"
#include "server/coordinator.h"

namespace peaknas::server {

struct MetricsSnapshot {
  std::vector<v1::Job> jobs;  // every job, with its trial counts
  CoordinatorStats stats;
  std::size_t parked_calls = 0;
};

std::string PrometheusText(const MetricsSnapshot& snapshot);

// A label value as the format wants it: backslash, double quote and line feed escaped.
std::string EscapeLabelValue(std::string_view value);

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_METRICS_H_
