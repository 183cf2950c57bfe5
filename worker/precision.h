// Numeric precision of a forward pass, as a search::DType: fp32, or autocast to bf16/fp16
// where the device has it (the cost model is asked at the same dtype).
#ifndef PEAKNAS_WORKER_PRECISION_H_
#define PEAKNAS_WORKER_PRECISION_H_

#include <torch/torch.h>

#include <string_view>

#include "base/status.h"
#include "search/device_profile.h"

namespace peaknas::worker {

// "fp32", "bf16", "fp16" (the --precision flag); INVALID_ARGUMENT naming the flag otherwise.
StatusOr<search::DType> ParsePrecision(std::string_view s);
// INVALID_ARGUMENT when `device` cannot autocast to `dtype` (fp16 needs CUDA; bf16 needs a CPU
// or a CUDA device with bf16 support).
Status CheckPrecision(search::DType dtype, torch::Device device);

// Enables autocast to `dtype` on `device` for its lifetime (nothing for fp32).
class AutocastGuard {
 public:
  AutocastGuard(search::DType dtype, torch::Device device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool cpu_ = false;
  bool cuda_ = false;
};

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_PRECISION_H_
