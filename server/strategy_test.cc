#include "server/strategy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/inheritance.h"
#include "search/tiling.h"
#include "server/strategy_test_util.h"

namespace peaknas::server {
namespace {

using testing::Arch;
using testing::Config;

constexpr const char* kUNet =
    R"({"activation":"relu","dec_blocks":[1,1,1],"downsample":"strided","enc_blocks":[1,1,2,2],)"
    R"("levels":4,"skip":"concat","upsample":"transposed","widths":[32,64,128,256]})";

// A stand-in for training: PSNR grows with capacity, with a per-architecture wobble so the
// objectives trade off rather than line up.
Evaluated Train(const Proposal& p) {
  Evaluated e;
  e.arch = p.arch;
  e.psnr = 25.0 + 0.5 * std::log2(static_cast<double>(search::Parameters(p.arch))) +
           static_cast<double>(p.hash % 1000) / 1000.0;
  e.peak_bytes = p.predicted_inference_peak_bytes;
  e.latency_100mp_s = p.latency_100mp_s;
  return e;
}

// The budgeted peak at `quantile` of `n` uniform draws (seeded).
std::int64_t PeakQuantile(const StrategyConfig& c, double quantile, int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> peaks;
  for (int i = 0; i < n; ++i) {
    peaks.push_back(search::BudgetedPeakBytes(c.budget, search::Sample(c.space, rng)));
  }
  std::sort(peaks.begin(), peaks.end());
  return peaks[static_cast<std::size_t>(quantile * (n - 1))];
}

// The median budgeted peak of uniform draws: a budget between the cheapest and typical sizes.
std::int64_t MedianPeak(const StrategyConfig& c) { return PeakQuantile(c, 0.5, 401, 7); }

// Runs a strategy like the coordinator does: propose, record, "train" the admitted.
struct History {
  std::vector<Proposal> proposals;
  std::vector<Evaluated> done;
  std::vector<std::size_t> done_before;  // per proposal: trials done when it was proposed
};
History Drive(Strategy& s, int rounds, int per_round, std::uint64_t seed) {
  History run;
  std::unordered_set<std::uint64_t> seen;
  std::mt19937_64 rng(seed);
  for (int r = 0; r < rounds; ++r) {
    const std::vector<Proposal> batch = s.Propose(per_round, run.done, seen, rng);
    const std::size_t done_before = run.done.size();
    for (const Proposal& p : batch) {
      EXPECT_FALSE(seen.contains(p.hash)) << "proposed twice: " << search::ToCanonicalJson(p.arch);
      seen.insert(p.hash);
      run.proposals.push_back(p);
      run.done_before.push_back(done_before);
      if (p.admitted) run.done.push_back(Train(p));
    }
  }
  return run;
}

// Evolution's children: the proposals of `h` made once `population` trials were done.
std::vector<const Proposal*> Children(const History& h, int population) {
  std::vector<const Proposal*> children;
  for (std::size_t i = 0; i < h.proposals.size(); ++i) {
    if (h.done_before[i] >= static_cast<std::size_t>(population)) {
      children.push_back(&h.proposals[i]);
    }
  }
  return children;
}

// --- Check.

TEST(Check, AdmitsExactlyAtTheBoundary) {
  for (bool training : {false, true}) {
    SCOPED_TRACE(training ? "training" : "inference");
    const search::Architecture a = Arch(kUNet);
    StrategyConfig c = Config(1, training);
    const std::int64_t peak = search::BudgetedPeakBytes(c.budget, a);
    ASSERT_GT(peak, 1);

    c.budget.bytes = peak;
    const Proposal at = Check(a, c);
    EXPECT_TRUE(at.admitted) << at.rejection;
    EXPECT_TRUE(at.rejection.empty());
    EXPECT_EQ(at.hash, search::CanonicalHash(a));
    EXPECT_EQ(at.arch, a);
    EXPECT_EQ(at.predicted_inference_peak_bytes,
              search::InferencePeakBytes(a, c.budget.tile, c.budget.dtype, *c.budget.device));
    EXPECT_EQ(at.predicted_train_peak_bytes,
              search::TrainPeakBytes(a, c.budget.patch, c.budget.dtype, *c.budget.device));
    EXPECT_EQ(training ? at.predicted_train_peak_bytes : at.predicted_inference_peak_bytes, peak);

    c.budget.bytes = peak - 1;
    const Proposal below = Check(a, c);
    EXPECT_FALSE(below.admitted);
    EXPECT_NE(below.rejection.find(std::to_string(peak)), std::string::npos) << below.rejection;
    EXPECT_NE(below.rejection.find(std::to_string(peak - 1)), std::string::npos) << below.rejection;
    EXPECT_NE(below.rejection.find("budget"), std::string::npos) << below.rejection;
    EXPECT_EQ(below.predicted_inference_peak_bytes, at.predicted_inference_peak_bytes);
    EXPECT_EQ(below.predicted_train_peak_bytes, at.predicted_train_peak_bytes);
    EXPECT_EQ(below.latency_100mp_s, 0.0);
  }
}

TEST(Check, LatencyIsAtTheLargestFittingTile) {
  const search::Architecture a = Arch(kUNet);
  StrategyConfig c =
      Config(search::InferencePeakBytes(a, {.batch = 1, .size = 256}, search::DType::kFp32,
                                        search::DefaultDeviceProfile()) *
             3);
  const Proposal p = Check(a, c);
  ASSERT_TRUE(p.admitted) << p.rejection;
  const search::HundredMegapixelPass pass =
      search::PlanHundredMegapixels(a, c.budget.bytes, c.budget.dtype, *c.budget.device);
  ASSERT_GT(pass.plan.tile, 256 - 2 * search::SeamFreeOverlap(a));
  EXPECT_EQ(pass.plan.tile,
            search::MaxTiledOutputSide(a, c.budget.bytes, search::SeamFreeOverlap(a),
                                       c.budget.dtype, *c.budget.device));
  EXPECT_EQ(p.latency_100mp_s, pass.seconds);
  EXPECT_GT(p.latency_100mp_s, 0);
}

TEST(Check, RejectsAShapeTheLevelsDoNotDivide) {
  const search::Architecture a = Arch(kUNet);  // 4 levels: multiples of 8
  StrategyConfig c = Config(std::int64_t{1} << 40);
  c.budget.tile.size = 100;
  const Proposal p = Check(a, c);
  EXPECT_FALSE(p.admitted);
  EXPECT_NE(p.rejection.find("budget.tile"), std::string::npos) << p.rejection;
  EXPECT_NE(p.rejection.find("100"), std::string::npos) << p.rejection;
  c = Config(std::int64_t{1} << 40);
  c.budget.patch.size = 60;
  EXPECT_NE(Check(a, c).rejection.find("budget.patch"), std::string::npos);
}

// --- MakeStrategy.

TEST(MakeStrategy, RefusesUnusableConfigs) {
  StrategyConfig c = Config(std::int64_t{1} << 30);
  auto scaling = MakeStrategy(StrategyKind::kScaling, c);
  ASSERT_FALSE(scaling.ok());
  EXPECT_EQ(scaling.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(scaling.status().message().find("base"), std::string::npos);
  c.population = 1;
  EXPECT_FALSE(MakeStrategy(StrategyKind::kEvolution, c).ok());
  c = Config(std::int64_t{1} << 30);
  c.space.width = {16, 8};
  EXPECT_FALSE(MakeStrategy(StrategyKind::kRandom, c).ok());
  EXPECT_TRUE(MakeStrategy(StrategyKind::kRandom, Config(1 << 30)).ok());
}

// --- random.

TEST(RandomStrategy, NeverProposesASeenHashAndReproducesFromTheSeed) {
  const StrategyConfig c = Config(std::int64_t{1} << 30);
  auto s = MakeStrategy(StrategyKind::kRandom, c);
  ASSERT_TRUE(s.ok());
  std::mt19937_64 rng(1);
  const std::vector<Proposal> first = (*s)->Propose(50, {}, {}, rng);
  ASSERT_EQ(first.size(), 50u);
  std::unordered_set<std::uint64_t> seen;
  for (const Proposal& p : first) {
    EXPECT_TRUE(seen.insert(p.hash).second) << "duplicate within a batch";
    EXPECT_EQ(p.hash, search::CanonicalHash(p.arch));
    EXPECT_TRUE(search::Contains(c.space, p.arch));
  }
  // Same seed, everything of `first` seen: nothing of it again.
  std::mt19937_64 again(1);
  for (const Proposal& p : (*s)->Propose(200, {}, seen, again)) {
    EXPECT_FALSE(seen.contains(p.hash));
  }
  // Same seed, same proposals, on a fresh strategy.
  auto t = MakeStrategy(StrategyKind::kRandom, c);
  ASSERT_TRUE(t.ok());
  std::mt19937_64 same(1);
  const std::vector<Proposal> replay = (*t)->Propose(50, {}, {}, same);
  ASSERT_EQ(replay.size(), first.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(replay[i].hash, first[i].hash);
    EXPECT_EQ(replay[i].admitted, first[i].admitted);
    EXPECT_EQ(replay[i].rejection, first[i].rejection);
  }
}

TEST(RandomStrategy, StopsWhenTheSpaceIsExhausted) {
  StrategyConfig c = Config(std::int64_t{1} << 30);
  c.stratified = false;  // every point of the space drawn as it is
  c.space.levels = {2, 2};
  c.space.width = {8, 8};
  c.space.enc_blocks = {1, 1};
  c.space.dec_blocks = {1, 2};
  c.space.skips = {search::SkipKind::kAdd};
  c.space.upsamples = {search::UpsampleKind::kBilinear};
  c.space.downsamples = {search::DownsampleKind::kMaxPool};
  c.space.activations = {search::ActivationKind::kRelu};
  auto s = MakeStrategy(StrategyKind::kRandom, c);
  ASSERT_TRUE(s.ok());
  std::mt19937_64 rng(3);
  const std::vector<Proposal> all = (*s)->Propose(10, {}, {}, rng);
  EXPECT_EQ(all.size(), 2u);  // dec_blocks 1 or 2, nothing else varies
  std::unordered_set<std::uint64_t> seen;
  for (const Proposal& p : all) seen.insert(p.hash);
  EXPECT_TRUE((*s)->Propose(10, {}, seen, rng).empty());
}

TEST(RandomStrategy, StratifiedDrawsCoverTheBudgetFromSmallToTheTop) {
  // A generous budget (the 90th percentile of uniform draws): uniform draws mostly fit, far
  // below it; stratified ones spread from a sixteenth of it to the top.
  StrategyConfig c = Config(1);
  c.budget.bytes = PeakQuantile(c, 0.9, 401, 7);
  std::vector<double> fractions[2];
  for (bool stratified : {false, true}) {
    c.stratified = stratified;
    auto s = MakeStrategy(StrategyKind::kRandom, c);
    ASSERT_TRUE(s.ok());
    std::mt19937_64 rng(21);
    for (const Proposal& p : (*s)->Propose(64, {}, {}, rng)) {
      if (!p.admitted) continue;
      fractions[stratified].push_back(
          static_cast<double>(search::BudgetedPeakBytes(c.budget, p.arch)) /
          static_cast<double>(c.budget.bytes));
    }
  }
  const auto share_above = [](const std::vector<double>& f, double x) {
    return static_cast<double>(
               std::count_if(f.begin(), f.end(), [&](double v) { return v >= x; })) /
           static_cast<double>(std::max<std::size_t>(f.size(), 1));
  };
  std::cout << "admitted of 64: uniform " << fractions[0].size() << ", stratified "
            << fractions[1].size() << "; share at >= half the budget: uniform "
            << share_above(fractions[0], 0.5) << ", stratified " << share_above(fractions[1], 0.5)
            << "\n";
  EXPECT_GE(fractions[1].size(), 60u) << "scaled draws fit";
  EXPECT_GE(fractions[1].size(), fractions[0].size());
  // Every octave of size from a sixteenth of the budget up gets its share of the draws.
  for (double lo : {1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 2}) {
    const double share = share_above(fractions[1], lo) - share_above(fractions[1], 2 * lo);
    EXPECT_GE(share + (lo == 0.5 ? share_above(fractions[1], 1.0) : 0.0), 0.1)
        << "octave from " << lo;
  }
  EXPECT_LE(*std::min_element(fractions[1].begin(), fractions[1].end()), 0.125)
      << "and down to small networks";
}

// --- every strategy.

TEST(Strategies, EveryAdmittedProposalFitsATightBudget) {
  for (bool training : {false, true}) {
    StrategyConfig c = Config(1, training);
    c.budget.bytes = MedianPeak(c) / 2;
    c.base = Arch(kUNet);
    for (StrategyKind kind :
         {StrategyKind::kRandom, StrategyKind::kEvolution, StrategyKind::kScaling}) {
      SCOPED_TRACE(::testing::Message()
                   << "kind " << static_cast<int>(kind) << " training " << training);
      auto s = MakeStrategy(kind, c);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      const History run = Drive(**s, 30, 10, 11);
      ASSERT_FALSE(run.proposals.empty());
      int admitted = 0;
      for (const Proposal& p : run.proposals) {
        EXPECT_TRUE(search::Contains(c.space, p.arch));
        if (p.admitted) {
          ++admitted;
          EXPECT_LE(search::BudgetedPeakBytes(c.budget, p.arch), c.budget.bytes);
          EXPECT_TRUE(p.rejection.empty());
        } else {
          EXPECT_GT(search::BudgetedPeakBytes(c.budget, p.arch), c.budget.bytes);
          EXPECT_FALSE(p.rejection.empty());
        }
      }
      EXPECT_GT(admitted, 0);
    }
  }
}

// --- evolution.

TEST(EvolutionStrategy, RepairsOverBudgetChildren) {
  StrategyConfig c = Config(1);
  c.budget.bytes = MedianPeak(c);
  c.stratified = false;  // uniform draws: the random baseline and the parents it gives
  auto evo = MakeStrategy(StrategyKind::kEvolution, c);
  auto rnd = MakeStrategy(StrategyKind::kRandom, c);
  ASSERT_TRUE(evo.ok() && rnd.ok());
  const History e = Drive(**evo, 40, 8, 5);
  const History r = Drive(**rnd, 40, 8, 5);
  const std::vector<const Proposal*> children = Children(e, c.population);
  int admitted_children = 0;
  for (const Proposal* p : children) {
    if (p->admitted) {
      ++admitted_children;
    } else {
      EXPECT_NE(p->rejection.find("predicted"), std::string::npos) << p->rejection;
      EXPECT_NE(p->rejection.find("repair"), std::string::npos) << p->rejection;
    }
  }
  int random_admitted = 0;
  for (const Proposal& p : r.proposals) random_admitted += p.admitted ? 1 : 0;
  const double child_share =
      static_cast<double>(admitted_children) / std::max<std::size_t>(children.size(), 1);
  const double random_share = static_cast<double>(random_admitted) / r.proposals.size();
  std::cout << "evolution children admitted " << admitted_children << "/" << children.size()
            << ", random admitted " << random_admitted << "/" << r.proposals.size() << "\n";
  ASSERT_GT(children.size(), 100u);
  EXPECT_GT(child_share, 0.9);
  EXPECT_GT(child_share, random_share);
}

TEST(EvolutionStrategy, RejectsWhatRepairCannotFixWithTheReason) {
  // A budget near the cheapest draws: shrinking widths and depth cannot fix a child whose level
  // count or kinds alone put it over, so some children come back rejected, with the reason.
  StrategyConfig c = Config(1);
  c.budget.bytes = PeakQuantile(c, 0.03, 2001, 13);  // the cheapest 3%
  c.population = 8;
  c.stratified = false;
  auto evo = MakeStrategy(StrategyKind::kEvolution, c);
  ASSERT_TRUE(evo.ok());
  const History h = Drive(**evo, 60, 8, 17);
  const std::vector<const Proposal*> children = Children(h, c.population);
  std::size_t admitted_children = 0;
  for (const Proposal* p : children) {
    if (p->admitted) {
      ++admitted_children;
      EXPECT_LE(search::BudgetedPeakBytes(c.budget, p->arch), c.budget.bytes);
    } else {
      EXPECT_NE(p->rejection.find(std::to_string(c.budget.bytes)), std::string::npos)
          << p->rejection;
      EXPECT_NE(p->rejection.find("repair"), std::string::npos) << p->rejection;
    }
  }
  std::cout << "tight budget: evolution children admitted " << admitted_children << "/"
            << children.size() << "\n";
  ASSERT_GT(children.size(), 50u);
  EXPECT_GT(admitted_children, children.size() / 2);
}

TEST(EvolutionStrategy, BreedsOnceAQuarterOfTheTrialsAreDrawn) {
  StrategyConfig c = Config(std::int64_t{1} << 40);  // everything fits
  c.trials = 8;
  c.parallelism = 2;
  EXPECT_EQ(InitialDraws(c), 2);
  c.trials = 200;
  EXPECT_EQ(InitialDraws(c), 16) << "at most the population";
  c.trials = 8;
  auto evo = MakeStrategy(StrategyKind::kEvolution, c);
  auto rnd = MakeStrategy(StrategyKind::kRandom, c);
  ASSERT_TRUE(evo.ok() && rnd.ok());
  // Two rounds of two, as two workers would see them: the first round matches random's
  // draws, the second already breeds (it differs from random's continuation).
  const History e = Drive(**evo, 2, 2, 3);
  const History r = Drive(**rnd, 2, 2, 3);
  ASSERT_EQ(e.done_before[2], 2u);
  ASSERT_EQ(e.proposals.size(), 4u);
  ASSERT_EQ(r.proposals.size(), 4u);
  EXPECT_EQ(e.proposals[0].hash, r.proposals[0].hash);
  EXPECT_EQ(e.proposals[1].hash, r.proposals[1].hash);
  EXPECT_NE(e.proposals[2].hash, r.proposals[2].hash);
}

// Children at their mutated size and children sized to the front's gaps (which mostly grow
// their parent) inherit when asked, from a trial they can inherit from.
TEST(EvolutionStrategy, ChildrenInheritWhenAsked) {
  for (const auto& [stratified, inherit] :
       {std::pair{false, false}, std::pair{false, true}, std::pair{true, true}}) {
    StrategyConfig c = Config(1);
    c.budget.bytes = MedianPeak(c);
    c.inherit = inherit;
    c.stratified = stratified;
    auto evo = MakeStrategy(StrategyKind::kEvolution, c);
    ASSERT_TRUE(evo.ok());
    // Drive with trial ids, as the coordinator does.
    std::vector<Evaluated> done;
    std::unordered_set<std::uint64_t> seen;
    std::mt19937_64 rng(4);
    int inheriting = 0, children = 0;
    for (int round = 0; round < 30; ++round) {
      const std::size_t before = done.size();
      for (const Proposal& p : (*evo)->Propose(8, done, seen, rng)) {
        seen.insert(p.hash);
        if (before >= 16) ++children;
        if (p.lineage.parent_trial != 0) {
          ++inheriting;
          const Evaluated& parent = done[static_cast<std::size_t>(p.lineage.parent_trial - 1)];
          EXPECT_EQ(p.lineage.role, "mutation");
          EXPECT_TRUE(search::CanInherit(parent.arch, p.arch));
          EXPECT_NE(parent.arch, p.arch);
          EXPECT_EQ(p.hash, CandidateHash(p.arch, p.lineage));
        }
        if (!p.admitted) continue;
        Evaluated e = Train(p);
        e.trial_id = static_cast<std::int64_t>(done.size()) + 1;
        e.lineage = p.lineage;
        done.push_back(e);
      }
    }
    std::cout << (stratified ? "stratified, " : "mutated size, ")
              << (inherit ? "inherit" : "scratch") << ": " << inheriting << " of " << children
              << " children inherit\n";
    if (inherit) {
      EXPECT_GT(inheriting, children / 4) << "most mutations keep the levels and the kinds";
    } else {
      EXPECT_EQ(inheriting, 0);
    }
  }
}

TEST(EvolutionStrategy, StratifiedChildrenFillTheFrontsWidestGaps) {
  StrategyConfig c = Config(1, false, /*trials=*/8);
  c.budget.bytes = search::BudgetedPeakBytes(c.budget, Arch(kUNet)) * 8;
  c.parallelism = 2;
  const double budget = static_cast<double>(c.budget.bytes);
  const auto peak = [&](const search::Architecture& a) {
    return static_cast<double>(search::BudgetedPeakBytes(c.budget, a));
  };
  // A front crowded at the small end: peaks at most budget / 16 and budget / 8.
  std::vector<Evaluated> done;
  for (double fraction : {1.0 / 16, 1.0 / 8}) {
    auto arch = search::ScaleToCost(Arch(kUNet), fraction * budget, peak, {}, c.space);
    ASSERT_TRUE(arch.ok());
    Proposal p = Check(*arch, c);
    ASSERT_TRUE(p.admitted);
    Evaluated e = Train(p);
    e.psnr = 26 + static_cast<double>(done.size());  // both on the front
    e.trial_id = static_cast<std::int64_t>(done.size()) + 1;
    done.push_back(e);
  }
  // The front sits at or below budget / 16 and budget / 8: the widest gap of [0, budget] is
  // above budget / 8, its middle at most 9/16 of the budget; the second child takes another.
  const double first_target = budget * 9 / 16;
  auto evo = MakeStrategy(StrategyKind::kEvolution, c);
  ASSERT_TRUE(evo.ok());
  std::mt19937_64 rng(3);
  const std::vector<Proposal> children = (*evo)->Propose(2, done, {}, rng);
  ASSERT_EQ(children.size(), 2u);
  const double first = peak(children[0].arch), second = peak(children[1].arch);
  EXPECT_LE(first, first_target);
  EXPECT_GE(first, first_target * 0.7) << "sized to the gap, not left at its parent's size";
  EXPECT_GT(std::abs(second - first), budget / 8) << "the second child goes to another gap";
  for (const Proposal& p : children) EXPECT_TRUE(p.admitted) << p.rejection;

  // Uniform sampling leaves children at their mutated size.
  c.stratified = false;
  auto plain = MakeStrategy(StrategyKind::kEvolution, c);
  ASSERT_TRUE(plain.ok());
  std::mt19937_64 rng2(3);
  for (const Proposal& p : (*plain)->Propose(2, done, {}, rng2)) {
    EXPECT_LT(peak(p.arch), budget / 3) << "a mutation of a small parent stays small";
  }
}

TEST(EvolutionStrategy, ReproducesFromTheSeed) {
  StrategyConfig c = Config(1);
  c.budget.bytes = MedianPeak(c);
  auto a = MakeStrategy(StrategyKind::kEvolution, c);
  auto b = MakeStrategy(StrategyKind::kEvolution, c);
  ASSERT_TRUE(a.ok() && b.ok());
  const History x = Drive(**a, 10, 6, 9);
  const History y = Drive(**b, 10, 6, 9);
  ASSERT_EQ(x.proposals.size(), y.proposals.size());
  for (std::size_t i = 0; i < x.proposals.size(); ++i) {
    EXPECT_EQ(x.proposals[i].hash, y.proposals[i].hash);
  }
}

// --- scaling.

TEST(ScalingStrategy, SweepIsMonotoneInPeakAndFits) {
  for (bool training : {false, true}) {
    SCOPED_TRACE(training ? "training" : "inference");
    StrategyConfig c = Config(1, training);
    c.base = Arch(kUNet);
    c.budget.bytes = search::BudgetedPeakBytes(c.budget, *c.base) * 2;
    c.trials = 12;
    auto s = MakeStrategy(StrategyKind::kScaling, c);
    ASSERT_TRUE(s.ok());
    const History run = Drive(**s, 5, 4, 1);
    ASSERT_GE(run.proposals.size(), 6u);
    EXPECT_LE(run.proposals.size(), 12u);
    std::int64_t last = -1;
    for (const Proposal& p : run.proposals) {
      ASSERT_TRUE(p.admitted) << p.rejection;
      const std::int64_t peak = search::BudgetedPeakBytes(c.budget, p.arch);
      EXPECT_LE(peak, c.budget.bytes);
      EXPECT_GT(peak, last);
      last = peak;
    }
    // From small to the largest that fits: the top is above the base, the bottom well below.
    EXPECT_GT(last, search::BudgetedPeakBytes(c.budget, *c.base));
    EXPECT_LT(search::BudgetedPeakBytes(c.budget, run.proposals.front().arch),
              search::BudgetedPeakBytes(c.budget, *c.base) / 2);
    // Exhausted once everything is seen.
    std::unordered_set<std::uint64_t> seen;
    for (const Proposal& p : run.proposals) seen.insert(p.hash);
    std::mt19937_64 rng(1);
    EXPECT_TRUE((*s)->Propose(4, run.done, seen, rng).empty());
  }
}

// The scaling tests' job: the U-Net swept up to twice its own peak, 12 points.
StrategyConfig ScalingConfig(bool inherit) {
  StrategyConfig c = Config(1);
  c.base = Arch(kUNet);
  c.budget.bytes = search::BudgetedPeakBytes(c.budget, *c.base) * 2;
  c.trials = 12;
  c.parallelism = 2;
  c.inherit = inherit;
  return c;
}

TEST(ScalingStrategy, InheritingSweepRunsFromTheLargestDownAlongChains) {
  const StrategyConfig c = ScalingConfig(true);
  auto plain = MakeStrategy(StrategyKind::kScaling, ScalingConfig(false));
  auto chained = MakeStrategy(StrategyKind::kScaling, c);
  ASSERT_TRUE(plain.ok() && chained.ok());
  const History sweep = Drive(**plain, 1, 100, 1);

  // The coordinator's loop with two workers: fill the open slots, then one trial finishes.
  std::vector<Evaluated> done;
  std::vector<Proposal> proposed, open;
  std::unordered_set<std::uint64_t> seen;
  std::mt19937_64 rng(1);
  bool waited = false;
  for (int step = 0; step < 100; ++step) {
    (*chained)->SetOpenTrials(static_cast<int>(open.size()));
    for (Proposal& p : (*chained)->Propose(2 - static_cast<int>(open.size()), done, seen, rng)) {
      ASSERT_TRUE(p.admitted) << p.rejection;
      ASSERT_FALSE(seen.contains(p.hash));
      seen.insert(p.hash);
      if (p.lineage.parent_trial != 0) {
        const Evaluated& parent = done[static_cast<std::size_t>(p.lineage.parent_trial - 1)];
        EXPECT_EQ(p.lineage.role, "scaling");
        EXPECT_TRUE(search::Narrows(parent.arch, p.arch));
        EXPECT_GT(parent.peak_bytes, p.predicted_inference_peak_bytes);
        EXPECT_EQ(p.lineage.steps, c.steps);
        EXPECT_EQ(
            p.lineage.total_steps,
            (parent.lineage.total_steps > 0 ? parent.lineage.total_steps : c.steps) + c.steps);
        EXPECT_EQ(p.hash, CandidateHash(p.arch, p.lineage));
      }
      proposed.push_back(p);
      open.push_back(p);
    }
    if (open.size() < 2 && (*chained)->Waiting()) waited = true;
    if (open.empty()) break;
    Evaluated e = Train(open.front());
    e.trial_id = static_cast<std::int64_t>(done.size()) + 1;
    e.lineage = open.front().lineage;
    done.push_back(e);
    open.erase(open.begin());
  }
  EXPECT_TRUE(waited) << "a point waits for its donor to finish";
  // The same points as the plain sweep, the largest first, most of them inheriting.
  ASSERT_EQ(proposed.size(), sweep.proposals.size());
  std::vector<std::uint64_t> a, b;
  for (const Proposal& p : proposed) a.push_back(search::CanonicalHash(p.arch));
  for (const Proposal& p : sweep.proposals) b.push_back(search::CanonicalHash(p.arch));
  EXPECT_EQ(a.front(), b.back());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  // A point trains from scratch only when no larger point of the sweep can be its donor.
  int inheriting = 0;
  for (const Proposal& p : proposed) {
    if (p.lineage.parent_trial != 0) {
      ++inheriting;
      continue;
    }
    for (const Proposal& q : sweep.proposals) {
      if (q.predicted_inference_peak_bytes > p.predicted_inference_peak_bytes) {
        EXPECT_FALSE(search::Narrows(q.arch, p.arch)) << search::ToCanonicalJson(p.arch);
      }
    }
  }
  EXPECT_GE(inheriting, static_cast<int>(proposed.size()) / 2);
}

TEST(ScalingStrategy, InheritingSweepSkipsADonorThatFailed) {
  auto s = MakeStrategy(StrategyKind::kScaling, ScalingConfig(true));
  ASSERT_TRUE(s.ok());
  std::unordered_set<std::uint64_t> seen;
  std::vector<Evaluated> done;
  std::mt19937_64 rng(1);
  // One worker. The largest point fails: nothing trained, nothing open.
  (*s)->SetOpenTrials(0);
  const std::vector<Proposal> first = (*s)->Propose(1, done, seen, rng);
  ASSERT_EQ(first.size(), 1u);
  seen.insert(first[0].hash);
  // While it trains, only a point that cannot inherit from it may start (the head of the
  // sweep's shallower chain); the points below it wait.
  (*s)->SetOpenTrials(1);
  for (const Proposal& p : (*s)->Propose(1, done, seen, rng)) {
    EXPECT_EQ(p.lineage.parent_trial, 0);
    EXPECT_FALSE(search::Narrows(first[0].arch, p.arch));
  }
  EXPECT_TRUE((*s)->Waiting());
  (*s)->SetOpenTrials(0);
  const std::vector<Proposal> second = (*s)->Propose(1, done, seen, rng);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].lineage.parent_trial, 0) << "its donor failed";
  EXPECT_LT(second[0].predicted_inference_peak_bytes, first[0].predicted_inference_peak_bytes);
  seen.insert(second[0].hash);
  Evaluated e = Train(second[0]);
  e.trial_id = 7;
  done.push_back(e);
  const std::vector<Proposal> third = (*s)->Propose(1, done, seen, rng);
  ASSERT_EQ(third.size(), 1u);
  ASSERT_TRUE(search::Narrows(second[0].arch, third[0].arch));
  EXPECT_EQ(third[0].lineage.parent_trial, 7);
}

TEST(ScalingStrategy, ABudgetNothingFitsYieldsOneRejection) {
  StrategyConfig c = Config(1024);
  c.base = Arch(kUNet);
  auto s = MakeStrategy(StrategyKind::kScaling, c);
  ASSERT_TRUE(s.ok());
  std::mt19937_64 rng(1);
  const std::vector<Proposal> p = (*s)->Propose(4, {}, {}, rng);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_FALSE(p[0].admitted);
  EXPECT_NE(p[0].rejection.find("1024"), std::string::npos) << p[0].rejection;
}

}  // namespace
}  // namespace peaknas::server
