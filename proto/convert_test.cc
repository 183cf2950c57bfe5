#include "proto/convert.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "peaknas/v1/peaknas.grpc.pb.h"
#include "search/cost_model.h"
#include "search/space.h"

namespace peaknas::proto {
namespace {

// --- Round trips.

TEST(ConvertArchitecture, SampledRoundTrip) {
  search::SearchSpace spaces[2];
  spaces[1].nondecreasing_widths = true;
  spaces[1].levels = {2, 5};
  spaces[1].width = {16, 128};
  for (const auto& space : spaces) {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 500; ++i) {
      const search::Architecture a = search::Sample(space, rng);
      const v1::Architecture m = ToProto(a);
      ASSERT_EQ(m.levels(), a.levels);
      ASSERT_EQ(m.widths_size(), a.levels);
      ASSERT_EQ(m.dec_blocks_size(), a.levels - 1);
      auto back = FromProto(m);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      ASSERT_EQ(*back, a) << search::ToCanonicalJson(a);

      // Through the wire format and the JSON mapping too.
      v1::Architecture parsed;
      ASSERT_TRUE(parsed.ParseFromString(m.SerializeAsString()));
      std::string json;
      ASSERT_TRUE(google::protobuf::util::MessageToJsonString(parsed, &json).ok());
      v1::Architecture from_json;
      ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &from_json).ok()) << json;
      auto again = FromProto(from_json);
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      ASSERT_EQ(*again, a);
    }
  }
}

TEST(ConvertArchitecture, EveryKindRoundTrips) {
  for (auto k : search::kAllSkipKinds) EXPECT_EQ(*FromProto(ToProto(k), "f"), k);
  for (auto k : search::kAllUpsampleKinds) EXPECT_EQ(*FromProto(ToProto(k), "f"), k);
  for (auto k : search::kAllDownsampleKinds) EXPECT_EQ(*FromProto(ToProto(k), "f"), k);
  for (auto k : search::kAllActivationKinds) EXPECT_EQ(*FromProto(ToProto(k), "f"), k);
  for (auto d : {search::DType::kFp32, search::DType::kFp16, search::DType::kBf16}) {
    EXPECT_EQ(*FromProto(ToProto(d), "f"), d);
  }
  EXPECT_EQ(*FromProto(v1::DTYPE_UNSPECIFIED, "f"), search::DType::kFp32);
}

void ExpectInvalid(const Status& s, const std::string& field) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message().rfind(field + ":", 0), 0u)
      << "expected the message to start with \"" << field << ":\", got: " << s.message();
}

v1::Architecture SmallArch() {
  search::Architecture a;
  a.levels = 3;
  a.widths = {16, 32, 64};
  a.enc_blocks = {1, 1, 2};
  a.dec_blocks = {1, 1};
  return ToProto(a);
}

TEST(ConvertArchitecture, RefusesBadMessagesNamingTheField) {
  auto m = SmallArch();
  m.set_skip(v1::SKIP_KIND_UNSPECIFIED);
  ExpectInvalid(FromProto(m, "spec.base_architecture").status(), "spec.base_architecture.skip");

  m = SmallArch();
  m.set_upsample(static_cast<v1::UpsampleKind>(9));
  ExpectInvalid(FromProto(m).status(), "architecture.upsample");

  m = SmallArch();
  m.set_activation(v1::ACTIVATION_KIND_UNSPECIFIED);
  ExpectInvalid(FromProto(m).status(), "architecture.activation");

  m = SmallArch();
  m.add_widths(128);
  ExpectInvalid(FromProto(m).status(), "architecture.widths");

  m = SmallArch();
  m.set_levels(0);
  ExpectInvalid(FromProto(m).status(), "architecture.levels");

  m = SmallArch();
  m.set_widths(1, 12);
  ExpectInvalid(FromProto(m).status(), "architecture.widths[1]");

  m = SmallArch();
  m.set_dec_blocks(0, 9);
  ExpectInvalid(FromProto(m).status(), "architecture.dec_blocks[0]");
}

