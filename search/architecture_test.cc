#include "search/architecture.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "search/architecture_test_util.h"
#include "search/space.h"

namespace peaknas::search {
namespace {

constexpr char kDesignCanonical[] =
    R"({"activation":"relu","dec_blocks":[1,1,1],"downsample":"strided","enc_blocks":[1,1,2,2],)"
    R"("levels":4,"skip":"concat","upsample":"transposed","widths":[32,64,128,256]})";

// The example exactly as DESIGN.md writes it: another key order, spaces, a line break.
constexpr char kDesignAsWritten[] =
    R"({"levels": 4, "widths": [32, 64, 128, 256], "enc_blocks": [1, 1, 2, 2], "dec_blocks": [1, 1, 1],
 "skip": "concat", "upsample": "transposed", "downsample": "strided", "activation": "relu"})";

using testing::DesignExample;
using testing::HasSubstr;
using testing::StartsWith;

// The design example as a field -> JSON value text map, to build variants of it.
std::map<std::string, std::string> DesignFields() {
  return {{"levels", "4"},
          {"widths", "[32,64,128,256]"},
          {"enc_blocks", "[1,1,2,2]"},
          {"dec_blocks", "[1,1,1]"},
          {"skip", "\"concat\""},
          {"upsample", "\"transposed\""},
          {"downsample", "\"strided\""},
          {"activation", "\"relu\""}};
}

std::string ToJson(const std::map<std::string, std::string>& fields) {
  std::string out = "{";
  for (const auto& [key, value] : fields) {
    if (out.size() > 1) out += ", ";
    out += "\"" + key + "\": " + value;
  }
  return out + "}";
}

// The design example with `field` replaced by `value`.
std::string With(const std::string& field, const std::string& value) {
  auto fields = DesignFields();
  fields[field] = value;
  return ToJson(fields);
}

// Parsing `json` fails with INVALID_ARGUMENT, and the message starts with `prefix` (the field)
// and contains `detail`.
void ExpectParseError(const std::string& json, const std::string& prefix,
                      const std::string& detail = "") {
  SCOPED_TRACE(json);
  const StatusOr<Architecture> a = ParseArchitecture(json);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(StartsWith(a.status().message(), prefix));
  EXPECT_TRUE(HasSubstr(a.status().message(), detail));
}

// Values of one field of the design example that parsing refuses with the same error, and the
// start and a part of that error.
struct FieldError {
  std::vector<std::string> values;
  std::string prefix;
  std::string detail = "";
};

// Parsing the design example with `field` replaced by each value of each case fails as the case
// says.
void ExpectFieldErrors(const std::string& field, const std::vector<FieldError>& cases) {
  for (const FieldError& c : cases) {
    for (const std::string& value : c.values) {
      ExpectParseError(With(field, value), c.prefix, c.detail);
    }
  }
}

