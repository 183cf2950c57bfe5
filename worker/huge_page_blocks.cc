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
#include "worker/cpu_allocator_chain.h"

namespace peaknas::worker {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kPage = 4096;

// Mapping lengths by data pointer: the context must equal the data pointer (block_sizes.h).
BlockSizes& Mappings() {
  static BlockSizes* table = new BlockSizes();  // never destroyed: frees may come at exit
  return *table;
}

CpuAllocatorBehind g_base;

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

// One mapping, in huge pages, that large blocks are placed in first-fit by offset and freed
// back to (coalescing with free neighbours). Its pages stay resident once touched, so a loop
// that allocates the same tensors window after window faults only in its first window, and the
// arena never holds more than its capacity.
class Arena {
 public:
  Status Reset(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_ > 0) {
      return Status::FailedPrecondition("the huge-page arena still holds " + std::to_string(live_) +
                                        " bytes of live blocks");
    }
    if (base_ != nullptr) munmap(base_, capacity_);
    base_ = nullptr;
    capacity_ = 0;
    free_.clear();
    misses_ = 0;
    if (bytes == 0) return Status::Ok();
    // Whole pages: a last 2 MiB extent that is only partly inside stays in 4 KiB pages, so the
    // arena never holds more than `bytes` rounded up to a page.
    const std::size_t capacity = (bytes + kPage - 1) / kPage * kPage;
    base_ = static_cast<char*>(MapAligned(capacity));
    if (base_ == nullptr) {
      return Status::ResourceExhausted("cannot map a huge-page arena of " +
                                       std::to_string(capacity) + " bytes");
    }
    capacity_ = capacity;
    free_.emplace(0, capacity);
    return Status::Ok();
  }

  // `length` bytes (a multiple of the page) from the lowest free range that holds them;
  // nullptr when none does (a miss: the free ranges' pages are then given back to the kernel,
  // so that what the arena keeps resident and the blocks placed elsewhere together stay
  // within what is live).
  void* Allocate(std::size_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    if (base_ == nullptr) return nullptr;
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < length) continue;
      const std::size_t offset = it->first, rest = it->second - length;
      free_.erase(it);
      if (rest > 0) free_.emplace(offset + length, rest);
      live_ += length;
      return base_ + offset;
    }
    ++misses_;
    for (const auto& [offset, length_free] : free_) {
      madvise(base_ + offset, length_free, MADV_DONTNEED);
    }
    return nullptr;
  }

  void Free(void* p, std::size_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    live_ -= length;
    std::size_t offset = static_cast<std::size_t>(static_cast<char*>(p) - base_);
    auto next = free_.lower_bound(offset);
    if (next != free_.end() && offset + length == next->first) {
      length += next->second;
      next = free_.erase(next);
    }
    if (next != free_.begin()) {
      auto previous = std::prev(next);
      if (previous->first + previous->second == offset) {
        offset = previous->first;
        length += previous->second;
        free_.erase(previous);
      }
    }
    free_.emplace(offset, length);
  }

  HugePageArenaStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {capacity_, live_, misses_};
  }

 private:
  std::mutex mu_;
  char* base_ = nullptr;                     // guarded by mu_
  std::size_t capacity_ = 0;                 // guarded by mu_
  std::map<std::size_t, std::size_t> free_;  // offset -> length; guarded by mu_
  std::size_t live_ = 0;                     // guarded by mu_
  std::int64_t misses_ = 0;                  // guarded by mu_
};

Arena& TheArena() {
  static Arena* arena = new Arena();  // never destroyed: frees may come at exit
  return *arena;
}

// How a block was served, in the top bits of its recorded size.
constexpr std::size_t kBaseBit = std::size_t{1} << 63;   // LibTorch's own allocator
constexpr std::size_t kArenaBit = std::size_t{1} << 62;  // the arena
constexpr std::size_t kSizeMask = ~(kBaseBit | kArenaBit);

void Delete(void* p) {
  if (p == nullptr) return;
  const std::size_t recorded = Mappings().Remove(p);
  const std::size_t n = recorded & kSizeMask;
  if (recorded == 0 || (recorded & kBaseBit) != 0) {
    g_base.deleter(p);  // LibTorch's own, or a block from before the install
  } else if ((recorded & kArenaBit) != 0) {
    TheArena().Free(p, n);
  } else {
    munmap(p, n);
  }
}

class HugePageAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    void* p = nullptr;
    std::size_t recorded = 0;
    const std::size_t length = (n + kPage - 1) / kPage * kPage;
    if (n >= kArenaBlockBytes) {
      p = TheArena().Allocate(length);
      recorded = length | kArenaBit;
    }
    if (p == nullptr && n >= kHugePageBlockBytes) {
      p = MapAligned(length);
      if (p == nullptr) throw std::bad_alloc();
      recorded = length;
    }
    if (p == nullptr) {
      c10::DataPtr base = g_base.allocator->allocate(n);
      p = base.get();
      base.release_context();  // the default CPU allocator's context is its data pointer
      recorded = n | kBaseBit;
    }
    if (p != nullptr && (recorded & kSizeMask) > 0) Mappings().Add(p, recorded);
    return {p, p, &Delete, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }
};

}  // namespace

void InstallHugePageBlocks() { InstallInFront<HugePageAllocator>(g_base); }

Status SetHugePageArena(std::size_t bytes) { return TheArena().Reset(bytes); }

HugePageArenaStats GetHugePageArenaStats() { return TheArena().Stats(); }

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
