#include "cli/estimate_command.h"

#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/app.h"
#include "base/status.h"
#include "peaknas/v1/peaknas.pb.h"
#include "proto/calibration_file.h"
#include "proto/convert.h"
#include "search/architecture.h"
#include "search/calibration.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/tiling.h"
#include "search/units.h"

namespace peaknas::cli {
namespace {

using Json = nlohmann::json;
using search::Architecture;
using search::DeviceProfile;
using search::DType;
using search::FormatBytes;
using search::MemoryBreakdown;
using search::PeakEstimate;
using search::PeakLocation;
using search::Shape;

constexpr int kMaxThreads = 1024;

// ---------------------------------------------------------------------------------------------
// Inputs

StatusOr<const DeviceProfile*> LoadDeviceProfile(const std::string& name) {
  if (name.empty()) return &search::DefaultDeviceProfile();
  return search::FindDeviceProfile(name);
}

// A calibration's fit of one pass, or why there is none.
struct PassCalibration {
  std::optional<search::CalibrationFit> fit;
  std::string unfitted;
};

struct DeviceCalibration {
  std::string framework;
  int samples = 0;  // of both passes
  PassCalibration inference;
  PassCalibration training;
};

PassCalibration PassOf(const v1::Calibration& c, search::CalibratedPass pass) {
  PassCalibration out{.fit = proto::FittedPass(c, pass), .unfitted = ""};
  if (!out.fit) {
    const v1::CalibrationFit& f = proto::PassFit(c, pass);
    out.unfitted = f.unfitted().empty() ? "no samples" : f.unfitted();
  }
  return out;
}

// The calibration for `profile` in `path` (proto/calibration_file.h), as estimate uses it.
StatusOr<DeviceCalibration> LoadCalibration(const std::string& path, const std::string& profile) {
  const std::string where = "calibration: " + (path == "-" ? std::string("stdin") : path) + ": ";
  PEAKNAS_ASSIGN_OR_RETURN(const v1::Calibration calibration,
                           proto::LoadCalibrationFile(path, profile));
  const v1::Calibration* chosen = &calibration;
  DeviceCalibration out{.framework = chosen->framework(),
                        .samples = chosen->inference().samples() + chosen->training().samples(),
                        .inference = PassOf(*chosen, search::CalibratedPass::kInference),
                        .training = PassOf(*chosen, search::CalibratedPass::kTraining)};
  if (!out.inference.fit && !out.training.fit) {
    return Status::InvalidArgument(where + "the calibration of \"" + profile + "\" (" +
                                   out.framework + ") has no fit yet: " + out.inference.unfitted);
  }
  return out;
}

// Everything RunEstimate needs, validated.
struct Request {
  Architecture arch;
  Shape tile;
  Shape patch;
  DType dtype = DType::kFp32;
  DeviceProfile device;  // with the --threads of the workers it stands for
  std::optional<std::int64_t> budget_bytes;
  std::optional<DeviceCalibration> calibration;
};

StatusOr<Request> Validate(const EstimateOptions& options) {
  Request r;
  PEAKNAS_ASSIGN_OR_RETURN(r.arch, search::LoadArchitectureArgument(options.arch));
  r.tile = Shape{.batch = options.batch, .size = options.tile};
  r.patch = Shape{.batch = options.train_batch, .size = options.patch};
  PEAKNAS_RETURN_IF_ERROR(search::ValidateShape(r.arch, r.tile, "batch", "tile"));
  PEAKNAS_RETURN_IF_ERROR(search::ValidateShape(r.arch, r.patch, "train-batch", "patch"));
  PEAKNAS_ASSIGN_OR_RETURN(r.dtype, search::ParseDType(options.dtype));
  PEAKNAS_ASSIGN_OR_RETURN(const DeviceProfile* device, LoadDeviceProfile(options.device_profile));
  r.device = *device;
  if (options.threads < 1 || options.threads > kMaxThreads) {
    return Status::InvalidArgument("threads: " + std::to_string(options.threads) +
                                   " is out of range; expected 1 to " +
                                   std::to_string(kMaxThreads));
  }
  r.device.cpu_conv.intra_op_threads = options.threads;
  if (options.budget.has_value()) {
    PEAKNAS_ASSIGN_OR_RETURN(const std::int64_t budget,
                             search::ParseByteSize(*options.budget, "budget"));
    if (budget <= 0) {
      return Status::InvalidArgument("budget: \"" + *options.budget +
                                     "\" is zero; expected a positive size such as 2GiB");
    }
    r.budget_bytes = budget;
  }
  if (!options.calibration.empty()) {
    PEAKNAS_ASSIGN_OR_RETURN(r.calibration, LoadCalibration(options.calibration, r.device.name));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// The estimate

struct BudgetAnswer {
  std::int64_t budget_bytes = 0;
  bool fits_inference = false;
  bool fits_training = false;
  int max_tile = 0;
  int max_batch = 0;
  int max_train_batch = 0;
  // The frontier's objective: seam-free at the largest window that fits, batch 1
  // (search::PlanHundredMegapixels); unset when no window fits.
  std::optional<double> latency_100mp_s;
  search::TilePlan latency_plan;
};

struct Estimate {
  std::int64_t params = 0;
  search::WorkCounts work;
  PeakEstimate inference;
  PeakEstimate train;
  double latency_s = 0;
  std::optional<BudgetAnswer> budget;
  // With a calibration: what the process or device will see (unset: that pass has no fit).
  std::optional<std::int64_t> device_inference_bytes;
  std::optional<std::int64_t> device_train_bytes;
};

Estimate Compute(const Request& r) {
  const DeviceProfile& device = r.device;
  Estimate e;
  e.params = search::Parameters(r.arch);
  e.work = search::CountWork(r.arch, r.tile, r.dtype);
  e.inference = search::EstimateInferencePeak(r.arch, r.tile, r.dtype, device);
  e.train = search::EstimateTrainPeak(r.arch, r.patch, r.dtype, device);
  e.latency_s = search::InferenceLatencySeconds(r.arch, r.tile, r.dtype, device);
  if (r.calibration.has_value()) {
    if (r.calibration->inference.fit) {
      e.device_inference_bytes = r.calibration->inference.fit->Predict(e.inference.bytes);
    }
    if (r.calibration->training.fit) {
      e.device_train_bytes = r.calibration->training.fit->Predict(e.train.bytes);
    }
  }
  if (r.budget_bytes.has_value()) {
    BudgetAnswer b;
    b.budget_bytes = *r.budget_bytes;
    b.fits_inference = e.inference.bytes <= b.budget_bytes;
    b.fits_training = e.train.bytes <= b.budget_bytes;
    b.max_tile = search::MaxTile(r.arch, b.budget_bytes, r.tile.batch, r.dtype, device);
    b.max_batch = search::MaxInferenceBatch(r.arch, b.budget_bytes, r.tile.size, r.dtype, device);
    b.max_train_batch =
        search::MaxTrainBatch(r.arch, b.budget_bytes, r.patch.size, r.dtype, device);
    search::HundredMegapixelPass pass =
        search::PlanHundredMegapixels(r.arch, b.budget_bytes, r.dtype, device);
    if (pass.plan.tile > 0) {
      b.latency_100mp_s = pass.seconds;
      b.latency_plan = std::move(pass.plan);
    }
    e.budget = b;
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// JSON report

Json LocationJson(const PeakLocation& at) {
  return Json{{"op", search::Name(at.op)},
              {"stage", search::Name(at.stage)},
              {"level", at.level},
              {"phase", search::Name(at.phase)},
              {"op_index", at.op_index}};
}

Json BreakdownJson(const MemoryBreakdown& b) {
  return Json{{"weights", b.weights},
              {"gradients", b.gradients},
              {"optimizer_state", b.optimizer_state},
              {"activations", b.activations},
              {"workspace", b.workspace}};
}

void WriteJson(const Request& r, const Estimate& e, std::ostream& out) {
  Json j;
  j["arch"] = Json::parse(search::ToCanonicalJson(r.arch));
  j["arch_hash"] = search::CanonicalHashHex(r.arch);
  j["params"] = e.params;
  j["macs"] = e.work.macs;
  j["activations"] = e.work.activations;
  j["memory_traffic_bytes"] = e.work.memory_traffic_bytes;
  j["inference_peak_bytes"] = e.inference.bytes;
  j["train_peak_bytes"] = e.train.bytes;
  j["peak_location"] = LocationJson(e.inference.location);
  j["train_peak_location"] = LocationJson(e.train.location);
  j["breakdown"] = BreakdownJson(e.inference.breakdown);
  j["train_breakdown"] = BreakdownJson(e.train.breakdown);
  j["latency_s"] = e.latency_s;
  j["dtype"] = search::Name(r.dtype);
  j["device_profile"] = r.device.name;
  j["threads"] = r.device.cpu_conv.intra_op_threads;
  j["batch"] = r.tile.batch;
  j["tile"] = r.tile.size;
  j["train_batch"] = r.patch.batch;
  j["patch"] = r.patch.size;
  if (r.calibration.has_value()) {
    const auto bytes = [](const std::optional<std::int64_t>& b) { return b ? Json(*b) : Json(); };
    j["device_peak_bytes"] = bytes(e.device_inference_bytes);
    j["device_train_peak_bytes"] = bytes(e.device_train_bytes);
    j["calibration"] = Json{{"device_profile", r.device.name},
                            {"framework", r.calibration->framework},
                            {"samples", r.calibration->samples}};
  }
  if (e.budget.has_value()) {
    const BudgetAnswer& b = *e.budget;
    j["budget_bytes"] = b.budget_bytes;
    j["fits_inference"] = b.fits_inference;
    j["fits_training"] = b.fits_training;
    j["max_tile"] = b.max_tile;
    j["max_batch"] = b.max_batch;
    j["max_train_batch"] = b.max_train_batch;
    j["latency_100mp_s"] = b.latency_100mp_s.has_value() ? Json(*b.latency_100mp_s) : Json();
    if (b.latency_100mp_s.has_value()) {
      j["latency_100mp_tile"] = b.latency_plan.tile;
      j["latency_100mp_overlap"] = b.latency_plan.overlap;
      j["latency_100mp_windows"] = b.latency_plan.WindowCount();
    }
  }
  out << j.dump() << '\n';
}

// ---------------------------------------------------------------------------------------------
// Readable report

// 1234567 -> "1,234,567".
std::string Grouped(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Printf(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

// Seconds in the unit that reads best: "12.3 us", "4.56 ms", "7.89 s", "2.5 min", "1.2 h".
std::string FormatSeconds(double s) {
  if (s < 1e-3) return Printf("%.1f us", s * 1e6);
  if (s < 1) return Printf("%.2f ms", s * 1e3);
  if (s < 120) return Printf("%.2f s", s);
  if (s < 7200) return Printf("%.1f min", s / 60);
  return Printf("%.1f h", s / 3600);
}

std::string Side(int side) { return std::to_string(side) + "x" + std::to_string(side); }

std::string Percent(std::int64_t part, std::int64_t whole) {
  return Printf("%.1f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

std::string Describe(const PeakLocation& at, int ops) {
  std::string s(search::Name(at.op));
  s += " in ";
  s += search::Name(at.stage);
  s += " level ";
  s += std::to_string(at.level);
  s += ", ";
  s += search::Name(at.phase);
  s += " (op ";
  s += std::to_string(at.op_index + 1);
  s += " of ";
  s += std::to_string(ops);
  s += ")";
  return s;
}

// Left column padded to a fixed width.
std::string Row(std::string_view label, std::string_view value, std::size_t width = 19) {
  std::string s = "  ";
  s += label;
  if (label.size() < width) s.append(width - label.size(), ' ');
  s += ' ';
  s += value;
  s += '\n';
  return s;
}

std::string Columns(std::string_view label, std::string_view inference, std::string_view train) {
  std::string value(inference);
  if (value.size() < 18) value.append(18 - value.size(), ' ');
  value += train;
  return Row(label, value);
}

void WriteText(const Request& r, const Estimate& e, std::ostream& out) {
  const DeviceProfile& device = r.device;
  const int dtype_bytes = search::DTypeBytes(r.dtype);
  out << "architecture " << search::ToCanonicalJson(r.arch) << '\n';
  out << "hash         " << search::CanonicalHashHex(r.arch) << '\n';
  out << "device       " << device.name << " (" << device.description << "), "
      << search::Name(r.dtype);
  if (device.cpu_conv.enabled) {
    const int threads = device.cpu_conv.intra_op_threads;
    out << ", " << threads << (threads == 1 ? " thread" : " threads");
  }
  out << "\n\n";

  out << "network at batch " << r.tile.batch << ", tile " << Side(r.tile.size) << '\n';
  out << Row("parameters",
             Grouped(e.params) + " (" + FormatBytes(e.params * dtype_bytes) + " of weights)");
  std::string macs = Printf("%.3f G", static_cast<double>(e.work.macs) / 1e9);
  if (e.work.macs < 10'000'000) macs += " (" + Grouped(e.work.macs) + ")";
  out << Row("MACs", macs);
  out << Row("activations", Grouped(e.work.activations) + " elements (conv outputs)");
  out << Row("memory traffic", FormatBytes(e.work.memory_traffic_bytes));
  out << Row("latency",
             FormatSeconds(e.latency_s) + " (roofline, " + std::to_string(e.work.ops) + " ops)");
  out << '\n';

  const MemoryBreakdown& ib = e.inference.breakdown;
  const MemoryBreakdown& tb = e.train.breakdown;
  std::string header = "peak memory";
  header.resize(22, ' ');
  out << header << "inference         training step\n";
  out << Columns("shape", std::to_string(r.tile.batch) + " x " + Side(r.tile.size),
                 std::to_string(r.patch.batch) + " x " + Side(r.patch.size));
  out << Columns("peak", FormatBytes(e.inference.bytes), FormatBytes(e.train.bytes));
  out << Columns("  weights", FormatBytes(ib.weights), FormatBytes(tb.weights));
  out << Columns("  gradients", FormatBytes(ib.gradients), FormatBytes(tb.gradients));
  out << Columns("  optimizer state", FormatBytes(ib.optimizer_state),
                 FormatBytes(tb.optimizer_state));
  out << Columns("  activations", FormatBytes(ib.activations), FormatBytes(tb.activations));
  out << Columns("  workspace", FormatBytes(ib.workspace), FormatBytes(tb.workspace));
  out << Row("inference peak at", Describe(e.inference.location, e.work.ops));
  out << Row("training peak at", Describe(e.train.location, e.work.ops));
  if (r.calibration.has_value()) {
    const auto device_peak = [](const std::optional<std::int64_t>& b) {
      return b ? FormatBytes(*b) : std::string("n/a (no fit)");
    };
    out << Columns("device peak", device_peak(e.device_inference_bytes),
                   device_peak(e.device_train_bytes));
    out << Row("calibration", r.device.name + ", " + r.calibration->framework + ", " +
                                  std::to_string(r.calibration->samples) + " samples");
  }

  if (!e.budget.has_value()) return;
  const BudgetAnswer& b = *e.budget;
  const auto fit = [&](std::int64_t peak, bool fits) {
    return std::string(fits ? "fits" : "does NOT fit") + " (peak " + FormatBytes(peak) + " is " +
           Percent(peak, b.budget_bytes) + " of the budget)";
  };
  out << '\n'
      << "budget " << FormatBytes(b.budget_bytes) << " (" << Grouped(b.budget_bytes) << " bytes)\n";
  out << Row("inference", fit(e.inference.bytes, b.fits_inference));
  out << Row("training step", fit(e.train.bytes, b.fits_training));
  out << Row("max tile", b.max_tile > 0
                             ? Side(b.max_tile) + " at batch " + std::to_string(r.tile.batch)
                             : "none: not even " + Side(search::SpatialMultiple(r.arch)) +
                                   " fits at batch " + std::to_string(r.tile.batch));
  out << Row("max batch", (b.max_batch > 0 ? std::to_string(b.max_batch) : "none") + " at tile " +
                              Side(r.tile.size));
  out << Row("max train batch",
             (b.max_train_batch > 0 ? std::to_string(b.max_train_batch) : "none") + " at patch " +
                 Side(r.patch.size));
  out << Row("100-MP image", b.latency_100mp_s.has_value()
                                 ? FormatSeconds(*b.latency_100mp_s) + " in " +
                                       std::to_string(b.latency_plan.WindowCount()) + " tiles of " +
                                       Side(b.latency_plan.tile) + ", overlap " +
                                       std::to_string(b.latency_plan.overlap) + " (roofline)"
                                 : "n/a: no seam-free tile fits the budget");
}

// ---------------------------------------------------------------------------------------------
// Help text

std::string DeviceProfileHelp() {
  std::string s =
      "Device profile: the framework workspace table, peak FLOP/s, bandwidth and per-op "
      "overhead behind the peaks and latencies. One of:";
  for (const DeviceProfile& p : search::DeviceProfiles()) {
    s += "\n- " + p.name + ": " + p.description;
  }
  s += "\nDefault: " + search::DefaultDeviceProfile().name + ".";
  return s;
}

constexpr const char* kEstimateDescription =
    "Estimate the cost of a U-Net denoiser from the analytical cost model alone; nothing is "
    "run and no server is needed.";

constexpr const char* kEstimateFooter =
    "Reports parameters, MACs, activations and memory traffic of one inference pass; the peak\n"
    "allocator bytes of one inference pass (batch x tile x tile) and of one training step\n"
    "(forward, L1 loss, backward, Adam; train-batch x patch x patch), where each peak happens\n"
    "and what it is made of (weights, gradients, optimizer state, activations, workspace); and\n"
    "a roofline latency on the device profile. With --budget it also says whether each peak\n"
    "fits, the largest tile, batch and training batch that fit, and the time to denoise a\n"
    "100-megapixel image at the largest tile.\n"
    "\n"
    "Architecture JSON (DESIGN.md, \"The U-Net family\"):\n"
    "  {\"levels\": 4, \"widths\": [32, 64, 128, 256], \"enc_blocks\": [1, 1, 2, 2],\n"
    "   \"dec_blocks\": [1, 1, 1], \"skip\": \"concat\", \"upsample\": \"transposed\",\n"
    "   \"downsample\": \"strided\", \"activation\": \"relu\"}\n"
    "  levels in [1, 6]; widths: multiples of 8 in [8, 512]; blocks in [1, 8];\n"
    "  skip: concat|add; upsample: transposed|bilinear|pixelshuffle;\n"
    "  downsample: strided|maxpool; activation: relu|lrelu.\n"
    "\n"
    "Examples:\n"
    "  peaknas estimate --arch examples/unet4.json\n"
    "  peaknas estimate --arch examples/unet4.json --tile 512 --budget 2GiB\n"
    "  peaknas estimate --arch examples/unet5-add-bilinear.json --device-profile h100 --dtype "
    "bf16\n"
    "  peaknas estimate --json --arch '{\"levels\": 2, \"widths\": [16, 32], \"enc_blocks\": "
    "[1, 1],\n"
    "      \"dec_blocks\": [1], \"skip\": \"add\", \"upsample\": \"bilinear\", \"downsample\": "
    "\"maxpool\",\n"
    "      \"activation\": \"lrelu\"}'\n"
    "\n"
    "Exit status: 0 on success; 1 for an invalid architecture, shape, dtype, budget or\n"
    "device profile; 2 for a command-line usage error. Errors are one line on stderr.";

}  // namespace

CLI::App* AddEstimateCommand(CLI::App& root, EstimateOptions& options) {
  CLI::App* cmd = root.add_subcommand("estimate", kEstimateDescription);
  cmd->footer(kEstimateFooter);

  base::AddArchOption(*cmd, options.arch, "See the format below.");
  cmd->add_option("--batch", options.batch,
                  "Inference batch size, in [1, " + std::to_string(search::kMaxBatch) + "].")
      ->type_name("B")
      ->capture_default_str();
  cmd->add_option("--tile", options.tile,
                  "Inference tile side T (square T x T tiles): a multiple of 2^(levels-1), at "
                  "most " +
                      std::to_string(search::kMaxSide) + ".")
      ->type_name("T")
      ->capture_default_str();
  cmd->add_option("--train-batch", options.train_batch,
                  "Training batch size, in [1, " + std::to_string(search::kMaxBatch) + "].")
      ->type_name("B")
      ->capture_default_str();
  cmd->add_option("--patch", options.patch,
                  "Training patch side P (square P x P patches): a multiple of 2^(levels-1), "
                  "at most " +
                      std::to_string(search::kMaxSide) + ".")
      ->type_name("P")
      ->capture_default_str();
  cmd->add_option("--dtype", options.dtype,
                  "Element type of weights, activations and gradients: fp32, fp16 or bf16 (2 bytes "
                  "per element and the device's half-precision FLOP/s).")
      ->type_name("fp32|fp16|bf16")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--budget", [&options](const std::string& value) { options.budget = value; },
         "Peak-memory budget: bytes, or a number with a unit - KiB, MiB, GiB, TiB, PiB, EiB "
         "(powers of 1024) or KB, MB, GB, TB, PB, EB (powers of 1000), case-insensitive, e.g. "
         "2GiB or 1.5GB. "
         "Adds whether each peak fits, the largest tile (at --batch), the largest batch (at "
         "--tile), the largest training batch (at --patch), and the latency of a "
         "100-megapixel image at the largest tile. Default: none.")
      ->type_name("SIZE");
  cmd->add_option("--device-profile", options.device_profile, DeviceProfileHelp())
      ->type_name("NAME");
  cmd->add_option("--threads", options.threads,
                  "Intra-op threads of the CPU worker that runs the net, in [1, " +
                      std::to_string(kMaxThreads) +
                      "]: oneDNN's backward keeps per-thread weight-gradient buffers, so the "
                      "training peak grows with them. No effect on GPU profiles.")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--calibration", options.calibration,
                  "Device calibrations (`peaknas calibration --format json`; - reads standard "
                  "input): adds the peak the process or device will see, from the calibration "
                  "of the device profile.")
      ->type_name("FILE");
  cmd->add_flag("--json", options.json,
                "Print one JSON object (keys as in DESIGN.md) instead of the readable report.");
  return cmd;
}

Status RunEstimate(const EstimateOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Request request, Validate(options));
  const Estimate estimate = Compute(request);
  if (options.json) {
    WriteJson(request, estimate, out);
  } else {
    WriteText(request, estimate, out);
  }
  out.flush();
  return Status::Ok();
}

}  // namespace peaknas::cli
