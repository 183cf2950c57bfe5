// The pruning strategy driven as the coordinator drives it, with a stand-in for training.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/inheritance.h"
#include "server/strategy.h"
#include "server/strategy_test_util.h"

namespace peaknas::server {
namespace {

using testing::Arch;

constexpr const char* kStart =
    R"({"activation":"relu","dec_blocks":[1,1,1],"downsample":"strided","enc_blocks":[1,1,1,1],)"
    R"("levels":4,"skip":"add","upsample":"pixelshuffle","widths":[64,128,128,256]})";

StrategyConfig Config(std::int64_t budget_bytes, bool training = false) {
  return testing::Config(budget_bytes, training, /*trials=*/1000, /*steps=*/400);
}

std::int64_t Peak(const StrategyConfig& c, const search::Architecture& a) {
  return search::BudgetedPeakBytes(c.budget, a);
}

// A stand-in for training: PSNR grows with parameters, and the earlier levels are worth more
// per byte, so the strategy's choice is not simply "the smallest".
double FakePsnr(const search::Architecture& a) {
  double v = 25.0;
  for (int i = 0; i < a.levels; ++i) v += (a.levels - i) * 0.02 * std::sqrt(a.widths[i]);
  return v;
}

// The coordinator's loop, one proposal round at a time: everything proposed is "trained" before
// the next call, except where a test holds some back.
struct Chain {
  std::vector<Proposal> proposed;
  std::vector<Evaluated> done;
  std::unordered_set<std::uint64_t> seen;
  std::int64_t next_id = 1;