// FNV-1a 64 written out independently of architecture.cc.
std::uint64_t ReferenceFnv1a64(const std::string& s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Kind names

TEST(ArchitectureKinds, NamesRoundTrip) {
  for (SkipKind k : kAllSkipKinds) EXPECT_EQ(*ParseSkipKind(Name(k)), k);
  for (UpsampleKind k : kAllUpsampleKinds) EXPECT_EQ(*ParseUpsampleKind(Name(k)), k);
  for (DownsampleKind k : kAllDownsampleKinds) EXPECT_EQ(*ParseDownsampleKind(Name(k)), k);
  for (ActivationKind k : kAllActivationKinds) EXPECT_EQ(*ParseActivationKind(Name(k)), k);
  EXPECT_EQ(Name(SkipKind::kConcat), "concat");
  EXPECT_EQ(Name(SkipKind::kAdd), "add");
  EXPECT_EQ(Name(UpsampleKind::kTransposed), "transposed");
  EXPECT_EQ(Name(UpsampleKind::kBilinear), "bilinear");
  EXPECT_EQ(Name(UpsampleKind::kPixelShuffle), "pixelshuffle");
  EXPECT_EQ(Name(DownsampleKind::kStrided), "strided");
  EXPECT_EQ(Name(DownsampleKind::kMaxPool), "maxpool");
  EXPECT_EQ(Name(ActivationKind::kRelu), "relu");
  EXPECT_EQ(Name(ActivationKind::kLeakyRelu), "lrelu");
}

TEST(ArchitectureKinds, UnknownNamesNameTheField) {
  EXPECT_EQ(ParseSkipKind("sum").status().message(), "skip: \"sum\" is not one of {concat, add}");
  EXPECT_TRUE(StartsWith(ParseUpsampleKind("nearest").status().message(), "upsample: "));
  EXPECT_TRUE(StartsWith(ParseDownsampleKind("avgpool").status().message(), "downsample: "));
  EXPECT_TRUE(StartsWith(ParseActivationKind("gelu").status().message(), "activation: "));
  EXPECT_FALSE(ParseActivationKind("ReLU").ok());  // names are case-sensitive
}

// ---------------------------------------------------------------------------------------------
// MakeArchitecture and Validate

TEST(ArchitectureMake, FillsUsedEntriesAndZeroesTheRest) {
  const Architecture a = DesignExample();
  EXPECT_EQ(a.levels, 4);
  EXPECT_EQ(a.widths, (std::array<int, kMaxLevels>{32, 64, 128, 256, 0, 0}));
  EXPECT_EQ(a.enc_blocks, (std::array<int, kMaxLevels>{1, 1, 2, 2, 0, 0}));
  EXPECT_EQ(a.dec_blocks, (std::array<int, kMaxLevels - 1>{1, 1, 1, 0, 0}));
  EXPECT_EQ(a.Widths().size(), 4u);
  EXPECT_EQ(a.EncBlocks().size(), 4u);
  EXPECT_EQ(a.DecBlocks().size(), 3u);
  EXPECT_TRUE(Validate(a).ok());
  EXPECT_EQ(SpatialMultiple(a), 8);
}

TEST(ArchitectureMake, LengthMismatchesNameTheField) {
  const int w4[] = {32, 64, 128, 256};
  const int e3[] = {1, 1, 2};
  const int e4[] = {1, 1, 2, 2};
  const int d3[] = {1, 1, 1};
  const int d4[] = {1, 1, 1, 1};
  const int d2[] = {1, 1};
  const int w7[] = {8, 8, 8, 8, 8, 8, 8};
  const auto make = [](std::span<const int> w, std::span<const int> e, std::span<const int> d) {
    return MakeArchitecture(w, e, d, SkipKind::kAdd, UpsampleKind::kBilinear,
                            DownsampleKind::kMaxPool, ActivationKind::kLeakyRelu);
  };
  StatusOr<Architecture> r = make(w4, e3, d3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "enc_blocks: expected 4 entries (one per level), got 3");
  r = make(w4, e4, d4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "dec_blocks: expected 3 entries (levels - 1), got 4");
  r = make(w4, e4, d2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "dec_blocks: expected 3 entries (levels - 1), got 2");
  r = make(w7, w7, d3);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(StartsWith(r.status().message(), "levels: "));
  EXPECT_TRUE(HasSubstr(r.status().message(), "[1, 6]"));

  r = make(w4, e4, d3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->skip, SkipKind::kAdd);
  EXPECT_EQ(r->upsample, UpsampleKind::kBilinear);
  EXPECT_EQ(r->downsample, DownsampleKind::kMaxPool);
  EXPECT_EQ(r->activation, ActivationKind::kLeakyRelu);
}

TEST(ArchitectureValidate, EachFieldOutOfRange) {
  const auto expect = [](const Architecture& a, const std::string& message) {
    const Status st = Validate(a);
    ASSERT_FALSE(st.ok()) << message;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(), message);
  };
  expect(Architecture{}, "levels: 0 is not in [1, 6]");
  Architecture a = DesignExample();
  a.levels = 7;
  expect(a, "levels: 7 is not in [1, 6]");
  a = DesignExample();
  a.widths[2] = 12;
  expect(a, "widths[2]: 12 is not a multiple of 8 in [8, 512]");
  a.widths[2] = 0;
  expect(a, "widths[2]: 0 is not a multiple of 8 in [8, 512]");
  a.widths[2] = 520;
  expect(a, "widths[2]: 520 is not a multiple of 8 in [8, 512]");
  a = DesignExample();
  a.enc_blocks[3] = 9;
  expect(a, "enc_blocks[3]: 9 is not in [1, 8]");
  a = DesignExample();
  a.dec_blocks[0] = 0;
  expect(a, "dec_blocks[0]: 0 is not in [1, 8]");
  a = DesignExample();
  a.widths[4] = 8;  // beyond `levels`
  expect(a, "levels: entries beyond level 3 must be unset");
  a = DesignExample();
  a.dec_blocks[3] = 1;
  expect(a, "levels: entries beyond level 3 must be unset");
}

