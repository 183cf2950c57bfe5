// Numeric precision of a forward pass: fp32, or autocast to bf16/fp16 where the device has it.
#ifndef PEAKNAS_WORKER_PRECISION_H_
#define PEAKNAS_WORKER_PRECISION_H_

#include <torch/torch.h>

#include <string_view>

#include "base/status.h"

namespace peaknas::worker {

enum class Precision { kFp32, kBf16, kFp16 };

std::string_view Name(Precision p);
// "fp32", "bf16", "fp16"; INVALID_ARGUMENT otherwise.
StatusOr<Precision> ParsePrecision(std::string_view s);
// INVALID_ARGUMENT when `device` cannot autocast to `p` (fp16 needs CUDA; bf16 needs a CPU or a
// CUDA device with bf16 support).
Status CheckPrecision(Precision p, torch::Device device);

// Enables autocast for `p` on `device` for its lifetime (nothing for fp32).
class AutocastGuard {
 public:
  AutocastGuard(Precision p, torch::Device device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool cpu_ = false;
  bool cuda_ = false;
};

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_PRECISION_H_