TEST(ConvertSearchSpace, RoundTripAndDefaults) {
  search::SearchSpace s;
  s.levels = {2, 4};
  s.width = {16, 256};
  s.enc_blocks = {1, 3};
  s.dec_blocks = {2, 2};
  s.skips = {search::SkipKind::kAdd};
  s.upsamples = {search::UpsampleKind::kPixelShuffle, search::UpsampleKind::kBilinear};
  s.downsamples = {search::DownsampleKind::kMaxPool};
  s.activations = {search::ActivationKind::kLeakyRelu};
  s.nondecreasing_widths = true;
  auto back = FromProto(ToProto(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->levels.min, 2);
  EXPECT_EQ(back->levels.max, 4);
  EXPECT_EQ(back->width.min, 16);
  EXPECT_EQ(back->width.max, 256);
  EXPECT_EQ(back->enc_blocks.max, 3);
  EXPECT_EQ(back->dec_blocks.min, 2);
  EXPECT_EQ(back->skips, s.skips);
  EXPECT_EQ(back->upsamples, s.upsamples);
  EXPECT_EQ(back->downsamples, s.downsamples);
  EXPECT_EQ(back->activations, s.activations);
  EXPECT_TRUE(back->nondecreasing_widths);

  // An empty message is the whole family.
  auto whole = FromProto(v1::SearchSpace());
  ASSERT_TRUE(whole.ok());
  const search::SearchSpace def;
  EXPECT_EQ(whole->levels.min, def.levels.min);
  EXPECT_EQ(whole->levels.max, def.levels.max);
  EXPECT_EQ(whole->width.min, def.width.min);
  EXPECT_EQ(whole->width.max, def.width.max);
  EXPECT_EQ(whole->skips, def.skips);
  EXPECT_EQ(whole->upsamples, def.upsamples);
  EXPECT_EQ(whole->downsamples, def.downsamples);
  EXPECT_EQ(whole->activations, def.activations);
  EXPECT_FALSE(whole->nondecreasing_widths);
}

// --- JobSpec validation.

v1::JobSpec GoodSpec() {
  v1::JobSpec spec;
  spec.set_name("test");
  spec.set_strategy(v1::STRATEGY_EVOLUTION);
  spec.mutable_budget()->set_bytes(int64_t{256} << 20);
  spec.mutable_budget()->set_mode(v1::BUDGET_MODE_INFERENCE);
  spec.mutable_space()->mutable_levels()->set_min(1);
  spec.mutable_space()->mutable_levels()->set_max(4);
  spec.mutable_space()->mutable_width()->set_min(8);
  spec.mutable_space()->mutable_width()->set_max(64);
  spec.set_trials(10);
  spec.set_parallelism(2);
  spec.mutable_fidelity()->set_steps(50);
  spec.set_dataset("synthetic");
  spec.set_seed(7);
  return spec;
}

// GoodSpec() as a pruning job.
v1::JobSpec PruningSpec() {
  v1::JobSpec spec = GoodSpec();
  spec.set_strategy(v1::STRATEGY_PRUNING);
  return spec;
}

// GoodSpec() as a scaling job from SmallArch().
v1::JobSpec ScalingSpec() {
  v1::JobSpec spec = GoodSpec();
  spec.set_strategy(v1::STRATEGY_SCALING);
  *spec.mutable_base_architecture() = SmallArch();
  return spec;
}

TEST(ConvertIds, FormatAndParse) {
  EXPECT_EQ(JobId(12), "j-12");
  EXPECT_EQ(TrialId(345), "t-345");
  EXPECT_EQ(WorkerId(6), "w-6");
  EXPECT_EQ(ParseId("t-345", "t-"), 345);
  EXPECT_EQ(ParseId(TrialId(9'000'000'000), "t-"), 9'000'000'000);
  for (const char* bad : {"t-", "t-0", "t--3", "t-3x", "j-3", "T-3", "t- 3", ""}) {
    EXPECT_FALSE(ParseId(bad, "t-").has_value()) << bad;
  }
}

TEST(ConvertLineage, RoundTripsAndRefusesABadParent) {
  search::Lineage l;
  l.parent_trial = 17;
  l.role = "level";
  l.iteration = 3;
  l.level = 1;
  l.over_budget = true;
  l.steps = 50;
  l.total_steps = 450;
  l.parent_peak = "encoder level 0 forward";
  const v1::Lineage m = ToProto(l);
  EXPECT_EQ(m.parent_trial_id(), "t-17");
  auto back = FromProto(m, "trial.lineage");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, l);

  EXPECT_TRUE(ToProto(search::Lineage{}).parent_trial_id().empty()) << "from scratch: no parent";
  auto scratch = FromProto(ToProto(search::Lineage{}), "trial.lineage");
  ASSERT_TRUE(scratch.ok());
  EXPECT_EQ(*scratch, search::Lineage{});

  v1::Lineage bad = m;
  bad.set_parent_trial_id("17");
  auto refused = FromProto(bad, "trial.lineage");
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message().rfind("trial.lineage.parent_trial_id", 0), 0u)
      << refused.status().message();
}

TEST(ValidateJobSpec, AcceptsGoodSpecs) {
  EXPECT_TRUE(ValidateJobSpec(GoodSpec()).ok()) << ValidateJobSpec(GoodSpec()).ToString();

  auto training = GoodSpec();
  training.mutable_budget()->set_mode(v1::BUDGET_MODE_TRAINING);
  training.mutable_budget()->set_dtype(v1::DTYPE_BF16);
  EXPECT_TRUE(ValidateJobSpec(training).ok()) << ValidateJobSpec(training).ToString();

  EXPECT_TRUE(ValidateJobSpec(ScalingSpec()).ok()) << ValidateJobSpec(ScalingSpec()).ToString();

  auto pruning = PruningSpec();
  *pruning.mutable_base_architecture() = SmallArch();
  pruning.mutable_pruning()->set_below_budget_iterations(0);
  pruning.mutable_pruning()->set_importance(v1::IMPORTANCE_GROUP_L1);
  EXPECT_TRUE(ValidateJobSpec(pruning).ok()) << ValidateJobSpec(pruning).ToString();

  // Through the JSON mapping, as the CLI reads it.
  const std::string json = R"({
    "name": "json", "strategy": "STRATEGY_RANDOM",
    "budget": {"bytes": "67108864", "mode": "BUDGET_MODE_INFERENCE", "tile": 128},
    "space": {"levels": {"min": 2, "max": 3}, "width": {"min": 8, "max": 32},
              "skips": ["SKIP_KIND_ADD"]},
    "trials": 4, "parallelism": 1, "dataset": "synthetic", "device_profile": "cpu"})";
  v1::JobSpec parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  EXPECT_TRUE(ValidateJobSpec(parsed).ok()) << ValidateJobSpec(parsed).ToString();
}