TEST(ArchitectureValidate, ExtremesAreValid) {
  const int w1[] = {8};
  const int e1[] = {8};
  StatusOr<Architecture> one =
      MakeArchitecture(w1, e1, {}, SkipKind::kConcat, UpsampleKind::kTransposed,
                       DownsampleKind::kStrided, ActivationKind::kRelu);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(Validate(*one).ok());
  EXPECT_EQ(SpatialMultiple(*one), 1);
  EXPECT_EQ(ToCanonicalJson(*one),
            R"({"activation":"relu","dec_blocks":[],"downsample":"strided","enc_blocks":[8],)"
            R"("levels":1,"skip":"concat","upsample":"transposed","widths":[8]})");
  EXPECT_TRUE(ParseArchitecture(ToCanonicalJson(*one)).ok());

  const int w6[] = {512, 512, 512, 512, 512, 512};
  const int e6[] = {8, 8, 8, 8, 8, 8};
  const int d5[] = {8, 8, 8, 8, 8};
  StatusOr<Architecture> six =
      MakeArchitecture(w6, e6, d5, SkipKind::kAdd, UpsampleKind::kPixelShuffle,
                       DownsampleKind::kMaxPool, ActivationKind::kLeakyRelu);
  ASSERT_TRUE(six.ok());
  EXPECT_TRUE(Validate(*six).ok());
  EXPECT_EQ(SpatialMultiple(*six), 32);
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON and parsing

TEST(ArchitectureJson, CanonicalFormOfTheDesignExample) {
  EXPECT_EQ(ToCanonicalJson(DesignExample()), kDesignCanonical);
}

TEST(ArchitectureJson, ParsesTheDesignExampleAsWritten) {
  StatusOr<Architecture> a = ParseArchitecture(kDesignAsWritten);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, DesignExample());
  EXPECT_EQ(ToCanonicalJson(*a), kDesignCanonical);
}

TEST(ArchitectureJson, RoundTripOfSampledArchitectures) {
  const SearchSpace space;
  for (std::uint64_t seed : {1ULL, 2ULL, 3ULL}) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 1000; ++i) {
      const Architecture a = Sample(space, rng);
      const std::string canonical = ToCanonicalJson(a);
      StatusOr<Architecture> parsed = ParseArchitecture(canonical);
      ASSERT_TRUE(parsed.ok()) << canonical << ": " << parsed.status().ToString();
      EXPECT_EQ(*parsed, a) << canonical;
      EXPECT_EQ(ToCanonicalJson(*parsed), canonical);
      EXPECT_EQ(CanonicalHash(*parsed), CanonicalHash(a));
      // Canonical form has no whitespace.
      for (char c : canonical) ASSERT_FALSE(std::isspace(static_cast<unsigned char>(c)));
    }
  }
}

