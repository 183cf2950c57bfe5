#include "storage/store.h"

#include <array>

namespace peaknas::storage {
namespace {

constexpr std::array<std::string_view, 5> kJobStateNames = {"pending", "running", "succeeded",
                                                            "failed", "cancelled"};
constexpr std::array<std::string_view, 5> kTrialStateNames = {"pending", "rejected", "leased",
                                                              "succeeded", "failed"};

}  // namespace

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