TEST(ValidateJobSpec, BudgetAtTheCheapestArchitectureIsTheEdge) {
  auto spec = GoodSpec();
  auto budget = BudgetFromProto(spec);
  ASSERT_TRUE(budget.ok());
  // The cheapest architecture of GoodSpec's space: one level, width 8, one block.
  search::Architecture a;
  a.levels = 1;
  a.widths[0] = 8;
  a.enc_blocks[0] = 1;
  std::int64_t cheapest = INT64_MAX;
  for (auto act : search::kAllActivationKinds) {
    a.activation = act;
    cheapest = std::min(cheapest, BudgetedPeakBytes(*budget, a));
  }
  spec.mutable_budget()->set_bytes(cheapest);
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec).ToString();
  spec.mutable_budget()->set_bytes(cheapest - 1);
  const Status s = ValidateJobSpec(spec);
  ExpectInvalid(s, "spec.budget.bytes");
  EXPECT_NE(s.message().find("allowed: >= " + std::to_string(cheapest)), std::string::npos)
      << s.message();
}

// An edit of a valid spec that validation refuses, naming `field`.
struct BadCase {
  const char* name;
  void (*edit)(v1::JobSpec&);
  const char* field;
};

// Sets a range to [min, max].
void SetRange(v1::IntRange* range, int min, int max) {
  range->set_min(min);
  range->set_max(max);
}

