// The SIDD sRGB dataset on disk (Abdelhamed, Lin and Brown, "A High-Quality Denoising Dataset
// for Smartphone Cameras", CVPR 2018), and anything written in its layout by make-data:
//
//   DIR/Data/<scene>/NOISY_SRGB_<k>.PNG   training pairs, as in SIDD-Small and SIDD-Medium
//   DIR/Data/<scene>/GT_SRGB_<k>.PNG      (e.g. 0001_001_S6_00100_00060_3200_L/…_010.PNG)
//   DIR/ValidationNoisyBlocksSrgb.mat     uint8 N×B×S×S×3, variable ValidationNoisyBlocksSrgb
//   DIR/ValidationGtBlocksSrgb.mat        same shape, variable ValidationGtBlocksSrgb
//
// Opening a dataset lists the training pairs and reads only their PNG headers (sizes are
// checked up front); pixels are decoded on demand with LoadTrainingPair, so SIDD-Medium
// (320 pairs of ~12-megapixel images, ~35 GB decoded) never has to fit in memory — the patch
// sampler keeps a bounded working set. The validation blocks are read eagerly (real SIDD:
// 2 × 251 MB).
//
// Thread-safety: OpenSiddDataset and LoadTrainingPair are pure functions; a SiddDataset is a
// value, safe to read from several threads.
#ifndef PEAKNAS_WORKER_DATA_SIDD_H_
#define PEAKNAS_WORKER_DATA_SIDD_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "worker/data/image.h"
#include "worker/data/mat.h"

namespace peaknas::data {

inline constexpr char kValidationNoisyName[] = "ValidationNoisyBlocksSrgb";
inline constexpr char kValidationGtName[] = "ValidationGtBlocksSrgb";

// One noisy/ground-truth image pair of a training scene.
struct TrainingPair {
  std::string scene;       // the scene directory's name
  std::string noisy_path;  // …/NOISY_SRGB_<k>.PNG
  std::string clean_path;  // …/GT_SRGB_<k>.PNG
  int width = 0;           // from the PNG headers; both images have this size
  int height = 0;
};

struct SiddDataset {
  std::string dir;
  std::vector<TrainingPair> train;  // sorted by scene, then by <k>
  SiddBlocks val_noisy;             // empty when not read (see OpenSiddOptions)
  SiddBlocks val_clean;             // same shape as val_noisy
};

struct OpenSiddOptions {
  bool read_training = true;    // list Data/ and check the pairs' headers
  bool read_validation = true;  // read the two validation .mat files
};

// Opens DIR. Errors, each naming the offending path:
//   NOT_FOUND         DIR or DIR/Data does not exist, a validation .mat file is missing;
//   INVALID_ARGUMENT  DIR/Data holds no scene with NOISY_SRGB_*/GT_SRGB_* pairs; an image has
//                     no partner ("PATH: no matching GT_SRGB_010.PNG"); an image is not a
//                     PNG/JPEG; a pair's sizes differ; the .mat files' errors (see mat.h); the
//                     two .mat files' shapes differ.
// Scene directories without any SRGB image are skipped; other files are ignored. The
// extension match is case-insensitive (.PNG, .png).
StatusOr<SiddDataset> OpenSiddDataset(const std::string& dir, const OpenSiddOptions& options = {});

struct LoadedPair {
  Image noisy;
  Image clean;
};

// Decodes both images of a pair. ReadImage's errors, and INVALID_ARGUMENT naming both files
// when their sizes differ from each other or from the pair's recorded size.
StatusOr<LoadedPair> LoadTrainingPair(const TrainingPair& pair);

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_SIDD_H_
