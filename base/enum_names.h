// One table of an enum's names, read both ways, so that the name a value prints as and the
// name that parses back to it cannot drift apart:
//
//   constexpr EnumNames<DType, 3> kDTypeNames{{{{DType::kFp32, "fp32"}, {DType::kFp16, "fp16"},
//                                               {DType::kBf16, "bf16"}}}};
//   kDTypeNames.Name(DType::kBf16)  // "bf16"
//   kDTypeNames.Find("fp16")        // DType::kFp16; std::nullopt for a name not in the table
//   kDTypeNames.List()              // "fp32, fp16, bf16", for "is not one of ..." messages
//
// Thread-safety: constant values; safe from any thread.
#ifndef PEAKNAS_BASE_ENUM_NAMES_H_
#define PEAKNAS_BASE_ENUM_NAMES_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace peaknas {

template <typename E, std::size_t N>
struct EnumNames {
  std::array<std::pair<E, std::string_view>, N> entries;

  // The value's name; `unknown` for a value the table lacks (a cast from a bad integer).
  constexpr std::string_view Name(E value, std::string_view unknown = "?") const {
    for (const auto& [v, name] : entries) {
      if (v == value) return name;
    }
    return unknown;
  }

  constexpr std::optional<E> Find(std::string_view name) const {
    for (const auto& [v, n] : entries) {
      if (n == name) return v;
    }
    return std::nullopt;
  }

  // The names in table order, joined by `separator`.
  std::string List(std::string_view separator = ", ") const {
    std::string out;
    for (const auto& [v, name] : entries) {
      if (!out.empty()) out += separator;
      out += name;
    }
    return out;
  }
};

}  // namespace peaknas

#endif  // PEAKNAS_BASE_ENUM_NAMES_H_