  std::vector<Proposal> Round(Strategy& s, int open = 0, int count = 64) {
    s.SetOpenTrials(open);
    std::mt19937_64 rng(1);
    std::vector<Proposal> batch = s.Propose(count, done, seen, rng);
    for (const Proposal& p : batch) {
      EXPECT_TRUE(seen.insert(p.hash).second) << "proposed twice";
      proposed.push_back(p);
    }
    return batch;
  }
  void Train(const std::vector<Proposal>& batch) {
    for (const Proposal& p : batch) {
      if (!p.admitted) continue;
      done.push_back({.arch = p.arch,
                      .trial_id = next_id++,
                      .lineage = p.lineage,
                      .psnr = FakePsnr(p.arch),
                      .peak_bytes = budgeted(p)});
    }
  }
  // Rounds proposed and trained one after the other until the strategy has nothing left.
  void RunToEnd(Strategy& s) {
    for (int guard = 0; guard < 50; ++guard) {
      const std::vector<Proposal> round = Round(s);
      if (round.empty()) return;
      Train(round);
    }
    ADD_FAILURE() << "the chain did not end";
  }
  // Training steps of every trained trial.
  std::int64_t Steps() const {
    std::int64_t spent = 0;
    for (const Evaluated& e : done) spent += e.lineage.steps;
    return spent;
  }
  // The peak the budget limits, as the coordinator stores it with the trial.
  std::function<std::int64_t(const Proposal&)> budgeted = [](const Proposal& p) {
    return p.predicted_inference_peak_bytes;
  };
};

TEST(PruningStrategy, ShrinksFromAboveTheBudgetToBelowItChoosingTheBestRatio) {
  StrategyConfig c = Config(0);
  const search::Architecture start = Arch(kStart);
  c.budget.bytes = Peak(c, start) / 5;  // the start is 5x over an inference budget
  c.pruning.start = start;
  c.pruning.iterations = 3;
  c.pruning.below_iterations = 2;
  auto made = MakeStrategy(StrategyKind::kPruning, c);
  ASSERT_TRUE(made.ok()) << made.status().message();
  Strategy& s = **made;
  Chain chain;

  // The start, alone: over the budget, admitted as an ancestor.
  std::vector<Proposal> round = chain.Round(s);
  ASSERT_EQ(round.size(), 1u);
  EXPECT_EQ(round[0].arch, start);
  EXPECT_EQ(round[0].lineage.role, "start");
  EXPECT_TRUE(round[0].admitted);
  EXPECT_TRUE(round[0].lineage.over_budget);
  EXPECT_EQ(round[0].lineage.total_steps, 400);
  // Nothing more until it is trained.
  EXPECT_TRUE(chain.Round(s, /*open=*/1).empty());
  EXPECT_TRUE(s.Waiting());
  chain.Train(round);

  Evaluated node = chain.done.back();
  std::vector<std::int64_t> node_peaks = {Peak(c, node.arch)};
  for (int k = 1; k <= 5; ++k) {
    SCOPED_TRACE("iteration " + std::to_string(k));
    round = chain.Round(s);
    ASSERT_GE(round.size(), 1u);
    int uniform = 0, peak = 0;
    for (const Proposal& p : round) {
      EXPECT_TRUE(p.admitted) << p.rejection;
      EXPECT_EQ(p.lineage.parent_trial, node.trial_id);
      EXPECT_EQ(p.lineage.iteration, k);
      EXPECT_EQ(p.lineage.steps, 100) << "a quarter of the job's steps by default";
      EXPECT_EQ(p.lineage.total_steps, node.lineage.total_steps + 100);
      EXPECT_TRUE(search::CanInherit(node.arch, p.arch));
      EXPECT_LT(Peak(c, p.arch), Peak(c, node.arch));
      EXPECT_EQ(p.lineage.over_budget, Peak(c, p.arch) > c.budget.bytes);
      if (k >= 3) {
        EXPECT_LE(Peak(c, p.arch), c.budget.bytes) << "at K the budget is met";
      }
      if (p.lineage.role == "uniform") {
        ++uniform;
      } else if (p.lineage.role == "peak") {
        ++peak;
      } else {
        ASSERT_EQ(p.lineage.role, "level");
        // Only that level's width changed, to the largest multiple of 8 meeting the target.
        for (int i = 0; i < p.arch.levels; ++i) {
          if (i != p.lineage.level) {
            EXPECT_EQ(p.arch.widths[i], node.arch.widths[i]);
          }
        }
      }
      EXPECT_NE(p.hash, search::CanonicalHash(p.arch)) << "lineage is part of the identity";
    }
    EXPECT_EQ(peak, 1) << "the peak-following shrink always meets the target";
    EXPECT_LE(uniform, 1) << "none when it is the peak-following one";
    if (k == 1) {
      EXPECT_EQ(round.size(), 2u) << "from the start: peak-following and uniform";
    }
    // Held back while any is open; then the least PSNR lost per byte saved wins.
    EXPECT_TRUE(chain.Round(s, /*open=*/static_cast<int>(round.size())).empty());
    EXPECT_TRUE(s.Waiting());
    chain.Train(round);
    const Evaluated* best = nullptr;
    double best_score = 0;
    for (const Evaluated& e : chain.done) {
      if (e.lineage.parent_trial != node.trial_id) continue;
      const double score =
          (node.psnr - e.psnr) / static_cast<double>(Peak(c, node.arch) - Peak(c, e.arch));
      if (best == nullptr || score < best_score) {
        best = &e;
        best_score = score;
      }
    }
    ASSERT_NE(best, nullptr);
    node = *best;
    node_peaks.push_back(Peak(c, node.arch));
  }
  EXPECT_LE(node_peaks[3], c.budget.bytes);
  EXPECT_LT(node_peaks[5], node_peaks[4]);
  EXPECT_LT(node_peaks[4], node_peaks[3]);

  // The long fine-tune of the last node: the same architecture, its own identity.
  round = chain.Round(s);
  ASSERT_EQ(round.size(), 1u);
  EXPECT_EQ(round[0].lineage.role, "final");
  EXPECT_EQ(round[0].arch, node.arch);
  EXPECT_EQ(round[0].lineage.parent_trial, node.trial_id);
  EXPECT_EQ(round[0].lineage.steps, 400);
  chain.Train(round);
  // Then the in-budget node nearest the budget gets its long fine-tune too.
  round = chain.Round(s);
  ASSERT_EQ(round.size(), 1u);
  EXPECT_EQ(round[0].lineage.role, "final");
  EXPECT_EQ(Peak(c, round[0].arch), node_peaks[3]) << "the largest node within the budget";
  EXPECT_NE(round[0].lineage.parent_trial, node.trial_id);
  chain.Train(round);
  EXPECT_TRUE(chain.Round(s).empty());
  EXPECT_FALSE(s.Waiting()) << "the chain is complete";
}

TEST(PruningStrategy, ResumesFromTheTrainedTrialsAlone) {
  StrategyConfig c = Config(0);
  const search::Architecture start = Arch(kStart);
  c.budget.bytes = Peak(c, start) / 3;
  c.pruning.start = start;
  auto first = MakeStrategy(StrategyKind::kPruning, c);
  ASSERT_TRUE(first.ok());
  Chain chain;
  chain.Train(chain.Round(**first));
  chain.Train(chain.Round(**first));
  // A new strategy object (a restarted coordinator) proposes the next round as the old would.
  auto again = MakeStrategy(StrategyKind::kPruning, c);
  ASSERT_TRUE(again.ok());
  Chain copy = chain;
  const auto a = chain.Round(**first);
  const auto b = copy.Round(**again);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].hash, b[i].hash);
}

