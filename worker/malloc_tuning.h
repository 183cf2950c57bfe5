// glibc heap settings for a training process.
//
// By default glibc hands freed activation buffers back to the kernel (chunks above its dynamic
// mmap threshold are unmapped, the top of the heap is trimmed), and the next step faults them in
// again, zero-filled: up to ~10 000 minor faults per training step on a small U-Net, 4-15 % of
// the step's time (docs/benchmarks.md). KeepFreedHeapMemory serves allocations up to 256 MiB
// from the heap and keeps up to 1 GiB of free heap. The cost is that freed memory stays in the
// process: the resident high-water mark grows a little (about 3 % measured); the allocator
// peak the cost model is held to counts live tensors and does not change.
//
// Call once, early in main, before any tensor exists.
//
// Measuring what the OS sees is the opposite case: with freed memory kept, the resident set
// depends on how the heap fragments, which varies from one network to the next (up to 2x the
// live bytes measured). MappedLargeBlocks switches, for its scope, to serving every block of
// kMappedBlockBytes or more from its own mapping, returned to the kernel on free: the resident
// set then follows the live tensors, and the process peak is a fixed overhead plus the
// allocator peak to within about 1 % (docs/cost-model.md). Any glibc process can run that way
// (GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576), which is how a calibrated device peak
// holds for a deployed model.
#ifndef PEAKNAS_WORKER_MALLOC_TUNING_H_
#define PEAKNAS_WORKER_MALLOC_TUNING_H_

#include "base/status.h"

namespace peaknas::worker {

// INTERNAL when glibc refuses the settings (never with glibc 2.36).
Status KeepFreedHeapMemory();

inline constexpr int kMappedBlockBytes = 1 << 20;

// For its lifetime: the heap's free memory returned to the kernel (malloc_trim), and blocks of
// kMappedBlockBytes or more mapped on their own. The destructor restores KeepFreedHeapMemory's
// settings when they were in force, else glibc's default thresholds (fixed then: its dynamic
// mmap threshold stays off). Not thread-safe: one at a time, while no other thread allocates
// heavily.
class MappedLargeBlocks {
 public:
  MappedLargeBlocks();
  ~MappedLargeBlocks();
  MappedLargeBlocks(const MappedLargeBlocks&) = delete;
  MappedLargeBlocks& operator=(const MappedLargeBlocks&) = delete;
};

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_MALLOC_TUNING_H_
