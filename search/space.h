// A search space over the U-Net family: a range per field and a set of allowed kinds, with
// seeded sampling, mutation and crossover that only ever produce architectures inside the space
// (and so valid ones), and uniform fast scaling of a base architecture to a target cost.
//
// Randomness comes only from the std::mt19937_64 the caller passes, and only through this
// file's own integer draws (no std::uniform_int_distribution, whose output differs between
// standard libraries), so a seed reproduces the same candidates on every platform.
//
// Thread-safety: pure functions of their arguments; each thread uses its own generator.
#ifndef PEAKNAS_SEARCH_SPACE_H_
#define PEAKNAS_SEARCH_SPACE_H_

#include <functional>
#include <random>
#include <vector>

#include "base/status.h"
#include "search/architecture.h"

namespace peaknas::search {

struct IntRange {
  int min = 0;
  int max = 0;
  bool Contains(int v) const { return v >= min && v <= max; }
};

struct SearchSpace {
  IntRange levels{kMinLevels, kMaxLevels};  // L
  IntRange width{kMinWidth, kMaxWidth};     // every widths[i]; both ends multiples of 8
  IntRange enc_blocks{kMinBlocks, kMaxBlocks};
  IntRange dec_blocks{kMinBlocks, kMaxBlocks};
  // Allowed kinds; each list non-empty, no repeats.
  std::vector<SkipKind> skips{kAllSkipKinds.begin(), kAllSkipKinds.end()};
  std::vector<UpsampleKind> upsamples{kAllUpsampleKinds.begin(), kAllUpsampleKinds.end()};
  std::vector<DownsampleKind> downsamples{kAllDownsampleKinds.begin(), kAllDownsampleKinds.end()};
  std::vector<ActivationKind> activations{kAllActivationKinds.begin(), kAllActivationKinds.end()};
  // When true, widths never decrease with depth (w_i <= w_{i+1}), as in most U-Nets.
  bool nondecreasing_widths = false;
};

// OK, or INVALID_ARGUMENT naming the field: "width: min 600 is not a multiple of 8 in [8, 512]",
// "enc_blocks: min 5 > max 2", "upsamples: empty".
Status Validate(const SearchSpace& space);

// True when `arch` is valid and every field lies within `space`.
bool Contains(const SearchSpace& space, const Architecture& arch);

// A uniform draw of the discrete fields; widths are log-uniform over the multiples of 8 in the
// width range (so 16 and 512 are as likely as their octaves), sorted when nondecreasing_widths.
// Precondition: Validate(space).ok().
Architecture Sample(const SearchSpace& space, std::mt19937_64& rng);

// One random edit: a width up or down an octave-ish step, a block count +-1, a level added or
// removed, or a kind changed. The result differs from `parent` whenever the space allows any
// change, and is always inside `space`. Precondition: Contains(space, parent).
Architecture Mutate(const Architecture& parent, const SearchSpace& space, std::mt19937_64& rng);

// Uniform crossover per field; per-level values are taken level by level from either parent
// (levels from one parent, missing levels filled from the other or resampled). Always inside
// `space`. Precondition: both parents inside `space`.
Architecture Crossover(const Architecture& a, const Architecture& b, const SearchSpace& space,
                       std::mt19937_64& rng);

// Uniform fast scaling (Dollár, Singh, Girshick, "Fast and Accurate Model Scaling", CVPR 2021).
// dWr scales a network's flops by s with depth x s^((1-a)/2), width x s^(a/2) and resolution
// x s^((1-a)/4). Here resolution is the task's (tile or patch), not the architecture's, so its
// share goes to depth and width in the same proportion: depth x s^((1-a)/(1+a)), width x
// s^(a/(1+a)); depth and width factors then multiply every level's block count and width.
// Rounded results are clamped into `space`.
struct ScalingOptions {
  double alpha = 0.8;  // width weight a in (0, 1]
};
Architecture ScaleArchitecture(const Architecture& base, double flops_factor,
                               const ScalingOptions& options, const SearchSpace& space);

// The largest scale of `base` whose `cost` is at most `target`, found by bisection on the
// flops factor over [1/4096, 4096] (cost need only be roughly monotone in the factor). Returns
// NOT_FOUND when even the smallest scaling exceeds the target.
StatusOr<Architecture> ScaleToCost(const Architecture& base, double target,
                                   const std::function<double(const Architecture&)>& cost,
                                   const ScalingOptions& options, const SearchSpace& space);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_SPACE_H_
