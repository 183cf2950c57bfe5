// Image-quality metrics for denoising, and the SIDD evaluation protocol.
//
// Images are planar float buffers in CHW order (channel, row, column), as a [C, H, W] tensor
// is stored; values are clamped to [0, 1] before comparing, the peak value is 1.
//
//   PSNR = 10 · log10(1 / MSE), MSE over all C·H·W samples. Identical images (MSE = 0) give
//          kMaxPsnrDb = 100 dB instead of +inf, so means over blocks stay finite.
//   SSIM  (Wang, Bovik, Sheikh and Simoncelli, "Image Quality Assessment: From Error
//          Visibility to Structural Similarity", IEEE TIP 2004): 11×11 Gaussian window with
//          σ = 1.5 (normalized to sum 1), C1 = (0.01·L)², C2 = (0.03·L)² with L = 1, population
//          (biased) local variances, window positions fully inside the image only ("valid",
//          as in the reference ssim_index.m; no automatic downsampling), the SSIM map averaged
//          per channel and the channel means averaged. This equals scikit-image's
//          structural_similarity(gaussian_weights=True, sigma=1.5,
//          use_sample_covariance=False, data_range=1, channel_axis=…). Images smaller than
//          11 pixels in either dimension give NaN.
//
// The SIDD protocol: the mean over all validation blocks of each block's PSNR (and SSIM),
// outputs clamped to [0, 1]. Cost on one core: SSIM about 3 ms per 256×256 RGB block (4 s
// for SIDD's 1280 blocks), PSNR negligible.
//
// Thread-safety: pure functions; a SiddScoreAccumulator is a value (one thread at a time).
#ifndef PEAKNAS_WORKER_DATA_METRICS_H_
#define PEAKNAS_WORKER_DATA_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "search/trial_metrics.h"
#include "worker/data/mat.h"

namespace peaknas::data {

inline constexpr double kMaxPsnrDb = 100.0;

// PSNR between two CHW buffers of `count` samples each (any layout works: PSNR ignores it).
double Psnr(const float* output, const float* target, std::size_t count);

// SSIM between two CHW images of `channels` × `height` × `width`.
double Ssim(const float* output, const float* target, int channels, int height, int width);

// Interleaved RGB8 (HWC) → planar float CHW in [0, 1]; `chw` holds 3·height·width floats.
void HwcToChw(const std::uint8_t* hwc, int height, int width, float* chw);

// Blocks [first, first + count) of `blocks` as one float buffer [count, 3, S, S] in [0, 1],
// ready to become a tensor. Requires first + count <= blocks.num_blocks() (asserted).
std::vector<float> BlocksToChw(const SiddBlocks& blocks, std::size_t first, std::size_t count);

// Means over blocks of per-block PSNR (dB) and SSIM (0 when not computed).
using SiddScores = search::QualityScores;

// Accumulates per-block scores in the SIDD protocol; feed every validation block once.
class SiddScoreAccumulator {
 public:
  explicit SiddScoreAccumulator(bool compute_ssim = true) : compute_ssim_(compute_ssim) {}

  // One block: output and target are CHW [3, size, size] floats.
  void AddBlock(const float* output, const float* target, int size);
  // `count` consecutive blocks, e.g. a network output batch [count, 3, size, size].
  void AddBlocks(const float* output, const float* target, std::size_t count, int size);
  SiddScores Result() const;

 private:
  bool compute_ssim_;
  double psnr_sum_ = 0.0;
  double ssim_sum_ = 0.0;
  std::size_t blocks_ = 0;
};

// Scores of `output` blocks against `clean` blocks (same shape, asserted): with the noisy
// validation blocks as output this is the noisy-input baseline ("noisy_psnr").
SiddScores EvaluateBlocks(const SiddBlocks& output, const SiddBlocks& clean,
                          bool compute_ssim = true);

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_METRICS_H_
