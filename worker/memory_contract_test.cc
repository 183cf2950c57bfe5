// The cost model's contract (DESIGN.md, "Cost model") on real LibTorch, CPU:
//
//   measured <= predicted <= 1.10 x measured    (or predicted - measured <= 1 MiB)
//
// for the inference of one batch and for one steady-state training step, over architectures
// sampled across the whole family (every skip, upsample and downsample kind, both activations,
// 1 to 6 levels) at several batch, tile and patch sizes. "Measured" is the counting CPU
// allocator's peak (measure.h). Widths and block counts are capped so that the suite runs in
// minutes on two cores; the kinds and depths are not. Every pass runs at 1, 2, 3 and 4 intra-op
// threads and at the machine's core count: oneDNN's per-thread buffers depend on it.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/space.h"
#include "worker/counting_allocator.h"
#include "worker/measure.h"
#include "worker/trainer.h"
#include "worker/unet.h"

namespace peaknas::worker {
namespace {

using search::Architecture;
using search::DType;
using search::Shape;

constexpr std::int64_t kMiB = 1 << 20;
constexpr double kMaxRatio = 1.10;

struct Case {
  Architecture arch;
  std::vector<Shape> tiles;    // inference (batch, tile)
  std::vector<Shape> patches;  // training (batch, patch)
};

// Every (skip, upsample, downsample) combination twice, with levels cycling through 1..6 and
// the rest drawn from a seeded generator: 24 architectures; then 4 wide ones.
std::vector<Case> Cases() {
  search::SearchSpace space;
  space.width = {8, 96};
  space.enc_blocks = {1, 2};
  space.dec_blocks = {1, 2};
  std::mt19937_64 rng(20261123);
  std::vector<Case> cases;
  int n = 0;
  for (int round = 0; round < 2; ++round) {
    for (search::SkipKind skip : search::kAllSkipKinds) {
      for (search::UpsampleKind up : search::kAllUpsampleKinds) {
        for (search::DownsampleKind down : search::kAllDownsampleKinds) {
          search::SearchSpace s = space;
          s.skips = {skip};
          s.upsamples = {up};
          s.downsamples = {down};
          const int levels = 1 + n % 6;
          s.levels = {levels, levels};
          Case c;
          c.arch = search::Sample(s, rng);
          const int m = search::SpatialMultiple(c.arch);
          auto side = [&](int target) { return std::max(m, target / m * m); };
          // Batch 1 (native kernels for small inputs), 2 and 4 (oneDNN); sides not all powers of 2.
          c.tiles = {{1, side(64)}, {n % 2 == 0 ? 2 : 4, side(96)}};
          c.patches = {{n % 3 == 0 ? 1 : 4, side(48)}, {8, side(64)}};
          cases.push_back(c);
          ++n;
        }
      }
    }
  }
  // Wide nets (widths up to the space's 512, channel counts on and off oneDNN's blocks of 16)
  // at small sides, so that weights and their padded reorders dominate.
  space.width = {8, search::kMaxWidth};
  space.enc_blocks = {1, 1};
  space.dec_blocks = {1, 1};
  for (int levels : {1, 2, 3, 4}) {
    search::SearchSpace s = space;
    s.levels = {levels, levels};
    Case c;
    c.arch = search::Sample(s, rng);
    const int m = search::SpatialMultiple(c.arch);
    c.tiles = {{1, std::max(m, 32 / m * m)}, {2, std::max(m, 16 / m * m)}};
    c.patches = {{2, std::max(m, 16 / m * m)}};
    cases.push_back(c);
  }
  return cases;
}

struct Row {
  std::string what;
  std::int64_t predicted = 0;
  std::int64_t measured = 0;
};

void ExpectContract(const Row& r, const Architecture& a) {
  EXPECT_LE(r.measured, r.predicted)
      << r.what << " under-predicted by " << (r.measured - r.predicted)
      << " bytes: " << search::ToCanonicalJson(a);
  const bool tight = r.predicted <= kMaxRatio * static_cast<double>(r.measured) ||
                     r.predicted - r.measured <= kMiB;
  EXPECT_TRUE(tight) << r.what << " predicted " << r.predicted << " > 1.10 x measured "
                     << r.measured << " (ratio "
                     << static_cast<double>(r.predicted) / static_cast<double>(r.measured)
                     << "): " << search::ToCanonicalJson(a);
}

// Prints the distribution of predicted/measured and of predicted - measured (docs/ quotes it).
void PrintDistribution(const char* name, const std::vector<Row>& rows) {
  std::vector<double> ratios;
  std::int64_t max_over = 0;
  for (const Row& r : rows) {
    ratios.push_back(static_cast<double>(r.predicted) / static_cast<double>(r.measured));
    max_over = std::max(max_over, r.predicted - r.measured);
  }
  std::sort(ratios.begin(), ratios.end());
  const auto q = [&](double p) {
    return ratios[static_cast<std::size_t>(p * (ratios.size() - 1))];
  };
  std::printf(
      "%s predicted/measured over %zu passes: min %.6f  p25 %.6f  median %.6f  p75 %.6f"
      "  max %.6f; largest predicted - measured %lld bytes\n",
      name, ratios.size(), ratios.front(), q(0.25), q(0.5), q(0.75), ratios.back(),
      static_cast<long long>(max_over));
}

class MemoryContract : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CpuAllocationCounter::Install();
    torch::manual_seed(7);
  }
};