// Edits of PruningSpec().
const BadCase kBadPruningCases[] = {
    {"iterations too many", [](v1::JobSpec& s) { s.mutable_pruning()->set_iterations(101); },
     "spec.pruning.iterations"},
    {"below-budget iterations negative",
     [](v1::JobSpec& s) { s.mutable_pruning()->set_below_budget_iterations(-1); },
     "spec.pruning.below_budget_iterations"},
    {"start multiple not above 1",
     [](v1::JobSpec& s) { s.mutable_pruning()->set_start_budget_multiple(0.5); },
     "spec.pruning.start_budget_multiple"},
    {"fine-tune steps negative",
     [](v1::JobSpec& s) { s.mutable_pruning()->set_finetune_steps(-1); },
     "spec.pruning.finetune_steps"},
    {"importance unknown",
     [](v1::JobSpec& s) { s.mutable_pruning()->set_importance(static_cast<v1::Importance>(9)); },
     "spec.pruning.importance"},
    {"start outside the space",
     [](v1::JobSpec& s) {
       v1::Architecture wide = SmallArch();
       wide.set_widths(2, 128);  // the space's widths end at 64
       *s.mutable_pruning()->mutable_start_architecture() = wide;
     },
     "spec.pruning.start_architecture.widths[2]"},
};

// Edits of ScalingSpec().
const BadCase kBadScalingCases[] = {
    {"without a base architecture", [](v1::JobSpec& s) { s.clear_base_architecture(); },
     "spec.base_architecture"},
    {"base architecture wider than the space's 64",
     [](v1::JobSpec& s) { s.mutable_base_architecture()->set_widths(2, 256); },
     "spec.base_architecture.widths[2]"},
    {"base architecture deeper than the space",
     [](v1::JobSpec& s) { s.mutable_space()->mutable_levels()->set_max(2); },
     "spec.base_architecture.levels"},
    {"base architecture with a kind the space excludes (concat)",
     [](v1::JobSpec& s) { s.mutable_space()->add_skips(v1::SKIP_KIND_ADD); },
     "spec.base_architecture.skip"},
    {"base architecture with decreasing widths",
     [](v1::JobSpec& s) {
       s.mutable_space()->set_nondecreasing_widths(true);
       s.mutable_base_architecture()->set_widths(0, 64);
     },
     "spec.base_architecture.widths[1]"},
    {"base architecture with an unspecified kind",
     [](v1::JobSpec& s) {
       s.mutable_base_architecture()->set_downsample(v1::DOWNSAMPLE_KIND_UNSPECIFIED);
     },
     "spec.base_architecture.downsample"},
};

