#include "search/tiling.h"

#include <gtest/gtest.h>

#include <vector>

namespace peaknas::search {
namespace {

Architecture Arch(std::vector<int> widths, std::vector<int> enc, std::vector<int> dec,
                  UpsampleKind up = UpsampleKind::kTransposed,
                  DownsampleKind down = DownsampleKind::kStrided) {
  auto arch = MakeArchitecture(widths, enc, dec, SkipKind::kAdd, up, down, ActivationKind::kRelu);
  EXPECT_TRUE(arch.ok()) << arch.status().message();
  EXPECT_TRUE(Validate(*arch).ok());
  return *arch;
}

TEST(Tiling, TheRadiusAddsEachOpsReachAtItsScale) {
  // Stem, two 3x3 convolutions, head: one pixel each.
  EXPECT_EQ(ReceptiveFieldRadius(Arch({16}, {2}, {})), 4);
  // Stem 1, encoder 1, down 1, bottom 2 x 2, up 1, decoder 1, head 1.
  EXPECT_EQ(ReceptiveFieldRadius(Arch({16, 16}, {1, 2}, {1})), 10);
  // Bilinear's two coarse taps reach one output-scale pixel farther than a transposed 2x2.
  EXPECT_EQ(ReceptiveFieldRadius(Arch({16, 16}, {1, 2}, {1}, UpsampleKind::kBilinear)), 11);
  EXPECT_EQ(ReceptiveFieldRadius(
                Arch({16, 16}, {1, 2}, {1}, UpsampleKind::kPixelShuffle, DownsampleKind::kMaxPool)),
            10);
  // A third level doubles the reach of what runs there.
  EXPECT_EQ(ReceptiveFieldRadius(Arch({16, 16, 16}, {1, 1, 1}, {1, 1})),
            1 + (1 + 1) + (2 + 2) + 4 + 2 + 2 + 1 + 1 + 1);
}

TEST(Tiling, TheOverlapIsTheRadiusOnTheDownsamplingGrid) {
  for (const Architecture& arch : {Arch({16}, {2}, {}), Arch({16, 16}, {1, 2}, {1}),
                                   Arch({8, 16, 32, 64}, {2, 2, 2, 2}, {2, 2, 2})}) {
    const int overlap = SeamFreeOverlap(arch);
    EXPECT_EQ(overlap % SpatialMultiple(arch), 0);
    EXPECT_GE(overlap, ReceptiveFieldRadius(arch));
    EXPECT_LT(overlap - ReceptiveFieldRadius(arch), SpatialMultiple(arch));
  }
}

TEST(Tiling, TheLargestTileIsTheLargestWindowThatFitsLessTheOverlap) {
  const Architecture arch = Arch({16, 32}, {2, 2}, {2});
  const DeviceProfile& cpu = **FindDeviceProfile("cpu");
  const int overlap = SeamFreeOverlap(arch);
  const std::int64_t budget = std::int64_t{64} << 20;
  const int side = MaxTiledOutputSide(arch, budget, overlap, DType::kFp32, cpu);
  ASSERT_GT(side, 0);
  EXPECT_EQ(side % SpatialMultiple(arch), 0);
  const int window = side + 2 * overlap;
  EXPECT_LE(InferencePeakBytes(arch, {1, window}, DType::kFp32, cpu), budget);
  EXPECT_GT(InferencePeakBytes(arch, {1, window + SpatialMultiple(arch)}, DType::kFp32, cpu),
            budget);
  // A budget below the smallest window that leaves any centre.
  EXPECT_EQ(MaxTiledOutputSide(arch, 1 << 10, overlap, DType::kFp32, cpu), 0);
}

}  // namespace
}  // namespace peaknas::search
