// LibTorch's CPU tensors in huge pages: large ones in an arena that keeps its pages, the rest
// of the large ones in mappings of their own.
//
// MappedLargeBlocks (malloc_tuning.h) makes the resident set follow the live tensors by mapping
// every large block on its own and unmapping it on free; the price is that every block is
// faulted in again, zero-filled, each time it is allocated: in a tiled inference, every
// window's activations. InstallHugePageBlocks puts an allocator in front of LibTorch's CPU
// allocator (c10::SetCPUAllocator) that serves
//   * blocks of kArenaBlockBytes or more from the arena (SetHugePageArena): one mapping of a
//     fixed size, advised MADV_HUGEPAGE, in which blocks are placed first-fit by offset and
//     freed back, coalescing. Its pages stay resident once touched, so a loop that allocates
//     the same tensors window after window faults only in its first window, and the arena never
//     holds more than its size. With the size the pass's predicted allocator peak (the cost
//     model's upper bound on the live tensors), the tensors hold no more than that prediction.
//     When a block does not fit (fragmentation, or more live than the size), the arena gives
//     the pages of its free ranges back to the kernel, and the block goes on;
//   * blocks of kHugePageBlockBytes or more that the arena does not hold from a mapping of
//     their own, aligned to 2 MiB, advised MADV_HUGEPAGE, unmapped on free;
//   * smaller ones from the allocator it was installed in front of.
// Huge pages need the kernel's transparent huge pages in mode "always" or "madvise"; with
// "never", the same with 4 KiB pages.
//
// Process-wide: call InstallHugePageBlocks before the tensors it should serve exist (tensors
// made before keep their own deleters). Not for training with CpuAllocationCounter, which counts
// through the allocator it finds installed.
//
// Thread-safety: InstallHugePageBlocks once, from one thread; the rest from any thread.
#ifndef PEAKNAS_WORKER_HUGE_PAGE_BLOCKS_H_
#define PEAKNAS_WORKER_HUGE_PAGE_BLOCKS_H_

#include <cstddef>
#include <cstdint>

#include "base/status.h"

namespace peaknas::worker {

inline constexpr std::size_t kArenaBlockBytes = std::size_t{64} << 10;
inline constexpr std::size_t kHugePageBlockBytes = std::size_t{1} << 20;

void InstallHugePageBlocks();

// Replaces the arena with one of `bytes` (rounded up to a page; 0: none).
// FAILED_PRECONDITION while blocks live in the current one; RESOURCE_EXHAUSTED when the kernel
// refuses the mapping.
Status SetHugePageArena(std::size_t bytes);

struct HugePageArenaStats {
  std::size_t capacity = 0;  // bytes
  std::size_t live = 0;      // bytes of blocks placed in it, live now
  std::int64_t misses = 0;   // blocks it could not hold since the last SetHugePageArena
};
HugePageArenaStats GetHugePageArenaStats();

// The kernel's transparent-huge-page mode ("always", "madvise" or "never"; "" when unknown).
const char* TransparentHugePageMode();

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_HUGE_PAGE_BLOCKS_H_
