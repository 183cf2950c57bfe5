#include "search/architecture.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "base/enum_names.h"

namespace peaknas::search {
namespace {

using Json = nlohmann::json;  // std::map-backed: keys come out sorted

constexpr EnumNames<SkipKind, 2> kSkipNames{
    {{{SkipKind::kConcat, "concat"}, {SkipKind::kAdd, "add"}}}};
constexpr EnumNames<UpsampleKind, 3> kUpsampleNames{
    {{{UpsampleKind::kTransposed, "transposed"},
      {UpsampleKind::kBilinear, "bilinear"},
      {UpsampleKind::kPixelShuffle, "pixelshuffle"}}}};
constexpr EnumNames<DownsampleKind, 2> kDownsampleNames{
    {{{DownsampleKind::kStrided, "strided"}, {DownsampleKind::kMaxPool, "maxpool"}}}};
constexpr EnumNames<ActivationKind, 2> kActivationNames{
    {{{ActivationKind::kRelu, "relu"}, {ActivationKind::kLeakyRelu, "lrelu"}}}};

template <typename Kind, std::size_t N>
StatusOr<Kind> ParseKind(std::string_view field, std::string_view name,
                         const EnumNames<Kind, N>& names) {
  if (const std::optional<Kind> kind = names.Find(name)) return *kind;
  return Status::InvalidArgument(std::string(field) + ": \"" + std::string(name) +
                                 "\" is not one of {" + names.List() + "}");
}

Status CheckList(std::string_view field, std::span<const int> values, int lo, int hi,
                 int multiple) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const int v = values[i];
    if (v < lo || v > hi || v % multiple != 0) {
      std::string what =
          std::string(field) + "[" + std::to_string(i) + "]: " + std::to_string(v) + " is not ";
      what += multiple > 1 ? "a multiple of " + std::to_string(multiple) + " in " : "in ";
      return Status::InvalidArgument(what + RangeText(lo, hi));
    }
  }
  return Status::Ok();
}

Status ReadIntList(const Json& obj, const char* field, int expected,
                   std::array<int, kMaxLevels>& out) {
  const auto it = obj.find(field);
  const std::string want =
      "expected an array of " + std::to_string(expected) + " integer" + (expected == 1 ? "" : "s");
  if (it == obj.end()) return Status::InvalidArgument(std::string(field) + ": missing; " + want);
  if (!it->is_array() || it->size() != static_cast<std::size_t>(expected)) {
    return Status::InvalidArgument(std::string(field) + ": " + want + ", got " + it->dump());
  }
  for (int i = 0; i < expected; ++i) {
    const Json& v = (*it)[i];
    if (!v.is_number_integer()) {
      return Status::InvalidArgument(std::string(field) + "[" + std::to_string(i) +
                                     "]: expected an integer, got " + v.dump());
    }
    const bool huge = v.is_number_unsigned() && v.get<std::uint64_t>() > 1'000'000;
    const auto x = huge ? std::int64_t{0} : v.get<std::int64_t>();
    if (huge || x < -1'000'000 || x > 1'000'000) {
      return Status::InvalidArgument(std::string(field) + "[" + std::to_string(i) +
                                     "]: " + v.dump() + " is out of range");
    }
    out[i] = static_cast<int>(x);
  }
  return Status::Ok();
}

StatusOr<std::string> ReadString(const Json& obj, const char* field) {
  const auto it = obj.find(field);
  if (it == obj.end()) return Status::InvalidArgument(std::string(field) + ": missing");
  if (!it->is_string()) {
    return Status::InvalidArgument(std::string(field) + ": expected a string, got " + it->dump());
  }
  return it->get<std::string>();
}

constexpr std::string_view kWhitespace = " \t\r\n\f\v";

// The text of the architecture (inline JSON or the named file's content) and a prefix for
// messages about it: "arch" or "arch \"FILE\"".
struct ArchSource {
  std::string json;
  std::string field;
};

StatusOr<ArchSource> ReadArchSource(const std::string& arg) {
  const std::size_t first = arg.find_first_not_of(kWhitespace);
  if (first == std::string::npos) {
    return Status::InvalidArgument(
        "arch: empty; expected a path to an architecture JSON file or the JSON object itself");
  }
  if (arg[first] == '{') return ArchSource{arg, "arch"};

  const std::string field = "arch \"" + arg + "\"";
  std::error_code ec;
  if (std::filesystem::is_directory(arg, ec)) {
    return Status::InvalidArgument(field + ": is a directory; expected an architecture JSON file");
  }
  std::ifstream in(arg, std::ios::binary);
  if (!in) {
    const int error = errno;
    return Status::NotFound(
        field + ": cannot open: " + (error != 0 ? std::strerror(error) : "unknown error") +
        " (--arch takes a file path or inline JSON starting with '{')");
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument(field + ": read error");
  return ArchSource{content.str(), field};
}

}  // namespace

