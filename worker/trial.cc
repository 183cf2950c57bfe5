#include "worker/trial.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "search/device_profile.h"
#include "search/tiling.h"
#include "worker/data/patch_sampler.h"
#include "worker/data/sidd.h"
#include "worker/evaluate.h"
#include "worker/export.h"
#include "worker/measure.h"
#include "worker/unet.h"

namespace peaknas::worker {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string FirstLine(const std::string& message) {
  const std::size_t end = message.find('\n');
  return end == std::string::npos ? message : message.substr(0, end);
}

std::string Side(int side) { return std::to_string(side) + "x" + std::to_string(side); }

std::string DeviceName(torch::Device device) {
  return device.is_cpu() ? std::string("cpu")
                         : "cuda:" + std::to_string(device.has_index() ? device.index() : 0);
}

// Bytes of input data the trial process holds: the validation blocks and the decoded training
// images resident in the sampler.
std::int64_t DataBytes(const data::SiddDataset& dataset, const data::PatchSampler& sampler) {
  return static_cast<std::int64_t>(dataset.val_noisy.data.capacity() +
                                   dataset.val_clean.data.capacity() + sampler.resident_bytes());
}

// A pass's process peak without the trial's input data, which a process that only runs the
// model does not hold; on CUDA the data stays in host memory, outside the measured figure.
// 0 (not measured) stays 0.
std::int64_t WithoutData(const PeakMeasurement& peak, torch::Device device,
                         std::int64_t data_bytes) {
  if (peak.process_peak_bytes <= 0 || !device.is_cpu()) return peak.process_peak_bytes;
  return std::max<std::int64_t>(peak.process_peak_bytes - data_bytes, 0);
}

// The validation blocks must go through the net whole: their side must be a multiple of
// 2^(levels-1).
Status CheckBlocks(const TrialSpec& spec, const data::SiddDataset& dataset) {
  const int multiple = search::SpatialMultiple(spec.arch);
  const int side = dataset.val_noisy.block_size;
  if (dataset.val_noisy.num_blocks() == 0) {
    return Status::InvalidArgument("data \"" + spec.data_dir + "\": no validation blocks");
  }
  if (side % multiple != 0) {
    return Status::InvalidArgument(
        "data \"" + spec.data_dir + "\": validation blocks of " + Side(side) + " cannot be " +
        "evaluated by a " + std::to_string(spec.arch.levels) + "-level U-Net (the side must " +
        "be a multiple of " + std::to_string(multiple) + ")");
  }
  return Status::Ok();
}

StatusOr<TrialResult> RunChecked(const TrialSpec& spec, const TrialCallbacks& callbacks) {
  // Entering a stage: CANCELLED when a stop was requested, else reported.
  const auto stage = [&](std::string_view name, const std::string& detail) -> Status {
    if (callbacks.stop.stop_requested()) {
      return Status(StatusCode::kCancelled, "trial stopped before " + std::string(name));
    }
    if (callbacks.stage) callbacks.stage(name, detail);
    return Status::Ok();
  };
  const torch::Device device = spec.device;
  TrialResult r;
  r.arch = spec.arch;
  r.device = DeviceName(device);
  r.dtype = spec.precision;
  r.intra_op_threads = at::get_num_threads();
  r.framework = "libtorch " TORCH_VERSION;
  r.steps = spec.steps;

  // 1. Data: everything that can be wrong with the files fails here, before any work.
  PEAKNAS_ASSIGN_OR_RETURN(const data::SiddDataset dataset, data::OpenSiddDataset(spec.data_dir));
  PEAKNAS_RETURN_IF_ERROR(CheckBlocks(spec, dataset));
  data::PatchSamplerOptions sampling;
  sampling.batch = spec.train_shape.batch;
  sampling.patch = spec.train_shape.size;
  sampling.seed = spec.seed;
  PEAKNAS_ASSIGN_OR_RETURN(data::PatchSampler sampler,
                           data::PatchSampler::Create(dataset.train, sampling));
  // Reported once the data is known good, so that a bad dataset is a one-line error.
  PEAKNAS_RETURN_IF_ERROR(
      stage("data", spec.data_dir + ": " + std::to_string(dataset.train.size()) +
                        " training pairs, " + std::to_string(dataset.val_noisy.num_blocks()) +
                        " validation blocks of " + Side(dataset.val_noisy.block_size)));

  torch::manual_seed(spec.seed);
  UNet net(spec.arch);
  // A parent's weights go in before any measurement; a parent that cannot be read, or that
  // the architecture cannot inherit from, fails here, before any work.
  if (!spec.parent_model.empty()) {
    StatusOr<LoadedModel> parent = LoadModel(spec.parent_model);
    if (!parent.ok()) {
      return Status(parent.status().code(), "parent: " + parent.status().message());
    }
    PEAKNAS_RETURN_IF_ERROR(
        InheritWeights(*parent, spec.importance, net, "parent \"" + spec.parent_model + "\""));
    PEAKNAS_RETURN_IF_ERROR(stage("inherit", spec.parent_model + ": top channels by " +
                                                 std::string(Name(spec.importance)) + " of " +
                                                 search::ToCanonicalJson(parent->arch)));
    r.parent_arch = parent->arch;
  }  // the parent's tensors are freed here: they are part of no measured peak
  net->to(device);

  // The cost model's view, on the profile of this device.
  const search::DeviceProfile profile = DeviceProfileFor(device);
  r.device_profile = profile.name;
  r.params = search::Parameters(spec.arch);
  std::int64_t built = 0;
  for (const torch::Tensor& p : net->parameters()) built += p.numel();
  assert(built == r.params && "UNet and the cost model disagree on the parameter count");
  (void)built;
  r.macs = search::CountWork(spec.arch, spec.tile, r.dtype).macs;
  r.predicted_inference_peak_bytes =
      search::InferencePeakBytes(spec.arch, spec.tile, r.dtype, profile);
  r.predicted_train_peak_bytes =
      search::TrainPeakBytes(spec.arch, spec.train_shape, r.dtype, profile);
  r.predicted_latency_ms_per_tile =
      1e3 * search::InferenceLatencySeconds(spec.arch, spec.tile, r.dtype, profile);

  // 2. Inference peak, on the fresh net.
  PEAKNAS_RETURN_IF_ERROR(stage("measure-inference", "batch " + std::to_string(spec.tile.batch) +
                                                         ", tile " + Side(spec.tile.size) + ", " +
                                                         std::string(Name(spec.precision))));
  {
    AutocastGuard autocast(spec.precision, device);
    const PeakMeasurement peak = MeasureInferencePeak(net, spec.tile, device);
    r.measured_inference_peak_bytes = peak.allocator_peak_bytes;
    r.process_inference_peak_bytes = WithoutData(peak, device, DataBytes(dataset, sampler));
  }

  TrainOptions train;
  train.steps = spec.steps;
  train.learning_rate = spec.learning_rate;
  train.min_learning_rate = std::min(train.min_learning_rate, spec.learning_rate);
  train.precision = spec.precision;
  train.progress_every = spec.progress_every;
  PEAKNAS_RETURN_IF_ERROR(ValidateTrainOptions(train));

  // 3. Training-step peak, in a steady state, on the initial weights: a trainer of its own,
  // whose steps are then undone. Measured before the training loop, whose heap (freed memory
  // kept for speed) the measured step would otherwise reuse, which blurs the process figure.
  PEAKNAS_RETURN_IF_ERROR(stage("measure-train", "batch " + std::to_string(spec.train_shape.batch) +
                                                     ", patch " + Side(spec.train_shape.size)));
  {
    std::vector<torch::Tensor> initial;
    {
      torch::NoGradGuard no_grad;
      for (const torch::Tensor& p : net->parameters()) initial.push_back(p.detach().clone());
    }
    Trainer probe(net, train, device);
    const PeakMeasurement peak = MeasureTrainStepPeak(probe, spec.train_shape, device);
    r.measured_train_peak_bytes = peak.allocator_peak_bytes;
    // The saved weights are resident too, but no part of a training process.
    r.process_train_peak_bytes =
        WithoutData(peak, device, DataBytes(dataset, sampler) + TensorBytes(initial));
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> params = net->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
      params[i].copy_(initial[i]);
      params[i].mutable_grad() = torch::Tensor();
    }
  }

