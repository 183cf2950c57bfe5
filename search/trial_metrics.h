// TrialMetrics: what one trained and evaluated trial measured, the numbers a worker reports
// (peaknas.v1.TrialMetrics on the wire, converted by proto::ToProto) and the frontier is built
// from. A plain value; the worker fills it (worker/trial.h's TrialResult extends it).
#ifndef PEAKNAS_SEARCH_TRIAL_METRICS_H_
#define PEAKNAS_SEARCH_TRIAL_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "search/device_profile.h"

namespace peaknas::search {

// Image quality over validation blocks (the SIDD protocol: means of per-block figures).
struct QualityScores {
  double psnr = 0.0;  // dB
  double ssim = 0.0;  // [0, 1]; 0 when not computed
  std::size_t blocks = 0;
};

struct TrialMetrics {
  std::string device;          // "cpu", "cuda:0"
  std::string device_profile;  // the cost model's profile used for the predictions
  DType dtype = DType::kFp32;  // the dtype the trial ran (and the cost model was asked) at
  int intra_op_threads = 0;    // CPU convolution paths depend on it
  std::string framework;       // "libtorch 1.13.0": device calibrations are kept per version

  // Training.
  int steps = 0;
  double initial_loss = 0;  // mean L1 loss of the first reported steps
  double final_loss = 0;    // mean of the last min(steps, 20) steps
  double train_seconds = 0;
  double train_steps_per_s = 0;

  // Evaluation.
  QualityScores scores;  // of the denoised output
  QualityScores noisy;   // of the noisy input, scored as an output (the baseline)
  double eval_seconds = 0;

  // Size and work at the inference tile.
  std::int64_t params = 0;
  std::int64_t macs = 0;

  // Peak bytes: predicted by the cost model, measured in the allocator, and what the device or
  // the OS sees for the pass (worker/measure.h: on CPU the process's resident high-water mark in
  // steady state, less the trial's input data; on CUDA the caching allocator's reserved peak).
  // The process figures are what device calibrations are fitted on (search/calibration.h).
  std::int64_t predicted_inference_peak_bytes = 0;
  std::int64_t measured_inference_peak_bytes = 0;
  std::int64_t process_inference_peak_bytes = 0;
  std::int64_t predicted_train_peak_bytes = 0;
  std::int64_t measured_train_peak_bytes = 0;
  std::int64_t process_train_peak_bytes = 0;
  // The whole trial process's resident peak over its life (CPU): model, data and framework. Set
  // by the process that ran the trial in a child (worker/trial_process.h); 0 when not measured.
  std::int64_t process_peak_bytes = 0;

  // Latency of one inference batch at the tile.
  double latency_ms_per_tile = 0;
  double latency_ms_per_mp = 0;
  double predicted_latency_ms_per_tile = 0;  // roofline, search::InferenceLatencySeconds

  // Seconds for a 100-megapixel image at latency_ms_per_mp.
  double latency_100mp_s() const { return latency_ms_per_mp * 100.0 / 1000.0; }

  // The frontier's latency objective as timed (search/tiling.h, PlanHundredMegapixelsAt): the
  // 10000 x 10000 pass at `tiled_100mp_tile`, extrapolated exactly from one timed window of each
  // distinct shape; the roofline's seconds for the same pass beside it. 0 where not timed.
  int tiled_100mp_tile = 0;
  int tiled_100mp_overlap = 0;
  std::int64_t tiled_100mp_windows = 0;
  double tiled_100mp_s = 0;
  double predicted_tiled_100mp_s = 0;
};

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_TRIAL_METRICS_H_
