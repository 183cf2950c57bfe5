// Evaluation of a denoiser in the SIDD protocol (DESIGN.md, "Worker"): every validation block
// goes through the network, the float output is clamped to [0, 1], and the scores are the
// mean over blocks of per-block PSNR, with SSIM beside it (data/metrics.h).
//
// Thread-safety: one evaluation of a module at a time (it switches the module to eval mode for
// the duration and restores its mode afterwards).
#ifndef PEAKNAS_WORKER_EVALUATE_H_
#define PEAKNAS_WORKER_EVALUATE_H_

#include <torch/torch.h>

#include "worker/data/mat.h"
#include "worker/data/metrics.h"
#include "worker/precision.h"
#include "worker/unet.h"

namespace peaknas::worker {

// Scores `net`'s outputs for the `noisy` blocks against the `clean` blocks, `batch` blocks per
// forward pass, under no-grad and in eval mode, with autocast to `precision` (CheckPrecision
// must hold for `device`). The net must already be on `device`; its training mode is restored
// on return. Preconditions (asserted): noisy and clean have the same shape, batch >= 1, and
// the block side is a multiple of search::SpatialMultiple(net's architecture).
// LibTorch's errors (e.g. out of memory) propagate as c10::Error.
data::SiddScores Evaluate(UNet& net, const data::SiddBlocks& noisy, const data::SiddBlocks& clean,
                          torch::Device device, int batch = 8,
                          search::DType precision = search::DType::kFp32);

// The noisy-input baseline: the noisy blocks themselves scored against the clean ones
// (data::EvaluateBlocks), the figure Evaluate's PSNR gain is measured from.
data::SiddScores NoisyBaseline(const data::SiddBlocks& noisy, const data::SiddBlocks& clean);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_EVALUATE_H_
