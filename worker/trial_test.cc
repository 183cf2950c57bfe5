// The trial's input checks and its order of stages, on a tiny generated dataset. (Training
// quality is quality_test.cc's; the command line around the trial is tests/worker/.)
#include "worker/trial.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "search/architecture.h"
#include "search/tiling.h"
#include "worker/counting_allocator.h"
#include "worker/data/make_data.h"
#include "worker/data/test_util.h"
#include "worker/export.h"
#include "worker/measure.h"
#include "worker/test_nets.h"

namespace peaknas::worker {
namespace {

using data::testing::ScopedTempDir;

search::Architecture Tiny() {
  return testing::TwoLevelNet(search::SkipKind::kAdd, search::UpsampleKind::kPixelShuffle,
                              search::DownsampleKind::kMaxPool, search::ActivationKind::kLeakyRelu);
}

TrialSpec TinySpec(const std::string& data_dir) {
  TrialSpec spec;
  spec.arch = Tiny();
  spec.data_dir = data_dir;
  spec.train_shape = {.batch = 2, .size = 32};
  spec.tile = {.batch = 1, .size = 32};
  spec.steps = 3;
  spec.progress_every = 1;
  spec.latency_runs = 1;
  spec.latency_warmup = 0;
  return spec;
}

// Expects INVALID_ARGUMENT whose message starts with `field`.
void ExpectNames(const TrialSpec& spec, const std::string& field) {
  const Status status = ValidateTrialSpec(spec);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << field << ": " << status.ToString();
  EXPECT_EQ(status.message().rfind(field, 0), 0u) << status.message();
}

TEST(ParseDevice, AcceptsCpuAndRejectsOtherNamesNamingTheField) {
  EXPECT_TRUE(ParseDevice("cpu")->is_cpu());
  for (const char* bad : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:0:1", ""}) {
    const auto device = ParseDevice(bad, "device");
    ASSERT_FALSE(device.ok()) << bad;
    EXPECT_EQ(device.status().message().rfind("device: \"" + std::string(bad) + "\"", 0), 0u)
        << device.status().message();
  }
  if (!torch::cuda::is_available()) {
    const auto cuda = ParseDevice("cuda");
    ASSERT_FALSE(cuda.ok());
    EXPECT_NE(cuda.status().message().find("CUDA is not available"), std::string::npos);
  }
}

TEST(ValidateTrialSpec, NamesEachBadFlag) {
  const TrialSpec good = TinySpec("/data");
  EXPECT_TRUE(ValidateTrialSpec(good).ok()) << ValidateTrialSpec(good).ToString();
  // Each case spoils one field of `good` and gives the start of the message that names it.
  const std::vector<std::pair<std::function<void(TrialSpec&)>, std::string>> cases = {
      {[](TrialSpec& s) { s.steps = 0; }, "steps: 0"},
      {[](TrialSpec& s) { s.learning_rate = 0; }, "lr: "},
      {[](TrialSpec& s) { s.tile.size = 33; }, "tile: 33"},  // not a multiple of 2 (two levels)
      {[](TrialSpec& s) { s.tile.batch = 0; }, "batch: 0"},
      {[](TrialSpec& s) { s.train_shape.size = 31; }, "patch: 31"},
      {[](TrialSpec& s) { s.train_shape.batch = 0; }, "train-batch: 0"},
      {[](TrialSpec& s) { s.eval_batch = 0; }, "eval-batch: 0"},
      {[](TrialSpec& s) { s.progress_every = 0; }, "progress-every: 0"},
      {[](TrialSpec& s) { s.latency_runs = 0; }, "latency-runs: 0"},
      {[](TrialSpec& s) { s.latency_tile = 33; }, "latency-tile: 33"},
      // Its window, with the overlap, is larger than the largest side.
      {[](TrialSpec& s) { s.latency_tile = search::kMaxSide; },
       "latency-tile: " + std::to_string(search::kMaxSide)},
      {[](TrialSpec& s) { s.precision = search::DType::kFp16; }, "precision: "},  // needs CUDA
      {[](TrialSpec& s) { s.export_path = "/nonexistent/dir/unet.pt"; },
       "export \"/nonexistent/dir/unet.pt\": directory /nonexistent/dir does not exist"},
      {[](TrialSpec& s) { s.arch.widths[1] = 12; }, "widths[1]: 12"},
  };
  for (const auto& [spoil, field] : cases) {
    TrialSpec s = good;
    spoil(s);
    ExpectNames(s, field);
  }
}

TEST(RunTrial, MissingDataIsNotFoundNamingThePath) {
  const auto result = RunTrial(TinySpec("/nonexistent/peaknas-data"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
  EXPECT_NE(result.status().message().find("/nonexistent/peaknas-data"), std::string::npos);
}

// The tiny dataset's validation set: one image's kValBlocks blocks of kBlockSide x kBlockSide.
constexpr int kValBlocks = 2;
constexpr int kBlockSide = 32;

// One scene of 64x64 and the validation blocks above, in `out_dir`.
data::MakeDataOptions TinyData(const std::string& out_dir) {
  data::MakeDataOptions made;
  made.out_dir = out_dir;
  made.scenes = 1;
  made.image_size = 64;
  made.val_images = 1;
  made.val_blocks = kValBlocks;
  made.block_size = kBlockSide;
  return made;
}

TEST(RunTrial, RunsTheStagesInOrderAndExportsTheEvaluatedWeights) {
  CpuAllocationCounter::Install();
  ScopedTempDir dir;
  const data::MakeDataOptions made = TinyData(dir.Sub("data"));
  ASSERT_TRUE(data::MakeSiddLikeDataset(made).ok());

  TrialSpec spec = TinySpec(made.out_dir);
  spec.export_path = dir.Sub("unet.pt");
  spec.latency_tile = 512;
  std::vector<std::string> stages;
  std::vector<int> steps;
  std::int64_t resident_peak = -1;
  TrialCallbacks callbacks;
  callbacks.stage = [&](std::string_view stage, std::string_view) { stages.emplace_back(stage); };
  callbacks.train = [&](const TrainProgress& p) { steps.push_back(p.step); };
  callbacks.resident_peak = [&](std::int64_t bytes) {
    EXPECT_EQ(stages.back(), "export");  // said before the pass
    resident_peak = bytes;
  };
  const auto result = RunTrial(spec, callbacks);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(stages,
            (std::vector<std::string>{"data", "measure-inference", "measure-train", "train",
                                      "evaluate", "export", "measure-latency", "measure-100mp"}));
  EXPECT_GT(resident_peak, 0);
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3}));
  const TrialResult& r = *result;
  EXPECT_EQ(r.export_path, spec.export_path);
  EXPECT_EQ(r.scores.blocks, std::size_t{kValBlocks});
  EXPECT_EQ(r.params, search::Parameters(spec.arch));
  EXPECT_EQ(r.device, "cpu");
  EXPECT_EQ(r.device_profile, "cpu");
  EXPECT_GT(r.initial_loss, 0.0);
  EXPECT_LE(r.measured_inference_peak_bytes, r.predicted_inference_peak_bytes);
  EXPECT_LE(r.measured_train_peak_bytes, r.predicted_train_peak_bytes);
  EXPECT_GT(r.latency_ms_per_tile, 0.0);
  // The 100-MP pass: 20 tiles a side (19 of 512, one of 272), each window reaching the
  // overlap farther where the image goes on.
  EXPECT_EQ(r.tiled_100mp_tile, 512);
  EXPECT_EQ(r.tiled_100mp_overlap, search::SeamFreeOverlap(spec.arch));
  EXPECT_EQ(r.tiled_100mp_windows, 400);
  EXPECT_GT(r.tiled_100mp_s, 0.0);
  EXPECT_EQ(r.predicted_tiled_100mp_s,
            search::PlanHundredMegapixelsAt(spec.arch, 512, search::DType::kFp32,
                                            DeviceProfileFor(torch::kCPU))
                .seconds);

