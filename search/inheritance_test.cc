#include "search/inheritance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "search/cost_model.h"

namespace peaknas::search {
namespace {

Architecture Make(std::vector<int> widths, std::vector<int> enc, std::vector<int> dec,
                  SkipKind skip, UpsampleKind up, DownsampleKind down,
                  ActivationKind act = ActivationKind::kRelu) {
  StatusOr<Architecture> a = MakeArchitecture(widths, enc, dec, skip, up, down, act);
  EXPECT_TRUE(a.ok()) << a.status().message();
  EXPECT_TRUE(Validate(*a).ok()) << Validate(*a).message();
  return *a;
}

// Every kind combination, at 1 to 3 levels with uneven blocks, as (parent, child) pairs whose
// child is narrower at some levels and equal at others, then wider at some levels, narrower
// at others, and deeper or shallower at some.
std::vector<std::pair<Architecture, Architecture>> Pairs() {
  std::vector<std::pair<Architecture, Architecture>> out;
  for (SkipKind skip : kAllSkipKinds) {
    for (UpsampleKind up : kAllUpsampleKinds) {
      for (DownsampleKind down : kAllDownsampleKinds) {
        out.emplace_back(Make({24}, {2}, {}, skip, up, down), Make({8}, {2}, {}, skip, up, down));
        out.emplace_back(Make({16, 32}, {1, 2}, {3}, skip, up, down),
                         Make({8, 32}, {1, 2}, {3}, skip, up, down));
        out.emplace_back(Make({16, 32, 64}, {2, 1, 1}, {1, 2}, skip, up, down),
                         Make({16, 16, 40}, {2, 1, 1}, {1, 2}, skip, up, down));
        out.emplace_back(Make({16}, {1}, {}, skip, up, down), Make({24}, {3}, {}, skip, up, down));
        out.emplace_back(Make({16, 32}, {1, 2}, {1}, skip, up, down),
                         Make({24, 16}, {2, 2}, {3}, skip, up, down));
        out.emplace_back(Make({16, 32, 64}, {2, 1, 1}, {1, 2}, skip, up, down),
                         Make({8, 48, 64}, {2, 2, 3}, {2, 2}, skip, up, down));
        out.emplace_back(Make({16, 32, 64}, {2, 1, 3}, {3, 2}, skip, up, down),
                         Make({24, 16, 64}, {1, 3, 2}, {1, 2}, skip, up, down));
      }
    }
  }
  return out;
}

// The module of a parameter name: "l1_enc2.weight" -> "l1_enc2".
std::string ModuleOf(const std::string& parameter) {
  return parameter.substr(0, parameter.rfind('.'));
}

std::string Describe(const Architecture& a) { return ToCanonicalJson(a); }

// Applying the plan to the parent's shapes: each (tensor, dim) that a group touches must be
// covered exactly once by its members' ranges, and its child size is the members' kept count.
TEST(PlanInheritance, SlicesEveryParentShapeIntoTheChildShape) {
  for (const auto& [parent, child] : Pairs()) {
    SCOPED_TRACE(Describe(parent) + " -> " + Describe(child));
    StatusOr<InheritancePlan> plan = PlanInheritance(parent, child);
    ASSERT_TRUE(plan.ok()) << plan.status().message();

    std::map<std::string, std::vector<std::int64_t>> parent_shapes, child_shapes;
    for (const ParameterShape& p : ParameterShapes(parent)) parent_shapes[p.name] = p.shape;
    for (const ParameterShape& p : ParameterShapes(child)) child_shapes[p.name] = p.shape;
    // The child's parameters are the parent's and those of its identity blocks, each square in
    // its group's child width.
    std::map<std::string, int> identity;  // module -> the group's child width
    for (const ChannelGroup& g : plan->groups) {
      for (const std::string& m : g.identity_blocks) {
        EXPECT_TRUE(identity.emplace(m, g.child_width).second) << m << " in two groups";
      }
    }
    for (const auto& [name, shape] : child_shapes) {
      if (parent_shapes.contains(name)) continue;
      const auto it = identity.find(ModuleOf(name));
      ASSERT_NE(it, identity.end()) << name << " is neither the parent's nor an identity block";
      const std::int64_t w = it->second;
      EXPECT_EQ(shape, (name.ends_with(".bias") ? std::vector<std::int64_t>{w}
                                                : std::vector<std::int64_t>{w, w, 3, 3}))
          << name;
    }
    int dropped = 0;
    for (const auto& [name, shape] : parent_shapes) dropped += child_shapes.contains(name) ? 0 : 1;
    EXPECT_EQ(parent_shapes.size() - dropped + 2 * identity.size(), child_shapes.size());

    // (tensor, dim) -> covered parent ranges [begin, end) and the kept count.
    struct Cover {
      std::vector<std::pair<int, int>> ranges;
      std::int64_t kept = 0;
    };
    std::map<std::pair<std::string, int>, Cover> covers;
    for (const ChannelGroup& g : plan->groups) {
      EXPECT_FALSE(g.producers.empty()) << g.name;
      EXPECT_FALSE(g.consumers.empty()) << g.name;
      EXPECT_EQ(g.parent_width, parent.widths[g.level]) << g.name;
      EXPECT_EQ(g.child_width, child.widths[g.level]) << g.name;
      const auto visit = [&](const GroupMember& m) {
        ASSERT_TRUE(parent_shapes.contains(m.tensor)) << m.tensor;
        Cover& c = covers[{m.tensor, m.dim}];
        c.ranges.emplace_back(m.offset, m.offset + m.block * g.parent_width);
        c.kept += static_cast<std::int64_t>(m.block) * g.child_width;
      };
      for (const GroupMember& m : g.producers) visit(m);
      for (const GroupMember& m : g.consumers) visit(m);
    }
    for (const auto& [name, shape] : parent_shapes) {
      if (!child_shapes.contains(name)) continue;  // a dropped block (DropsTheLastBlocks)
      const std::vector<std::int64_t>& want = child_shapes.at(name);
      ASSERT_EQ(shape.size(), want.size()) << name;
      for (int dim = 0; dim < static_cast<int>(shape.size()); ++dim) {
        const auto it = covers.find({name, dim});
        if (it == covers.end()) {
          EXPECT_EQ(shape[dim], want[dim]) << name << " dim " << dim << " untouched but resized";
          continue;
        }
        std::vector<std::pair<int, int>> ranges = it->second.ranges;
        std::sort(ranges.begin(), ranges.end());
        int next = 0;
        for (const auto& [begin, end] : ranges) {
          EXPECT_EQ(begin, next) << name << " dim " << dim << ": gap or overlap";
          next = end;
        }
        EXPECT_EQ(next, shape[dim]) << name << " dim " << dim << ": not covered to its end";
        EXPECT_EQ(it->second.kept, want[dim]) << name << " dim " << dim;
      }
    }
  }
}

TEST(PlanInheritance, EveryProducerOutputIsInExactlyOneGroup) {
  for (const auto& [parent, child] : Pairs()) {
    SCOPED_TRACE(Describe(parent));
    StatusOr<InheritancePlan> plan = PlanInheritance(parent, child);
    ASSERT_TRUE(plan.ok());
    std::map<std::string, int> produced;
    for (const ChannelGroup& g : plan->groups) {
      for (const GroupMember& m : g.producers) ++produced[m.tensor];
    }
    std::map<std::string, int> in_child;
    for (const ParameterShape& p : ParameterShapes(child)) in_child[p.name] = 1;
    for (const ParameterShape& p : ParameterShapes(parent)) {
      if (!in_child.contains(p.name)) {
        EXPECT_FALSE(produced.contains(p.name)) << p.name << ": a dropped block is in no group";
      } else if (p.conv.kind == ConvKind::kHead) {
        EXPECT_FALSE(produced.contains(p.name)) << "the head's RGB output is never pruned";
      } else {
        EXPECT_EQ(produced[p.name], 1) << p.name;
      }
    }
  }
}

TEST(PlanInheritance, AddSkipTiesTheSkipAndTheUpsampleToOneGroup) {
  const Architecture a = Make({16, 32, 64}, {2, 1, 1}, {1, 1}, SkipKind::kAdd,
                              UpsampleKind::kTransposed, DownsampleKind::kStrided);
  StatusOr<InheritancePlan> plan = PlanInheritance(a, a);
  ASSERT_TRUE(plan.ok());
  const auto it = std::find_if(plan->groups.begin(), plan->groups.end(),
                               [](const ChannelGroup& g) { return g.name == "l0_enc1+up"; });
  ASSERT_NE(it, plan->groups.end());
  std::vector<std::pair<std::string, int>> producers;
  for (const GroupMember& m : it->producers) producers.emplace_back(m.tensor, m.dim);
  // The transposed conv produces on dim 1 of its weight ([in, out, kh, kw]).
  EXPECT_EQ(
      producers,
      (std::vector<std::pair<std::string, int>>{
          {"l0_enc1.weight", 0}, {"l0_enc1.bias", 0}, {"l0_up.weight", 1}, {"l0_up.bias", 0}}));
  std::vector<std::pair<std::string, int>> consumers;
  for (const GroupMember& m : it->consumers) consumers.emplace_back(m.tensor, m.offset);
  EXPECT_EQ(consumers, (std::vector<std::pair<std::string, int>>{{"l0_down.weight", 0},
                                                                 {"l0_dec0.weight", 0}}));
}

TEST(PlanInheritance, ConcatKeepsTheTwoHalvesIndependent) {
  const Architecture a = Make({16, 32}, {1, 1}, {1}, SkipKind::kConcat, UpsampleKind::kTransposed,
                              DownsampleKind::kMaxPool);
  StatusOr<InheritancePlan> plan = PlanInheritance(a, a);
  ASSERT_TRUE(plan.ok());
  std::map<std::string, GroupMember> dec0_inputs;  // group name -> its member in l0_dec0
  for (const ChannelGroup& g : plan->groups) {
    for (const GroupMember& m : g.consumers) {
      if (m.tensor == "l0_dec0.weight") dec0_inputs[g.name] = m;
    }
  }
  ASSERT_EQ(dec0_inputs.size(), 2u);
  EXPECT_EQ(dec0_inputs.at("l0_up").offset, 0);
  EXPECT_EQ(dec0_inputs.at("l0_enc0+skip").offset, 16);
  EXPECT_EQ(dec0_inputs.at("l0_enc0+skip").dim, 1);
}

TEST(PlanInheritance, TransposedConvConsumesOnDimZero) {
  const Architecture a = Make({16, 32}, {1, 1}, {1}, SkipKind::kConcat, UpsampleKind::kTransposed,
                              DownsampleKind::kStrided);
  StatusOr<InheritancePlan> plan = PlanInheritance(a, a);
  ASSERT_TRUE(plan.ok());
  bool found = false;
  for (const ChannelGroup& g : plan->groups) {
    for (const GroupMember& m : g.consumers) {
      if (m.tensor == "l0_up.weight") {
        EXPECT_EQ(g.name, "l1_enc0");
        EXPECT_EQ(m.dim, 0);
        found = true;
      }
    }
  }
  EXPECT_TRUE(found);
}

TEST(PlanInheritance, PixelShuffleProducerKeepsBlocksOfFour) {
  const Architecture a = Make({16, 32}, {1, 1}, {1}, SkipKind::kConcat, UpsampleKind::kPixelShuffle,
                              DownsampleKind::kStrided);
  StatusOr<InheritancePlan> plan = PlanInheritance(a, a);
  ASSERT_TRUE(plan.ok());
  for (const ChannelGroup& g : plan->groups) {
    for (const GroupMember& m : g.producers) {
      if (m.tensor.rfind("l0_up.", 0) == 0) {
        EXPECT_EQ(m.block, 4) << m.tensor;
        EXPECT_EQ(m.dim, 0) << m.tensor;
      } else {
        EXPECT_EQ(m.block, 1) << m.tensor;
      }
    }
    for (const GroupMember& m : g.consumers) {
      if (m.tensor == "l0_up.weight") {
        EXPECT_EQ(m.dim, 1) << "a conv1x1 reads on dim 1";
      }
    }
  }
}

TEST(PlanInheritance, ParameterShapesCountTheCostModelsParameters) {
  for (const auto& [parent, child] : Pairs()) {
    for (const Architecture& a : {parent, child}) {
      std::int64_t total = 0;
      for (const ParameterShape& p : ParameterShapes(a)) {
        std::int64_t n = 1;
        for (std::int64_t d : p.shape) n *= d;
        total += n;
      }
      EXPECT_EQ(total, Parameters(a)) << Describe(a);
    }
  }
}

TEST(PlanInheritance, RefusesChildrenOfOtherLevelsOrKinds) {
  const Architecture parent = Make({16, 32}, {1, 2}, {1}, SkipKind::kConcat,
                                   UpsampleKind::kBilinear, DownsampleKind::kStrided);
  const auto expect_error = [&](const Architecture& from, const Architecture& child,
                                const std::string& message) {
    StatusOr<InheritancePlan> plan = PlanInheritance(from, child);
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(plan.status().message(), message);
    EXPECT_FALSE(CanInherit(from, child));
    EXPECT_FALSE(Narrows(from, child));
  };
  Architecture skip = parent;
  skip.skip = SkipKind::kAdd;
  expect_error(parent, skip, "skip: child add != parent concat");
  Architecture up = parent;
  up.upsample = UpsampleKind::kTransposed;
  expect_error(parent, up, "upsample: child transposed != parent bilinear");
  expect_error(
      parent,
      Make({16}, {1}, {}, SkipKind::kConcat, UpsampleKind::kBilinear, DownsampleKind::kStrided),
      "levels: child 1 != parent 2");
  Architecture lrelu = parent;
  lrelu.activation = ActivationKind::kLeakyRelu;
  Architecture deeper_lrelu = lrelu;
  deeper_lrelu.dec_blocks[0] = 2;
  expect_error(lrelu, deeper_lrelu,
               "dec_blocks[0]: child 2 > parent 1 needs activation relu (an appended lrelu block "
               "cannot start as the identity)");

  Architecture narrower = parent;
  narrower.widths[0] = 8;
  Architecture wider = parent;
  wider.widths[1] = 40;
  Architecture deeper = narrower;
  deeper.dec_blocks[0] = 3;
  Architecture wider_lrelu = lrelu;
  wider_lrelu.widths[0] = 24;
  Architecture shallower_lrelu = lrelu;
  shallower_lrelu.enc_blocks[1] = 1;
  struct Case {
    std::string what;
    Architecture from, child;
    bool narrows;
  };
  for (const Case& c :
       {Case{"narrower", parent, narrower, true}, Case{"wider", parent, wider, false},
        Case{"deeper", parent, deeper, false}, Case{"wider lrelu", lrelu, wider_lrelu, false},
        Case{"shallower lrelu", lrelu, shallower_lrelu, false}}) {
    EXPECT_TRUE(CanInherit(c.from, c.child)) << c.what;
    EXPECT_EQ(Narrows(c.from, c.child), c.narrows) << c.what;
  }
}

using Names = std::vector<std::string>;

// The plan for `child` from `parent`, as group name -> what `names_of` lists for the group,
// leaving out the groups for which it lists nothing.
std::map<std::string, Names> PlannedByGroup(
    const Architecture& parent, const Architecture& child,
    const std::function<Names(const ChannelGroup&)>& names_of) {
  StatusOr<InheritancePlan> plan = PlanInheritance(parent, child);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  std::map<std::string, Names> by_group;
  if (!plan.ok()) return by_group;
  for (const ChannelGroup& g : plan->groups) {
    Names names = names_of(g);
    if (!names.empty()) by_group[g.name] = std::move(names);
  }
  return by_group;
}

// A shallower child keeps a level's first blocks: the last one it keeps feeds what the
// parent's last block fed.
TEST(PlanInheritance, DropsTheLastBlocks) {
  const Architecture parent = Make({16, 32}, {3, 2}, {2}, SkipKind::kConcat,
                                   UpsampleKind::kBilinear, DownsampleKind::kStrided);
  const Architecture child = Make({16, 32}, {1, 2}, {1}, SkipKind::kConcat, UpsampleKind::kBilinear,
                                  DownsampleKind::kStrided);
  const std::map<std::string, Names> consumers =
      PlannedByGroup(parent, child, [](const ChannelGroup& g) {
        Names tensors;
        for (const GroupMember& m : g.consumers) tensors.push_back(m.tensor);
        return tensors;
      });
  EXPECT_EQ(consumers.at("l0_enc0+skip"), (Names{"l0_down.weight", "l0_dec0.weight"}));
  EXPECT_EQ(consumers.at("l0_dec0"), (Names{"head.weight"}));
  EXPECT_FALSE(consumers.contains("l0_enc1"));
  EXPECT_FALSE(consumers.contains("l0_dec1"));
}

// Blocks are appended after the last block of the level they grow, in the group that block
// produces, and the group's consumers are the same convs as in the parent.
TEST(PlanInheritance, AppendedBlocksCarryTheLastGroupOfTheirLevel) {
  const Architecture parent = Make({16, 32}, {1, 1}, {1}, SkipKind::kAdd, UpsampleKind::kTransposed,
                                   DownsampleKind::kMaxPool);
  const Architecture child = Make({16, 40}, {3, 2}, {2}, SkipKind::kAdd, UpsampleKind::kTransposed,
                                  DownsampleKind::kMaxPool);
  EXPECT_EQ(PlannedByGroup(parent, child, [](const ChannelGroup& g) { return g.identity_blocks; }),
            (std::map<std::string, Names>{{"l0_enc0+up", Names{"l0_enc1", "l0_enc2"}},
                                          {"l1_enc0", Names{"l1_enc1"}},
                                          {"l0_dec0", Names{"l0_dec1"}}}));
}

}  // namespace
}  // namespace peaknas::search
