// The huge-page block allocator on real LibTorch tensors: large blocks in an arena that keeps
// its pages and reuses them for blocks of any size, or, when it has no room, in mappings of
// their own returned on free; 2 MiB aligned and backed by huge pages where the kernel offers
// them.
#include "worker/huge_page_blocks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

TEST(HugePageBlocks, LargeBlocksOutsideAnArenaAreMappedAlignedAndReturnedOnFree) {
  InstallHugePageBlocks();
  ASSERT_TRUE(SetHugePageArena(0).ok());
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

TEST(HugePageBlocks, TheArenaKeepsItsPagesAndReusesThemForOtherSizes) {
  InstallHugePageBlocks();
  ASSERT_TRUE(SetHugePageArena(0).ok());
  WarmUp();
  ASSERT_TRUE(SetHugePageArena(40 * kMiB).ok());
  EXPECT_EQ(GetHugePageArenaStats().capacity, static_cast<std::size_t>(40 * kMiB));
  const std::int64_t before = ResidentBytes();
  void* first = nullptr;
  {
    const torch::Tensor t = Block(16 * kMiB);
    first = t.data_ptr();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % (2 * kMiB), 0u);  // the arena's start
    EXPECT_EQ(GetHugePageArenaStats().live, static_cast<std::size_t>(16 * kMiB));
  }
  EXPECT_EQ(GetHugePageArenaStats().live, 0u);
  EXPECT_GE(ResidentBytes() - before, 15 * kMiB);  // the arena keeps its pages
  {
    // A smaller block lands where the first was, on pages already resident.
    const torch::Tensor again = Block(12 * kMiB);
    EXPECT_EQ(again.data_ptr(), first);
    EXPECT_LE(ResidentBytes() - before, 17 * kMiB);
    // Small blocks stay out of the arena.
    const torch::Tensor small = torch::ones({1000});
    EXPECT_EQ(GetHugePageArenaStats().live, static_cast<std::size_t>(12 * kMiB));
    // A block that cannot be changed while one lives in it.
    EXPECT_EQ(SetHugePageArena(8 * kMiB).code(), StatusCode::kFailedPrecondition);
  }
  {
    // Three 16 MiB blocks live do not fit in 40 MiB: the third is a miss, mapped on its own,
    // and the arena gives its free pages back.
    const torch::Tensor a = Block(16 * kMiB), b = Block(16 * kMiB);
    EXPECT_EQ(GetHugePageArenaStats().misses, 0);
    const torch::Tensor c = Block(16 * kMiB);
    EXPECT_EQ(GetHugePageArenaStats().misses, 1);
    EXPECT_EQ(GetHugePageArenaStats().live, static_cast<std::size_t>(32 * kMiB));
    EXPECT_EQ(c.sum().item<float>(), 4.0f * kMiB);
    EXPECT_LE(ResidentBytes() - before, 50 * kMiB);
  }
  ASSERT_TRUE(SetHugePageArena(0).ok());  // unmaps the arena
  EXPECT_LT(ResidentBytes() - before, 4 * kMiB);
}

TEST(HugePageBlocks, BlocksAreBackedByHugePagesWhereTheKernelOffersThem) {
  InstallHugePageBlocks();
  ASSERT_TRUE(SetHugePageArena(32 * kMiB).ok());
  const std::string mode = TransparentHugePageMode();
  const torch::Tensor in_arena = Block(16 * kMiB);
  ASSERT_TRUE(SetHugePageArena(0).code() == StatusCode::kFailedPrecondition);
  const torch::Tensor mapped = Block(20 * kMiB);  // does not fit beside the first: its own
  for (const torch::Tensor* t : {&in_arena, &mapped}) {
    if (mode == "always" || mode == "madvise") {
      EXPECT_GE(HugePageBytesAt(t->data_ptr()), 2 * kMiB) << "mode " << mode;
    } else {
      EXPECT_EQ(HugePageBytesAt(t->data_ptr()), 0) << "mode " << mode;
    }
  }
}

}  // namespace
}  // namespace peaknas::worker