std::string_view Name(SkipKind kind) { return kSkipNames.Name(kind); }
std::string_view Name(UpsampleKind kind) { return kUpsampleNames.Name(kind); }
std::string_view Name(DownsampleKind kind) { return kDownsampleNames.Name(kind); }
std::string_view Name(ActivationKind kind) { return kActivationNames.Name(kind); }

StatusOr<SkipKind> ParseSkipKind(std::string_view name) {
  return ParseKind("skip", name, kSkipNames);
}
StatusOr<UpsampleKind> ParseUpsampleKind(std::string_view name) {
  return ParseKind("upsample", name, kUpsampleNames);
}
StatusOr<DownsampleKind> ParseDownsampleKind(std::string_view name) {
  return ParseKind("downsample", name, kDownsampleNames);
}
StatusOr<ActivationKind> ParseActivationKind(std::string_view name) {
  return ParseKind("activation", name, kActivationNames);
}

StatusOr<Architecture> MakeArchitecture(std::span<const int> widths,
                                        std::span<const int> enc_blocks,
                                        std::span<const int> dec_blocks, SkipKind skip,
                                        UpsampleKind upsample, DownsampleKind downsample,
                                        ActivationKind activation) {
  if (widths.size() > kMaxLevels) {
    return Status::InvalidArgument("levels: " + std::to_string(widths.size()) +
                                   " (one per width) is not in " +
                                   RangeText(kMinLevels, kMaxLevels));
  }
  if (enc_blocks.size() > kMaxLevels) {
    return Status::InvalidArgument("enc_blocks: more than " + std::to_string(kMaxLevels) +
                                   " entries");
  }
  if (dec_blocks.size() > kMaxLevels - 1) {
    return Status::InvalidArgument("dec_blocks: more than " + std::to_string(kMaxLevels - 1) +
                                   " entries");
  }
  Architecture a;
  a.levels = static_cast<int>(widths.size());
  std::copy(widths.begin(), widths.end(), a.widths.begin());
  std::copy(enc_blocks.begin(), enc_blocks.end(), a.enc_blocks.begin());
  std::copy(dec_blocks.begin(), dec_blocks.end(), a.dec_blocks.begin());
  a.skip = skip;
  a.upsample = upsample;
  a.downsample = downsample;
  a.activation = activation;
  if (enc_blocks.size() != widths.size()) {
    return Status::InvalidArgument("enc_blocks: expected " + std::to_string(widths.size()) +
                                   " entries (one per level), got " +
                                   std::to_string(enc_blocks.size()));
  }
  if (dec_blocks.size() + 1 != widths.size() && !widths.empty()) {
    return Status::InvalidArgument("dec_blocks: expected " + std::to_string(widths.size() - 1) +
                                   " entries (levels - 1), got " +
                                   std::to_string(dec_blocks.size()));
  }
  return a;
}

Status Validate(const Architecture& arch) {
  if (arch.levels < kMinLevels || arch.levels > kMaxLevels) {
    return Status::InvalidArgument("levels: " + std::to_string(arch.levels) + " is not in " +
                                   RangeText(kMinLevels, kMaxLevels));
  }
  PEAKNAS_RETURN_IF_ERROR(CheckList("widths", arch.Widths(), kMinWidth, kMaxWidth, kWidthMultiple));
  PEAKNAS_RETURN_IF_ERROR(CheckList("enc_blocks", arch.EncBlocks(), kMinBlocks, kMaxBlocks, 1));
  PEAKNAS_RETURN_IF_ERROR(CheckList("dec_blocks", arch.DecBlocks(), kMinBlocks, kMaxBlocks, 1));
  for (int i = arch.levels; i < kMaxLevels; ++i) {
    if (arch.widths[i] != 0 || arch.enc_blocks[i] != 0 || (i >= 1 && arch.dec_blocks[i - 1] != 0)) {
      return Status::InvalidArgument("levels: entries beyond level " +
                                     std::to_string(arch.levels - 1) + " must be unset");
    }
  }
  return Status::Ok();
}

