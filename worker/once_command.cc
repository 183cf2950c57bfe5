#include "worker/once_command.h"

#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/app.h"
#include "proto/convert.h"
#include "proto/json.h"
#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "worker/precision.h"
#include "worker/report.h"
#include "worker/trial.h"

namespace peaknas::worker {
namespace {

using Json = nlohmann::json;

StatusOr<TrialSpec> MakeSpec(const OnceOptions& o) {
  TrialSpec spec;
  PEAKNAS_ASSIGN_OR_RETURN(spec.arch, search::LoadArchitectureArgument(o.arch));
  spec.data_dir = o.data;
  spec.train_shape = search::Shape{.batch = o.train_batch, .size = o.patch};
  spec.tile = search::Shape{.batch = o.batch, .size = o.tile};
  spec.steps = o.steps;
  spec.learning_rate = o.lr;
  PEAKNAS_ASSIGN_OR_RETURN(spec.precision, ParsePrecision(o.precision));
  spec.eval_batch = o.eval_batch;
  PEAKNAS_ASSIGN_OR_RETURN(spec.device, ParseDevice(o.device, "device"));
  spec.seed = o.seed;
  spec.export_path = o.export_path;
  spec.parent_model = o.parent;
  PEAKNAS_ASSIGN_OR_RETURN(spec.importance, ParseImportance(o.importance, "importance"));
  spec.progress_every = o.progress_every;
  spec.latency_runs = o.latency_runs;
  spec.latency_tile = o.latency_tile;
  spec.fault_hold_bytes = o.fault_hold_bytes;
  PEAKNAS_RETURN_IF_ERROR(ValidateTrialSpec(spec));
  std::error_code ec;
  if (!std::filesystem::is_directory(o.data, ec)) {
    return Status::NotFound("data \"" + o.data + "\": no such directory");
  }
  return spec;
}

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

constexpr const char* kDescription =
    "Run one trial locally: build the U-Net, measure its inference peak memory and latency, "
    "train it, evaluate it on the validation blocks (SIDD protocol), optionally export it as "
    "TorchScript, measure a training step's peak memory, and print one JSON object with every "
    "figure beside the cost model's prediction.";

constexpr const char* kFooter =
    "Progress (stages, and a line every --progress-every steps: loss, learning rate, steps/s)\n"
    "goes to stderr; stdout gets exactly one JSON object on one line, with the keys:\n"
    "  arch, arch_hash, device, device_profile, precision, dtype, threads, seed, data, steps,\n"
    "  lr, train_batch, patch, batch, tile, eval_batch, initial_loss, final_loss,\n"
    "  psnr, ssim, noisy_psnr, noisy_ssim, psnr_gain, eval_blocks, params, macs,\n"
    "  predicted_inference_peak_bytes, measured_inference_peak_bytes,\n"
    "  process_inference_peak_bytes, predicted_train_peak_bytes, measured_train_peak_bytes,\n"
    "  process_train_peak_bytes, inference_ratio and train_ratio (predicted / measured),\n"
    "  latency_ms_per_tile, latency_ms_per_mp, predicted_latency_ms_per_tile (roofline),\n"
    "  latency_100mp_s, tiled_100mp_tile, tiled_100mp_overlap, tiled_100mp_windows,\n"
    "  tiled_100mp_s, predicted_tiled_100mp_s (with --latency-tile), train_steps_per_s,\n"
    "  train_seconds, eval_seconds, intra_op_threads (= threads), framework, export (the file, or "
    "null). The measurements are the fields of\n"
    "  the TrialMetrics message that `serve` reports, under the same names.\n"
    "\"measured\" is the allocator's peak bytes of live tensors (the cost model's contract);\n"
    "\"process\" is what the OS or device sees for the same pass: on CPU the resident-set\n"
    "high-water mark during that pass alone (large blocks mapped, the heap trimmed and the mark\n"
    "reset before it), less the trial's input data; on CUDA the caching allocator's peak\n"
    "reserved bytes. Device calibrations are fitted on it. The inference figures are taken on\n"
    "the freshly initialized net, and so are the training-step figures (in a trainer of its\n"
    "own, its steps undone before training).\n"
    "\n"
    "Architecture JSON (DESIGN.md, \"The U-Net family\"):\n"
    "  {\"levels\": 4, \"widths\": [32, 64, 128, 256], \"enc_blocks\": [1, 1, 2, 2],\n"
    "   \"dec_blocks\": [1, 1, 1], \"skip\": \"concat\", \"upsample\": \"transposed\",\n"
    "   \"downsample\": \"strided\", \"activation\": \"relu\"}\n"
    "\n"
    "Examples:\n"
    "  peaknas-worker make-data --out /tmp/syn\n"
    "  peaknas-worker once --arch examples/unet4.json --data /tmp/syn --steps 500 \\\n"
    "      --export /tmp/unet4.pt\n"
    "  peaknas-worker once --arch examples/unet4.json --data /data/sidd --device cuda:0 \\\n"
    "      --precision bf16 --tile 512 --steps 2000\n"
    "\n"
    "Exit status: 0 on success; 1 for bad input (architecture, shape, device, data) or a failed\n"
    "trial (out of memory, diverged training); 2 for a command-line usage error. Errors are one\n"
    "line on stderr.";

}  // namespace

CLI::App* AddOnceCommand(CLI::App& root, OnceOptions& options) {
  CLI::App* cmd = root.add_subcommand("once", kDescription);
  cmd->footer(kFooter);
  base::AddArchOption(*cmd, options.arch, "Required.");
  cmd->add_option("--data", options.data,
                  "Dataset directory in SIDD's sRGB layout (Data/<scene>/NOISY_SRGB_*.PNG and "
                  "GT_SRGB_*.PNG, ValidationNoisyBlocksSrgb.mat, ValidationGtBlocksSrgb.mat), as "
                  "`peaknas-worker make-data` writes. Required.")
      ->required()
      ->type_name("DIR");
  cmd->add_option("--steps", options.steps, "Training steps (Adam, L1 loss, cosine decay).")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--train-batch", options.train_batch,
                  "Training batch size, in [1, " + std::to_string(search::kMaxBatch) + "].")
      ->type_name("B")
      ->capture_default_str();
  cmd->add_option("--patch", options.patch,
                  "Training patch side P (random P x P crops): a multiple of 2^(levels-1), no "
                  "larger than the training images.")
      ->type_name("P")
      ->capture_default_str();
  cmd->add_option("--batch", options.batch,
                  "Inference batch for the peak-memory and latency measurements.")
      ->type_name("B")
      ->capture_default_str();
  cmd->add_option("--tile", options.tile,
                  "Inference tile side T for the peak-memory and latency measurements: a "
                  "multiple of 2^(levels-1). (Evaluation runs on the whole validation blocks.)")
      ->type_name("T")
      ->capture_default_str();
  cmd->add_option("--device", options.device,
                  "Where to run: cpu, cuda (= cuda:0) or cuda:N. CUDA needs a CUDA LibTorch "
                  "and a GPU.")
      ->type_name("cpu|cuda:N")
      ->capture_default_str();
  cmd->add_option("--export", options.export_path,
                  "Write the trained model as TorchScript to FILE (loads with torch.jit.load or "
                  "torch::jit::load; its `architecture` attribute holds the canonical JSON). Its "
                  "directory must exist. Default: no export.")
      ->type_name("FILE");
  cmd->add_option("--parent", options.parent,
                  "Start from a trained parent's weights instead of a fresh initialization: a "
                  "TorchScript FILE written by --export (or `peaknas export`). The architecture "
                  "must have the parent's levels and kinds; a narrower channel group keeps the "
                  "parent's most important channels (as the pruning strategy's children do), a "
                  "wider one adds channels that its readers start by ignoring, a level with "
                  "fewer blocks keeps the first ones and one with more (relu only) appends "
                  "blocks that start as the identity.")
      ->type_name("FILE");
  cmd->add_option("--importance", options.importance,
                  "How --parent's channels are ranked: l1 (L1 norm of the filters that produce "
                  "a channel) or group-l1 (plus the weight columns that read it).")
      ->type_name("l1|group-l1")
      ->capture_default_str();
  cmd->add_option("--seed", options.seed,
                  "Seed of the weights' initialization and the patch "
                  "sampling.")
      ->type_name("S")
      ->capture_default_str();
  cmd->add_option("--precision", options.precision,
                  "Autocast precision of training, evaluation and measurements: fp32, bf16 "
                  "(CPU or CUDA) or fp16 (CUDA). The cost model is asked at the same dtype; its "
                  "bound is a contract for fp32 only.")
      ->type_name("fp32|bf16|fp16")
      ->capture_default_str();
  cmd->add_option("--lr", options.lr,
                  "Initial learning rate, in (0, 1]; decays by a half cosine to 1e-5 at the "
                  "last step.")
      ->type_name("RATE")
      ->capture_default_str();
  cmd->add_option("--eval-batch", options.eval_batch,
                  "Validation blocks per forward pass during evaluation.")
      ->type_name("B")
      ->capture_default_str();
  cmd->add_option("--threads", options.threads,
                  "LibTorch intra-op threads; 0 keeps LibTorch's default for this "
                  "machine. On CPU the convolution kernels, and so the peaks, depend on it: "
                  "oneDNN's backward keeps per-thread weight-gradient buffers, which the "
                  "prediction includes for the thread count the trial runs at "
                  "(`peaknas estimate --threads`). Local searches run one single-threaded "
                  "worker per core.")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--progress-every", options.progress_every,
                  "Training steps between progress lines on stderr.")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--events-fd", options.events_fd,
                  "For serve, which runs each trial as `once` in a child process: also write "
                  "the stages, the training progress and the outcome (the metrics, or the "
                  "error's code and message) as JSON lines on this file descriptor.")
      ->type_name("FD");
  cmd->add_option("--latency-runs", options.latency_runs,
                  "Timed inference passes (after 3 untimed ones); the median is reported.")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--latency-tile", options.latency_tile,
                  "Also time the frontier's 100-MP latency, last: a 10000x10000 image denoised "
                  "seam-free (overlap: the receptive-field radius) in output tiles of T, "
                  "extrapolated from one timed window of each distinct shape (tiled_100mp_s, "
                  "beside the roofline's predicted_tiled_100mp_s). T is a multiple of "
                  "2^(levels-1); `peaknas estimate --budget SIZE --json` gives the largest "
                  "that fits a budget (latency_100mp_tile). 0: not timed.")
      ->type_name("T")
      ->capture_default_str();
  cmd->add_option("--fault-hold-bytes", options.fault_hold_bytes)
      ->check(CLI::NonNegativeNumber)
      ->group("");  // tests of packing only
  return cmd;
}

