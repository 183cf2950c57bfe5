#include "proto/convert.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "search/job_defaults.h"
#include "search/units.h"

namespace peaknas::proto {
namespace {

std::string Path(std::string_view prefix, std::string_view name) {
  std::string s(prefix);
  if (!s.empty()) s += '.';
  s += name;
  return s;
}

std::string Indexed(std::string_view field, int i) {
  return std::string(field) + "[" + std::to_string(i) + "]";
}

Status Invalid(std::string_view field, std::string_view what) {
  return Status::InvalidArgument(std::string(field) + ": " + std::string(what));
}

// Prefixes a status from search/ ("widths[2]: ...") with the message's path.
Status Prefixed(std::string_view prefix, const Status& s) {
  if (s.ok()) return s;
  return Status(s.code(), std::string(prefix) + "." + s.message());
}

// An integer that 0 defaults; otherwise must lie in [lo, hi].
StatusOr<int> Defaulted(std::int64_t value, int default_value, int lo, int hi,
                        std::string_view field) {
  if (value == 0) return default_value;
  if (value < lo || value > hi) {
    return Invalid(field, std::to_string(value) + " is not in " + RangeText(lo, hi) +
                              " (0 = default " + std::to_string(default_value) + ")");
  }
  return static_cast<int>(value);
}

// --- Enum tables: the proto value, the domain value, the proto name without its prefix.
template <typename P, typename D>
struct KindEntry {
  P proto;
  D domain;
  const char* name;
};

constexpr KindEntry<v1::SkipKind, search::SkipKind> kSkips[] = {
    {v1::SKIP_KIND_CONCAT, search::SkipKind::kConcat, "CONCAT"},
    {v1::SKIP_KIND_ADD, search::SkipKind::kAdd, "ADD"},
};
constexpr KindEntry<v1::UpsampleKind, search::UpsampleKind> kUpsamples[] = {
    {v1::UPSAMPLE_KIND_TRANSPOSED, search::UpsampleKind::kTransposed, "TRANSPOSED"},
    {v1::UPSAMPLE_KIND_BILINEAR, search::UpsampleKind::kBilinear, "BILINEAR"},
    {v1::UPSAMPLE_KIND_PIXEL_SHUFFLE, search::UpsampleKind::kPixelShuffle, "PIXEL_SHUFFLE"},
};
constexpr KindEntry<v1::DownsampleKind, search::DownsampleKind> kDownsamples[] = {
    {v1::DOWNSAMPLE_KIND_STRIDED, search::DownsampleKind::kStrided, "STRIDED"},
    {v1::DOWNSAMPLE_KIND_MAX_POOL, search::DownsampleKind::kMaxPool, "MAX_POOL"},
};
constexpr KindEntry<v1::ActivationKind, search::ActivationKind> kActivations[] = {
    {v1::ACTIVATION_KIND_RELU, search::ActivationKind::kRelu, "RELU"},
    {v1::ACTIVATION_KIND_LEAKY_RELU, search::ActivationKind::kLeakyRelu, "LEAKY_RELU"},
};

template <typename P, typename D, std::size_t N>
P KindToProto(const KindEntry<P, D> (&table)[N], D d) {
  for (const auto& e : table) {
    if (e.domain == d) return e.proto;
  }
  return static_cast<P>(0);  // unreachable for valid domain values
}

template <typename P, typename D, std::size_t N>
StatusOr<D> KindFromProto(const KindEntry<P, D> (&table)[N], P p, std::string_view field) {
  for (const auto& e : table) {
    if (e.proto == p) return e.domain;
  }
  std::string allowed;
  for (const auto& e : table) {
    if (!allowed.empty()) allowed += ", ";
    allowed += e.name;
  }
  const std::string what = static_cast<int>(p) == 0
                               ? std::string("unspecified")
                               : std::to_string(static_cast<int>(p)) + " is not a known value";
  return Invalid(field, what + "; allowed: " + allowed);
}

// Kinds list: empty = all; UNSPECIFIED or unknown entries and repeats refused.
template <typename P, typename D, std::size_t N, typename Repeated>
StatusOr<std::vector<D>> KindsFromProto(const KindEntry<P, D> (&table)[N], const Repeated& list,
                                        std::string_view field) {
  std::vector<D> out;
  if (list.empty()) {
    for (const auto& e : table) out.push_back(e.domain);
    return out;
  }
  for (int i = 0; i < list.size(); ++i) {
    PEAKNAS_ASSIGN_OR_RETURN(D d,
                             KindFromProto(table, static_cast<P>(list.Get(i)), Indexed(field, i)));
    if (std::find(out.begin(), out.end(), d) != out.end()) {
      return Invalid(Indexed(field, i), "repeats an earlier entry");
    }
    out.push_back(d);
  }
  return out;
}

template <typename P, typename D, std::size_t N, typename Repeated>
void KindsToProto(const KindEntry<P, D> (&table)[N], const std::vector<D>& kinds, Repeated* out) {
  for (D d : kinds) out->Add(KindToProto(table, d));
}

// One IntRange of the space: unset = [lo, hi]; ends within [lo, hi], multiples of `multiple`,
// min <= max.
StatusOr<search::IntRange> RangeFromProto(bool has, const v1::IntRange& r, int lo, int hi,
                                          int multiple, std::string_view field) {
  if (!has) return search::IntRange{lo, hi};
  const auto check = [&](std::string_view end, int v) -> Status {
    if (v >= lo && v <= hi && v % multiple == 0) return Status::Ok();
    std::string what = std::to_string(v) + " is not ";
    if (multiple > 1) what += "a multiple of " + std::to_string(multiple) + " ";
    return Invalid(Path(field, end), what + "in " + RangeText(lo, hi));
  };
  PEAKNAS_RETURN_IF_ERROR(check("min", r.min()));
  PEAKNAS_RETURN_IF_ERROR(check("max", r.max()));
  if (r.min() > r.max()) {
    return Invalid(Path(field, "min"), std::to_string(r.min()) + " > max " +
                                           std::to_string(r.max()) + " (range inverted)");
  }
  return search::IntRange{r.min(), r.max()};
}

v1::IntRange RangeToProto(const search::IntRange& r) {
  v1::IntRange m;
  m.set_min(r.min);
  m.set_max(r.max);
  return m;
}

std::string Describe(const search::Architecture& a) { return search::ToCanonicalJson(a); }

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The first field of `a` (valid) that lies outside `space`, as "<field>.widths[2]: 256 is
// outside <space_field>.width [8, 64]"; OK when Contains(space, a).
Status CheckInside(const search::SearchSpace& space, const search::Architecture& a,
                   std::string_view field, std::string_view space_field) {
  const auto outside = [&](std::string_view f, int v, std::string_view range_name,
                           const search::IntRange& r) {
    return Invalid(f, std::to_string(v) + " is outside " + Path(space_field, range_name) + " " +
                          RangeText(r.min, r.max));
  };
  if (!space.levels.Contains(a.levels)) {
    return outside(Path(field, "levels"), a.levels, "levels", space.levels);
  }
  for (int i = 0; i < a.levels; ++i) {
    if (!space.width.Contains(a.widths[i])) {
      return outside(Indexed(Path(field, "widths"), i), a.widths[i], "width", space.width);
    }
    if (!space.enc_blocks.Contains(a.enc_blocks[i])) {
      return outside(Indexed(Path(field, "enc_blocks"), i), a.enc_blocks[i], "enc_blocks",
                     space.enc_blocks);
    }
  }
  for (int i = 0; i + 1 < a.levels; ++i) {
    if (!space.dec_blocks.Contains(a.dec_blocks[i])) {
      return outside(Indexed(Path(field, "dec_blocks"), i), a.dec_blocks[i], "dec_blocks",
                     space.dec_blocks);
    }
  }
  if (space.nondecreasing_widths) {
    for (int i = 0; i + 1 < a.levels; ++i) {
      if (a.widths[i] > a.widths[i + 1]) {
        return Invalid(Indexed(Path(field, "widths"), i + 1),
                       std::to_string(a.widths[i + 1]) + " < widths[" + std::to_string(i) + "] " +
                           std::to_string(a.widths[i]) + ", but " +
                           Path(space_field, "nondecreasing_widths") + " is set");
      }
    }
  }
  const auto kind = [&](std::string_view f, std::string_view name, std::string_view list) {
    std::string what(1, '"');  // built by appends: GCC 12's -Wrestrict misfires on "lit" + s
    what.append(name).append("\" is not in ").append(Path(space_field, list));
    return Invalid(Path(field, f), what);
  };
  if (std::find(space.skips.begin(), space.skips.end(), a.skip) == space.skips.end()) {
    return kind("skip", search::Name(a.skip), "skips");
  }
  if (std::find(space.upsamples.begin(), space.upsamples.end(), a.upsample) ==
      space.upsamples.end()) {
    return kind("upsample", search::Name(a.upsample), "upsamples");
  }
  if (std::find(space.downsamples.begin(), space.downsamples.end(), a.downsample) ==
      space.downsamples.end()) {
    return kind("downsample", search::Name(a.downsample), "downsamples");
  }
  if (std::find(space.activations.begin(), space.activations.end(), a.activation) ==
      space.activations.end()) {
    return kind("activation", search::Name(a.activation), "activations");
  }
  if (!search::Contains(space, a)) {  // backstop, should be unreachable
    return Invalid(field, Describe(a) + " is outside " + std::string(space_field));
  }
  return Status::Ok();
}

}  // namespace

// --- Kinds and dtypes.

v1::SkipKind ToProto(search::SkipKind kind) { return KindToProto(kSkips, kind); }
v1::UpsampleKind ToProto(search::UpsampleKind kind) { return KindToProto(kUpsamples, kind); }
v1::DownsampleKind ToProto(search::DownsampleKind kind) { return KindToProto(kDownsamples, kind); }
v1::ActivationKind ToProto(search::ActivationKind kind) { return KindToProto(kActivations, kind); }

StatusOr<search::SkipKind> FromProto(v1::SkipKind kind, std::string_view field) {
  return KindFromProto(kSkips, kind, field);
}
StatusOr<search::UpsampleKind> FromProto(v1::UpsampleKind kind, std::string_view field) {
  return KindFromProto(kUpsamples, kind, field);
}
StatusOr<search::DownsampleKind> FromProto(v1::DownsampleKind kind, std::string_view field) {
  return KindFromProto(kDownsamples, kind, field);
}
StatusOr<search::ActivationKind> FromProto(v1::ActivationKind kind, std::string_view field) {
  return KindFromProto(kActivations, kind, field);
}

constexpr KindEntry<v1::DType, search::DType> kDTypes[] = {
    {v1::DTYPE_FP32, search::DType::kFp32, "FP32"},
    {v1::DTYPE_FP16, search::DType::kFp16, "FP16"},
    {v1::DTYPE_BF16, search::DType::kBf16, "BF16"},
};

v1::DType ToProto(search::DType dtype) { return KindToProto(kDTypes, dtype); }

// UNSPECIFIED is fp32, the default precision.
StatusOr<search::DType> FromProto(v1::DType dtype, std::string_view field) {
  if (dtype == v1::DTYPE_UNSPECIFIED) return search::DType::kFp32;
  return KindFromProto(kDTypes, dtype, field);
}

// --- Architecture.

v1::Architecture ToProto(const search::Architecture& arch) {
  v1::Architecture m;
  m.set_levels(arch.levels);
  for (int w : arch.Widths()) m.add_widths(w);
  for (int b : arch.EncBlocks()) m.add_enc_blocks(b);
  for (int b : arch.DecBlocks()) m.add_dec_blocks(b);
  m.set_skip(ToProto(arch.skip));
  m.set_upsample(ToProto(arch.upsample));
  m.set_downsample(ToProto(arch.downsample));
  m.set_activation(ToProto(arch.activation));
  return m;
}

StatusOr<search::Architecture> FromProto(const v1::Architecture& m, std::string_view field) {
  const int levels = m.levels();
  if (levels < search::kMinLevels || levels > search::kMaxLevels) {
    return Invalid(Path(field, "levels"), std::to_string(levels) + " is not in " +
                                              RangeText(search::kMinLevels, search::kMaxLevels));
  }
  auto check_size = [&](std::string_view name, int size, int want) -> Status {
    if (size == want) return Status::Ok();
    return Invalid(Path(field, name), "has " + std::to_string(size) + " entries; expected " +
                                          std::to_string(want) + " for " + std::to_string(levels) +
                                          " levels");
  };
  PEAKNAS_RETURN_IF_ERROR(check_size("widths", m.widths_size(), levels));
  PEAKNAS_RETURN_IF_ERROR(check_size("enc_blocks", m.enc_blocks_size(), levels));
  PEAKNAS_RETURN_IF_ERROR(check_size("dec_blocks", m.dec_blocks_size(), levels - 1));
  PEAKNAS_ASSIGN_OR_RETURN(search::SkipKind skip, FromProto(m.skip(), Path(field, "skip")));
  PEAKNAS_ASSIGN_OR_RETURN(search::UpsampleKind upsample,
                           FromProto(m.upsample(), Path(field, "upsample")));
  PEAKNAS_ASSIGN_OR_RETURN(search::DownsampleKind downsample,
                           FromProto(m.downsample(), Path(field, "downsample")));
  PEAKNAS_ASSIGN_OR_RETURN(search::ActivationKind activation,
                           FromProto(m.activation(), Path(field, "activation")));
  search::Architecture a;
  a.levels = levels;
  for (int i = 0; i < levels; ++i) {
    a.widths[i] = m.widths(i);
    a.enc_blocks[i] = m.enc_blocks(i);
  }
  for (int i = 0; i + 1 < levels; ++i) a.dec_blocks[i] = m.dec_blocks(i);
  a.skip = skip;
  a.upsample = upsample;
  a.downsample = downsample;
  a.activation = activation;
  PEAKNAS_RETURN_IF_ERROR(Prefixed(field, search::Validate(a)));
  return a;
}

// --- SearchSpace.

v1::SearchSpace ToProto(const search::SearchSpace& space) {
  v1::SearchSpace m;
  *m.mutable_levels() = RangeToProto(space.levels);
  *m.mutable_width() = RangeToProto(space.width);
  *m.mutable_enc_blocks() = RangeToProto(space.enc_blocks);
  *m.mutable_dec_blocks() = RangeToProto(space.dec_blocks);
  KindsToProto(kSkips, space.skips, m.mutable_skips());
  KindsToProto(kUpsamples, space.upsamples, m.mutable_upsamples());
  KindsToProto(kDownsamples, space.downsamples, m.mutable_downsamples());
  KindsToProto(kActivations, space.activations, m.mutable_activations());
  m.set_nondecreasing_widths(space.nondecreasing_widths);
  return m;
}

StatusOr<search::SearchSpace> FromProto(const v1::SearchSpace& m, std::string_view field) {
  search::SearchSpace s;
  PEAKNAS_ASSIGN_OR_RETURN(s.levels, RangeFromProto(m.has_levels(), m.levels(), search::kMinLevels,
                                                    search::kMaxLevels, 1, Path(field, "levels")));
  PEAKNAS_ASSIGN_OR_RETURN(
      s.width, RangeFromProto(m.has_width(), m.width(), search::kMinWidth, search::kMaxWidth,
                              search::kWidthMultiple, Path(field, "width")));
  PEAKNAS_ASSIGN_OR_RETURN(s.enc_blocks,
                           RangeFromProto(m.has_enc_blocks(), m.enc_blocks(), search::kMinBlocks,
                                          search::kMaxBlocks, 1, Path(field, "enc_blocks")));
  PEAKNAS_ASSIGN_OR_RETURN(s.dec_blocks,
                           RangeFromProto(m.has_dec_blocks(), m.dec_blocks(), search::kMinBlocks,
                                          search::kMaxBlocks, 1, Path(field, "dec_blocks")));
  PEAKNAS_ASSIGN_OR_RETURN(s.skips, KindsFromProto(kSkips, m.skips(), Path(field, "skips")));
  PEAKNAS_ASSIGN_OR_RETURN(s.upsamples,
                           KindsFromProto(kUpsamples, m.upsamples(), Path(field, "upsamples")));
  PEAKNAS_ASSIGN_OR_RETURN(
      s.downsamples, KindsFromProto(kDownsamples, m.downsamples(), Path(field, "downsamples")));
  PEAKNAS_ASSIGN_OR_RETURN(
      s.activations, KindsFromProto(kActivations, m.activations(), Path(field, "activations")));
  s.nondecreasing_widths = m.nondecreasing_widths();
  PEAKNAS_RETURN_IF_ERROR(Prefixed(field, search::Validate(s)));  // backstop
  return s;
}

// --- Budget.

StatusOr<search::Budget> BudgetFromProto(const v1::JobSpec& spec, std::string_view field) {
  const std::string bf = Path(field, "budget");
  if (!spec.has_budget()) return Invalid(bf, "required (bytes and mode)");
  const v1::Budget& b = spec.budget();
  search::Budget out;
  if (b.bytes() < 1) {
    return Invalid(Path(bf, "bytes"), std::to_string(b.bytes()) + " is not >= 1");
  }
  out.bytes = b.bytes();
  switch (b.mode()) {
    case v1::BUDGET_MODE_INFERENCE:
      out.training = false;
      break;
    case v1::BUDGET_MODE_TRAINING:
      out.training = true;
      break;
    default:
      return Invalid(Path(bf, "mode"),
                     (b.mode() == v1::BUDGET_MODE_UNSPECIFIED
                          ? std::string("unspecified")
                          : std::to_string(static_cast<int>(b.mode())) + " is not a known value") +
                         "; allowed: INFERENCE, TRAINING");
  }
  PEAKNAS_ASSIGN_OR_RETURN(out.tile.batch, Defaulted(b.batch(), search::defaults::kTileBatch, 1,
                                                     search::kMaxBatch, Path(bf, "batch")));
  PEAKNAS_ASSIGN_OR_RETURN(out.tile.size, Defaulted(b.tile(), search::defaults::kTile, 8,
                                                    search::kMaxSide, Path(bf, "tile")));
  PEAKNAS_ASSIGN_OR_RETURN(out.patch.batch,
                           Defaulted(b.train_batch(), search::defaults::kTrainBatch, 1,
                                     search::kMaxBatch, Path(bf, "train_batch")));
  PEAKNAS_ASSIGN_OR_RETURN(out.patch.size, Defaulted(b.patch(), search::defaults::kPatch, 8,
                                                     search::kMaxSide, Path(bf, "patch")));
  PEAKNAS_ASSIGN_OR_RETURN(out.dtype, FromProto(b.dtype(), Path(bf, "dtype")));
  if (spec.device_profile().empty()) {
    out.device = &search::DefaultDeviceProfile();
  } else {
    auto found = search::FindDeviceProfile(spec.device_profile());
    if (!found.ok()) {
      std::string m = found.status().message();
      if (m.rfind("device profile: ", 0) == 0) m.erase(0, 16);
      return Invalid(Path(field, "device_profile"), m);
    }
    out.device = *found;
  }
  return out;
}

// --- Ids.

std::string JobId(std::int64_t id) { return "j-" + std::to_string(id); }
std::string TrialId(std::int64_t id) { return "t-" + std::to_string(id); }
std::string WorkerId(std::int64_t id) { return "w-" + std::to_string(id); }

std::optional<std::int64_t> ParseId(std::string_view id, std::string_view prefix) {
  if (!id.starts_with(prefix)) return std::nullopt;
  id.remove_prefix(prefix.size());
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (ec != std::errc() || end != id.data() + id.size() || value <= 0) return std::nullopt;
  return value;
}

// --- Trial metrics.

v1::TrialMetrics ToProto(const search::TrialMetrics& r) {
  v1::TrialMetrics m;
  m.set_device(r.device);
  m.set_device_profile(r.device_profile);
  m.set_dtype(ToProto(r.dtype));
  m.set_intra_op_threads(r.intra_op_threads);
  m.set_framework(r.framework);
  m.set_steps(r.steps);
  m.set_initial_loss(r.initial_loss);
  m.set_final_loss(r.final_loss);
  m.set_train_seconds(r.train_seconds);
  m.set_train_steps_per_s(r.train_steps_per_s);
  m.set_psnr(r.scores.psnr);
  m.set_ssim(r.scores.ssim);
  m.set_noisy_psnr(r.noisy.psnr);
  m.set_noisy_ssim(r.noisy.ssim);
  m.set_eval_blocks(static_cast<std::int32_t>(r.scores.blocks));
  m.set_eval_seconds(r.eval_seconds);
  m.set_params(r.params);
  m.set_macs(r.macs);
  m.set_predicted_inference_peak_bytes(r.predicted_inference_peak_bytes);
  m.set_measured_inference_peak_bytes(r.measured_inference_peak_bytes);
  m.set_process_inference_peak_bytes(r.process_inference_peak_bytes);
  m.set_predicted_train_peak_bytes(r.predicted_train_peak_bytes);
  m.set_measured_train_peak_bytes(r.measured_train_peak_bytes);
  m.set_process_train_peak_bytes(r.process_train_peak_bytes);
  m.set_process_peak_bytes(r.process_peak_bytes);
  m.set_latency_ms_per_tile(r.latency_ms_per_tile);
  m.set_latency_ms_per_mp(r.latency_ms_per_mp);
  m.set_predicted_latency_ms_per_tile(r.predicted_latency_ms_per_tile);
  m.set_latency_100mp_s(r.latency_100mp_s());
  m.set_tiled_100mp_tile(r.tiled_100mp_tile);
  m.set_tiled_100mp_overlap(r.tiled_100mp_overlap);
  m.set_tiled_100mp_windows(r.tiled_100mp_windows);
  m.set_tiled_100mp_s(r.tiled_100mp_s);
  m.set_predicted_tiled_100mp_s(r.predicted_tiled_100mp_s);
  return m;
}

// --- Lineage.

v1::Lineage ToProto(const search::Lineage& l) {
  v1::Lineage out;
  if (l.parent_trial != 0) out.set_parent_trial_id(TrialId(l.parent_trial));
  out.set_role(l.role);
  out.set_iteration(l.iteration);
  out.set_level(l.level);
  out.set_over_budget(l.over_budget);
  out.set_steps(l.steps);
  out.set_total_steps(l.total_steps);
  out.set_parent_peak(l.parent_peak);
  return out;
}

StatusOr<search::Lineage> FromProto(const v1::Lineage& m, std::string_view field) {
  search::Lineage l;
  if (!m.parent_trial_id().empty()) {
    const std::optional<std::int64_t> parent = ParseId(m.parent_trial_id(), "t-");
    if (!parent) {
      return Invalid(Path(field, "parent_trial_id"),
                     "\"" + m.parent_trial_id() + "\" is not a trial id (t-N)");
    }
    l.parent_trial = *parent;
  }
  l.role = m.role();
  l.iteration = m.iteration();
  l.level = m.level();
  l.over_budget = m.over_budget();
  l.steps = m.steps();
  l.total_steps = m.total_steps();
  l.parent_peak = m.parent_peak();
  return l;
}

// --- Resolved spec.

v1::JobSpec ResolveJobSpec(v1::JobSpec spec, const search::Budget& budget) {
  namespace d = search::defaults;
  auto* b = spec.mutable_budget();
  b->set_batch(budget.tile.batch);
  b->set_tile(budget.tile.size);
  b->set_train_batch(budget.patch.batch);
  b->set_patch(budget.patch.size);
  b->set_dtype(ToProto(budget.dtype));
  if (spec.device_profile().empty()) spec.set_device_profile(budget.device->name);
  auto* f = spec.mutable_fidelity();
  if (f->steps() == 0) f->set_steps(d::kSteps);
  if (f->train_batch() == 0) f->set_train_batch(budget.patch.batch);
  if (f->patch() == 0) f->set_patch(budget.patch.size);
  if (f->learning_rate() == 0) f->set_learning_rate(d::kLearningRate);
  if (spec.strategy() == v1::STRATEGY_EVOLUTION && spec.population() == 0)
    spec.set_population(d::kPopulation);
  if ((spec.strategy() == v1::STRATEGY_EVOLUTION || spec.strategy() == v1::STRATEGY_RANDOM) &&
      spec.sampling() == v1::SAMPLING_UNSPECIFIED) {
    spec.set_sampling(v1::SAMPLING_STRATIFIED);
  }
  if (spec.strategy() == v1::STRATEGY_SCALING && spec.scaling_alpha() == 0) {
    spec.set_scaling_alpha(d::kScalingAlpha);
  }
  if (!spec.has_inherit() &&
      (spec.strategy() == v1::STRATEGY_SCALING || spec.strategy() == v1::STRATEGY_EVOLUTION)) {
    spec.set_inherit(spec.strategy() == v1::STRATEGY_SCALING);
  }
  if (spec.strategy() == v1::STRATEGY_PRUNING) {
    auto* p = spec.mutable_pruning();
    if (p->start_budget_multiple() == 0) p->set_start_budget_multiple(d::kPruningStartMultiple);
    if (p->iterations() == 0) p->set_iterations(d::kPruningIterations);
    if (!p->has_below_budget_iterations())
      p->set_below_budget_iterations(d::kPruningBelowIterations);
    if (p->finetune_steps() == 0) {
      p->set_finetune_steps(std::max(1, f->steps() / d::kPruningFinetuneDivisor));
    }
    if (p->final_finetune_steps() == 0) p->set_final_finetune_steps(f->steps());
    if (p->importance() == v1::IMPORTANCE_UNSPECIFIED) p->set_importance(v1::IMPORTANCE_L1);
  }
  return spec;
}

// --- JobSpec.

Status ValidateJobSpec(const v1::JobSpec& spec, std::string_view field) {
  // Strategy.
  const auto strategy = spec.strategy();
  if (strategy != v1::STRATEGY_EVOLUTION && strategy != v1::STRATEGY_RANDOM &&
      strategy != v1::STRATEGY_SCALING && strategy != v1::STRATEGY_PRUNING) {
    return Invalid(Path(field, "strategy"),
                   (strategy == v1::STRATEGY_UNSPECIFIED
                        ? std::string("unspecified")
                        : std::to_string(static_cast<int>(strategy)) + " is not a known value") +
                       "; allowed: EVOLUTION, RANDOM, SCALING, PRUNING");
  }
  if (spec.name().size() > 200) {
    return Invalid(Path(field, "name"),
                   std::to_string(spec.name().size()) + " characters; at most 200");
  }

  // Budget and device profile.
  PEAKNAS_ASSIGN_OR_RETURN(search::Budget budget, BudgetFromProto(spec, field));

  // Space.
  search::SearchSpace space;
  if (spec.has_space()) {
    PEAKNAS_ASSIGN_OR_RETURN(space, FromProto(spec.space(), Path(field, "space")));
  }

  // Shapes must be valid for every level count of the space: check at the deepest.
  {
    search::Architecture deepest;
    deepest.levels = space.levels.max;
    const std::string bf = Path(field, "budget");
    PEAKNAS_RETURN_IF_ERROR(
        search::ValidateShape(deepest, budget.tile, Path(bf, "batch"), Path(bf, "tile")));
    PEAKNAS_RETURN_IF_ERROR(
        search::ValidateShape(deepest, budget.patch, Path(bf, "train_batch"), Path(bf, "patch")));
  }

  // Counts.
  if (spec.trials() < 1 || spec.trials() > 100000) {
    return Invalid(Path(field, "trials"),
                   std::to_string(spec.trials()) + " is not in " + RangeText(1, 100000));
  }
  if (spec.parallelism() < 1 || spec.parallelism() > 1024) {
    return Invalid(Path(field, "parallelism"),
                   std::to_string(spec.parallelism()) + " is not in " + RangeText(1, 1024));
  }
  PEAKNAS_RETURN_IF_ERROR(Defaulted(spec.population(), search::defaults::kPopulation, 2, 10000,
                                    Path(field, "population"))
                              .status());
  if (spec.scaling_alpha() != 0.0 && !(std::isfinite(spec.scaling_alpha()) &&
                                       spec.scaling_alpha() > 0.0 && spec.scaling_alpha() <= 1.0)) {
    return Invalid(Path(field, "scaling_alpha"), Number(spec.scaling_alpha()) +
                                                     " is not in (0, 1] (0 = default " +
                                                     Number(search::defaults::kScalingAlpha) + ")");
  }

  // Training fidelity.
  {
    const std::string ff = Path(field, "fidelity");
    const v1::TrainingFidelity& f = spec.fidelity();
    PEAKNAS_RETURN_IF_ERROR(
        Defaulted(f.steps(), search::defaults::kSteps, 1, 10000000, Path(ff, "steps")).status());
    PEAKNAS_ASSIGN_OR_RETURN(int train_batch,
                             Defaulted(f.train_batch(), budget.patch.batch, 1, search::kMaxBatch,
                                       Path(ff, "train_batch")));
    PEAKNAS_ASSIGN_OR_RETURN(
        int patch, Defaulted(f.patch(), budget.patch.size, 8, search::kMaxSide, Path(ff, "patch")));
    search::Architecture deepest;
    deepest.levels = space.levels.max;
    PEAKNAS_RETURN_IF_ERROR(
        search::ValidateShape(deepest, search::Shape{.batch = train_batch, .size = patch},
                              Path(ff, "train_batch"), Path(ff, "patch")));
    const double lr = f.learning_rate();
    if (lr != 0.0 && !(std::isfinite(lr) && lr > 0.0 && lr <= 1.0)) {
      return Invalid(Path(ff, "learning_rate"), Number(lr) + " is not in (0, 1] (0 = default " +
                                                    Number(search::defaults::kLearningRate) + ")");
    }
  }

  // Dataset.
  {
    const std::string& d = spec.dataset();
    const bool chars_ok = std::all_of(d.begin(), d.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    });
    if (d.empty() || d.size() > 64 || !chars_ok) {
      return Invalid(Path(field, "dataset"),
                     "\"" + d +
                         "\" is not a dataset name (1 to 64 characters of [a-z0-9_.-], "
                         "e.g. \"sidd\", \"synthetic\")");
    }
  }

