#include "search/units.h"

#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

namespace peaknas::search {
namespace {

// The largest size ParseByteSize accepts: 2^62 bytes (4 EiB), far above any device, and far
// enough below 2^63 that sums of a few sizes cannot overflow an int64.
constexpr std::uint64_t kMaxSizeBytes = std::uint64_t{1} << 62;

struct Unit {
  std::string_view name;  // lower case
  std::uint64_t bytes;
};

// Every unit FormatBytes prints is one ParseByteSize reads (fuzz/byte_size_fuzzer.cc).
constexpr std::array<Unit, 14> kUnits = {{
    {"", 1},
    {"b", 1},
    {"kb", 1000},
    {"mb", 1000 * 1000},
    {"gb", 1000 * 1000 * 1000},
    {"tb", std::uint64_t{1000} * 1000 * 1000 * 1000},
    {"pb", std::uint64_t{1000} * 1000 * 1000 * 1000 * 1000},
    {"eb", std::uint64_t{1000} * 1000 * 1000 * 1000 * 1000 * 1000},
    {"kib", std::uint64_t{1} << 10},
    {"mib", std::uint64_t{1} << 20},
    {"gib", std::uint64_t{1} << 30},
    {"tib", std::uint64_t{1} << 40},
    {"pib", std::uint64_t{1} << 50},
    {"eib", std::uint64_t{1} << 60},
}};

constexpr std::string_view kUnitList = "B, KB, MB, GB, TB, PB, EB, KiB, MiB, GiB, TiB, PiB or EiB";

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status Invalid(std::string_view field, std::string_view text, std::string_view what) {
  std::string message(field);
  message += ": \"";
  message += text;
  message += "\" ";
  message += what;
  return Status::InvalidArgument(std::move(message));
}

Status NotASize(std::string_view field, std::string_view text) {
  std::string what = "is not a size; expected a number of bytes with an optional unit (";
  what += kUnitList;
  what += "), e.g. 2GiB or 1.5 GB";
  return Invalid(field, text, what);
}

Status TooLarge(std::string_view field, std::string_view text) {
  return Invalid(field, text,
                 "is above the largest size, 2^62 bytes (" +
                     FormatBytes(static_cast<std::int64_t>(kMaxSizeBytes)) + ")");
}

// floor(0.<digits> * multiplier), exactly, for any number of digits: multiplies the decimal
// fraction by `multiplier` from its last digit to its first, keeping the carry; what carries
// out of the first digit is the whole part. multiplier <= 2^40 keeps 9 * multiplier + carry
// far inside 64 bits.
std::uint64_t FloorFractionTimes(std::string_view digits, std::uint64_t multiplier) {
  std::uint64_t carry = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    carry = (static_cast<std::uint64_t>(*it - '0') * multiplier + carry) / 10;
  }
  return carry;
}

}  // namespace

StatusOr<std::int64_t> ParseByteSize(std::string_view text, std::string_view field) {
  const std::string_view s = Trim(text);
  if (s.empty()) {
    return Status::InvalidArgument(std::string(field) +
                                   ": empty; expected a size such as 2GiB, 512MiB or 1048576");
  }
  if (s.front() == '-') return Invalid(field, s, "is negative; sizes are at least 0 bytes");

  // Number: digits [. digits], at least one digit in all.
  std::size_t i = 0;
  const std::size_t int_begin = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  const std::string_view int_digits = s.substr(int_begin, i - int_begin);
  std::string_view frac_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const std::size_t frac_begin = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    frac_digits = s.substr(frac_begin, i - frac_begin);
  }
  if (int_digits.empty() && frac_digits.empty()) {
    const std::string lower = Lower(s);
    if (lower == "nan" || lower == "inf" || lower == "infinity" || lower == "+inf" ||
        lower == "+nan") {
      return Invalid(field, s, "is not a finite number of bytes");
    }
    return NotASize(field, s);
  }

  // Optional spaces, then the unit.
  std::size_t unit_begin = i;
  while (unit_begin < s.size() && IsSpace(s[unit_begin])) ++unit_begin;
  const std::string_view unit_text = s.substr(unit_begin);
  const std::string unit_lower = Lower(unit_text);
  const Unit* unit = nullptr;
  for (const Unit& u : kUnits) {
    if (u.name == unit_lower) unit = &u;
  }
  if (unit == nullptr) {
    if (!unit_text.empty() && (IsDigit(unit_text.front()) || unit_text.front() == '.' ||
                               unit_text.front() == 'e' || unit_text.front() == 'E')) {
      return NotASize(field, s);
    }
    std::string what = "has an unknown unit \"";
    what += unit_text;
    what += "\"; use ";
    what += kUnitList;
    what += " (or none for bytes)";
    return Invalid(field, s, what);
  }

  // Whole part, checked against the limit digit by digit (so no overflow on long inputs).
  const std::uint64_t max_whole = kMaxSizeBytes / unit->bytes;
  std::uint64_t whole = 0;
  for (char c : int_digits) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (whole > (max_whole - digit) / 10) return TooLarge(field, s);
    whole = whole * 10 + digit;
  }
  const std::uint64_t fraction = FloorFractionTimes(frac_digits, unit->bytes);
  const std::uint64_t whole_bytes = whole * unit->bytes;
  if (whole_bytes > kMaxSizeBytes - fraction) return TooLarge(field, s);
  return static_cast<std::int64_t>(whole_bytes + fraction);
}

std::string FormatBytes(std::int64_t bytes) {
  static constexpr std::array<const char*, 7> kNames = {"B",   "KiB", "MiB", "GiB",
                                                        "TiB", "PiB", "EiB"};
  const bool negative = bytes < 0;
  // Magnitude as unsigned, so that INT64_MIN is representable.
  const std::uint64_t magnitude = negative ? std::uint64_t{0} - static_cast<std::uint64_t>(bytes)
                                           : static_cast<std::uint64_t>(bytes);
  const std::string sign = negative ? "-" : "";
  if (magnitude < 1024) return sign + std::to_string(magnitude) + " B";

  std::size_t unit = 0;
  std::uint64_t scale = 1;
  while (unit + 1 < kNames.size() && magnitude / scale >= 1024) {
    scale <<= 10;
    ++unit;
  }
  double value = static_cast<double>(magnitude) / static_cast<double>(scale);
  // 1023.999 KiB would print as "1024.00 KiB"; show it as "1.00 MiB" instead.
  if (std::round(value * 100) >= 1024 * 100 && unit + 1 < kNames.size()) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f %s", value, kNames[unit]);
  return sign + buffer;
}

}  // namespace peaknas::search
