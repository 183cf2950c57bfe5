#include "worker/data/noise.h"

#include <algorithm>
#include <cassert>
#include <cstddef>

namespace peaknas::data {
namespace {

using Mat3 = std::array<double, 9>;

// XYZ → camera matrices of four cameras, from unprocess.py random_ccm() (Brooks et al.).
constexpr std::array<Mat3, 4> kXyzToCams = {{
    {1.0234, -0.2969, -0.2266, -0.5625, 1.6328, -0.0469, -0.0703, 0.2188, 0.6406},
    {0.4913, -0.0541, -0.0202, -0.613, 1.3513, 0.2906, -0.1564, 0.2151, 0.7183},
    {0.838, -0.263, -0.0639, -0.2887, 1.0725, 0.2496, -0.0627, 0.1427, 0.5438},
    {0.6596, -0.2079, -0.0562, -0.4782, 1.3016, 0.1933, -0.097, 0.1581, 0.5181},
}};

// Linear sRGB (D65) → XYZ, as in unprocess.py.
constexpr Mat3 kRgbToXyz = {0.4124564, 0.3575761, 0.1804375, 0.2126729, 0.7151522,
                            0.0721750, 0.0193339, 0.1191920, 0.9503041};

Mat3 Multiply(const Mat3& a, const Mat3& b) {
  Mat3 c{};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 3; ++k) c[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
    }
  }
  return c;
}

Mat3 Inverse(const Mat3& m) {
  const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                     m[2] * (m[3] * m[7] - m[4] * m[6]);
  assert(det != 0.0);
  const double inv = 1.0 / det;
  return {(m[4] * m[8] - m[5] * m[7]) * inv, (m[2] * m[7] - m[1] * m[8]) * inv,
          (m[1] * m[5] - m[2] * m[4]) * inv, (m[5] * m[6] - m[3] * m[8]) * inv,
          (m[0] * m[8] - m[2] * m[6]) * inv, (m[2] * m[3] - m[0] * m[5]) * inv,
          (m[3] * m[7] - m[4] * m[6]) * inv, (m[1] * m[6] - m[0] * m[7]) * inv,
          (m[0] * m[4] - m[1] * m[3]) * inv};
}

void ApplyMatrix(const Mat3& m, float* rgb) {
  const double r = rgb[0], g = rgb[1], b = rgb[2];
  rgb[0] = static_cast<float>(m[0] * r + m[1] * g + m[2] * b);
  rgb[1] = static_cast<float>(m[3] * r + m[4] * g + m[5] * b);
  rgb[2] = static_cast<float>(m[6] * r + m[7] * g + m[8] * b);
}

float Clip01(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }

}  // namespace

CameraModel SampleCameraModel(Rng& rng, const NoiseOptions& options) {
  CameraModel camera;
  // random_ccm(): a random convex combination of the four XYZ→camera matrices (weights
  // U(1e-8, 1e8)), times RGB→XYZ, rows normalized to sum to 1.
  Mat3 xyz2cam{};
  double weight_sum = 0.0;
  for (const Mat3& m : kXyzToCams) {
    const double w = rng.Uniform(1e-8, 1e8);
    weight_sum += w;
    for (int i = 0; i < 9; ++i) xyz2cam[i] += w * m[i];
  }
  for (double& v : xyz2cam) v /= weight_sum;
  Mat3 rgb2cam = Multiply(xyz2cam, kRgbToXyz);
  for (int row = 0; row < 3; ++row) {
    const double sum = rgb2cam[row * 3] + rgb2cam[row * 3 + 1] + rgb2cam[row * 3 + 2];
    for (int col = 0; col < 3; ++col) rgb2cam[row * 3 + col] /= sum;
  }
  camera.rgb2cam = rgb2cam;
  camera.cam2rgb = Inverse(rgb2cam);
  // random_gains(): rgb_gain = 1 / N(0.8, 0.1); red U(1.9, 2.4); blue U(1.5, 1.9).
  camera.rgb_gain = 1.0 / std::clamp(rng.Normal(0.8, 0.1), 0.5, 1.1);
  camera.red_gain = rng.Uniform(1.9, 2.4);
  camera.blue_gain = rng.Uniform(1.5, 1.9);
  // random_noise_levels().
  const double log_shot = rng.Uniform(options.log_shot_min, options.log_shot_max);
  const double log_read =
      options.read_slope * log_shot + options.read_intercept + rng.Normal(0.0, options.read_stddev);
  camera.shot_noise = std::exp(log_shot);
  camera.read_noise = std::exp(log_read);
  return camera;
}

