#include "worker/counting_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <mutex>

#include "worker/block_sizes.h"
#include "worker/cpu_allocator_chain.h"

namespace peaknas::worker {
namespace {

std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};

// Sizes by pointer: the context must equal the data pointer (block_sizes.h).
BlockSizes& Sizes() {
  static BlockSizes* table = new BlockSizes();  // never destroyed: frees may come at exit
  return *table;
}

CpuAllocatorBehind g_base;

void CountingDelete(void* p) {
  if (p == nullptr) return;
  g_live.fetch_sub(static_cast<std::int64_t>(Sizes().Remove(p)), std::memory_order_relaxed);
  g_base.deleter(p);
}

class CountingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    c10::DataPtr base = g_base.allocator->allocate(n);
    void* p = base.get();
    // The default CPU allocator's context is its data pointer; take ownership of it.
    base.release_context();
    if (p != nullptr) {
      Sizes().Add(p, n);
      const std::int64_t live = g_live.fetch_add(n, std::memory_order_relaxed) + n;
      std::int64_t peak = g_peak.load(std::memory_order_relaxed);
      while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
      }
    }
    return {p, p, &CountingDelete, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &CountingDelete; }
};

}  // namespace

void CpuAllocationCounter::Install() { InstallInFront<CountingCpuAllocator>(g_base); }

std::int64_t CpuAllocationCounter::LiveBytes() { return g_live.load(); }
std::int64_t CpuAllocationCounter::PeakBytes() { return g_peak.load(); }
void CpuAllocationCounter::ResetPeak() { g_peak.store(g_live.load()); }

}  // namespace peaknas::worker
