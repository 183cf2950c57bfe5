// Device calibration: from the cost model's allocator peak to the peak the device or the OS
// sees for the same pass (docs/cost-model.md, "What the allocator does not see").
//
// The cost model predicts the bytes of live tensors in the framework's allocator, exactly on
// CPU. A process needs more: the framework's code and thread pools (or the CUDA context), the
// heap or cached blocks it keeps between passes, fragmentation. Workers measure that figure
// for every trial they run (search::TrialMetrics' process_*_peak_bytes); a calibration is a
// line fitted through those measurements, per device kind and framework version:
//
//     device peak  ~=  margin x (overhead + slope x predicted allocator peak)
//
// The line is fitted by least squares on relative errors (every sample's residual divided by
// its measurement), so small and large networks count alike. The margin makes the prediction
// an upper bound on the measured / line ratio of a network the fit has not seen, at a coverage
// of kCalibrationQuantile: while there are fewer than kSamplesForQuantile samples, the
// one-sided prediction bound of a normal sample of ratios (mean + t(0.99, n-1) x sd x
// sqrt(1 + 1/n), which is wide while n is small: conservative until there are enough), then
// the ratios' empirical 0.99 quantile; never below the largest ratio while n is small. A
// prediction for a network the fit has not seen is held to
//     measured <= predicted <= 1.15 x measured
// (worker/calibration_test.cc, bench/process_peaks.py).
//
// Thread-safety: pure functions and plain values.
#ifndef PEAKNAS_SEARCH_CALIBRATION_H_
#define PEAKNAS_SEARCH_CALIBRATION_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "base/status.h"

namespace peaknas::search {

// Which pass a calibration sample measures: one inference, one training step, or a whole
// trial (its process over its life, against the larger of its two passes' predictions: what a
// worker packing trials reserves; the trial's heap keeps freed memory for speed, so it holds
// more than its passes measured alone).
enum class CalibratedPass : std::uint8_t { kInference, kTraining, kTrial };
std::string_view Name(CalibratedPass pass);  // "inference", "training", "trial"
StatusOr<CalibratedPass> ParseCalibratedPass(std::string_view name);

struct CalibrationSample {
  std::int64_t predicted_bytes = 0;  // the cost model's allocator peak (> 0)
  std::int64_t device_bytes = 0;     // what the device or the process measured (> 0)
};

inline constexpr int kMinCalibrationSamples = 4;
inline constexpr int kSamplesForQuantile = 100;
inline constexpr double kCalibrationQuantile = 0.99;
// Added to every prediction: a process's resident set is counted in pages, and the same pass
// of the same network lands a few pages apart from one run to the next; a margin fitted on
// nearly equal ratios (about 0.2 % for the training step on CPU) would otherwise miss a held-out
// network by that much.
inline constexpr std::int64_t kCalibrationResolutionBytes = std::int64_t{1} << 20;

struct CalibrationFit {
  int samples = 0;
  double overhead_bytes = 0;
  double slope = 0;
  double margin = 1;     // >= 1; see the top of this file
  double quantile = 0;   // the coverage `margin` aims at (kCalibrationQuantile)
  double min_ratio = 0;  // measured / line over the samples: the spread of the fit
  double max_ratio = 0;

  // margin x (overhead + slope x predicted_bytes), rounded up, plus
  // kCalibrationResolutionBytes; at least predicted_bytes (a process holds at least what its
  // allocator does).
  std::int64_t Predict(std::int64_t predicted_bytes) const;
  // The largest allocator peak whose Predict is at most `device_bytes`, 0 when there is none
  // (Predict grows with the allocator peak when slope > 0; callers check that).
  std::int64_t LargestFitting(std::int64_t device_bytes) const;
};

// INVALID_ARGUMENT for a sample with a non-positive figure (naming its index);
// FAILED_PRECONDITION for fewer than kMinCalibrationSamples samples, for samples whose
// predictions are all equal (the slope is unknown), or for a line that is not positive at
// every sample.
StatusOr<CalibrationFit> FitCalibration(std::span<const CalibrationSample> samples);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_CALIBRATION_H_
