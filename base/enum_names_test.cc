#include "base/enum_names.h"

#include <gtest/gtest.h>

namespace peaknas {
namespace {

enum class Colour { kRed, kGreen, kBlue };

constexpr EnumNames<Colour, 2> kNames{{{{Colour::kRed, "red"}, {Colour::kGreen, "green"}}}};

TEST(EnumNames, ReadsTheTableBothWays) {
  static_assert(kNames.Name(Colour::kGreen) == "green");
  static_assert(kNames.Find("red") == Colour::kRed);
  EXPECT_EQ(kNames.Name(Colour::kRed), "red");
  EXPECT_EQ(kNames.Find("green"), Colour::kGreen);
}

TEST(EnumNames, SaysWhatItLacks) {
  EXPECT_EQ(kNames.Name(Colour::kBlue), "?");
  EXPECT_EQ(kNames.Name(Colour::kBlue, "UNKNOWN"), "UNKNOWN");
  EXPECT_EQ(kNames.Find("blue"), std::nullopt);
  EXPECT_EQ(kNames.Find("Red"), std::nullopt) << "names are matched exactly";
  EXPECT_EQ(kNames.List(), "red, green");
  EXPECT_EQ(kNames.List("|"), "red|green");
}

}  // namespace
}  // namespace peaknas
