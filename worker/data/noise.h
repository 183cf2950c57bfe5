// Realistic camera noise for clean sRGB images, after Brooks, Mildenhall, Xue, Chen, Sharlet
// and Barron, "Unprocessing Images for Learned Raw Denoising", CVPR 2019 (the published
// code: google-research/unprocessing, unprocess.py and process.py).
//
// A clean sRGB image is "unprocessed" to linear camera RAW by inverting a simple camera
// pipeline — tone curve (inverse smoothstep), gamma (x^2.2), colour correction (an RGB→camera
// matrix interpolated between four XYZ→camera matrices), white balance and brightness gains
// (inverted with the paper's highlight-preserving mask) — then heteroscedastic shot + read
// noise is added in RAW, variance = shot_noise · x + read_noise, and both the clean and the
// noisy RAW are processed forward again (gains, CCM, gamma, smoothstep) and quantized to
// 8-bit sRGB. Noise levels are drawn as in the paper:
//     log(shot_noise) ~ U(log 1e-4, log 1.2e-2)
//     log(read_noise) = 2.18 · log(shot_noise) + 1.20 + N(0, 0.26²)
// (the paper fitted that line to the Darmstadt Noise Dataset's cameras; the noise levels of
// SIDD's smartphones at ISO 100–3200 fall in the same range).
//
// Differences from the paper, on purpose:
//   * No Bayer mosaic: noise is added independently to each RGB sample of each pixel, and no
//     demosaicking follows. Real sRGB noise is spatially correlated by demosaicking; ours is
//     white per pixel (but still signal-dependent and colour-mixed by the CCM).
//   * The forward pipeline re-applies the brightness gain rgb_gain as well as the red and blue
//     gains (process.py applies only the latter), so the processed clean image matches the
//     source image except where highlights clipped.
//   * The clean target is the processed *clean* RAW (not the source image), so the noisy and
//     clean images of a pair differ only by the noise.
//   * rgb_gain = 1 / N(0.8, 0.1) is drawn with its normal clamped to [0.5, 1.1] to avoid
//     absurd gains in the far tails.
//
// Thread-safety: pure functions; an Rng must not be shared between threads.
#ifndef PEAKNAS_WORKER_DATA_NOISE_H_
#define PEAKNAS_WORKER_DATA_NOISE_H_

#include <array>
#include <cmath>
#include <vector>

#include "worker/data/image.h"
#include "worker/data/random.h"

namespace peaknas::data {

struct NoiseOptions {
  // log(shot_noise) ~ U(log_shot_min, log_shot_max); Brooks et al.: log 1e-4 and log 1.2e-2.
  double log_shot_min = std::log(1e-4);
  double log_shot_max = std::log(1.2e-2);
  // log(read_noise) = read_slope · log(shot_noise) + read_intercept + N(0, read_stddev²).
  double read_slope = 2.18;
  double read_intercept = 1.20;
  double read_stddev = 0.26;
};

// The camera of one simulated capture.
struct CameraModel {
  std::array<double, 9> rgb2cam{};  // row-major 3×3; each row sums to 1
  std::array<double, 9> cam2rgb{};  // its inverse
  double rgb_gain = 1.0;            // brightness gain (> 0)
  double red_gain = 2.0;            // white-balance gains, green = 1
  double blue_gain = 1.7;
  double shot_noise = 1e-3;  // RAW variance = shot_noise · x + read_noise, x in [0, 1]
  double read_noise = 1e-5;
};

// Draws a camera as unprocess.py does: random_ccm(), random_gains(), random_noise_levels().
CameraModel SampleCameraModel(Rng& rng, const NoiseOptions& options = {});

// sRGB in [0, 1] → linear camera RAW in [0, 1] (per-pixel RGB, no mosaic).
ImageF Unprocess(const ImageF& srgb, const CameraModel& camera);

// Adds N(0, shot_noise · x + read_noise) to every sample x of a RAW image (values may leave
// [0, 1]; Process clips).
void AddShotReadNoise(const CameraModel& camera, Rng& rng, ImageF* raw);

// Linear camera RAW → sRGB in [0, 1]: gains, clip, CCM, clip, gamma 1/2.2, smoothstep.
ImageF Process(const ImageF& raw, const CameraModel& camera);

struct NoisyPair {
  Image noisy;
  Image clean;
};

// The whole simulation for one capture: unprocess `clean_srgb`, add noise, process both
// RAW images, quantize.
NoisyPair SimulateCapture(const Image& clean_srgb, const CameraModel& camera, Rng& rng);

// `count` independent noisy captures of one scene by one camera, sharing one clean target
// (cheaper than `count` SimulateCapture calls: the scene is unprocessed once).
struct NoisyCaptures {
  Image clean;
  std::vector<Image> noisy;
};
NoisyCaptures SimulateCaptures(const Image& clean_srgb, const CameraModel& camera, Rng& rng,
                               int count);

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_NOISE_H_
