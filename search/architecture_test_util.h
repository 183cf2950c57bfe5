// What the search library's architecture and space tests share (architecture_test.cc,
// space_test.cc): the design example of DESIGN.md, and assertions on messages in plain
// GoogleTest (the test binary does not link gmock).
#ifndef PEAKNAS_SEARCH_ARCHITECTURE_TEST_UTIL_H_
#define PEAKNAS_SEARCH_ARCHITECTURE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <string>

#include "search/architecture.h"

namespace peaknas::search::testing {

// The example of DESIGN.md: widths 32 64 128 256, encoder blocks 1 1 2 2, decoder blocks 1 1 1,
// concat skips, transposed upsampling, strided downsampling, ReLU.
inline Architecture DesignExample() {
  const int widths[] = {32, 64, 128, 256};
  const int enc[] = {1, 1, 2, 2};
  const int dec[] = {1, 1, 1};
  StatusOr<Architecture> a =
      MakeArchitecture(widths, enc, dec, SkipKind::kConcat, UpsampleKind::kTransposed,
                       DownsampleKind::kStrided, ActivationKind::kRelu);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return *a;
}

inline ::testing::AssertionResult HasSubstr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

inline ::testing::AssertionResult StartsWith(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not start with \"" << prefix << "\"";
}

}  // namespace peaknas::search::testing

#endif  // PEAKNAS_SEARCH_ARCHITECTURE_TEST_UTIL_H_
