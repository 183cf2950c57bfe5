// A job's memory budget as the search sees it: the bytes, which peak they constrain (inference
// at a tile, or a training step at a patch), the dtype and the device profile the cost model
// is asked on — and the one figure every strategy compares with the bytes.
//
// Thread-safety: values and pure functions; safe from any thread.
#ifndef PEAKNAS_SEARCH_BUDGET_H_
#define PEAKNAS_SEARCH_BUDGET_H_

#include <cstdint>

#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/device_profile.h"

namespace peaknas::search {

struct Budget {
  std::int64_t bytes = 0;
  bool training = false;                // the training-step peak is constrained
  Shape tile{.batch = 1, .size = 256};  // inference batch and tile
  Shape patch{.batch = 8, .size = 64};  // training batch and patch
  DType dtype = DType::kFp32;
  const DeviceProfile* device = nullptr;  // the profile costed on; never null in a job's budget
};

// The peak the budget constrains: InferencePeakBytes at the tile, or TrainPeakBytes at the
// patch. Preconditions: Validate(arch), the budget's shape valid for arch, device set.
std::int64_t BudgetedPeakBytes(const Budget& budget, const Architecture& arch);

// The most intra-op threads, at most `threads`, at which the budgeted peak of `arch` still fits
// the budget: on a CPU profile the kernels and oneDNN's per-thread buffers depend on the thread
// count (DeviceProfile::cpu_conv), while the budget was checked at the profile's own. 1 when
// only that fits; 0 when the profile's peaks do not depend on threads (a GPU) or `threads` < 1
// (not stated). Same preconditions as BudgetedPeakBytes.
int MostThreadsWithinBudget(const Budget& budget, const Architecture& arch, int threads);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_BUDGET_H_