  // Base architecture.
  const std::string af = Path(field, "base_architecture");
  if (strategy == v1::STRATEGY_SCALING) {
    if (!spec.has_base_architecture()) {
      return Invalid(af, "required for strategy SCALING");
    }
    PEAKNAS_ASSIGN_OR_RETURN(search::Architecture base, FromProto(spec.base_architecture(), af));
    PEAKNAS_RETURN_IF_ERROR(CheckInside(space, base, af, Path(field, "space")));
  } else if (strategy == v1::STRATEGY_PRUNING && spec.has_base_architecture()) {
    PEAKNAS_ASSIGN_OR_RETURN(search::Architecture base, FromProto(spec.base_architecture(), af));
    PEAKNAS_RETURN_IF_ERROR(CheckInside(space, base, af, Path(field, "space")));
  } else if (spec.has_base_architecture()) {
    return Invalid(af, "only allowed with strategies SCALING and PRUNING");
  }

  {
    const double r = spec.hypervolume_reference_latency_s();
    if (!(std::isfinite(r) && r >= 0.0)) {
      return Invalid(Path(field, "hypervolume_reference_latency_s"),
                     Number(r) + " is not a finite number >= 0 (0 = set at submission)");
    }
  }
  if (!v1::Sampling_IsValid(spec.sampling())) {
    return Invalid(Path(field, "sampling"), std::to_string(static_cast<int>(spec.sampling())) +
                                                " is not a known value; allowed: STRATIFIED, "
                                                "UNIFORM");
  }