  if (callbacks.data_bytes) callbacks.data_bytes(DataBytes(dataset, sampler));
  std::vector<char> held;  // spec.fault_hold_bytes, resident (each page written)
  if (spec.fault_hold_bytes > 0) held.assign(static_cast<std::size_t>(spec.fault_hold_bytes), 1);

  // 4. Training.
  PEAKNAS_RETURN_IF_ERROR(stage("train", std::to_string(spec.steps) + " steps, batch " +
                                             std::to_string(spec.train_shape.batch) + ", patch " +
                                             Side(spec.train_shape.size) + ", " +
                                             std::to_string(dataset.train.size()) +
                                             " training pairs"));
  Trainer trainer(net, train, device);
  bool first_report = true;
  const auto progress = [&](const TrainProgress& p) {
    if (first_report) {
      r.initial_loss = p.loss;
      first_report = false;
    }
    if (callbacks.train) callbacks.train(p);
  };
  PEAKNAS_ASSIGN_OR_RETURN(const TrainResult trained,
                           trainer.Run(sampler, progress, callbacks.stop));
  r.final_loss = trained.final_loss;
  r.train_seconds = trained.seconds;
  r.train_steps_per_s = trained.steps_per_second;

  // 5. Evaluation.
  PEAKNAS_RETURN_IF_ERROR(stage("evaluate", std::to_string(dataset.val_noisy.num_blocks()) +
                                                " validation blocks of " +
                                                Side(dataset.val_noisy.block_size)));
  const auto eval_start = Clock::now();
  r.scores =
      Evaluate(net, dataset.val_noisy, dataset.val_clean, device, spec.eval_batch, spec.precision);
  r.eval_seconds = SecondsSince(eval_start);
  r.noisy = NoisyBaseline(dataset.val_noisy, dataset.val_clean);

