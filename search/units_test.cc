#include "search/units.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace peaknas::search {
namespace {

constexpr std::int64_t kKiB = 1024;
constexpr std::int64_t kMiB = kKiB * 1024;
constexpr std::int64_t kGiB = kMiB * 1024;
constexpr std::int64_t kTiB = kGiB * 1024;
constexpr std::int64_t kMaxSize = std::int64_t{1} << 62;

// The parsed value; fails the test (and returns -1) on an error.
std::int64_t Parse(const std::string& text) {
  StatusOr<std::int64_t> bytes = ParseByteSize(text);
  EXPECT_TRUE(bytes.ok()) << text << ": " << bytes.status().ToString();
  return bytes.ok() ? *bytes : -1;
}

// The error of parsing `text` as `field`; fails the test if it parses.
Status ParseError(const std::string& text, const std::string& field = "budget") {
  StatusOr<std::int64_t> bytes = ParseByteSize(text, field);
  EXPECT_FALSE(bytes.ok()) << text << " parsed as " << (bytes.ok() ? *bytes : 0);
  return bytes.ok() ? Status::Ok() : bytes.status();
}

TEST(UnitsParseByteSize, PlainBytes) {
  EXPECT_EQ(Parse("0"), 0);
  EXPECT_EQ(Parse("1"), 1);
  EXPECT_EQ(Parse("1048576"), kMiB);
  EXPECT_EQ(Parse("007"), 7);
  EXPECT_EQ(Parse("12B"), 12);
  EXPECT_EQ(Parse("12 b"), 12);
}

TEST(UnitsParseByteSize, BinarySuffixes) {
  EXPECT_EQ(Parse("1KiB"), kKiB);
  EXPECT_EQ(Parse("512MiB"), 512 * kMiB);
  EXPECT_EQ(Parse("2GiB"), 2 * kGiB);
  EXPECT_EQ(Parse("3TiB"), 3 * kTiB);
  // Every unit FormatBytes prints reads back (found by fuzz/byte_size_fuzzer.cc).
  EXPECT_EQ(Parse("2 PiB"), 2 * 1024 * kTiB);
  EXPECT_EQ(Parse("1EiB"), 1024 * 1024 * kTiB);
  EXPECT_EQ(Parse("1PB"), std::int64_t{1'000'000'000'000'000});
  for (std::int64_t bytes : {std::int64_t{3339393339393333}, kMaxSize, 7 * kTiB + 5}) {
    const std::int64_t back = Parse(FormatBytes(bytes));
    EXPECT_NEAR(static_cast<double>(back), static_cast<double>(bytes), 0.005 * bytes)
        << FormatBytes(bytes);
  }
}

TEST(UnitsParseByteSize, DecimalSuffixes) {
  EXPECT_EQ(Parse("1KB"), 1000);
  EXPECT_EQ(Parse("5MB"), 5'000'000);
  EXPECT_EQ(Parse("2GB"), 2'000'000'000);
  EXPECT_EQ(Parse("3TB"), 3'000'000'000'000);
}

TEST(UnitsParseByteSize, SuffixesAreCaseInsensitive) {
  EXPECT_EQ(Parse("2gib"), 2 * kGiB);
  EXPECT_EQ(Parse("2GIB"), 2 * kGiB);
  EXPECT_EQ(Parse("2gIb"), 2 * kGiB);
  EXPECT_EQ(Parse("1kib"), kKiB);
  EXPECT_EQ(Parse("1Mib"), kMiB);
  EXPECT_EQ(Parse("1tIB"), kTiB);
  EXPECT_EQ(Parse("2gb"), 2'000'000'000);
  EXPECT_EQ(Parse("2Gb"), 2'000'000'000);
  EXPECT_EQ(Parse("1kB"), 1000);
  EXPECT_EQ(Parse("1mb"), 1'000'000);
  EXPECT_EQ(Parse("1tb"), 1'000'000'000'000);
}

TEST(UnitsParseByteSize, SpacesAreAllowedAroundAndBeforeTheUnit) {
  EXPECT_EQ(Parse("2 GiB"), 2 * kGiB);
  EXPECT_EQ(Parse("2   GiB"), 2 * kGiB);
  EXPECT_EQ(Parse("  2GiB  "), 2 * kGiB);
  EXPECT_EQ(Parse("\t1.5 GB\n"), 1'500'000'000);
  EXPECT_EQ(Parse(" 4096 "), 4096);
}

TEST(UnitsParseByteSize, Fractions) {
  EXPECT_EQ(Parse("1.5GiB"), kGiB + kGiB / 2);
  EXPECT_EQ(Parse("1.5 GB"), 1'500'000'000);
  EXPECT_EQ(Parse("0.5KiB"), 512);
  EXPECT_EQ(Parse(".5KiB"), 512);
  EXPECT_EQ(Parse("2.MiB"), 2 * kMiB);
  EXPECT_EQ(Parse("0.25 TiB"), kTiB / 4);
  // Decimal fractions that binary floating point cannot represent come out exact.
  EXPECT_EQ(Parse("1.1GB"), 1'100'000'000);
  EXPECT_EQ(Parse("4.35KB"), 4350);
  EXPECT_EQ(Parse("0.7KB"), 700);
}

TEST(UnitsParseByteSize, FractionsRoundDown) {
  EXPECT_EQ(Parse("0.5"), 0);
  EXPECT_EQ(Parse("1.999B"), 1);
  EXPECT_EQ(Parse("0.0001KiB"), 0);           // 0.1024 bytes
  EXPECT_EQ(Parse("0.001KiB"), 1);            // 1.024 bytes
  EXPECT_EQ(Parse("1.0009765625KiB"), 1025);  // exactly 1025 bytes
  // 1 / 2^40 written out in full is exactly one byte of a TiB.
  EXPECT_EQ(Parse("0.0000000000009094947017729282379150390625TiB"), 1);
  EXPECT_EQ(Parse("0.0000000000009094947017729282379150390624TiB"), 0);
}

TEST(UnitsParseByteSize, LargestSize) {
  EXPECT_EQ(Parse("4611686018427387904"), kMaxSize);  // 2^62
  EXPECT_EQ(Parse("4194304TiB"), kMaxSize);           // 2^22 TiB
  EXPECT_EQ(Parse("4194303.999999TiB"), kMaxSize - 1099512);
}

// Parsing each of `texts` as a budget fails with INVALID_ARGUMENT, naming the field first, and
// the message contains each of `parts`.
void ExpectBudgetErrors(std::initializer_list<const char*> texts,
                        std::initializer_list<std::string> parts) {
  for (const char* text : texts) {
    SCOPED_TRACE(text);
    const Status s = ParseError(text);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message().rfind("budget: ", 0), 0u) << s.message();
    for (const std::string& part : parts) {
      EXPECT_NE(s.message().find(part), std::string::npos) << part << " in " << s.message();
    }
  }
}

TEST(UnitsParseByteSize, EmptyIsAnError) { ExpectBudgetErrors({"", " ", "\t\n"}, {"empty"}); }

TEST(UnitsParseByteSize, NegativeIsAnError) {
  ExpectBudgetErrors({"-1MiB", "-1", "-0.5GB", " -2 GiB"}, {"negative"});
}

TEST(UnitsParseByteSize, NotANumberIsAnError) {
  for (const char* text : {"abc", "GiB", ".", "+1MiB", "1e9", "1.5.GiB", "1..5", "0x10"}) {
    ExpectBudgetErrors({text}, {std::string("\"") + text + "\""});  // names the text
  }
  ExpectBudgetErrors({"abc"}, {"is not a size"});
}

TEST(UnitsParseByteSize, NonFiniteIsAnError) {
  ExpectBudgetErrors({"nan", "NaN", "inf", "Infinity"}, {"finite"});
}

TEST(UnitsParseByteSize, UnknownUnitIsAnError) {
  // The message lists the units.
  ExpectBudgetErrors({"12XB", "12 ZiB", "3k", "4 megabytes", "1iB", "2GiBs"},
                     {"unknown unit", "GiB"});
  ExpectBudgetErrors({"12XB"}, {"\"XB\""});
}

TEST(UnitsParseByteSize, OverflowAbove2To62IsAnError) {
  ExpectBudgetErrors(
      {"4611686018427387905", "4194305TiB", "4194304.000001TiB", "9223372036854775808",
       "99999999999999999999999999999", "5000000TB", "18446744073709551616GiB"},
      {"2^62"});
}

TEST(UnitsParseByteSize, MessageNamesTheGivenFieldOrSizeByDefault) {
  StatusOr<std::int64_t> with_field = ParseByteSize("abc", "--memory");
  ASSERT_FALSE(with_field.ok());
  EXPECT_EQ(with_field.status().message().rfind("--memory: \"abc\"", 0), 0u)
      << with_field.status().message();
  StatusOr<std::int64_t> by_default = ParseByteSize("abc");
  ASSERT_FALSE(by_default.ok());
  EXPECT_EQ(by_default.status().message().rfind("size: ", 0), 0u) << by_default.status().message();
}

TEST(UnitsFormatBytes, SmallValuesAreWholeBytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1), "1 B");
  EXPECT_EQ(FormatBytes(812), "812 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
}

TEST(UnitsFormatBytes, BinaryUnitsWithTwoDecimals) {
  EXPECT_EQ(FormatBytes(1024), "1.00 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(512 * kMiB), "512.00 MiB");
  EXPECT_EQ(FormatBytes(2 * kGiB), "2.00 GiB");
  EXPECT_EQ(FormatBytes(kGiB + kGiB / 4), "1.25 GiB");
  EXPECT_EQ(FormatBytes(3 * kTiB), "3.00 TiB");
  EXPECT_EQ(FormatBytes(kTiB * 1024), "1.00 PiB");
  EXPECT_EQ(FormatBytes(kMaxSize), "4.00 EiB");
  EXPECT_EQ(FormatBytes(std::numeric_limits<std::int64_t>::max()), "8.00 EiB");
}

TEST(UnitsFormatBytes, NeverShows1024OfAUnit) {
  EXPECT_EQ(FormatBytes(kMiB - 1), "1.00 MiB");
  EXPECT_EQ(FormatBytes(kGiB - 1), "1.00 GiB");
  EXPECT_EQ(FormatBytes(kMiB - 6 * kKiB), "1018.00 KiB");
}

TEST(UnitsFormatBytes, NegativeValuesKeepTheirSign) {
  EXPECT_EQ(FormatBytes(-812), "-812 B");
  EXPECT_EQ(FormatBytes(-1536), "-1.50 KiB");
  EXPECT_EQ(FormatBytes(std::numeric_limits<std::int64_t>::min()), "-8.00 EiB");
}

TEST(UnitsFormatBytes, RoundTripsThroughParseWithinRounding) {
  for (std::int64_t bytes : {kKiB, 3 * kMiB / 2, 7 * kGiB, std::int64_t{123456789}}) {
    const std::string text = FormatBytes(bytes);
    const std::int64_t back = Parse(text);
    EXPECT_LE(std::abs(static_cast<double>(back - bytes)), 0.005 * static_cast<double>(bytes))
        << text;
  }
}

}  // namespace
}  // namespace peaknas::search
