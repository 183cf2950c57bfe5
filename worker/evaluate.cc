#include "worker/evaluate.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <vector>

namespace peaknas::worker {

data::SiddScores Evaluate(UNet& net, const data::SiddBlocks& noisy, const data::SiddBlocks& clean,
                          torch::Device device, int batch, search::DType precision) {
  assert(noisy.num_images == clean.num_images && noisy.blocks_per_image == clean.blocks_per_image &&
         noisy.block_size == clean.block_size);
  assert(batch >= 1);
  assert(noisy.block_size % search::SpatialMultiple(net->architecture()) == 0);
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  const int size = noisy.block_size;
  const std::size_t total = noisy.num_blocks();
  data::SiddScoreAccumulator accumulator(/*compute_ssim=*/true);
  for (std::size_t first = 0; first < total; first += static_cast<std::size_t>(batch)) {
    const std::size_t count = std::min<std::size_t>(batch, total - first);
    std::vector<float> input = data::BlocksToChw(noisy, first, count);
    const std::vector<float> target = data::BlocksToChw(clean, first, count);
    torch::Tensor x = torch::from_blob(
        input.data(), {static_cast<std::int64_t>(count), 3, size, size}, torch::kFloat32);
    if (!device.is_cpu()) x = x.to(device);
    torch::Tensor y;
    {
      AutocastGuard autocast(precision, device);
      y = net->forward(x);
    }
    x.reset();
    // The SIDD protocol scores float outputs clamped to [0, 1].
    y = y.to(torch::kFloat32).clamp_(0.0, 1.0).to(torch::kCPU).contiguous();
    accumulator.AddBlocks(y.data_ptr<float>(), target.data(), count, size);
  }
  net->train(was_training);
  return accumulator.Result();
}

data::SiddScores NoisyBaseline(const data::SiddBlocks& noisy, const data::SiddBlocks& clean) {
  return data::EvaluateBlocks(noisy, clean, /*compute_ssim=*/true);
}

}  // namespace peaknas::worker