// Edits of GoodSpec().
const BadCase kBadCases[] = {
    {"pruning options on another strategy",
     [](v1::JobSpec& s) { s.mutable_pruning()->set_iterations(3); }, "spec.pruning"},
    {"strategy unspecified", [](v1::JobSpec& s) { s.set_strategy(v1::STRATEGY_UNSPECIFIED); },
     "spec.strategy"},
    {"strategy unknown", [](v1::JobSpec& s) { s.set_strategy(static_cast<v1::Strategy>(42)); },
     "spec.strategy"},
    {"budget missing", [](v1::JobSpec& s) { s.clear_budget(); }, "spec.budget"},
    {"budget 0", [](v1::JobSpec& s) { s.mutable_budget()->set_bytes(0); }, "spec.budget.bytes"},
    {"budget negative", [](v1::JobSpec& s) { s.mutable_budget()->set_bytes(-5); },
     "spec.budget.bytes"},
    {"budget mode unspecified",
     [](v1::JobSpec& s) { s.mutable_budget()->set_mode(v1::BUDGET_MODE_UNSPECIFIED); },
     "spec.budget.mode"},
    {"budget dtype unknown",
     [](v1::JobSpec& s) { s.mutable_budget()->set_dtype(static_cast<v1::DType>(7)); },
     "spec.budget.dtype"},
    {"budget batch too big", [](v1::JobSpec& s) { s.mutable_budget()->set_batch(5000); },
     "spec.budget.batch"},
    {"tile not a multiple for the deepest level",
     [](v1::JobSpec& s) { s.mutable_budget()->set_tile(100); }, "spec.budget.tile"},
    {"patch negative", [](v1::JobSpec& s) { s.mutable_budget()->set_patch(-64); },
     "spec.budget.patch"},
    {"unknown device profile", [](v1::JobSpec& s) { s.set_device_profile("tpu9"); },
     "spec.device_profile"},
    {"width range inverted",
     [](v1::JobSpec& s) { SetRange(s.mutable_space()->mutable_width(), 128, 64); },
     "spec.space.width.min"},
    {"width min not a multiple of 8",
     [](v1::JobSpec& s) { s.mutable_space()->mutable_width()->set_min(12); },
     "spec.space.width.min"},
    {"width max beyond 512",
     [](v1::JobSpec& s) { s.mutable_space()->mutable_width()->set_max(600); },
     "spec.space.width.max"},
    {"levels range inverted",
     [](v1::JobSpec& s) { SetRange(s.mutable_space()->mutable_levels(), 5, 2); },
     "spec.space.levels.min"},
    {"enc_blocks max 9",
     [](v1::JobSpec& s) { SetRange(s.mutable_space()->mutable_enc_blocks(), 1, 9); },
     "spec.space.enc_blocks.max"},
    {"dec_blocks unset range set to zero",
     [](v1::JobSpec& s) { s.mutable_space()->mutable_dec_blocks(); }, "spec.space.dec_blocks.min"},
    {"skip kind unspecified",
     [](v1::JobSpec& s) {
       s.mutable_space()->add_skips(v1::SKIP_KIND_CONCAT);
       s.mutable_space()->add_skips(v1::SKIP_KIND_UNSPECIFIED);
     },
     "spec.space.skips[1]"},
    {"upsample kind repeated",
     [](v1::JobSpec& s) {
       s.mutable_space()->add_upsamples(v1::UPSAMPLE_KIND_BILINEAR);
       s.mutable_space()->add_upsamples(v1::UPSAMPLE_KIND_BILINEAR);
     },
     "spec.space.upsamples[1]"},
    {"trials 0", [](v1::JobSpec& s) { s.set_trials(0); }, "spec.trials"},
    {"parallelism 0", [](v1::JobSpec& s) { s.set_parallelism(0); }, "spec.parallelism"},
    {"parallelism negative", [](v1::JobSpec& s) { s.set_parallelism(-1); }, "spec.parallelism"},
    {"population 1", [](v1::JobSpec& s) { s.set_population(1); }, "spec.population"},
    {"scaling alpha 2", [](v1::JobSpec& s) { s.set_scaling_alpha(2.0); }, "spec.scaling_alpha"},
    {"inherit with random search",
     [](v1::JobSpec& s) {
       s.set_strategy(v1::STRATEGY_RANDOM);
       s.set_inherit(true);
     },
     "spec.inherit"},
    {"steps negative", [](v1::JobSpec& s) { s.mutable_fidelity()->set_steps(-1); },
     "spec.fidelity.steps"},
    {"fidelity patch odd", [](v1::JobSpec& s) { s.mutable_fidelity()->set_patch(36); },
     "spec.fidelity.patch"},
    {"learning rate negative",
     [](v1::JobSpec& s) { s.mutable_fidelity()->set_learning_rate(-0.1); },
     "spec.fidelity.learning_rate"},
    {"dataset empty", [](v1::JobSpec& s) { s.clear_dataset(); }, "spec.dataset"},
    {"dataset with a path", [](v1::JobSpec& s) { s.set_dataset("/data/sidd"); }, "spec.dataset"},
    {"base architecture with another strategy",
     [](v1::JobSpec& s) { *s.mutable_base_architecture() = SmallArch(); },
     "spec.base_architecture"},
    {"budget no architecture can meet (inference)",
     [](v1::JobSpec& s) { s.mutable_budget()->set_bytes(1024); }, "spec.budget.bytes"},
    {"budget no architecture can meet (training)",
     [](v1::JobSpec& s) {
       s.mutable_budget()->set_mode(v1::BUDGET_MODE_TRAINING);
       s.mutable_budget()->set_bytes(64 << 10);
     },
     "spec.budget.bytes"},
    {"budget too small for the space's narrowest width",
     [](v1::JobSpec& s) {
       SetRange(s.mutable_space()->mutable_width(), 512, 512);
       SetRange(s.mutable_space()->mutable_enc_blocks(), 8, 8);
       s.mutable_budget()->set_bytes(int64_t{16} << 20);
     },
     "spec.budget.bytes"},
};

