#include "worker/malloc_tuning.h"

#include <malloc.h>

namespace peaknas::worker {
namespace {

// The thresholds in force, as last set through this file (glibc has no getter); 0: glibc's
// defaults (dynamic mmap threshold).
int mmap_threshold = 0;
int trim_threshold = 0;

constexpr int kGlibcDefaultThreshold = 128 << 10;

}  // namespace

Status KeepFreedHeapMemory() {
  // Setting either threshold also turns glibc's dynamic mmap threshold off.
  if (mallopt(M_MMAP_THRESHOLD, 256 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 1 << 30) != 1) {
    return Status::Internal(
        "mallopt refused the heap settings (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)");
  }
  mmap_threshold = 256 << 20;
  trim_threshold = 1 << 30;
  return Status::Ok();
}

MappedLargeBlocks::MappedLargeBlocks() {
  mallopt(M_MMAP_THRESHOLD, kMappedBlockBytes);
  mallopt(M_TRIM_THRESHOLD, kGlibcDefaultThreshold);
  malloc_trim(0);
}

MappedLargeBlocks::~MappedLargeBlocks() {
  mallopt(M_MMAP_THRESHOLD, mmap_threshold > 0 ? mmap_threshold : kGlibcDefaultThreshold);
  mallopt(M_TRIM_THRESHOLD, trim_threshold > 0 ? trim_threshold : kGlibcDefaultThreshold);
}

}  // namespace peaknas::worker
