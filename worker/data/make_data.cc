#include "worker/data/make_data.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "worker/data/image.h"
#include "worker/data/mat.h"
#include "worker/data/random.h"
#include "worker/data/sidd.h"

namespace peaknas::data {
namespace fs = std::filesystem;
namespace {

// Independent random streams derived from the seed.
constexpr std::uint64_t kSceneStream = 0;                // + scene index
constexpr std::uint64_t kValidationStream = 1ULL << 32;  // + validation image index
constexpr std::uint64_t kContentStream = 2ULL << 32;     // + consumer index (scenes, then val)
constexpr std::uint64_t kSourceOrderStream = 3ULL << 32;

Status Validate(const MakeDataOptions& o) {
  if (o.out_dir.empty()) return Status::InvalidArgument("out_dir: must be given");
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("scenes", o.scenes, 1, 100000));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("pairs_per_scene", o.pairs_per_scene, 1, 990));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("image_size", o.image_size, 16, 16384));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("val_images", o.val_images, 1, 100000));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("val_blocks", o.val_blocks, 1, 100000));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("block_size", o.block_size, 11, o.image_size));
  if (!(o.noise.log_shot_min <= o.noise.log_shot_max) || !std::isfinite(o.noise.log_shot_min) ||
      !std::isfinite(o.noise.log_shot_max)) {
    return Status::InvalidArgument("noise.log_shot_min/max: need finite min <= max");
  }
  return Status::Ok();
}

bool IsImageFileName(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

StatusOr<std::vector<std::string>> ListSourceImages(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound(dir + ": no such image directory");
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && IsImageFileName(it->path())) {
      files.push_back(it->path().string());
    }
  }
  if (ec) return Status::Internal(dir + ": cannot list: " + ec.message());
  if (files.empty()) return Status::NotFound(dir + ": no .png, .jpg or .jpeg files");
  std::sort(files.begin(), files.end());
  return files;
}

