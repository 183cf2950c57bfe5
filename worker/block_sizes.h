// The sizes of the blocks a c10 CPU allocator handed out, by data pointer.
//
// LibTorch's raw_allocate/raw_deallocate (oneDNN's scratchpads) hand only the data pointer back,
// so an allocator that needs a block's size on free, and whose context must equal the data
// pointer, looks it up here.
//
// Thread-safety: all functions may be called from any thread.
#ifndef PEAKNAS_WORKER_BLOCK_SIZES_H_
#define PEAKNAS_WORKER_BLOCK_SIZES_H_

#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace peaknas::worker {

class BlockSizes {
 public:
  void Add(void* p, std::size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = n;
  }
  // The block's size, forgotten; 0 when `p` was not added.
  std::size_t Remove(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sizes_.find(p);
    if (it == sizes_.end()) return 0;
    const std::size_t n = it->second;
    sizes_.erase(it);
    return n;
  }

 private:
  std::mutex mu_;
  std::unordered_map<void*, std::size_t> sizes_;  // guarded by mu_
};

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_BLOCK_SIZES_H_
