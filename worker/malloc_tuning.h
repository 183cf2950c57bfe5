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
#ifndef PEAKNAS_WORKER_MALLOC_TUNING_H_
#define PEAKNAS_WORKER_MALLOC_TUNING_H_

#include "base/status.h"

namespace peaknas::worker {

// INTERNAL when glibc refuses the settings (never with glibc 2.36).
Status KeepFreedHeapMemory();

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_MALLOC_TUNING_H_