std::vector<std::string> OnceCommandLine(const std::string& program, const TrialSpec& spec,
                                         int threads, int events_fd) {
  std::vector<std::string> args = {program,
                                   "once",
                                   "--arch",
                                   search::ToCanonicalJson(spec.arch),
                                   "--data",
                                   spec.data_dir,
                                   "--steps",
                                   std::to_string(spec.steps),
                                   "--train-batch",
                                   std::to_string(spec.train_shape.batch),
                                   "--patch",
                                   std::to_string(spec.train_shape.size),
                                   "--batch",
                                   std::to_string(spec.tile.batch),
                                   "--tile",
                                   std::to_string(spec.tile.size),
                                   "--device",
                                   spec.device.str(),
                                   "--seed",
                                   std::to_string(spec.seed),
                                   "--precision",
                                   std::string(search::Name(spec.precision)),
                                   "--lr",
                                   Format("%.17g", spec.learning_rate),
                                   "--eval-batch",
                                   std::to_string(spec.eval_batch),
                                   "--threads",
                                   std::to_string(threads),
                                   "--progress-every",
                                   std::to_string(spec.progress_every),
                                   "--latency-runs",
                                   std::to_string(spec.latency_runs),
                                   "--latency-tile",
                                   std::to_string(spec.latency_tile),
                                   "--events-fd",
                                   std::to_string(events_fd)};
  if (!spec.export_path.empty()) {
    args.insert(args.end(), {"--export", spec.export_path});
  }
  if (!spec.parent_model.empty()) {
    args.insert(args.end(), {"--parent", spec.parent_model, "--importance",
                             std::string(Name(spec.importance))});
  }
  if (spec.fault_hold_bytes > 0) {
    args.insert(args.end(), {"--fault-hold-bytes", std::to_string(spec.fault_hold_bytes)});
  }
  return args;
}

