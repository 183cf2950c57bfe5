// Training must denoise. A short run of a small U-Net on a seeded, generated SIDD-like dataset
// (read by the real loaders) must beat the noisy input by a clear PSNR margin on the
// validation blocks, with its loss falling. This is RunTrial end to end — data, training,
// evaluation, measurements — so a broken link anywhere in that chain fails it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <vector>

#include "search/architecture.h"
#include "worker/counting_allocator.h"
#include "worker/data/make_data.h"
#include "worker/data/test_util.h"
#include "worker/trial.h"

namespace peaknas::worker {
namespace {

using data::testing::ScopedTempDir;

// The asserted margin. Measured with this exact setup on 2 CPU cores: +2.5 dB (the run prints
// its figures); 300 steps on 8 scenes gave +2.1 dB, 1000 steps +2.5 dB, so the gain is not a
// fluke of one setting, and a broken data, training or evaluation path loses it entirely (an
// untrained net scores about the noisy input or worse).
constexpr double kMinPsnrGainDb = 2.0;

TEST(Quality, ShortTrainingBeatsTheNoisyInput) {
  CpuAllocationCounter::Install();
  ScopedTempDir dir;
  data::MakeDataOptions made;
  made.out_dir = dir.Sub("data");
  made.scenes = 32;
  made.pairs_per_scene = 2;
  made.image_size = 128;
  made.val_images = 4;
  made.val_blocks = 8;
  made.block_size = 64;
  made.seed = 2024;
  ASSERT_TRUE(data::MakeSiddLikeDataset(made).ok());

  const std::vector<int> widths = {16, 32}, enc = {1, 1}, dec = {1};
  auto arch = search::MakeArchitecture(
      widths, enc, dec, search::SkipKind::kConcat, search::UpsampleKind::kTransposed,
      search::DownsampleKind::kStrided, search::ActivationKind::kRelu);
  ASSERT_TRUE(arch.ok());
  TrialSpec spec;
  spec.arch = *arch;
  spec.data_dir = made.out_dir;
  spec.train_shape = {.batch = 8, .size = 48};
  spec.tile = {.batch = 1, .size = 64};
  spec.steps = 600;
  spec.learning_rate = 2e-3;
  spec.seed = 1;
  spec.progress_every = 50;
  spec.latency_runs = 3;

  const auto start = std::chrono::steady_clock::now();
  const StatusOr<TrialResult> result = RunTrial(spec);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const TrialResult& r = *result;
  const double gain = r.scores.psnr - r.noisy.psnr;
  std::printf(
      "noisy %.3f dB, denoised %.3f dB, gain %.3f dB (asserted >= %.1f); ssim %.4f -> "
      "%.4f; loss %.5f -> %.5f; %.1f steps/s; %.1f s in all\n",
      r.noisy.psnr, r.scores.psnr, gain, kMinPsnrGainDb, r.noisy.ssim, r.scores.ssim,
      r.initial_loss, r.final_loss, r.train_steps_per_s, seconds);
  EXPECT_GE(gain, kMinPsnrGainDb);
  EXPECT_GT(r.scores.ssim, r.noisy.ssim);
  EXPECT_LT(r.final_loss, r.initial_loss);
  EXPECT_EQ(r.scores.blocks, 32u);
  // The measurements beside it hold the cost model's contract (fp32).
  EXPECT_LE(r.measured_inference_peak_bytes, r.predicted_inference_peak_bytes);
  EXPECT_LE(r.measured_train_peak_bytes, r.predicted_train_peak_bytes);
}

}  // namespace
}  // namespace peaknas::worker
