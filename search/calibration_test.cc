#include "search/calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace peaknas::search {
namespace {

constexpr std::int64_t kMiB = 1 << 20;

// `n` samples of predicted peaks uniform in [1, 2000] MiB on the line overhead_mib + slope x,
// each measurement scaled by a factor uniform in [1 - noise, 1 + noise].
std::vector<CalibrationSample> NoisyLine(int n, std::uint64_t seed, double overhead_mib,
                                         double slope, double noise) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> size(1, 2000), factor(1 - noise, 1 + noise);
  std::vector<CalibrationSample> samples;
  for (int i = 0; i < n; ++i) {
    const double x = size(rng) * kMiB;
    samples.push_back({static_cast<std::int64_t>(x),
                       static_cast<std::int64_t>((overhead_mib * kMiB + slope * x) * factor(rng))});
  }
  return samples;
}

TEST(Calibration, SamplesOnALineGiveThatLineWithoutMargin) {
  std::vector<CalibrationSample> samples;
  for (std::int64_t x : {5, 20, 80, 300, 1000}) {
    samples.push_back({x * kMiB, 183 * kMiB + x * kMiB * 8 / 5});  // 183 MiB + 1.6 x
  }
  const auto fit = FitCalibration(samples);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_EQ(fit->samples, 5);
  EXPECT_NEAR(fit->overhead_bytes, 183.0 * kMiB, 1.0);
  EXPECT_NEAR(fit->slope, 1.6, 1e-9);
  EXPECT_NEAR(fit->margin, 1.0, 1e-9);
  EXPECT_NEAR(static_cast<double>(fit->Predict(400 * kMiB)),
              (183 + 640) * kMiB + kCalibrationResolutionBytes, 2.0);
}

// With fewer than kSamplesForQuantile samples the margin is the normal prediction bound of the
// ratios, above the largest: every sample is covered.
TEST(Calibration, FewSamplesAreAllCovered) {
  const std::vector<CalibrationSample> samples = NoisyLine(30, 7, 200, 1.3, 0.07);
  const auto fit = FitCalibration(samples);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  // Ratios uniform in about [0.93, 1.07]: sd 0.04, so mean + 2.462 x 0.04 x 1.017 ~ 1.10.
  EXPECT_NEAR(fit->margin, 1.10, 0.02);
  EXPECT_GT(fit->margin, fit->max_ratio);
  EXPECT_NEAR(fit->slope, 1.3, 0.1);
  double tightest = 2;
  for (const CalibrationSample& s : samples) {
    EXPECT_GE(fit->Predict(s.predicted_bytes), s.device_bytes);
    tightest = std::min(tightest, static_cast<double>(fit->Predict(s.predicted_bytes) -
                                                      kCalibrationResolutionBytes) /
                                      static_cast<double>(s.device_bytes));
  }
  EXPECT_NEAR(tightest, fit->margin / fit->max_ratio, 1e-6);
  EXPECT_EQ(fit->quantile, kCalibrationQuantile);
}

// From kSamplesForQuantile samples on, the margin is the 0.99 quantile: one outlier in a
// thousand does not set it.
TEST(Calibration, ManySamplesUseTheUpperQuantile) {
  std::vector<CalibrationSample> samples = NoisyLine(1000, 8, 150, 1.1, 0.03);
  samples[500].device_bytes *= 3;  // an outlier
  const auto fit = FitCalibration(samples);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_EQ(fit->quantile, kCalibrationQuantile);
  EXPECT_LT(fit->margin, 1.04);
  EXPECT_GT(fit->max_ratio, 2.5);
  int covered = 0;
  for (const CalibrationSample& s : samples)
    covered += fit->Predict(s.predicted_bytes) >= s.device_bytes;
  EXPECT_GE(covered, 990);
  EXPECT_LT(covered, 1000);
}

TEST(Calibration, PredictionIsNeverBelowTheAllocatorPeak) {
  std::vector<CalibrationSample> samples;
  for (std::int64_t x : {10, 20, 40, 80}) samples.push_back({x * kMiB, 100 * kMiB + x * kMiB / 2});
  const auto fit = FitCalibration(samples);
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_EQ(fit->Predict(100000 * kMiB), 100000 * kMiB);
}

TEST(Calibration, RefusesWhatCannotBeFitted) {
  const std::vector<CalibrationSample> three = {{1, 2}, {2, 3}, {3, 4}};
  EXPECT_EQ(FitCalibration(three).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(FitCalibration(three).status().message().find("at least 4"), std::string::npos);
  const std::vector<CalibrationSample> same = {
      {kMiB, 2 * kMiB}, {kMiB, 3 * kMiB}, {kMiB, 2 * kMiB}, {kMiB, 4 * kMiB}};
  EXPECT_EQ(FitCalibration(same).status().code(), StatusCode::kFailedPrecondition);
  const std::vector<CalibrationSample> bad = {{kMiB, kMiB}, {2 * kMiB, 0}, {3, 4}, {4, 5}};
  EXPECT_EQ(FitCalibration(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(FitCalibration(bad).status().message().find("samples[1]"), std::string::npos);
  EXPECT_EQ(ParseCalibratedPass("training").value(), CalibratedPass::kTraining);
  EXPECT_EQ(ParseCalibratedPass("trial").value(), CalibratedPass::kTrial);
  EXPECT_EQ(Name(CalibratedPass::kTrial), "trial");
  EXPECT_EQ(ParseCalibratedPass("train").status().code(), StatusCode::kInvalidArgument);
}

TEST(Calibration, LargestFittingIsTheInverseOfPredict) {
  const CalibrationFit fit{.samples = 10, .overhead_bytes = 1000, .slope = 1.5, .margin = 1.1};
  constexpr std::int64_t kRes = kCalibrationResolutionBytes;
  for (const std::int64_t device : {1102 + kRes, 5000 + kRes, std::int64_t{1} << 40}) {
    const std::int64_t largest = fit.LargestFitting(device);
    ASSERT_GT(largest, 0) << device;
    EXPECT_LE(fit.Predict(largest), device);
    EXPECT_GT(fit.Predict(largest + 1), device);
  }
  // One byte's prediction: ceil(1.1 x 1001.5) and the resolution.
  EXPECT_EQ(fit.LargestFitting(1101 + kRes), 0);
  EXPECT_EQ(fit.LargestFitting(0), 0);
}

}  // namespace
}  // namespace peaknas::search