namespace {

// --events-fd's lines (once_command.h), flushed one by one.
class EventWriter {
 public:
  explicit EventWriter(int fd) : file_(fd >= 0 ? fdopen(fd, "w") : nullptr) {}
  ~EventWriter() {
    if (file_ != nullptr) std::fclose(file_);
  }
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  bool open() const { return file_ != nullptr; }
  void Write(const Json& line) {
    if (file_ == nullptr) return;
    const std::string text = line.dump() + "\n";
    std::fwrite(text.data(), 1, text.size(), file_);
    std::fflush(file_);
  }

 private:
  FILE* file_;
};

StatusOr<TrialResult> RunReported(const OnceOptions& options, std::ostream& progress,
                                  EventWriter& events, TrialSpec* spec) {
  if (options.threads < 0) {
    return Status::InvalidArgument("threads: " + std::to_string(options.threads) +
                                   " is negative; 0 keeps LibTorch's default");
  }
  if (options.threads > 0) at::set_num_threads(options.threads);
  PEAKNAS_ASSIGN_OR_RETURN(*spec, MakeSpec(options));
  TrialCallbacks callbacks;
  callbacks.stage = [&](std::string_view stage, std::string_view detail) {
    progress << "once: " << stage << ": " << detail << '\n';
    progress.flush();
    events.Write({{"stage", stage}, {"detail", detail}});
  };
  callbacks.data_bytes = [&](std::int64_t bytes) { events.Write({{"data_bytes", bytes}}); };
  callbacks.resident_peak = [&](std::int64_t bytes) { events.Write({{"resident_peak", bytes}}); };
  callbacks.train = [&](const TrainProgress& p) {
    progress << "once: step " << p.step << "/" << p.steps << "  loss " << Format("%.5f", p.loss)
             << "  lr " << Format("%.2e", p.learning_rate) << "  "
             << Format("%.1f", p.steps_per_second) << " steps/s\n";
    progress.flush();
    events.Write({{"progress", {{"step", p.step}, {"steps", p.steps}, {"loss", p.loss}}}});
  };
  return RunTrial(*spec, callbacks);
}

}  // namespace

