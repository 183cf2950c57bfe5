#include "search/calibration.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace peaknas::search {

std::string_view Name(CalibratedPass pass) {
  return pass == CalibratedPass::kInference ? "inference" : "training";
}

StatusOr<CalibratedPass> ParseCalibratedPass(std::string_view name) {
  if (name == "inference") return CalibratedPass::kInference;
  if (name == "training") return CalibratedPass::kTraining;
  return Status::InvalidArgument("pass: \"" + std::string(name) +
                                 "\" is not one of inference, training");
}

std::int64_t CalibrationFit::Predict(std::int64_t predicted_bytes) const {
  const double line = overhead_bytes + slope * static_cast<double>(predicted_bytes);
  const auto bytes = static_cast<std::int64_t>(std::ceil(margin * line));
  return std::max(bytes, predicted_bytes);
}

StatusOr<CalibrationFit> FitCalibration(std::span<const CalibrationSample> samples) {
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].predicted_bytes <= 0 || samples[i].device_bytes <= 0) {
      return Status::InvalidArgument("samples[" + std::to_string(i) +
                                     "]: predicted and measured bytes must be positive");
    }
  }
  const int n = static_cast<int>(samples.size());
  if (n < kMinCalibrationSamples) {
    return Status::FailedPrecondition(std::to_string(n) + " sample" + (n == 1 ? "" : "s") +
                                      "; a calibration needs at least " +
                                      std::to_string(kMinCalibrationSamples));
  }
  // Weighted least squares of y = a + b x with weights 1/y^2 (relative residuals), in MiB so
  // that the sums stay well inside a double's precision.
  constexpr double kMiB = 1 << 20;
  double s = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const CalibrationSample& c : samples) {
    const double x = static_cast<double>(c.predicted_bytes) / kMiB;
    const double y = static_cast<double>(c.device_bytes) / kMiB;
    const double w = 1 / (y * y);
    s += w;
    sx += w * x;
    sy += w * y;
    sxx += w * x * x;
    sxy += w * x * y;
  }
  const double det = s * sxx - sx * sx;
  if (!(det > 1e-12 * s * sxx)) {
    return Status::FailedPrecondition(
        "every sample has the same predicted peak; a calibration needs several sizes");
  }
  CalibrationFit fit;
  fit.samples = n;
  fit.slope = (s * sxy - sx * sy) / det;
  fit.overhead_bytes = (sy - fit.slope * sx) / s * kMiB;

  std::vector<double> ratios;
  ratios.reserve(samples.size());
  for (const CalibrationSample& c : samples) {
    const double line = fit.overhead_bytes + fit.slope * static_cast<double>(c.predicted_bytes);
    if (!(line > 0)) {
      return Status::FailedPrecondition("the fitted line is not positive at a predicted peak of " +
                                        std::to_string(c.predicted_bytes) +
                                        " bytes; the samples do not follow a line");
    }
    ratios.push_back(static_cast<double>(c.device_bytes) / line);
  }
  std::sort(ratios.begin(), ratios.end());
  fit.min_ratio = ratios.front();
  fit.max_ratio = ratios.back();
  if (n < kSamplesForQuantile) {
    // The largest ratio of the population, estimated from the sample's range as for a uniform
    // distribution: max + (max - min) / (n - 1). With few samples the largest seen is likely
    // below it.
    fit.quantile = 1;
    fit.margin = std::max(1.0, fit.max_ratio + (fit.max_ratio - fit.min_ratio) / (n - 1));
  } else {
    fit.quantile = kCalibrationQuantile;
    const auto k = static_cast<std::size_t>(std::ceil(kCalibrationQuantile * n)) - 1;
    fit.margin = std::max(1.0, ratios[std::min(k, ratios.size() - 1)]);
  }
  return fit;
}

}  // namespace peaknas::search
