// Conversions between peaknas.v1 messages and the search/ domain types, and the validation of
// a submitted JobSpec (DESIGN.md, "Protocol"). This is the one place that
// converts messages: server/, worker/ and cli/ call these functions, never read fields by hand.
//
// Errors are INVALID_ARGUMENT whose message starts with the proto field path, rooted at the
// `field` argument, and names the allowed values, e.g.
//   "spec.space.width.min: 600 is not a multiple of 8 in [8, 512]"
//   "spec.base_architecture.skip: unspecified; allowed: CONCAT, ADD"
//   "spec.budget.bytes: 1024 B is below the smallest architecture of the space (...)"
// Domain -> message conversions cannot fail (domain values are valid by construction or are
// checked by search::Validate before they are stored).
//
// Thread-safety: pure functions of their arguments.
#ifndef PEAKNAS_PROTO_CONVERT_H_
#define PEAKNAS_PROTO_CONVERT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"
#include "peaknas/v1/peaknas.pb.h"
#include "search/architecture.h"
#include "search/budget.h"
#include "search/calibration.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/lineage.h"
#include "search/space.h"
#include "search/trial_metrics.h"

namespace peaknas::proto {

// --- Kinds and dtypes. FromProto refuses UNSPECIFIED and unknown numbers, naming `field`.
v1::SkipKind ToProto(search::SkipKind kind);
v1::UpsampleKind ToProto(search::UpsampleKind kind);
v1::DownsampleKind ToProto(search::DownsampleKind kind);
v1::ActivationKind ToProto(search::ActivationKind kind);
StatusOr<search::SkipKind> FromProto(v1::SkipKind kind, std::string_view field);
StatusOr<search::UpsampleKind> FromProto(v1::UpsampleKind kind, std::string_view field);
StatusOr<search::DownsampleKind> FromProto(v1::DownsampleKind kind, std::string_view field);
StatusOr<search::ActivationKind> FromProto(v1::ActivationKind kind, std::string_view field);

v1::DType ToProto(search::DType dtype);
// DTYPE_UNSPECIFIED is fp32 (the protocol's default); unknown numbers are refused.
StatusOr<search::DType> FromProto(v1::DType dtype, std::string_view field);

// --- Architecture. FromProto checks list lengths against `levels`, the kinds, and then
// search::Validate (its field names prefixed with `field`, e.g.
// "spec.base_architecture.widths[2]").
v1::Architecture ToProto(const search::Architecture& arch);
StatusOr<search::Architecture> FromProto(const v1::Architecture& message,
                                         std::string_view field = "architecture");

// --- SearchSpace. Unset ranges take the family's full range and empty kind lists mean every
// kind; ToProto writes every range and list explicitly, so FromProto(ToProto(s)) == s.
v1::SearchSpace ToProto(const search::SearchSpace& space);
StatusOr<search::SearchSpace> FromProto(const v1::SearchSpace& message,
                                        std::string_view field = "space");

// --- Ids on the wire: "j-12", "t-345", "w-6" for the job, trial and worker with that number.
std::string JobId(std::int64_t id);
std::string TrialId(std::int64_t id);
std::string WorkerId(std::int64_t id);
// The number of an id with `prefix` ("j-", "t-", "w-"); nullopt when malformed or not > 0.
std::optional<std::int64_t> ParseId(std::string_view id, std::string_view prefix);

// --- A trial's measurements, as a worker reports them (latency_100mp_s derived).
v1::TrialMetrics ToProto(const search::TrialMetrics& metrics);

// --- Lineage. The parent is named by its trial id ("t-3"); FromProto refuses a malformed one,
// naming `field`.
v1::Lineage ToProto(const search::Lineage& lineage);
StatusOr<search::Lineage> FromProto(const v1::Lineage& message, std::string_view field);

// --- Budget (search/budget.h), with its defaults resolved and its device profile found.
// Resolves spec.budget and spec.device_profile (defaults: batch 1, tile 256, train batch 8,
// patch 64, fp32, profile "cpu"). Checks bytes >= 1, the mode, shapes within [1, 4096] and
// [8, 16384] and the dtype; shapes are checked against an architecture's levels only by
// ValidateJobSpec (which knows the space). `field` is the JobSpec's path ("spec").
StatusOr<search::Budget> BudgetFromProto(const v1::JobSpec& spec, std::string_view field = "spec");

// --- Resolved spec: `spec` (valid, ValidateJobSpec) with every default written in
// (search/job_defaults.h), as the coordinator stores it and the Job message shows it: the
// budget's shapes, dtype and device profile from `budget` (BudgetFromProto), the fidelity's
// steps, batch, patch and learning rate, evolution's population, random and evolution's
// sampling (stratified), scaling's alpha, inherit (true for scaling, false for evolution), and
// pruning's options.
v1::JobSpec ResolveJobSpec(v1::JobSpec spec, const search::Budget& budget);

// --- JobSpec. OK, or INVALID_ARGUMENT naming the first offending field (rooted at `field`)
// and its allowed range. Checks, in order: strategy (required, known); budget (bytes >= 1,
// mode, shapes, dtype, device profile); space (ranges within the family and not inverted,
// width ends multiples of 8, kinds known and not repeated); tile and patch valid for the
// space's deepest level count; trials in [1, 100000]; parallelism in [1, 1024]; population;
// scaling alpha; fidelity (steps, batch, patch, learning rate); dataset name; base
// architecture (required for scaling and inside the space, refused for other strategies);
// finally that the cheapest architecture of the space — fewest blocks, narrowest widths, over
// every allowed level count and kind — fits the budget, else "<field>.budget.bytes" with the
// smallest feasible figure.
Status ValidateJobSpec(const v1::JobSpec& spec, std::string_view field = "spec");

// The largest byte figure the protocol takes (1 PiB): reported peaks, device budgets.
inline constexpr std::int64_t kMaxBytes = std::int64_t{1} << 50;

// What a worker reports is checked before anything is stored: every floating-point figure
// finite; PSNRs in [0, 150] dB (a PSNR of 1000 dB is no measurement); SSIMs in [-1, 1];
// losses, durations, rates and latencies >= 0; byte figures, parameters, MACs, steps, blocks
// and threads >= 0 and bytes at most 2^50 (1 PiB); the device and profile names at most 200
// characters. INVALID_ARGUMENT naming "<field>.<name>", the value and the allowed range.
Status ValidateTrialMetrics(const v1::TrialMetrics& metrics, std::string_view field = "metrics");

// --- Calibration fits (search/calibration.h). The message's `unfitted` and a zero `samples`
// are for the caller to check first: FromProto copies the figures as they are.
v1::CalibrationFit ToProto(const search::CalibrationFit& fit);
search::CalibrationFit FromProto(const v1::CalibrationFit& fit);

// The calibration's message for `pass` (its inference, training or trial field).
const v1::CalibrationFit& PassFit(const v1::Calibration& calibration, search::CalibratedPass pass);
// The calibration's fit of `pass`, when it has one (fitted, on samples); nullopt otherwise.
std::optional<search::CalibrationFit> FittedPass(const v1::Calibration& calibration,
                                                 search::CalibratedPass pass);

// The newest (by `updated`) calibration of `device_profile` among `calibrations` that
// `accept(calibration)` takes; nullptr when there is none.
template <typename Calibrations, typename Accept>
const v1::Calibration* NewestCalibration(const Calibrations& calibrations,
                                         std::string_view device_profile, Accept&& accept) {
  const v1::Calibration* newest = nullptr;
  for (const v1::Calibration& c : calibrations) {
    if (c.device_profile() != device_profile || !accept(c)) continue;
    if (newest == nullptr ||
        std::make_pair(c.updated().seconds(), c.updated().nanos()) >
            std::make_pair(newest->updated().seconds(), newest->updated().nanos())) {
      newest = &c;
    }
  }
  return newest;
}

}  // namespace peaknas::proto

#endif  // PEAKNAS_PROTO_CONVERT_H_
