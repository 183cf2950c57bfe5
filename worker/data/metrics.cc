#include "worker/data/metrics.h"

#include <array>
#include <cassert>
#include <cmath>
#include <limits>

namespace peaknas::data {
namespace {

constexpr int kWindow = 11;
constexpr double kSigma = 1.5;
constexpr double kC1 = 0.01 * 0.01;  // (K1 · L)², L = 1
constexpr double kC2 = 0.03 * 0.03;  // (K2 · L)²

double Clamp01(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0; }

std::array<double, kWindow> GaussianWindow() {
  std::array<double, kWindow> w{};
  double sum = 0.0;
  for (int i = 0; i < kWindow; ++i) {
    const double d = i - kWindow / 2;
    w[i] = std::exp(-d * d / (2.0 * kSigma * kSigma));
    sum += w[i];
  }
  for (double& v : w) v /= sum;
  return w;
}

// Mean SSIM of one channel (height × width, row-major), valid window positions only. Both
// separable passes keep the column index innermost so that the loops vectorize.
double SsimChannel(const float* x, const float* y, int height, int width) {
  static const std::array<double, kWindow> kW = GaussianWindow();  // thread-safe init
  const std::size_t w = static_cast<std::size_t>(width);
  const std::size_t out_h = static_cast<std::size_t>(height - kWindow + 1);
  const std::size_t out_w = static_cast<std::size_t>(width - kWindow + 1);
  const std::size_t plane = static_cast<std::size_t>(height) * out_w;
  // Horizontal pass: the five moments x, y, x², y², xy filtered along each row.
  std::vector<double> h(5 * plane);
  std::vector<double> row(5 * w);
  for (std::size_t r = 0; r < static_cast<std::size_t>(height); ++r) {
    for (std::size_t c = 0; c < w; ++c) {
      const double a = Clamp01(x[r * w + c]), b = Clamp01(y[r * w + c]);
      row[c] = a;
      row[w + c] = b;
      row[2 * w + c] = a * a;
      row[3 * w + c] = b * b;
      row[4 * w + c] = a * b;
    }
    for (std::size_t j = 0; j < 5; ++j) {
      double* dst = &h[j * plane + r * out_w];
      const double* src = &row[j * w];
      for (std::size_t c = 0; c < out_w; ++c) {
        double acc = 0.0;
        for (int k = 0; k < kWindow; ++k) acc += kW[k] * src[c + k];
        dst[c] = acc;
      }
    }
  }
  // Vertical pass and the SSIM map, one output row at a time.
  std::vector<double> m(5 * out_w);
  double sum = 0.0;
  for (std::size_t r = 0; r < out_h; ++r) {
    for (std::size_t j = 0; j < 5; ++j) {
      const double* src = &h[j * plane + r * out_w];
      for (std::size_t c = 0; c < out_w; ++c) {
        double acc = 0.0;
        for (int k = 0; k < kWindow; ++k) acc += kW[k] * src[k * out_w + c];
        m[j * out_w + c] = acc;
      }
    }
    for (std::size_t c = 0; c < out_w; ++c) {
      const double mu_x = m[c], mu_y = m[out_w + c];
      const double var_x = m[2 * out_w + c] - mu_x * mu_x;
      const double var_y = m[3 * out_w + c] - mu_y * mu_y;
      const double cov = m[4 * out_w + c] - mu_x * mu_y;
      sum += ((2 * mu_x * mu_y + kC1) * (2 * cov + kC2)) /
             ((mu_x * mu_x + mu_y * mu_y + kC1) * (var_x + var_y + kC2));
    }
  }
  return sum / (static_cast<double>(out_h) * static_cast<double>(out_w));
}

}  // namespace

double Psnr(const float* output, const float* target, std::size_t count) {
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  double sse = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    const double d = Clamp01(output[i]) - Clamp01(target[i]);
    sse += d * d;
  }
  const double mse = sse / static_cast<double>(count);
  if (mse <= 0.0) return kMaxPsnrDb;
  return std::min(kMaxPsnrDb, -10.0 * std::log10(mse));
}

double Ssim(const float* output, const float* target, int channels, int height, int width) {
  if (channels <= 0 || height < kWindow || width < kWindow) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  double sum = 0.0;
  for (int c = 0; c < channels; ++c) {
    sum += SsimChannel(output + c * plane, target + c * plane, height, width);
  }
  return sum / channels;
}

void HwcToChw(const std::uint8_t* hwc, int height, int width, float* chw) {
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  constexpr float kScale = 1.0f / 255.0f;
  for (std::size_t p = 0; p < plane; ++p) {
    chw[p] = hwc[p * 3] * kScale;
    chw[plane + p] = hwc[p * 3 + 1] * kScale;
    chw[2 * plane + p] = hwc[p * 3 + 2] * kScale;
  }
}

std::vector<float> BlocksToChw(const SiddBlocks& blocks, std::size_t first, std::size_t count) {
  assert(first + count <= blocks.num_blocks());
  const std::size_t per_block = blocks.block_bytes();
  std::vector<float> out(count * per_block);
  for (std::size_t i = 0; i < count; ++i) {
    HwcToChw(blocks.block(first + i), blocks.block_size, blocks.block_size,
             out.data() + i * per_block);
  }
  return out;
}

void SiddScoreAccumulator::AddBlock(const float* output, const float* target, int size) {
  const std::size_t count = 3 * static_cast<std::size_t>(size) * size;
  psnr_sum_ += Psnr(output, target, count);
  if (compute_ssim_) ssim_sum_ += Ssim(output, target, 3, size, size);
  ++blocks_;
}

void SiddScoreAccumulator::AddBlocks(const float* output, const float* target, std::size_t count,
                                     int size) {
  const std::size_t per_block = 3 * static_cast<std::size_t>(size) * size;
  for (std::size_t i = 0; i < count; ++i) {
    AddBlock(output + i * per_block, target + i * per_block, size);
  }
}

SiddScores SiddScoreAccumulator::Result() const {
  SiddScores scores;
  scores.blocks = blocks_;
  if (blocks_ == 0) return scores;
  scores.psnr = psnr_sum_ / static_cast<double>(blocks_);
  scores.ssim = compute_ssim_ ? ssim_sum_ / static_cast<double>(blocks_) : 0.0;
  return scores;
}

SiddScores EvaluateBlocks(const SiddBlocks& output, const SiddBlocks& clean, bool compute_ssim) {
  assert(output.num_images == clean.num_images &&
         output.blocks_per_image == clean.blocks_per_image &&
         output.block_size == clean.block_size);
  SiddScoreAccumulator accumulator(compute_ssim);
  const std::size_t per_block = output.block_bytes();
  std::vector<float> a(per_block), b(per_block);
  for (std::size_t i = 0; i < output.num_blocks(); ++i) {
    HwcToChw(output.block(i), output.block_size, output.block_size, a.data());
    HwcToChw(clean.block(i), clean.block_size, clean.block_size, b.data());
    accumulator.AddBlock(a.data(), b.data(), output.block_size);
  }
  return accumulator.Result();
}

}  // namespace peaknas::data
