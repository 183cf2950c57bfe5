#include "worker/malloc_tuning.h"

#include <malloc.h>

namespace peaknas::worker {

Status KeepFreedHeapMemory() {
  // Setting either threshold also turns glibc's dynamic mmap threshold off.
  if (mallopt(M_MMAP_THRESHOLD, 256 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 1 << 30) != 1) {
    return Status::Internal(
        "mallopt refused the heap settings (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)");
  }
  return Status::Ok();
}

}  // namespace peaknas::worker
