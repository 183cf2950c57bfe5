// Measurements of a built network on its device: allocator peak bytes for one inference batch
// and for one steady-state training step, the process- or device-level peak beside them, and
// latency.
//
// "Allocator peak" is what DESIGN.md's cost-model contract compares against: the peak, over
// the pass, of bytes held by live tensor storage, weights, input and optimizer state included.
// On CPU it comes from the counting allocator (counting_allocator.h); on CUDA from the caching
// allocator's peak allocated bytes. Bytes that were live before the measured pass and are not
// part of the pass's model (other tensors of the process) are excluded: the measurement is the
// pass's growth over what was live before it, plus the resident state the model counts
// (weights; for training also gradients and Adam's two moments), taken from the tensors
// themselves.
//
// Thread-safety: one measurement at a time per process (the counters are process-wide).
#ifndef PEAKNAS_WORKER_MEASURE_H_
#define PEAKNAS_WORKER_MEASURE_H_

#include <torch/torch.h>

#include <cstdint>

#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/tiling.h"
#include "worker/trainer.h"
#include "worker/unet.h"

namespace peaknas::worker {

struct PeakMeasurement {
  std::int64_t allocator_peak_bytes = 0;  // the contract's "measured"
  // Process level. On CPU the resident-set high-water mark (VmHWM) during the pass, measured
  // with large blocks mapped (worker/malloc_tuning.h, MappedLargeBlocks) and the high-water
  // mark reset (/proc/self/clear_refs) just before the pass: the framework's code and thread
  // pool, everything else the process holds, and the pass itself, not what earlier stages left
  // in the heap; 0 where the kernel refuses the reset. On CUDA the caching allocator's peak
  // reserved bytes during the pass.
  std::int64_t process_peak_bytes = 0;
};

// The memory format `denoise` runs `arch` in on `device` by default: channels-last on the
// CPU, where oneDNN then convolves each layer's tensors as they are instead of converting them
// to its blocked format and back, unless the network upsamples by transposed convolutions:
// LibTorch runs those on contiguous copies of channels-last tensors and caches oneDNN
// primitives whose memory grows with the window, for a gain of a few percent. Contiguous
// (NCHW) on CUDA. docs/benchmarks.md ("Denoising large images") has the figures and commands.
torch::MemoryFormat InferenceLayout(const search::Architecture& arch, torch::Device device);

// "channels-last" or "contiguous" (the dense layouts; anything else is "contiguous").
const char* LayoutName(torch::MemoryFormat layout);

// The cost model's contract is about contiguous passes. A channels-last pass (weights too,
// SetWeightLayout) holds other copies: a transposed convolution copies its channels-last input
// and weight to contiguous ones, where the contiguous pass's oneDNN reorders are gone. Its
// allocator peak stays within this factor of the contiguous prediction over the whole family
// at any thread count (memory_contract_test.cc; the largest ratio measured is 1.15), and
// `denoise` sizes a channels-last window by it.
inline constexpr double kChannelsLastPeakFactor = 1.2;

// Inference of one batch [tile.batch, 3, tile.size, tile.size] in `layout` under no-grad, in
// eval mode, after one warm-up pass of the same shape (a deployed model's kernels are set up).
PeakMeasurement MeasureInferencePeak(UNet& net, const search::Shape& tile, torch::Device device,
                                     torch::MemoryFormat layout = torch::MemoryFormat::Contiguous);

// One training step at batch and patch `patch` after `warmup` steps (Adam's moments exist from
// the first step on, so the second step is steady state). Random inputs; the trainer's
// weights change.
PeakMeasurement MeasureTrainStepPeak(Trainer& trainer, const search::Shape& patch,
                                     torch::Device device, int warmup = 2);

struct LatencyMeasurement {
  double ms_per_tile = 0;       // median of `runs` timed forward passes of one batch
  double ms_per_megapixel = 0;  // ms_per_tile / megapixels in the batch
  int runs = 0;
};

// Median latency of inference at `tile` in `layout` after `warmup` untimed passes
// (synchronizing with the device after each pass).
LatencyMeasurement MeasureLatency(UNet& net, const search::Shape& tile, torch::Device device,
                                  int warmup = 3, int runs = 10,
                                  torch::MemoryFormat layout = torch::MemoryFormat::Contiguous);

// A tiled pass over a whole image (search::PlanTiles) timed without running it whole: for each
// distinct window shape, one timed pass of a random window of that shape times the number of
// windows of that shape, after one untimed pass when there are several (the kernels for the
// shape are set up once in a real pass; a shape run once pays it, as it does here). Exact up to
// the variation between passes of the same shape, since every window of a shape does the same
// work. Under no-grad, in eval mode.
struct TiledPassMeasurement {
  double seconds = 0;  // the whole pass, extrapolated
  int shapes_timed = 0;
};
TiledPassMeasurement MeasureTiledPass(UNet& net, const search::TilePlan& plan, torch::Device device,
                                      torch::MemoryFormat layout = torch::MemoryFormat::Contiguous);

// The cost model's device profile for `device` in this process: for the CPU, the default CPU
// profile with its convolution rules set to this process's intra-op thread count (LibTorch
// picks convolution kernels by it); for CUDA, the profile named like the device's kind when
// search/device_profile.h has one, else the first CUDA profile.
search::DeviceProfile DeviceProfileFor(torch::Device device);

// Bytes of the tensors' storage (numel × element size), summed.
std::int64_t TensorBytes(const std::vector<torch::Tensor>& tensors);

// The resident-set high-water mark of this process (VmHWM), bytes; 0 where unknown.
std::int64_t ProcessPeakRssBytes();

// Resets VmHWM to the current resident set (Linux >= 4.0, "5" to /proc/self/clear_refs);
// false where the kernel refuses it.
bool ResetProcessPeakRss();

// Memory a trial can use on `device`: physical RAM for the CPU, the GPU's total memory for a
// CUDA device (0 when this build has no CUDA). What the worker registers as memory_bytes.
std::int64_t DeviceMemoryBytes(torch::Device device);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_MEASURE_H_