Status RunOnce(const OnceOptions& options, std::ostream& out, std::ostream& progress) {
  EventWriter events(options.events_fd);
  if (options.events_fd >= 0 && !events.open()) {
    return Status::InvalidArgument("events-fd: " + std::to_string(options.events_fd) +
                                   " is not an open descriptor");
  }
  TrialSpec spec;
  StatusOr<TrialResult> ran = RunReported(options, progress, events, &spec);
  if (!ran.ok()) {
    events.Write(
        {{"error",
          {{"code", static_cast<int>(ran.status().code())}, {"message", ran.status().message()}}}});
    return ran.status();
  }
  const TrialResult& result = *ran;
  events.Write({{"metrics", Json::parse(proto::ToJson(proto::ToProto(result),
                                                      {.always_print_primitive_fields = true,
                                                       .preserve_proto_field_names = false}))},
                {"export", result.export_path ? Json(*result.export_path) : Json()}});
  progress << "once: psnr " << Format("%.3f", result.scores.psnr) << " dB (noisy "
           << Format("%.3f", result.noisy.psnr) << " dB, gain "
           << Format("%+.3f", result.scores.psnr - result.noisy.psnr) << " dB)\n";
  progress.flush();
  out << TrialReport(spec, result).dump() << '\n';
  out.flush();
  return Status::Ok();
}

}  // namespace peaknas::worker
