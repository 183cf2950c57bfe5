#include "worker/data/sidd.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <system_error>

namespace peaknas::data {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kNoisyPrefix = "NOISY_SRGB_";
constexpr std::string_view kCleanPrefix = "GT_SRGB_";

bool HasPngExtension(const std::string& name) {
  if (name.size() < 4) return false;
  std::string ext = name.substr(name.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png";
}

std::string SizeText(int w, int h) { return std::to_string(w) + "x" + std::to_string(h); }

struct Partners {
  std::string noisy;  // file names inside the scene directory
  std::string clean;
};

Status ListScene(const fs::path& scene_dir, std::vector<TrainingPair>* pairs) {
  std::map<std::string, Partners> by_suffix;  // key "<k>.PNG"
  std::error_code ec;
  for (fs::directory_iterator it(scene_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    if (!HasPngExtension(name)) continue;
    if (name.starts_with(kNoisyPrefix)) {
      by_suffix[name.substr(kNoisyPrefix.size())].noisy = name;
    } else if (name.starts_with(kCleanPrefix)) {
      by_suffix[name.substr(kCleanPrefix.size())].clean = name;
    }
  }
  if (ec) return Status::Internal(scene_dir.string() + ": cannot list: " + ec.message());
  for (const auto& [suffix, partners] : by_suffix) {
    if (partners.clean.empty()) {
      return Status::InvalidArgument((scene_dir / partners.noisy).string() + ": no matching " +
                                     std::string(kCleanPrefix) + suffix);
    }
    if (partners.noisy.empty()) {
      return Status::InvalidArgument((scene_dir / partners.clean).string() + ": no matching " +
                                     std::string(kNoisyPrefix) + suffix);
    }
    TrainingPair pair;
    pair.scene = scene_dir.filename().string();
    pair.noisy_path = (scene_dir / partners.noisy).string();
    pair.clean_path = (scene_dir / partners.clean).string();
    PEAKNAS_ASSIGN_OR_RETURN(const ImageSize noisy_size, ReadImageSize(pair.noisy_path));
    PEAKNAS_ASSIGN_OR_RETURN(const ImageSize clean_size, ReadImageSize(pair.clean_path));
    if (!(noisy_size == clean_size)) {
      return Status::InvalidArgument(pair.noisy_path + ": size " +
                                     SizeText(noisy_size.width, noisy_size.height) +
                                     " differs from " + pair.clean_path + " (" +
                                     SizeText(clean_size.width, clean_size.height) + ")");
    }
    pair.width = noisy_size.width;
    pair.height = noisy_size.height;
    pairs->push_back(std::move(pair));
  }
  return Status::Ok();
}

Status ListTraining(const fs::path& root, std::vector<TrainingPair>* pairs) {
  const fs::path data_dir = root / "Data";
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) {
    return Status::NotFound(data_dir.string() + ": no such directory (expected Data/<scene>/" +
                            "NOISY_SRGB_*.PNG and GT_SRGB_*.PNG)");
  }
  std::vector<fs::path> scenes;
  for (fs::directory_iterator it(data_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) scenes.push_back(it->path());
  }
  if (ec) return Status::Internal(data_dir.string() + ": cannot list: " + ec.message());
  std::sort(scenes.begin(), scenes.end());
  for (const fs::path& scene : scenes) PEAKNAS_RETURN_IF_ERROR(ListScene(scene, pairs));
  if (pairs->empty()) {
    return Status::InvalidArgument(data_dir.string() +
                                   ": no scenes with NOISY_SRGB_*.PNG / GT_SRGB_*.PNG pairs");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<SiddDataset> OpenSiddDataset(const std::string& dir, const OpenSiddOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound(dir + ": no such dataset directory");
  }
  SiddDataset dataset;
  dataset.dir = dir;
  const fs::path root(dir);
  if (options.read_training) PEAKNAS_RETURN_IF_ERROR(ListTraining(root, &dataset.train));
  if (options.read_validation) {
    const std::string noisy_path = (root / (std::string(kValidationNoisyName) + ".mat")).string();
    const std::string clean_path = (root / (std::string(kValidationGtName) + ".mat")).string();
    PEAKNAS_ASSIGN_OR_RETURN(dataset.val_noisy, ReadSiddBlocks(noisy_path, kValidationNoisyName));
    PEAKNAS_ASSIGN_OR_RETURN(dataset.val_clean, ReadSiddBlocks(clean_path, kValidationGtName));
    const SiddBlocks& a = dataset.val_noisy;
    const SiddBlocks& b = dataset.val_clean;
    if (a.num_images != b.num_images || a.blocks_per_image != b.blocks_per_image ||
        a.block_size != b.block_size) {
      auto shape = [](const SiddBlocks& s) {
        return FormatDims(
            {static_cast<std::size_t>(s.num_images), static_cast<std::size_t>(s.blocks_per_image),
             static_cast<std::size_t>(s.block_size), static_cast<std::size_t>(s.block_size), 3});
      };
      return Status::InvalidArgument(noisy_path + ": shape " + shape(a) + " differs from " +
                                     clean_path + " (" + shape(b) + ")");
    }
  }
  return dataset;
}

StatusOr<LoadedPair> LoadTrainingPair(const TrainingPair& pair) {
  LoadedPair loaded;
  PEAKNAS_ASSIGN_OR_RETURN(loaded.noisy, ReadImage(pair.noisy_path));
  PEAKNAS_ASSIGN_OR_RETURN(loaded.clean, ReadImage(pair.clean_path));
  const bool same =
      loaded.noisy.width == loaded.clean.width && loaded.noisy.height == loaded.clean.height;
  const bool as_listed = loaded.noisy.width == pair.width && loaded.noisy.height == pair.height;
  if (!same || !as_listed) {
    return Status::InvalidArgument(
        pair.noisy_path + ": size " + SizeText(loaded.noisy.width, loaded.noisy.height) + ", " +
        pair.clean_path + ": size " + SizeText(loaded.clean.width, loaded.clean.height) +
        "; expected both " + SizeText(pair.width, pair.height));
  }
  return loaded;
}

}  // namespace peaknas::data
