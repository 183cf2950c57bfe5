#include "worker/make_data_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>

namespace peaknas::worker {
namespace {

using Clock = std::chrono::steady_clock;

// The generator names its options as in data::MakeDataOptions; say the flag instead.
std::string FlagMessage(const std::string& message) {
  static constexpr std::pair<std::string_view, std::string_view> kFlags[] = {
      {"out_dir", "out"},           {"from_dir", "from"},
      {"image_size", "size"},       {"pairs_per_scene", "pairs-per-scene"},
      {"val_images", "val-images"}, {"val_blocks", "val-blocks"},
      {"block_size", "block-size"},
  };
  for (const auto& [field, flag] : kFlags) {
    const std::string prefix = std::string(field) + ":";
    if (message.rfind(prefix, 0) == 0) return std::string(flag) + message.substr(field.size());
  }
  return message;
}

constexpr const char* kDescription =
    "Write a synthetic denoising dataset in SIDD's sRGB layout: noisy/clean training pairs and "
    "validation blocks, with realistic camera noise (unprocessed to linear RAW, shot and read "
    "noise at SIDD-fitted levels, processed back to sRGB).";

constexpr const char* kFooter =
    "Layout (what `peaknas-worker once --data DIR` and the SIDD loaders read):\n"
    "  DIR/Data/NNNN_SYN/NOISY_SRGB_010.PNG, GT_SRGB_010.PNG, ...   training pairs\n"
    "  DIR/ValidationNoisyBlocksSrgb.mat, DIR/ValidationGtBlocksSrgb.mat\n"
    "      MATLAB v5 uint8 arrays of val-images x val-blocks x block-size x block-size x 3\n"
    "  DIR/peaknas-data.json                                          what was generated\n"
    "\n"
    "Clean images are procedural dead-leaves images, or random crops of the PNG/JPEG files of\n"
    "--from. The output is a function of the flags (and of the --from files): the same seed\n"
    "gives the same bytes on any machine and thread count. DIR is created if missing; an\n"
    "earlier make-data output in DIR is replaced; any other non-empty DIR is refused.\n"
    "Real SIDD validation is --val-images 40 --val-blocks 32 --block-size 256.\n"
    "\n"
    "Examples:\n"
    "  peaknas-worker make-data --out /tmp/syn\n"
    "  peaknas-worker make-data --out /tmp/syn --scenes 64 --size 512 --seed 7\n"
    "  peaknas-worker make-data --out /tmp/photos-noisy --from ~/Pictures --scenes 100\n"
    "\n"
    "Progress goes to stderr, a one-line summary to stdout. Exit status: 0 on success; 1 for a\n"
    "flag out of range or a file problem; 2 for a command-line usage error.";

}  // namespace

CLI::App* AddMakeDataCommand(CLI::App& root, data::MakeDataOptions& options) {
  CLI::App* cmd = root.add_subcommand("make-data", kDescription);
  cmd->footer(kFooter);
  cmd->add_option("--out", options.out_dir, "Output directory; created if missing. Required.")
      ->required()
      ->type_name("DIR");
  cmd->add_option("--from", options.from_dir,
                  "Folder of PNG/JPEG clean images to crop from instead of dead-leaves images; "
                  "each must be at least --size pixels on each side. Default: none "
                  "(dead-leaves).")
      ->type_name("IMAGE_DIR");
  cmd->add_option("--scenes", options.scenes,
                  "Training scenes (one clean image and simulated camera each), in [1, 100000].")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--pairs-per-scene", options.pairs_per_scene,
                  "Noisy/clean pairs per scene (independent noise draws), in [1, 990].")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--size", options.image_size,
                  "Side of the square training images (and of the validation source images), "
                  "in [16, 16384].")
      ->type_name("PIXELS")
      ->capture_default_str();
  cmd->add_option("--val-images", options.val_images,
                  "Validation images (one clean image and camera each), in [1, 100000].")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--val-blocks", options.val_blocks,
                  "Validation blocks cropped from each validation image, in [1, 100000].")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--block-size", options.block_size,
                  "Side of the square validation blocks, in [11, --size]. A U-Net of L levels "
                  "evaluates blocks whose side is a multiple of 2^(L-1).")
      ->type_name("PIXELS")
      ->capture_default_str();
  cmd->add_option("--seed", options.seed, "Seed that names the whole dataset.")
      ->type_name("S")
      ->capture_default_str();
  cmd->add_option("--threads", options.threads,
                  "Generator threads; 0: one per hardware thread. The output does not depend "
                  "on it.")
      ->type_name("N")
      ->capture_default_str();
  return cmd;
}

Status RunMakeData(const data::MakeDataOptions& options, std::ostream& out,
                   std::ostream& progress) {
  data::MakeDataOptions o = options;
  // Calls come one at a time (make_data.h); a line per stage at most every half second, and
  // its last.
  std::string last_stage;
  Clock::time_point last_line{};
  o.progress = [&](const data::MakeDataProgress& p) {
    const auto now = Clock::now();
    const bool stage_done = p.done == p.total;
    if (p.stage == last_stage && !stage_done && now - last_line < std::chrono::milliseconds(500)) {
      return;
    }
    last_stage = std::string(p.stage);
    last_line = now;
    progress << "make-data: " << p.stage << " " << p.done << "/" << p.total << '\n';
    progress.flush();
  };
  const Status status = data::MakeSiddLikeDataset(o);
  if (!status.ok()) return Status(status.code(), FlagMessage(status.message()));
  out << "wrote " << o.out_dir << ": " << o.scenes << " scenes x " << o.pairs_per_scene
      << " pairs of " << o.image_size << "x" << o.image_size << ", " << o.val_images << " x "
      << o.val_blocks << " validation blocks of " << o.block_size << "x" << o.block_size
      << " (seed " << o.seed << ")\n";
  out.flush();
  return Status::Ok();
}

}  // namespace peaknas::worker