// Creates or clears the output directory according to the policy in make_data.h.
Status PrepareOutputDir(const fs::path& out) {
  std::error_code ec;
  if (!fs::exists(out, ec)) {
    fs::create_directories(out, ec);
    if (ec) return Status::Internal(out.string() + ": cannot create directory: " + ec.message());
    return Status::Ok();
  }
  if (!fs::is_directory(out, ec)) {
    return Status::FailedPrecondition(out.string() + ": exists and is not a directory");
  }
  if (fs::is_empty(out, ec)) return Status::Ok();
  if (!fs::exists(out / kManifestName, ec)) {
    return Status::FailedPrecondition(
        out.string() + ": exists, is not empty and holds no " + kManifestName +
        " from an earlier make-data; refusing to overwrite (choose a new or empty directory)");
  }
  for (const fs::path& generated :
       {out / "Data", out / (std::string(kValidationNoisyName) + ".mat"),
        out / (std::string(kValidationGtName) + ".mat"), out / kManifestName}) {
    fs::remove_all(generated, ec);
    if (ec) return Status::Internal(generated.string() + ": cannot remove: " + ec.message());
  }
  return Status::Ok();
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

struct SceneRecord {
  std::string name;
  double shot_noise;
  double read_noise;
};

Status WriteManifest(const fs::path& out, const MakeDataOptions& o, bool complete,
                     const std::vector<SceneRecord>& scenes) {
  std::string json = "{\n";
  json += "  \"generator\": \"peaknas make-data\",\n";
  json += "  \"format_version\": 1,\n";
  json += std::string("  \"complete\": ") + (complete ? "true" : "false") + ",\n";
  json += "  \"seed\": " + std::to_string(o.seed) + ",\n";
  json += "  \"source\": " + JsonString(o.from_dir.empty() ? "dead-leaves" : o.from_dir) + ",\n";
  json += "  \"noise_model\": \"Brooks et al. 2019, unprocess + shot/read noise, no mosaic\",\n";
  json += "  \"log_shot_range\": [" + JsonNumber(o.noise.log_shot_min) + ", " +
          JsonNumber(o.noise.log_shot_max) + "],\n";
  json += "  \"scenes\": " + std::to_string(o.scenes) + ",\n";
  json += "  \"pairs_per_scene\": " + std::to_string(o.pairs_per_scene) + ",\n";
  json += "  \"image_size\": " + std::to_string(o.image_size) + ",\n";
  json += "  \"val_images\": " + std::to_string(o.val_images) + ",\n";
  json += "  \"val_blocks\": " + std::to_string(o.val_blocks) + ",\n";
  json += "  \"block_size\": " + std::to_string(o.block_size) + ",\n";
  json += "  \"scene_noise\": [";
  for (std::size_t i = 0; i < scenes.size(); ++i) {
    json += i == 0 ? "\n" : ",\n";
    json += "    {\"scene\": " + JsonString(scenes[i].name) +
            ", \"shot_noise\": " + JsonNumber(scenes[i].shot_noise) +
            ", \"read_noise\": " + JsonNumber(scenes[i].read_noise) + "}";
  }
  json += scenes.empty() ? "]\n}\n" : "\n  ]\n}\n";
  const fs::path path = out / kManifestName;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << json;
  file.close();
  if (!file) return Status::Internal(path.string() + ": cannot write");
  return Status::Ok();
}

Status CheckSourceSize(const std::string& path, int width, int height, int size) {
  if (width < size || height < size) {
    return Status::InvalidArgument(path + ": " + std::to_string(width) + "x" +
                                   std::to_string(height) + " is smaller than " +
                                   std::to_string(size) + "x" + std::to_string(size));
  }
  return Status::Ok();
}

// Supplies clean sRGB images of image_size², one per consumer (scenes first, then the
// validation images).
class CleanSource {
 public:
  static StatusOr<CleanSource> Create(const MakeDataOptions& o) {
    CleanSource source(o);
    if (!o.from_dir.empty()) {
      PEAKNAS_ASSIGN_OR_RETURN(source.files_, ListSourceImages(o.from_dir));
      // A seeded permutation of the files; consumer k takes order_[k mod n].
      Rng rng(Rng::DeriveSeed(o.seed, kSourceOrderStream));
      source.order_.resize(source.files_.size());
      for (std::size_t i = 0; i < source.order_.size(); ++i) source.order_[i] = i;
      for (std::size_t i = source.order_.size(); i > 1; --i) {
        std::swap(source.order_[i - 1], source.order_[rng.UniformInt(i)]);
      }
      // Check every file that will be used from its header, before anything is written.
      const std::size_t consumers =
          static_cast<std::size_t>(o.scenes) + static_cast<std::size_t>(o.val_images);
      const std::size_t used = std::min(consumers, source.files_.size());
      std::vector<std::size_t> indices(source.order_.begin(),
                                       source.order_.begin() + static_cast<std::ptrdiff_t>(used));
      std::sort(indices.begin(), indices.end());
      for (const std::size_t i : indices) {
        const std::string& path = source.files_[i];
        PEAKNAS_ASSIGN_OR_RETURN(const ImageSize size, ReadImageSize(path));
        PEAKNAS_RETURN_IF_ERROR(CheckSourceSize(path, size.width, size.height, o.image_size));
      }
    }
    return source;
  }

  StatusOr<Image> Get(std::uint64_t consumer) const {
    const std::uint64_t seed = Rng::DeriveSeed(options_.seed, kContentStream + consumer);
    const int size = options_.image_size;
    if (files_.empty()) return DeadLeavesImage(size, size, seed, options_.dead_leaves);
    const std::string& path = files_[order_[consumer % order_.size()]];
    PEAKNAS_ASSIGN_OR_RETURN(Image image, ReadImage(path));
    PEAKNAS_RETURN_IF_ERROR(CheckSourceSize(path, image.width, image.height, size));
    Rng rng(seed);
    const int x =
        static_cast<int>(rng.UniformInt(static_cast<std::uint64_t>(image.width - size + 1)));
    const int y =
        static_cast<int>(rng.UniformInt(static_cast<std::uint64_t>(image.height - size + 1)));
    return Crop(image, x, y, size, size);
  }

 private:
  explicit CleanSource(const MakeDataOptions& o) : options_(o) {}
  const MakeDataOptions& options_;
  std::vector<std::string> files_;
  std::vector<std::size_t> order_;
};

std::string SceneName(int index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d_SYN", index + 1);
  return buf;
}

std::string PairFileName(const char* prefix, int pair) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%03d.PNG", prefix, 10 + pair);  // SIDD numbers from 010
  return buf;
}

// Runs fn(0) … fn(n − 1) on up to `threads` threads and returns the error of the lowest
// index that failed (the same error a sequential loop would return); after a failure, indices
// not yet started are skipped.
Status ParallelFor(int n, int threads, const std::function<Status(int)>& fn) {
  std::vector<Status> statuses(static_cast<std::size_t>(n));
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (int i = next++; i < n && !failed; i = next++) {
      statuses[static_cast<std::size_t>(i)] = fn(i);
      if (!statuses[static_cast<std::size_t>(i)].ok()) failed = true;
    }
  };
  const int count = std::clamp(threads, 1, n);
  std::vector<std::thread> pool;
  for (int t = 1; t < count; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (Status& status : statuses) {
    if (!status.ok()) return std::move(status);
  }
  return Status::Ok();
}

// Serializes progress callbacks from worker threads; `done` counts up by one per call.
class ProgressReporter {
 public:
  ProgressReporter(const MakeDataOptions& o, std::string_view stage, int total)
      : options_(o), stage_(stage), total_(total) {}
  void Step() {
    if (!options_.progress) return;
    std::lock_guard<std::mutex> lock(mutex_);
    options_.progress(MakeDataProgress{stage_, ++done_, total_});
  }

 private:
  const MakeDataOptions& options_;
  std::string_view stage_;
  int total_;
  std::mutex mutex_;
  int done_ = 0;  // guarded by mutex_
};

}  // namespace

