#include "search/space.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace peaknas::search {
namespace {

// ---------------------------------------------------------------------------------------------
// Integer draws. Only these touch the generator, and they use nothing but rng() and integer
// arithmetic, so a seed gives the same sequence with every standard library.

// Uniform in [0, range) (range >= 1) by rejection sampling on the full 64-bit output: draws at
// or above the largest multiple of `range` that fits in 2^64 would favour the low residues, so
// they are redrawn.
std::uint64_t UniformBelow(std::mt19937_64& rng, std::uint64_t range) {
  assert(range >= 1);
  const std::uint64_t excess = (0 - range) % range;  // 2^64 mod range
  const std::uint64_t limit = 0 - excess;            // 0: every draw is accepted
  std::uint64_t x = rng();
  while (limit != 0 && x >= limit) x = rng();
  return x % range;
}

// Uniform in [lo, hi] (lo <= hi).
int UniformInt(std::mt19937_64& rng, int lo, int hi) {
  assert(lo <= hi);
  const auto range = static_cast<std::uint64_t>(std::int64_t{hi} - std::int64_t{lo}) + 1;
  return static_cast<int>(std::int64_t{lo} + static_cast<std::int64_t>(UniformBelow(rng, range)));
}

// A fair coin.
bool Coin(std::mt19937_64& rng) { return (rng() >> 63) != 0; }

// Uniform over the entries of a non-empty list.
template <typename T>
T Pick(std::mt19937_64& rng, const std::vector<T>& values) {
  assert(!values.empty());
  return values[static_cast<std::size_t>(UniformInt(rng, 0, static_cast<int>(values.size()) - 1))];
}

// A multiple of 8 in [lo, hi] (both multiples of 8, lo <= hi) with probability proportional to
// 1/width: the discrete log-uniform law, under which every octave is (nearly) equally likely.
// The weights are integers (2^40 / k for width 8k), so the draw is exact and portable.
int LogUniformWidth(std::mt19937_64& rng, int lo, int hi) {
  assert(lo % kWidthMultiple == 0 && hi % kWidthMultiple == 0 && lo <= hi && lo > 0);
  constexpr std::int64_t kScale = std::int64_t{1} << 40;
  const int k_lo = lo / kWidthMultiple;
  const int k_hi = hi / kWidthMultiple;
  std::int64_t total = 0;
  for (int k = k_lo; k <= k_hi; ++k) total += kScale / k;
  // total < 64 * 2^40: no overflow.
  auto r = static_cast<std::int64_t>(UniformBelow(rng, static_cast<std::uint64_t>(total)));
  for (int k = k_lo; k < k_hi; ++k) {
    r -= kScale / k;
    if (r < 0) return k * kWidthMultiple;
  }
  return hi;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

int RoundUpToMultiple(int v, int m) { return (v + m - 1) / m * m; }

Status ValidateRange(std::string_view field, const IntRange& range, int lo, int hi, int multiple) {
  const auto check = [&](std::string_view end, int v) -> Status {
    if (v < lo || v > hi || v % multiple != 0) {
      std::string what =
          std::string(field) + ": " + std::string(end) + " " + std::to_string(v) + " is not ";
      if (multiple > 1) what += "a multiple of " + std::to_string(multiple) + " ";
      return Status::InvalidArgument(what + "in " + RangeText(lo, hi));
    }
    return Status::Ok();
  };
  PEAKNAS_RETURN_IF_ERROR(check("min", range.min));
  PEAKNAS_RETURN_IF_ERROR(check("max", range.max));
  if (range.min > range.max) {
    return Status::InvalidArgument(std::string(field) + ": min " + std::to_string(range.min) +
                                   " > max " + std::to_string(range.max));
  }
  return Status::Ok();
}

template <typename Kind, std::size_t N>
Status ValidateKinds(std::string_view field, const std::vector<Kind>& kinds,
                     const std::array<Kind, N>& all) {
  if (kinds.empty()) return Status::InvalidArgument(std::string(field) + ": empty");
  std::string allowed;
  for (Kind k : all) {
    if (!allowed.empty()) allowed += ", ";
    allowed += Name(k);
  }
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    if (std::find(all.begin(), all.end(), kinds[i]) == all.end()) {
      return Status::InvalidArgument(std::string(field) + "[" + std::to_string(i) +
                                     "]: " + std::to_string(static_cast<int>(kinds[i])) +
                                     " is not one of {" + allowed + "}");
    }
    if (std::find(kinds.begin(), kinds.begin() + static_cast<std::ptrdiff_t>(i), kinds[i]) !=
        kinds.begin() + static_cast<std::ptrdiff_t>(i)) {
      return Status::InvalidArgument(std::string(field) + "[" + std::to_string(i) + "]: \"" +
                                     std::string(Name(kinds[i])) + "\" is repeated");
    }
  }
  return Status::Ok();
}

template <typename Kind>
bool Allowed(const std::vector<Kind>& kinds, Kind k) {
  return std::find(kinds.begin(), kinds.end(), k) != kinds.end();
}

// A different allowed kind than `current`, uniformly; requires kinds.size() >= 2 with `current`
// among them.
template <typename Kind>
Kind PickOther(std::mt19937_64& rng, const std::vector<Kind>& kinds, Kind current) {
  std::vector<Kind> others;
  for (Kind k : kinds) {
    if (k != current) others.push_back(k);
  }
  return Pick(rng, others);
}

// Keeps entries at and beyond `levels` zero (the Architecture invariant).
void ClearUnused(Architecture& a) {
  for (int i = std::max(a.levels, 0); i < kMaxLevels; ++i) {
    a.widths[i] = 0;
    a.enc_blocks[i] = 0;
  }
  for (int i = std::max(a.levels - 1, 0); i < kMaxLevels - 1; ++i) a.dec_blocks[i] = 0;
}

// ---------------------------------------------------------------------------------------------
// Mutation edits. Each kind of edit lists its feasible concrete edits; Mutate picks a kind among
// the feasible ones and then an edit of that kind, so the child always differs from the parent
// when anything can change.

enum class EditKind {
  kWidth,
  kEncBlocks,
  kDecBlocks,
  kLevels,
  kSkip,
  kUpsample,
  kDownsample,
  kActivation,
};

// The widths level i may move to, up (true) or down (false) by at most an octave, staying in
// the width range and, when nondecreasing, between its neighbours. Empty when lo > hi.
struct WidthStep {
  int level;
  int lo;
  int hi;
};

std::vector<WidthStep> FeasibleWidthSteps(const Architecture& a, const SearchSpace& space) {
  std::vector<WidthStep> steps;
  for (int i = 0; i < a.levels; ++i) {
    const int w = a.widths[i];
    int up_hi = std::min(2 * w, space.width.max);
    int down_lo = std::max(RoundUpToMultiple(w / 2, kWidthMultiple), space.width.min);
    if (space.nondecreasing_widths) {
      if (i + 1 < a.levels) up_hi = std::min(up_hi, a.widths[i + 1]);
      if (i > 0) down_lo = std::max(down_lo, a.widths[i - 1]);
    }
    if (w + kWidthMultiple <= up_hi) steps.push_back({i, w + kWidthMultiple, up_hi});
    if (down_lo <= w - kWidthMultiple) steps.push_back({i, down_lo, w - kWidthMultiple});
  }
  return steps;
}

// (level, new value) pairs for a +-1 change of a block count.
std::vector<std::pair<int, int>> FeasibleBlockSteps(std::span<const int> blocks,
                                                    const IntRange& range) {
  std::vector<std::pair<int, int>> steps;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const int b = blocks[i];
    if (b + 1 <= range.max) steps.emplace_back(static_cast<int>(i), b + 1);
    if (b - 1 >= range.min) steps.emplace_back(static_cast<int>(i), b - 1);
  }
  return steps;
}