// Validation refuses each case's edit of `spec`, naming the case's field.
void ExpectEachRefused(const v1::JobSpec& spec, std::span<const BadCase> cases) {
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    v1::JobSpec edited = spec;
    c.edit(edited);
    const Status s = ValidateJobSpec(edited);
    if (std::getenv("PEAKNAS_PRINT_ERRORS")) std::cerr << s.message() << "\n";
    ExpectInvalid(s, c.field);
  }
}

TEST(ValidateJobSpec, RefusesEachBadCaseNamingTheField) {
  ExpectEachRefused(GoodSpec(), kBadCases);
  ExpectEachRefused(PruningSpec(), kBadPruningCases);
  ExpectEachRefused(ScalingSpec(), kBadScalingCases);
}

TEST(ValidateJobSpec, RootIsConfigurable) {
  auto spec = GoodSpec();
  spec.set_trials(0);
  ExpectInvalid(ValidateJobSpec(spec, "job"), "job.trials");
}

TEST(GeneratedCode, ServicesExist) {
  // The gRPC stubs are generated and link.
  EXPECT_STREQ(v1::JobService::service_full_name(), "peaknas.v1.JobService");
  EXPECT_STREQ(v1::WorkerService::service_full_name(), "peaknas.v1.WorkerService");
}

// Every measurement lands in its own field: distinct values in, each found where it belongs,
// and no field of the message left unset.
TEST(ConvertTrialMetrics, EveryMeasurementHasItsField) {
  search::TrialMetrics r;
  r.device = "cuda:1";
  r.device_profile = "h200";
  r.dtype = search::DType::kBf16;
  r.intra_op_threads = 3;
  r.framework = "libtorch 9.9.9";
  r.steps = 4;
  r.initial_loss = 5;
  r.final_loss = 6;
  r.train_seconds = 7;
  r.train_steps_per_s = 8;
  r.scores = {.psnr = 9, .ssim = 10, .blocks = 11};
  r.noisy = {.psnr = 12, .ssim = 13, .blocks = 11};
  r.eval_seconds = 14;
  r.params = 15;
  r.macs = 16;
  r.predicted_inference_peak_bytes = 17;
  r.measured_inference_peak_bytes = 18;
  r.process_inference_peak_bytes = 19;
  r.predicted_train_peak_bytes = 20;
  r.measured_train_peak_bytes = 21;
  r.process_train_peak_bytes = 22;
  r.process_peak_bytes = 26;
  r.latency_ms_per_tile = 23;
  r.latency_ms_per_mp = 240;
  r.predicted_latency_ms_per_tile = 25;
  r.tiled_100mp_tile = 27;
  r.tiled_100mp_overlap = 28;
  r.tiled_100mp_windows = 29;
  r.tiled_100mp_s = 30;
  r.predicted_tiled_100mp_s = 31;
  v1::TrialMetrics want;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"(device: "cuda:1" device_profile: "h200" dtype: DTYPE_BF16 intra_op_threads: 3
         framework: "libtorch 9.9.9"
         steps: 4 initial_loss: 5 final_loss: 6 train_seconds: 7 train_steps_per_s: 8
         psnr: 9 ssim: 10 eval_blocks: 11 noisy_psnr: 12 noisy_ssim: 13 eval_seconds: 14
         params: 15 macs: 16
         predicted_inference_peak_bytes: 17 measured_inference_peak_bytes: 18
         process_inference_peak_bytes: 19 predicted_train_peak_bytes: 20
         measured_train_peak_bytes: 21 process_train_peak_bytes: 22 process_peak_bytes: 26
         latency_ms_per_tile: 23 latency_ms_per_mp: 240 predicted_latency_ms_per_tile: 25
         latency_100mp_s: 24  # 100 MP at 240 ms/MP
         tiled_100mp_tile: 27 tiled_100mp_overlap: 28 tiled_100mp_windows: 29
         tiled_100mp_s: 30 predicted_tiled_100mp_s: 31)",
      &want));
  EXPECT_EQ(ToProto(r).DebugString(), want.DebugString());
  // Every field of the message is expected above: a new field must be added here too.
  std::vector<const google::protobuf::FieldDescriptor*> expected_fields;
  want.GetReflection()->ListFields(want, &expected_fields);
  EXPECT_EQ(static_cast<int>(expected_fields.size()),
            v1::TrialMetrics::descriptor()->field_count());
}

}  // namespace
}  // namespace peaknas::proto

