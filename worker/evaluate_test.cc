// SIDD-protocol evaluation on a generated dataset read by the real loaders.
#include "worker/evaluate.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "search/architecture.h"
#include "worker/data/make_data.h"
#include "worker/data/metrics.h"
#include "worker/data/sidd.h"
#include "worker/data/test_util.h"
#include "worker/test_nets.h"

namespace peaknas::worker {
namespace {

using data::testing::ScopedTempDir;

const torch::Device kCpu(torch::kCPU);

search::Architecture Small() { return testing::TwoLevelNet(); }

// The fixture's validation set: 2 images x 5 blocks of 32x32, 10 blocks in all, so that batches
// of 8 leave a remainder.
constexpr int kValImages = 2;
constexpr int kBlocksPerImage = 5;
constexpr std::size_t kBlocks = kValImages * kBlocksPerImage;

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data::MakeDataOptions o;
    o.out_dir = dir_.Sub("data");
    o.scenes = 1;
    o.pairs_per_scene = 1;
    o.image_size = 64;
    o.val_images = kValImages;
    o.val_blocks = kBlocksPerImage;
    o.block_size = 32;
    o.seed = 11;
    o.threads = 1;
    const Status made = data::MakeSiddLikeDataset(o);
    ASSERT_TRUE(made.ok()) << made.ToString();
    auto dataset = data::OpenSiddDataset(o.out_dir, {.read_training = false});
    ASSERT_TRUE(dataset.ok()) << dataset.status().ToString();
    noisy_ = dataset->val_noisy;
    clean_ = dataset->val_clean;
    ASSERT_EQ(noisy_.num_blocks(), kBlocks);
  }

  // A net whose head has zero weights and bias `bias`: output = x + bias.
  static UNet ConstantHead(float bias) {
    torch::manual_seed(5);
    UNet net(Small());
    torch::NoGradGuard no_grad;
    for (auto& item : net->named_parameters()) {
      if (item.key() == "head.weight") item.value().zero_();
      if (item.key() == "head.bias") item.value().fill_(bias);
    }
    return net;
  }

  ScopedTempDir dir_;
  data::SiddBlocks noisy_;
  data::SiddBlocks clean_;
};

TEST_F(EvaluateTest, IdentityNetScoresTheNoisyBaseline) {
  UNet net = ConstantHead(0.0f);
  const data::SiddScores baseline = NoisyBaseline(noisy_, clean_);
  const data::SiddScores direct = data::EvaluateBlocks(noisy_, clean_);
  EXPECT_EQ(baseline.psnr, direct.psnr);
  EXPECT_EQ(baseline.ssim, direct.ssim);
  // Noise is there to remove: a few tens of dB, well below the 100 dB of identical blocks.
  EXPECT_GT(baseline.psnr, 15.0);
  EXPECT_LT(baseline.psnr, 45.0);

  for (int batch : {1, 3, 8, 16}) {
    const data::SiddScores scores = Evaluate(net, noisy_, clean_, kCpu, batch);
    EXPECT_EQ(scores.blocks, kBlocks) << batch;
    EXPECT_NEAR(scores.psnr, baseline.psnr, 1e-6) << batch;
    EXPECT_NEAR(scores.ssim, baseline.ssim, 1e-6) << batch;
  }
}

TEST_F(EvaluateTest, OutputsAreClampedToOne) {
  UNet net = ConstantHead(1000.0f);  // y = x + 1000 everywhere
  const data::SiddScores scores = Evaluate(net, noisy_, clean_, kCpu, 4);
  // What an all-ones output scores, block by block.
  const int s = clean_.block_size;
  const std::vector<float> ones(3 * s * s, 1.0f);
  const std::vector<float> target = data::BlocksToChw(clean_, 0, clean_.num_blocks());
  data::SiddScoreAccumulator want;
  for (std::size_t i = 0; i < clean_.num_blocks(); ++i) {
    want.AddBlock(ones.data(), target.data() + i * ones.size(), s);
  }
  EXPECT_NEAR(scores.psnr, want.Result().psnr, 1e-6);
  EXPECT_NEAR(scores.ssim, want.Result().ssim, 1e-6);
  // Unclamped, the error would be ~1000 and the PSNR far below zero.
  EXPECT_GT(scores.psnr, 0.0);
}

TEST_F(EvaluateTest, RestoresTheTrainingModeAndLeavesNoGradient) {
  torch::manual_seed(1);
  UNet net(Small());
  net->train();
  const data::SiddScores first = Evaluate(net, noisy_, clean_, kCpu, 8);
  EXPECT_TRUE(net->is_training());
  for (const torch::Tensor& p : net->parameters()) EXPECT_FALSE(p.grad().defined());
  net->eval();
  const data::SiddScores second = Evaluate(net, noisy_, clean_, kCpu, 8);
  EXPECT_FALSE(net->is_training());
  EXPECT_DOUBLE_EQ(first.psnr, second.psnr);
  // A random net is not the identity: it scores differently from the noisy input.
  EXPECT_GT(std::abs(first.psnr - NoisyBaseline(noisy_, clean_).psnr), 0.01);
}

TEST_F(EvaluateTest, Bf16AutocastScoresCloseToFp32) {
  UNet net = ConstantHead(0.0f);
  // Perturb the head slightly so that the output depends on the (autocast) convolutions.
  {
    torch::NoGradGuard no_grad;
    for (auto& item : net->named_parameters()) {
      if (item.key() == "head.weight") item.value().normal_(0.0, 1e-3);
    }
  }
  const data::SiddScores fp32 = Evaluate(net, noisy_, clean_, kCpu, 8, search::DType::kFp32);
  const data::SiddScores bf16 = Evaluate(net, noisy_, clean_, kCpu, 8, search::DType::kBf16);
  EXPECT_NEAR(bf16.psnr, fp32.psnr, 0.5);
}

}  // namespace
}  // namespace peaknas::worker
