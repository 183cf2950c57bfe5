// Weight inheritance on real LibTorch modules: the oracles that prove every slice.
//   (a) slicing to the parent's own widths reproduces the parent bit for bit;
//   (b) prune == mask: a pruned child computes what its parent computes with the pruned
//       channels' producers zeroed, for every skip x upsample x downsample x activation, also
//       when other levels of the same child grow wider or deeper (growing changes nothing);
//   (c) the importance rule keeps the channels with the largest producing filters, with both
//       producers of an add-skip counted.
// (That an inherited child's peaks still meet the cost model's contract is trial_test.cc's.)
#include "worker/inherit.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "search/architecture.h"
#include "search/inheritance.h"
#include "worker/data/test_util.h"
#include "worker/export.h"
#include "worker/unet.h"

namespace peaknas::worker {
namespace {

using search::ActivationKind;
using search::DownsampleKind;
using search::SkipKind;
using search::UpsampleKind;

search::Architecture Make(std::vector<int> widths, std::vector<int> enc, std::vector<int> dec,
                          SkipKind skip, UpsampleKind up, DownsampleKind down, ActivationKind act) {
  auto a = search::MakeArchitecture(widths, enc, dec, skip, up, down, act);
  EXPECT_TRUE(a.ok()) << a.status().message();
  return *a;
}

std::string Describe(SkipKind skip, UpsampleKind up, DownsampleKind down, ActivationKind act) {
  return std::string(search::Name(skip)) + "/" + std::string(search::Name(up)) + "/" +
         std::string(search::Name(down)) + "/" + std::string(search::Name(act));
}

// One combination of the family's kinds.
struct Kinds {
  SkipKind skip;
  UpsampleKind up;
  DownsampleKind down;
  ActivationKind act;
};

// Every skip x upsample x downsample x activation combination.
std::vector<Kinds> AllKinds() {
  std::vector<Kinds> all;
  for (SkipKind skip : search::kAllSkipKinds) {
    for (UpsampleKind up : search::kAllUpsampleKinds) {
      for (DownsampleKind down : search::kAllDownsampleKinds) {
        for (ActivationKind act : search::kAllActivationKinds) all.push_back({skip, up, down, act});
      }
    }
  }
  return all;
}

// A parent with random weights and biases well away from zero, so that a wrongly kept or
// dropped channel changes the output.
UNet RandomNet(const search::Architecture& arch, std::uint64_t seed) {
  torch::manual_seed(seed);
  UNet net(arch);
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.uniform_(-0.3, 0.3);
  net->eval();
  return net;
}

torch::Tensor Forward(UNet& net, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return net->forward(x.clone());
}

TEST(Inherit, TheNetsParametersAreTheFamilysParameterShapes) {
  for (UpsampleKind up : search::kAllUpsampleKinds) {
    const auto arch = Make({16, 24, 32}, {1, 2, 1}, {2, 1}, SkipKind::kConcat, up,
                           DownsampleKind::kStrided, ActivationKind::kRelu);
    UNet net(arch);
    const auto expected = search::ParameterShapes(arch);
    const auto named = net->named_parameters();
    ASSERT_EQ(named.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(named[i].key(), expected[i].name);
      EXPECT_EQ(named[i].value().sizes(), c10::IntArrayRef(expected[i].shape)) << expected[i].name;
    }
  }
}

TEST(Inherit, SameWidthsReproduceTheParentBitForBit) {
  for (SkipKind skip : search::kAllSkipKinds) {
    for (UpsampleKind up : search::kAllUpsampleKinds) {
      for (DownsampleKind down : search::kAllDownsampleKinds) {
        SCOPED_TRACE(Describe(skip, up, down, ActivationKind::kLeakyRelu));
        const auto arch =
            Make({16, 24, 32}, {1, 2, 1}, {2, 1}, skip, up, down, ActivationKind::kLeakyRelu);
        UNet parent = RandomNet(arch, 7);
        UNet child(arch);  // its own fresh initialization, all of it overwritten
        ASSERT_TRUE(InheritWeights({arch, ParametersOf(parent)}, Importance::kL1, child).ok());
        const torch::Tensor x = torch::rand({2, 3, 16, 16});
        EXPECT_TRUE(torch::equal(Forward(parent, x), Forward(child, x)));
      }
    }
  }
}

// Zeroes, in every group, the producers' output channels that `kept` leaves out, and makes
// the blocks the child drops the identity.
NamedTensors Masked(const search::InheritancePlan& plan, NamedTensors params,
                    const std::vector<std::vector<std::int64_t>>& kept) {
  torch::NoGradGuard no_grad;
  for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const search::ChannelGroup& g = plan.groups[gi];
    std::vector<bool> keep(static_cast<std::size_t>(g.parent_width), false);
    for (std::int64_t c : kept[gi]) {
      if (c != kNew) keep[static_cast<std::size_t>(c)] = true;
    }
    for (const search::GroupMember& m : g.producers) {
      torch::Tensor& t = params.at(m.tensor);
      for (int c = 0; c < g.parent_width; ++c) {
        if (!keep[static_cast<std::size_t>(c)])
          t.narrow(m.dim, m.offset + m.block * c, m.block).zero_();
      }
    }
  }
  std::map<std::string, bool> in_child;
  for (const search::ParameterShape& p : search::ParameterShapes(plan.child))
    in_child[p.name] = true;
  for (const search::ParameterShape& p : search::ParameterShapes(plan.parent)) {
    if (in_child.contains(p.name)) continue;
    torch::Tensor& t = params.at(p.name);
    if (p.bias) {
      t.zero_();
    } else {
      torch::nn::init::dirac_(t);
    }
  }
  return params;
}

TEST(Inherit, PrunedChildComputesTheMaskedParent) {
  for (const auto& [skip, up, down, act] : AllKinds()) {
    SCOPED_TRACE(Describe(skip, up, down, act));
    const auto parent_arch = Make({16, 24, 32}, {1, 2, 1}, {2, 1}, skip, up, down, act);
    // Narrower at levels 0 and 2, wider at level 1; with relu also deeper at some levels
    // and shallower at others (the masked parent's dropped blocks are the identity).
    const bool relu = act == ActivationKind::kRelu;
    const auto child_arch = Make({8, 40, 16}, {relu ? 2 : 1, relu ? 1 : 2, relu ? 3 : 1},
                                 {relu ? 1 : 2, relu ? 2 : 1}, skip, up, down, act);
    UNet parent = RandomNet(parent_arch, 11);
    const NamedTensors params = ParametersOf(parent);
    auto plan = search::PlanInheritance(parent_arch, child_arch);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    for (Importance importance : {Importance::kL1, Importance::kGroupL1}) {
      const auto kept = SelectChannels(*plan, params, importance);
      UNet child(child_arch);
      ASSERT_TRUE(
          AssignParameters(SliceParameters(*plan, params, kept, ParametersOf(child)), child).ok());
      UNet masked(parent_arch);
      ASSERT_TRUE(AssignParameters(Masked(*plan, params, kept), masked).ok());
      const torch::Tensor x = torch::rand({2, 3, 16, 16});
      const torch::Tensor want = Forward(masked, x);
      const torch::Tensor got = Forward(child, x);
      EXPECT_TRUE(torch::allclose(got, want, /*rtol=*/1e-4, /*atol=*/1e-5))
          << Name(importance) << ": max |diff| " << (got - want).abs().max().item<double>();
      // And the pruning did something: the unmasked parent differs.
      EXPECT_FALSE(torch::allclose(Forward(parent, x), want, 1e-4, 1e-5));
    }
  }
}

// (d) growing keeps the function: a child wider at every level and deeper computes what its
//     parent computes, its new filters are its own fresh ones, the columns that read them are
//     zero, and training reaches them (their gradients are not all zero).
TEST(Inherit, AWiderDeeperChildComputesItsParent) {
  for (const auto& [skip, up, down, act] : AllKinds()) {
    SCOPED_TRACE(Describe(skip, up, down, act));
    const bool relu = act == ActivationKind::kRelu;
    const auto parent_arch = Make({8, 16, 24}, {1, 1, 1}, {1, 1}, skip, up, down, act);
    const auto child_arch =
        Make({16, 24, 32}, {relu ? 2 : 1, 1, relu ? 3 : 1}, {relu ? 2 : 1, 1}, skip, up, down, act);
    UNet parent = RandomNet(parent_arch, 13);
    UNet child = RandomNet(child_arch, 17);
    const NamedTensors fresh = ParametersOf(child);
    ASSERT_TRUE(InheritWeights({parent_arch, ParametersOf(parent)}, Importance::kL1, child).ok());
    const torch::Tensor x = torch::rand({2, 3, 16, 16});
    const torch::Tensor want = Forward(parent, x);
    const torch::Tensor got = Forward(child, x);
    EXPECT_TRUE(torch::allclose(got, want, /*rtol=*/1e-4, /*atol=*/1e-5))
        << "max |diff| " << (got - want).abs().max().item<double>();
    const NamedTensors grown = ParametersOf(child);
    // The stem's new output channels 8..15: its fresh filters; the first encoder block's
    // columns that read them: zero.
    EXPECT_TRUE(torch::equal(grown.at("stem.weight").narrow(0, 8, 8),
                             fresh.at("stem.weight").narrow(0, 8, 8)));
    EXPECT_EQ(grown.at("l0_enc0.weight").narrow(1, 8, 8).abs().sum().item<double>(), 0.0);
    EXPECT_FALSE(
        torch::equal(grown.at("l0_enc0.weight").narrow(0, 8, 8), torch::zeros({8, 16, 3, 3})));
    child->train();
    torch::nn::functional::l1_loss(child->forward(x.clone()), x).backward();
    for (auto& item : child->named_parameters()) {
      if (item.key() != "l0_enc0.weight") continue;
      EXPECT_GT(item.value().grad().narrow(1, 8, 8).abs().sum().item<double>(), 0.0);
    }
  }
}

TEST(Inherit, KeepsTheChannelsWithTheLargestFilters) {
  const auto parent_arch = Make({16}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed,
                                DownsampleKind::kStrided, ActivationKind::kRelu);
  const auto child_arch = Make({8}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed,
                               DownsampleKind::kStrided, ActivationKind::kRelu);
  UNet parent = RandomNet(parent_arch, 3);
  NamedTensors params = ParametersOf(parent);
  // The stem's odd output channels get filters ten times larger.
  for (int c = 1; c < 16; c += 2) params.at("stem.weight")[c].mul_(10);
  auto plan = search::PlanInheritance(parent_arch, child_arch);
  ASSERT_TRUE(plan.ok());
  const auto kept = SelectChannels(*plan, params, Importance::kL1);
  ASSERT_EQ(plan->groups[0].name, "l0_in");
  EXPECT_EQ(kept[0], (std::vector<std::int64_t>{1, 3, 5, 7, 9, 11, 13, 15}));
}

TEST(Inherit, AnAddSkipScoresBothProducers) {
  const auto parent_arch = Make({16, 16}, {1, 1}, {1}, SkipKind::kAdd, UpsampleKind::kBilinear,
                                DownsampleKind::kStrided, ActivationKind::kRelu);
  const auto child_arch = Make({8, 16}, {1, 1}, {1}, SkipKind::kAdd, UpsampleKind::kBilinear,
                               DownsampleKind::kStrided, ActivationKind::kRelu);
  UNet parent = RandomNet(parent_arch, 5);
  NamedTensors params = ParametersOf(parent);
  // The skip's producer favours channels 0-7, the upsampling conv (far more) channels 8-15:
  // their sum favours 8-15, either producer alone would not agree.
  for (int c = 0; c < 8; ++c) params.at("l0_enc0.weight")[c].mul_(10);
  for (int c = 8; c < 16; ++c) params.at("l0_up.weight")[c].mul_(1000);
  auto plan = search::PlanInheritance(parent_arch, child_arch);
  ASSERT_TRUE(plan.ok());
  const auto kept = SelectChannels(*plan, params, Importance::kL1);
  bool found = false;
  for (std::size_t gi = 0; gi < plan->groups.size(); ++gi) {
    if (plan->groups[gi].name != "l0_enc0+up") continue;
    found = true;
    EXPECT_EQ(kept[gi], (std::vector<std::int64_t>{8, 9, 10, 11, 12, 13, 14, 15}));
  }
  EXPECT_TRUE(found);
}

TEST(Inherit, LoadsAnExportedModelAndInheritsFromIt) {
  data::testing::ScopedTempDir dir;
  const auto parent_arch =
      Make({16, 32}, {1, 1}, {1}, SkipKind::kConcat, UpsampleKind::kPixelShuffle,
           DownsampleKind::kMaxPool, ActivationKind::kRelu);
  UNet parent = RandomNet(parent_arch, 9);
  const std::string path = (dir.path() / "parent.pt").string();
  ASSERT_TRUE(ExportTorchScript(parent, path).ok());
  StatusOr<LoadedModel> model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->arch, parent_arch);
  UNet same(parent_arch);
  ASSERT_TRUE(InheritWeights(*model, Importance::kL1, same).ok());
  const torch::Tensor x = torch::rand({1, 3, 16, 16});
  EXPECT_TRUE(torch::equal(Forward(parent, x), Forward(same, x)));

  // A child that cannot inherit: the error names the field and the reason.
  const auto other = Make({16, 32}, {1, 1}, {1}, SkipKind::kAdd, UpsampleKind::kPixelShuffle,
                          DownsampleKind::kMaxPool, ActivationKind::kRelu);
  UNet child(other);
  const Status s = InheritWeights(*model, Importance::kL1, child, "parent");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("skip: child add != parent concat"), std::string::npos) << s.message();
}

TEST(Inherit, LoadModelRefusesWhatIsNotAPeaknasModel) {
  data::testing::ScopedTempDir dir;
  EXPECT_EQ(LoadModel((dir.path() / "missing.pt").string()).status().code(), StatusCode::kNotFound);
  const std::string junk = (dir.path() / "junk.pt").string();
  { std::ofstream(junk) << "not a zip"; }
  const auto loaded = LoadModel(junk);
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(loaded.status().message().rfind(junk + ": not a TorchScript model", 0), 0u)
      << loaded.status().message();
  EXPECT_EQ(ParseImportance("l2", "importance").status().message(),
            "importance: \"l2\" is not one of l1, group-l1");
}

}  // namespace
}  // namespace peaknas::worker