bool CanAddLevel(const Architecture& a, const SearchSpace& space) {
  return a.levels < space.levels.max && a.levels < kMaxLevels;
}
bool CanRemoveLevel(const Architecture& a, const SearchSpace& space) {
  return a.levels > space.levels.min && a.levels > kMinLevels;
}

// Appends a deepest level: its width is drawn up to an octave above the current deepest (never
// below it, so nondecreasing widths stay so), its encoder blocks copy the current deepest, and
// the former deepest level gains a decoder stage with the previous decoder's block count.
void AddDeepestLevel(Architecture& a, const SearchSpace& space, std::mt19937_64& rng) {
  const int last = a.levels - 1;
  const int w = a.widths[last];
  const int hi = std::min(2 * w, space.width.max);
  a.widths[last + 1] = LogUniformWidth(rng, std::min(w, hi), hi);
  a.enc_blocks[last + 1] = a.enc_blocks[last];
  const int dec = last >= 1 ? a.dec_blocks[last - 1] : a.enc_blocks[last];
  a.dec_blocks[last] = std::clamp(dec, space.dec_blocks.min, space.dec_blocks.max);
  a.levels += 1;
}

void RemoveDeepestLevel(Architecture& a) {
  a.levels -= 1;
  ClearUnused(a);
}

