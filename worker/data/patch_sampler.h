// PatchSampler: random training crops from SIDD-layout pairs, batched for the trainer.
//
// Each batch holds B patches of P×P pixels. A patch takes a pair uniformly from the resident
// working set, a crop position uniformly from the pair's image, and — when enabled — a
// horizontal flip, a vertical flip and a rotation by a multiple of 90° (the same transform for
// the noisy and the clean crop). Output is float32 in [0, 1], planar CHW per patch:
// noisy[((b * 3 + c) * P + y) * P + x], ready to wrap as a [B, 3, P, P] tensor.
//
// Reproducible: the sequence of batches is a function of (pairs, options) only — including
// the seed — and not of timing or of what happens to be cached.
//
// Memory: decoded pairs are kept in memory up to options.max_resident_bytes. When every pair
// fits (generated datasets: a few MB), all pairs become resident on first use and stay. When
// they do not (SIDD-Medium: ~110 MB per decoded pair), the sampler keeps a working set of as
// many pairs as fit, and every refresh_every_batches batches swaps one random resident pair
// for a random non-resident one, so over time every pair is visited while each batch costs at
// most one pair's decoding.
//
// Thread-safety: not thread-safe; one sampler per training loop.
#ifndef PEAKNAS_WORKER_DATA_PATCH_SAMPLER_H_
#define PEAKNAS_WORKER_DATA_PATCH_SAMPLER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "worker/data/sidd.h"

namespace peaknas::data {

struct PatchSamplerOptions {
  int batch = 8;                                          // B, patches per batch (>= 1)
  int patch = 64;                                         // P, patch side in pixels (>= 1)
  bool flips = true;                                      // random horizontal and vertical flips
  bool rotations = true;                                  // random rotations by k·90°
  std::uint64_t seed = 0;                                 // names the whole batch sequence
  std::size_t max_resident_bytes = std::size_t{2} << 30;  // decoded pairs kept, 2 GiB
  int refresh_every_batches = 32;                         // working-set swap period (>= 1)
};

struct PatchBatch {
  int batch = 0;
  int patch = 0;
  std::vector<float> noisy;  // batch · 3 · patch · patch, CHW per patch, [0, 1]
  std::vector<float> clean;  // same layout
};

class PatchSampler {
 public:
  // INVALID_ARGUMENT for no pairs or options out of range (naming the field), and
  // "PATH: WxH is smaller than the patch PxP" for the first image smaller than the patch.
  // Nothing is decoded yet.
  static StatusOr<PatchSampler> Create(std::vector<TrainingPair> pairs,
                                       const PatchSamplerOptions& options);

  PatchSampler(PatchSampler&&) noexcept;
  PatchSampler& operator=(PatchSampler&&) noexcept;
  ~PatchSampler();

  // Fills `out` with the next batch (reusing its buffers). Decoding errors of a pair are
  // returned (see LoadTrainingPair); the sampler stays usable but its sequence is then
  // undefined.
  Status Next(PatchBatch* out);

  // Pairs that may be resident at once (all of them when they fit).
  std::size_t working_set_size() const;
  std::size_t num_pairs() const;
  // Bytes of the decoded images resident now (both images of every loaded pair).
  std::size_t resident_bytes() const;

 private:
  struct State;
  explicit PatchSampler(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_PATCH_SAMPLER_H_
