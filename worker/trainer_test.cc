// Unit tests of the trainer: the schedule, option checks, and real LibTorch steps.
#include "worker/trainer.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "search/architecture.h"
#include "worker/test_nets.h"

namespace peaknas::worker {
namespace {

search::Architecture Small() { return testing::TwoLevelNet(); }

TEST(CosineLearningRate, StartsAtTheRateEndsAtTheMinimumHalfwayBetween) {
  TrainOptions o;
  o.steps = 101;
  o.learning_rate = 1e-3;
  o.min_learning_rate = 1e-5;
  EXPECT_DOUBLE_EQ(CosineLearningRate(o, 0), 1e-3);
  EXPECT_NEAR(CosineLearningRate(o, 100), 1e-5, 1e-15);
  EXPECT_NEAR(CosineLearningRate(o, 50), 0.5 * (1e-3 + 1e-5), 1e-15);
  for (int k = 1; k <= 100; ++k) EXPECT_LT(CosineLearningRate(o, k), CosineLearningRate(o, k - 1));
}

TEST(ValidateTrainOptions, NamesTheBadField) {
  TrainOptions o;
  EXPECT_TRUE(ValidateTrainOptions(o).ok());
  o.steps = 0;
  EXPECT_NE(ValidateTrainOptions(o).message().find("steps: 0"), std::string::npos);
  o = {};
  o.learning_rate = 0;
  EXPECT_NE(ValidateTrainOptions(o).message().find("learning_rate"), std::string::npos);
  o = {};
  o.min_learning_rate = 1;
  EXPECT_NE(ValidateTrainOptions(o).message().find("min_learning_rate"), std::string::npos);
  o = {};
  o.progress_every = 0;
  EXPECT_NE(ValidateTrainOptions(o).message().find("progress_every"), std::string::npos);
}

// Repeated steps on one batch must drive its loss down: a broken backward, optimizer wiring or
// learning-rate update cannot.
void ExpectFitsOneBatch(search::DType precision) {
  torch::manual_seed(3);
  TrainOptions o;
  o.steps = 60;
  o.learning_rate = 3e-3;
  o.precision = precision;
  Trainer trainer(UNet(Small()), o, torch::Device(torch::kCPU));
  const torch::Tensor clean = torch::rand({4, 3, 16, 16});
  // A corruption a few steps can learn (a brightness offset); random noise on random images
  // is not learnable and would leave the loss near its start.
  const torch::Tensor noisy = clean + 0.1;
  const double first = trainer.Step(noisy, clean, 0);
  double last = first;
  for (int k = 1; k < o.steps; ++k) last = trainer.Step(noisy, clean, k);
  EXPECT_LT(last, 0.5 * first) << Name(precision);
  // The learning rate of the last step is the schedule's minimum.
  const auto& group = trainer.optimizer().param_groups().front();
  EXPECT_DOUBLE_EQ(static_cast<const torch::optim::AdamOptions&>(group.options()).lr(),
                   CosineLearningRate(o, o.steps - 1));
}

TEST(Trainer, Fp32StepsFitOneBatch) { ExpectFitsOneBatch(search::DType::kFp32); }
TEST(Trainer, Bf16AutocastStepsFitOneBatch) { ExpectFitsOneBatch(search::DType::kBf16); }

TEST(Precision, ParsesAndChecksTheDevice) {
  EXPECT_EQ(*ParsePrecision("bf16"), search::DType::kBf16);
  EXPECT_NE(ParsePrecision("fp8").status().message().find("fp8"), std::string::npos);
  EXPECT_TRUE(CheckPrecision(search::DType::kBf16, torch::Device(torch::kCPU)).ok());
  EXPECT_FALSE(CheckPrecision(search::DType::kFp16, torch::Device(torch::kCPU)).ok());
}

TEST(AutocastGuard, RunsConvolutionsInBf16OnCpuAndRestores) {
  UNet net(Small());
  const torch::Tensor x = torch::rand({1, 3, 16, 16});
  {
    AutocastGuard guard(search::DType::kBf16, torch::Device(torch::kCPU));
    EXPECT_EQ(net->forward(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(net->forward(x).scalar_type(), torch::kFloat32);
}

TEST(ToTensor, CopiesTheHostBuffer) {
  std::vector<float> chw(2 * 3 * 4 * 4);
  for (std::size_t i = 0; i < chw.size(); ++i) chw[i] = static_cast<float>(i);
  const torch::Tensor t = ToTensor(chw, 2, 4, torch::Device(torch::kCPU));
  chw.assign(chw.size(), -1.0f);  // the sampler reuses its buffer
  EXPECT_EQ(t.sizes(), (std::vector<std::int64_t>{2, 3, 4, 4}));
  EXPECT_FLOAT_EQ(t[1][2][3][1].item<float>(), static_cast<float>(((1 * 3 + 2) * 4 + 3) * 4 + 1));
}

}  // namespace
}  // namespace peaknas::worker
