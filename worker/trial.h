// One trial of the search, run locally: build the U-Net of an architecture, measure its
// inference peak and latency, train it briefly, evaluate it in the SIDD protocol, optionally
// export it as TorchScript, and measure a training step's peak — every figure beside the cost
// model's prediction for it. `peaknas-worker once` is this function plus flag parsing and a
// JSON report; the leasing worker runs the same function for each trial it is assigned.
//
// Order of work, and why:
//   1. the dataset is opened and the patch sampler created, and a parent model (when the trial
//      inherits) loaded and checked against the architecture (bad input fails before work);
//   2. on the freshly initialized (or inherited, worker/inherit.h) net: the inference peak at
//      (batch, tile) (it does not depend on the weights' values);
//   3. the training-step peak at (train batch, patch), in a trainer of its own after warm-up
//      steps (weights, gradients and Adam's moments all resident: the steady state the model
//      describes); its steps use random batches, and the initial weights are put back after
//      it, so the training below starts where it would have without it;
//   4. training (Trainer::Run), progress reported through the callback;
//   5. evaluation of every validation block, and the noisy-input baseline;
//   6. the TorchScript export of the trained weights, when asked for;
//   7. timing, in the layout `denoise` runs the network in (InferenceLayout): the median
//      latency at (batch, tile), and the 100-MP pass when asked for. Last, because a
//      channels-last pass leaves oneDNN kernels resident that would blur the process peaks
//      above; the trial's own peak is taken before it (TrialCallbacks::resident_peak).
// Measurements run at the trial's precision (autocast). The cost model is asked at the
// matching dtype; it describes pure fp32/fp16/bf16 tensors, so its contract (measured <=
// predicted) holds for fp32, while under autocast (fp32 weights, half-precision activations)
// the ratio is reported but not guaranteed.
//
// Process peaks (worker/measure.h): on CPU the resident-set high-water mark during each
// measured pass alone, large blocks mapped, less the input data (and, for the training step,
// the saved initial weights) the trial process holds; on CUDA the caching allocator's peak
// reserved bytes during the pass. Both passes are measured before the training loop, whose
// kept heap would blur them.
//
// Errors are values: invalid specs are INVALID_ARGUMENT naming the field (with the names of
// `peaknas-worker once`'s flags), dataset problems come from data::OpenSiddDataset and
// data::PatchSampler (naming the path), a diverging loss is INTERNAL, a requested stop is
// CANCELLED (TrialCallbacks::stop), and LibTorch's
// exceptions stop here — RESOURCE_EXHAUSTED for out-of-memory (a search signal, not a crash),
// INTERNAL for any other c10::Error.
//
// Thread-safety: one trial per process at a time (the allocator counters, the global seed and
// the autocast state are process- or thread-wide).
#ifndef PEAKNAS_WORKER_TRIAL_H_
#define PEAKNAS_WORKER_TRIAL_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "base/status.h"
#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/job_defaults.h"
#include "search/trial_metrics.h"
#include "worker/data/metrics.h"
#include "worker/inherit.h"
#include "worker/precision.h"
#include "worker/trainer.h"

namespace peaknas::worker {

// "cpu", "cuda" (device 0) or "cuda:N". INVALID_ARGUMENT naming `field` for anything else, and
// for a CUDA device when this LibTorch has no CUDA or the machine no such GPU.
StatusOr<torch::Device> ParseDevice(std::string_view text, std::string_view field = "device");

struct TrialSpec {
  search::Architecture arch;                          // required; validated
  std::string data_dir;                               // a SIDD-layout directory (data/sidd.h)
  search::Shape train_shape{.batch = 8, .size = 64};  // training batch and patch side
  search::Shape tile{.batch = 1, .size = 256};        // inference batch and tile side
  int steps = search::defaults::kSteps;               // training steps, [1, 10000000]
  double learning_rate =
      search::defaults::kLearningRate;             // initial; cosine decay to 1e-5 (trainer.h)
  search::DType precision = search::DType::kFp32;  // autocast for training, evaluation, measures
  int eval_batch = 8;                              // validation blocks per forward pass, >= 1
  torch::Device device = torch::Device(torch::kCPU);
  std::uint64_t seed = 0;   // weights' init, patch sampling, measures
  std::string export_path;  // TorchScript file; empty: no export
  // A trained parent's TorchScript file (ExportTorchScript): the net starts from its weights,
  // the top channels of each group by `importance` (worker/inherit.h). Empty: from scratch.
  std::string parent_model;
  Importance importance = Importance::kL1;
  int progress_every = 10;  // steps between progress reports, >= 1
  int latency_warmup = 3;   // untimed passes before timing, >= 0
  int latency_runs = 10;    // timed passes (median), >= 1
  // The frontier's 100-MP latency (search::PlanHundredMegapixelsAt): the output tile of the
  // seam-free 10000 x 10000 pass timed last, after the export (MeasureTiledPass). 0: not timed.
  // Both latencies are timed in the layout `denoise` runs the network in (InferenceLayout).
  int latency_tile = 0;
  // Fault injection for tests of packing: bytes allocated and touched after the measurements
  // and held to the end, so the trial process goes over its reservation. 0: none.
  std::int64_t fault_hold_bytes = 0;
};

// Checks the fields that need no files: architecture, shapes, steps, learning rate, precision
// on the device, batch sizes and counts, and that export_path's directory exists.
// INVALID_ARGUMENT naming the flag ("patch: 20 is not a multiple of 16 ...").
Status ValidateTrialSpec(const TrialSpec& spec);

// What RunTrial measured (search::TrialMetrics, reported as is) and what it made.
struct TrialResult : search::TrialMetrics {
  search::Architecture arch;
  std::optional<std::string> export_path;  // set when exported
  // Set when the net inherited its weights: the parent's architecture.
  std::optional<search::Architecture> parent_arch;
};

// Called when the trial enters a stage ("data" once the dataset has been opened and checked,
// "inherit" when the net takes a parent's weights, then "measure-inference", "measure-train",
// "train", "evaluate", "export") with a one-line detail, and with training progress.
// Nothing is reported before the inputs are known good, so an error in them is all a caller
// prints. A stop requested through `stop` ends the trial with CANCELLED at the next stage or
// training step (a cancelled job, a lost lease).
struct TrialCallbacks {
  std::function<void(std::string_view stage, std::string_view detail)> stage;
  // After the measurements: the bytes of input data the process holds (the validation blocks,
  // the sampler's decoded images), which the process peaks it reports leave out.
  std::function<void(std::int64_t bytes)> data_bytes;
  // On CPU, before the timing (latency and the 100-MP pass): the process's resident-set
  // high-water mark (VmHWM) so far, the trial's peak without them.
  std::function<void(std::int64_t bytes)> resident_peak;
  ProgressCallback train;
  std::stop_token stop;
};

// Runs the trial (see the top of this file). Seeds LibTorch's generators with spec.seed.
StatusOr<TrialResult> RunTrial(const TrialSpec& spec, const TrialCallbacks& callbacks = {});

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_TRIAL_H_
