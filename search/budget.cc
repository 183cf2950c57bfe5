#include "search/budget.h"

namespace peaknas::search {

std::int64_t BudgetedPeakBytes(const Budget& budget, const Architecture& arch) {
  return budget.training ? TrainPeakBytes(arch, budget.patch, budget.dtype, *budget.device)
                         : InferencePeakBytes(arch, budget.tile, budget.dtype, *budget.device);
}

int MostThreadsWithinBudget(const Budget& budget, const Architecture& arch, int threads) {
  if (threads < 1 || !budget.device->cpu_conv.enabled) return 0;
  DeviceProfile device = *budget.device;
  Budget at = budget;
  at.device = &device;
  for (int t = threads; t > 1; --t) {
    device.cpu_conv.intra_op_threads = t;
    if (BudgetedPeakBytes(at, arch) <= budget.bytes) return t;
  }
  return 1;
}

}  // namespace peaknas::search