// ---------------------------------------------------------------------------------------------
// Scaling helpers.

// Rounds to the nearest multiple of 8 and clamps into [lo, hi] (both multiples of 8).
int ScaleWidth(int width, double factor, const IntRange& range) {
  const double scaled = static_cast<double>(width) * factor / kWidthMultiple;
  const double clamped = std::clamp(scaled, static_cast<double>(range.min) / kWidthMultiple,
                                    static_cast<double>(range.max) / kWidthMultiple);
  return static_cast<int>(std::llround(clamped)) * kWidthMultiple;
}

int ScaleBlocks(int blocks, double factor, const IntRange& range) {
  const double scaled = static_cast<double>(blocks) * factor;
  const double clamped =
      std::clamp(scaled, static_cast<double>(range.min), static_cast<double>(range.max));
  return static_cast<int>(std::llround(clamped));
}

// `base` with its level count clamped into the space (deepest levels dropped, or deeper ones
// appended that double the deepest width) and its kinds replaced by allowed ones where needed.
// Values are not yet clamped; scaling does that.
Architecture ConformStructure(const Architecture& base, const SearchSpace& space) {
  Architecture a = base;
  a.levels = std::clamp(base.levels, 0, kMaxLevels);
  ClearUnused(a);
  if (a.levels > space.levels.max) {
    a.levels = space.levels.max;
    ClearUnused(a);
  }
  while (a.levels < space.levels.min) {
    const int i = a.levels;
    if (i == 0) {
      a.widths[0] = space.width.min;
      a.enc_blocks[0] = space.enc_blocks.min;
    } else {
      a.widths[i] = std::min(2 * std::max(a.widths[i - 1], 0), kMaxWidth);
      a.enc_blocks[i] = a.enc_blocks[i - 1];
      a.dec_blocks[i - 1] =
          std::clamp(a.enc_blocks[i - 1], space.dec_blocks.min, space.dec_blocks.max);
    }
    a.levels += 1;
  }
  if (!Allowed(space.skips, a.skip)) a.skip = space.skips.front();
  if (!Allowed(space.upsamples, a.upsample)) a.upsample = space.upsamples.front();
  if (!Allowed(space.downsamples, a.downsample)) a.downsample = space.downsamples.front();
  if (!Allowed(space.activations, a.activation)) a.activation = space.activations.front();
  return a;
}

}  // namespace

Status Validate(const SearchSpace& space) {
  PEAKNAS_RETURN_IF_ERROR(ValidateRange("levels", space.levels, kMinLevels, kMaxLevels, 1));
  PEAKNAS_RETURN_IF_ERROR(
      ValidateRange("width", space.width, kMinWidth, kMaxWidth, kWidthMultiple));
  PEAKNAS_RETURN_IF_ERROR(ValidateRange("enc_blocks", space.enc_blocks, kMinBlocks, kMaxBlocks, 1));
  PEAKNAS_RETURN_IF_ERROR(ValidateRange("dec_blocks", space.dec_blocks, kMinBlocks, kMaxBlocks, 1));
  PEAKNAS_RETURN_IF_ERROR(ValidateKinds("skips", space.skips, kAllSkipKinds));
  PEAKNAS_RETURN_IF_ERROR(ValidateKinds("upsamples", space.upsamples, kAllUpsampleKinds));
  PEAKNAS_RETURN_IF_ERROR(ValidateKinds("downsamples", space.downsamples, kAllDownsampleKinds));
  PEAKNAS_RETURN_IF_ERROR(ValidateKinds("activations", space.activations, kAllActivationKinds));
  return Status::Ok();
}

bool Contains(const SearchSpace& space, const Architecture& arch) {
  if (!Validate(arch).ok()) return false;
  if (!space.levels.Contains(arch.levels)) return false;
  for (int w : arch.Widths()) {
    if (!space.width.Contains(w)) return false;
  }
  for (int b : arch.EncBlocks()) {
    if (!space.enc_blocks.Contains(b)) return false;
  }
  for (int b : arch.DecBlocks()) {
    if (!space.dec_blocks.Contains(b)) return false;
  }
  if (space.nondecreasing_widths) {
    const auto w = arch.Widths();
    if (!std::is_sorted(w.begin(), w.end())) return false;
  }
  return Allowed(space.skips, arch.skip) && Allowed(space.upsamples, arch.upsample) &&
         Allowed(space.downsamples, arch.downsample) && Allowed(space.activations, arch.activation);
}

