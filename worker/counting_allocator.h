// A CPU allocator that counts live bytes and their high-water mark, installed in front of
// LibTorch's default CPU allocator with c10::SetCPUAllocator. oneDNN (ideep) buffers come
// through the same allocator, so workspaces are counted too.
//
// Counting is process-wide; Install() is idempotent. ResetPeak() sets the high-water mark to
// the bytes live now, so a measurement is "peak during this section".
//
// Thread-safety: all functions may be called from any thread.
#ifndef PEAKNAS_WORKER_COUNTING_ALLOCATOR_H_
#define PEAKNAS_WORKER_COUNTING_ALLOCATOR_H_

#include <cstdint>

namespace peaknas::worker {

class CpuAllocationCounter {
 public:
  // Installs the counting allocator (once per process).
  static void Install();
  static std::int64_t LiveBytes();
  static std::int64_t PeakBytes();
  static void ResetPeak();
};

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_COUNTING_ALLOCATOR_H_