  if (spec.inherit() && strategy != v1::STRATEGY_EVOLUTION && strategy != v1::STRATEGY_SCALING) {
    return Invalid(Path(field, "inherit"), "only allowed with strategy EVOLUTION or SCALING");
  }

  // Pruning.
  const std::string pf = Path(field, "pruning");
  if (strategy == v1::STRATEGY_PRUNING) {
    const v1::PruningOptions& p = spec.pruning();
    if (p.has_start_architecture()) {
      const std::string sf = Path(pf, "start_architecture");
      PEAKNAS_ASSIGN_OR_RETURN(search::Architecture start, FromProto(p.start_architecture(), sf));
      PEAKNAS_RETURN_IF_ERROR(CheckInside(space, start, sf, Path(field, "space")));
    }
    const double m = p.start_budget_multiple();
    if (m != 0.0 && !(std::isfinite(m) && m > 1.0 && m <= 1024.0)) {
      return Invalid(Path(pf, "start_budget_multiple"),
                     Number(m) + " is not in (1, 1024] (0 = default " +
                         Number(search::defaults::kPruningStartMultiple) + ")");
    }
    PEAKNAS_RETURN_IF_ERROR(Defaulted(p.iterations(), search::defaults::kPruningIterations, 1, 100,
                                      Path(pf, "iterations"))
                                .status());
    if (p.has_below_budget_iterations() &&
        (p.below_budget_iterations() < 0 || p.below_budget_iterations() > 100)) {
      return Invalid(Path(pf, "below_budget_iterations"),
                     std::to_string(p.below_budget_iterations()) + " is not in " +
                         RangeText(0, 100) + " (unset = default 2)");
    }
    const auto steps = [&](std::int32_t v, const char* name, const char* default_text) {
      if (v == 0 || (v >= 1 && v <= 10000000)) return Status::Ok();
      return Invalid(Path(pf, name), std::to_string(v) + " is not in " + RangeText(1, 10000000) +
                                         " (0 = default " + default_text + ")");
    };
    PEAKNAS_RETURN_IF_ERROR(
        steps(p.finetune_steps(), "finetune_steps", "a quarter of fidelity.steps"));
    PEAKNAS_RETURN_IF_ERROR(
        steps(p.final_finetune_steps(), "final_finetune_steps", "fidelity.steps"));
    if (p.max_total_steps() < 0) {
      return Invalid(Path(pf, "max_total_steps"),
                     std::to_string(p.max_total_steps()) + " is negative (0 = no limit)");
    }
    if (!v1::Importance_IsValid(p.importance())) {
      return Invalid(Path(pf, "importance"), std::to_string(static_cast<int>(p.importance())) +
                                                 " is not a known value; allowed: L1, GROUP_L1");
    }
  } else if (spec.has_pruning()) {
    return Invalid(pf, "only allowed with strategy PRUNING");
  }