ImageF Unprocess(const ImageF& srgb, const CameraModel& camera) {
  ImageF raw = srgb;
  // safe_invert_gains(): gains = [1/red, 1, 1/blue] / rgb_gain, pulled towards 1 near white
  // so saturated pixels are not dimmed.
  const double gains[3] = {1.0 / camera.red_gain / camera.rgb_gain, 1.0 / camera.rgb_gain,
                           1.0 / camera.blue_gain / camera.rgb_gain};
  constexpr double kInflection = 0.9;
  const std::size_t n = raw.num_pixels();
  for (std::size_t p = 0; p < n; ++p) {
    float* px = &raw.rgb[p * 3];
    for (int c = 0; c < 3; ++c) {
      // inverse_smoothstep(), then gamma_expansion() with gamma 2.2.
      const double y = Clip01(px[c]);
      const double linear = 0.5 - std::sin(std::asin(1.0 - 2.0 * y) / 3.0);
      px[c] = static_cast<float>(std::pow(std::max(linear, 1e-8), 2.2));
    }
    ApplyMatrix(camera.rgb2cam, px);  // apply_ccm(image, rgb2cam)
    const double gray = (static_cast<double>(px[0]) + px[1] + px[2]) / 3.0;
    const double t = std::max(gray - kInflection, 0.0) / (1.0 - kInflection);
    const double mask = t * t;
    for (int c = 0; c < 3; ++c) {
      const double safe_gain = std::max(mask + (1.0 - mask) * gains[c], gains[c]);
      px[c] = Clip01(static_cast<float>(px[c] * safe_gain));
    }
  }
  return raw;
}

void AddShotReadNoise(const CameraModel& camera, Rng& rng, ImageF* raw) {
  // add_noise(): variance = image · shot_noise + read_noise.
  for (float& x : raw->rgb) {
    const double variance = std::max(0.0, x * camera.shot_noise + camera.read_noise);
    x = static_cast<float>(x + std::sqrt(variance) * rng.Normal());
  }
}

ImageF Process(const ImageF& raw, const CameraModel& camera) {
  ImageF out = raw;
  const double gains[3] = {camera.red_gain * camera.rgb_gain, camera.rgb_gain,
                           camera.blue_gain * camera.rgb_gain};
  const std::size_t n = out.num_pixels();
  for (std::size_t p = 0; p < n; ++p) {
    float* px = &out.rgb[p * 3];
    for (int c = 0; c < 3; ++c) px[c] = Clip01(static_cast<float>(px[c] * gains[c]));
    ApplyMatrix(camera.cam2rgb, px);
    for (int c = 0; c < 3; ++c) {
      // gamma_compression() then smoothstep().
      const double x = std::pow(std::max<double>(Clip01(px[c]), 1e-8), 1.0 / 2.2);
      px[c] = static_cast<float>(x * x * (3.0 - 2.0 * x));
    }
  }
  return out;
}

NoisyCaptures SimulateCaptures(const Image& clean_srgb, const CameraModel& camera, Rng& rng,
                               int count) {
  const ImageF raw = Unprocess(ToFloat(clean_srgb), camera);
  NoisyCaptures captures;
  captures.clean = ToUint8(Process(raw, camera));
  for (int i = 0; i < count; ++i) {
    ImageF noisy = raw;
    AddShotReadNoise(camera, rng, &noisy);
    captures.noisy.push_back(ToUint8(Process(noisy, camera)));
  }
  return captures;
}

NoisyPair SimulateCapture(const Image& clean_srgb, const CameraModel& camera, Rng& rng) {
  NoisyCaptures captures = SimulateCaptures(clean_srgb, camera, rng, 1);
  return NoisyPair{std::move(captures.noisy[0]), std::move(captures.clean)};
}

}  // namespace peaknas::data
