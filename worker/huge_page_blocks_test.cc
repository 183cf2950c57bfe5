// The huge-page block allocator on real LibTorch tensors: large blocks in mappings of their own
// (2 MiB aligned, backed by huge pages where the kernel offers them), returned to the kernel
// on free, or kept for the next block of the same size while under the cap.
#include "worker/huge_page_blocks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace peaknas::worker {
namespace {

constexpr std::int64_t kMiB = 1 << 20;

std::int64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// AnonHugePages of the mapping that holds `p` (/proc/self/smaps), in bytes.
std::int64_t HugePageBytesAt(const void* p) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    std::uintptr_t start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2 && line.find(' ') < 40) {
      inside = start <= address && address < end;
    } else if (inside && line.rfind("AnonHugePages:", 0) == 0) {
      std::istringstream fields(line.substr(14));
      std::int64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

// LibTorch's first operations (its thread pool, kernels' first use) make memory resident that
// stays: done before a test reads its baseline.
void WarmUp() {
  const torch::Tensor t = torch::ones({1 << 20});
  EXPECT_EQ(t.sum().item<float>(), static_cast<float>(1 << 20));
}

torch::Tensor Block(std::int64_t bytes) {
  torch::Tensor t = torch::empty({bytes / 4}, torch::kFloat32);
  t.fill_(1.0f);  // touch every page
  return t;
}

TEST(HugePageBlocks, LargeBlocksAreMappedAlignedAndReturnedOnFree) {
  InstallHugePageBlocks();
  SetHugePageBlockCache(0);
  WarmUp();
  const std::int64_t before = ResidentBytes();
  {
    const torch::Tensor t = Block(16 * kMiB);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % (2 * kMiB), 0u);
    EXPECT_GE(ResidentBytes() - before, 15 * kMiB);
    EXPECT_EQ(t.sum().item<float>(), 4.0f * kMiB);
  }
  EXPECT_LT(ResidentBytes() - before, 4 * kMiB);  // unmapped, not kept by a heap
  // Small blocks go to LibTorch's own allocator and come back the same way.
  const torch::Tensor small = torch::ones({1000});
  EXPECT_EQ(small.sum().item<float>(), 1000.0f);
}

TEST(HugePageBlocks, FreedBlocksAreKeptForReuseUnderTheCapOnly) {
  InstallHugePageBlocks();
  SetHugePageBlockCache(0);
  WarmUp();
  SetHugePageBlockCache(40 * kMiB);
  const std::int64_t before = ResidentBytes();
  void* first = nullptr;
  {
    const torch::Tensor t = Block(16 * kMiB);
    first = t.data_ptr();
  }
  EXPECT_GE(ResidentBytes() - before, 15 * kMiB);  // kept
  {
    const torch::Tensor again = torch::empty({4 * kMiB}, torch::kFloat32);
    EXPECT_EQ(again.data_ptr(), first);  // the same mapping, nothing faulted in
    // A second live block: 16 live + 16 more = 32 MiB fits under 40.
    const torch::Tensor second = Block(16 * kMiB);
    EXPECT_NE(second.data_ptr(), first);
  }
  // Both freed and kept: 32 MiB, under the cap of 40.
  EXPECT_GE(ResidentBytes() - before, 31 * kMiB);
  {
    // A block of another size does not fit beside 32 MiB kept under a 40 MiB cap: kept ones
    // are unmapped (largest first) until it does.
    const torch::Tensor other = Block(12 * kMiB);
    EXPECT_LE(ResidentBytes() - before, 40 * kMiB + 2 * kMiB);
  }
  SetHugePageBlockCache(0);  // unmaps everything kept
  EXPECT_LT(ResidentBytes() - before, 4 * kMiB);
}

TEST(HugePageBlocks, BlocksAreBackedByHugePagesWhereTheKernelOffersThem) {
  InstallHugePageBlocks();
  SetHugePageBlockCache(0);
  const std::string mode = TransparentHugePageMode();
  const torch::Tensor t = Block(16 * kMiB);
  if (mode == "always" || mode == "madvise") {
    EXPECT_GE(HugePageBytesAt(t.data_ptr()), 2 * kMiB) << "mode " << mode;
  } else {
    EXPECT_EQ(HugePageBytesAt(t.data_ptr()), 0) << "mode " << mode;
  }
}

}  // namespace
}  // namespace peaknas::worker
