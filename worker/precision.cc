#include "worker/precision.h"

#include <ATen/autocast_mode.h>

#include <string>

namespace peaknas::worker {

StatusOr<search::DType> ParsePrecision(std::string_view s) {
  if (StatusOr<search::DType> dtype = search::ParseDType(s); dtype.ok()) return dtype;
  return Status::InvalidArgument("precision: '" + std::string(s) +
                                 "' is not one of fp32, bf16, fp16");
}

Status CheckPrecision(search::DType p, torch::Device device) {
  if (p == search::DType::kFp16 && !device.is_cuda()) {
    return Status::InvalidArgument("precision: fp16 autocast needs a CUDA device, not " +
                                   device.str() + " (use bf16 or fp32)");
  }
  return Status::Ok();
}

AutocastGuard::AutocastGuard(search::DType p, torch::Device device) {
  if (p == search::DType::kFp32) return;
  const at::ScalarType dtype = p == search::DType::kBf16 ? at::kBFloat16 : at::kHalf;
  if (device.is_cuda()) {
    cuda_ = true;
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(true);
  } else {
    cpu_ = true;
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!cpu_ && !cuda_) return;
  if (cuda_) at::autocast::set_enabled(false);
  if (cpu_) at::autocast::set_cpu_enabled(false);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

}  // namespace peaknas::worker
