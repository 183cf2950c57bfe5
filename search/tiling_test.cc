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

TEST(Tiling, APlanCountsTheWindowsOfEachShape) {
  // Tiles at 0, 8, 16 of a 20-pixel axis: windows [0, 12), [4, 20), [12, 20).
  TilePlan plan = PlanTiles(20, 20, 8, 4, 4);
  EXPECT_EQ(plan.WindowCount(), 9);
  ASSERT_EQ(plan.windows.size(), 9u);
  for (const WindowShape& w : plan.windows) {
    EXPECT_EQ(w.count, 1);
    EXPECT_TRUE(w.height == 12 || w.height == 16 || w.height == 8) << w.height;
  }
  // Ten tiles a side: the two edge windows reach one way, the eight inner ones both.
  plan = PlanTiles(10000, 10000, 1000, 16, 16);
  ASSERT_EQ(plan.windows.size(), 4u);
  EXPECT_EQ(plan.windows[0].height, 1032);
  EXPECT_EQ(plan.windows[0].width, 1032);
  EXPECT_EQ(plan.windows[0].count, 64);
  EXPECT_EQ(plan.windows[1].count, 16);
  EXPECT_EQ(plan.windows[2].count, 16);
  EXPECT_EQ(plan.windows[3].height, 1016);
  EXPECT_EQ(plan.windows[3].width, 1016);
  EXPECT_EQ(plan.windows[3].count, 4);
  EXPECT_EQ(plan.WindowCount(), 100);
  // The image is padded to the grid first; one tile covers it whole.
  plan = PlanTiles(10, 7, 16, 8, 4);
  EXPECT_EQ(plan.height, 12);
  EXPECT_EQ(plan.width, 8);
  ASSERT_EQ(plan.windows.size(), 1u);
  EXPECT_EQ(plan.windows[0].height, 12);
  EXPECT_EQ(plan.windows[0].width, 8);
}

TEST(Tiling, TheHundredMegapixelPassRunsTheLargestSeamFreeTile) {
  const Architecture arch = Arch({16, 32}, {2, 2}, {2});
  const DeviceProfile& cpu = **FindDeviceProfile("cpu");
  const std::int64_t budget = std::int64_t{64} << 20;
  const HundredMegapixelPass pass = PlanHundredMegapixels(arch, budget, DType::kFp32, cpu);
  EXPECT_EQ(pass.plan.tile,
            MaxTiledOutputSide(arch, budget, SeamFreeOverlap(arch), DType::kFp32, cpu));
  EXPECT_EQ(pass.plan.overlap, SeamFreeOverlap(arch));
  const std::int64_t per_side = (10000 + pass.plan.tile - 1) / pass.plan.tile;
  EXPECT_EQ(pass.plan.WindowCount(), per_side * per_side);
  double seconds = 0;
  for (const WindowShape& w : pass.plan.windows) {
    seconds += w.count * InferenceLatencySeconds(arch, 1, w.height, w.width, DType::kFp32, cpu);
  }
  EXPECT_DOUBLE_EQ(pass.seconds, seconds);
  // The overlap costs time: more than the same tiles would take without it.
  EXPECT_GT(pass.seconds,
            static_cast<double>(per_side * per_side) *
                InferenceLatencySeconds(arch, {1, pass.plan.tile}, DType::kFp32, cpu));
  // A larger budget gives a larger tile and less time.
  const HundredMegapixelPass wider = PlanHundredMegapixels(arch, 4 * budget, DType::kFp32, cpu);
  EXPECT_GT(wider.plan.tile, pass.plan.tile);
  EXPECT_LT(wider.seconds, pass.seconds);
  const HundredMegapixelPass none = PlanHundredMegapixels(arch, 1 << 10, DType::kFp32, cpu);
  EXPECT_EQ(none.plan.tile, 0);
  EXPECT_TRUE(none.plan.windows.empty());
  EXPECT_EQ(none.seconds, 0);
}

}  // namespace
}  // namespace peaknas::search
