#include "search/space.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "search/architecture.h"
#include "search/architecture_test_util.h"

namespace peaknas::search {
namespace {

using testing::DesignExample;
using testing::HasSubstr;
using testing::StartsWith;

constexpr std::uint64_t kSeeds[] = {0, 1, 42, 20240601, 0xdeadbeefcafef00dULL};

// A named space for parameterized loops.
struct NamedSpace {
  std::string name;
  SearchSpace space;
};

SearchSpace DefaultSpace() { return SearchSpace{}; }

// Everything fixed but the block counts.
SearchSpace Fixed3Levels64Wide() {
  SearchSpace s{.levels = {3, 3}, .width = {64, 64}};
  s.skips = {SkipKind::kAdd};
  s.upsamples = {UpsampleKind::kBilinear};
  s.downsamples = {DownsampleKind::kMaxPool};
  s.activations = {ActivationKind::kLeakyRelu};
  return s;
}

SearchSpace NondecreasingDefault() { return {.nondecreasing_widths = true}; }

// Deep nets near the top of the width range, widths nondecreasing.
SearchSpace DeepWide() {
  SearchSpace s{.levels = {5, 6}, .width = {496, 512}, .nondecreasing_widths = true};
  s.upsamples = {UpsampleKind::kPixelShuffle, UpsampleKind::kTransposed};
  return s;
}

// Shallow, thin, one encoder block count and one decoder block count.
SearchSpace Tiny() {
  SearchSpace s{.levels = {1, 2}, .width = {8, 24}, .enc_blocks = {1, 1}, .dec_blocks = {8, 8}};
  s.skips = {SkipKind::kConcat};
  s.nondecreasing_widths = true;
  return s;
}

// Only the activation can change.
SearchSpace OnlyActivation() {
  SearchSpace s{.levels = {2, 2}, .width = {16, 16}, .enc_blocks = {2, 2}, .dec_blocks = {3, 3}};
  s.skips = {SkipKind::kConcat};
  s.upsamples = {UpsampleKind::kTransposed};
  s.downsamples = {DownsampleKind::kStrided};
  return s;
}

// Exactly one architecture.
SearchSpace Singleton() {
  SearchSpace s = OnlyActivation();
  s.activations = {ActivationKind::kRelu};
  return s;
}

std::vector<NamedSpace> Spaces() {
  return {{"default", DefaultSpace()},
          {"fixed3x64", Fixed3Levels64Wide()},
          {"nondecreasing", NondecreasingDefault()},
          {"deep_wide", DeepWide()},
          {"tiny", Tiny()},
          {"only_activation", OnlyActivation()},
          {"singleton", Singleton()}};
}

// Asserts that `a` is inside `space`, checking each property directly rather than through
// Contains alone, so a wrong Contains cannot hide a wrong sampler.
void ExpectInside(const SearchSpace& space, const Architecture& a, const std::string& where) {
  SCOPED_TRACE(where + ": " + ToCanonicalJson(a));
  ASSERT_TRUE(Validate(a).ok()) << Validate(a).ToString();
  EXPECT_TRUE(Contains(space, a));
  EXPECT_GE(a.levels, space.levels.min);
  EXPECT_LE(a.levels, space.levels.max);
  for (int i = 0; i < a.levels; ++i) {
    EXPECT_GE(a.widths[i], space.width.min);
    EXPECT_LE(a.widths[i], space.width.max);
    EXPECT_EQ(a.widths[i] % 8, 0);
    EXPECT_GE(a.enc_blocks[i], space.enc_blocks.min);
    EXPECT_LE(a.enc_blocks[i], space.enc_blocks.max);
    if (i + 1 < a.levels) {
      EXPECT_GE(a.dec_blocks[i], space.dec_blocks.min);
      EXPECT_LE(a.dec_blocks[i], space.dec_blocks.max);
    }
    if (space.nondecreasing_widths && i > 0) {
      EXPECT_LE(a.widths[i - 1], a.widths[i]);
    }
  }
  for (int i = a.levels; i < kMaxLevels; ++i) {
    EXPECT_EQ(a.widths[i], 0);
    EXPECT_EQ(a.enc_blocks[i], 0);
  }
  for (int i = std::max(a.levels - 1, 0); i < kMaxLevels - 1; ++i) EXPECT_EQ(a.dec_blocks[i], 0);
  const auto has = [](const auto& list, auto v) {
    return std::find(list.begin(), list.end(), v) != list.end();
  };
  EXPECT_TRUE(has(space.skips, a.skip));
  EXPECT_TRUE(has(space.upsamples, a.upsample));
  EXPECT_TRUE(has(space.downsamples, a.downsample));
  EXPECT_TRUE(has(space.activations, a.activation));
}

// ---------------------------------------------------------------------------------------------
// Validate(SearchSpace)

TEST(SpaceValidate, DefaultAndNarrowSpacesAreValid) {
  for (const NamedSpace& s : Spaces()) {
    EXPECT_TRUE(Validate(s.space).ok()) << s.name << ": " << Validate(s.space).ToString();
  }
}

void ExpectSpaceError(const SearchSpace& space, const std::string& prefix,
                      const std::string& detail) {
  const Status st = Validate(space);
  ASSERT_FALSE(st.ok()) << prefix;
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(StartsWith(st.message(), prefix));
  EXPECT_TRUE(HasSubstr(st.message(), detail));
}

// A space that Validate refuses, and the start and a part of the error it gives.
struct SpaceError {
  SearchSpace space;
  std::string prefix;
  std::string detail;
};

// Each case's space fails Validate as the case says.
void ExpectSpaceErrors(const std::vector<SpaceError>& cases) {
  for (const SpaceError& c : cases) ExpectSpaceError(c.space, c.prefix, c.detail);
}

TEST(SpaceValidate, LevelsOutOfRangeOrInverted) {
  ExpectSpaceErrors({{{.levels = {0, 4}}, "levels: min 0", "[1, 6]"},
                     {{.levels = {1, 7}}, "levels: max 7", "[1, 6]"},
                     {{.levels = {5, 2}}, "levels: min 5 > max 2", ""}});
}

TEST(SpaceValidate, WidthNotMultipleOfEightOrOutOfRangeOrInverted) {
  EXPECT_EQ(Validate(SearchSpace{.width = {600, 600}}).message(),
            "width: min 600 is not a multiple of 8 in [8, 512]");
  ExpectSpaceErrors({{{.width = {12, 64}}, "width: min 12", "multiple of 8 in [8, 512]"},
                     {{.width = {8, 100}}, "width: max 100", "multiple of 8 in [8, 512]"},
                     {{.width = {0, 64}}, "width: min 0", "[8, 512]"},
                     {{.width = {8, 520}}, "width: max 520", "[8, 512]"},
                     {{.width = {128, 64}}, "width: min 128 > max 64", ""}});
}

TEST(SpaceValidate, BlocksOutOfRangeOrInverted) {
  ExpectSpaceErrors({{{.enc_blocks = {0, 2}}, "enc_blocks: min 0", "[1, 8]"},
                     {{.enc_blocks = {1, 9}}, "enc_blocks: max 9", "[1, 8]"},
                     {{.dec_blocks = {0, 3}}, "dec_blocks: min 0", "[1, 8]"},
                     {{.dec_blocks = {2, 9}}, "dec_blocks: max 9", "[1, 8]"},
                     {{.dec_blocks = {4, 3}}, "dec_blocks: min 4 > max 3", ""}});
  EXPECT_EQ(Validate(SearchSpace{.enc_blocks = {5, 2}}).message(), "enc_blocks: min 5 > max 2");
}

TEST(SpaceValidate, EmptyKindLists) {
  EXPECT_EQ(Validate(SearchSpace{.skips = {}}).message(), "skips: empty");
  EXPECT_EQ(Validate(SearchSpace{.upsamples = {}}).message(), "upsamples: empty");
  EXPECT_EQ(Validate(SearchSpace{.downsamples = {}}).message(), "downsamples: empty");
  EXPECT_EQ(Validate(SearchSpace{.activations = {}}).message(), "activations: empty");
}

TEST(SpaceValidate, DuplicateKinds) {
  ExpectSpaceError({.skips = {SkipKind::kAdd, SkipKind::kConcat, SkipKind::kAdd}}, "skips[2]",
                   "\"add\" is repeated");
  ExpectSpaceError({.upsamples = {UpsampleKind::kBilinear, UpsampleKind::kBilinear}},
                   "upsamples[1]", "\"bilinear\" is repeated");
  ExpectSpaceError({.downsamples = {DownsampleKind::kMaxPool, DownsampleKind::kMaxPool}},
                   "downsamples[1]", "\"maxpool\" is repeated");
  ExpectSpaceError({.activations = {ActivationKind::kLeakyRelu, ActivationKind::kLeakyRelu}},
                   "activations[1]", "\"lrelu\" is repeated");
}

TEST(SpaceValidate, UnknownKindValue) {
  ExpectSpaceError({.upsamples = {UpsampleKind::kBilinear, static_cast<UpsampleKind>(9)}},
                   "upsamples[1]: 9", "{transposed, bilinear, pixelshuffle}");
}

// ---------------------------------------------------------------------------------------------
// Contains

TEST(SpaceContains, DesignExampleInDefaultSpaceOnly) {
  const Architecture a = DesignExample();
  EXPECT_TRUE(Contains(DefaultSpace(), a));
  EXPECT_TRUE(Contains(NondecreasingDefault(), a));
  EXPECT_FALSE(Contains(Fixed3Levels64Wide(), a));  // 4 levels, widths != 64, kinds
}

TEST(SpaceContains, EachFieldOutsideIsRejected) {
  const Architecture base = DesignExample();
  const SearchSpace outside[] = {
      {.levels = {1, 3}},
      {.width = {32, 128}},
      {.width = {64, 512}},
      {.enc_blocks = {1, 1}},
      {.enc_blocks = {2, 8}},
      {.dec_blocks = {2, 8}},
      {.skips = {SkipKind::kAdd}},
      {.upsamples = {UpsampleKind::kBilinear, UpsampleKind::kPixelShuffle}},
      {.downsamples = {DownsampleKind::kMaxPool}},
      {.activations = {ActivationKind::kLeakyRelu}},
  };
  for (std::size_t i = 0; i < std::size(outside); ++i) {
    EXPECT_FALSE(Contains(outside[i], base)) << "space " << i;
  }
}

TEST(SpaceContains, NondecreasingWidthsAndInvalidArchitectures) {
  Architecture a = DesignExample();
  a.widths[3] = 64;  // 32, 64, 128, 64
  EXPECT_TRUE(Contains(DefaultSpace(), a));
  EXPECT_FALSE(Contains(NondecreasingDefault(), a));

  Architecture bad = DesignExample();
  bad.widths[1] = 60;  // not a multiple of 8
  EXPECT_FALSE(Contains(DefaultSpace(), bad));
  Architecture stray = DesignExample();
  stray.enc_blocks[5] = 1;  // an entry beyond `levels`
  EXPECT_FALSE(Contains(DefaultSpace(), stray));
  EXPECT_FALSE(Contains(DefaultSpace(), Architecture{}));  // levels 0
}

// ---------------------------------------------------------------------------------------------
// Sample

// Runs `check(space, rng, where)` `count` times for every named space and seed, with one
// generator per space and seed; `where` names both. Stops at the first failure.
template <typename Check>
void ForEverySpaceAndSeed(int count, Check check) {
  for (const NamedSpace& s : Spaces()) {
    for (std::uint64_t seed : kSeeds) {
      std::mt19937_64 rng(seed);
      const std::string where = s.name + " seed " + std::to_string(seed);
      for (int i = 0; i < count; ++i) {
        check(s.space, rng, where);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

TEST(SpaceSample, AlwaysInsideEverySpace) {
  ForEverySpaceAndSeed(
      2000, [](const SearchSpace& space, std::mt19937_64& rng, const std::string& where) {
        ExpectInside(space, Sample(space, rng), where);
      });
}

TEST(SpaceSample, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  for (const NamedSpace& s : Spaces()) {
    if (s.name == "singleton") continue;
    std::mt19937_64 r1(7), r2(7), r3(8);
    std::vector<Architecture> a, b, c;
    for (int i = 0; i < 200; ++i) {
      a.push_back(Sample(s.space, r1));
      b.push_back(Sample(s.space, r2));
      c.push_back(Sample(s.space, r3));
    }
    EXPECT_EQ(a, b) << s.name;
    EXPECT_NE(a, c) << s.name;
  }
}

// The draws use only rng() and integer arithmetic, so the sequence for a seed is the same with
// every standard library. These pin it: if they change, every stored seed now means other
// candidates, which must be a deliberate decision (update the constants in the same change).
std::uint64_t Fold(std::uint64_t acc, const Architecture& a) {
  return (acc ^ CanonicalHash(a)) * 0x100000001b3ULL;
}

TEST(SpaceSample, SequenceForSeedIsPinned) {
  std::mt19937_64 rng(42);
  EXPECT_EQ(ToCanonicalJson(Sample(DefaultSpace(), rng)),
            R"({"activation":"relu","dec_blocks":[],"downsample":"strided","enc_blocks":[3],)"
            R"("levels":1,"skip":"concat","upsample":"pixelshuffle","widths":[72]})");
  std::uint64_t combined = 0xcbf29ce484222325ULL;
  for (int i = 0; i < 100; ++i) combined = Fold(combined, Sample(DefaultSpace(), rng));
  EXPECT_EQ(combined, 0x4381dc8d0475587cULL) << std::hex << combined;
}

TEST(SpaceMutate, SequenceForSeedIsPinned) {
  std::mt19937_64 rng(42);
  std::uint64_t combined = 0xcbf29ce484222325ULL;
  Architecture a = DesignExample();
  for (int i = 0; i < 100; ++i) {
    a = Mutate(a, DefaultSpace(), rng);
    combined = Fold(combined, a);
  }
  EXPECT_EQ(combined, 0x519ca11ef3bc3d3cULL) << std::hex << combined;
}

TEST(SpaceCrossover, SequenceForSeedIsPinned) {
  std::mt19937_64 rng(42);
  std::uint64_t combined = 0xcbf29ce484222325ULL;
  for (int i = 0; i < 100; ++i) {
    const Architecture a = Sample(NondecreasingDefault(), rng);
    const Architecture b = Sample(NondecreasingDefault(), rng);
    combined = Fold(combined, Crossover(a, b, NondecreasingDefault(), rng));
  }
  EXPECT_EQ(combined, 0x290d4bbc30137b2aULL) << std::hex << combined;
}

TEST(SpaceSample, CoversEveryValueOfANarrowSpace) {
  SearchSpace s;
  s.levels = {2, 3};
  s.width = {16, 32};
  s.enc_blocks = {3, 4};
  s.dec_blocks = {1, 2};
  std::set<int> levels, widths, enc, dec;
  std::set<SkipKind> skips;
  std::set<UpsampleKind> ups;
  std::set<DownsampleKind> downs;
  std::set<ActivationKind> acts;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    const Architecture a = Sample(s, rng);
    levels.insert(a.levels);
    widths.insert(a.Widths().begin(), a.Widths().end());
    enc.insert(a.EncBlocks().begin(), a.EncBlocks().end());
    dec.insert(a.DecBlocks().begin(), a.DecBlocks().end());
    skips.insert(a.skip);
    ups.insert(a.upsample);
    downs.insert(a.downsample);
    acts.insert(a.activation);
  }
  EXPECT_EQ(levels, (std::set<int>{2, 3}));
  EXPECT_EQ(widths, (std::set<int>{16, 24, 32}));
  EXPECT_EQ(enc, (std::set<int>{3, 4}));
  EXPECT_EQ(dec, (std::set<int>{1, 2}));
  EXPECT_EQ(skips.size(), 2u);
  EXPECT_EQ(ups.size(), 3u);
  EXPECT_EQ(downs.size(), 2u);
  EXPECT_EQ(acts.size(), 2u);
}

TEST(SpaceSample, WidthsAreLogUniform) {
  // Under P(w) ~ 1/w over {8, 16, ..., 512} the three octaves below 64 hold about 55% of the
  // mass (H(7)/H(64)); a uniform draw would put 7/64 = 11% there.
  std::mt19937_64 rng(11);
  int below_64 = 0, total = 0, at_8 = 0, at_512 = 0;
  for (int i = 0; i < 5000; ++i) {
    const Architecture a = Sample(DefaultSpace(), rng);
    for (int w : a.Widths()) {
      ++total;
      below_64 += w < 64;
      at_8 += w == 8;
      at_512 += w == 512;
    }
  }
  const double frac = static_cast<double>(below_64) / total;
  EXPECT_GT(frac, 0.50);
  EXPECT_LT(frac, 0.60);
  // P(8) / P(512) = 64.
  EXPECT_GT(at_8, 30 * std::max(at_512, 1));
  EXPECT_GT(at_512, 0);
}

TEST(SpaceSample, LevelsAreUniform) {
  std::mt19937_64 rng(5);
  int counts[kMaxLevels + 1] = {};
  for (int i = 0; i < 6000; ++i) ++counts[Sample(DefaultSpace(), rng).levels];
  EXPECT_EQ(counts[0], 0);
  for (int l = 1; l <= kMaxLevels; ++l) {
    EXPECT_GT(counts[l], 850) << l;
    EXPECT_LT(counts[l], 1150) << l;
  }
}

// ---------------------------------------------------------------------------------------------
// Mutate

// What a single edit may change: one width (by at most an octave), one block count (by one),
// the deepest level (added or removed), or one kind.
void ExpectSingleEdit(const Architecture& parent, const Architecture& child) {
  SCOPED_TRACE(ToCanonicalJson(parent) + " -> " + ToCanonicalJson(child));
  if (child.levels != parent.levels) {
    ASSERT_EQ(std::abs(child.levels - parent.levels), 1);
    const int common = std::min(child.levels, parent.levels);
    for (int i = 0; i < common; ++i) {
      EXPECT_EQ(child.widths[i], parent.widths[i]);
      EXPECT_EQ(child.enc_blocks[i], parent.enc_blocks[i]);
    }
    for (int i = 0; i + 1 < common; ++i) EXPECT_EQ(child.dec_blocks[i], parent.dec_blocks[i]);
    EXPECT_EQ(child.skip, parent.skip);
    EXPECT_EQ(child.upsample, parent.upsample);
    EXPECT_EQ(child.downsample, parent.downsample);
    EXPECT_EQ(child.activation, parent.activation);
    return;
  }
  int changes = 0;
  for (int i = 0; i < parent.levels; ++i) {
    if (child.widths[i] != parent.widths[i]) {
      ++changes;
      EXPECT_GE(child.widths[i] * 2, parent.widths[i]);
      EXPECT_LE(child.widths[i], parent.widths[i] * 2);
    }
    if (child.enc_blocks[i] != parent.enc_blocks[i]) {
      ++changes;
      EXPECT_EQ(std::abs(child.enc_blocks[i] - parent.enc_blocks[i]), 1);
    }
  }
  for (int i = 0; i + 1 < parent.levels; ++i) {
    if (child.dec_blocks[i] != parent.dec_blocks[i]) {
      ++changes;
      EXPECT_EQ(std::abs(child.dec_blocks[i] - parent.dec_blocks[i]), 1);
    }
  }
  changes += child.skip != parent.skip;
  changes += child.upsample != parent.upsample;
  changes += child.downsample != parent.downsample;
  changes += child.activation != parent.activation;
  EXPECT_EQ(changes, 1);
}

TEST(SpaceMutate, AlwaysInsideAndDifferentFromParent) {
  for (const NamedSpace& s : Spaces()) {
    if (s.name == "singleton") continue;
    for (std::uint64_t seed : kSeeds) {
      std::mt19937_64 rng(seed);
      Architecture parent = Sample(s.space, rng);
      for (int i = 0; i < 2000; ++i) {
        const Architecture child = Mutate(parent, s.space, rng);
        ExpectInside(s.space, child, s.name + " seed " + std::to_string(seed));
        EXPECT_NE(child, parent) << s.name << ": " << ToCanonicalJson(parent);
        ExpectSingleEdit(parent, child);
        if (HasFailure()) return;
        // Walk: half the time continue from the child, otherwise start afresh.
        parent = (i % 2 == 0) ? child : Sample(s.space, rng);
      }
    }
  }
}

TEST(SpaceMutate, ChangesTheOnlyFieldThatCan) {
  const SearchSpace s = OnlyActivation();
  std::mt19937_64 rng(1);
  const Architecture parent = Sample(s, rng);
  for (int i = 0; i < 20; ++i) {
    const Architecture child = Mutate(parent, s, rng);
    EXPECT_NE(child.activation, parent.activation);
    Architecture same = child;
    same.activation = parent.activation;
    EXPECT_EQ(same, parent);
  }
}

TEST(SpaceMutate, WidthOnlyEditsAtTheEdgesOfANondecreasingSpace) {
  // Widths at the ends of the range and equal neighbours: only moves that keep the order exist.
  SearchSpace s = Singleton();
  s.width = {8, 32};
  s.levels = {3, 3};
  s.nondecreasing_widths = true;
  const int enc[] = {2, 2, 2};
  const int dec[] = {3, 3};
  for (const std::vector<int>& widths : std::vector<std::vector<int>>{
           {8, 8, 8}, {32, 32, 32}, {8, 32, 32}, {8, 8, 32}, {8, 16, 32}}) {
    StatusOr<Architecture> parent =
        MakeArchitecture(widths, enc, dec, SkipKind::kConcat, UpsampleKind::kTransposed,
                         DownsampleKind::kStrided, ActivationKind::kRelu);
    ASSERT_TRUE(parent.ok());
    ASSERT_TRUE(Contains(s, *parent));
    std::mt19937_64 rng(widths[1]);
    for (int i = 0; i < 200; ++i) {
      const Architecture child = Mutate(*parent, s, rng);
      EXPECT_NE(child, *parent);
      ExpectInside(s, child, ToCanonicalJson(*parent));
    }
  }
}

TEST(SpaceMutate, SingletonSpaceReturnsTheParent) {
  const SearchSpace s = Singleton();
  std::mt19937_64 rng(9);
  const Architecture parent = Sample(s, rng);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Mutate(parent, s, rng), parent);
}

TEST(SpaceMutate, EveryKindOfEditHappens) {
  const Architecture parent = DesignExample();
  std::mt19937_64 rng(17);
  bool width_up = false, width_down = false, enc = false, dec = false, added = false,
       removed = false, skip = false, up = false, down = false, act = false;
  for (int i = 0; i < 2000; ++i) {
    const Architecture c = Mutate(parent, DefaultSpace(), rng);
    added |= c.levels > parent.levels;
    removed |= c.levels < parent.levels;
    if (c.levels != parent.levels) continue;
    for (int l = 0; l < parent.levels; ++l) {
      width_up |= c.widths[l] > parent.widths[l];
      width_down |= c.widths[l] < parent.widths[l];
    }
    enc |= c.enc_blocks != parent.enc_blocks;
    dec |= c.dec_blocks != parent.dec_blocks;
    skip |= c.skip != parent.skip;
    up |= c.upsample != parent.upsample;
    down |= c.downsample != parent.downsample;
    act |= c.activation != parent.activation;
  }
  EXPECT_TRUE(width_up);
  EXPECT_TRUE(width_down);
  EXPECT_TRUE(enc);
  EXPECT_TRUE(dec);
  EXPECT_TRUE(added);
  EXPECT_TRUE(removed);
  EXPECT_TRUE(skip);
  EXPECT_TRUE(up);
  EXPECT_TRUE(down);
  EXPECT_TRUE(act);
}

TEST(SpaceMutate, SameSeedSameChildren) {
  const Architecture parent = DesignExample();
  std::mt19937_64 r1(123), r2(123);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(Mutate(parent, DefaultSpace(), r1), Mutate(parent, DefaultSpace(), r2));
  }
}

// ---------------------------------------------------------------------------------------------
// Crossover

template <typename T>
bool FromOneOf(T v, T a, T b) {
  return v == a || v == b;
}

TEST(SpaceCrossover, AlwaysInsideEverySpace) {
  ForEverySpaceAndSeed(
      1000, [](const SearchSpace& space, std::mt19937_64& rng, const std::string& where) {
        const Architecture a = Sample(space, rng);
        const Architecture b = Sample(space, rng);
        const Architecture c = Crossover(a, b, space, rng);
        ExpectInside(space, c, where);
        EXPECT_TRUE(FromOneOf(c.levels, a.levels, b.levels));
      });
}

TEST(SpaceCrossover, EachFieldFromOneParentWhenLevelsAgree) {
  for (const SearchSpace& space : {DefaultSpace(), NondecreasingDefault(), DeepWide()}) {
    std::mt19937_64 rng(77);
    int mixed = 0;
    for (int i = 0; i < 3000; ++i) {
      const Architecture a = Sample(space, rng);
      Architecture b = Sample(space, rng);
      if (b.levels != a.levels) continue;
      const Architecture c = Crossover(a, b, space, rng);
      SCOPED_TRACE(ToCanonicalJson(a) + " x " + ToCanonicalJson(b) + " -> " + ToCanonicalJson(c));
      ASSERT_EQ(c.levels, a.levels);
      for (int l = 0; l < a.levels; ++l) {
        EXPECT_TRUE(FromOneOf(c.widths[l], a.widths[l], b.widths[l]));
        EXPECT_TRUE(FromOneOf(c.enc_blocks[l], a.enc_blocks[l], b.enc_blocks[l]));
      }
      for (int l = 0; l + 1 < a.levels; ++l) {
        EXPECT_TRUE(FromOneOf(c.dec_blocks[l], a.dec_blocks[l], b.dec_blocks[l]));
      }
      EXPECT_TRUE(FromOneOf(c.skip, a.skip, b.skip));
      EXPECT_TRUE(FromOneOf(c.upsample, a.upsample, b.upsample));
      EXPECT_TRUE(FromOneOf(c.downsample, a.downsample, b.downsample));
      EXPECT_TRUE(FromOneOf(c.activation, a.activation, b.activation));
      mixed += c != a && c != b;
      if (HasFailure()) return;
    }
    // Uniform crossover mixes: most children equal neither parent.
    EXPECT_GT(mixed, 100);
  }
}

TEST(SpaceCrossover, LevelsDifferTakesPerLevelValuesFromAParentHavingThatLevel) {
  std::mt19937_64 rng(99);
  const SearchSpace space = DefaultSpace();
  int from_shorter = 0;
  for (int i = 0; i < 3000; ++i) {
    const Architecture a = Sample(space, rng);
    const Architecture b = Sample(space, rng);
    if (a.levels == b.levels) continue;
    const Architecture c = Crossover(a, b, space, rng);
    const Architecture& first = c.levels == a.levels ? a : b;
    const Architecture& second = c.levels == a.levels ? b : a;
    for (int l = 0; l < c.levels; ++l) {
      if (l < second.levels) {
        EXPECT_TRUE(FromOneOf(c.widths[l], first.widths[l], second.widths[l]));
        EXPECT_TRUE(FromOneOf(c.enc_blocks[l], first.enc_blocks[l], second.enc_blocks[l]));
        from_shorter += c.widths[l] != first.widths[l];
      } else {
        EXPECT_EQ(c.widths[l], first.widths[l]);
        EXPECT_EQ(c.enc_blocks[l], first.enc_blocks[l]);
      }
    }
    for (int l = 0; l + 1 < c.levels; ++l) {
      if (l + 1 < second.levels) {
        EXPECT_TRUE(FromOneOf(c.dec_blocks[l], first.dec_blocks[l], second.dec_blocks[l]));
      } else {
        EXPECT_EQ(c.dec_blocks[l], first.dec_blocks[l]);
      }
    }
  }
  EXPECT_GT(from_shorter, 100);
}

TEST(SpaceCrossover, IdenticalParentsGiveTheSameArchitecture) {
  std::mt19937_64 rng(4);
  for (int i = 0; i < 200; ++i) {
    const Architecture a = Sample(DefaultSpace(), rng);
    EXPECT_EQ(Crossover(a, a, DefaultSpace(), rng), a);
  }
}

TEST(SpaceCrossover, SameSeedSameChildren) {
  std::mt19937_64 pr(5);
  const Architecture a = Sample(DefaultSpace(), pr);
  const Architecture b = Sample(DefaultSpace(), pr);
  std::mt19937_64 r1(6), r2(6), r3(7);
  std::vector<Architecture> c1, c2, c3;
  for (int i = 0; i < 100; ++i) {
    c1.push_back(Crossover(a, b, DefaultSpace(), r1));
    c2.push_back(Crossover(a, b, DefaultSpace(), r2));
    c3.push_back(Crossover(a, b, DefaultSpace(), r3));
  }
  EXPECT_EQ(c1, c2);
  EXPECT_NE(c1, c3);
}

// ---------------------------------------------------------------------------------------------
// ScaleArchitecture

// Runs `check(base, options)` on `count` architectures drawn from `space` with `seed`, each
// under ScalingOptions{alpha} for every alpha of `alphas`; stops at the first failure.
template <typename Check>
void ForSampledBases(const SearchSpace& space, std::uint64_t seed, int count,
                     std::initializer_list<double> alphas, Check check) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count; ++i) {
    const Architecture base = Sample(space, rng);
    for (double alpha : alphas) {
      check(base, ScalingOptions{alpha});
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(SpaceScale, FactorOneReturnsTheBase) {
  for (const SearchSpace& space : {DefaultSpace(), NondecreasingDefault(), Tiny(), DeepWide()}) {
    ForSampledBases(
        space, 21, 500, {0.2, 0.8, 1.0}, [&](const Architecture& base, const ScalingOptions& opt) {
          EXPECT_EQ(ScaleArchitecture(base, 1.0, opt, space), base) << ToCanonicalJson(base);
        });
  }
}

TEST(SpaceScale, LargerFactorNeverShrinksSmallerNeverGrows) {
  const SearchSpace space = DefaultSpace();
  ForSampledBases(
      space, 22, 500, {0.3, 0.8, 1.0}, [&](const Architecture& base, const ScalingOptions& opt) {
        Architecture prev = ScaleArchitecture(base, 1.0 / 4096, opt, space);
        for (double f = 1.0 / 4096; f <= 4096.0; f *= 1.7) {
          const Architecture up = ScaleArchitecture(base, std::max(f, 1.0), opt, space);
          const Architecture down = ScaleArchitecture(base, std::min(f, 1.0), opt, space);
          const Architecture here = ScaleArchitecture(base, f, opt, space);
          ExpectInside(space, here, "f=" + std::to_string(f));
          ASSERT_EQ(here.levels, base.levels);
          for (int l = 0; l < base.levels; ++l) {
            EXPECT_GE(up.widths[l], base.widths[l]);
            EXPECT_GE(up.enc_blocks[l], base.enc_blocks[l]);
            EXPECT_LE(down.widths[l], base.widths[l]);
            EXPECT_LE(down.enc_blocks[l], base.enc_blocks[l]);
            EXPECT_GE(here.widths[l], prev.widths[l]);  // monotone in the factor
            EXPECT_GE(here.enc_blocks[l], prev.enc_blocks[l]);
          }
          for (int l = 0; l + 1 < base.levels; ++l) {
            EXPECT_GE(up.dec_blocks[l], base.dec_blocks[l]);
            EXPECT_LE(down.dec_blocks[l], base.dec_blocks[l]);
            EXPECT_GE(here.dec_blocks[l], prev.dec_blocks[l]);
          }
          EXPECT_EQ(here.skip, base.skip);
          EXPECT_EQ(here.upsample, base.upsample);
          EXPECT_EQ(here.downsample, base.downsample);
          EXPECT_EQ(here.activation, base.activation);
          prev = here;
          if (HasFailure()) return;
        }
      });
}

TEST(SpaceScale, KnownValues) {
  const Architecture base = DesignExample();  // widths 32 64 128 256, enc 1 1 2 2, dec 1 1 1
  // alpha = 1: all of the factor goes to width, as sqrt(s); blocks stay.
  {
    const Architecture a = ScaleArchitecture(base, 4.0, ScalingOptions{1.0}, DefaultSpace());
    EXPECT_EQ(a.Widths()[0], 64);
    EXPECT_EQ(std::vector<int>(a.Widths().begin(), a.Widths().end()),
              (std::vector<int>{64, 128, 256, 512}));
    EXPECT_EQ(a.enc_blocks, base.enc_blocks);
    EXPECT_EQ(a.dec_blocks, base.dec_blocks);
  }
  // alpha = 0.8, s = 16: width x 16^(0.8/1.8) = 3.4290, depth x 16^(0.2/1.8) = 1.3608.
  // 32 -> 109.7 -> 112; 64 -> 219.5 -> 216; 128 -> 438.9 -> 440; 256 -> 877.8 -> 512 (clamped).
  // Blocks 1 -> 1.36 -> 1; 2 -> 2.72 -> 3.
  {
    const Architecture a = ScaleArchitecture(base, 16.0, ScalingOptions{}, DefaultSpace());
    EXPECT_EQ(std::vector<int>(a.Widths().begin(), a.Widths().end()),
              (std::vector<int>{112, 216, 440, 512}));
    EXPECT_EQ(std::vector<int>(a.EncBlocks().begin(), a.EncBlocks().end()),
              (std::vector<int>{1, 1, 3, 3}));
    EXPECT_EQ(std::vector<int>(a.DecBlocks().begin(), a.DecBlocks().end()),
              (std::vector<int>{1, 1, 1}));
  }
  // Tiny factors clamp to the space's minimum.
  {
    const Architecture a = ScaleArchitecture(base, 1.0 / 4096, ScalingOptions{}, DefaultSpace());
    EXPECT_EQ(std::vector<int>(a.Widths().begin(), a.Widths().end()),
              (std::vector<int>{8, 8, 8, 8}));
    EXPECT_EQ(std::vector<int>(a.EncBlocks().begin(), a.EncBlocks().end()),
              (std::vector<int>{1, 1, 1, 1}));
  }
}

TEST(SpaceScale, BaseOutsideTheSpaceIsClampedIntoIt) {
  const Architecture base = DesignExample();
  SearchSpace narrow = Fixed3Levels64Wide();
  narrow.enc_blocks = {2, 3};
  SearchSpace deep = DefaultSpace();
  deep.levels = {6, 6};
  deep.nondecreasing_widths = true;
  for (const SearchSpace& space : {narrow, deep, Tiny(), DeepWide(), Singleton()}) {
    for (double f : {1.0 / 4096, 0.01, 0.5, 1.0, 3.0, 100.0, 4096.0}) {
      ExpectInside(space, ScaleArchitecture(base, f, ScalingOptions{}, space),
                   "f=" + std::to_string(f));
    }
  }
  const Architecture a = ScaleArchitecture(base, 1.0, ScalingOptions{}, narrow);
  EXPECT_EQ(a.levels, 3);
  EXPECT_EQ(std::vector<int>(a.EncBlocks().begin(), a.EncBlocks().end()),
            (std::vector<int>{2, 2, 2}));
  const Architecture d = ScaleArchitecture(base, 1.0, ScalingOptions{}, deep);
  EXPECT_EQ(std::vector<int>(d.Widths().begin(), d.Widths().end()),
            (std::vector<int>{32, 64, 128, 256, 512, 512}));
}

// ---------------------------------------------------------------------------------------------
// ScaleToCost

// A MACs-like cost: sum over levels of width^2 x blocks.
double MacsLike(const Architecture& a) {
  double c = 0;
  for (int l = 0; l < a.levels; ++l) {
    const double w = a.widths[l];
    c += w * w * (a.enc_blocks[l] + (l + 1 < a.levels ? a.dec_blocks[l] : 0));
  }
  return c;
}

TEST(SpaceScaleToCost, LargestScalingWithinTheTarget) {
  const SearchSpace space = DefaultSpace();
  ForSampledBases(
      space, 31, 60, {0.5, 0.8, 1.0}, [&](const Architecture& base, const ScalingOptions& opt) {
        const double smallest = MacsLike(ScaleArchitecture(base, 1.0 / 4096, opt, space));
        const double largest = MacsLike(ScaleArchitecture(base, 4096, opt, space));
        for (double t : {0.3, 0.5, 0.9, 1.0, 1.5, 4.0}) {
          const double target = std::max(MacsLike(base) * t, smallest);
          StatusOr<Architecture> got = ScaleToCost(base, target, MacsLike, opt, space);
          ASSERT_TRUE(got.ok()) << got.status().ToString();
          ExpectInside(space, *got, ToCanonicalJson(base));
          EXPECT_LE(MacsLike(*got), target);
          // No scaling on a fine grid that fits the target costs more than the answer.
          for (double f = 1.0 / 4096; f <= 4096.0; f *= 1.05) {
            const double c = MacsLike(ScaleArchitecture(base, f, opt, space));
            if (c <= target) {
              EXPECT_LE(c, MacsLike(*got)) << "f=" << f;
            }
          }
          if (t == 1.0) {
            EXPECT_EQ(MacsLike(*got), MacsLike(base));  // the base itself fits
          }
          if (target >= largest) {
            EXPECT_EQ(*got, ScaleArchitecture(base, 4096, opt, space));
          }
          if (HasFailure()) return;
        }
      });
}

TEST(SpaceScaleToCost, HugeTargetGivesTheLargestScaling) {
  const Architecture base = DesignExample();
  StatusOr<Architecture> got = ScaleToCost(base, 1e300, MacsLike, ScalingOptions{}, DefaultSpace());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, ScaleArchitecture(base, 4096, ScalingOptions{}, DefaultSpace()));
  EXPECT_EQ(std::vector<int>(got->Widths().begin(), got->Widths().end()),
            (std::vector<int>{512, 512, 512, 512}));
}

TEST(SpaceScaleToCost, ImpossibleTargetIsNotFound) {
  const Architecture base = DesignExample();
  // The smallest scaling has widths 8 and one block per stage: 7 stages x 64 = 448.
  EXPECT_EQ(MacsLike(ScaleArchitecture(base, 1.0 / 4096, ScalingOptions{}, DefaultSpace())), 448);
  StatusOr<Architecture> got = ScaleToCost(base, 447, MacsLike, ScalingOptions{}, DefaultSpace());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(got.status().message(), "target"));
  StatusOr<Architecture> exact = ScaleToCost(base, 448, MacsLike, ScalingOptions{}, DefaultSpace());
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(MacsLike(*exact), 448);
}

}  // namespace
}  // namespace peaknas::search