  // Feasibility: the cheapest architecture of the space must fit the budget. Fewest blocks and
  // narrowest widths are the cheapest per level count; level counts and kinds are tried all.
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  search::Architecture cheapest;
  for (int levels = space.levels.min; levels <= space.levels.max; ++levels) {
    search::Architecture a;
    a.levels = levels;
    for (int i = 0; i < levels; ++i) {
      a.widths[i] = space.width.min;
      a.enc_blocks[i] = space.enc_blocks.min;
    }
    for (int i = 0; i + 1 < levels; ++i) a.dec_blocks[i] = space.dec_blocks.min;
    for (auto skip : space.skips) {
      for (auto up : space.upsamples) {
        for (auto down : space.downsamples) {
          for (auto act : space.activations) {
            a.skip = skip;
            a.upsample = up;
            a.downsample = down;
            a.activation = act;
            const std::int64_t peak = search::BudgetedPeakBytes(budget, a);
            if (peak < best) {
              best = peak;
              cheapest = a;
            }
          }
        }
      }
    }
  }
  if (best > budget.bytes) {
    const search::Shape& shape = budget.training ? budget.patch : budget.tile;
    return Invalid(Path(Path(field, "budget"), "bytes"),
                   std::to_string(budget.bytes) + " (" + search::FormatBytes(budget.bytes) +
                       ") is below the cheapest architecture of the space: predicted " +
                       (budget.training ? "training-step" : "inference") + " peak " +
                       std::to_string(best) + " (" + search::FormatBytes(best) + ") at batch " +
                       std::to_string(shape.batch) + ", " + (budget.training ? "patch " : "tile ") +
                       std::to_string(shape.size) + ", " + std::string(search::Name(budget.dtype)) +
                       " on " + budget.device->name + " for " + Describe(cheapest) +
                       "; allowed: >= " + std::to_string(best));
  }
  return Status::Ok();
}

