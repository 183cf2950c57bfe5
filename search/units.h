// Byte sizes as people write them: "512MiB", "2GiB", "1.5 GB", "1048576".
//
// Binary suffixes (KiB, MiB, GiB, TiB, PiB, EiB) are powers of 1024; decimal ones (KB, MB, GB,
// TB, PB, EB) are powers of 1000; "B" or no suffix means bytes. Suffixes are case-insensitive; a
// space between number and suffix is allowed. Fractions are allowed when the result is a whole
// number of bytes after rounding down.
//
// Thread-safety: pure functions.
#ifndef PEAKNAS_SEARCH_UNITS_H_
#define PEAKNAS_SEARCH_UNITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace peaknas::search {

// INVALID_ARGUMENT (prefixed with `field`) for an empty string, a negative or non-finite
// number, an unknown suffix, or a size above 2^62 bytes.
StatusOr<std::int64_t> ParseByteSize(std::string_view text, std::string_view field = "size");

// "0 B", "812 B", "1.50 KiB", "512.00 MiB", "2.00 GiB": binary units, two decimals.
std::string FormatBytes(std::int64_t bytes);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_UNITS_H_