TEST(ArchitectureJson, KeyOrderAndWhitespaceDoNotChangeTheHash) {
  const std::uint64_t want = CanonicalHash(DesignExample());
  const std::vector<std::string> variants = {
      kDesignCanonical,
      kDesignAsWritten,
      "\n\t {  \"widths\" :[ 32 ,64,128 , 256 ]\r\n, \"activation\":\"relu\",\"upsample\":"
      "\"transposed\",\"skip\":\"concat\",\"levels\":4,\"enc_blocks\":[1,1,2,2],"
      "\"downsample\":\"strided\",\"dec_blocks\":[1,1,1]}  \n",
  };
  for (const std::string& v : variants) {
    StatusOr<Architecture> a = ParseArchitecture(v);
    ASSERT_TRUE(a.ok()) << v << ": " << a.status().ToString();
    EXPECT_EQ(CanonicalHash(*a), want) << v;
    EXPECT_EQ(ToCanonicalJson(*a), kDesignCanonical);
  }
}

TEST(ArchitectureHash, IsFnv1aOfTheCanonicalJson) {
  // Known-answer vectors for the reference itself.
  EXPECT_EQ(ReferenceFnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(ReferenceFnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  const Architecture a = DesignExample();
  EXPECT_EQ(CanonicalHash(a), ReferenceFnv1a64(kDesignCanonical));
  std::mt19937_64 rng(8);
  for (int i = 0; i < 200; ++i) {
    const Architecture s = Sample(SearchSpace{}, rng);
    EXPECT_EQ(CanonicalHash(s), ReferenceFnv1a64(ToCanonicalJson(s)));
  }
}

TEST(ArchitectureHash, HexIsSixteenLowerCaseDigitsOfTheHash) {
  std::mt19937_64 rng(12);
  for (int i = 0; i < 500; ++i) {
    const Architecture a = i == 0 ? DesignExample() : Sample(SearchSpace{}, rng);
    const std::string hex = CanonicalHashHex(a);
    ASSERT_EQ(hex.size(), 16u) << hex;
    for (char c : hex) {
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
    }
    EXPECT_EQ(std::stoull(hex, nullptr, 16), CanonicalHash(a)) << hex;
  }
}

TEST(ArchitectureHash, HexKeepsLeadingZeros) {
  // Find an architecture whose hash has a zero top nibble (1 in 16), so padding is exercised.
  std::mt19937_64 rng(13);
  int found = 0;
  for (int i = 0; i < 2000 && found < 3; ++i) {
    const Architecture a = Sample(SearchSpace{}, rng);
    if (CanonicalHash(a) >> 60 != 0) continue;
    ++found;
    const std::string hex = CanonicalHashHex(a);
    EXPECT_EQ(hex.size(), 16u);
    EXPECT_EQ(hex[0], '0') << hex;
  }
  EXPECT_EQ(found, 3);
}

TEST(ArchitectureHash, DistinctArchitecturesHaveDistinctHashes) {
  // Three or more levels, so that nearly every sample is a different architecture.
  SearchSpace deep;
  deep.levels = {3, kMaxLevels};
  std::mt19937_64 rng(14);
  std::set<std::string> canonical;
  std::set<std::uint64_t> hashes;
  std::set<std::string> hexes;
  for (int i = 0; i < 5000; ++i) {
    const Architecture a = Sample(deep, rng);
    canonical.insert(ToCanonicalJson(a));
    hashes.insert(CanonicalHash(a));
    hexes.insert(CanonicalHashHex(a));
  }
  EXPECT_GT(canonical.size(), 4900u);
  EXPECT_EQ(hashes.size(), canonical.size());
  EXPECT_EQ(hexes.size(), canonical.size());

  // Single-field neighbours of the design example all hash differently.
  const Architecture base = DesignExample();
  std::set<std::uint64_t> neighbours = {CanonicalHash(base)};
  int expected = 1;
  for (int l = 0; l < base.levels; ++l) {
    Architecture w = base;
    w.widths[l] += 8;
    Architecture e = base;
    e.enc_blocks[l] += 1;
    neighbours.insert(CanonicalHash(w));
    neighbours.insert(CanonicalHash(e));
    expected += 2;
  }
  for (SkipKind k : kAllSkipKinds) {
    Architecture a = base;
    a.skip = k;
    neighbours.insert(CanonicalHash(a));
  }
  for (UpsampleKind k : kAllUpsampleKinds) {
    Architecture a = base;
    a.upsample = k;
    neighbours.insert(CanonicalHash(a));
  }
  expected += 1 + 2;  // the other skip and the two other upsamples
  EXPECT_EQ(neighbours.size(), static_cast<std::size_t>(expected));
}

// ---------------------------------------------------------------------------------------------
// Parse errors, one per path, each naming the field.

TEST(ArchitectureParse, MalformedJsonAndNonObjects) {
  ExpectParseError("", "architecture: malformed JSON");
  ExpectParseError("{", "architecture: malformed JSON");
  ExpectParseError(R"({"levels": 4,})", "architecture: malformed JSON");
  // A number beyond a double: refused, not thrown (found by fuzz/corpus/architecture).
  ExpectParseError(R"({"levels": 1e400})", "architecture: malformed JSON");
  ExpectParseError(std::string(kDesignCanonical) + "x", "architecture: malformed JSON");
  ExpectParseError("[1, 2]", "architecture: expected a JSON object", "array");
  ExpectParseError("4", "architecture: expected a JSON object", "number");
  ExpectParseError("\"levels\"", "architecture: expected a JSON object", "string");
  ExpectParseError("null", "architecture: expected a JSON object", "null");
}

TEST(ArchitectureParse, UnknownKeyIsRejected) {
  auto fields = DesignFields();
  fields["width"] = "[32,64,128,256]";  // a typo of "widths"
  ExpectParseError(ToJson(fields), "width: unknown field", "widths");
  fields = DesignFields();
  fields["dropout"] = "0.1";
  ExpectParseError(ToJson(fields), "dropout: unknown field");
}

TEST(ArchitectureParse, EachMissingKeyIsNamed) {
  for (const auto& [key, value] : DesignFields()) {
    auto fields = DesignFields();
    fields.erase(key);
    ExpectParseError(ToJson(fields), key + ": missing");
  }
}

TEST(ArchitectureParse, Levels) {
  ExpectFieldErrors("levels", {{{"0"}, "levels: 0 is not in [1, 6]"},
                               {{"7"}, "levels: 7 is not in [1, 6]"},
                               {{"-1"}, "levels: -1 is not in [1, 6]"},
                               {{"4.5"}, "levels: expected an integer", "4.5"},
                               {{"4.0", "\"4\"", "true", "null"}, "levels: expected an integer"},
                               {{"18446744073709551615"}, "levels: ", "[1, 6]"},
                               // The lists must then match the level count.
                               {{"3"}, "widths: expected an array of 3 integers"}});
}

TEST(ArchitectureParse, Widths) {
  ExpectFieldErrors(
      "widths", {{{"[32,64,128]", "[32,64,128,256,512]", "32", "{}"},
                  "widths: expected an array of 4 integers"},
                 {{"[32,64,12,256]"}, "widths[2]: 12 is not a multiple of 8 in [8, 512]"},
                 {{"[0,64,128,256]"}, "widths[0]: 0 is not", "[8, 512]"},
                 {{"[32,64,128,520]"}, "widths[3]: 520 is not", "[8, 512]"},
                 {{"[32,-8,128,256]"}, "widths[1]: -8 is not", "[8, 512]"},
                 {{"[32,64.0,128,256]", "[32,\"64\",128,256]"}, "widths[1]: expected an integer"},
                 {{"[32,64,128,null]"}, "widths[3]: expected an integer"},
                 {{"[32,64,128,99999999999]"}, "widths[3]: ", "out of range"},
                 {{"[32,64,128,18446744073709551608]"}, "widths[3]: "}});
}

TEST(ArchitectureParse, EncBlocks) {
  ExpectFieldErrors("enc_blocks", {{{"[0,1,2,2]"}, "enc_blocks[0]: 0 is not in [1, 8]"},
                                   {{"[1,1,2,9]"}, "enc_blocks[3]: 9 is not in [1, 8]"},
                                   {{"[1,1,2]"}, "enc_blocks: expected an array of 4 integers"},
                                   {{"[1,1,2,1.5]"}, "enc_blocks[3]: expected an integer"}});
}

TEST(ArchitectureParse, DecBlocks) {
  ExpectFieldErrors("dec_blocks",
                    {{{"[1,1,1,1]", "[1,1]"}, "dec_blocks: expected an array of 3 integers"},
                     {{"[0,1,1]"}, "dec_blocks[0]: 0 is not in [1, 8]"},
                     {{"[1,1,9]"}, "dec_blocks[2]: 9 is not in [1, 8]"},
                     {{"[1,false,1]"}, "dec_blocks[1]: expected an integer"}});
  // One level: no decoder stages at all.
  auto one = DesignFields();
  one["levels"] = "1";
  one["widths"] = "[64]";
  one["enc_blocks"] = "[2]";
  one["dec_blocks"] = "[1]";
  ExpectParseError(ToJson(one), "dec_blocks: expected an array of 0 integers");
  one["dec_blocks"] = "[]";
  EXPECT_TRUE(ParseArchitecture(ToJson(one)).ok());
}

TEST(ArchitectureParse, Kinds) {
  ExpectParseError(With("skip", "\"sum\""), "skip: \"sum\" is not one of {concat, add}");
  ExpectParseError(With("skip", "1"), "skip: expected a string", "1");
  ExpectParseError(With("upsample", "\"nearest\""),
                   "upsample: \"nearest\" is not one of {transposed, bilinear, pixelshuffle}");
  ExpectParseError(With("upsample", "[\"bilinear\"]"), "upsample: expected a string");
  ExpectParseError(With("downsample", "\"avgpool\""),
                   "downsample: \"avgpool\" is not one of {strided, maxpool}");
  ExpectParseError(With("downsample", "null"), "downsample: expected a string");
  ExpectParseError(With("activation", "\"gelu\""),
                   "activation: \"gelu\" is not one of {relu, lrelu}");
  ExpectParseError(With("activation", "{}"), "activation: expected a string");
  ExpectParseError(With("activation", "\"RELU\""), "activation: \"RELU\" is not one of");
}

TEST(ArchitectureParse, EveryKindCombinationParses) {
  for (SkipKind s : kAllSkipKinds) {
    for (UpsampleKind u : kAllUpsampleKinds) {
      for (DownsampleKind d : kAllDownsampleKinds) {
        for (ActivationKind act : kAllActivationKinds) {
          auto fields = DesignFields();
          fields["skip"] = "\"" + std::string(Name(s)) + "\"";
          fields["upsample"] = "\"" + std::string(Name(u)) + "\"";
          fields["downsample"] = "\"" + std::string(Name(d)) + "\"";
          fields["activation"] = "\"" + std::string(Name(act)) + "\"";
          StatusOr<Architecture> a = ParseArchitecture(ToJson(fields));
          ASSERT_TRUE(a.ok()) << a.status().ToString();
          EXPECT_EQ(a->skip, s);
          EXPECT_EQ(a->upsample, u);
          EXPECT_EQ(a->downsample, d);
          EXPECT_EQ(a->activation, act);
        }
      }
    }
  }
}

}  // namespace
}  // namespace peaknas::search
