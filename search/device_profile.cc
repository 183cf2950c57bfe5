#include "search/device_profile.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/enum_names.h"

namespace peaknas::search {
namespace {

// Workspace of LibTorch 1.13 on CPU for the ops other than convolutions (convolutions follow
// CpuConvRules, measured). Max pooling keeps int64 indices; the loss and Adam as below.
WorkspaceTable CpuOneDnnWorkspace() {
  WorkspaceTable t;
  t.forward[static_cast<int>(OpKind::kMaxPool2)] = {.out_index = 1};
  // l1_loss = mean(abs(y - target)): abs(.) is a temporary beside the saved difference.
  t.forward[static_cast<int>(OpKind::kL1Loss)] = {.out = 1};
  // mean's expanded gradient and sgn(diff) beside the product that becomes dL/dy.
  t.backward[static_cast<int>(OpKind::kL1Loss)] = {.out = 2};
  // torch::optim::Adam (C++, 1.13): denom = (exp_avg_sq.sqrt() / bc2).add_(eps) holds two
  // temporaries of the parameter's size within one expression.
  t.adam_temporaries = 2;
  return t;
}

// Workspace of LibTorch on CUDA: cuDNN workspaces come from the caching allocator and so count
// as allocated bytes. Not yet calibrated on a GPU: the terms are a conservative placeholder of
// one output (forward) and one input plus one output (backward) per convolution.
WorkspaceTable CudaCudnnWorkspace() {
  WorkspaceTable t;
  for (OpKind k :
       {OpKind::kConv3x3, OpKind::kConv2x2Stride2, OpKind::kConv1x1, OpKind::kConvTranspose2x2}) {
    t.forward[static_cast<int>(k)] = {.out = 1};
    t.backward[static_cast<int>(k)] = {.in = 1, .out = 1};
  }
  t.forward[static_cast<int>(OpKind::kMaxPool2)] = {.out_index = 1};
  t.forward[static_cast<int>(OpKind::kL1Loss)] = {.out = 1};
  t.backward[static_cast<int>(OpKind::kL1Loss)] = {.out = 2};
  t.adam_temporaries = 2;
  return t;
}

std::vector<DeviceProfile> MakeProfiles() {
  std::vector<DeviceProfile> p;
  // The development machine: 2 cores of an AMD EPYC with AVX-512 (one 512-bit FMA per cycle
  // per core at ~2.4 GHz: 2 x 2.4e9 x 32 FLOP); half precision gets no faster on it.
  p.push_back({.name = "cpu",
               .description = "2-core AMD EPYC (AVX-512), LibTorch CPU with oneDNN",
               .kind = DeviceKind::kCpu,
               .peak_flops_fp32 = 1.5e11,
               .peak_flops_half = 1.5e11,
               .bandwidth_bytes_per_s = 2.0e10,
               .op_overhead_s = 1.0e-5,
               .workspace = CpuOneDnnWorkspace(),
               .cpu_conv = {.enabled = true}});
  // NVIDIA data-center GPUs: dense TF32 tensor cores (LibTorch's default for cuDNN
  // convolutions), dense FP16/BF16, HBM bandwidth, ~5 us per kernel launch and dispatch.
  const auto cuda = [](std::string name, std::string description, double fp32, double half,
                       double bandwidth) {
    return DeviceProfile{.name = std::move(name),
                         .description = std::move(description) + ", LibTorch CUDA with cuDNN",
                         .kind = DeviceKind::kCuda,
                         .peak_flops_fp32 = fp32,
                         .peak_flops_half = half,
                         .bandwidth_bytes_per_s = bandwidth,
                         .op_overhead_s = 5.0e-6,
                         .workspace = CudaCudnnWorkspace(),
                         .cpu_conv = {.enabled = false}};
  };
  p.push_back(cuda("h100", "NVIDIA H100 SXM 80GB", 4.95e14, 9.89e14, 3.35e12));
  p.push_back(cuda("h200", "NVIDIA H200 141GB", 4.95e14, 9.89e14, 4.8e12));
  p.push_back(cuda("a100", "NVIDIA A100 SXM 80GB", 1.56e14, 3.12e14, 2.0e12));
  return p;
}

const std::vector<DeviceProfile>& Profiles() {
  static const std::vector<DeviceProfile> profiles = MakeProfiles();
  return profiles;
}

constexpr EnumNames<DType, 3> kDTypeNames{
    {{{DType::kFp32, "fp32"}, {DType::kFp16, "fp16"}, {DType::kBf16, "bf16"}}}};

constexpr EnumNames<OpKind, 13> kOpNames{{{{OpKind::kConv3x3, "conv3x3"},
                                           {OpKind::kConv2x2Stride2, "conv2x2s2"},
                                           {OpKind::kConv1x1, "conv1x1"},
                                           {OpKind::kConvTranspose2x2, "conv_transpose2x2s2"},
                                           {OpKind::kMaxPool2, "maxpool2"},
                                           {OpKind::kBilinear2x, "bilinear2x"},
                                           {OpKind::kPixelShuffle, "pixel_shuffle"},
                                           {OpKind::kConcat, "concat"},
                                           {OpKind::kAddSkip, "add_skip"},
                                           {OpKind::kActivation, "activation"},
                                           {OpKind::kAddInput, "add_input"},
                                           {OpKind::kL1Loss, "l1_loss"},
                                           {OpKind::kAdamStep, "adam_step"}}}};

}  // namespace

std::string_view Name(DType d) { return kDTypeNames.Name(d); }

StatusOr<DType> ParseDType(std::string_view name) {
  if (const std::optional<DType> d = kDTypeNames.Find(name)) return *d;
  return Status::InvalidArgument("dtype: \"" + std::string(name) + "\" is not one of {" +
                                 kDTypeNames.List() + "}");
}

std::string_view Name(OpKind op) { return kOpNames.Name(op); }

std::span<const DeviceProfile> DeviceProfiles() { return Profiles(); }

const DeviceProfile& DefaultDeviceProfile() { return Profiles().front(); }

StatusOr<const DeviceProfile*> FindDeviceProfile(std::string_view name) {
  std::string known;
  for (const DeviceProfile& p : Profiles()) {
    if (p.name == name) return &p;
    if (!known.empty()) known += ", ";
    known += p.name;
  }
  return Status::NotFound("device profile: \"" + std::string(name) + "\" is not one of {" + known +
                          "}");
}

}  // namespace peaknas::search
