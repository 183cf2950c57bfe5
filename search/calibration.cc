#include "search/calibration.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "base/enum_names.h"

namespace peaknas::search {

namespace {

// The 0.99 quantile of Student's t distribution with `df` (>= 1) degrees of freedom: tabulated
// to 30, then the Cornish-Fisher expansion around the normal quantile (within 0.001 there).
double StudentT99(int df) {
  static constexpr double kTable[] = {31.821, 6.965, 4.541, 3.747, 3.365, 3.143, 2.998, 2.896,
                                      2.821,  2.764, 2.718, 2.681, 2.650, 2.624, 2.602, 2.583,
                                      2.567,  2.552, 2.539, 2.528, 2.518, 2.508, 2.500, 2.492,
                                      2.485,  2.479, 2.473, 2.467, 2.462, 2.457};
  if (df <= 30) return kTable[std::max(df, 1) - 1];
  const double z = 2.326348, v = df;
  const double z3 = z * z * z, z5 = z3 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v);
}

constexpr EnumNames<CalibratedPass, 3> kPassNames{{{{CalibratedPass::kInference, "inference"},
                                                    {CalibratedPass::kTraining, "training"},
                                                    {CalibratedPass::kTrial, "trial"}}}};

}  // namespace

std::string_view Name(CalibratedPass pass) { return kPassNames.Name(pass, "inference"); }

StatusOr<CalibratedPass> ParseCalibratedPass(std::string_view name) {
  if (const std::optional<CalibratedPass> pass = kPassNames.Find(name)) return *pass;
  return Status::InvalidArgument("pass: \"" + std::string(name) + "\" is not one of " +
                                 kPassNames.List());
}

std::int64_t CalibrationFit::Predict(std::int64_t predicted_bytes) const {
  const double line = overhead_bytes + slope * static_cast<double>(predicted_bytes);
  const auto bytes =
      static_cast<std::int64_t>(std::ceil(margin * line)) + kCalibrationResolutionBytes;
  return std::max(bytes, predicted_bytes);
}

std::int64_t CalibrationFit::LargestFitting(std::int64_t device_bytes) const {
  std::int64_t lo = 0, hi = std::max<std::int64_t>(device_bytes, 0);
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo + 1) / 2;
    if (Predict(mid) <= device_bytes) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
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
  fit.quantile = kCalibrationQuantile;
  if (n < kSamplesForQuantile) {
    // The one-sided prediction bound of a normal sample: a new ratio stays below it with
    // probability kCalibrationQuantile. Never below the largest ratio seen.
    double mean = 0;
    for (double r : ratios) mean += r;
    mean /= n;
    double ss = 0;
    for (double r : ratios) ss += (r - mean) * (r - mean);
    const double sd = std::sqrt(ss / (n - 1));
    const double bound = mean + StudentT99(n - 1) * sd * std::sqrt(1 + 1.0 / n);
    fit.margin = std::max({1.0, fit.max_ratio, bound});
  } else {
    const auto k = static_cast<std::size_t>(std::ceil(kCalibrationQuantile * n)) - 1;
    fit.margin = std::max(1.0, ratios[std::min(k, ratios.size() - 1)]);
  }
  return fit;
}

}  // namespace peaknas::search
