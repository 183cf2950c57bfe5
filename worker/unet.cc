#include "worker/unet.h"

#include <string>
#include <utility>

#include "search/inheritance.h"

namespace peaknas::worker {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

using search::ConvKind;

// The module names are the family's parameter names (search/inheritance.h), which weight
// inheritance and the TorchScript export rely on.
std::string Named(ConvKind kind, int level = 0, int index = 0) {
  return search::ModuleName({kind, level, index});
}

nn::Conv2d Conv(int cin, int cout, int kernel, int stride, int padding) {
  return nn::Conv2d(
      nn::Conv2dOptions(cin, cout, kernel).stride(stride).padding(padding).bias(true));
}

}  // namespace

UNetImpl::UNetImpl(const search::Architecture& arch) : arch_(arch) {
  const int L = arch.levels;
  stem_ = register_module(Named(ConvKind::kStem), Conv(3, arch.widths[0], 3, 1, 1));
  levels_.resize(L);
  for (int i = 0; i < L; ++i) {
    Level& lv = levels_[i];
    const int w = arch.widths[i];
    for (int b = 0; b < arch.enc_blocks[i]; ++b) {
      lv.enc.push_back(register_module(Named(ConvKind::kEnc, i, b), Conv(w, w, 3, 1, 1)));
    }
    if (i < L - 1) {
      const int wn = arch.widths[i + 1];
      lv.down = register_module(Named(ConvKind::kDown, i),
                                arch.downsample == search::DownsampleKind::kStrided
                                    ? Conv(w, wn, 2, 2, 0)
                                    : Conv(w, wn, 1, 1, 0));
      switch (arch.upsample) {
        case search::UpsampleKind::kTransposed:
          lv.up_t =
              register_module(Named(ConvKind::kUp, i),
                              nn::ConvTranspose2d(nn::ConvTranspose2dOptions(wn, w, 2).stride(2)));
          break;
        case search::UpsampleKind::kBilinear:
          lv.up_conv = register_module(Named(ConvKind::kUp, i), Conv(wn, w, 1, 1, 0));
          break;
        case search::UpsampleKind::kPixelShuffle:
          lv.up_conv = register_module(Named(ConvKind::kUp, i), Conv(wn, 4 * w, 1, 1, 0));
          break;
      }
      const int cin = arch.skip == search::SkipKind::kConcat ? 2 * w : w;
      for (int b = 0; b < arch.dec_blocks[i]; ++b) {
        lv.dec.push_back(
            register_module(Named(ConvKind::kDec, i, b), Conv(b == 0 ? cin : w, w, 3, 1, 1)));
      }
    }
  }
  head_ = register_module(Named(ConvKind::kHead), Conv(arch.widths[0], 3, 3, 1, 1));
}

void UNetImpl::Activate(torch::Tensor& h) const {
  if (arch_.activation == search::ActivationKind::kRelu) {
    h.relu_();
  } else {
    torch::leaky_relu_(h, 0.2);
  }
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x) {
  const int L = arch_.levels;
  std::vector<torch::Tensor> skips(L);
  torch::Tensor h = stem_->forward(x);
  Activate(h);
  for (int i = 0; i < L; ++i) {
    Level& lv = levels_[i];
    for (auto& conv : lv.enc) {
      h = conv->forward(h);  // the old h is released by the assignment
      Activate(h);
    }
    if (i == L - 1) break;
    skips[i] = h;
    if (arch_.downsample == search::DownsampleKind::kStrided) {
      h = lv.down->forward(h);
    } else {
      torch::Tensor p = F::max_pool2d(h, F::MaxPool2dFuncOptions(2).stride(2));
      h = lv.down->forward(p);
    }
  }
  for (int i = L - 2; i >= 0; --i) {
    Level& lv = levels_[i];
    torch::Tensor u;
    switch (arch_.upsample) {
      case search::UpsampleKind::kTransposed:
        u = lv.up_t->forward(h);
        h.reset();
        break;
      case search::UpsampleKind::kBilinear: {
        torch::Tensor b = F::interpolate(h, F::InterpolateFuncOptions()
                                                .scale_factor(std::vector<double>{2.0, 2.0})
                                                .mode(torch::kBilinear)
                                                .align_corners(false));
        h.reset();
        u = lv.up_conv->forward(b);
        break;
      }
      case search::UpsampleKind::kPixelShuffle: {
        torch::Tensor c = lv.up_conv->forward(h);
        h.reset();
        u = F::pixel_shuffle(c, 2);
        break;
      }
    }
    if (arch_.skip == search::SkipKind::kConcat) {
      h = torch::cat({u, skips[i]}, 1);
      u.reset();
    } else {
      u.add_(skips[i]);
      h = std::move(u);
    }
    skips[i].reset();
    for (auto& conv : lv.dec) {
      h = conv->forward(h);
      Activate(h);
    }
  }
  torch::Tensor y = head_->forward(h);
  h.reset();
  y.add_(x);
  return y;
}

void SetWeightLayout(UNet& net, torch::MemoryFormat layout) {
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : net->parameters()) {
    if (p.dim() == 4 && !p.is_contiguous(layout)) p.set_data(p.contiguous(layout));
  }
}

}  // namespace peaknas::worker
