// The JSON report of a local trial, from a hand-made spec and result (no training).
#include "worker/report.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "search/architecture.h"
#include "worker/test_nets.h"

namespace peaknas::worker {
namespace {

search::Architecture Net(std::vector<int> widths = {8, 16}) {
  return testing::TwoLevelNet(search::SkipKind::kAdd, search::UpsampleKind::kBilinear,
                              search::DownsampleKind::kMaxPool, search::ActivationKind::kLeakyRelu,
                              std::move(widths));
}

TrialSpec Spec() {
  return {.arch = Net(),
          .data_dir = "/data/syn",
          .train_shape = {.batch = 4, .size = 32},
          .tile = {.batch = 1, .size = 64},
          .steps = 12,
          .learning_rate = 0.002,
          .eval_batch = 2,
          .seed = 9,
          .export_path = "",    // no export: the report's "export" is null
          .parent_model = ""};  // from scratch: no "parent"
}

TrialResult Result() {
  TrialResult r;
  r.arch = Spec().arch;
  r.device = "cpu";
  r.device_profile = "cpu";
  r.intra_op_threads = 2;
  r.steps = 12;
  r.scores = {.psnr = 30.5, .ssim = 0.8, .blocks = 4};
  r.noisy = {.psnr = 20.25, .ssim = 0.4, .blocks = 4};
  r.params = std::int64_t{5} << 32;  // past 32 bits: must stay a number
  r.predicted_inference_peak_bytes = 3000;
  r.measured_inference_peak_bytes = 2000;
  r.predicted_train_peak_bytes = 900;
  r.measured_train_peak_bytes = 0;  // not measured
  r.latency_ms_per_mp = 50;
  return r;
}

TEST(TrialReport, CarriesTheReportedMetricsAndTheLocalRun) {
  const nlohmann::json j = TrialReport(Spec(), Result());
  // The metrics, under TrialMetrics' names, numbers as numbers.
  EXPECT_EQ(j.at("psnr"), 30.5);
  EXPECT_EQ(j.at("noisy_psnr"), 20.25);
  EXPECT_EQ(j.at("eval_blocks"), 4);
  ASSERT_TRUE(j.at("params").is_number_integer());
  EXPECT_EQ(j.at("params").get<std::int64_t>(), std::int64_t{5} << 32);
  EXPECT_EQ(j.at("intra_op_threads"), 2);
  EXPECT_EQ(j.at("latency_100mp_s"), 5.0);
  // What only the local run knows.
  EXPECT_EQ(j.at("threads"), 2);
  EXPECT_EQ(j.at("dtype"), "fp32");
  EXPECT_EQ(j.at("seed"), 9);
  EXPECT_EQ(j.at("data"), "/data/syn");
  EXPECT_EQ(j.at("lr"), 0.002);
  EXPECT_EQ(j.at("train_batch"), 4);
  EXPECT_EQ(j.at("patch"), 32);
  EXPECT_EQ(j.at("tile"), 64);
  EXPECT_EQ(j.at("arch").at("widths"), nlohmann::json::parse("[8, 16]"));
  EXPECT_EQ(j.at("arch_hash"), search::CanonicalHashHex(Spec().arch));
  EXPECT_DOUBLE_EQ(j.at("psnr_gain").get<double>(), 10.25);
  EXPECT_DOUBLE_EQ(j.at("inference_ratio").get<double>(), 1.5);
  EXPECT_EQ(j.at("train_ratio"), 0.0);  // no measurement: no ratio
  EXPECT_TRUE(j.at("export").is_null());
  EXPECT_FALSE(j.contains("parent"));
}

TEST(TrialReport, NamesTheParentOfAnInheritingTrialAndTheExport) {
  TrialSpec spec = Spec();
  spec.parent_model = "/models/parent.pt";
  spec.importance = Importance::kGroupL1;
  TrialResult r = Result();
  r.parent_arch =
      search::ParseArchitecture(
          R"({"levels": 2, "widths": [16, 32], "enc_blocks": [1, 1], "dec_blocks": [1],)"
          R"( "skip": "add", "upsample": "bilinear", "downsample": "maxpool",)"
          R"( "activation": "lrelu"})")
          .value();
  r.export_path = "/models/child.pt";
  const nlohmann::json j = TrialReport(spec, r);
  EXPECT_EQ(j.at("parent"), "/models/parent.pt");
  EXPECT_EQ(j.at("parent_arch").at("widths"), nlohmann::json::parse("[16, 32]"));
  EXPECT_EQ(j.at("importance"), Name(Importance::kGroupL1));
  EXPECT_EQ(j.at("export"), "/models/child.pt");
}

}  // namespace
}  // namespace peaknas::worker
