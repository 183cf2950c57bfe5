#include "worker/counting_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace peaknas::worker {
namespace {

std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};

// Sizes by pointer: raw_allocate/raw_deallocate (used by ideep) pass only the pointer back, so
// the context must equal the data pointer and sizes are looked up on free.
class SizeTable {
 public:
  void Add(void* p, std::int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = n;
  }
  std::int64_t Remove(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sizes_.find(p);
    if (it == sizes_.end()) return 0;
    const std::int64_t n = it->second;
    sizes_.erase(it);
    return n;
  }

 private:
  std::mutex mu_;
  std::unordered_map<void*, std::int64_t> sizes_;  // guarded by mu_
};

SizeTable& Sizes() {
  static SizeTable* table = new SizeTable();  // never destroyed: frees may come at exit
  return *table;
}

c10::Allocator* g_base = nullptr;
c10::DeleterFnPtr g_base_deleter = nullptr;

void CountingDelete(void* p) {
  if (p == nullptr) return;
  g_live.fetch_sub(Sizes().Remove(p), std::memory_order_relaxed);
  g_base_deleter(p);
}

class CountingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    c10::DataPtr base = g_base->allocate(n);
    void* p = base.get();
    // The default CPU allocator's context is its data pointer; take ownership of it.
    base.release_context();
    if (p != nullptr) {
      Sizes().Add(p, static_cast<std::int64_t>(n));
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

void CpuAllocationCounter::Install() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_base = c10::GetCPUAllocator();
    g_base_deleter = g_base->raw_deleter();
    static CountingCpuAllocator allocator;
    c10::SetCPUAllocator(&allocator, /*priority=*/100);
  });
}

std::int64_t CpuAllocationCounter::LiveBytes() { return g_live.load(); }
std::int64_t CpuAllocationCounter::PeakBytes() { return g_peak.load(); }
void CpuAllocationCounter::ResetPeak() { g_peak.store(g_live.load()); }

}  // namespace peaknas::worker