std::string ToCanonicalJson(const Architecture& arch) {
  Json j = Json::object();
  j["levels"] = arch.levels;
  j["widths"] = Json(std::vector<int>(arch.Widths().begin(), arch.Widths().end()));
  j["enc_blocks"] = Json(std::vector<int>(arch.EncBlocks().begin(), arch.EncBlocks().end()));
  j["dec_blocks"] = Json(std::vector<int>(arch.DecBlocks().begin(), arch.DecBlocks().end()));
  j["skip"] = Name(arch.skip);
  j["upsample"] = Name(arch.upsample);
  j["downsample"] = Name(arch.downsample);
  j["activation"] = Name(arch.activation);
  return j.dump();
}

StatusOr<Architecture> ParseArchitecture(std::string_view text) {
  Json j;
  try {
    j = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {  // malformed, or a number beyond a double (1e400)
    return Status::InvalidArgument("architecture: malformed JSON: " + std::string(e.what()));
  }
  if (!j.is_object()) {
    return Status::InvalidArgument("architecture: expected a JSON object, got " +
                                   std::string(j.type_name()));
  }
  static constexpr std::array<std::string_view, 8> kKeys = {
      "activation", "dec_blocks", "downsample", "enc_blocks",
      "levels",     "skip",       "upsample",   "widths"};
  for (const auto& [key, value] : j.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return Status::InvalidArgument(key +
                                     ": unknown field; allowed: activation, dec_blocks, "
                                     "downsample, enc_blocks, levels, skip, upsample, widths");
    }
  }
  Architecture a;
  const auto lv = j.find("levels");
  if (lv == j.end()) return Status::InvalidArgument("levels: missing");
  if (!lv->is_number_integer()) {
    return Status::InvalidArgument("levels: expected an integer, got " + lv->dump());
  }
  const bool huge_levels = lv->is_number_unsigned() && lv->get<std::uint64_t>() > kMaxLevels;
  const auto levels = huge_levels ? std::int64_t{0} : lv->get<std::int64_t>();
  if (levels < kMinLevels || levels > kMaxLevels) {
    return Status::InvalidArgument("levels: " + lv->dump() + " is not in " +
                                   RangeText(kMinLevels, kMaxLevels));
  }
  a.levels = static_cast<int>(levels);
  PEAKNAS_RETURN_IF_ERROR(ReadIntList(j, "widths", a.levels, a.widths));
  PEAKNAS_RETURN_IF_ERROR(ReadIntList(j, "enc_blocks", a.levels, a.enc_blocks));
  std::array<int, kMaxLevels> dec{};
  PEAKNAS_RETURN_IF_ERROR(ReadIntList(j, "dec_blocks", a.levels - 1, dec));
  std::copy_n(dec.begin(), kMaxLevels - 1, a.dec_blocks.begin());

  PEAKNAS_ASSIGN_OR_RETURN(const std::string skip, ReadString(j, "skip"));
  PEAKNAS_ASSIGN_OR_RETURN(a.skip, ParseSkipKind(skip));
  PEAKNAS_ASSIGN_OR_RETURN(const std::string up, ReadString(j, "upsample"));
  PEAKNAS_ASSIGN_OR_RETURN(a.upsample, ParseUpsampleKind(up));
  PEAKNAS_ASSIGN_OR_RETURN(const std::string down, ReadString(j, "downsample"));
  PEAKNAS_ASSIGN_OR_RETURN(a.downsample, ParseDownsampleKind(down));
  PEAKNAS_ASSIGN_OR_RETURN(const std::string act, ReadString(j, "activation"));
  PEAKNAS_ASSIGN_OR_RETURN(a.activation, ParseActivationKind(act));
  PEAKNAS_RETURN_IF_ERROR(Validate(a));
  return a;
}

std::uint64_t CanonicalHash(const Architecture& arch) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  for (unsigned char c : ToCanonicalJson(arch)) {
    h ^= c;
    h *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  return h;
}

std::string CanonicalHashHex(const Architecture& arch) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(CanonicalHash(arch)));
  return buf;
}

StatusOr<Architecture> LoadArchitectureArgument(const std::string& arg) {
  PEAKNAS_ASSIGN_OR_RETURN(const ArchSource source, ReadArchSource(arg));
  StatusOr<Architecture> arch = ParseArchitecture(source.json);
  if (arch.ok()) return arch;
  // ParseArchitecture names the field ("widths[2]: ...") or says "architecture: malformed
  // JSON ..."; say where the architecture came from instead of "architecture".
  std::string_view message = arch.status().message();
  constexpr std::string_view kOwnPrefix = "architecture: ";
  if (message.substr(0, kOwnPrefix.size()) == kOwnPrefix) message.remove_prefix(kOwnPrefix.size());
  return Status(arch.status().code(), source.field + ": " + std::string(message));
}

}  // namespace peaknas::search