// A start only 4 % over the budget (where the space's widest widths stop the scaling) takes
// one round to the budget, not `iterations` rounds of 3 %, and the rounds below it cut 0.6x
// each: the chain's steps go to sizes the frontier lacks.
TEST(PruningStrategy, AStartJustOverTheBudgetReachesItInOneRoundAndThenCutsBelowIt) {
  StrategyConfig c = Config(0);
  const search::Architecture start = Arch(kStart);
  c.budget.bytes = Peak(c, start) * 100 / 104;
  c.pruning.start = start;
  c.pruning.iterations = 4;
  c.pruning.below_iterations = 3;
  auto made = MakeStrategy(StrategyKind::kPruning, c);
  ASSERT_TRUE(made.ok()) << made.status().message();
  Chain chain;
  chain.RunToEnd(**made);
  std::map<int, std::int64_t> largest;  // per round, the largest proposal's peak
  for (const Proposal& p : chain.proposed) {
    if (p.lineage.role == "start" || p.lineage.role == "final") continue;
    std::int64_t& l = largest[p.lineage.iteration];
    l = std::max(l, Peak(c, p.arch));
  }
  ASSERT_EQ(largest.size(), 4u) << "one round to the budget and three below it";
  EXPECT_EQ(largest.begin()->first, 1);
  EXPECT_EQ(largest.rbegin()->first, 4);
  const double budget = static_cast<double>(c.budget.bytes);
  EXPECT_LE(largest[1], c.budget.bytes) << "round 1 meets the budget";
  EXPECT_GT(static_cast<double>(largest[1]), 0.9 * budget) << "and does not overshoot it";
  for (int k = 2; k <= 4; ++k) {
    SCOPED_TRACE("round " + std::to_string(k));
    EXPECT_LE(static_cast<double>(largest[k]), std::pow(0.6, k - 1) * budget);
  }
  std::int64_t smallest = largest[4];
  for (const Evaluated& e : chain.done) smallest = std::min(smallest, e.peak_bytes);
  EXPECT_LT(static_cast<double>(smallest), 0.25 * budget) << "the frontier reaches a quarter";
}

TEST(PruningStrategy, WithATrainingBudgetStartsFromTheLargestScalingThatFits) {
  StrategyConfig c = Config(0, /*training=*/true);
  const search::Architecture start = Arch(kStart);
  c.budget.bytes = Peak(c, start);
  c.base = start;
  c.pruning.iterations = 2;
  c.pruning.below_iterations = 0;
  auto made = MakeStrategy(StrategyKind::kPruning, c);
  ASSERT_TRUE(made.ok());
  Chain chain;
  chain.budgeted = [](const Proposal& p) { return p.predicted_train_peak_bytes; };
  auto round = chain.Round(**made);
  ASSERT_EQ(round.size(), 1u);
  EXPECT_LE(Peak(c, round[0].arch), c.budget.bytes);
  EXPECT_GT(Peak(c, round[0].arch), c.budget.bytes * 8 / 10) << "near the budget";
  EXPECT_FALSE(round[0].lineage.over_budget);
  for (int k = 0; k < 4 && !round.empty(); ++k) {
    chain.Train(round);
    round = chain.Round(**made);
    for (const Proposal& p : round) {
      EXPECT_FALSE(p.lineage.over_budget);
      EXPECT_LE(Peak(c, p.arch), c.budget.bytes);
    }
  }
  EXPECT_EQ(chain.proposed.back().lineage.role, "final");
}

