#include "worker/data/patch_sampler.h"

#include <algorithm>
#include <cassert>
#include <optional>

#include "worker/data/random.h"

namespace peaknas::data {

struct PatchSampler::State {
  std::vector<TrainingPair> pairs;
  PatchSamplerOptions options;
  Rng rng;
  // working[i] indexes `pairs`; loaded[j] is pair j's decoded images when resident.
  std::vector<std::size_t> working;
  std::vector<std::size_t> outside;  // pairs not in the working set
  std::vector<std::optional<LoadedPair>> loaded;
  bool all_fit = false;
  std::uint64_t batches = 0;

  State(std::vector<TrainingPair> p, const PatchSamplerOptions& o)
      : pairs(std::move(p)), options(o), rng(o.seed), loaded(pairs.size()) {}

  StatusOr<const LoadedPair*> Get(std::size_t pair_index) {
    std::optional<LoadedPair>& slot = loaded[pair_index];
    if (!slot.has_value()) {
      PEAKNAS_ASSIGN_OR_RETURN(LoadedPair pair, LoadTrainingPair(pairs[pair_index]));
      slot = std::move(pair);
    }
    return &*slot;
  }

  // Swaps one random working-set member for one random outsider; the evicted pair is freed.
  void Refresh() {
    if (outside.empty()) return;
    const std::size_t i = rng.UniformInt(working.size());
    const std::size_t j = rng.UniformInt(outside.size());
    loaded[working[i]].reset();
    std::swap(working[i], outside[j]);
  }
};

PatchSampler::PatchSampler(std::unique_ptr<State> state) : state_(std::move(state)) {}
PatchSampler::PatchSampler(PatchSampler&&) noexcept = default;
PatchSampler& PatchSampler::operator=(PatchSampler&&) noexcept = default;
PatchSampler::~PatchSampler() = default;

StatusOr<PatchSampler> PatchSampler::Create(std::vector<TrainingPair> pairs,
                                            const PatchSamplerOptions& options) {
  if (pairs.empty()) return Status::InvalidArgument("patch sampler: no training pairs");
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("batch", options.batch, 1, 65536));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("patch", options.patch, 1, 16384));
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("refresh_every_batches", options.refresh_every_batches, 1));
  std::size_t total_bytes = 0, largest = 0;
  for (const TrainingPair& pair : pairs) {
    if (pair.width < options.patch || pair.height < options.patch) {
      const std::string p = std::to_string(options.patch);
      return Status::InvalidArgument(pair.noisy_path + ": " + std::to_string(pair.width) + "x" +
                                     std::to_string(pair.height) + " is smaller than the patch " +
                                     p + "x" + p);
    }
    const std::size_t bytes = 2 * 3 * static_cast<std::size_t>(pair.width) * pair.height;
    total_bytes += bytes;
    largest = std::max(largest, bytes);
  }
  auto state = std::make_unique<State>(std::move(pairs), options);
  const std::size_t n = state->pairs.size();
  state->all_fit = total_bytes <= options.max_resident_bytes;
  const std::size_t size =
      state->all_fit ? n : std::clamp<std::size_t>(options.max_resident_bytes / largest, 1, n);
  // A random working set: the first `size` entries of a Fisher–Yates shuffle.
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  if (!state->all_fit) {
    for (std::size_t i = 0; i < size; ++i) {
      std::swap(order[i], order[i + state->rng.UniformInt(n - i)]);
    }
  }
  state->working.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(size));
  state->outside.assign(order.begin() + static_cast<std::ptrdiff_t>(size), order.end());
  return PatchSampler(std::move(state));
}

std::size_t PatchSampler::working_set_size() const { return state_->working.size(); }
std::size_t PatchSampler::num_pairs() const { return state_->pairs.size(); }

std::size_t PatchSampler::resident_bytes() const {
  std::size_t bytes = 0;
  for (const std::optional<LoadedPair>& pair : state_->loaded) {
    if (pair.has_value()) bytes += pair->noisy.rgb.capacity() + pair->clean.rgb.capacity();
  }
  return bytes;
}

Status PatchSampler::Next(PatchBatch* out) {
  State& s = *state_;
  if (s.batches > 0 &&
      s.batches % static_cast<std::uint64_t>(s.options.refresh_every_batches) == 0) {
    s.Refresh();
  }
  ++s.batches;
  const int b_count = s.options.batch;
  const int p = s.options.patch;
  const std::size_t plane = static_cast<std::size_t>(p) * p;
  out->batch = b_count;
  out->patch = p;
  out->noisy.resize(static_cast<std::size_t>(b_count) * 3 * plane);
  out->clean.resize(out->noisy.size());
  constexpr float kScale = 1.0f / 255.0f;
  for (int b = 0; b < b_count; ++b) {
    // Every random draw happens before any decoding, in a fixed order.
    const std::size_t pair_index = s.working[s.rng.UniformInt(s.working.size())];
    const TrainingPair& pair = s.pairs[pair_index];
    const int x0 =
        static_cast<int>(s.rng.UniformInt(static_cast<std::uint64_t>(pair.width - p + 1)));
    const int y0 =
        static_cast<int>(s.rng.UniformInt(static_cast<std::uint64_t>(pair.height - p + 1)));
    const bool flip_h = s.options.flips && s.rng.Bernoulli();
    const bool flip_v = s.options.flips && s.rng.Bernoulli();
    const int rotation = s.options.rotations ? static_cast<int>(s.rng.UniformInt(4)) : 0;
    PEAKNAS_ASSIGN_OR_RETURN(const LoadedPair* images, s.Get(pair_index));
    const int width = images->noisy.width;
    float* noisy = out->noisy.data() + static_cast<std::size_t>(b) * 3 * plane;
    float* clean = out->clean.data() + static_cast<std::size_t>(b) * 3 * plane;
    for (int i = 0; i < p; ++i) {
      for (int j = 0; j < p; ++j) {
        // Output (i, j) reads patch pixel (u, v): rotate by rotation·90°, then flip.
        int u, v;
        switch (rotation) {
          case 1:
            u = j;
            v = p - 1 - i;
            break;
          case 2:
            u = p - 1 - i;
            v = p - 1 - j;
            break;
          case 3:
            u = p - 1 - j;
            v = i;
            break;
          default:
            u = i;
            v = j;
            break;
        }
        if (flip_v) u = p - 1 - u;
        if (flip_h) v = p - 1 - v;
        const std::size_t src = (static_cast<std::size_t>(y0 + u) * width + (x0 + v)) * 3;
        const std::size_t dst = static_cast<std::size_t>(i) * p + j;
        for (int c = 0; c < 3; ++c) {
          noisy[c * plane + dst] = images->noisy.rgb[src + c] * kScale;
          clean[c * plane + dst] = images->clean.rgb[src + c] * kScale;
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace peaknas::data