Status ValidateTrialMetrics(const v1::TrialMetrics& m, std::string_view field) {
  const std::string at(field);
  const auto number = [](double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g", v);
    return std::string(buffer);
  };
  const auto in = [&](std::string_view name, double v, double lo, double hi,
                      std::string_view unit) -> Status {
    if (std::isfinite(v) && v >= lo && v <= hi) return Status::Ok();
    const std::string prefix = at + "." + std::string(name) + ": " + number(v) + std::string(unit);
    if (hi == std::numeric_limits<double>::max()) {
      return Status::InvalidArgument(prefix + " is not a finite number >= " + number(lo));
    }
    return Status::InvalidArgument(prefix + " is outside [" + number(lo) + ", " + number(hi) + "]" +
                                   std::string(unit));
  };
  constexpr double kInf = std::numeric_limits<double>::max();
  for (const auto& [name, v] :
       {std::pair<std::string_view, double>{"psnr", m.psnr()}, {"noisy_psnr", m.noisy_psnr()}}) {
    PEAKNAS_RETURN_IF_ERROR(in(name, v, 0, 150, " dB"));
  }
  for (const auto& [name, v] :
       {std::pair<std::string_view, double>{"ssim", m.ssim()}, {"noisy_ssim", m.noisy_ssim()}}) {
    PEAKNAS_RETURN_IF_ERROR(in(name, v, -1, 1, ""));
  }
  for (const auto& [name, v] :
       {std::pair<std::string_view, double>{"initial_loss", m.initial_loss()},
        {"final_loss", m.final_loss()},
        {"train_seconds", m.train_seconds()},
        {"train_steps_per_s", m.train_steps_per_s()},
        {"eval_seconds", m.eval_seconds()},
        {"latency_ms_per_tile", m.latency_ms_per_tile()},
        {"latency_ms_per_mp", m.latency_ms_per_mp()},
        {"predicted_latency_ms_per_tile", m.predicted_latency_ms_per_tile()},
        {"latency_100mp_s", m.latency_100mp_s()},
        {"tiled_100mp_s", m.tiled_100mp_s()},
        {"predicted_tiled_100mp_s", m.predicted_tiled_100mp_s()}}) {
    PEAKNAS_RETURN_IF_ERROR(in(name, v, 0, kInf, ""));
  }
  for (const auto& [name, v] :
       {std::pair<std::string_view, std::int64_t>{"predicted_inference_peak_bytes",
                                                  m.predicted_inference_peak_bytes()},
        {"measured_inference_peak_bytes", m.measured_inference_peak_bytes()},
        {"process_inference_peak_bytes", m.process_inference_peak_bytes()},
        {"predicted_train_peak_bytes", m.predicted_train_peak_bytes()},
        {"measured_train_peak_bytes", m.measured_train_peak_bytes()},
        {"process_train_peak_bytes", m.process_train_peak_bytes()},
        {"process_peak_bytes", m.process_peak_bytes()}}) {
    PEAKNAS_RETURN_IF_ERROR(
        in(name, static_cast<double>(v), 0, static_cast<double>(kMaxBytes), " B"));
  }
  for (const auto& [name, v] : {std::pair<std::string_view, std::int64_t>{"params", m.params()},
                                {"macs", m.macs()},
                                {"steps", m.steps()},
                                {"eval_blocks", m.eval_blocks()},
                                {"intra_op_threads", m.intra_op_threads()},
                                {"tiled_100mp_tile", m.tiled_100mp_tile()},
                                {"tiled_100mp_overlap", m.tiled_100mp_overlap()},
                                {"tiled_100mp_windows", m.tiled_100mp_windows()}}) {
    PEAKNAS_RETURN_IF_ERROR(in(name, static_cast<double>(v), 0, kInf, ""));
  }
  for (const auto& [name, v] :
       {std::pair<std::string_view, const std::string*>{"device", &m.device()},
        {"device_profile", &m.device_profile()},
        {"framework", &m.framework()}}) {
    if (v->size() > 200) {
      return Status::InvalidArgument(at + "." + std::string(name) + ": " +
                                     std::to_string(v->size()) + " characters; at most 200");
    }
  }
  return Status::Ok();
}

