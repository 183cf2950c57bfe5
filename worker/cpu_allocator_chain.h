// Putting an allocator in front of LibTorch's CPU allocator (c10::SetCPUAllocator), as the
// counting allocator (counting_allocator.h) and the huge-page blocks (huge_page_blocks.h) do:
// the front allocator serves what it wants and hands the rest, and the frees of blocks it did
// not make, to the allocator that was in force before it.
//
// Thread-safety: InstallInFront is safe to call from any thread; it installs once per type.
#ifndef PEAKNAS_WORKER_CPU_ALLOCATOR_CHAIN_H_
#define PEAKNAS_WORKER_CPU_ALLOCATOR_CHAIN_H_

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <mutex>

namespace peaknas::worker {

// The allocator an installed front allocator delegates to, and that allocator's deleter.
struct CpuAllocatorBehind {
  c10::Allocator* allocator = nullptr;
  c10::DeleterFnPtr deleter = nullptr;
};

// Installs a process-lifetime `Front` in front of the CPU allocator in force, the first time it
// is called for `Front`, after recording that allocator in `behind`.
template <typename Front>
void InstallInFront(CpuAllocatorBehind& behind) {
  static std::once_flag once;
  std::call_once(once, [&behind] {
    behind.allocator = c10::GetCPUAllocator();
    behind.deleter = behind.allocator->raw_deleter();
    static Front front;
    c10::SetCPUAllocator(&front, /*priority=*/100);
  });
}

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_CPU_ALLOCATOR_CHAIN_H_