  // The file holds the trained weights: re-scoring the export reproduces the trial's PSNR,
  // although the training-step measurement ran after the export and moved the live weights.
  torch::jit::Module loaded = torch::jit::load(spec.export_path);
  EXPECT_EQ(loaded.attr(kArchitectureAttribute).toStringRef(), search::ToCanonicalJson(Tiny()));
  auto dataset = data::OpenSiddDataset(made.out_dir);
  ASSERT_TRUE(dataset.ok());
  const std::vector<float> x = data::BlocksToChw(dataset->val_noisy, 0, kValBlocks);
  const std::vector<float> t = data::BlocksToChw(dataset->val_clean, 0, kValBlocks);
  torch::NoGradGuard no_grad;
  torch::Tensor input = torch::from_blob(const_cast<float*>(x.data()),
                                         {kValBlocks, 3, kBlockSide, kBlockSide}, torch::kFloat32);
  torch::Tensor y = loaded.forward({input}).toTensor().clamp(0, 1).contiguous();
  data::SiddScoreAccumulator scores;
  scores.AddBlocks(y.data_ptr<float>(), t.data(), kValBlocks, kBlockSide);
  EXPECT_NEAR(scores.Result().psnr, r.scores.psnr, 1e-4);
}

// A stop requested from the callbacks ends the trial with CANCELLED: during training at the
// next step (no further progress is reported), and before a stage it has not entered.
TEST(RunTrial, AStopRequestedEndsTheTrialCancelled) {
  ScopedTempDir dir;
  const data::MakeDataOptions made = TinyData(dir.Sub("data"));
  ASSERT_TRUE(data::MakeSiddLikeDataset(made).ok());
  TrialSpec spec = TinySpec(made.out_dir);
  spec.steps = 5;

  std::stop_source during;
  std::vector<std::string> stages;
  std::vector<int> steps;
  TrialCallbacks callbacks;
  callbacks.stop = during.get_token();
  callbacks.stage = [&](std::string_view stage, std::string_view) { stages.emplace_back(stage); };
  callbacks.train = [&](const TrainProgress& p) {
    steps.push_back(p.step);
    if (p.step == 2) during.request_stop();
  };
  const auto stopped = RunTrial(spec, callbacks);
  EXPECT_EQ(stopped.status().code(), StatusCode::kCancelled) << stopped.status().ToString();
  EXPECT_NE(stopped.status().message().find("after 2 of 5 steps"), std::string::npos)
      << stopped.status().message();
  EXPECT_EQ(steps, (std::vector<int>{1, 2}));
  EXPECT_EQ(stages,
            (std::vector<std::string>{"data", "measure-inference", "measure-train", "train"}));

  std::stop_source before;
  before.request_stop();
  stages.clear();
  callbacks.stop = before.get_token();
  const auto never = RunTrial(spec, callbacks);
  EXPECT_EQ(never.status().code(), StatusCode::kCancelled);
  EXPECT_TRUE(stages.empty()) << "no stage is entered once the stop is requested";
}

// A child that inherits from a trained parent: the stage is reported, the first losses start
// where the parent left off rather than where a fresh net starts, and the child's peaks still
// meet the cost model's contract (CPU, one thread: exact to the byte).
TEST(RunTrial, InheritsAParentsWeightsAndKeepsTheMemoryContract) {
  CpuAllocationCounter::Install();
  at::set_num_threads(1);
  ScopedTempDir dir;
  const data::MakeDataOptions made = TinyData(dir.Sub("data"));
  ASSERT_TRUE(data::MakeSiddLikeDataset(made).ok());

  const std::vector<int> parent_widths = {16, 32}, child_widths = {8, 16}, enc = {1, 1}, dec = {1};
  const auto make = [&](const std::vector<int>& widths) {
    auto a = search::MakeArchitecture(
        widths, enc, dec, search::SkipKind::kAdd, search::UpsampleKind::kPixelShuffle,
        search::DownsampleKind::kMaxPool, search::ActivationKind::kLeakyRelu);
    EXPECT_TRUE(a.ok());
    return *a;
  };
  TrialSpec parent = TinySpec(made.out_dir);
  parent.arch = make(parent_widths);
  parent.steps = 60;
  parent.export_path = dir.Sub("parent.pt");
  const auto trained = RunTrial(parent);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  EXPECT_FALSE(trained->parent_arch.has_value());

  TrialSpec child = TinySpec(made.out_dir);
  child.arch = make(child_widths);
  child.steps = 3;
  child.parent_model = parent.export_path;
  std::vector<std::string> stages;
  TrialCallbacks callbacks;
  callbacks.stage = [&](std::string_view stage, std::string_view) { stages.emplace_back(stage); };
  const auto inherited = RunTrial(child, callbacks);
  ASSERT_TRUE(inherited.ok()) << inherited.status().ToString();
  EXPECT_EQ(stages,
            (std::vector<std::string>{"data", "inherit", "measure-inference", "measure-train",
                                      "train", "evaluate", "measure-latency"}));
  ASSERT_TRUE(inherited->parent_arch.has_value());
  EXPECT_EQ(*inherited->parent_arch, parent.arch);
  EXPECT_EQ(inherited->measured_inference_peak_bytes, inherited->predicted_inference_peak_bytes);
  EXPECT_EQ(inherited->measured_train_peak_bytes, inherited->predicted_train_peak_bytes);

  TrialSpec scratch = child;
  scratch.parent_model.clear();
  const auto fresh = RunTrial(scratch);
  ASSERT_TRUE(fresh.ok());
  EXPECT_LT(inherited->initial_loss, fresh->initial_loss)
      << "the inherited child starts from the trained parent's function";

  // A wider child grows from the same parent, within the same contract.
  TrialSpec wider = child;
  wider.arch = make({24, 40});
  const auto grown = RunTrial(wider);
  ASSERT_TRUE(grown.ok()) << grown.status().ToString();
  EXPECT_EQ(grown->measured_inference_peak_bytes, grown->predicted_inference_peak_bytes);
  EXPECT_EQ(grown->measured_train_peak_bytes, grown->predicted_train_peak_bytes);

  // A parent it cannot inherit from is refused before any work, naming the file and field.
  TrialSpec deeper = child;
  deeper.arch = make({16, 32});
  deeper.arch.enc_blocks[1] = 2;
  const auto refused = RunTrial(deeper);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message().rfind("parent \"" + parent.export_path + "\"", 0), 0u)
      << refused.status().message();
  EXPECT_NE(
      refused.status().message().find("enc_blocks[1]: child 2 > parent 1 needs activation relu"),
      std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace peaknas::worker
