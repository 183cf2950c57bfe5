#include "worker/denoise_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/proc.h"
#include "base/temp_dir.h"
#include "peaknas/v1/peaknas.grpc.pb.h"
#include "proto/artifact.h"
#include "proto/calibration_file.h"
#include "proto/channel.h"
#include "proto/convert.h"
#include "search/calibration.h"
#include "search/tiling.h"
#include "search/units.h"
#include "worker/data/raster.h"
#include "worker/huge_page_blocks.h"
#include "worker/inherit.h"
#include "worker/malloc_tuning.h"
#include "worker/measure.h"
#include "worker/streamed.h"
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

// The model of --job/--trial from the coordinator, into `path`.
Status FetchModel(const DenoiseOptions& o, const std::string& path, std::ostream& log) {
  const std::string address = o.coordinator.empty() ? proto::kDefaultCoordinator : o.coordinator;
  PEAKNAS_ASSIGN_OR_RETURN(const proto::ClientSecurity security,
                           proto::ReadClientSecurity({.token_file = o.token_file,
                                                      .tls_ca = o.tls_ca,
                                                      .tls_cert = o.tls_cert,
                                                      .tls_key = o.tls_key}));
  auto stub = v1::JobService::NewStub(proto::CoordinatorChannel(address, security));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  const auto start = Clock::now();
  const proto::ArtifactDownload d = proto::DownloadArtifact(*stub, context, o.job, o.trial, path);
  if (!d.rpc.ok()) {
    const std::string what =
        "job " + o.job + " trial " + o.trial + ": the coordinator at " + address + " ";
    switch (d.rpc.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        return Status::Unavailable(what + "is not reachable (" + d.rpc.error_message() + ")");
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return Status(StatusCode::kDeadlineExceeded, what + "did not send the model in time");
      default:
        return Status(static_cast<StatusCode>(static_cast<int>(d.rpc.error_code())),
                      what + "answered: " + d.rpc.error_message());
    }
  }
  PEAKNAS_RETURN_IF_ERROR(d.status);
  log << "denoise: fetched the model of job " << o.job << " trial " << o.trial << " from "
      << address << " (" << Mib(d.bytes) << " in "
      << std::chrono::duration<double>(Clock::now() - start).count() << " s)\n";
  return Status::Ok();
}

}  // namespace

