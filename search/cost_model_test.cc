#include "search/cost_model.h"

#include <gtest/gtest.h>

#include <random>

#include "search/budget.h"
#include "search/space.h"

namespace peaknas::search {
namespace {

// A device whose framework adds no workspace: the peaks are then pure liveness and can be
// derived by hand from the schedule of DESIGN.md.
DeviceProfile NoWorkspace() {
  DeviceProfile p = DefaultDeviceProfile();
  p.name = "no-workspace";
  p.workspace = WorkspaceTable{};
  p.cpu_conv.enabled = false;
  return p;
}

Architecture Arch(std::vector<int> widths, std::vector<int> enc, std::vector<int> dec,
                  SkipKind skip, UpsampleKind up, DownsampleKind down) {
  auto a = MakeArchitecture(widths, enc, dec, skip, up, down, ActivationKind::kRelu);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(Validate(*a).ok());
  return *a;
}

// Conv parameters: weights and bias.
constexpr std::int64_t ConvParams(int cin, int cout, int k) { return cin * cout * k * k + cout; }

// --- One level: stem, one encoder block, head. -------------------------------------------------

TEST(CostModelHand, OneLevelParamsMacsAndInferencePeak) {
  const Architecture a =
      Arch({8}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  const std::int64_t params = ConvParams(3, 8, 3) + ConvParams(8, 8, 3) + ConvParams(8, 3, 3);
  EXPECT_EQ(params, 224 + 584 + 219);
  EXPECT_EQ(Parameters(a), params);

  // Tile 8x8, batch 1: 64 pixels.
  const WorkCounts w = CountWork(a, {1, 8}, DType::kFp32);
  EXPECT_EQ(w.macs, 64 * 8 * 3 * 9 + 64 * 8 * 8 * 9 + 64 * 3 * 8 * 9);
  EXPECT_EQ(w.activations, 64 * 8 + 64 * 8 + 64 * 3);
  EXPECT_EQ(w.ops, 6);  // stem conv+act, encoder conv+act, head conv, residual add

  const std::int64_t weights = params * 4, x = 3 * 64 * 4, h = 8 * 64 * 4;
  // Stem: W+x+h. Encoder conv: W+x+h+h' (input still alive while the output is written).
  // Head: W+x+h+y. The encoder conv is the peak.
  const PeakEstimate p = EstimateInferencePeak(a, {1, 8}, DType::kFp32, NoWorkspace());
  EXPECT_EQ(p.bytes, weights + x + 2 * h);
  EXPECT_EQ(p.location.op, OpKind::kConv3x3);
  EXPECT_EQ(p.location.stage, Stage::kEncoder);
  EXPECT_EQ(p.location.level, 0);
  EXPECT_EQ(p.location.phase, Phase::kForward);
  EXPECT_EQ(p.breakdown.weights, weights);
  EXPECT_EQ(p.breakdown.workspace, 0);
  EXPECT_EQ(p.breakdown.Total(), p.bytes);
}

TEST(CostModelHand, OneLevelInferenceWithCpuNativeConvolution) {
  // Batch 1 and small inputs: LibTorch's native kernel, whose im2col columns are
  // cin*k*k x output pixels.
  const Architecture a =
      Arch({8}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  const DeviceProfile& cpu = DefaultDeviceProfile();
  ASSERT_TRUE(cpu.cpu_conv.enabled);
  const std::int64_t weights = 1027 * 4, x = 768, h = 2048;
  const std::int64_t stem = weights + x + h + 3 * 9 * 64 * 4;
  const std::int64_t enc = weights + x + 2 * h + 8 * 9 * 64 * 4;
  const std::int64_t head = weights + x + h + x + 8 * 9 * 64 * 4;
  const PeakEstimate p = EstimateInferencePeak(a, {1, 8}, DType::kFp32, cpu);
  EXPECT_EQ(p.bytes, std::max({stem, enc, head}));
  EXPECT_EQ(p.location.stage, Stage::kEncoder);
  EXPECT_EQ(p.breakdown.workspace, 8 * 9 * 64 * 4);
  EXPECT_EQ(p.breakdown.Total(), p.bytes);
}

TEST(CostModelHand, OneLevelInferenceWithCpuBlockedConvolution) {
  // Batch 2: oneDNN. The 8-channel source stays plain; weights, bias and the destination are
  // padded to blocks of 16 channels; the blocked destination is then copied into the output.
  const Architecture a =
      Arch({8}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  const DeviceProfile& cpu = DefaultDeviceProfile();
  const std::int64_t weights = 1027 * 4, x = 2 * 768, h = 2 * 2048;
  const std::int64_t bias = (16 + 32) * 4;
  auto conv = [&](int cin, int cout) {
    const std::int64_t w = 16 * cin * 9 * 4, dst = 16 * 2 * 64 * 4, out = cout * 2 * 64 * 4;
    return std::max(w + bias + dst, dst + out);
  };
  const std::int64_t stem = weights + x + conv(3, 8);
  const std::int64_t enc = weights + x + h + conv(8, 8);
  const std::int64_t head = weights + x + h + conv(8, 3);
  const PeakEstimate p = EstimateInferencePeak(a, {2, 8}, DType::kFp32, cpu);
  EXPECT_EQ(p.bytes, std::max({stem, enc, head}));
  EXPECT_EQ(p.breakdown.Total(), p.bytes);
  EXPECT_EQ(p.breakdown.workspace, conv(8, 8) - h);
}

TEST(CostModelHand, OneLevelTrainingStep) {
  const Architecture a =
      Arch({8}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  const std::int64_t W = 1027 * 4, x = 768, h = 2048;
  // Persistent: weights, gradients, Adam's two moments, input and target.
  const std::int64_t persistent = 4 * W + 2 * x;
  // Forward saves both activations (conv inputs / relu results). Backward of the encoder conv:
  // saved t1 and t2 are released progressively; at the encoder conv, t1 (its saved input) and
  // its output gradient are alive while the input gradient and the weight gradient are made.
  //   backward head conv:  persistent + t1 + t2 + dL/dy + dL/dt2 + dW_head
  //   backward enc relu:   persistent + t1 + t2 + dL/dt2 + dL/dt2'
  //   backward enc conv:   persistent + t1 + dL/dt2' + dL/dt1 + dW_enc   <- the peak
  // and all through the backward, the scalar loss and its gradient seed.
  const std::int64_t scalars = 2 * 4;
  const std::int64_t head_bw = persistent + 2 * h + x + h + 219 * 4 + scalars;
  const std::int64_t relu_bw = persistent + 2 * h + 2 * h + scalars;
  const std::int64_t enc_bw = persistent + h + h + h + 584 * 4 + scalars;
  ASSERT_GT(enc_bw, relu_bw);
  ASSERT_GT(enc_bw, head_bw);
  const PeakEstimate p = EstimateTrainPeak(a, {1, 8}, DType::kFp32, NoWorkspace());
  EXPECT_EQ(p.bytes, enc_bw);
  EXPECT_EQ(p.location.phase, Phase::kBackward);
  EXPECT_EQ(p.location.op, OpKind::kConv3x3);
  EXPECT_EQ(p.location.stage, Stage::kEncoder);
  EXPECT_EQ(p.breakdown.weights, W);
  EXPECT_EQ(p.breakdown.gradients, W);
  EXPECT_EQ(p.breakdown.optimizer_state, 2 * W);
  EXPECT_EQ(p.breakdown.Total(), p.bytes);
}

// --- Two levels: every skip / upsample / downsample kind. --------------------------------------
// widths [8, 16], one block everywhere, tile 4 (level 0: 16 pixels, level 1: 4 pixels), fp32.
// Bytes of a tensor with c channels at level l: c * pixels(l) * 4.
constexpr std::int64_t A0(int c) { return c * 16 * 4; }
constexpr std::int64_t A1(int c) { return c * 4 * 4; }

struct TwoLevelCase {
  SkipKind skip;
  UpsampleKind up;
  DownsampleKind down;
  std::int64_t params;
  std::int64_t macs;
  std::int64_t peak_over_base;  // inference peak minus (weights + input)
  OpKind peak_op;
  Stage peak_stage;
};

class CostModelTwoLevels : public ::testing::TestWithParam<TwoLevelCase> {};

TEST_P(CostModelTwoLevels, HandComputedParamsMacsPeak) {
  const TwoLevelCase& c = GetParam();
  const Architecture a = Arch({8, 16}, {1, 1}, {1}, c.skip, c.up, c.down);
  EXPECT_EQ(Parameters(a), c.params);
  EXPECT_EQ(CountWork(a, {1, 4}, DType::kFp32).macs, c.macs);
  const PeakEstimate p = EstimateInferencePeak(a, {1, 4}, DType::kFp32, NoWorkspace());
  EXPECT_EQ(p.bytes, c.params * 4 + A0(3) + c.peak_over_base);
  EXPECT_EQ(p.location.op, c.peak_op) << Name(p.location.op);
  EXPECT_EQ(p.location.stage, c.peak_stage) << Name(p.location.stage);
  EXPECT_EQ(p.breakdown.Total(), p.bytes);
  // Batch scales every activation.
  const PeakEstimate p3 = EstimateInferencePeak(a, {3, 4}, DType::kFp32, NoWorkspace());
  EXPECT_EQ(p3.bytes, c.params * 4 + 3 * (A0(3) + c.peak_over_base));
}

// Shared parts: stem 3->8 (3x3), encoder 8->8 (3x3) at level 0, 16->16 (3x3) at level 1,
// head 8->3 (3x3). MACs of a k x k conv: out pixels * cout * cin * k^2.
constexpr std::int64_t kSharedParams =
    ConvParams(3, 8, 3) + ConvParams(8, 8, 3) + ConvParams(16, 16, 3) + ConvParams(8, 3, 3);
constexpr std::int64_t kSharedMacs =
    16 * 8 * 3 * 9 + 16 * 8 * 8 * 9 + 4 * 16 * 16 * 9 + 16 * 3 * 8 * 9;

INSTANTIATE_TEST_SUITE_P(
    Kinds, CostModelTwoLevels,
    ::testing::Values(
        // concat / transposed / strided. Live beyond W+x after each op:
        //   stem h0; enc h0+h0'; down s0+d1; enc1 s0+d1+e1; convT s0+e1+u; cat s0+u+c;
        //   dec c+o; head o+y. The concat is the peak: s0 + u + c = A0(8)+A0(8)+A0(16).
        TwoLevelCase{
            SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided,
            kSharedParams + ConvParams(8, 16, 2) + ConvParams(16, 8, 2) + ConvParams(16, 8, 3),
            kSharedMacs + 4 * 16 * 8 * 4 + 4 * 16 * 8 * 4 + 16 * 8 * 16 * 9, A0(8) + A0(8) + A0(16),
            OpKind::kConcat, Stage::kFuse},
        // add / bilinear / maxpool:
        //   maxpool s0+p; conv1x1 s0+p+d1; enc1 s0+d1+e1; bilinear s0+e1+b(16ch at level 0);
        //   conv1x1 s0+b+u; add (in place) s0+u; dec u+o (8ch); head o+y.
        //   Peak: bilinear's conv1x1, s0 + b + u = A0(8) + A0(16) + A0(8).
        TwoLevelCase{
            SkipKind::kAdd, UpsampleKind::kBilinear, DownsampleKind::kMaxPool,
            kSharedParams + ConvParams(8, 16, 1) + ConvParams(16, 8, 1) + ConvParams(8, 8, 3),
            kSharedMacs + 4 * 16 * 8 + 16 * 8 * 16 + 16 * 8 * 8 * 9, A0(8) + A0(16) + A0(8),
            OpKind::kConv1x1, Stage::kUpsample},
        // concat / pixelshuffle / maxpool:
        //   conv1x1 16->32 at level 1: s0+e1+c (A1(32) = A0(8)); shuffle s0+c+u; cat s0+u+cat.
        //   Peak: the concat, A0(8) + A0(8) + A0(16).
        TwoLevelCase{
            SkipKind::kConcat, UpsampleKind::kPixelShuffle, DownsampleKind::kMaxPool,
            kSharedParams + ConvParams(8, 16, 1) + ConvParams(16, 32, 1) + ConvParams(16, 8, 3),
            kSharedMacs + 4 * 16 * 8 + 4 * 32 * 16 + 16 * 8 * 16 * 9, A0(8) + A0(8) + A0(16),
            OpKind::kConcat, Stage::kFuse},
        // add / transposed / strided: convT s0+e1+u = A0(8)+A1(16)+A0(8) is the peak
        //   (dec conv: u + o = 2*A0(8) is smaller).
        TwoLevelCase{
            SkipKind::kAdd, UpsampleKind::kTransposed, DownsampleKind::kStrided,
            kSharedParams + ConvParams(8, 16, 2) + ConvParams(16, 8, 2) + ConvParams(8, 8, 3),
            kSharedMacs + 4 * 16 * 8 * 4 + 4 * 16 * 8 * 4 + 16 * 8 * 8 * 9, A0(8) + A1(16) + A0(8),
            OpKind::kConvTranspose2x2, Stage::kUpsample}));

TEST(CostModelHand, Fp16HalvesEveryByte) {
  // Strided downsampling: max pooling's int64 indices would not halve.
  const Architecture a = Arch({16, 32, 64}, {2, 1, 1}, {1, 2}, SkipKind::kConcat,
                              UpsampleKind::kBilinear, DownsampleKind::kStrided);
  const DeviceProfile np = NoWorkspace();
  EXPECT_EQ(InferencePeakBytes(a, {2, 64}, DType::kFp32, np),
            2 * InferencePeakBytes(a, {2, 64}, DType::kFp16, np));
  EXPECT_EQ(TrainPeakBytes(a, {2, 32}, DType::kFp32, np),
            2 * TrainPeakBytes(a, {2, 32}, DType::kBf16, np));
}

TEST(CostModelShape, ValidateShapeNamesFieldAndRange) {
  const Architecture a = Arch({8, 16, 32, 64}, {1, 1, 1, 1}, {1, 1, 1}, SkipKind::kConcat,
                              UpsampleKind::kTransposed, DownsampleKind::kStrided);
  EXPECT_TRUE(ValidateShape(a, {1, 256}, "batch", "tile").ok());
  const Status bad_tile = ValidateShape(a, {1, 100}, "batch", "tile");
  EXPECT_EQ(bad_tile.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_tile.message().find("tile: 100 is not a multiple of 8"), std::string::npos)
      << bad_tile.message();
  EXPECT_NE(ValidateShape(a, {1, 0}, "batch", "tile").message().find("tile: 0"), std::string::npos);
  EXPECT_NE(ValidateShape(a, {1, kMaxSide + 8}, "b", "patch").message().find("patch:"),
            std::string::npos);
  const Status bad_batch = ValidateShape(a, {0, 256}, "train-batch", "patch");
  EXPECT_NE(bad_batch.message().find("train-batch: 0 is not in [1, 4096]"), std::string::npos)
      << bad_batch.message();
  EXPECT_FALSE(ValidateShape(a, {kMaxBatch + 1, 256}, "batch", "tile").ok());
}

TEST(CostModelProfiles, ShippedProfilesAreFoundAndUnknownIsNotFound) {
  for (const char* name : {"cpu", "h100"}) {
    auto p = FindDeviceProfile(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ((*p)->name, name);
    EXPECT_GT((*p)->peak_flops_fp32, 0);
    EXPECT_GT((*p)->bandwidth_bytes_per_s, 0);
  }
  EXPECT_EQ((*FindDeviceProfile("h100"))->kind, DeviceKind::kCuda);
  const auto missing = FindDeviceProfile("tpu");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("cpu"), std::string::npos);
}

TEST(CostModelLatency, RooflineOfSquareAndOblongImages) {
  const Architecture a =
      Arch({8}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  DeviceProfile dev = NoWorkspace();
  dev.peak_flops_fp32 = 1e9;
  dev.bandwidth_bytes_per_s = 1e18;  // compute bound
  dev.op_overhead_s = 1e-3;
  const WorkCounts w = CountWork(a, {1, 8}, DType::kFp32);
  const double expected = 2.0 * static_cast<double>(w.macs) / 1e9 + w.ops * 1e-3;
  EXPECT_NEAR(InferenceLatencySeconds(a, {1, 8}, DType::kFp32, dev), expected, 1e-9 * expected);
  // An 8 x 16 image is twice the work of an 8 x 8 one in as many ops.
  const double oblong = 2 * 2.0 * static_cast<double>(w.macs) / 1e9 + w.ops * 1e-3;
  EXPECT_NEAR(InferenceLatencySeconds(a, 1, 8, 16, DType::kFp32, dev), oblong, 1e-9 * oblong);
  EXPECT_NEAR(InferenceLatencySeconds(a, 1, 16, 8, DType::kFp32, dev), oblong, 1e-9 * oblong);
  EXPECT_DOUBLE_EQ(InferenceLatencySeconds(a, 2, 8, 8, DType::kFp32, dev),
                   InferenceLatencySeconds(a, 1, 8, 16, DType::kFp32, dev));
}

// --- Invariants over thousands of sampled architectures. ---------------------------------------

class CostModelInvariants : public ::testing::Test {
 protected:
  std::vector<Architecture> SampleMany(int n, std::uint64_t seed, SearchSpace space = {}) {
    std::mt19937_64 rng(seed);
    std::vector<Architecture> out;
    out.reserve(n);
    for (int i = 0; i < n; ++i) out.push_back(Sample(space, rng));
    return out;
  }
};

// From batch 2 up. At batch 1 the CPU profile is, like LibTorch, not monotone: a convolution on
// a small single-image input takes the native kernel with its im2col columns, and a slightly
// larger one takes oneDNN, which can need less (see BatchOneCrossesTheNativeThreshold).
TEST_F(CostModelInvariants, PeaksMonotoneInTileAndBatch) {
  for (const DeviceProfile& dev : DeviceProfiles()) {
    for (const Architecture& a : SampleMany(1500, 11)) {
      const int m = SpatialMultiple(a);
      const int t = std::max(m, 64 / m * m);
      const std::int64_t base = InferencePeakBytes(a, {2, t}, DType::kFp32, dev);
      EXPECT_LT(base, InferencePeakBytes(a, {2, t + m}, DType::kFp32, dev)) << ToCanonicalJson(a);
      EXPECT_LT(base, InferencePeakBytes(a, {3, t}, DType::kFp32, dev)) << ToCanonicalJson(a);
      const std::int64_t train = TrainPeakBytes(a, {2, t}, DType::kFp32, dev);
      EXPECT_LT(train, TrainPeakBytes(a, {2, t + m}, DType::kFp32, dev)) << ToCanonicalJson(a);
      EXPECT_LT(train, TrainPeakBytes(a, {3, t}, DType::kFp32, dev)) << ToCanonicalJson(a);
    }
  }
}

TEST(CostModelCpu, BatchOneCrossesTheNativeThreshold) {
  // One level of 32 channels at batch 1: the encoder conv's input has 32*H*W elements. At 24x24
  // (18432 <= 20480) LibTorch runs the native kernel with 32*9*576 floats of columns; at 32x32
  // it runs oneDNN, whose buffers are the padded weights, bias and a blocked destination.
  const Architecture a =
      Arch({32}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  const DeviceProfile& cpu = DefaultDeviceProfile();
  const PeakEstimate small = EstimateInferencePeak(a, {1, 24}, DType::kFp32, cpu);
  EXPECT_EQ(small.location.stage, Stage::kEncoder);
  EXPECT_EQ(small.breakdown.workspace, 32 * 9 * 576 * 4);
  const PeakEstimate large = EstimateInferencePeak(a, {1, 32}, DType::kFp32, cpu);
  EXPECT_EQ(large.location.stage, Stage::kEncoder);
  // Reordered source, weights and blocked destination beside each other; the output is not
  // workspace.
  const std::int64_t src = 32 * 1024 * 4, w = 32 * 32 * 9 * 4, dst = 32 * 1024 * 4, out = dst;
  EXPECT_EQ(large.breakdown.workspace, src + w + dst - out);
  EXPECT_GT(small.bytes, large.bytes);
}

TEST(CostModelCpu, ThreadsAddOneDnnWeightGradientCopies) {
  // One encoder level of width w, 64x64 patches: the training step's growth over one thread,
  // as LibTorch 1.13 measured it (`peaknas-worker once --threads T`, docs/cost-model.md). Each
  // thread oneDNN splits the weight gradient's reduction over keeps a private copy of the
  // weight and bias gradients; how many it splits over is its own balance (w = 48 at three
  // threads and batch 1: none), and at batch > 1 the bias gradient's reducer adds partial sums.
  struct Row {
    int width;
    int threads;
    int batch;
    std::int64_t growth;
  };
  const Row rows[] = {
      {32, 2, 1, 45312},  {32, 2, 8, 45312},  {32, 3, 1, 82304},  {32, 3, 8, 82304},
      {32, 4, 1, 119296}, {32, 4, 8, 135808}, {48, 2, 1, 91456},  {48, 2, 8, 103936},
      {48, 3, 1, 0},      {48, 3, 8, 174592}, {48, 4, 1, 257728}, {48, 4, 8, 257728},
  };
  for (const Row& r : rows) {
    const Architecture a = Arch({r.width}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed,
                                DownsampleKind::kStrided);
    DeviceProfile one = DefaultDeviceProfile();
    DeviceProfile many = one;
    many.cpu_conv.intra_op_threads = r.threads;
    const Shape patch{r.batch, 64};
    EXPECT_EQ(
        TrainPeakBytes(a, patch, DType::kFp32, many) - TrainPeakBytes(a, patch, DType::kFp32, one),
        r.growth)
        << "w=" << r.width << " threads=" << r.threads << " batch=" << r.batch;
    // The forward pass keeps no per-thread buffers.
    EXPECT_EQ(InferencePeakBytes(a, patch, DType::kFp32, many),
              InferencePeakBytes(a, patch, DType::kFp32, one));
  }
}

TEST(CostModelCpu, MostThreadsWithinBudget) {
  // The one-level w = 48 net above at batch 8: 3 threads add 174 592 bytes, 4 add 257 728.
  const Architecture a =
      Arch({48}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  Budget budget{.training = true, .patch = {8, 64}, .device = &DefaultDeviceProfile()};
  const std::int64_t one = TrainPeakBytes(a, budget.patch, DType::kFp32, *budget.device);
  budget.bytes = one + 180000;
  EXPECT_EQ(MostThreadsWithinBudget(budget, a, 4), 3);
  EXPECT_EQ(MostThreadsWithinBudget(budget, a, 2), 2);
  EXPECT_EQ(MostThreadsWithinBudget(budget, a, 0), 0);  // not stated
  budget.bytes = one;
  EXPECT_EQ(MostThreadsWithinBudget(budget, a, 4), 1);
  budget.bytes = one + 300000;
  EXPECT_EQ(MostThreadsWithinBudget(budget, a, 4), 4);
  // A GPU's peaks do not depend on the host's threads.
  budget.device = *FindDeviceProfile("h100");
  budget.bytes = TrainPeakBytes(a, budget.patch, DType::kFp32, *budget.device);
  EXPECT_EQ(MostThreadsWithinBudget(budget, a, 4), 0);
}

TEST_F(CostModelInvariants, TrainingPeakAtLeastInferencePeakAtEqualShapes) {
  for (const DeviceProfile& dev : DeviceProfiles()) {
    for (const Architecture& a : SampleMany(1500, 12)) {
      const int m = SpatialMultiple(a);
      for (const Shape s : {Shape{1, m}, Shape{4, 4 * m}, Shape{2, 128 / m * m + m}}) {
        EXPECT_GE(TrainPeakBytes(a, s, DType::kFp32, dev),
                  InferencePeakBytes(a, s, DType::kFp32, dev))
            << ToCanonicalJson(a);
      }
    }
  }
}

TEST_F(CostModelInvariants, PeakCoversResidentTensorsAndBreakdownAddsUp) {
  const DeviceProfile& dev = DefaultDeviceProfile();
  for (const Architecture& a : SampleMany(2000, 13)) {
    const int m = SpatialMultiple(a);
    const Shape s{2, 4 * m};
    const std::int64_t weights = Parameters(a) * 4;
    const std::int64_t x = 2LL * 3 * s.size * s.size * 4;
    const PeakEstimate inf = EstimateInferencePeak(a, s, DType::kFp32, dev);
    EXPECT_EQ(inf.bytes, InferencePeakBytes(a, s, DType::kFp32, dev));
    EXPECT_GE(inf.bytes, weights + 2 * x);  // weights, input, output at the end
    EXPECT_EQ(inf.breakdown.Total(), inf.bytes);
    EXPECT_GE(inf.breakdown.activations, x);
    const PeakEstimate tr = EstimateTrainPeak(a, s, DType::kFp32, dev);
    EXPECT_EQ(tr.bytes, TrainPeakBytes(a, s, DType::kFp32, dev));
    EXPECT_GE(tr.bytes, 4 * weights + 2 * x);
    EXPECT_EQ(tr.breakdown.Total(), tr.bytes);
    EXPECT_GE(tr.breakdown.activations, 2 * x);
  }
}

// InferencePeakBytes (the search's hot path: one walk, the weights summed as it goes) and
// EstimateInferencePeak (with where and why) agree to the byte, on every profile and dtype.
TEST_F(CostModelInvariants, TheFastPeakEqualsTheLocatedPeak) {
  for (const DeviceProfile& dev : DeviceProfiles()) {
    for (const Architecture& a : SampleMany(400, 17)) {
      const int m = SpatialMultiple(a);
      for (const Shape s : {Shape{1, 8 * m}, Shape{2, 4 * m}}) {
        for (const DType t : {DType::kFp32, DType::kFp16}) {
          EXPECT_EQ(InferencePeakBytes(a, s, t, dev), EstimateInferencePeak(a, s, t, dev).bytes)
              << dev.name << " " << ToCanonicalJson(a);
        }
      }
    }
  }
}

TEST_F(CostModelInvariants, WorkScalesWithBatchAndArea) {
  for (const Architecture& a : SampleMany(1000, 14)) {
    const int m = SpatialMultiple(a);
    const WorkCounts w1 = CountWork(a, {1, 2 * m}, DType::kFp32);
    const WorkCounts w2 = CountWork(a, {3, 2 * m}, DType::kFp32);
    const WorkCounts w4 = CountWork(a, {1, 4 * m}, DType::kFp32);
    EXPECT_EQ(w2.macs, 3 * w1.macs);
    EXPECT_EQ(w4.macs, 4 * w1.macs);
    EXPECT_EQ(w4.activations, 4 * w1.activations);
    EXPECT_GT(w1.memory_traffic_bytes, Parameters(a) * 4);
  }
}

// The largest batch of a pass, and the peak that it bounds.
struct BatchLimit {
  const char* pass;
  decltype(&MaxInferenceBatch) max_batch;
  decltype(&InferencePeakBytes) peak;
};
constexpr BatchLimit kBatchLimits[] = {{"inference", MaxInferenceBatch, InferencePeakBytes},
                                       {"training", MaxTrainBatch, TrainPeakBytes}};

TEST_F(CostModelInvariants, LargestTileAndBatchFitAndTheNextDoNot) {
  const DeviceProfile& dev = DefaultDeviceProfile();
  const std::int64_t budget = 512LL << 20;
  int found_tiles = 0;
  for (const Architecture& a : SampleMany(600, 15)) {
    const int m = SpatialMultiple(a);
    const int tile = MaxTile(a, budget, 1, DType::kFp32, dev);
    if (tile == 0) {
      EXPECT_GT(InferencePeakBytes(a, {1, m}, DType::kFp32, dev), budget);
    } else {
      ++found_tiles;
      EXPECT_EQ(tile % m, 0);
      EXPECT_LE(InferencePeakBytes(a, {1, tile}, DType::kFp32, dev), budget);
      if (tile + m <= kMaxSide) {
        EXPECT_GT(InferencePeakBytes(a, {1, tile + m}, DType::kFp32, dev), budget)
            << ToCanonicalJson(a);
      }
    }
    const int t = 8 * m;
    for (const BatchLimit& limit : kBatchLimits) {
      SCOPED_TRACE(limit.pass);
      const int batch = limit.max_batch(a, budget, t, DType::kFp32, dev);
      if (batch > 0) {
        EXPECT_LE(limit.peak(a, {batch, t}, DType::kFp32, dev), budget);
        if (batch < kMaxBatch) {
          EXPECT_GT(limit.peak(a, {batch + 1, t}, DType::kFp32, dev), budget);
        }
      } else {
        EXPECT_GT(limit.peak(a, {1, t}, DType::kFp32, dev), budget);
      }
    }
  }
  EXPECT_GT(found_tiles, 100);  // the check above must actually run
}

}  // namespace
}  // namespace peaknas::search