// A whole chain from kStart, 5x over an inference budget, under `max_total_steps`.
struct StepCappedRun {
  StrategyConfig config;
  std::unique_ptr<Strategy> strategy;  // null when MakeStrategy refused the config
  Chain chain;
};
StepCappedRun RunUnderStepCap(std::int64_t max_total_steps) {
  StepCappedRun run{.config = Config(0)};
  StrategyConfig& c = run.config;
  const search::Architecture start = Arch(kStart);
  c.budget.bytes = Peak(c, start) / 5;
  c.pruning.start = start;
  c.pruning.max_total_steps = max_total_steps;
  auto made = MakeStrategy(StrategyKind::kPruning, c);
  EXPECT_TRUE(made.ok()) << made.status().message();
  if (!made.ok()) return run;
  run.strategy = std::move(made).value();
  run.chain.RunToEnd(*run.strategy);
  return run;
}

TEST(PruningStrategy, SpendsAtMostMaxTotalStepsAndStillEndsWithTheFinalFineTune) {
  // The start, five children, the final.
  const StepCappedRun run = RunUnderStepCap(400 + 100 * 5 + 400);
  ASSERT_NE(run.strategy, nullptr);
  const std::int64_t cap = run.config.pruning.max_total_steps;
  EXPECT_LE(run.chain.Steps(), cap);
  EXPECT_GE(run.chain.Steps(), cap - 100) << "the rounds use what there is";
  EXPECT_EQ(run.chain.proposed.back().lineage.role, "final");
  EXPECT_FALSE(run.strategy->Waiting());
}

// With steps left once the schedule's rounds and fine-tunes are done, the fine-tuned model
// nearest the budget trains on for exactly what is left: the chain spends all of
// max_total_steps.
TEST(PruningStrategy, SpendsWhatIsLeftOnTheModelNearestTheBudget) {
  // More than every round and fine-tune of the schedule.
  const StepCappedRun run = RunUnderStepCap(20'000);
  ASSERT_NE(run.strategy, nullptr);
  const StrategyConfig& c = run.config;
  const Chain& chain = run.chain;
  EXPECT_EQ(chain.Steps(), c.pruning.max_total_steps);
  const Proposal& last = chain.proposed.back();
  EXPECT_EQ(last.lineage.role, "final");
  const Evaluated& parent = chain.done[static_cast<std::size_t>(last.lineage.parent_trial - 1)];
  EXPECT_EQ(parent.lineage.role, "final") << "it trains on from a fine-tuned model";
  EXPECT_EQ(parent.arch, last.arch);
  EXPECT_LE(parent.peak_bytes, c.budget.bytes);
  for (const Evaluated& e : chain.done) {
    if (e.lineage.role == "final" && !e.lineage.over_budget && e.peak_bytes <= c.budget.bytes) {
      EXPECT_LE(e.peak_bytes, parent.peak_bytes) << "the fine-tuned model nearest the budget";
    }
  }
  EXPECT_FALSE(run.strategy->Waiting());
}

// Why MakeStrategy refuses a pruning config that `edit` makes of a valid one ("" if it does not).
std::string Refusal(const std::function<void(StrategyConfig&)>& edit) {
  StrategyConfig c = Config(64 << 20);
  edit(c);
  return std::string(MakeStrategy(StrategyKind::kPruning, c).status().message());
}

TEST(PruningStrategy, RefusesABadSchedule) {
  EXPECT_EQ(Refusal([](StrategyConfig& c) { c.pruning.iterations = 0; }),
            "pruning.iterations: 0 not in [1, 100]");
  const std::string multiple = Refusal([](StrategyConfig& c) { c.pruning.start_multiple = 1.0; });
  EXPECT_EQ(multiple.rfind("pruning.start_budget_multiple: ", 0), 0u) << multiple;
}

}  // namespace
}  // namespace peaknas::server
