// Size strings ("64MiB", "1.5 GiB", budgets and --budget flags): any text is a size or an
// INVALID_ARGUMENT status, never a crash; an accepted size is in [0, 2^62] and its formatted
// form parses back to within the formatting's rounding.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "search/units.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto bytes = peaknas::search::ParseByteSize(text);
  if (!bytes.ok()) {
    if (bytes.status().code() != peaknas::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if (*bytes < 0 || *bytes > (std::int64_t{1} << 62)) {
    std::fprintf(stderr, "accepted %lld from \"%.*s\"\n", static_cast<long long>(*bytes),
                 static_cast<int>(size), text.data());
    std::abort();
  }
  const auto back = peaknas::search::ParseByteSize(peaknas::search::FormatBytes(*bytes));
  // FormatBytes keeps two decimals of its unit (half a hundredth of a unit, at most 0.5 % of
  // the size), and parsing rounds down (under a byte).
  if (!back.ok() ||
      std::abs(static_cast<double>(*back - *bytes)) > 0.005 * static_cast<double>(*bytes) + 1) {
    std::fprintf(stderr, "%lld formats as \"%s\", which does not parse back\n",
                 static_cast<long long>(*bytes), peaknas::search::FormatBytes(*bytes).c_str());
    std::abort();
  }
  return 0;
}
