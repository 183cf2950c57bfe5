#include "storage/store.h"

#include <array>
#include <charconv>
#include <string>

namespace peaknas::storage {
namespace {

constexpr std::array<std::string_view, 5> kJobStateNames = {"pending", "running", "succeeded",
                                                            "failed", "cancelled"};
constexpr std::array<std::string_view, 5> kTrialStateNames = {"pending", "rejected", "leased",
                                                              "succeeded", "failed"};

}  // namespace

std::string LeaseId(std::int64_t trial_id, std::int64_t fencing_token) {
  return std::to_string(trial_id) + "." + std::to_string(fencing_token);
}

std::optional<std::int64_t> LeaseTrialId(std::string_view lease_id) {
  const std::size_t dot = lease_id.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  std::int64_t value = 0;
  const char* end = lease_id.data() + dot;
  auto [ptr, ec] = std::from_chars(lease_id.data(), end, value);
  if (ec != std::errc() || ptr != end || value <= 0) return std::nullopt;
  return value;
}

std::string_view Name(JobState state) { return kJobStateNames[static_cast<int>(state)]; }
std::string_view Name(TrialState state) { return kTrialStateNames[static_cast<int>(state)]; }

StatusOr<JobState> ParseJobState(std::string_view name) {
  for (std::size_t i = 0; i < kJobStateNames.size(); ++i) {
    if (kJobStateNames[i] == name) return static_cast<JobState>(i);
  }
  return Status::InvalidArgument("job state: unknown '" + std::string(name) + "'");
}
StatusOr<TrialState> ParseTrialState(std::string_view name) {
  for (std::size_t i = 0; i < kTrialStateNames.size(); ++i) {
    if (kTrialStateNames[i] == name) return static_cast<TrialState>(i);
  }
  return Status::InvalidArgument("trial state: unknown '" + std::string(name) + "'");
}

}  // namespace peaknas::storage
