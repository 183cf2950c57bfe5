// Weight inheritance between two U-Nets of the family (DESIGN.md, "Search"): which slices of a
// trained parent's tensors a child keeps, as a pure function of the two architectures. The
// child has the parent's levels and kinds; at each level it may be narrower (it keeps the
// parent's most important channels), wider (it keeps every parent channel and adds new ones),
// shallower (it keeps a level's first blocks and drops the rest) or deeper (blocks appended
// at the end of a level's encoder or decoder).
//
// A *channel group* is a set of feature channels that must be kept or dropped together: the
// output channels of the convs that produce one feature map (its producers) and the input
// channels of the convs that read it (its consumers). In the family's forward pass (DESIGN.md,
// "The U-Net family") the groups are:
//
//   * each conv's output on its own: the stem, every encoder and decoder block, every
//     downsampling conv (its output is the next level's input);
//   * with skip = add, the last encoder block of level i and the upsampling conv into level i
//     form ONE group (u += skip_i adds channel c to channel c, so both keep the same indices);
//   * with skip = concat, the upsampled half and the skip half of level i's first decoder conv
//     are two groups: the skip half's indices start at offset w_i of that conv's input;
//   * transposed convs hold their weight as [in, out, kh, kw]: they produce on dim 1 and
//     consume on dim 0;
//   * a pixel-shuffle producer (conv1x1 to 4·w_i, then pixel_shuffle(2)) makes feature channel
//     c from its output channels 4c … 4c+3, so it keeps blocks of 4 per kept channel;
//   * max pooling and bilinear interpolation are per channel, so indices pass through them.
//
// The head's 3 output channels and the stem's 3 input channels are never pruned.
//
// Growing keeps the parent's function exactly:
//   * a new channel of a group is produced by freshly initialized filters and read by zero
//     weight columns, so nothing downstream sees it until training moves those columns;
//   * an appended block (relu only) starts as the identity: a Dirac kernel (weight[c][c] has 1
//     at the centre) and a zero bias. Its input is the previous block's activated output, so
//     relu(h) = h; lrelu has no such fixed point (it scales negative inputs again), so an
//     lrelu child cannot be deeper than its parent.
// A shallower child computes its parent with the dropped blocks replaced by the identity (with
// relu exactly as if they were skipped).
//
// Tensors are named as worker/unet.cc registers them (ParameterName): "stem", "l{i}_enc{b}",
// "l{i}_down", "l{i}_up", "l{i}_dec{b}", "head", each with ".weight" and ".bias". The worker
// chooses the kept channels of each group (by importance) and slices; it never needs to know
// the family's wiring.
//
// Thread-safety: values and pure functions; safe from any thread.
#ifndef PEAKNAS_SEARCH_INHERITANCE_H_
#define PEAKNAS_SEARCH_INHERITANCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "search/architecture.h"

namespace peaknas::search {

// A conv's place in the family.
enum class ConvKind : std::uint8_t {
  kStem,  // conv3x3 3 -> w0
  kEnc,   // conv3x3 w_i -> w_i, block `index`
  kDown,  // conv2x2/s2 or conv1x1, w_i -> w_{i+1}
  kUp,    // convT2x2/s2 w_{i+1} -> w_i, or conv1x1 w_{i+1} -> w_i (bilinear) / 4·w_i (shuffle)
  kDec,   // conv3x3 (2·w_i or w_i) -> w_i, block `index`
  kHead,  // conv3x3 w0 -> 3
};

struct ConvRef {
  ConvKind kind = ConvKind::kStem;
  int level = 0;  // kEnc, kDown, kUp, kDec
  int index = 0;  // kEnc, kDec: the block

  friend bool operator==(const ConvRef&, const ConvRef&) = default;
};

// "stem", "l2_enc1", "l0_up", "head": the module name worker/unet.cc registers.
std::string ModuleName(const ConvRef& conv);
// ModuleName(conv) + ".weight" or ".bias".
std::string ParameterName(const ConvRef& conv, bool bias);

// A parameter of the net, with its shape.
struct ParameterShape {
  std::string name;  // ParameterName
  ConvRef conv;
  bool bias = false;
  std::vector<std::int64_t> shape;  // conv weight [out, in, k, k]; transposed [in, out, k, k]
};

// Every parameter of `arch`, in the order worker/unet.cc registers them (stem, then per level
// enc blocks, down, up, dec blocks, then head; weight before bias).
// Precondition: Validate(arch).ok().
std::vector<ParameterShape> ParameterShapes(const Architecture& arch);

// Where one group lives in one tensor: along `dim`, the channels
// offset + block·c + k for every kept channel c of the group and k in [0, block).
struct GroupMember {
  std::string tensor;  // ParameterName
  int dim = 0;
  int offset = 0;
  int block = 1;  // 4 for a pixel-shuffle producer, else 1
};

struct ChannelGroup {
  std::string name;  // "l1_enc0", "l2_skip+up": for messages and tests
  int level = 0;
  int parent_width = 0;  // channels in the parent
  // Channels in the child: with child_width <= parent_width the top ones by importance; with
  // more, every parent channel (in order) followed by child_width - parent_width new ones.
  int child_width = 0;
  // Output channels of the convs that produce the feature map (weights and biases).
  std::vector<GroupMember> producers;
  // Input channels of the convs that read it (weights only). In the child the members lie
  // side by side in offset order, each child_width (x block) wide.
  std::vector<GroupMember> consumers;
  // Blocks the child appends after the group's producers (ModuleName: "l1_enc2"), in order:
  // each reads and writes the group's channels and starts as the identity.
  std::vector<std::string> identity_blocks;
};

struct InheritancePlan {
  Architecture parent;
  Architecture child;
  std::vector<ChannelGroup> groups;
};

// The plan that turns `parent` into `child`. The two must have the same levels and kinds;
// widths and blocks are free, but only a relu child may have more blocks than its parent.
// Anything else is INVALID_ARGUMENT naming the field ("levels: child 2 != parent 3", "skip:
// child add != parent concat").
StatusOr<InheritancePlan> PlanInheritance(const Architecture& parent, const Architecture& child);

// True when a child of `parent` with architecture `child` can inherit its weights
// (PlanInheritance would succeed).
bool CanInherit(const Architecture& parent, const Architecture& child);

// True when `child` is `parent` with some widths narrowed and nothing grown: the same blocks,
// every width at most the parent's (a pure pruning of it).
bool Narrows(const Architecture& parent, const Architecture& child);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_INHERITANCE_H_
