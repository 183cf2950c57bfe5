// Test helper for the worker's tests: the small nets they train and measure in seconds.
#ifndef PEAKNAS_WORKER_TEST_NETS_H_
#define PEAKNAS_WORKER_TEST_NETS_H_

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

#include "search/architecture.h"

namespace peaknas::worker::testing {

// Two levels of widths {8, 16} (or `widths`), one block each, of the given kinds.
inline search::Architecture TwoLevelNet(
    search::SkipKind skip = search::SkipKind::kConcat,
    search::UpsampleKind upsample = search::UpsampleKind::kTransposed,
    search::DownsampleKind downsample = search::DownsampleKind::kStrided,
    search::ActivationKind activation = search::ActivationKind::kRelu,
    std::vector<int> widths = {8, 16}) {
  const std::vector<int> enc = {1, 1}, dec = {1};
  auto a = search::MakeArchitecture(widths, enc, dec, skip, upsample, downsample, activation);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? *a : search::Architecture();
}

// Three levels of widths {8, 16, 16}, one block each, leaky ReLU, of the given kinds: tiles of
// its images cross two downsamplings.
inline search::Architecture ThreeLevelNet(search::SkipKind skip, search::UpsampleKind upsample,
                                          search::DownsampleKind downsample) {
  auto a = search::MakeArchitecture(std::vector<int>{8, 16, 16}, std::vector<int>{1, 1, 1},
                                    std::vector<int>{1, 1}, skip, upsample, downsample,
                                    search::ActivationKind::kLeakyRelu);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? *a : search::Architecture();
}

// ThreeLevelNet of every skip x upsample x downsample kind (12 nets).
inline std::vector<search::Architecture> EveryKindThreeLevelNets() {
  std::vector<search::Architecture> out;
  for (search::SkipKind skip : {search::SkipKind::kConcat, search::SkipKind::kAdd}) {
    for (search::UpsampleKind up :
         {search::UpsampleKind::kTransposed, search::UpsampleKind::kBilinear,
          search::UpsampleKind::kPixelShuffle}) {
      for (search::DownsampleKind down :
           {search::DownsampleKind::kStrided, search::DownsampleKind::kMaxPool}) {
        out.push_back(ThreeLevelNet(skip, up, down));
      }
    }
  }
  return out;
}

// "add/bilinear/maxpool": a net's kinds, for failure messages.
inline std::string KindsLabel(const search::Architecture& a) {
  return std::string(search::Name(a.skip)) + "/" + std::string(search::Name(a.upsample)) + "/" +
         std::string(search::Name(a.downsample));
}

// The two dense layouts a network runs in (TiledOptions::layout; named by LayoutName).
inline constexpr std::array<torch::MemoryFormat, 2> kLayouts = {torch::MemoryFormat::Contiguous,
                                                                torch::MemoryFormat::ChannelsLast};

}  // namespace peaknas::worker::testing

#endif  // PEAKNAS_WORKER_TEST_NETS_H_
