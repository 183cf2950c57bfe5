// The synthetic-data generator behind `peaknas-worker make-data`: writes a dataset in SIDD's
// sRGB layout (see sidd.h), so that the real loaders are what every test and every local run
// exercises.
//
//   OUT/Data/NNNN_SYN/NOISY_SRGB_010.PNG, GT_SRGB_010.PNG, …_011.PNG, …  (training scenes)
//   OUT/ValidationNoisyBlocksSrgb.mat, OUT/ValidationGtBlocksSrgb.mat   (uint8 N×B×S×S×3)
//   OUT/peaknas-data.json                                               (what was generated)
//
// Clean images come from the dead-leaves model (dead_leaves.h, the default, no download) or
// from random crops of the PNG/JPEG files of a folder (`from_dir`); noise follows Brooks et
// al. 2019 (noise.h). Each training scene is one clean image seen by one simulated camera
// (one CCM, gains and noise level); its pairs are independent noise draws, so its GT images
// are identical, as SIDD-Medium's two captures per scene share a setting. Each validation
// image is one clean image and camera; its blocks are random crops of the same positions from
// the processed noisy and clean images, as SIDD's blocks are crops of full captures.
//
// The defaults are small so that tests and laptop runs take about a second: 8 scenes × 2
// pairs of 256×256, and 4 × 8 validation blocks of 64×64. Real SIDD validation is
// 40 × 32 blocks of 256×256 (val_images = 40, val_blocks = 32, block_size = 256).
//
// Deterministic: the output's bytes are a function of the options (seed included; and of the
// source files with from_dir). Each scene and validation image draws from its own stream
// derived from the seed.
//
// The output directory: created if missing; used if empty; if it holds peaknas-data.json
// from an earlier make-data, that generation's files (Data/, the two .mat files, the
// manifest) are removed and rewritten, and other files are left alone; any other non-empty
// directory is refused (FAILED_PRECONDITION), so a typo cannot overwrite real data.
//
// Scenes and validation images are generated on `threads` threads; the output does not
// depend on the thread count.
//
// Thread-safety: MakeSiddLikeDataset may run concurrently for different output directories.
// The progress callback is called from the generator's threads, one call at a time.
#ifndef PEAKNAS_WORKER_DATA_MAKE_DATA_H_
#define PEAKNAS_WORKER_DATA_MAKE_DATA_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "worker/data/dead_leaves.h"
#include "worker/data/noise.h"

namespace peaknas::data {

inline constexpr char kManifestName[] = "peaknas-data.json";

struct MakeDataProgress {
  std::string_view stage;  // "scenes", "validation", "writing"
  int done = 0;            // units of `stage` finished
  int total = 0;
};

struct MakeDataOptions {
  std::string out_dir{};    // required
  std::string from_dir{};   // folder of PNG/JPEG clean images; empty: dead-leaves
  int scenes = 8;           // training scenes, [1, 100000]
  int pairs_per_scene = 2;  // noisy/GT pairs per scene, [1, 990]
  int image_size = 256;     // training (and validation source) images are square, [16, 16384]
  int val_images = 4;       // validation images, [1, 100000]
  int val_blocks = 8;       // blocks per validation image, [1, 100000]
  int block_size = 64;      // validation block side, [11, image_size]
  std::uint64_t seed = 0;   // names the whole dataset
  NoiseOptions noise{};     // Brooks et al.'s noise-level distribution
  DeadLeavesOptions dead_leaves{};
  int threads = 0;  // worker threads; 0: one per hardware thread. Same bytes for any.
  // Called after every scene, every validation image, and each file written; may be empty.
  std::function<void(const MakeDataProgress&)> progress{};
};

// Writes the dataset. Errors: INVALID_ARGUMENT naming an option out of range, an unreadable
// source image, or a source image smaller than image_size ("PATH: 200x150 is smaller than
// 256x256"); NOT_FOUND for a missing from_dir or one without PNG/JPEG files;
// FAILED_PRECONDITION for a non-empty out_dir that is not an earlier generation; INTERNAL for
// I/O failures, naming the path.
Status MakeSiddLikeDataset(const MakeDataOptions& options);

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_MAKE_DATA_H_