CLI::App* AddDenoiseCommand(CLI::App& root, DenoiseOptions& o) {
  CLI::App* cmd = root.add_subcommand(
      "denoise",
      "Denoise an image of any size with a trained model, tile by tile within a memory budget. "
      "Tiles overlap by the network's receptive-field radius, so the result equals the "
      "whole-image output; the tile is the largest whose predicted peak fits the budget.");
  CLI::Option* model =
      cmd->add_option("--model", o.model,
                      "The trained model: a TorchScript file from `peaknas export` or a worker's "
                      "--export (its `architecture` attribute names the network). Required "
                      "unless --job and --trial name one on a coordinator.")
          ->type_name("FILE");
  cmd->add_option("--job", o.job,
                  "With --trial: denoise with this job's trained model of that trial (a "
                  "frontier point of `peaknas frontier`), fetched from --coordinator.")
      ->type_name("JOB")
      ->excludes(model);
  cmd->add_option("--trial", o.trial, "The trial whose model --job fetches.")
      ->type_name("TRIAL")
      ->excludes(model);
  cmd->add_option("--coordinator", o.coordinator,
                  "Address of peaknas-server, HOST:PORT, for --job (also from "
                  "$PEAKNAS_COORDINATOR; else 127.0.0.1:50051).")
      ->envname(proto::kCoordinatorEnv)
      ->type_name("ADDR");
  cmd->add_option("--token-file", o.token_file,
                  "For --job: a file holding a bearer token for a coordinator that checks "
                  "callers (else $PEAKNAS_TOKEN; else none).")
      ->type_name("FILE");
  cmd->add_option("--tls-ca", o.tls_ca,
                  "For --job: talk TLS, the CA bundle (PEM) the coordinator's certificate must "
                  "chain to (else $PEAKNAS_TLS_CA; else plaintext).")
      ->type_name("FILE");
  cmd->add_option("--tls-cert", o.tls_cert,
                  "For --job: a client certificate (PEM), for a coordinator that requires one "
                  "(else $PEAKNAS_TLS_CERT).")
      ->type_name("FILE");
  cmd->add_option("--tls-key", o.tls_key,
                  "For --job: the client certificate's private key (PEM) (else $PEAKNAS_TLS_KEY).")
      ->type_name("FILE");
  cmd->add_option("--in", o.in,
                  "The noisy image: PNG (1 to 16 bits, not interlaced), TIFF (8 or 16 bits, in "
                  "strips) or JPEG, grey or colour; read in bands. Required.")
      ->required()
      ->type_name("IMAGE");
  cmd->add_option("--out", o.out,
                  "Where the denoised image goes: .png or .tif/.tiff (RGB), written in bands "
                  "through OUT.part. Required.")
      ->required()
      ->type_name("IMAGE");
  cmd->add_option("--budget", o.budget,
                  "Memory the run may hold: the image rows in flight and the codecs' buffers "
                  "plus one window's inference peak (e.g. 512MiB). Required.")
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
  cmd->add_option("--bits", o.bits, "Output samples: auto (the input's depth), 8 or 16.")
      ->capture_default_str()
      ->type_name("auto|8|16");
  cmd->add_option("--allocator", o.allocator,
                  "mapped: the network's tensors go in one arena of huge pages the size of a "
                  "window's predicted peak, and other large blocks get mappings of their own, "
                  "so the process holds what the budget counts; heap: glibc's heap keeps freed "
                  "memory, and the process may hold more than predicted by how it fragments.")
      ->capture_default_str()
      ->type_name("mapped|heap");
  cmd->add_option("--layout", o.layout,
                  "The memory format the network runs in: auto (channels-last on the CPU unless "
                  "the network upsamples by transposed convolutions; else contiguous), "
                  "channels-last (oneDNN convolves the layers' tensors as "
                  "they are; a window is given 1.2x its contiguous prediction) or contiguous "
                  "(NCHW, the cost model's own layout).")
      ->capture_default_str()
      ->type_name("auto|channels-last|contiguous");
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
  if (o.bits != "auto" && o.bits != "8" && o.bits != "16") {
    return Status::InvalidArgument("bits: \"" + o.bits + "\" is not auto, 8 or 16");
  }
  if (o.allocator != "mapped" && o.allocator != "heap") {
    return Status::InvalidArgument("allocator: \"" + o.allocator + "\" is not mapped or heap");
  }
  if (o.layout != "auto" && o.layout != "channels-last" && o.layout != "contiguous") {
    return Status::InvalidArgument("layout: \"" + o.layout +
                                   "\" is not auto, channels-last or contiguous");
  }
  if (o.threads < 0) return Status::InvalidArgument("threads: must be >= 0");
  PEAKNAS_ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(o.device, "device"));
  if (o.threads > 0) torch::set_num_threads(o.threads);

  std::optional<base::TempDir> fetched_dir;
  std::string model_path = o.model;
  if (model_path.empty()) {
    if (o.job.empty() || o.trial.empty()) {
      return Status::InvalidArgument(
          "model: give --model FILE, or --job J and --trial T to fetch a trial's model from "
          "--coordinator");
    }
    fetched_dir.emplace("peaknas-denoise");
    if (!fetched_dir->ok()) {
      return Status::Internal("cannot make a directory for the fetched model under " +
                              std::filesystem::temp_directory_path().string());
    }
    model_path = (fetched_dir->path() / (o.trial + ".pt")).string();
    PEAKNAS_RETURN_IF_ERROR(FetchModel(o, model_path, log));
  }
  PEAKNAS_ASSIGN_OR_RETURN(const LoadedModel model, LoadModel(model_path));
  const search::Architecture& arch = model.arch;
  const torch::MemoryFormat layout = o.layout == "auto" ? InferenceLayout(arch, device)
                                     : o.layout == "channels-last"
                                         ? torch::MemoryFormat::ChannelsLast
                                         : torch::MemoryFormat::Contiguous;
  const bool channels_last = layout == torch::MemoryFormat::ChannelsLast;
  const int multiple = search::SpatialMultiple(arch);
  const int overlap =
      overlap_flag == 0 && o.overlap == "auto" ? search::SeamFreeOverlap(arch) : overlap_flag;
  if (overlap % multiple != 0) {
    return Status::InvalidArgument("overlap: " + std::to_string(overlap) +
                                   " is not a multiple of " + std::to_string(multiple) +
                                   " (2^(levels-1) for " + std::to_string(arch.levels) +
                                   " levels)");
  }
  if (tile_flag != 0 && tile_flag % multiple != 0) {
    return Status::InvalidArgument("tile: " + std::to_string(tile_flag) + " is not a multiple of " +
                                   std::to_string(multiple) + " (2^(levels-1) for " +
                                   std::to_string(arch.levels) + " levels)");
  }

  PEAKNAS_ASSIGN_OR_RETURN(std::unique_ptr<data::RasterReader> reader, data::OpenRaster(o.in));
  const data::RasterInfo in_info = reader->info();
  const int bits = o.bits == "auto" ? in_info.bits : std::stoi(o.bits);
  PEAKNAS_ASSIGN_OR_RETURN(std::unique_ptr<data::RasterWriter> writer,
                           data::CreateRaster(o.out, in_info.width, in_info.height, bits));
  const int padded_h = (in_info.height + multiple - 1) / multiple * multiple;
  const int padded_w = (in_info.width + multiple - 1) / multiple * multiple;
  const int image_side = std::max(padded_h, padded_w);

  const search::DeviceProfile profile = DeviceProfileFor(device);
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
  }
  // What a tile costs: the stream's rows and the codecs' buffers, and one window's inference
  // (through the calibration's fit when there is one). A channels-last window is given
  // kChannelsLastPeakFactor times the cost model's (contiguous) peak, which bounds it
  // (measure.h). A contiguous window's live tensors never exceed the cost model's peak, at any
  // thread count, but the arena places them first-fit: with more than one thread, the 1x1
  // convolutions run in oneDNN, whose blocked copies leave holes that an arena of exactly that
  // peak cannot always fill (`arena_misses` in the report counts the blocks it could not
  // hold), so it is given 15 % more then.
  const double window_factor = channels_last                  ? kChannelsLastPeakFactor
                               : torch::get_num_threads() > 1 ? 1.15
                                                              : 1.0;
  struct Cost {
    int window = 0;
    std::int64_t held = 0;
    std::int64_t window_peak = 0;   // the cost model's
    std::int64_t window_bytes = 0;  // times the layout's factor: the arena's size
    std::int64_t window_process_peak = 0;
    std::int64_t total() const { return held + window_process_peak; }
  };
  const auto cost_of = [&](int tile) {
    Cost c;
    c.window = std::min(tile + 2 * overlap, image_side);
    c.held = StreamBufferBytes(in_info.width, {tile, overlap, multiple}, device.is_cpu()) +
             reader->decoder_bytes() + writer->encoder_bytes();
    c.window_peak = search::InferencePeakBytes(arch, {1, c.window}, search::DType::kFp32, profile);
    c.window_bytes = static_cast<std::int64_t>(std::ceil(c.window_peak * window_factor));
    c.window_process_peak = calibrated ? calibrated->Predict(c.window_bytes) : c.window_bytes;
    return c;
  };
  int tile = tile_flag;
  if (tile == 0) {
    // The largest tile whose window alone fits what the smallest tile's rows leave; the rows
    // grow with the tile, so step down from there to the first that fits with them.
    const Cost smallest = cost_of(multiple);
    const std::int64_t network_budget = budget - smallest.held <= 0 ? 0
                                        : calibrated
                                            ? calibrated->LargestFitting(budget - smallest.held)
                                            : budget - smallest.held;
    const auto model_budget = static_cast<std::int64_t>(network_budget / window_factor);
    tile = model_budget > 0 ? search::MaxTiledOutputSide(arch, model_budget, overlap,
                                                         search::DType::kFp32, profile)
                            : 0;
    tile = std::min(tile, image_side);
    while (tile >= multiple && cost_of(tile).total() > budget) tile -= multiple;
    if (tile < multiple) {
      return Status::InvalidArgument(
          "budget: " + o.budget + " does not hold the smallest tile: " + Mib(smallest.held) +
          " of image rows and codec buffers for an image " + std::to_string(in_info.width) +
          " pixels wide, and one window of " + std::to_string(smallest.window) + " pixels (" +
          Mib(smallest.window_process_peak) + ")");
    }
  }
  const Cost cost = cost_of(tile);
  if (tile_flag != 0 && cost.total() > budget) {
    return Status::InvalidArgument("tile: " + std::to_string(tile) + " with overlap " +
                                   std::to_string(overlap) + " needs " + Mib(cost.total()) +
                                   ", over the budget of " + o.budget);
  }

  // "mapped": large blocks mapped on their own and returned when freed, so that the process's
  // resident set follows the live tensors, which the budget is about, instead of what the heap
  // happens to keep (worker/malloc_tuning.h); LibTorch's in an arena of huge pages the size of
  // the window's predicted peak, which keeps its pages from one window to the next
  // (worker/huge_page_blocks.h). "heap": the worker's kept heap (KeepFreedHeapMemory).
  std::optional<MappedLargeBlocks> mapped;
  if (o.allocator == "mapped") {
    mapped.emplace();
    InstallHugePageBlocks();
    PEAKNAS_RETURN_IF_ERROR(SetHugePageArena(static_cast<std::size_t>(cost.window_bytes)));
  }
  UNet net(arch);
  PEAKNAS_RETURN_IF_ERROR(AssignParameters(model.parameters, net));
  net->to(device);
  SetWeightLayout(net, layout);
  net->eval();

  log << "peaknas-worker denoise: " << in_info.width << "x" << in_info.height << " "
      << data::RasterFormatName(in_info.format) << " (" << in_info.bits << "-bit) -> " << o.out
      << " (" << bits << "-bit), tile " << tile << " (window " << cost.window << ", overlap "
      << overlap << "), " << LayoutName(layout) << ", predicted window peak "
      << Mib(cost.window_peak) << " + rows and codecs " << Mib(cost.held) << " of " << o.budget
      << "\n";
  const bool terminal = isatty(STDERR_FILENO) != 0;
  const auto start = Clock::now();
  const double megapixels = static_cast<double>(in_info.width) * in_info.height / 1e6;
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
      const StreamStats stats,
      DenoiseStream([&](const torch::Tensor& x) { return net->forward(x); }, *reader, *writer,
                    {.tile = tile, .overlap = overlap, .multiple = multiple, .layout = layout},
                    device, progress));

  // What the OS saw: the process's resident high-water mark (CPU).
  const std::int64_t process_peak =
      device.is_cpu() ? base::ProcKibField("/proc/self/status", "VmHWM") : 0;
  const nlohmann::json report = {
      {"width", in_info.width},
      {"height", in_info.height},
      {"in_format", data::RasterFormatName(in_info.format)},
      {"in_bits", in_info.bits},
      {"out_bits", bits},
      {"allocator", o.allocator},
      {"layout", LayoutName(layout)},
      {"tile", tile},
      {"overlap", overlap},
      {"window", cost.window},
      {"tiles", stats.tiles},
      {"predicted_window_peak_bytes", cost.window_peak},
      {"window_reserved_bytes", cost.window_bytes},
      {"predicted_process_peak_bytes", calibrated ? cost.total() : 0},
      {"process_peak_bytes", process_peak},
      {"image_buffer_bytes", cost.held},
      {"budget_bytes", budget},
      {"seconds", stats.seconds},
      {"network_seconds", stats.network_seconds},
      {"read_wait_seconds", stats.read_wait_seconds},
      {"write_wait_seconds", stats.write_wait_seconds},
      {"extra_rows", stats.extra_rows},
      {"arena_misses", o.allocator == "mapped" ? GetHugePageArenaStats().misses : 0},
      {"megapixels_per_second", megapixels / std::max(stats.seconds, 1e-9)},
      {"out", o.out}};
  out << report.dump() << "\n";
  return Status::Ok();
}

}  // namespace peaknas::worker
