// Test helper for the worker's tests: the small nets they train and measure in seconds.
#ifndef PEAKNAS_WORKER_TEST_NETS_H_
#define PEAKNAS_WORKER_TEST_NETS_H_

#include <gtest/gtest.h>

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

}  // namespace peaknas::worker::testing

#endif  // PEAKNAS_WORKER_TEST_NETS_H_
