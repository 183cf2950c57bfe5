#include "search/budget.h"

namespace peaknas::search {

std::int64_t BudgetedPeakBytes(const Budget& budget, const Architecture& arch) {
  return budget.training ? TrainPeakBytes(arch, budget.patch, budget.dtype, *budget.device)
                         : InferencePeakBytes(arch, budget.tile, budget.dtype, *budget.device);
}

}  // namespace peaknas::search
