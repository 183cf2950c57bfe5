#include "worker/data/noise.h"

#include <gtest/gtest.h>

#include <cmath>

#include "worker/data/dead_leaves.h"

namespace peaknas::data {
namespace {

TEST(NoiseTest, SampledCamerasFollowThePaper) {
  Rng rng(5);
  double sxx = 0, sxy = 0, sx = 0, sy = 0;
  constexpr int kCount = 400;
  for (int i = 0; i < kCount; ++i) {
    const CameraModel cam = SampleCameraModel(rng);
    ASSERT_GE(cam.shot_noise, 1e-4 * 0.999999);
    ASSERT_LE(cam.shot_noise, 1.2e-2 * 1.000001);
    ASSERT_GE(cam.red_gain, 1.9);
    ASSERT_LE(cam.red_gain, 2.4);
    ASSERT_GE(cam.blue_gain, 1.5);
    ASSERT_LE(cam.blue_gain, 1.9);
    ASSERT_GE(cam.rgb_gain, 1.0 / 1.1 - 1e-12);
    ASSERT_LE(cam.rgb_gain, 2.0 + 1e-12);
    for (int r = 0; r < 3; ++r) {
      EXPECT_NEAR(cam.rgb2cam[r * 3] + cam.rgb2cam[r * 3 + 1] + cam.rgb2cam[r * 3 + 2], 1.0, 1e-12);
      for (int c = 0; c < 3; ++c) {
        double product = 0;
        for (int k = 0; k < 3; ++k) product += cam.cam2rgb[r * 3 + k] * cam.rgb2cam[k * 3 + c];
        EXPECT_NEAR(product, r == c ? 1.0 : 0.0, 1e-9);
      }
    }
    const double x = std::log(cam.shot_noise), y = std::log(cam.read_noise);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  // log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26²): the fitted line comes back.
  const double slope = (sxy - sx * sy / kCount) / (sxx - sx * sx / kCount);
  const double intercept = (sy - slope * sx) / kCount;
  EXPECT_NEAR(slope, 2.18, 0.05);
  EXPECT_NEAR(intercept, 1.20, 0.3);
}

TEST(NoiseTest, RawNoiseIsHeteroscedastic) {
  CameraModel cam;
  cam.shot_noise = 0.01;
  cam.read_noise = 1e-4;
  Rng rng(9);
  double previous = 0.0;
  for (const float level : {0.02f, 0.1f, 0.3f, 0.8f}) {
    ImageF raw(128, 128);
    std::fill(raw.rgb.begin(), raw.rgb.end(), level);
    AddShotReadNoise(cam, rng, &raw);
    double sum = 0, sum2 = 0;
    for (float v : raw.rgb) {
      sum += v - level;
      sum2 += (v - level) * (v - level);
    }
    const double n = static_cast<double>(raw.rgb.size());
    const double mean = sum / n, variance = sum2 / n - mean * mean;
    const double expected = cam.shot_noise * level + cam.read_noise;
    EXPECT_NEAR(mean, 0.0, 4 * std::sqrt(expected / n)) << "level " << level;
    EXPECT_NEAR(variance, expected, 0.05 * expected) << "level " << level;
    EXPECT_GT(variance, previous) << "variance must grow with brightness";
    previous = variance;
  }
}

TEST(NoiseTest, UnprocessThenProcessIsNearlyIdentityForGreys) {
  Rng rng(3);
  const CameraModel cam = SampleCameraModel(rng);
  ImageF grey(64, 1);
  for (int x = 0; x < 64; ++x) {
    for (int c = 0; c < 3; ++c) grey.rgb[x * 3 + c] = 0.05f + 0.75f * x / 63.0f;
  }
  const ImageF raw = Unprocess(grey, cam);
  for (float v : raw.rgb) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
  }
  const ImageF back = Process(raw, cam);
  for (std::size_t i = 0; i < grey.rgb.size(); ++i) EXPECT_NEAR(back.rgb[i], grey.rgb[i], 1e-4);
}

TEST(NoiseTest, SimulatedCaptureIsSeededAndNoisier) {
  const Image clean = DeadLeavesImage(64, 64, 1);
  Rng cam_rng(4);
  CameraModel cam = SampleCameraModel(cam_rng);
  Rng r1(10), r2(10), r3(11);
  const NoisyPair a = SimulateCapture(clean, cam, r1);
  const NoisyPair b = SimulateCapture(clean, cam, r2);
  const NoisyPair c = SimulateCapture(clean, cam, r3);
  EXPECT_EQ(a.noisy.rgb, b.noisy.rgb);
  EXPECT_EQ(a.clean.rgb, c.clean.rgb);
  EXPECT_NE(a.noisy.rgb, c.noisy.rgb);
  // The processed clean image is close to the source (clipping aside).
  double source_error = 0;
  for (std::size_t i = 0; i < clean.rgb.size(); ++i) {
    source_error += std::abs(static_cast<int>(clean.rgb[i]) - a.clean.rgb[i]);
  }
  EXPECT_LT(source_error / clean.rgb.size(), 3.0);
  // More shot noise, more sRGB error.
  auto mean_abs_error = [&](double shot) {
    CameraModel k = cam;
    k.shot_noise = shot;
    k.read_noise = std::exp(2.18 * std::log(shot) + 1.20);
    Rng rng(12);
    const NoisyPair pair = SimulateCapture(clean, k, rng);
    double e = 0;
    for (std::size_t i = 0; i < clean.rgb.size(); ++i) {
      e += std::abs(static_cast<int>(pair.noisy.rgb[i]) - pair.clean.rgb[i]);
    }
    return e / clean.rgb.size();
  };
  const double low = mean_abs_error(1e-4), high = mean_abs_error(1e-2);
  EXPECT_GT(low, 0.2);
  EXPECT_GT(high, 3 * low);
}

}  // namespace
}  // namespace peaknas::data
