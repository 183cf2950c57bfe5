#include "worker/huge_page_blocks.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "worker/block_sizes.h"

namespace peaknas::worker {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kPage = 4096;

// Mapping lengths by data pointer: the context must equal the data pointer (block_sizes.h).
BlockSizes& Mappings() {
  static BlockSizes* table = new BlockSizes();  // never destroyed: frees may come at exit
  return *table;
}

c10::Allocator* g_base = nullptr;
c10::DeleterFnPtr g_base_deleter = nullptr;

// `n` bytes (a multiple of the page) starting on a 2 MiB boundary, advised for huge pages;
// nullptr when the kernel refuses the mapping.
void* MapAligned(std::size_t n) {
  void* raw =
      mmap(nullptr, n + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const std::uintptr_t end = start + n + kHugePage;
  if (end > aligned + n) munmap(reinterpret_cast<void*>(aligned + n), end - (aligned + n));
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, n, MADV_HUGEPAGE);  // advice: without transparent huge pages it changes nothing
  return p;
}

// Freed mappings kept for reuse by a later block of the same length, while the mappings
// live and kept stay within the cap.
class BlockCache {
 public:
  void SetCap(std::size_t cap) {
    std::vector<std::pair<void*, std::size_t>> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cap_ = cap;
      EvictLocked(0, evicted);
    }
    Unmap(evicted);
  }

  // A kept mapping of exactly `length` bytes, counted live; nullptr when none is kept (then
  // kept mappings are unmapped until `length` more fits under the cap, and `length` is counted
  // live, to be mapped by the caller).
  void* Take(std::size_t length) {
    std::vector<std::pair<void*, std::size_t>> evicted;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = kept_.find(length); it != kept_.end()) {
        p = it->second;
        kept_.erase(it);
        kept_bytes_ -= length;
      } else {
        EvictLocked(length, evicted);
      }
      live_bytes_ += length;
    }
    Unmap(evicted);
    return p;
  }

  // Keeps the mapping when it fits under the cap; else unmaps it.
  void Give(void* p, std::size_t length) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_bytes_ -= length;
      if (live_bytes_ + kept_bytes_ + length <= cap_) {
        kept_.emplace(length, p);
        kept_bytes_ += length;
        return;
      }
    }
    munmap(p, length);
  }

  void Forget(std::size_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    live_bytes_ -= length;
  }

  // Blocks below kHugePageBlockBytes (LibTorch's own allocator serves them) count as live too:
  // the cap is on everything the tensors hold.
  void AddSmall(std::size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    live_bytes_ += n;
  }
  void RemoveSmall(std::size_t n) { Forget(n); }

 private:
  // Drops kept mappings (largest first) until `more` bytes fit with the rest under the cap.
  void EvictLocked(std::size_t more, std::vector<std::pair<void*, std::size_t>>& evicted) {
    while (!kept_.empty() && live_bytes_ + kept_bytes_ + more > cap_) {
      auto last = std::prev(kept_.end());
      evicted.emplace_back(last->second, last->first);
      kept_bytes_ -= last->first;
      kept_.erase(last);
    }
  }
  static void Unmap(const std::vector<std::pair<void*, std::size_t>>& mappings) {
    for (const auto& [p, n] : mappings) munmap(p, n);
  }

  std::mutex mu_;
  std::multimap<std::size_t, void*> kept_;  // by length; guarded by mu_
  std::size_t kept_bytes_ = 0;              // guarded by mu_
  std::size_t live_bytes_ = 0;              // guarded by mu_
  std::size_t cap_ = 0;                     // guarded by mu_
};

BlockCache& Cache() {
  static BlockCache* cache = new BlockCache();  // never destroyed: frees may come at exit
  return *cache;
}

// Small blocks are recorded with this bit set in their size.
constexpr std::size_t kSmallBit = std::size_t{1} << 63;

void Delete(void* p) {
  if (p == nullptr) return;
  const std::size_t n = Mappings().Remove(p);
  if (n == 0) {
    g_base_deleter(p);  // a block from before the install
  } else if ((n & kSmallBit) != 0) {
    Cache().RemoveSmall(n & ~kSmallBit);
    g_base_deleter(p);
  } else {
    Cache().Give(p, n);
  }
}

class HugePageAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    if (n < kHugePageBlockBytes) {
      c10::DataPtr base = g_base->allocate(n);
      void* p = base.get();
      base.release_context();  // the default CPU allocator's context is its data pointer
      if (p != nullptr && n > 0) {
        Mappings().Add(p, n | kSmallBit);
        Cache().AddSmall(n);
      }
      return {p, p, &Delete, c10::Device(c10::DeviceType::CPU)};
    }
    const std::size_t length = (n + kPage - 1) / kPage * kPage;
    void* p = Cache().Take(length);
    if (p == nullptr) p = MapAligned(length);
    if (p == nullptr) {
      Cache().Forget(length);
      throw std::bad_alloc();
    }
    Mappings().Add(p, length);
    return {p, p, &Delete, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }
};

}  // namespace

void InstallHugePageBlocks() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_base = c10::GetCPUAllocator();
    g_base_deleter = g_base->raw_deleter();
    static HugePageAllocator allocator;
    c10::SetCPUAllocator(&allocator, /*priority=*/100);
  });
}

void SetHugePageBlockCache(std::size_t cap_bytes) { Cache().SetCap(cap_bytes); }

const char* TransparentHugePageMode() {
  static const std::string mode = [] {
    std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    std::getline(in, line);
    const auto open = line.find('['), close = line.find(']');
    return open != std::string::npos && close > open ? line.substr(open + 1, close - open - 1)
                                                     : std::string();
  }();
  return mode.c_str();
}

}  // namespace peaknas::worker
