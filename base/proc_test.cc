#include "base/proc.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace peaknas::base {
namespace {

TEST(ProcKibField, ReadsAKilobyteFieldInBytes) {
  // Touch 8 MiB so the high-water mark is at least that.
  std::vector<char> touched(std::size_t{8} << 20, 1);
  const std::int64_t peak = ProcKibField("/proc/self/status", "VmHWM");
  EXPECT_GE(peak, static_cast<std::int64_t>(touched.size()));
  EXPECT_EQ(peak % 1024, 0);
  EXPECT_EQ(ProcKibField("/proc/" + std::to_string(getpid()) + "/status", "VmHWM") >= peak, true);
  EXPECT_GT(ProcKibField("/proc/meminfo", "MemAvailable"), 0);
}

TEST(ProcKibField, AMissingKeyOrFileIsMinusOne) {
  EXPECT_EQ(ProcKibField("/proc/self/status", "NoSuchField"), -1);
  EXPECT_EQ(ProcKibField("/proc/self/status", "VmHW"), -1);  // a prefix of a key is not it
  EXPECT_EQ(ProcKibField("/nonexistent/status", "VmHWM"), -1);
}

}  // namespace
}  // namespace peaknas::base
