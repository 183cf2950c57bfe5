#include "search/inheritance.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

namespace peaknas::search {
namespace {

// Appended piecewise: GCC 12 warns falsely (-Wrestrict) about "l" + std::to_string(i).
std::string LevelPrefix(int level) {
  std::string s = "l";
  s += std::to_string(level);
  s += '_';
  return s;
}

ConvRef Stem() { return {ConvKind::kStem, 0, 0}; }
ConvRef Enc(int level, int block) { return {ConvKind::kEnc, level, block}; }
ConvRef Down(int level) { return {ConvKind::kDown, level, 0}; }
ConvRef Up(int level) { return {ConvKind::kUp, level, 0}; }
ConvRef Dec(int level, int block) { return {ConvKind::kDec, level, block}; }
ConvRef Head() { return {ConvKind::kHead, 0, 0}; }

bool Transposed(const Architecture& arch, const ConvRef& conv) {
  return conv.kind == ConvKind::kUp && arch.upsample == UpsampleKind::kTransposed;
}

// Output channels of `conv` as a producer: weight and bias, on the weight's output dim.
void AddProducer(const Architecture& arch, const ConvRef& conv, ChannelGroup& group) {
  const int block =
      conv.kind == ConvKind::kUp && arch.upsample == UpsampleKind::kPixelShuffle ? 4 : 1;
  group.producers.push_back({ParameterName(conv, false), Transposed(arch, conv) ? 1 : 0, 0, block});
  group.producers.push_back({ParameterName(conv, true), 0, 0, block});
}

// Input channels of `conv` as a consumer, starting at `offset`.
void AddConsumer(const Architecture& arch, const ConvRef& conv, int offset, ChannelGroup& group) {
  group.consumers.push_back(
      {ParameterName(conv, false), Transposed(arch, conv) ? 0 : 1, offset, 1});
}

// Who reads the output of the last encoder block of the deepest level, or of the last decoder
// block of `level`: the upsampling conv into the level above, or the head.
ConvRef ReaderAbove(int level) { return level > 0 ? Up(level - 1) : Head(); }

// Blocks at one level: the child keeps the parent's first ones, and may append more (relu
// only).
Status BlocksGrow(std::string_view field, int level, int child, int parent,
                  const Architecture& arch) {
  if (child > parent && arch.activation != ActivationKind::kRelu) {
    return Status::InvalidArgument(
        std::string(field) + "[" + std::to_string(level) + "]: child " + std::to_string(child) +
        " > parent " + std::to_string(parent) + " needs activation relu (an appended " +
        std::string(Name(arch.activation)) + " block cannot start as the identity)");
  }
  return Status::Ok();
}

Status SameTopology(const Architecture& parent, const Architecture& child) {
  if (child.levels != parent.levels) {
    return Status::InvalidArgument("levels: child " + std::to_string(child.levels) + " != parent " +
                                   std::to_string(parent.levels));
  }
  const auto kind = [](std::string_view field, std::string_view c, std::string_view p) -> Status {
    if (c == p) return Status::Ok();
    return Status::InvalidArgument(std::string(field) + ": child " + std::string(c) +
                                   " != parent " + std::string(p));
  };
  PEAKNAS_RETURN_IF_ERROR(kind("skip", Name(child.skip), Name(parent.skip)));
  PEAKNAS_RETURN_IF_ERROR(kind("upsample", Name(child.upsample), Name(parent.upsample)));
  PEAKNAS_RETURN_IF_ERROR(kind("downsample", Name(child.downsample), Name(parent.downsample)));
  PEAKNAS_RETURN_IF_ERROR(kind("activation", Name(child.activation), Name(parent.activation)));
  for (int i = 0; i < parent.levels; ++i) {
    PEAKNAS_RETURN_IF_ERROR(
        BlocksGrow("enc_blocks", i, child.enc_blocks[i], parent.enc_blocks[i], child));
    if (i < parent.levels - 1) {
      PEAKNAS_RETURN_IF_ERROR(
          BlocksGrow("dec_blocks", i, child.dec_blocks[i], parent.dec_blocks[i], child));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string ModuleName(const ConvRef& conv) {
  switch (conv.kind) {
    case ConvKind::kStem:
      return "stem";
    case ConvKind::kEnc:
      return LevelPrefix(conv.level) + "enc" + std::to_string(conv.index);
    case ConvKind::kDown:
      return LevelPrefix(conv.level) + "down";
    case ConvKind::kUp:
      return LevelPrefix(conv.level) + "up";
    case ConvKind::kDec:
      return LevelPrefix(conv.level) + "dec" + std::to_string(conv.index);
    case ConvKind::kHead:
      return "head";
  }
  return "";
}

std::string ParameterName(const ConvRef& conv, bool bias) {
  return ModuleName(conv) + (bias ? ".bias" : ".weight");
}

std::vector<ParameterShape> ParameterShapes(const Architecture& arch) {
  std::vector<ParameterShape> out;
  // A conv's weight [out, in, k, k] (transposed: [in, out, k, k]) and bias [out].
  const auto add = [&](const ConvRef& conv, std::int64_t cin, std::int64_t cout, std::int64_t k) {
    const bool transposed = Transposed(arch, conv);
    out.push_back({ParameterName(conv, false), conv, false,
                   transposed ? std::vector<std::int64_t>{cin, cout, k, k}
                              : std::vector<std::int64_t>{cout, cin, k, k}});
    out.push_back({ParameterName(conv, true), conv, true, {cout}});
  };
  const int L = arch.levels;
  add(Stem(), 3, arch.widths[0], 3);
  for (int i = 0; i < L; ++i) {
    const int w = arch.widths[i];
    for (int b = 0; b < arch.enc_blocks[i]; ++b) add(Enc(i, b), w, w, 3);
    if (i == L - 1) break;
    const int wn = arch.widths[i + 1];
    if (arch.downsample == DownsampleKind::kStrided) {
      add(Down(i), w, wn, 2);
    } else {
      add(Down(i), w, wn, 1);
    }
    switch (arch.upsample) {
      case UpsampleKind::kTransposed:
        add(Up(i), wn, w, 2);
        break;
      case UpsampleKind::kBilinear:
        add(Up(i), wn, w, 1);
        break;
      case UpsampleKind::kPixelShuffle:
        add(Up(i), wn, 4 * w, 1);
        break;
    }
    const int cin = arch.skip == SkipKind::kConcat ? 2 * w : w;
    for (int b = 0; b < arch.dec_blocks[i]; ++b) add(Dec(i, b), b == 0 ? cin : w, w, 3);
  }
  add(Head(), arch.widths[0], 3, 3);
  return out;
}

StatusOr<InheritancePlan> PlanInheritance(const Architecture& parent, const Architecture& child) {
  PEAKNAS_RETURN_IF_ERROR(Validate(parent));
  PEAKNAS_RETURN_IF_ERROR(Validate(child));
  PEAKNAS_RETURN_IF_ERROR(SameTopology(parent, child));
  InheritancePlan plan;
  plan.parent = parent;
  plan.child = child;
  const Architecture& a = parent;
  const int L = a.levels;
  const auto group = [&](std::string name, int level) {
    ChannelGroup g;
    g.name = std::move(name);
    g.level = level;
    g.parent_width = parent.widths[level];
    g.child_width = child.widths[level];
    return g;
  };

  // Encoder: the level's input (stem or the downsampling conv above), then each block.
  // The last block's output (skip_i) is kept apart until its decoder level with concat, and
  // joined to the upsampling conv's output there with add.
  std::vector<ChannelGroup> skip_groups(L);
  for (int i = 0; i < L; ++i) {
    const std::string p = LevelPrefix(i);
    ChannelGroup in = group(p + "in", i);
    AddProducer(a, i == 0 ? Stem() : Down(i - 1), in);
    AddConsumer(a, Enc(i, 0), 0, in);
    plan.groups.push_back(std::move(in));
    const int blocks = std::min(a.enc_blocks[i], child.enc_blocks[i]);
    for (int b = 0; b + 1 < blocks; ++b) {
      ChannelGroup g = group(ModuleName(Enc(i, b)), i);
      AddProducer(a, Enc(i, b), g);
      AddConsumer(a, Enc(i, b + 1), 0, g);
      plan.groups.push_back(std::move(g));
    }
    ChannelGroup last = group(ModuleName(Enc(i, blocks - 1)), i);
    AddProducer(a, Enc(i, blocks - 1), last);
    for (int b = blocks; b < child.enc_blocks[i]; ++b) {
      last.identity_blocks.push_back(ModuleName(Enc(i, b)));
    }
    if (i == L - 1) {
      AddConsumer(a, ReaderAbove(i), 0, last);  // deepest level: into the decoder
      plan.groups.push_back(std::move(last));
    } else {
      AddConsumer(a, Down(i), 0, last);
      skip_groups[i] = std::move(last);
    }
  }
  // Decoder, deepest first: the upsampled features, then each block.
  for (int i = L - 2; i >= 0; --i) {
    const std::string p = LevelPrefix(i);
    ChannelGroup& skip = skip_groups[i];
    if (a.skip == SkipKind::kConcat) {
      ChannelGroup up = group(p + "up", i);
      AddProducer(a, Up(i), up);
      AddConsumer(a, Dec(i, 0), 0, up);
      plan.groups.push_back(std::move(up));
      AddConsumer(a, Dec(i, 0), parent.widths[i], skip);  // the second half of the concat
      skip.name += "+skip";
      plan.groups.push_back(std::move(skip));
    } else {
      AddProducer(a, Up(i), skip);
      AddConsumer(a, Dec(i, 0), 0, skip);
      skip.name += "+up";
      plan.groups.push_back(std::move(skip));
    }
    const int blocks = std::min(a.dec_blocks[i], child.dec_blocks[i]);
    for (int b = 0; b < blocks; ++b) {
      ChannelGroup g = group(ModuleName(Dec(i, b)), i);
      AddProducer(a, Dec(i, b), g);
      AddConsumer(a, b + 1 < blocks ? Dec(i, b + 1) : ReaderAbove(i), 0, g);
      if (b + 1 == blocks) {
        for (int n = blocks; n < child.dec_blocks[i]; ++n) {
          g.identity_blocks.push_back(ModuleName(Dec(i, n)));
        }
      }
      plan.groups.push_back(std::move(g));
    }
  }
  return plan;
}

bool CanInherit(const Architecture& parent, const Architecture& child) {
  return Validate(parent).ok() && Validate(child).ok() && SameTopology(parent, child).ok();
}

bool Narrows(const Architecture& parent, const Architecture& child) {
  if (!CanInherit(parent, child)) return false;
  for (int i = 0; i < parent.levels; ++i) {
    if (child.widths[i] > parent.widths[i] || child.enc_blocks[i] != parent.enc_blocks[i]) {
      return false;
    }
    if (i < parent.levels - 1 && child.dec_blocks[i] != parent.dec_blocks[i]) return false;
  }
  return true;
}

}  // namespace peaknas::search