// The thread counts every pass is checked at: 1 to 4, and the machine's cores.
// PEAKNAS_MEMORY_TEST_THREADS=N checks N as well.
std::vector<int> ThreadCounts() {
  std::set<int> counts = {1, 2, 3, 4};
  counts.insert(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (const char* extra = std::getenv("PEAKNAS_MEMORY_TEST_THREADS")) {
    counts.insert(std::max(1, std::atoi(extra)));
  }
  return {counts.begin(), counts.end()};
}

// Each pass at GetParam() intra-op threads, on the CPU profile measured at that count.
class MemoryContractAtThreads : public MemoryContract, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    at::set_num_threads(GetParam());
    cpu_ = DeviceProfileFor(device_);
    ASSERT_EQ(cpu_.cpu_conv.intra_op_threads, GetParam());
  }
  void TearDown() override { at::set_num_threads(1); }

  // Holds one pass (`what`, to which the thread count is added) to the contract, and keeps it
  // for the distribution.
  void Check(const std::string& what, const Architecture& arch, std::int64_t predicted,
             std::int64_t measured) {
    const Row r{.what = what + " threads=" + std::to_string(GetParam()),
                .predicted = predicted,
                .measured = measured};
    ExpectContract(r, arch);
    rows_.push_back(r);
  }

  // Prints the distribution of the passes checked, as `pass, threads=N,`.
  void PrintRows(const std::string& pass) const {
    PrintDistribution((pass + ", threads=" + std::to_string(GetParam()) + ",").c_str(), rows_);
  }

  const torch::Device device_{torch::kCPU};
  search::DeviceProfile cpu_;
  std::vector<Row> rows_;
};

TEST_F(MemoryContract, CoversTheWholeFamily) {
  const std::vector<Case> cases = Cases();
  ASSERT_GE(cases.size(), 20u);
  std::vector<bool> levels(search::kMaxLevels + 1, false);
  int relu = 0;
  for (const Case& c : cases) {
    levels[c.arch.levels] = true;
    relu += c.arch.activation == search::ActivationKind::kRelu;
  }
  for (int l = 1; l <= search::kMaxLevels; ++l) EXPECT_TRUE(levels[l]) << "no case with " << l;
  EXPECT_GT(relu, 0);
  EXPECT_LT(relu, static_cast<int>(cases.size()));
}

TEST_P(MemoryContractAtThreads, InferenceOnCpu) {
  for (const Case& c : Cases()) {
    UNet net(c.arch);
    for (const Shape& tile : c.tiles) {
      const std::int64_t predicted = search::InferencePeakBytes(c.arch, tile, DType::kFp32, cpu_);
      Check("inference B=" + std::to_string(tile.batch) + " T=" + std::to_string(tile.size), c.arch,
            predicted, MeasureInferencePeak(net, tile, device_).allocator_peak_bytes);
    }
  }
  PrintRows("inference");
}

// `denoise` runs inference channels-last on the CPU (InferenceLayout, --layout) and sizes its
// window by kChannelsLastPeakFactor times the contiguous pass's prediction: a channels-last
// pass of any kind must stay within that. Only the bound is held, not the 1.10: the prediction is
// exact for the contiguous pass, and a channels-last one holds less where oneDNN reorders nothing
// and more around transposed convolutions.
TEST_P(MemoryContractAtThreads, ChannelsLastInferenceStaysWithinItsBound) {
  for (const Case& c : Cases()) {
    UNet net(c.arch);
    SetWeightLayout(net, torch::MemoryFormat::ChannelsLast);
    for (const Shape& tile : c.tiles) {
      const std::int64_t predicted = search::InferencePeakBytes(c.arch, tile, DType::kFp32, cpu_);
      const std::int64_t measured =
          MeasureInferencePeak(net, tile, device_, torch::MemoryFormat::ChannelsLast)
              .allocator_peak_bytes;
      EXPECT_LE(static_cast<double>(measured), kChannelsLastPeakFactor * predicted)
          << "channels-last inference B=" << tile.batch << " T=" << tile.size
          << " threads=" << GetParam() << ": measured " << measured << " > "
          << kChannelsLastPeakFactor << " x predicted " << predicted << ": "
          << search::ToCanonicalJson(c.arch);
      rows_.push_back({.what = "", .predicted = predicted, .measured = measured});
    }
  }
  PrintRows("channels-last inference");
}

TEST_P(MemoryContractAtThreads, TrainingStepOnCpu) {
  for (const Case& c : Cases()) {
    for (const Shape& patch : c.patches) {
      Trainer trainer(UNet(c.arch), TrainOptions{}, device_);
      const std::int64_t predicted = search::TrainPeakBytes(c.arch, patch, DType::kFp32, cpu_);
      Check("training step B=" + std::to_string(patch.batch) + " P=" + std::to_string(patch.size),
            c.arch, predicted, MeasureTrainStepPeak(trainer, patch, device_).allocator_peak_bytes);
    }
  }
  PrintRows("training step");
}

INSTANTIATE_TEST_SUITE_P(Threads, MemoryContractAtThreads, ::testing::ValuesIn(ThreadCounts()),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "Threads";
                         });

}  // namespace
}  // namespace peaknas::worker
