// Device profiles: what the cost model needs to know about where a network runs.
//
// A profile has roofline figures (peak FLOP/s per dtype, memory bandwidth, per-op launch
// overhead) and a workspace table: for every op kind, the bytes the framework's allocator adds
// beside the op's own inputs and output, as a linear function of the op's tensor sizes. The
// table is data, per device kind, so that measurements tighten the model by changing numbers,
// not code (see docs/cost-model.md for where each number comes from).
//
// Thread-safety: profiles are immutable after static initialization.
#ifndef PEAKNAS_SEARCH_DEVICE_PROFILE_H_
#define PEAKNAS_SEARCH_DEVICE_PROFILE_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace peaknas::search {

enum class DeviceKind : std::uint8_t { kCpu, kCuda };

enum class DType : std::uint8_t { kFp32, kFp16, kBf16 };
inline int DTypeBytes(DType d) { return d == DType::kFp32 ? 4 : 2; }
std::string_view Name(DType d);  // "fp32", "fp16", "bf16"
StatusOr<DType> ParseDType(std::string_view name);

// Every op of the U-Net schedule (DESIGN.md), plus the loss and the optimizer step.
enum class OpKind : std::uint8_t {
  kConv3x3,           // conv3x3, stride 1, padding 1
  kConv2x2Stride2,    // strided downsampling
  kConv1x1,           // channel change after maxpool / bilinear, or before pixel shuffle
  kConvTranspose2x2,  // transposed upsampling, stride 2
  kMaxPool2,          // 2x2 max pooling, stride 2
  kBilinear2x,        // bilinear x2 interpolation, align_corners = false
  kPixelShuffle,      // pixel_shuffle(., 2)
  kConcat,            // cat([u, skip], channels)
  kAddSkip,           // u += skip (in place)
  kActivation,        // relu_ / leaky_relu_(0.2) (in place)
  kAddInput,          // y += x, global residual (in place)
  kL1Loss,            // mean |y - target| (training only)
  kAdamStep,          // one Adam update of all parameters (training only)
};
inline constexpr int kOpKindCount = 13;
std::string_view Name(OpKind op);  // "conv3x3", "conv2x2s2", ...

// Bytes allocated beside an op's inputs and output while it runs:
//   in * input_bytes + weight * weight_bytes + out * output_bytes
//   + out_index * 8 * output_elements + constant.
// In the backward table, "output" is the gradient of the op's output (same size).
struct WorkspaceTerm {
  double in = 0;
  double weight = 0;
  double out = 0;
  double out_index = 0;  // int64 index tensors (max pooling)
  std::int64_t constant = 0;
};

struct WorkspaceTable {
  std::array<WorkspaceTerm, kOpKindCount> forward{};
  std::array<WorkspaceTerm, kOpKindCount> backward{};
  // Adam's per-parameter temporaries while updating the largest parameter tensor, in units of
  // that tensor's bytes.
  double adam_temporaries = 0;
};

// How LibTorch (1.13) runs a convolution on the CPU, and the buffers each path allocates
// through c10's CPU allocator (measured with the worker's counting allocator; see
// docs/cost-model.md). When `enabled`, these rules replace the linear workspace terms of the
// four conv kinds.
//
// Path choice (aten ConvParams::use_mkldnn, fp32): oneDNN when (stride > 1 || batch >= 16 ||
// kernel != 1 || threads > 1) && (batch > 1 || input elements > small_input_elements);
// otherwise the native kernel, which unfolds the input (im2col) unless the conv is 1x1/s1.
// Transposed convs always take the native kernel (per-sample columns and a row of ones).
// oneDNN reorders the source into channel blocks (unless the kernel reads plain NCHW: fewer
// than plain_source_max_channels + 1 input channels and kernel > 1), the weights, and computes
// the result into a blocked tensor before copying it to the dense output.
struct CpuConvRules {
  bool enabled = false;
  int channel_block = 16;                     // nChw16c with AVX-512; 8 with AVX2
  int intra_op_threads = 1;                   // at::get_num_threads() of the worker
  std::int64_t small_input_elements = 20480;  // batch-1 inputs up to this use the native path
  int plain_source_max_channels = 15;         // 3x3 and 2x2 kernels read <= this many plain
  int bias_padding_extra = 32;                // oneDNN pads a bias to block + this many elements
};

struct DeviceProfile {
  std::string name;         // "cpu", "h100", ... (what --device-profile takes)
  std::string description;  // one line for --help and reports
  DeviceKind kind = DeviceKind::kCpu;
  double peak_flops_fp32 = 0;        // FLOP/s (1 MAC = 2 FLOP)
  double peak_flops_half = 0;        // FLOP/s for fp16/bf16
  double bandwidth_bytes_per_s = 0;  // sustained memory bandwidth
  double op_overhead_s = 0;          // dispatch/launch cost per op
  WorkspaceTable workspace;
  CpuConvRules cpu_conv;

  double PeakFlops(DType d) const { return d == DType::kFp32 ? peak_flops_fp32 : peak_flops_half; }
};

// The shipped profiles; the first is the default ("cpu").
std::span<const DeviceProfile> DeviceProfiles();
const DeviceProfile& DefaultDeviceProfile();
// NOT_FOUND listing the known names when `name` is not one of them.
StatusOr<const DeviceProfile*> FindDeviceProfile(std::string_view name);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_DEVICE_PROFILE_H_