Architecture Sample(const SearchSpace& space, std::mt19937_64& rng) {
  assert(Validate(space).ok());
  Architecture a;
  a.levels = UniformInt(rng, space.levels.min, space.levels.max);
  for (int i = 0; i < a.levels; ++i) {
    a.widths[i] = LogUniformWidth(rng, space.width.min, space.width.max);
  }
  if (space.nondecreasing_widths) std::sort(a.widths.begin(), a.widths.begin() + a.levels);
  for (int i = 0; i < a.levels; ++i) {
    a.enc_blocks[i] = UniformInt(rng, space.enc_blocks.min, space.enc_blocks.max);
  }
  for (int i = 0; i + 1 < a.levels; ++i) {
    a.dec_blocks[i] = UniformInt(rng, space.dec_blocks.min, space.dec_blocks.max);
  }
  a.skip = Pick(rng, space.skips);
  a.upsample = Pick(rng, space.upsamples);
  a.downsample = Pick(rng, space.downsamples);
  a.activation = Pick(rng, space.activations);
  return a;
}

Architecture Mutate(const Architecture& parent, const SearchSpace& space, std::mt19937_64& rng) {
  assert(Validate(space).ok());
  assert(Contains(space, parent));
  const std::vector<WidthStep> width_steps = FeasibleWidthSteps(parent, space);
  const auto enc_steps = FeasibleBlockSteps(parent.EncBlocks(), space.enc_blocks);
  const auto dec_steps = FeasibleBlockSteps(parent.DecBlocks(), space.dec_blocks);
  const bool can_add = CanAddLevel(parent, space);
  const bool can_remove = CanRemoveLevel(parent, space);

  std::vector<EditKind> kinds;
  if (!width_steps.empty()) kinds.push_back(EditKind::kWidth);
  if (!enc_steps.empty()) kinds.push_back(EditKind::kEncBlocks);
  if (!dec_steps.empty()) kinds.push_back(EditKind::kDecBlocks);
  if (can_add || can_remove) kinds.push_back(EditKind::kLevels);
  if (space.skips.size() > 1) kinds.push_back(EditKind::kSkip);
  if (space.upsamples.size() > 1) kinds.push_back(EditKind::kUpsample);
  if (space.downsamples.size() > 1) kinds.push_back(EditKind::kDownsample);
  if (space.activations.size() > 1) kinds.push_back(EditKind::kActivation);
  if (kinds.empty()) return parent;  // the space holds this architecture alone

  Architecture child = parent;
  switch (Pick(rng, kinds)) {
    case EditKind::kWidth: {
      const WidthStep& step = width_steps[static_cast<std::size_t>(
          UniformInt(rng, 0, static_cast<int>(width_steps.size()) - 1))];
      child.widths[step.level] = LogUniformWidth(rng, step.lo, step.hi);
      break;
    }
    case EditKind::kEncBlocks: {
      const auto [level, value] = Pick(rng, enc_steps);
      child.enc_blocks[level] = value;
      break;
    }
    case EditKind::kDecBlocks: {
      const auto [level, value] = Pick(rng, dec_steps);
      child.dec_blocks[level] = value;
      break;
    }
    case EditKind::kLevels:
      if (can_add && (!can_remove || Coin(rng))) {
        AddDeepestLevel(child, space, rng);
      } else {
        RemoveDeepestLevel(child);
      }
      break;
    case EditKind::kSkip:
      child.skip = PickOther(rng, space.skips, parent.skip);
      break;
    case EditKind::kUpsample:
      child.upsample = PickOther(rng, space.upsamples, parent.upsample);
      break;
    case EditKind::kDownsample:
      child.downsample = PickOther(rng, space.downsamples, parent.downsample);
      break;
    case EditKind::kActivation:
      child.activation = PickOther(rng, space.activations, parent.activation);
      break;
  }
  assert(child != parent);
  assert(Contains(space, child));
  return child;
}

