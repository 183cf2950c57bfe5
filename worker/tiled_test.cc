// Tiled inference against whole-image inference on real LibTorch U-Nets of every skip,
// upsample and downsample kind: equal to float rounding with the seam-free overlap, different
// without it; and the receptive-field radius search/tiling.h computes, against the reach
// measured by perturbing one input pixel.
#include "worker/tiled.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "search/tiling.h"
#include "worker/measure.h"
#include "worker/test_nets.h"
#include "worker/unet.h"

namespace peaknas::worker {
namespace {

// In both layouts: windows handed over channels-last, to a network whose weights are
// channels-last too (what `denoise` runs on the CPU), give the same image to float rounding.
TEST(Tiled, EqualsTheWholeImageForEveryKindAndLayoutWithTheSeamFreeOverlap) {
  torch::manual_seed(3);
  const torch::Tensor image = torch::rand({1, 3, 72, 88});
  for (const torch::MemoryFormat layout : testing::kLayouts) {
    for (const search::Architecture& arch : testing::EveryKindThreeLevelNets()) {
      SCOPED_TRACE(testing::KindsLabel(arch) + " " + LayoutName(layout));
      UNet net(arch);
      torch::NoGradGuard no_grad;
      const torch::Tensor whole = net->forward(image);
      SetWeightLayout(net, layout);
      int in_layout = 0;
      const auto forward = [&](const torch::Tensor& x) {
        in_layout += x.is_contiguous(layout);
        return net->forward(x);
      };
      const int m = search::SpatialMultiple(arch);
      int tiles = 0;
      const auto tiled = ForwardTiled(
          forward, image,
          {.tile = 16, .overlap = search::SeamFreeOverlap(arch), .multiple = m, .layout = layout},
          [&](int done, int total) {
            tiles = done;
            EXPECT_EQ(total, 5 * 6);
          });
      ASSERT_TRUE(tiled.ok()) << tiled.status().message();
      EXPECT_EQ(tiles, 30);
      EXPECT_EQ(in_layout, 30);
      EXPECT_LT((*tiled - whole).abs().max().item<double>(), 1e-5);
      // Without the overlap the tiles' borders differ: the comparison has power.
      const auto seamed =
          ForwardTiled(forward, image, {.tile = 16, .overlap = 0, .multiple = m, .layout = layout});
      ASSERT_TRUE(seamed.ok());
      EXPECT_GT((*seamed - whole).abs().max().item<double>(), 1e-3);
    }
  }
}

TEST(Tiled, TheRadiusBoundsTheMeasuredReachAndIsCloseToIt) {
  torch::manual_seed(4);
  for (const search::Architecture& arch : testing::EveryKindThreeLevelNets()) {
    UNet net(arch);
    torch::NoGradGuard no_grad;
    // Poked at each alignment to the downsampling grid; the widest reach counts.
    const int side = 96;
    const torch::Tensor image = torch::rand({1, 3, side, side});
    const torch::Tensor base = net->forward(image);
    int reach = 0;
    for (int centre = 44; centre < 44 + search::SpatialMultiple(arch); ++centre) {
      torch::Tensor poked = image.clone();
      poked.index_put_({0, torch::indexing::Slice(), centre, centre}, 5.0);
      const torch::Tensor changed = (net->forward(poked) - base).abs().amax(1).squeeze(0) > 0;
      const torch::Tensor where = changed.nonzero();
      ASSERT_GT(where.size(0), 0);
      for (int axis : {0, 1}) {
        reach = std::max(reach,
                         static_cast<int>((where.index({torch::indexing::Slice(), axis}) - centre)
                                              .abs()
                                              .max()
                                              .item<std::int64_t>()));
      }
    }
    const int radius = search::ReceptiveFieldRadius(arch);
    std::printf("%s: measured reach %d, radius %d\n", testing::KindsLabel(arch).c_str(), reach,
                radius);
    EXPECT_LE(reach, radius) << testing::KindsLabel(arch);
    EXPECT_GE(reach, radius - 2 * search::SpatialMultiple(arch)) << testing::KindsLabel(arch);
  }
}

TEST(Tiled, RunsTheWindowsOfThePlan) {
  // The windows a tiled pass runs, by shape, are the ones search::PlanTiles counts (and the
  // 100-MP latency is timed and predicted by).
  for (const auto& [h, w, tile, overlap] : std::vector<std::array<int, 4>>{
           {40, 56, 16, 4}, {36, 36, 12, 8}, {20, 44, 48, 4}, {64, 24, 8, 0}}) {
    std::map<std::pair<int, int>, std::int64_t> ran;
    const auto record = [&](const torch::Tensor& x) {
      ++ran[{static_cast<int>(x.size(2)), static_cast<int>(x.size(3))}];
      return x;
    };
    ASSERT_TRUE(ForwardTiled(record, torch::zeros({1, 3, h, w}),
                             {.tile = tile, .overlap = overlap, .multiple = 4})
                    .ok());
    std::map<std::pair<int, int>, std::int64_t> planned;
    for (const search::WindowShape& s : search::PlanTiles(h, w, tile, overlap, 4).windows) {
      planned[{s.height, s.width}] += s.count;
    }
    EXPECT_EQ(ran, planned) << h << "x" << w << " tile " << tile << " overlap " << overlap;
  }
}

TEST(Tiled, RefusesTilesAndImagesOffTheGrid) {
  const auto identity = [](const torch::Tensor& x) { return x; };
  const torch::Tensor image = torch::zeros({1, 3, 16, 16});
  EXPECT_EQ(ForwardTiled(identity, image, {.tile = 6, .overlap = 0, .multiple = 4})
                .status()
                .message()
                .rfind("tile: ", 0),
            0u);
  EXPECT_EQ(ForwardTiled(identity, image, {.tile = 8, .overlap = 2, .multiple = 4})
                .status()
                .message()
                .rfind("overlap: ", 0),
            0u);
  EXPECT_EQ(
      ForwardTiled(identity, torch::zeros({1, 3, 18, 16}), {.tile = 8, .overlap = 0, .multiple = 4})
          .status()
          .message()
          .rfind("image: ", 0),
      0u);
}

}  // namespace
}  // namespace peaknas::worker