// --- Calibration fits.

v1::CalibrationFit ToProto(const search::CalibrationFit& fit) {
  v1::CalibrationFit out;
  out.set_samples(fit.samples);
  out.set_overhead_bytes(fit.overhead_bytes);
  out.set_slope(fit.slope);
  out.set_margin(fit.margin);
  out.set_quantile(fit.quantile);
  out.set_min_ratio(fit.min_ratio);
  out.set_max_ratio(fit.max_ratio);
  return out;
}

const v1::CalibrationFit& PassFit(const v1::Calibration& calibration, search::CalibratedPass pass) {
  switch (pass) {
    case search::CalibratedPass::kInference:
      return calibration.inference();
    case search::CalibratedPass::kTraining:
      return calibration.training();
    case search::CalibratedPass::kTrial:
      return calibration.trial();
  }
  return calibration.inference();
}

std::optional<search::CalibrationFit> FittedPass(const v1::Calibration& calibration,
                                                 search::CalibratedPass pass) {
  const v1::CalibrationFit& fit = PassFit(calibration, pass);
  if (!fit.unfitted().empty() || fit.samples() == 0) return std::nullopt;
  return FromProto(fit);
}

search::CalibrationFit FromProto(const v1::CalibrationFit& fit) {
  return {.samples = fit.samples(),
          .overhead_bytes = fit.overhead_bytes(),
          .slope = fit.slope(),
          .margin = fit.margin(),
          .quantile = fit.quantile(),
          .min_ratio = fit.min_ratio(),
          .max_ratio = fit.max_ratio()};
}

}  // namespace peaknas::proto
