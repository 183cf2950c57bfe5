#include "search/cost_model.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>
#include <string>

#include "base/enum_names.h"

// Forces a function or lambda inline (GCC and Clang spell it the same way; a lambda takes the
// attribute only in this form, after its parameters). The estimate's walk relies on it: an op
// record built only to be passed by reference costs more than the sweep's arithmetic.
#define PEAKNAS_ALWAYS_INLINE __attribute__((always_inline))

namespace peaknas::search {
namespace {

using i64 = std::int64_t;

// One op of the forward schedule, as the walker hands it to a visitor. Tensor ids are indices
// into the pass's tensors (0 is the input x); an in-place op has out == in0.
struct OpDesc {
  OpKind kind = OpKind::kConv3x3;
  Stage stage = Stage::kStem;
  int level = 0;  // pyramid level of the output
  int index = 0;  // position in the forward schedule
  int in0 = -1;
  int in1 = -1;
  int out = -1;
  i64 in0_bytes = 0;
  i64 in1_bytes = 0;
  i64 out_bytes = 0;
  i64 out_elems = 0;
  i64 weight_bytes = 0;  // weights and bias of this op
  i64 params = 0;
  i64 macs = 0;
  i64 traffic_bytes = 0;
  // Convolution geometry (0 for other ops), for the device's convolution rules.
  int cin = 0;
  int cout = 0;
  int kernel = 0;
  int stride = 0;
  i64 batch = 0;
  i64 in_plane = 0;    // input pixels per channel
  i64 out_plane = 0;   // output pixels per channel
  int out_height = 0;  // output rows
  int dtype_bytes = 0;
  bool in_place = false;
  // Inference liveness: the input is dead once this op has run.
  bool release_in0 = false;
  bool release_in1 = false;
  // Autograd: what the op saves for its backward.
  bool saves_in0 = false;
  bool saves_out = false;
  bool in0_needs_grad = true;
  // How many identical ops this one stands for (see kCollapseRepeats); 1 in a full walk.
  int repeat = 1;
};

// Generates the exact forward schedule of DESIGN.md ("The U-Net family") in order.
// `visit` is called once per op; the walk allocates nothing.
//
// With kCollapseRepeats, a run of identical blocks (every encoder block of a level, every
// decoder block after a level's first) is visited once, its ops carrying the run's length in
// `repeat`. Such a block maps a (w, level) tensor to another (w, level) tensor and releases its
// input, so the live set before each block of the run is the same and so is every op's extra:
// a peak sweep sees the run's peak in its first block. Only the sums (weights, work) need
// `repeat`; op indices then skip, so a sweep that reports locations walks the full schedule.
template <bool kCollapseRepeats = false, typename Visit>
inline void WalkForward(const Architecture& a, i64 batch, int height, int width, int dtype_bytes,
                        Visit&& visit) {
  int next_id = 1;  // 0 is x
  int index = 0;
  const i64 d = dtype_bytes;
  auto plane = [&](int level) -> i64 {
    return static_cast<i64>(height >> level) * (width >> level);
  };
  auto elems = [&](int channels, int level) -> i64 { return batch * channels * plane(level); };

  auto emit = [&](OpDesc& op) PEAKNAS_ALWAYS_INLINE {
    op.index = index++;
    visit(static_cast<const OpDesc&>(op));
  };
  // A convolution with k x k kernel from (cin, level_in) to (cout, level_out); returns the id.
  // An op from (cin, level_in) to a new (cout, level_out) tensor: what every non-in-place op
  // fills the same way.
  auto unary = [&](OpKind kind, Stage stage, int cin, int level_in, int cout, int level_out,
                   int in_id) PEAKNAS_ALWAYS_INLINE {
    OpDesc op;
    op.kind = kind;
    op.stage = stage;
    op.level = level_out;
    op.in0 = in_id;
    op.out = next_id++;
    op.in0_bytes = elems(cin, level_in) * d;
    op.out_elems = elems(cout, level_out);
    op.out_bytes = op.out_elems * d;
    return op;
  };
  auto conv = [&](OpKind kind, Stage stage, int cin, int level_in, int cout, int level_out, int k,
                  int in_id, bool release_in, int repeat = 1) PEAKNAS_ALWAYS_INLINE -> int {
    OpDesc op = unary(kind, stage, cin, level_in, cout, level_out, in_id);
    op.repeat = repeat;
    op.params = static_cast<i64>(cin) * cout * k * k + cout;
    op.weight_bytes = op.params * d;
    // Transposed 2x2/s2: every input pixel feeds a 2x2 output block, one MAC per weight.
    op.macs = kind == OpKind::kConvTranspose2x2 ? elems(cin, level_in) * cout * k * k
                                                : op.out_elems * cin * k * k;
    op.traffic_bytes = op.in0_bytes + op.weight_bytes + op.out_bytes;
    op.release_in0 = release_in;
    op.saves_in0 = true;
    op.in0_needs_grad = in_id != 0;
    op.cin = cin;
    op.cout = cout;
    op.kernel = k;
    op.stride = level_out > level_in || kind == OpKind::kConvTranspose2x2 ? 2 : 1;
    op.batch = batch;
    op.in_plane = plane(level_in);
    op.out_plane = plane(level_out);
    op.out_height = height >> level_out;
    op.dtype_bytes = dtype_bytes;
    emit(op);
    return op.out;
  };
  auto act = [&](Stage stage, int level, int channels, int id) PEAKNAS_ALWAYS_INLINE {
    OpDesc op;
    op.kind = OpKind::kActivation;
    op.stage = stage;
    op.level = level;
    op.in0 = op.out = id;
    op.in0_bytes = op.out_bytes = elems(channels, level) * d;
    op.out_elems = elems(channels, level);
    op.traffic_bytes = 2 * op.out_bytes;
    op.in_place = true;
    op.saves_out = true;  // relu_/leaky_relu_ backward uses the result
    emit(op);
  };
  // A parameter-free op from (cin, level_in) to (cout, level_out).
  auto reshape_op = [&](OpKind kind, Stage stage, int cin, int level_in, int cout, int level_out,
                        int in_id, bool release_in, bool saves_in) PEAKNAS_ALWAYS_INLINE -> int {
    OpDesc op = unary(kind, stage, cin, level_in, cout, level_out, in_id);
    op.traffic_bytes = op.in0_bytes + op.out_bytes;
    op.release_in0 = release_in;
    op.saves_in0 = saves_in;
    emit(op);
    return op.out;
  };

  const int L = a.levels;
  std::array<int, kMaxLevels> skip_id{};
  // 1. Stem.
  int h = conv(OpKind::kConv3x3, Stage::kStem, 3, 0, a.widths[0], 0, 3, /*in_id=*/0,
               /*release_in=*/false);
  act(Stage::kStem, 0, a.widths[0], h);
  // 2. Encoder.
  for (int i = 0; i < L; ++i) {
    const int w = a.widths[i];
    const int enc_visits = kCollapseRepeats ? 1 : a.enc_blocks[i];
    const int enc_repeat = kCollapseRepeats ? a.enc_blocks[i] : 1;
    for (int b = 0; b < enc_visits; ++b) {
      h = conv(OpKind::kConv3x3, Stage::kEncoder, w, i, w, i, 3, h, true, enc_repeat);
      act(Stage::kEncoder, i, w, h);
    }
    if (i == L - 1) break;
    skip_id[i] = h;  // kept until its fusion
    const int wn = a.widths[i + 1];
    if (a.downsample == DownsampleKind::kStrided) {
      h = conv(OpKind::kConv2x2Stride2, Stage::kDownsample, w, i, wn, i + 1, 2, h, false);
    } else {
      const int p = reshape_op(OpKind::kMaxPool2, Stage::kDownsample, w, i, w, i + 1, h, false,
                               /*saves_in=*/true);
      h = conv(OpKind::kConv1x1, Stage::kDownsample, w, i + 1, wn, i + 1, 1, p, true);
    }
  }
  // 3. Decoder.
  for (int i = L - 2; i >= 0; --i) {
    const int w = a.widths[i];
    const int wd = a.widths[i + 1];
    int u = 0;
    switch (a.upsample) {
      case UpsampleKind::kTransposed:
        u = conv(OpKind::kConvTranspose2x2, Stage::kUpsample, wd, i + 1, w, i, 2, h, true);
        break;
      case UpsampleKind::kBilinear: {
        const int b = reshape_op(OpKind::kBilinear2x, Stage::kUpsample, wd, i + 1, wd, i, h, true,
                                 /*saves_in=*/false);
        u = conv(OpKind::kConv1x1, Stage::kUpsample, wd, i, w, i, 1, b, true);
        break;
      }
      case UpsampleKind::kPixelShuffle: {
        const int c = conv(OpKind::kConv1x1, Stage::kUpsample, wd, i + 1, 4 * w, i + 1, 1, h, true);
        u = reshape_op(OpKind::kPixelShuffle, Stage::kUpsample, 4 * w, i + 1, w, i, c, true,
                       /*saves_in=*/false);
        break;
      }
    }
    OpDesc fuse;
    fuse.stage = Stage::kFuse;
    fuse.level = i;
    fuse.in0 = u;
    fuse.in1 = skip_id[i];
    fuse.in0_bytes = fuse.in1_bytes = elems(w, i) * d;
    fuse.release_in0 = true;
    fuse.release_in1 = true;
    int cin = w;
    if (a.skip == SkipKind::kConcat) {
      fuse.kind = OpKind::kConcat;
      fuse.out = next_id++;
      fuse.out_elems = elems(2 * w, i);
      fuse.out_bytes = fuse.out_elems * d;
      fuse.traffic_bytes = 2 * fuse.out_bytes;
      cin = 2 * w;
    } else {
      fuse.kind = OpKind::kAddSkip;
      fuse.out = u;
      fuse.in_place = true;
      fuse.release_in0 = false;  // u lives on as h
      fuse.out_elems = elems(w, i);
      fuse.out_bytes = fuse.out_elems * d;
      fuse.traffic_bytes = 3 * fuse.out_bytes;
    }
    emit(fuse);
    h = fuse.out;
    const int dec_visits = kCollapseRepeats ? std::min(a.dec_blocks[i], 2) : a.dec_blocks[i];
    for (int b = 0; b < dec_visits; ++b) {
      const int repeat = kCollapseRepeats && b == 1 ? a.dec_blocks[i] - 1 : 1;
      h = conv(OpKind::kConv3x3, Stage::kDecoder, b == 0 ? cin : w, i, w, i, 3, h, true, repeat);
      act(Stage::kDecoder, i, w, h);
    }
  }
  // 4. Head and global residual.
  const int y = conv(OpKind::kConv3x3, Stage::kHead, a.widths[0], 0, 3, 0, 3, h, true);
  OpDesc res;
  res.kind = OpKind::kAddInput;
  res.stage = Stage::kHead;
  res.level = 0;
  res.in0 = res.out = y;
  res.in1 = 0;
  res.in0_bytes = res.in1_bytes = res.out_bytes = elems(3, 0) * d;
  res.out_elems = elems(3, 0);
  res.traffic_bytes = 3 * res.out_bytes;
  res.in_place = true;
  emit(res);
}

inline i64 Workspace(const WorkspaceTerm& t, i64 in_bytes, i64 weight_bytes, i64 out_bytes,
                     i64 out_elems) {
  if (t.in == 0 && t.weight == 0 && t.out == 0 && t.out_index == 0) return t.constant;
  const double ws =
      t.in * static_cast<double>(in_bytes) + t.weight * static_cast<double>(weight_bytes) +
      t.out * static_cast<double>(out_bytes) + t.out_index * 8.0 * static_cast<double>(out_elems);
  // ceil of a non-negative sum, inline (std::ceil is a library call without SSE4.1).
  i64 bytes = static_cast<i64>(ws);
  if (static_cast<double>(bytes) < ws) ++bytes;
  return bytes + t.constant;
}

inline bool IsConv(OpKind k) {
  return k == OpKind::kConv3x3 || k == OpKind::kConv2x2Stride2 || k == OpKind::kConv1x1 ||
         k == OpKind::kConvTranspose2x2;
}

// `v` rounded up to a multiple of `block` (> 0). Channel blocks are powers of two (8, 16): a
// mask then, not a 64-bit division, which would dominate the estimate's cost.
inline i64 RoundUp(i64 v, i64 block) {
  if ((block & (block - 1)) == 0) return (v + block - 1) & -block;
  return (v + block - 1) / block * block;
}

// The path LibTorch takes for a (non-transposed) convolution on the CPU.
inline bool UsesOneDnn(const OpDesc& op, const CpuConvRules& r) {
  const bool first = op.stride > 1 || op.batch >= 16 || op.kernel != 1 || r.intra_op_threads > 1;
  const bool second = op.batch > 1 || op.batch * op.cin * op.in_plane > r.small_input_elements;
  return first && second;
}

// Bytes an op adds to the live set while it runs in the forward pass: its output (unless in
// place) and the framework's buffers beside it.
struct Extra {
  i64 total = 0;      // at the op's own peak
  i64 workspace = 0;  // the part of `total` that is framework buffers
};

// Forced inline (as ForwardExtra is) into the walks: a peak sweep then reads only the op
// fields it needs, and the compiler drops the rest of each op's record (docs/benchmarks.md).
PEAKNAS_ALWAYS_INLINE inline Extra CpuConvForward(const OpDesc& op, const CpuConvRules& r) {
  const i64 d = op.dtype_bytes;
  const i64 out = op.out_bytes;
  if (op.kind == OpKind::kConvTranspose2x2) {
    // slow_conv_transpose2d: per-sample columns (cout*k*k x input pixels) and a row of ones.
    const i64 ws =
        static_cast<i64>(op.cout) * op.kernel * op.kernel * op.in_plane * d + op.out_plane * d;
    return {out + ws, ws};
  }
  if (!UsesOneDnn(op, r)) {
    // Native kernel: im2col columns for the whole batch, none for a 1x1/s1 conv (a view).
    const i64 ws = op.kernel == 1 && op.stride == 1
                       ? 0
                       : op.batch * op.cin * op.kernel * op.kernel * op.out_plane * d;
    return {out + ws, ws};
  }
  const i64 b = r.channel_block;
  const bool reorder_src = op.kernel == 1 || op.cin > r.plain_source_max_channels;
  const i64 src = reorder_src ? RoundUp(op.cin, b) * op.batch * op.in_plane * d : 0;
  const i64 weights =
      RoundUp(op.cout, b) * (reorder_src ? RoundUp(op.cin, b) : op.cin) * op.kernel * op.kernel * d;
  const i64 bias =
      RoundUp(op.cout, b) != op.cout ? (RoundUp(op.cout, b) + r.bias_padding_extra) * d : 0;
  const i64 dst = RoundUp(op.cout, b) * op.batch * op.out_plane * d;
  // Compute into the blocked dst beside the reordered source and weights; then copy the
  // blocked dst into the dense output.
  const i64 total = std::max(src + weights + bias + dst, dst + out);
  return {total, total - out};
}

inline i64 DivUp(i64 a, i64 b) { return (a + b - 1) / b; }

// How oneDNN 2.6 parallelizes an fp32 backward-weights convolution with its AVX-512 kernels:
// `mb` threads split the reduction (each but one accumulating into a private copy of the
// gradients), `total` threads run. A port of the kernels' balance(): a search for the split of
// threads over reduction, output- and input-channel blocks with the least memory traffic per
// thread (and, for the direct kernel, a second pass trading traffic for less compute).
struct ReductionSplit {
  i64 mb = 1;
  i64 total = 1;
};

// The splits balance() weighs, in its order: `m` threads over the reduction, `o` over
// output-channel blocks, and as many of the rest as there are input-channel blocks over those.
struct Split {
  i64 m = 1;
  i64 o = 1;
  i64 i = 1;
};
template <typename Visit>
void ForEachSplit(i64 threads, i64 m_max, i64 nb_oc, i64 nb_ic, Visit&& visit) {
  for (i64 m = 1; m <= m_max; ++m) {
    const i64 par = threads / m;
    for (i64 o = 1; o <= std::min(par, nb_oc); ++o) visit(Split{m, o, std::min(par / o, nb_ic)});
  }
}

// balance()'s first step: the split with the least memory traffic per thread (the last of
// equals); `least` gets that traffic.
template <typename Cost>
Split LeastTrafficSplit(i64 threads, i64 m_max, i64 nb_oc, i64 nb_ic, const Cost& traffic,
                        i64* least) {
  Split best;
  *least = traffic(best);
  ForEachSplit(threads, m_max, nb_oc, nb_ic, [&](const Split& s) {
    if (const i64 cost = traffic(s); cost <= *least) *least = cost, best = s;
  });
  return best;
}

// jit_avx512_common_conv_bwd_weights_kernel_f32 (kernels > 1, 16-channel blocks; inputs with
// fewer than 16 channels are read plain as one block).
ReductionSplit DirectConvSplit(const OpDesc& op, i64 threads) {
  constexpr i64 kMinOhReduce = 9;  // the 2-D harness reduces over bands of output rows too
  const i64 k = op.kernel;
  const i64 s = op.stride;
  const i64 oh = op.out_height;
  const i64 ow = op.out_plane / oh;
  const i64 ih = oh * s;
  const i64 iw = ow * s;
  const i64 ic_block = op.cin < 16 ? op.cin : 16;
  const i64 nb_ic = DivUp(op.cin, ic_block);
  const i64 nb_oc = DivUp(op.cout, 16);
  const bool two_d = oh > kMinOhReduce;
  const i64 ih_reduce = two_d ? ih : 1;
  const i64 oh_reduce = two_d ? oh : 1;
  const i64 ih_rest = two_d ? 1 : ih;
  const i64 oh_rest = two_d ? 1 : oh;
  const i64 oh_parts = std::max<i64>(1, oh_reduce / kMinOhReduce);
  const auto traffic = [&](const Split& p) {
    return DivUp(op.batch * ih_reduce, p.m) * DivUp(nb_ic, p.i) * ic_block * ih_rest * iw / s / s +
           DivUp(op.batch * oh_reduce, p.m) * DivUp(nb_oc, p.o) * 16 * oh_rest * ow +
           8 * DivUp(nb_oc, p.o) * DivUp(nb_ic, p.i) * k * k * ic_block * 16;
  };
  const auto compute = [&](const Split& p) {
    return DivUp(op.batch * oh_reduce, p.m) * DivUp(nb_oc, p.o) * DivUp(nb_ic, p.i);
  };
  const i64 m_max = std::min(threads, op.batch * oh_parts);
  i64 least = 0;
  Split best = LeastTrafficSplit(threads, m_max, nb_oc, nb_ic, traffic, &least);
  // Second step: less compute per thread for at most 10 % more traffic, or a quarter less.
  i64 best_compute = compute(best);
  ForEachSplit(threads, m_max, nb_oc, nb_ic, [&](const Split& p) {
    const i64 c = compute(p);
    const bool cheaper = c <= best_compute && static_cast<double>(traffic(p)) < 1.1 * least;
    if (cheaper || 4 * c <= 3 * best_compute) best_compute = c, best = p;
  });
  if (best.m > threads / 2 && best.m < threads) best.m = std::min(op.batch * oh_parts, threads);
  return {best.m, best.m * best.o * best.i};
}

// The divider of `value` in [lo, hi] that wastes the least when `value` is cut into blocks of
// it (the largest such when `largest`): oneDNN's best_divider.
i64 BestDivider(i64 value, i64 lo, i64 hi, bool largest) {
  hi = std::max<i64>(1, std::min(hi, value));
  lo = std::max<i64>(1, std::min(lo, hi));
  float least = std::numeric_limits<float>::max();
  i64 best = hi;
  for (i64 d = hi; d >= lo; --d) {
    const i64 padded = DivUp(value, d) * d;
    const float loss = static_cast<float>(padded - value) / static_cast<float>(padded);
    if ((largest && loss < least) || (!largest && loss <= least)) least = loss, best = d;
  }
  return best;
}

// jit_avx512_common_1x1_conv_kernel: the reduction runs over the batch and blocks of pixels.
ReductionSplit PointwiseConvSplit(const OpDesc& op, i64 threads) {
  const i64 pixels = op.out_plane;
  const i64 width = pixels / op.out_height;
  i64 block = BestDivider(pixels, 7, 16, true);
  if (pixels % block != 0) block = BestDivider(width, 4, width, false);
  if (block > 256) block = 1;
  const i64 nb_reduce = DivUp(pixels, block);
  const i64 nb_ic = DivUp(op.cin, 16);
  const i64 nb_oc = DivUp(op.cout, 16);
  const auto traffic = [&](const Split& p) {
    return DivUp(op.batch * nb_reduce, p.m) * DivUp(nb_ic, p.i) * 16 * block +
           DivUp(op.batch * nb_reduce, p.m) * DivUp(nb_oc, p.o) * 16 * block +
           12 * DivUp(nb_oc, p.o) * DivUp(nb_ic, p.i) * 16 * 16;
  };
  i64 least = 0;
  Split best = LeastTrafficSplit(threads, std::min(threads, op.batch * nb_reduce), nb_oc, nb_ic,
                                 traffic, &least);
  if (best.m > threads / 2 && best.m < threads) best.m = std::min(op.batch, threads);
  return {best.m, best.m * best.o * best.i};
}

// oneDNN's reduce_balancer_t for the bias gradient (jobs of 16 outputs reduced over the
// batch by `threads` threads): the scratchpad bytes of its partial sums and barriers.
i64 BiasReducerBytes(i64 threads, i64 nb_oc, i64 batch, i64 dtype_bytes) {
  constexpr i64 kJob = 16;
  const i64 max_buffer = threads * 3 * 5 * 5 * 16 * 16;
  const i64 min_per_group = std::max<i64>(1, nb_oc / threads);
  const i64 max_per_group = std::max<i64>(1, max_buffer / (threads * kJob));
  i64 groups = std::min(nb_oc / min_per_group, threads);
  i64 per_group = std::min(threads / groups, batch);
  i64 jobs_ub = DivUp(nb_oc, groups);
  i64 complexity = nb_oc * kJob * batch;
  for (i64 c_jobs = min_per_group; c_jobs < nb_oc; ++c_jobs) {
    const i64 c_groups = std::min(nb_oc / c_jobs, threads);
    const i64 c_per_group = std::min(threads / c_groups, batch);
    const i64 c_jobs_ub = DivUp(nb_oc, c_groups);
    if (c_per_group > 1 && c_jobs_ub > max_per_group) continue;
    const i64 c_complexity =
        kJob * c_jobs_ub * (DivUp(batch, c_per_group) + (c_per_group != 1 ? 1 : 0));
    if (c_complexity < complexity) {
      groups = c_groups, per_group = c_per_group, jobs_ub = c_jobs_ub, complexity = c_complexity;
    }
  }
  if (per_group == 1) return 0;
  constexpr i64 kPage = 4096;
  return groups * (per_group - 1) * jobs_ub * kJob * dtype_bytes + kPage + groups * kPage + kPage;
}

// oneDNN's backward-weights at more than one intra-op thread: the threads that split the
// reduction each but one accumulate into a private copy of the weight (and bias) gradients,
// and the bias reducer keeps per-thread partial sums, beside page-aligned barriers. With the
// AVX-512 kernels (16-channel blocks) this is oneDNN's own split, exactly. Elsewhere (the AVX2
// kernel for inputs of 4 to 15 channels, the GEMM fallback for inputs smaller than the kernel,
// other ISAs) it is a bound: every thread that may split the reduction does.
i64 OneDnnReductionBytes(const OpDesc& op, const CpuConvRules& r) {
  const i64 t = r.intra_op_threads;
  if (t <= 1) return 0;
  constexpr i64 kPage = 4096;
  constexpr i64 kBarrier = 2 * kPage;  // a page-aligned barrier context, booked with a page
  constexpr i64 kAlign = 128;          // oneDNN's scratchpad alignment per entry
  const i64 d = op.dtype_bytes;
  const i64 b = r.channel_block;
  const i64 k2 = static_cast<i64>(op.kernel) * op.kernel;
  const i64 cout = RoundUp(op.cout, b);
  const bool exact = b == 16 && (op.kernel == 1 || op.cin <= 3 || op.cin >= 16) &&
                     op.out_height * op.stride >= op.kernel;
  if (exact) {
    const bool pointwise = op.kernel == 1;
    const ReductionSplit split = pointwise ? PointwiseConvSplit(op, t) : DirectConvSplit(op, t);
    const i64 cin = op.cin < 16 && !pointwise ? op.cin : RoundUp(op.cin, 16);
    const i64 weights = cout * cin * k2 * d;
    i64 bytes = 0;
    if (split.mb > 1) {
      bytes += pointwise ? (split.mb - 1) * weights + kAlign
                         : (split.mb - 1) * (weights + cout * d) + kAlign + kBarrier;
    }
    return bytes + BiasReducerBytes(split.total, cout / 16, op.batch, d);
  }
  const i64 weights = cout * RoundUp(op.cin, b) * k2 * d;
  const i64 bias = cout * d;
  const i64 parts = op.kernel == 1 ? t : op.batch * std::max<i64>(1, op.out_height / 9);
  const i64 splitters = std::min(t, parts);
  const i64 batch_splitters = std::min(t, op.batch);
  i64 bytes = 0;
  if (splitters > 1) bytes += (splitters - 1) * (weights + bias) + kAlign + kBarrier;
  if (batch_splitters > 1) {
    // A reducer's groups round their jobs (blocks of `b` outputs, or of b x b x k^2 weights)
    // up: at most one job per thread more than the tensor, plus its space's page alignment
    // and a barrier per group.
    bytes += (batch_splitters - 1) * (bias + t * b * d + t * b * b * k2 * d) +
             2 * (kPage + (t + 1) * kPage);
  }
  return bytes;
}

// Backward of a convolution: the input gradient (unless the input is x) and the weight and bias
// gradients, which the kept .grad then absorbs. `total` includes the new gradients.
Extra CpuConvBackward(const OpDesc& op, const CpuConvRules& r) {
  const i64 d = op.dtype_bytes;
  const i64 gin = op.in0_needs_grad ? op.in0_bytes : 0;
  const i64 gw = op.weight_bytes;  // weights and bias
  if (op.kind == OpKind::kConvTranspose2x2) {
    const i64 cols = static_cast<i64>(op.cout) * op.kernel * op.kernel * op.in_plane * d;
    return {gin + gw + cols, cols};
  }
  if (!UsesOneDnn(op, r)) {
    const i64 cols = op.kernel == 1 && op.stride == 1
                         ? 0
                         : op.batch * op.cin * op.kernel * op.kernel * op.out_plane * d;
    return {gin + gw + cols, cols};
  }
  const i64 b = r.channel_block;
  const i64 k2 = static_cast<i64>(op.kernel) * op.kernel;
  const i64 gout_blk = RoundUp(op.cout, b) * op.batch * op.out_plane * d;
  // Input gradient: reordered output gradient and weights, blocked input gradient, then dense.
  i64 data_phase = 0;
  if (op.in0_needs_grad) {
    const i64 w_blk = RoundUp(op.cout, b) * RoundUp(op.cin, b) * k2 * d;
    const i64 gin_blk = RoundUp(op.cin, b) * op.batch * op.in_plane * d;
    data_phase = std::max(gout_blk + w_blk + gin_blk, gin_blk + gin);
  }
  // Weight gradient: reordered output gradient and source, blocked weight and bias gradients.
  const bool reorder_src = op.kernel == 1 || op.cin > r.plain_source_max_channels;
  const i64 src_blk = reorder_src ? RoundUp(op.cin, b) * op.batch * op.in_plane * d : 0;
  const i64 gw_blk = RoundUp(op.cout, b) * (reorder_src ? RoundUp(op.cin, b) : op.cin) * k2 * d;
  const i64 gbias =
      (RoundUp(op.cout, b) != op.cout ? (RoundUp(op.cout, b) + r.bias_padding_extra) * d : 0) +
      static_cast<i64>(op.cout) * d;
  const i64 reduction = OneDnnReductionBytes(op, r);
  const i64 weight_phase = gin + std::max(gout_blk + src_blk + gw_blk + gbias + reduction,
                                          gw_blk + gw + static_cast<i64>(op.cout) * d);
  const i64 total = std::max(data_phase, weight_phase);
  return {total, total - gin - gw};
}

PEAKNAS_ALWAYS_INLINE inline Extra ForwardExtra(const OpDesc& op, const DeviceProfile& device) {
  if (device.cpu_conv.enabled && IsConv(op.kind)) return CpuConvForward(op, device.cpu_conv);
  const i64 ws = Workspace(device.workspace.forward[static_cast<int>(op.kind)], op.in0_bytes,
                           op.weight_bytes, op.out_bytes, op.out_elems);
  return {(op.in_place ? 0 : op.out_bytes) + ws, ws};
}

// Backward of an op that makes a new input gradient (every op but concat and the in-place adds).
Extra BackwardExtra(const OpDesc& op, const DeviceProfile& device) {
  if (device.cpu_conv.enabled && IsConv(op.kind)) return CpuConvBackward(op, device.cpu_conv);
  const i64 ws = Workspace(device.workspace.backward[static_cast<int>(op.kind)], op.in0_bytes,
                           op.weight_bytes, op.out_bytes, op.out_elems);
  const i64 gin = op.in_place || op.in0_needs_grad ? op.in0_bytes : 0;
  // A conv's weight gradient is made, then accumulated into the kept .grad and freed.
  return {gin + op.weight_bytes + ws, ws + op.weight_bytes};
}

i64 InputBytes(const Shape& shape, int dtype_bytes) {
  return static_cast<i64>(shape.batch) * 3 * shape.size * shape.size * dtype_bytes;
}

PeakLocation LocationOf(const OpDesc& op, Phase phase) {
  return {
      .op = op.kind, .stage = op.stage, .level = op.level, .phase = phase, .op_index = op.index};
}

// The inference liveness sweep. `kWithLocation` keeps where the peak is; the bytes are the same.
template <bool kWithLocation>
PeakEstimate InferenceSweep(const Architecture& arch, const Shape& tile, DType dtype,
                            const DeviceProfile& device) {
  const int d = DTypeBytes(dtype);
  // The weights are live throughout: the sweep runs without them (summing them as it goes, so
  // the schedule is walked once) and adds them at the end. With the location, the breakdown
  // needs them up front.
  const i64 weights_known = kWithLocation ? Parameters(arch) * d : 0;
  i64 weights = 0;
  i64 live = weights_known + InputBytes(tile, d);
  PeakEstimate best;
  best.bytes = live;
  WalkForward<!kWithLocation>(
      arch, tile.batch, tile.size, tile.size, d, [&](const OpDesc& op) PEAKNAS_ALWAYS_INLINE {
        weights += op.weight_bytes * op.repeat;
        const Extra extra = ForwardExtra(op, device);
        const i64 at = live + extra.total;
        if (at > best.bytes) {
          best.bytes = at;
          if constexpr (kWithLocation) {
            best.location = LocationOf(op, Phase::kForward);
            best.breakdown = {.weights = weights_known,
                              .activations = at - weights_known - extra.workspace,
                              .workspace = extra.workspace};
          }
        }
        live += op.in_place ? 0 : op.out_bytes;
        if (op.release_in0) live -= op.in0_bytes;
        if (op.release_in1) live -= op.in1_bytes;
      });
  if constexpr (!kWithLocation) best.bytes += weights;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Training step.

// The largest schedule (6 levels, 8 blocks everywhere) has 205 ops and fewer tensors.
inline constexpr int kMaxOps = 256;
inline constexpr int kMaxTensors = 256;

struct Schedule {
  std::array<OpDesc, kMaxOps> ops;
  int num_ops = 0;
  i64 max_param_tensor_bytes = 0;
};

struct TensorInfo {
  i64 bytes = 0;
  int first_saver = -1;  // forward index of the first op that saves it; -1 if none
  int last_use = -1;     // forward index of its last use
};

// Reference-counted gradient storages: concat's backward hands out views of one storage and
// add's backward hands the same tensor to both branches.
struct GradStorage {
  i64 bytes = 0;
  int refs = 0;
};

class TrainSweep {
 public:
  TrainSweep(const Architecture& arch, const Shape& patch, DType dtype, const DeviceProfile& device)
      : device_(device), d_(DTypeBytes(dtype)) {
    WalkForward(arch, patch.batch, patch.size, patch.size, d_, [&](const OpDesc& op) {
      assert(schedule_.num_ops < kMaxOps);
      schedule_.ops[schedule_.num_ops++] = op;
      schedule_.max_param_tensor_bytes =
          std::max(schedule_.max_param_tensor_bytes, op.weight_bytes);
    });
    weights_ = Parameters(arch) * d_;
    input_bytes_ = InputBytes(patch, d_);
    // Weights, gradients (kept between steps), Adam's exp_avg and exp_avg_sq, input, target.
    persistent_ = 4 * weights_ + 2 * input_bytes_;
    for (int k = 0; k < schedule_.num_ops; ++k) {
      const OpDesc& op = schedule_.ops[k];
      Touch(op.in0, op.in0_bytes, k, op.saves_in0);
      if (op.in1 >= 0) Touch(op.in1, op.in1_bytes, k, false);
      Touch(op.out, op.out_bytes, k, op.saves_out);
    }
    tensors_[0].first_saver = -1;  // x is persistent, never freed
    // The output y is last used by the loss, after the schedule.
    tensors_[schedule_.ops[schedule_.num_ops - 1].out].last_use = kMaxOps;
  }

  PeakEstimate Run() {
    live_ = persistent_;
    best_.bytes = -1;
    Forward();
    LossForwardAndBackward();
    Backward();
    Optimizer();
    return best_;
  }

 private:
  void Touch(int id, i64 bytes, int k, bool saves) {
    assert(id >= 0 && id < kMaxTensors);
    TensorInfo& t = tensors_[id];
    t.bytes = bytes;
    t.last_use = k;
    if (saves && t.first_saver < 0) t.first_saver = k;
  }

  // `total` is what the op adds to the live set at its own peak, `workspace` included.
  void Consider(i64 total, i64 workspace, const OpDesc& op, Phase phase) {
    const i64 at = live_ + total;
    if (at <= best_.bytes) return;
    best_.bytes = at;
    best_.location = LocationOf(op, phase);
    best_.breakdown = {.weights = weights_,
                       .gradients = weights_,
                       .optimizer_state = 2 * weights_,
                       .activations = at - 4 * weights_ - workspace,
                       .workspace = workspace};
  }

  i64 ForwardWorkspace(const OpDesc& op) const {
    return Workspace(device_.workspace.forward[static_cast<int>(op.kind)], op.in0_bytes,
                     op.weight_bytes, op.out_bytes, op.out_elems);
  }
  // Linear workspace terms, for the ops that make no new input gradient (and the loss).
  i64 BackwardWorkspace(const OpDesc& op) const {
    return Workspace(device_.workspace.backward[static_cast<int>(op.kind)], op.in0_bytes,
                     op.weight_bytes, op.out_bytes, op.out_elems);
  }
  // Max pooling saves its int64 indices for the backward.
  static i64 SavedExtra(const OpDesc& op) {
    return op.kind == OpKind::kMaxPool2 ? op.out_elems * 8 : 0;
  }

  // A tensor not saved by anyone dies after its last forward use; x never does.
  void MaybeFreeAfterForwardUse(int id, int k) {
    if (id <= 0) return;
    const TensorInfo& t = tensors_[id];
    if (t.last_use == k && t.first_saver < 0) live_ -= t.bytes;
  }

  void Forward() {
    for (int k = 0; k < schedule_.num_ops; ++k) {
      const OpDesc& op = schedule_.ops[k];
      const i64 alloc = (op.in_place ? 0 : op.out_bytes) + SavedExtra(op);
      const Extra extra = ForwardExtra(op, device_);
      Consider(extra.total + SavedExtra(op), extra.workspace, op, Phase::kForward);
      live_ += alloc;
      MaybeFreeAfterForwardUse(op.in0, k);
      if (op.in1 >= 0 && op.in1 != op.in0) MaybeFreeAfterForwardUse(op.in1, k);
      // The output y is used by the loss after the schedule (checked there).
    }
  }

  // loss = mean(|y - target|): the difference is saved by abs; y dies after the loss.
  void LossForwardAndBackward() {
    const OpDesc& last = schedule_.ops[schedule_.num_ops - 1];
    OpDesc loss;
    loss.kind = OpKind::kL1Loss;
    loss.stage = Stage::kLoss;
    loss.level = 0;
    loss.index = schedule_.num_ops;
    loss.in0 = last.out;
    loss.in0_bytes = loss.out_bytes = last.out_bytes;
    loss.out_elems = last.out_elems;
    const i64 diff = last.out_bytes;
    const i64 forward_ws = ForwardWorkspace(loss);
    Consider(diff + forward_ws + d_, forward_ws, loss, Phase::kForward);
    // The scalar loss, and the gradient seed (a one) that backward() holds until it returns.
    live_ += diff + 2 * d_;
    const TensorInfo& y = tensors_[last.out];
    if (y.first_saver < 0) live_ -= y.bytes;
    // Backward of the loss: dL/dy beside its temporaries, then the difference is released.
    const i64 backward_ws = BackwardWorkspace(loss);
    Consider(last.out_bytes + backward_ws, backward_ws, loss, Phase::kBackward);
    grad_of_[last.out] = NewStorage(last.out_bytes);
    live_ -= diff;
  }

  int NewStorage(i64 bytes) {
    assert(num_storages_ < kMaxTensors * 2);
    storages_[num_storages_] = {bytes, 1};
    live_ += bytes;
    return num_storages_++;
  }
  void Ref(int s) { ++storages_[s].refs; }
  void Unref(int s) {
    if (s < 0) return;
    if (--storages_[s].refs == 0) live_ -= storages_[s].bytes;
  }
  // Adds a gradient contribution for tensor `id`: the first is kept as is; a later one is summed
  // out of place (the autograd input buffer cannot add in place into a shared view).
  void AddGrad(int id, int storage, const OpDesc& op) {
    int& g = grad_of_[id];
    if (g < 0) {
      g = storage;
      return;
    }
    const i64 sum = tensors_[id].bytes;
    Consider(sum, 0, op, Phase::kBackward);
    const int s = NewStorage(sum);
    Unref(g);
    Unref(storage);
    g = s;
  }

  void Backward() {
    for (int k = schedule_.num_ops - 1; k >= 0; --k) {
      const OpDesc& op = schedule_.ops[k];
      const int go = grad_of_[op.out];
      assert(go >= 0);
      const i64 ws = BackwardWorkspace(op);  // for the ops that make no new gradient
      switch (op.kind) {
        case OpKind::kConcat:
          // Gradients of both inputs are views of the output's gradient.
          Consider(ws, ws, op, Phase::kBackward);
          grad_of_[op.out] = -1;
          AddGrad(op.in0, go, op);  // takes the output's reference
          Ref(go);
          AddGrad(op.in1, go, op);
          break;
        case OpKind::kAddSkip:
          // u += skip: the same gradient flows on to u (in place, same id) and to skip.
          Consider(ws, ws, op, Phase::kBackward);
          Ref(go);
          AddGrad(op.in1, go, op);
          break;
        case OpKind::kAddInput:
          // y += x: dL/dy passes through; x needs no gradient.
          Consider(ws, ws, op, Phase::kBackward);
          break;
        default: {
          // A new input gradient (and, for convolutions, a weight gradient that is accumulated
          // into the kept .grad and freed).
          const bool makes_input_grad = op.in_place || op.in0_needs_grad;
          const i64 gin = makes_input_grad ? op.in0_bytes : 0;
          const Extra extra = BackwardExtra(op, device_);
          Consider(extra.total, extra.workspace, op, Phase::kBackward);
          if (op.in_place) {
            const int s = NewStorage(gin);
            Unref(go);
            grad_of_[op.out] = s;
          } else {
            grad_of_[op.out] = -1;
            if (makes_input_grad) {
              const int s = NewStorage(gin);
              Unref(go);
              AddGrad(op.in0, s, op);
            } else {
              Unref(go);
            }
          }
          break;
        }
      }
      live_ -= SavedExtra(op);
      ReleaseSavedBy(op, k);
    }
    live_ -= 2 * d_;  // the loss and its seed
    assert(live_ == persistent_);
  }

  void ReleaseSavedBy(const OpDesc& op, int k) {
    for (int id : {op.in0, op.in1, op.out}) {
      if (id <= 0) continue;
      TensorInfo& t = tensors_[id];
      if (t.first_saver == k) {
        live_ -= t.bytes;
        t.first_saver = -2;  // released; ids repeat within one op (in-place)
      }
    }
  }

  void Optimizer() {
    OpDesc step;
    step.kind = OpKind::kAdamStep;
    step.stage = Stage::kOptimizer;
    step.index = schedule_.num_ops + 1;
    const i64 ws =
        static_cast<i64>(std::ceil(device_.workspace.adam_temporaries *
                                   static_cast<double>(schedule_.max_param_tensor_bytes)));
    Consider(ws, ws, step, Phase::kOptimizer);
  }

  const DeviceProfile& device_;
  const int d_;
  Schedule schedule_;
  std::array<TensorInfo, kMaxTensors> tensors_{};
  std::array<int, kMaxTensors> grad_of_ = [] {
    std::array<int, kMaxTensors> g{};
    g.fill(-1);
    return g;
  }();
  std::array<GradStorage, kMaxTensors * 2> storages_{};
  int num_storages_ = 0;
  i64 weights_ = 0;
  i64 input_bytes_ = 0;
  i64 persistent_ = 0;
  i64 live_ = 0;
  PeakEstimate best_;
};

constexpr EnumNames<Stage, 9> kStageNames{{{{Stage::kStem, "stem"},
                                            {Stage::kEncoder, "encoder"},
                                            {Stage::kDownsample, "downsample"},
                                            {Stage::kUpsample, "upsample"},
                                            {Stage::kFuse, "fuse"},
                                            {Stage::kDecoder, "decoder"},
                                            {Stage::kHead, "head"},
                                            {Stage::kLoss, "loss"},
                                            {Stage::kOptimizer, "optimizer"}}}};

constexpr EnumNames<Phase, 3> kPhaseNames{{{{Phase::kForward, "forward"},
                                            {Phase::kBackward, "backward"},
                                            {Phase::kOptimizer, "optimizer"}}}};

}  // namespace

std::string_view Name(Stage stage) { return kStageNames.Name(stage); }

std::string_view Name(Phase phase) { return kPhaseNames.Name(phase); }

Status ValidateShape(const Architecture& arch, const Shape& shape, std::string_view batch_field,
                     std::string_view size_field) {
  PEAKNAS_RETURN_IF_ERROR(CheckInRange(batch_field, shape.batch, 1, kMaxBatch));
  const int m = SpatialMultiple(arch);
  if (shape.size < m || shape.size > kMaxSide || shape.size % m != 0) {
    std::string msg = std::string(size_field) + ": " + std::to_string(shape.size) +
                      " is not a multiple of " + std::to_string(m) + " (2^(levels-1) for " +
                      std::to_string(arch.levels) + " level" + (arch.levels == 1 ? "" : "s") +
                      ") in [" + std::to_string(m) + ", " + std::to_string(kMaxSide) + "]";
    return Status::InvalidArgument(std::move(msg));
  }
  return Status::Ok();
}

std::int64_t Parameters(const Architecture& arch) {
  i64 params = 0;
  WalkForward(arch, 1, SpatialMultiple(arch), SpatialMultiple(arch), 1,
              [&](const OpDesc& op) { params += op.params; });
  return params;
}

WorkCounts CountWork(const Architecture& arch, const Shape& shape, DType dtype) {
  WorkCounts w;
  WalkForward(arch, shape.batch, shape.size, shape.size, DTypeBytes(dtype), [&](const OpDesc& op) {
    w.macs += op.macs;
    if (op.params > 0) w.activations += op.out_elems;
    w.memory_traffic_bytes += op.traffic_bytes;
    ++w.ops;
  });
  return w;
}

std::int64_t InferencePeakBytes(const Architecture& arch, const Shape& tile, DType dtype,
                                const DeviceProfile& device) {
  return InferenceSweep<false>(arch, tile, dtype, device).bytes;
}

PeakEstimate EstimateInferencePeak(const Architecture& arch, const Shape& tile, DType dtype,
                                   const DeviceProfile& device) {
  return InferenceSweep<true>(arch, tile, dtype, device);
}

std::int64_t TrainPeakBytes(const Architecture& arch, const Shape& patch, DType dtype,
                            const DeviceProfile& device) {
  return EstimateTrainPeak(arch, patch, dtype, device).bytes;
}

PeakEstimate EstimateTrainPeak(const Architecture& arch, const Shape& patch, DType dtype,
                               const DeviceProfile& device) {
  TrainSweep sweep(arch, patch, dtype, device);
  return sweep.Run();
}

double InferenceLatencySeconds(const Architecture& arch, int batch, int height, int width,
                               DType dtype, const DeviceProfile& device) {
  const double flops = device.PeakFlops(dtype);
  double seconds = 0;
  WalkForward(arch, batch, height, width, DTypeBytes(dtype), [&](const OpDesc& op) {
    const double compute = 2.0 * static_cast<double>(op.macs) / flops;
    const double memory = static_cast<double>(op.traffic_bytes) / device.bandwidth_bytes_per_s;
    seconds += std::max(compute, memory) + device.op_overhead_s;
  });
  return seconds;
}

double InferenceLatencySeconds(const Architecture& arch, const Shape& tile, DType dtype,
                               const DeviceProfile& device) {
  return InferenceLatencySeconds(arch, tile.batch, tile.size, tile.size, dtype, device);
}

int MaxTile(const Architecture& arch, std::int64_t budget_bytes, int batch, DType dtype,
            const DeviceProfile& device) {
  const int m = SpatialMultiple(arch);
  int lo = 0;             // multiples known to fit (0: none)
  int hi = kMaxSide / m;  // upper end of the search
  auto fits = [&](int k) {
    return InferencePeakBytes(arch, {batch, k * m}, dtype, device) <= budget_bytes;
  };
  if (fits(hi)) return hi * m;
  while (hi - lo > 1) {  // invariant: lo fits (or is 0), hi does not
    const int mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo * m;
}

namespace {
template <typename PeakFn>
int MaxBatchBy(std::int64_t budget_bytes, PeakFn&& peak) {
  if (peak(kMaxBatch) <= budget_bytes) return kMaxBatch;
  int lo = 0, hi = kMaxBatch;
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (peak(mid) <= budget_bytes ? lo : hi) = mid;
  }
  return lo;
}
}  // namespace

int MaxInferenceBatch(const Architecture& arch, std::int64_t budget_bytes, int tile, DType dtype,
                      const DeviceProfile& device) {
  return MaxBatchBy(budget_bytes, [&](int b) {
    return InferencePeakBytes(arch, {b, tile}, dtype, device);
  });
}

int MaxTrainBatch(const Architecture& arch, std::int64_t budget_bytes, int patch, DType dtype,
                  const DeviceProfile& device) {
  return MaxBatchBy(budget_bytes, [&](int b) {
    return TrainPeakBytes(arch, {b, patch}, dtype, device);
  });
}

}  // namespace peaknas::search