Architecture Crossover(const Architecture& a, const Architecture& b, const SearchSpace& space,
                       std::mt19937_64& rng) {
  assert(Validate(space).ok());
  assert(Contains(space, a) && Contains(space, b));
  Architecture child;
  // `first` gives the level count, so it has every level of the child; `second` may lack the
  // deeper ones, which then come from `first`.
  const bool levels_from_a = Coin(rng);
  const Architecture& first = levels_from_a ? a : b;
  const Architecture& second = levels_from_a ? b : a;
  child.levels = first.levels;

  // Widths level by level. With nondecreasing widths a candidate below the previous level's
  // width is skipped; the parent that gave the previous width always has a candidate at least
  // as large at this level, unless it has no such level, in which case the previous width is
  // repeated.
  for (int i = 0; i < child.levels; ++i) {
    int candidates[2];
    int n = 0;
    const int prev = i > 0 ? child.widths[i - 1] : 0;
    const auto consider = [&](const Architecture& p) {
      if (i >= p.levels) return;
      if (space.nondecreasing_widths && p.widths[i] < prev) return;
      candidates[n++] = p.widths[i];
    };
    consider(a);
    consider(b);
    if (n == 0) {
      child.widths[i] = prev;
    } else {
      child.widths[i] = n == 2 && Coin(rng) ? candidates[1] : candidates[0];
    }
  }
  for (int i = 0; i < child.levels; ++i) {
    child.enc_blocks[i] =
        (i < second.levels && Coin(rng)) ? second.enc_blocks[i] : first.enc_blocks[i];
  }
  for (int i = 0; i + 1 < child.levels; ++i) {
    child.dec_blocks[i] =
        (i + 1 < second.levels && Coin(rng)) ? second.dec_blocks[i] : first.dec_blocks[i];
  }
  child.skip = Coin(rng) ? a.skip : b.skip;
  child.upsample = Coin(rng) ? a.upsample : b.upsample;
  child.downsample = Coin(rng) ? a.downsample : b.downsample;
  child.activation = Coin(rng) ? a.activation : b.activation;
  assert(Contains(space, child));
  return child;
}

Architecture ScaleArchitecture(const Architecture& base, double flops_factor,
                               const ScalingOptions& options, const SearchSpace& space) {
  assert(options.alpha > 0.0 && options.alpha <= 1.0 && "ScalingOptions::alpha is in (0, 1]");
  assert(flops_factor > 0.0 && std::isfinite(flops_factor));
  assert(Validate(space).ok());
  const double alpha = options.alpha;
  const double depth_factor = std::pow(flops_factor, (1.0 - alpha) / (1.0 + alpha));
  const double width_factor = std::pow(flops_factor, alpha / (1.0 + alpha));

  Architecture a = ConformStructure(base, space);
  for (int i = 0; i < a.levels; ++i) {
    a.widths[i] = ScaleWidth(a.widths[i], width_factor, space.width);
    a.enc_blocks[i] = ScaleBlocks(a.enc_blocks[i], depth_factor, space.enc_blocks);
  }
  for (int i = 0; i + 1 < a.levels; ++i) {
    a.dec_blocks[i] = ScaleBlocks(a.dec_blocks[i], depth_factor, space.dec_blocks);
  }
  if (space.nondecreasing_widths) {
    // Rounding and clamping are monotone, so a nondecreasing base stays so; this only repairs a
    // base that was not.
    for (int i = 1; i < a.levels; ++i) a.widths[i] = std::max(a.widths[i], a.widths[i - 1]);
  }
  ClearUnused(a);
  assert(Contains(space, a));
  return a;
}

StatusOr<Architecture> ScaleToCost(const Architecture& base, double target,
                                   const std::function<double(const Architecture&)>& cost,
                                   const ScalingOptions& options, const SearchSpace& space) {
  constexpr double kMinFactor = 1.0 / 4096.0;
  constexpr double kMaxFactor = 4096.0;
  constexpr int kIterations = 40;

  Architecture smallest = ScaleArchitecture(base, kMinFactor, options, space);
  const double smallest_cost = cost(smallest);
  if (!(smallest_cost <= target)) {
    return Status::NotFound("target: even the smallest scaling (flops factor 1/4096) costs " +
                            std::to_string(smallest_cost) + " > target " + std::to_string(target));
  }
  Architecture largest = ScaleArchitecture(base, kMaxFactor, options, space);
  if (cost(largest) <= target) return largest;

  // Invariant: scaling by exp(lo) fits the target, scaling by exp(hi) does not.
  double lo = std::log(kMinFactor);
  double hi = std::log(kMaxFactor);
  Architecture best = std::move(smallest);
  for (int iter = 0; iter < kIterations; ++iter) {
    const double mid = 0.5 * (lo + hi);
    Architecture candidate = ScaleArchitecture(base, std::exp(mid), options, space);
    if (cost(candidate) <= target) {
      lo = mid;
      best = std::move(candidate);
    } else {
      hi = mid;
    }
  }
  return best;
}

}  // namespace peaknas::search
