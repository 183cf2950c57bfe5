#include "base/status.h"

#include <gtest/gtest.h>

namespace peaknas {
namespace {

TEST(CheckInRange, AcceptsBothEnds) {
  EXPECT_TRUE(CheckInRange("batch", 1, 1, 64).ok());
  EXPECT_TRUE(CheckInRange("batch", 64, 1, 64).ok());
}

TEST(CheckInRange, NamesTheFieldTheValueAndTheRange) {
  EXPECT_EQ(CheckInRange("batch", 0, 1, 64), Status::InvalidArgument("batch: 0 is not in [1, 64]"));
  EXPECT_EQ(CheckInRange("--workers", 2000, 0, 1024, "0 = one per core"),
            Status::InvalidArgument("--workers: 2000 is not in [0, 1024] (0 = one per core)"));
  EXPECT_EQ(CheckInRange("steps", -5'000'000'000, 1, 10'000'000).message(),
            "steps: -5000000000 is not in [1, 10000000]");
}

TEST(CheckAtLeast, SaysNegativeForAFloorOfZero) {
  EXPECT_TRUE(CheckAtLeast("threads", 0, 0).ok());
  EXPECT_EQ(CheckAtLeast("threads", -1, 0, "0: LibTorch's default").message(),
            "threads: -1 is negative (0: LibTorch's default)");
  EXPECT_EQ(CheckAtLeast("latency-runs", 0, 1).message(), "latency-runs: 0 is not >= 1");
  EXPECT_TRUE(CheckAtLeast("latency-runs", 1, 1).ok());
}

}  // namespace
}  // namespace peaknas
