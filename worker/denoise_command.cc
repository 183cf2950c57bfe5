#include "worker/denoise_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/proc.h"
#include "proto/calibration_file.h"
#include "proto/convert.h"
#include "search/calibration.h"
#include "search/tiling.h"
#include "search/units.h"
#include "worker/data/image.h"
#include "worker/inherit.h"
#include "worker/malloc_tuning.h"
#include "worker/measure.h"
#include "worker/tiled.h"
#include "worker/trial.h"
#include "worker/unet.h"

namespace peaknas::worker {
namespace {

using Clock = std::chrono::steady_clock;

// "auto" (0) or a positive integer.
StatusOr<int> AutoOrInt(const std::string& text, const std::string& field) {
  if (text == "auto") return 0;
  try {
    std::size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == text.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument(field + ": \"" + text + "\" is not auto or a whole number");
}

std::string Mib(std::int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

CLI::App* AddDenoiseCommand(CLI::App& root, DenoiseOptions& o) {
  CLI::App* cmd = root.add_subcommand(
      "denoise",
      "Denoise an image of any size with a trained model, tile by tile within a memory budget. "
      "Tiles overlap by the network's receptive-field radius, so the result equals the "
      "whole-image output; the tile is the largest whose predicted peak fits the budget.");
  cmd->add_option("--model", o.model,
                  "The trained model: a TorchScript file from `peaknas export` or a worker's "
                  "--export (its `architecture` attribute names the network). Required.")
      ->required()
      ->type_name("FILE");
  cmd->add_option("--in", o.in, "The noisy image: PNG or JPEG (8-bit RGB). Required.")
      ->required()
      ->type_name("IMAGE");
  cmd->add_option("--out", o.out, "Where the denoised image goes (PNG). Required.")
      ->required()
      ->type_name("IMAGE");
  cmd->add_option("--budget", o.budget,
                  "Memory the run may hold: the image's buffers plus one window's inference "
                  "peak (e.g. 512MiB). Required.")
      ->required()
      ->type_name("SIZE");
  cmd->add_option("--tile", o.tile,
                  "Output tile side: auto (the largest that fits the budget) or a multiple of "
                  "2^(levels-1).")
      ->capture_default_str()
      ->type_name("auto|T");
  cmd->add_option("--overlap", o.overlap,
                  "Context on each side of a tile: auto (the receptive-field radius on the "
                  "downsampling grid: seam-free) or a smaller multiple of 2^(levels-1).")
      ->capture_default_str()
      ->type_name("auto|N");
  cmd->add_option("--calibration", o.calibration,
                  "A device calibration (`peaknas calibration --format json`; - reads standard "
                  "input): the budget is then the whole process's peak, not the network's.")
      ->type_name("FILE");
  cmd->add_option("--device", o.device, "cpu, cuda (= cuda:0) or cuda:N.")
      ->capture_default_str()
      ->type_name("cpu|cuda:N");
  cmd->add_option("--threads", o.threads, "LibTorch intra-op threads; 0: LibTorch's default.")
      ->capture_default_str()
      ->type_name("N");
  return cmd;
}

Status RunDenoise(const DenoiseOptions& o, std::ostream& out, std::ostream& log) {
  PEAKNAS_ASSIGN_OR_RETURN(const std::int64_t budget, search::ParseByteSize(o.budget, "budget"));
  PEAKNAS_ASSIGN_OR_RETURN(const int tile_flag, AutoOrInt(o.tile, "tile"));
  PEAKNAS_ASSIGN_OR_RETURN(const int overlap_flag, AutoOrInt(o.overlap, "overlap"));
  if (o.threads < 0) return Status::InvalidArgument("threads: must be >= 0");
  PEAKNAS_ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(o.device, "device"));
  if (o.threads > 0) torch::set_num_threads(o.threads);

  PEAKNAS_ASSIGN_OR_RETURN(const LoadedModel model, LoadModel(o.model));
  const search::Architecture& arch = model.arch;
  const int multiple = search::SpatialMultiple(arch);
  const int overlap =
      overlap_flag == 0 && o.overlap == "auto" ? search::SeamFreeOverlap(arch) : overlap_flag;
  if (overlap % multiple != 0) {
    return Status::InvalidArgument("overlap: " + std::to_string(overlap) +
                                   " is not a multiple of " + std::to_string(multiple) +
                                   " (2^(levels-1) for " + std::to_string(arch.levels) +
                                   " levels)");
  }

  PEAKNAS_ASSIGN_OR_RETURN(const data::Image image, data::ReadImage(o.in));
  const int padded_h = (image.height + multiple - 1) / multiple * multiple;
  const int padded_w = (image.width + multiple - 1) / multiple * multiple;
  // What the run holds besides the network: input and output in float, the image in and out
  // in 8 bits (and, while the edges are padded, the unpadded input once more).
  const bool padded = padded_h != image.height || padded_w != image.width;
  const std::int64_t held = (padded ? 3 : 2) * std::int64_t{3} * padded_h * padded_w * 4 +
                            2 * static_cast<std::int64_t>(image.rgb.size());
  const search::DeviceProfile profile = DeviceProfileFor(device);
  std::int64_t network_budget = budget - held;
  std::optional<search::CalibrationFit> calibrated;
  if (!o.calibration.empty()) {
    PEAKNAS_ASSIGN_OR_RETURN(const v1::Calibration calibration,
                             proto::LoadCalibrationFile(o.calibration, profile.name));
    calibrated = proto::FittedPass(calibration, search::CalibratedPass::kInference);
    if (!calibrated) {
      return Status::InvalidArgument("calibration: " + o.calibration +
                                     ": no fitted inference pass for device profile \"" +
                                     profile.name + "\"");
    }
    network_budget = network_budget > 0 ? calibrated->LargestFitting(network_budget) : 0;
  }
  int tile = tile_flag;
  if (tile == 0) {
    tile = network_budget > 0 ? search::MaxTiledOutputSide(arch, network_budget, overlap,
                                                           search::DType::kFp32, profile)
                              : 0;
    if (tile == 0) {
      return Status::InvalidArgument(
          "budget: " + o.budget + " does not hold the image's buffers (" + Mib(held) +
          ") and one window of the smallest tile with its overlap (" +
          Mib(search::InferencePeakBytes(arch, {1, multiple + 2 * overlap}, search::DType::kFp32,
                                         profile)) +
          ")");
    }
    // No tile larger than the image needs.
    const int image_side = std::max(padded_h, padded_w);
    tile = std::min(tile, image_side);
  } else if (tile % multiple != 0) {
    return Status::InvalidArgument("tile: " + std::to_string(tile) + " is not a multiple of " +
                                   std::to_string(multiple) + " (2^(levels-1) for " +
                                   std::to_string(arch.levels) + " levels)");
  }
  // The largest window a tile runs in: clipped to the (padded) image.
  const int window = std::min(tile + 2 * overlap, std::max(padded_h, padded_w));
  const std::int64_t window_peak =
      search::InferencePeakBytes(arch, {1, window}, search::DType::kFp32, profile);
  const std::int64_t window_process_peak =
      calibrated ? calibrated->Predict(window_peak) : window_peak;
  if (tile_flag != 0 && held + window_process_peak > budget) {
    return Status::InvalidArgument(
        "tile: " + std::to_string(tile) + " with overlap " + std::to_string(overlap) + " needs " +
        Mib(held + window_process_peak) + ", over the budget of " + o.budget);
  }

  // Large blocks mapped on their own and returned when freed: the process's resident set then
  // follows the live tensors, which the budget is about, instead of what the heap happens to
  // keep (worker/malloc_tuning.h).
  const MappedLargeBlocks mapped;
  UNet net(arch);
  PEAKNAS_RETURN_IF_ERROR(AssignParameters(model.parameters, net));
  net->to(device);
  torch::NoGradGuard no_grad;
  torch::Tensor input = torch::from_blob(const_cast<std::uint8_t*>(image.rgb.data()),
                                         {image.height, image.width, 3}, torch::kUInt8)
                            .permute({2, 0, 1})
                            .unsqueeze(0)
                            .to(torch::kFloat32)
                            .div_(255.0f);
  if (padded) {
    input = torch::nn::functional::pad(input,
                                       torch::nn::functional::PadFuncOptions(
                                           {0, padded_w - image.width, 0, padded_h - image.height})
                                           .mode(torch::kReplicate));
  }
  input = input.to(device);

  log << "peaknas-worker denoise: " << image.width << "x" << image.height << ", tile " << tile
      << " (window " << window << ", overlap " << overlap << "), predicted window peak "
      << Mib(window_peak) << " + image " << Mib(held) << " of " << o.budget << "\n";
  const bool terminal = isatty(STDERR_FILENO) != 0;
  const auto start = Clock::now();
  const double megapixels = static_cast<double>(image.width) * image.height / 1e6;
  int last_percent = -1;
  const auto progress = [&](int done, int total) {
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const double fraction = static_cast<double>(done) / total;
    const int percent = static_cast<int>(100 * fraction);
    if (!terminal && percent / 10 == last_percent / 10 && done != total) return;
    last_percent = percent;
    char line[160];
    std::snprintf(line, sizeof line, "tiles %d/%d (%3d%%), %.2f MP/s, ETA %.0f s", done, total,
                  percent, megapixels * fraction / std::max(seconds, 1e-9),
                  seconds / fraction * (1 - fraction));
    log << (terminal ? "\r" : "") << "peaknas-worker denoise: " << line
        << (terminal && done != total ? "" : "\n") << std::flush;
  };
  PEAKNAS_ASSIGN_OR_RETURN(
      torch::Tensor result,
      ForwardTiled([&](const torch::Tensor& x) { return net->forward(x); }, input,
                   {.tile = tile, .overlap = overlap, .multiple = multiple}, progress));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // In place, then straight into the 8-bit image: no whole-image temporaries beyond `held`.
  input = torch::Tensor();
  result.clamp_(0, 1).mul_(255).round_();
  data::Image denoised(image.width, image.height);
  torch::from_blob(denoised.rgb.data(), {image.height, image.width, 3}, torch::kUInt8)
      .copy_(result
                 .index({0, torch::indexing::Slice(), torch::indexing::Slice(0, image.height),
                         torch::indexing::Slice(0, image.width)})
                 .permute({1, 2, 0}));
  PEAKNAS_RETURN_IF_ERROR(data::WritePng(o.out, denoised));

  // What the OS saw: the process's resident high-water mark (CPU).
  const std::int64_t process_peak =
      device.is_cpu() ? base::ProcKibField("/proc/self/status", "VmHWM") : 0;
  nlohmann::json report = {
      {"width", image.width},
      {"height", image.height},
      {"tile", tile},
      {"overlap", overlap},
      {"window", window},
      {"predicted_window_peak_bytes", window_peak},
      {"predicted_process_peak_bytes", calibrated ? held + window_process_peak : 0},
      {"process_peak_bytes", process_peak},
      {"image_buffer_bytes", held},
      {"budget_bytes", budget},
      {"seconds", seconds},
      {"megapixels_per_second", megapixels / std::max(seconds, 1e-9)},
      {"out", o.out}};
  out << report.dump() << "\n";
  return Status::Ok();
}

}  // namespace peaknas::worker
