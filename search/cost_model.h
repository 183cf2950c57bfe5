// The analytical cost model (DESIGN.md, "Cost model"): what an architecture costs, computed
// from its description alone, without running anything.
//
// THE CONTRACT. InferencePeakBytes and TrainPeakBytes must be an upper bound on the peak bytes
// of live tensor storage in the framework's allocator over the whole pass (weights, input and
// optimizer state included), and a tight one:
//     measured <= predicted <= 1.10 * measured   (or predicted - measured <= 1 MiB)
// for every architecture in the space. They are derived by a liveness sweep over the exact op
// schedule of DESIGN.md: each op allocates its output (unless in place) and its workspace (from
// the device profile's table), and a tensor is released as soon as it is dead - after its last
// use in inference; in training, after the backward of the first op that saved it for autograd.
//
// Inference: batch B, square tile T (T a multiple of 2^(L-1)), no autograd.
// Training step: batch B, square patch P; forward, mean L1 loss, backward, one Adam step, with
// gradients and Adam's two moments kept between steps (so 4x the weights are always resident),
// plus the input and target batches.
//
// The estimate is cheap: InferencePeakBytes allocates nothing and walks the schedule once,
// visiting each run of identical blocks once, so the search can afford to cost every candidate
// it considers (bench/cost_model_bench).
//
// Thread-safety: pure functions of their arguments.
#ifndef PEAKNAS_SEARCH_COST_MODEL_H_
#define PEAKNAS_SEARCH_COST_MODEL_H_

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "search/architecture.h"
#include "search/device_profile.h"

namespace peaknas::search {

// Batch and square spatial size (the inference tile or the training patch).
struct Shape {
  int batch = 1;
  int size = 256;
};

// Largest tile or patch side and largest batch the model considers.
inline constexpr int kMaxSide = 16384;
inline constexpr int kMaxBatch = 4096;

// OK, or INVALID_ARGUMENT naming `field_prefix`'s batch or size and the allowed values, e.g.
// "tile: 100 is not a multiple of 8 (2^(levels-1) for 4 levels) in [8, 16384]".
Status ValidateShape(const Architecture& arch, const Shape& shape, std::string_view batch_field,
                     std::string_view size_field);

enum class Stage : std::uint8_t {
  kStem,
  kEncoder,
  kDownsample,
  kUpsample,
  kFuse,
  kDecoder,
  kHead,
  kLoss,
  kOptimizer
};
enum class Phase : std::uint8_t { kForward, kBackward, kOptimizer };
std::string_view Name(Stage stage);  // "stem", "encoder", ...
std::string_view Name(Phase phase);  // "forward", "backward", "optimizer"

// Where a peak happens: the op (kind, stage, pyramid level, position in the forward schedule)
// and the phase of the pass.
struct PeakLocation {
  OpKind op = OpKind::kConv3x3;
  Stage stage = Stage::kStem;
  int level = 0;
  Phase phase = Phase::kForward;
  int op_index = 0;
};

// What the bytes at the peak are. Parts add up to the peak exactly.
struct MemoryBreakdown {
  std::int64_t weights = 0;          // parameters
  std::int64_t gradients = 0;        // parameter gradients (training)
  std::int64_t optimizer_state = 0;  // Adam's two moments (training)
  std::int64_t activations = 0;      // input, target, live activations and their gradients
  std::int64_t workspace = 0;        // framework buffers beside the op at the peak
  std::int64_t Total() const {
    return weights + gradients + optimizer_state + activations + workspace;
  }
};

struct PeakEstimate {
  std::int64_t bytes = 0;
  PeakLocation location;
  MemoryBreakdown breakdown;
};

// Parameters (weights and biases) of every conv.
std::int64_t Parameters(const Architecture& arch);

// Work for one forward pass at `shape`: multiply-accumulates, activations in Dollár et al.'s
// sense (elements of every conv output), bytes read and written by every op (the roofline's
// denominator, weights read once per op), and the number of ops.
struct WorkCounts {
  std::int64_t macs = 0;
  std::int64_t activations = 0;
  std::int64_t memory_traffic_bytes = 0;
  int ops = 0;
};
WorkCounts CountWork(const Architecture& arch, const Shape& shape, DType dtype);

// Peak bytes of one inference pass. Preconditions: Validate(arch) and ValidateShape hold.
std::int64_t InferencePeakBytes(const Architecture& arch, const Shape& tile, DType dtype,
                                const DeviceProfile& device);
// The same figure with its location and breakdown.
PeakEstimate EstimateInferencePeak(const Architecture& arch, const Shape& tile, DType dtype,
                                   const DeviceProfile& device);

// Peak bytes of one steady-state training step (see the contract above).
std::int64_t TrainPeakBytes(const Architecture& arch, const Shape& patch, DType dtype,
                            const DeviceProfile& device);
PeakEstimate EstimateTrainPeak(const Architecture& arch, const Shape& patch, DType dtype,
                               const DeviceProfile& device);

// Roofline latency of one inference pass: per op, max(2*MACs / peak FLOP/s, traffic /
// bandwidth) + per-op overhead, summed over the schedule.
double InferenceLatencySeconds(const Architecture& arch, const Shape& tile, DType dtype,
                               const DeviceProfile& device);
// The same for `batch` images of height x width (each a multiple of SpatialMultiple(arch)): the
// windows at a tiled image's edges are not square (search/tiling.h).
double InferenceLatencySeconds(const Architecture& arch, int batch, int height, int width,
                               DType dtype, const DeviceProfile& device);

// The largest tile (a multiple of 2^(L-1), at most kMaxSide) whose inference peak at `batch`
// fits `budget_bytes`, or 0 when not even the smallest tile fits.
int MaxTile(const Architecture& arch, std::int64_t budget_bytes, int batch, DType dtype,
            const DeviceProfile& device);
// The largest batch (at most kMaxBatch) whose inference peak at `tile` fits, or 0.
int MaxInferenceBatch(const Architecture& arch, std::int64_t budget_bytes, int tile, DType dtype,
                      const DeviceProfile& device);
// The largest training batch (at most kMaxBatch) whose step peak at `patch` fits, or 0.
int MaxTrainBatch(const Architecture& arch, std::int64_t budget_bytes, int patch, DType dtype,
                  const DeviceProfile& device);

// The side of the frontier's 100-megapixel image (search/tiling.h, PlanHundredMegapixels).
inline constexpr int kHundredMegapixelSide = 10000;

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_COST_MODEL_H_