Status MakeSiddLikeDataset(const MakeDataOptions& options) {
  PEAKNAS_RETURN_IF_ERROR(Validate(options));
  PEAKNAS_ASSIGN_OR_RETURN(const CleanSource source, CleanSource::Create(options));
  const fs::path out(options.out_dir);
  PEAKNAS_RETURN_IF_ERROR(PrepareOutputDir(out));
  PEAKNAS_RETURN_IF_ERROR(WriteManifest(out, options, /*complete=*/false, {}));
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  // Training scenes. Each scene's bytes depend only on (seed, scene index).
  std::vector<SceneRecord> records(static_cast<std::size_t>(options.scenes));
  ProgressReporter scene_progress(options, "scenes", options.scenes);
  PEAKNAS_RETURN_IF_ERROR(ParallelFor(options.scenes, threads, [&](int s) -> Status {
    Rng rng(Rng::DeriveSeed(options.seed, kSceneStream + static_cast<std::uint64_t>(s)));
    PEAKNAS_ASSIGN_OR_RETURN(const Image clean, source.Get(static_cast<std::uint64_t>(s)));
    const CameraModel camera = SampleCameraModel(rng, options.noise);
    const std::string name = SceneName(s);
    const fs::path scene_dir = out / "Data" / name;
    std::error_code ec;
    fs::create_directories(scene_dir, ec);
    if (ec) return Status::Internal(scene_dir.string() + ": cannot create: " + ec.message());
    const NoisyCaptures captures = SimulateCaptures(clean, camera, rng, options.pairs_per_scene);
    const fs::path first_gt = scene_dir / PairFileName("GT_SRGB_", 0);
    PEAKNAS_RETURN_IF_ERROR(WritePng(first_gt.string(), captures.clean));
    for (int k = 0; k < options.pairs_per_scene; ++k) {
      PEAKNAS_RETURN_IF_ERROR(WritePng((scene_dir / PairFileName("NOISY_SRGB_", k)).string(),
                                       captures.noisy[static_cast<std::size_t>(k)]));
      if (k == 0) continue;
      // The scene's GT images are identical: encode once, copy the bytes.
      const fs::path gt = scene_dir / PairFileName("GT_SRGB_", k);
      fs::copy_file(first_gt, gt, fs::copy_options::overwrite_existing, ec);
      if (ec) return Status::Internal(gt.string() + ": cannot write: " + ec.message());
    }
    records[static_cast<std::size_t>(s)] = {name, camera.shot_noise, camera.read_noise};
    scene_progress.Step();
    return Status::Ok();
  }));

  // Validation blocks; image v fills blocks [v · val_blocks, (v + 1) · val_blocks).
  SiddBlocks noisy, clean;
  for (SiddBlocks* blocks : {&noisy, &clean}) {
    blocks->num_images = options.val_images;
    blocks->blocks_per_image = options.val_blocks;
    blocks->block_size = options.block_size;
    blocks->data.resize(blocks->num_blocks() * blocks->block_bytes());
  }
  const int size = options.image_size, bs = options.block_size;
  ProgressReporter val_progress(options, "validation", options.val_images);
  PEAKNAS_RETURN_IF_ERROR(ParallelFor(options.val_images, threads, [&](int v) -> Status {
    Rng rng(Rng::DeriveSeed(options.seed, kValidationStream + static_cast<std::uint64_t>(v)));
    PEAKNAS_ASSIGN_OR_RETURN(
        const Image source_image,
        source.Get(static_cast<std::uint64_t>(options.scenes) + static_cast<std::uint64_t>(v)));
    const CameraModel camera = SampleCameraModel(rng, options.noise);
    const NoisyPair pair = SimulateCapture(source_image, camera, rng);
    for (int b = 0; b < options.val_blocks; ++b) {
      const int x = static_cast<int>(rng.UniformInt(static_cast<std::uint64_t>(size - bs + 1)));
      const int y = static_cast<int>(rng.UniformInt(static_cast<std::uint64_t>(size - bs + 1)));
      const std::size_t index = static_cast<std::size_t>(v) * options.val_blocks + b;
      const Image noisy_block = Crop(pair.noisy, x, y, bs, bs);
      const Image clean_block = Crop(pair.clean, x, y, bs, bs);
      std::copy(noisy_block.rgb.begin(), noisy_block.rgb.end(), noisy.block(index));
      std::copy(clean_block.rgb.begin(), clean_block.rgb.end(), clean.block(index));
    }
    val_progress.Step();
    return Status::Ok();
  }));

  ProgressReporter write_progress(options, "writing", 2);
  PEAKNAS_RETURN_IF_ERROR(WriteSiddBlocks(
      (out / (std::string(kValidationNoisyName) + ".mat")).string(), kValidationNoisyName, noisy));
  write_progress.Step();
  PEAKNAS_RETURN_IF_ERROR(WriteSiddBlocks(
      (out / (std::string(kValidationGtName) + ".mat")).string(), kValidationGtName, clean));
  write_progress.Step();
  return WriteManifest(out, options, /*complete=*/true, records);
}

}  // namespace peaknas::data
