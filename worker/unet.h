// The U-Net of DESIGN.md ("The U-Net family"), built with LibTorch from a search::Architecture.
//
// forward() runs the exact op schedule that the cost model walks: activations in place, every
// tensor released as soon as it is dead (locals are moved from or reset), skips held only until
// their fusion. The analytical peak in search/cost_model.h is a bound on exactly this code, so
// any change to the order or lifetime of tensors here must be mirrored there.
//
// Thread-safety: a module is used by one thread at a time.
#ifndef PEAKNAS_WORKER_UNET_H_
#define PEAKNAS_WORKER_UNET_H_

#include <torch/torch.h>

#include <vector>

#include "search/architecture.h"

namespace peaknas::worker {

class UNetImpl : public torch::nn::Module {
 public:
  // Precondition: search::Validate(arch).ok().
  explicit UNetImpl(const search::Architecture& arch);

  // x: [B, 3, H, W], H and W multiples of 2^(levels-1). Returns y = net(x) + x.
  torch::Tensor forward(const torch::Tensor& x);

  const search::Architecture& architecture() const { return arch_; }

 private:
  struct Level {
    std::vector<torch::nn::Conv2d> enc;
    torch::nn::Conv2d down{nullptr};           // strided 2x2/s2, or 1x1 after max pooling
    torch::nn::ConvTranspose2d up_t{nullptr};  // transposed upsampling into this level
    torch::nn::Conv2d up_conv{nullptr};        // 1x1 for bilinear / pixel shuffle
    std::vector<torch::nn::Conv2d> dec;
  };

  void Activate(torch::Tensor& h) const;

  search::Architecture arch_;
  torch::nn::Conv2d stem_{nullptr};
  std::vector<Level> levels_;
  torch::nn::Conv2d head_{nullptr};
};
TORCH_MODULE(UNet);

// Puts the convolution weights of `net` in `layout`. A network run on channels-last inputs
// converts NCHW weights to channels-last in every call (a weight-sized copy per layer); with
// its weights channels-last it copies none. The values and the bytes held are unchanged.
void SetWeightLayout(UNet& net, torch::MemoryFormat layout);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_UNET_H_
