// LibTorch's large CPU tensors in mappings of their own, backed by transparent huge pages.
//
// MappedLargeBlocks (malloc_tuning.h) makes the resident set follow the live tensors by
// mapping every large block on its own and unmapping it on free; the price is that every block
// is faulted in again, 4 KiB at a time, zero-filled, each time it is allocated: in a tiled
// inference, every window's activations, half of `denoise`'s time (docs/benchmarks.md).
// InstallHugePageBlocks puts an allocator in front of LibTorch's CPU allocator (c10::
// SetCPUAllocator) that serves each block of kHugePageBlockBytes or more from a mapping aligned
// to 2 MiB and advised MADV_HUGEPAGE, unmapped on free: the resident set still follows the live
// tensors (a 2 MiB extent is faulted only inside the block), with a 512th of the faults where
// the kernel's transparent huge pages are "always" or "madvise"; with "never", the same as
// MappedLargeBlocks. Smaller blocks go to the allocator it was installed in front of.
//
// A freed block can be kept for the next block of the same length instead of being unmapped,
// so that a loop that allocates the same tensors over and over (one window after another)
// faults nothing after its first pass: SetHugePageBlockCache(cap) keeps freed mappings while
// the live blocks (small ones included) and the kept mappings stay within `cap` bytes,
// unmapping kept ones (largest first) when a new block would go over. With `cap` the pass's
// predicted allocator peak (the cost model's upper bound on its live tensors), what the
// tensors hold, kept mappings included, never exceeds that prediction.
// The cap is 0 (nothing kept) until set.
//
// Process-wide and idempotent: call before the tensors it should serve exist (tensors made
// before keep their own deleters). Not for training with CpuAllocationCounter, which counts
// through the allocator it finds installed.
//
// Thread-safety: InstallHugePageBlocks once, from one thread; allocation and free from any.
#ifndef PEAKNAS_WORKER_HUGE_PAGE_BLOCKS_H_
#define PEAKNAS_WORKER_HUGE_PAGE_BLOCKS_H_

#include <cstddef>

namespace peaknas::worker {

inline constexpr std::size_t kHugePageBlockBytes = std::size_t{1} << 20;

void InstallHugePageBlocks();

// See above; any thread, any time (kept mappings over the new cap are unmapped at once).
void SetHugePageBlockCache(std::size_t cap_bytes);

// The kernel's transparent-huge-page mode ("always", "madvise" or "never"; "" when unknown).
const char* TransparentHugePageMode();

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_HUGE_PAGE_BLOCKS_H_