namespace peaknas::proto {
namespace {

TEST(ValidateTrialMetrics, TakesMeasurementsAndRefusesWhatNoMeasurementGives) {
  v1::TrialMetrics m;
  m.set_psnr(33.1);
  m.set_noisy_psnr(25);
  m.set_ssim(0.93);
  m.set_measured_inference_peak_bytes(std::int64_t{48} << 20);
  m.set_latency_100mp_s(12.5);
  EXPECT_TRUE(ValidateTrialMetrics(m).ok());
  EXPECT_TRUE(ValidateTrialMetrics(v1::TrialMetrics()).ok());  // zeros: nothing measured
  const double inf = std::numeric_limits<double>::infinity();
  const struct {
    void (*edit)(v1::TrialMetrics&);
    const char* message;
  } bad[] = {
      {[](v1::TrialMetrics& x) { x.set_psnr(150.5); },
       "metrics.psnr: 150.5 dB is outside [0, 150] dB"},
      {[](v1::TrialMetrics& x) { x.set_psnr(-1); }, "metrics.psnr: -1 dB is outside [0, 150] dB"},
      {[](v1::TrialMetrics& x) { x.set_noisy_ssim(-1.5); },
       "metrics.noisy_ssim: -1.5 is outside [-1, 1]"},
      {[](v1::TrialMetrics& x) { x.set_final_loss(std::nan("")); },
       "metrics.final_loss: nan is not a finite number >= 0"},
      {[](v1::TrialMetrics& x) { x.set_process_train_peak_bytes(std::int64_t{1} << 51); },
       "metrics.process_train_peak_bytes: 2.2518e+15 B is outside [0, 1.1259e+15] B"},
      {[](v1::TrialMetrics& x) { x.set_steps(-3); },
       "metrics.steps: -3 is not a finite number >= 0"},
      {[](v1::TrialMetrics& x) { x.set_tiled_100mp_s(-0.5); },
       "metrics.tiled_100mp_s: -0.5 is not a finite number >= 0"},
      {[](v1::TrialMetrics& x) { x.set_tiled_100mp_windows(-1); },
       "metrics.tiled_100mp_windows: -1 is not a finite number >= 0"},
      {[](v1::TrialMetrics& x) { x.set_device_profile(std::string(201, 'p')); },
       "metrics.device_profile: 201 characters; at most 200"},
  };
  for (const auto& b : bad) {
    v1::TrialMetrics x = m;
    b.edit(x);
    const Status s = ValidateTrialMetrics(x);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << b.message;
    EXPECT_EQ(s.message(), b.message);
  }
  v1::TrialMetrics x = m;
  x.set_latency_ms_per_tile(inf);
  EXPECT_FALSE(ValidateTrialMetrics(x).ok());
  EXPECT_EQ(ValidateTrialMetrics(x, "report.metrics").message().rfind("report.metrics.", 0), 0u);
}

}  // namespace
}  // namespace peaknas::proto

namespace peaknas::proto {
namespace {

TEST(ConvertCalibrationFit, RoundTripsEveryField) {
  const search::CalibrationFit fit{.samples = 12,
                                   .overhead_bytes = 1.5e8,
                                   .slope = 1.02,
                                   .margin = 1.03,
                                   .quantile = 0.99,
                                   .min_ratio = 0.98,
                                   .max_ratio = 1.01};
  const v1::CalibrationFit m = ToProto(fit);
  EXPECT_EQ(m.unfitted(), "");
  const search::CalibrationFit back = FromProto(m);
  EXPECT_EQ(back.samples, 12);
  EXPECT_EQ(back.overhead_bytes, 1.5e8);
  EXPECT_EQ(back.slope, 1.02);
  EXPECT_EQ(back.margin, 1.03);
  EXPECT_EQ(back.quantile, 0.99);
  EXPECT_EQ(back.min_ratio, 0.98);
  EXPECT_EQ(back.max_ratio, 1.01);
  EXPECT_EQ(back.Predict(std::int64_t{1} << 20), fit.Predict(std::int64_t{1} << 20));
  // Every field of the message but `unfitted` is carried.
  EXPECT_EQ(v1::CalibrationFit::descriptor()->field_count(), 8);
}

}  // namespace
}  // namespace peaknas::proto
