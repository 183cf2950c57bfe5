// The architecture JSON reader a stranger can feed (job specs, --arch, stored trials):
// search::ParseArchitecture must refuse bad input with a status, never crash, and whatever it
// accepts must be valid and survive its canonical JSON unchanged (same architecture, same hash).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "search/architecture.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = peaknas::search::ParseArchitecture(text);
  if (!parsed.ok()) return 0;
  if (!peaknas::search::Validate(*parsed).ok()) {
    std::fprintf(stderr, "accepted an invalid architecture: %.*s\n", static_cast<int>(size),
                 text.data());
    std::abort();
  }
  const std::string canonical = peaknas::search::ToCanonicalJson(*parsed);
  const auto again = peaknas::search::ParseArchitecture(canonical);
  if (!again.ok() || !(*again == *parsed) ||
      peaknas::search::CanonicalHash(*again) != peaknas::search::CanonicalHash(*parsed)) {
    std::fprintf(stderr, "canonical JSON does not round-trip: %s\n", canonical.c_str());
    std::abort();
  }
  return 0;
}