  // 6. Export of the trained weights.
  if (!spec.export_path.empty()) {
    PEAKNAS_RETURN_IF_ERROR(stage("export", spec.export_path));
    PEAKNAS_RETURN_IF_ERROR(ExportTorchScript(net, spec.export_path));
    r.export_path = spec.export_path;
  }

  // 7. Timing, last: the latency at (batch, tile), then the 100-MP pass, both in the layout
  // `denoise` runs the network in (InferenceLayout). The oneDNN kernels a channels-last pass
  // sets up stay resident, and the 100-MP pass's largest window may hold more than any earlier
  // stage, so the trial process's peak (the calibration's "trial" figure, and the process peaks
  // of the passes above) is taken before (TrialCallbacks::resident_peak).
  if (callbacks.resident_peak && device.is_cpu()) callbacks.resident_peak(ProcessPeakRssBytes());
  const torch::MemoryFormat layout = InferenceLayout(spec.arch, device);
  SetWeightLayout(net, layout);
  PEAKNAS_RETURN_IF_ERROR(stage("measure-latency", "batch " + std::to_string(spec.tile.batch) +
                                                       ", tile " + Side(spec.tile.size) + ", " +
                                                       LayoutName(layout)));
  {
    AutocastGuard autocast(spec.precision, device);
    const LatencyMeasurement latency =
        MeasureLatency(net, spec.tile, device, spec.latency_warmup, spec.latency_runs, layout);
    r.latency_ms_per_tile = latency.ms_per_tile;
    r.latency_ms_per_mp = latency.ms_per_megapixel;
  }
  if (spec.latency_tile > 0) {
    const search::HundredMegapixelPass pass =
        search::PlanHundredMegapixelsAt(spec.arch, spec.latency_tile, r.dtype, profile);
    PEAKNAS_RETURN_IF_ERROR(
        stage("measure-100mp", std::to_string(pass.plan.WindowCount()) + " windows of tile " +
                                   Side(pass.plan.tile) + " + overlap " +
                                   std::to_string(pass.plan.overlap) + ", " +
                                   std::to_string(pass.plan.windows.size()) + " shapes timed"));
    AutocastGuard autocast(spec.precision, device);
    const TiledPassMeasurement measured = MeasureTiledPass(net, pass.plan, device, layout);
    r.tiled_100mp_tile = pass.plan.tile;
    r.tiled_100mp_overlap = pass.plan.overlap;
    r.tiled_100mp_windows = pass.plan.WindowCount();
    r.tiled_100mp_s = measured.seconds;
    r.predicted_tiled_100mp_s = pass.seconds;
  }

