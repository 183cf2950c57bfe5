// The U-Net denoiser family that peaknas searches (DESIGN.md, "The U-Net family").
//
// An Architecture is a plain value: levels L in [1, 6], per-level widths (multiples of 8 in
// [8, 512]), encoder blocks per level, decoder blocks per level but the deepest, and the kinds
// of skip fusion, upsampling, downsampling and activation. Per-level values live in fixed
// arrays so that sampling, hashing and costing never touch the heap; entries at and beyond
// `levels` (and beyond levels-1 for dec_blocks) are always zero, which keeps == and the
// canonical form exact.
//
// Canonical JSON has sorted keys and no spaces; the 64-bit hash is FNV-1a over it, so it is
// stable across runs, machines and releases as long as the canonical form is.
//
// Thread-safety: values and pure functions; safe from any thread.
#ifndef PEAKNAS_SEARCH_ARCHITECTURE_H_
#define PEAKNAS_SEARCH_ARCHITECTURE_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace peaknas::search {

inline constexpr int kMinLevels = 1;
inline constexpr int kMaxLevels = 6;
inline constexpr int kMinWidth = 8;
inline constexpr int kMaxWidth = 512;
inline constexpr int kWidthMultiple = 8;
inline constexpr int kMinBlocks = 1;
inline constexpr int kMaxBlocks = 8;

enum class SkipKind : std::uint8_t { kConcat, kAdd };
enum class UpsampleKind : std::uint8_t { kTransposed, kBilinear, kPixelShuffle };
enum class DownsampleKind : std::uint8_t { kStrided, kMaxPool };
enum class ActivationKind : std::uint8_t { kRelu, kLeakyRelu };

inline constexpr std::array<SkipKind, 2> kAllSkipKinds = {SkipKind::kConcat, SkipKind::kAdd};
inline constexpr std::array<UpsampleKind, 3> kAllUpsampleKinds = {
    UpsampleKind::kTransposed, UpsampleKind::kBilinear, UpsampleKind::kPixelShuffle};
inline constexpr std::array<DownsampleKind, 2> kAllDownsampleKinds = {DownsampleKind::kStrided,
                                                                      DownsampleKind::kMaxPool};
inline constexpr std::array<ActivationKind, 2> kAllActivationKinds = {ActivationKind::kRelu,
                                                                      ActivationKind::kLeakyRelu};

// JSON names: "concat", "add", "transposed", "bilinear", "pixelshuffle", "strided", "maxpool",
// "relu", "lrelu".
std::string_view Name(SkipKind kind);
std::string_view Name(UpsampleKind kind);
std::string_view Name(DownsampleKind kind);
std::string_view Name(ActivationKind kind);
StatusOr<SkipKind> ParseSkipKind(std::string_view name);
StatusOr<UpsampleKind> ParseUpsampleKind(std::string_view name);
StatusOr<DownsampleKind> ParseDownsampleKind(std::string_view name);
StatusOr<ActivationKind> ParseActivationKind(std::string_view name);

struct Architecture {
  int levels = 0;
  std::array<int, kMaxLevels> widths{};
  std::array<int, kMaxLevels> enc_blocks{};
  std::array<int, kMaxLevels - 1> dec_blocks{};
  SkipKind skip = SkipKind::kConcat;
  UpsampleKind upsample = UpsampleKind::kTransposed;
  DownsampleKind downsample = DownsampleKind::kStrided;
  ActivationKind activation = ActivationKind::kRelu;

  // Views over the used entries (sizes levels, levels and levels-1).
  std::span<const int> Widths() const { return {widths.data(), Used(levels)}; }
  std::span<const int> EncBlocks() const { return {enc_blocks.data(), Used(levels)}; }
  std::span<const int> DecBlocks() const { return {dec_blocks.data(), Used(levels - 1)}; }

  friend bool operator==(const Architecture&, const Architecture&) = default;

 private:
  static std::size_t Used(int n) { return n > 0 ? static_cast<std::size_t>(n) : 0; }
};

// Builds an architecture from per-level lists, zero-filling unused entries. Fails if a list
// is longer than the maximum; call Validate for the full check.
StatusOr<Architecture> MakeArchitecture(std::span<const int> widths,
                                        std::span<const int> enc_blocks,
                                        std::span<const int> dec_blocks, SkipKind skip,
                                        UpsampleKind upsample, DownsampleKind downsample,
                                        ActivationKind activation);

// OK, or INVALID_ARGUMENT naming the first offending field and its allowed range, e.g.
// "widths[2]: 12 is not a multiple of 8 in [8, 512]".
Status Validate(const Architecture& arch);

// The smallest multiple that an input's height and width must have: 2^(levels-1).
inline int SpatialMultiple(const Architecture& arch) { return 1 << (arch.levels - 1); }

// {"activation":"relu","dec_blocks":[1,1,1],"downsample":"strided","enc_blocks":[1,1,2,2],
//  "levels":4,"skip":"concat","upsample":"transposed","widths":[32,64,128,256]}
std::string ToCanonicalJson(const Architecture& arch);

// Parses and validates. Errors name the field ("widths: expected an array of 4 integers") or
// the JSON syntax problem with its byte offset. Unknown keys are rejected, so a typo cannot
// silently fall back to a default.
StatusOr<Architecture> ParseArchitecture(std::string_view json);

// The architecture named by a command's --arch argument: the JSON object itself when the
// argument starts with '{' (after whitespace), else a path to a file holding it. Errors name
// where the architecture came from, "arch" or "arch \"FILE\"", then the problem:
//   INVALID_ARGUMENT  an empty argument; a directory; a read error; malformed JSON or an invalid
//                     field (ParseArchitecture's message: "arch \"FILE\": widths[1]: ...");
//   NOT_FOUND         a file that cannot be opened (with the system's reason).
StatusOr<Architecture> LoadArchitectureArgument(const std::string& arg);

// FNV-1a 64 over ToCanonicalJson(arch).
std::uint64_t CanonicalHash(const Architecture& arch);

// 16 lower-case hex digits of CanonicalHash.
std::string CanonicalHashHex(const Architecture& arch);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_ARCHITECTURE_H_
