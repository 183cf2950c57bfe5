#include "worker/data/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "worker/data/random.h"

namespace peaknas::data {
namespace {

TEST(PsnrTest, IdenticalImagesAreCapped) {
  const std::vector<float> a(300, 0.25f);
  EXPECT_EQ(Psnr(a.data(), a.data(), a.size()), kMaxPsnrDb);
  // Clamping to [0, 1] first: 1.5 and 1.0 are the same sample.
  const std::vector<float> over(300, 1.5f), one(300, 1.0f);
  EXPECT_EQ(Psnr(over.data(), one.data(), one.size()), kMaxPsnrDb);
}

TEST(PsnrTest, ConstantOffsetsGiveKnownValues) {
  const std::vector<float> a(3 * 16 * 16, 0.5f);
  const std::vector<float> b(a.size(), 0.625f);  // offset 0.125, exact in binary
  EXPECT_NEAR(Psnr(a.data(), b.data(), a.size()), 10.0 * std::log10(64.0), 1e-12);
  const std::vector<float> c(a.size(), 0.6f);  // offset 0.1 → 20 dB
  EXPECT_NEAR(Psnr(a.data(), c.data(), a.size()), 20.0, 1e-5);
  const std::vector<float> d(a.size(), 0.51f);  // offset 0.01 → 40 dB
  EXPECT_NEAR(Psnr(a.data(), d.data(), a.size()), 40.0, 1e-4);
}

// Reference value from scikit-image 0.19.3:
//   structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
//                         data_range=1.0, channel_axis=-1)
// with x, y built as below (float32, HWC for scikit-image).
TEST(SsimTest, MatchesScikitImage) {
  constexpr int kC = 3, kH = 24, kW = 20;
  std::vector<float> x(kC * kH * kW), y(x.size());
  for (int c = 0; c < kC; ++c) {
    for (int i = 0; i < kH; ++i) {
      for (int j = 0; j < kW; ++j) {
        const std::size_t k = (static_cast<std::size_t>(c) * kH + i) * kW + j;
        x[k] = static_cast<float>(0.5 + 0.4 * std::sin(0.3 * i + 0.2 * j + c));
        y[k] =
            static_cast<float>(static_cast<double>(x[k]) + 0.1 * std::sin(1.7 * i * j + 0.3 * c));
      }
    }
  }
  EXPECT_NEAR(Ssim(x.data(), y.data(), kC, kH, kW), 0.8505838035800518, 1e-6);
  EXPECT_NEAR(Ssim(y.data(), x.data(), kC, kH, kW), 0.8505838035800518, 1e-6);  // symmetric
}

TEST(SsimTest, IdenticalIsOneNoisyIsLower) {
  constexpr int kS = 32;
  std::vector<float> clean(3 * kS * kS), noisy(clean.size()), noisier(clean.size());
  Rng rng(1);
  for (std::size_t i = 0; i < clean.size(); ++i) {
    clean[i] = static_cast<float>(0.5 + 0.3 * std::sin(0.2 * static_cast<double>(i % kS)));
    const double z = rng.Normal();
    noisy[i] = clean[i] + static_cast<float>(0.02 * z);
    noisier[i] = clean[i] + static_cast<float>(0.1 * z);
  }
  EXPECT_NEAR(Ssim(clean.data(), clean.data(), 3, kS, kS), 1.0, 1e-12);
  const double s1 = Ssim(noisy.data(), clean.data(), 3, kS, kS);
  const double s2 = Ssim(noisier.data(), clean.data(), 3, kS, kS);
  EXPECT_LT(s1, 0.99);
  EXPECT_LT(s2, s1);
  EXPECT_GT(s2, 0.0);
  EXPECT_TRUE(std::isnan(Ssim(clean.data(), clean.data(), 3, 10, 10)));
}

TEST(SiddProtocolTest, MeanOfPerBlockPsnr) {
  constexpr int kS = 16;
  const std::size_t n = 3 * kS * kS;
  std::vector<float> out(2 * n, 0.5f), target(2 * n, 0.5f);
  for (std::size_t i = 0; i < n; ++i) out[i] = 0.6f;       // block 0: 20 dB
  for (std::size_t i = n; i < 2 * n; ++i) out[i] = 0.51f;  // block 1: 40 dB
  SiddScoreAccumulator acc;
  acc.AddBlocks(out.data(), target.data(), 2, kS);
  const SiddScores scores = acc.Result();
  EXPECT_EQ(scores.blocks, 2u);
  EXPECT_NEAR(scores.psnr, 30.0, 1e-4);  // not the PSNR of the pooled MSE (~22.97 dB)
  EXPECT_GT(scores.ssim, 0.9);
  EXPECT_LT(scores.ssim, 1.0);

  SiddScoreAccumulator psnr_only(/*compute_ssim=*/false);
  psnr_only.AddBlock(out.data(), target.data(), kS);
  EXPECT_EQ(psnr_only.Result().ssim, 0.0);
  EXPECT_EQ(SiddScoreAccumulator().Result().blocks, 0u);
}

TEST(SiddProtocolTest, BlocksToChwAndEvaluateBlocks) {
  SiddBlocks blocks;
  blocks.num_images = 1;
  blocks.blocks_per_image = 2;
  blocks.block_size = 12;
  blocks.data.resize(blocks.num_blocks() * blocks.block_bytes());
  for (std::size_t i = 0; i < blocks.data.size(); ++i)
    blocks.data[i] = static_cast<std::uint8_t>(i);
  const std::vector<float> chw = BlocksToChw(blocks, 1, 1);
  ASSERT_EQ(chw.size(), 3u * 12 * 12);
  // Block 1, row 2, column 5, green.
  const std::size_t hwc = blocks.block_bytes() + (2 * 12 + 5) * 3 + 1;
  EXPECT_FLOAT_EQ(chw[(1 * 12 + 2) * 12 + 5], blocks.data[hwc] / 255.0f);

  const SiddScores same = EvaluateBlocks(blocks, blocks);
  EXPECT_EQ(same.blocks, 2u);
  EXPECT_EQ(same.psnr, kMaxPsnrDb);
  EXPECT_NEAR(same.ssim, 1.0, 1e-12);
}

}  // namespace
}  // namespace peaknas::data