  return r;
}

}  // namespace

StatusOr<torch::Device> ParseDevice(std::string_view text, std::string_view field) {
  const std::string f(field);
  const std::string t(text);
  if (t == "cpu") return torch::Device(torch::kCPU);
  int index = -1;
  if (t == "cuda") {
    index = 0;
  } else if (t.rfind("cuda:", 0) == 0 && t.size() > 5 && t.size() <= 8 &&
             t.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoi(t.substr(5));
  } else {
    return Status::InvalidArgument(f + ": \"" + t + "\" is not one of cpu, cuda, cuda:N");
  }
  if (!torch::cuda::is_available()) {
    return Status::InvalidArgument(f + ": \"" + t +
                                   "\": CUDA is not available (this LibTorch has no CUDA "
                                   "support or the machine has no GPU); use cpu");
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    return Status::InvalidArgument(f + ": \"" + t + "\": this machine has " +
                                   std::to_string(count) +
                                   " CUDA device(s), cuda:0 to cuda:" + std::to_string(count - 1));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

Status ValidateTrialSpec(const TrialSpec& spec) {
  PEAKNAS_RETURN_IF_ERROR(search::Validate(spec.arch));
  PEAKNAS_RETURN_IF_ERROR(search::ValidateShape(spec.arch, spec.tile, "batch", "tile"));
  PEAKNAS_RETURN_IF_ERROR(
      search::ValidateShape(spec.arch, spec.train_shape, "train-batch", "patch"));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("steps", spec.steps, 1, 10'000'000));
  if (!(spec.learning_rate > 0 && spec.learning_rate <= 1)) {
    return Status::InvalidArgument("lr: " + std::to_string(spec.learning_rate) +
                                   " is not in (0, 1]");
  }
  PEAKNAS_RETURN_IF_ERROR(CheckPrecision(spec.precision, spec.device));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("eval-batch", spec.eval_batch, 1, search::kMaxBatch));
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("progress-every", spec.progress_every, 1));
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("latency-warmup", spec.latency_warmup, 0));
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("latency-runs", spec.latency_runs, 1));
  if (spec.latency_tile != 0) {
    const int m = search::SpatialMultiple(spec.arch);
    const int window = spec.latency_tile + 2 * search::SeamFreeOverlap(spec.arch);
    if (spec.latency_tile < m || spec.latency_tile % m != 0 || window > search::kMaxSide) {
      return Status::InvalidArgument(
          "latency-tile: " + std::to_string(spec.latency_tile) + " is not 0 or a multiple of " +
          std::to_string(m) + " (2^(levels-1)) whose window, with the overlap of " +
          std::to_string(search::SeamFreeOverlap(spec.arch)) + " on each side, is at most " +
          std::to_string(search::kMaxSide));
    }
  }
  if (spec.data_dir.empty()) return Status::InvalidArgument("data: empty; expected a directory");
  if (!spec.export_path.empty()) {
    const fs::path target(spec.export_path);
    const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) {
      return Status::InvalidArgument("export \"" + spec.export_path + "\": directory " +
                                     parent.string() + " does not exist");
    }
    if (fs::is_directory(target, ec)) {
      return Status::InvalidArgument("export \"" + spec.export_path +
                                     "\": is a directory; expected a file name");
    }
  }
  return Status::Ok();
}

StatusOr<TrialResult> RunTrial(const TrialSpec& spec, const TrialCallbacks& callbacks) {
  PEAKNAS_RETURN_IF_ERROR(ValidateTrialSpec(spec));
  // LibTorch's exceptions stop here (STYLE.md, "Errors are values").
  try {
    return RunChecked(spec, callbacks);
  } catch (const c10::OutOfMemoryError& e) {
    return Status::ResourceExhausted("out of memory on " + DeviceName(spec.device) + ": " +
                                     FirstLine(e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    const std::string message = FirstLine(e.what_without_backtrace());
    if (message.find("out of memory") != std::string::npos ||
        message.find("DefaultCPUAllocator: can't allocate") != std::string::npos) {
      return Status::ResourceExhausted("out of memory on " + DeviceName(spec.device) + ": " +
                                       message);
    }
    return Status::Internal("LibTorch error: " + message);
  }
}

}  // namespace peaknas::worker
