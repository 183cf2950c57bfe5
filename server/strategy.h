// Search strategies of the coordinator (DESIGN.md, "Search"): given what a job has learned so
// far, propose the next architectures to train. Every proposal has been through the cost model:
// it is either admitted (its budgeted peak fits) or rejected with the reason and the predicted
// bytes, which the coordinator records as a rejected trial. Candidates are deduplicated by the
// candidate hash (CandidateHash: the architecture's canonical hash, and its lineage when it
// inherits weights) against every trial the job already has.
//
// Strategies know nothing of gRPC or SQLite; the coordinator feeds them the job's results and
// stores what they propose.
//
// Thread-safety: a Strategy is used by one thread at a time (the coordinator's job loop).
#ifndef PEAKNAS_SERVER_STRATEGY_H_
#define PEAKNAS_SERVER_STRATEGY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "search/architecture.h"
#include "search/budget.h"
#include "search/job_defaults.h"
#include "search/lineage.h"
#include "search/space.h"

namespace peaknas::server {

using search::Lineage;

// A candidate's identity within a job: the architecture's canonical hash for a trial trained
// from scratch, a hash of it with the parent and role for an inheriting one (a pruned child is
// not the same candidate as the same architecture trained from scratch).
std::uint64_t CandidateHash(const search::Architecture& arch, const Lineage& lineage);

// A trained trial as the strategies see it: the frontier objectives.
struct Evaluated {
  search::Architecture arch;
  std::int64_t trial_id = 0;  // the stored trial (0 in unit tests that need none)
  Lineage lineage;
  double psnr = 0;              // maximize
  std::int64_t peak_bytes = 0;  // predicted budgeted peak; minimize
  double latency_100mp_s = 0;   // predicted 100-MP latency at the largest fitting tile; minimize
  // The same pass as the trial's worker timed it, on `measured_on`; 0 and "": not timed. Shown
  // beside the prediction, not ranked: workers' devices differ.
  double measured_latency_100mp_s = 0;
  std::string measured_on;
};

// One proposed architecture after the cost model's check.
struct Proposal {
  search::Architecture arch;
  std::uint64_t hash = 0;  // CandidateHash(arch, lineage)
  Lineage lineage;
  bool admitted = false;  // false: rejected, never trained
  std::string rejection;  // why, when rejected ("predicted peak 3.1 GiB > budget 2 GiB")
  std::int64_t predicted_inference_peak_bytes = 0;
  std::int64_t predicted_train_peak_bytes = 0;
  double latency_100mp_s = 0;  // at the largest tile that fits the budget (0: none)
};

// The pruning strategy's schedule (DESIGN.md, "Search": NetAdapt on the exact cost model).
struct PruningConfig {
  // The architecture the chain starts from; nullopt: the job's base (or a default U-Net of the
  // space) scaled so its budgeted peak is `start_multiple` x the budget (inference budget), or
  // the largest such scaling that fits (training budget).
  std::optional<search::Architecture> start;
  double start_multiple = search::defaults::kPruningStartMultiple;  // > 1
  // K: shrinks that bring the peak from the start to the budget.
  int iterations = search::defaults::kPruningIterations;
  // Further shrinks below the budget, each to 0.7 x the peak.
  int below_iterations = search::defaults::kPruningBelowIterations;
  int finetune_steps = 0;        // each proposal's fine-tune; 0: a quarter of the job's steps
  int final_finetune_steps = 0;  // the last node's long fine-tune; 0: the job's steps
  // Training steps the whole chain may spend, the final fine-tune included (equal-compute
  // comparisons); a round is cut to what fits, and the chain ends early. 0: no limit.
  std::int64_t max_total_steps = 0;
};

// What a strategy needs from the job.
struct StrategyConfig {
  search::SearchSpace space;
  search::Budget budget;
  std::optional<search::Architecture> base;        // scaling: the architecture to sweep
  int population = search::defaults::kPopulation;  // evolution: parents kept for selection
  int parallelism = 1;                             // trials the job trains at once
  // random, and evolution's first draws: true draws a shape uniformly, then scales it (dWr) so
  // its budgeted peak lands on a low-discrepancy sequence over [lo, budget] in log space, lo
  // being the larger of budget / 16 and the shape's smallest scaling, so the candidates cover
  // the frontier from small to the budget; false draws uniformly over the space (most
  // feasible draws are then small). Evolution, when true, also scales each mutated child so
  // its peak lands in the middle of the widest gap between the peaks of the job's front over
  // [0, budget] (and of the children already placed in the same round).
  bool stratified = true;
  // evolution: a child with its (first) parent's levels and kinds, and at least its blocks,
  // inherits the parent's trained weights (Lineage role "mutation": narrowed, widened or
  // deepened, search::CanInherit) and trains the job's steps from there; when the parent
  // cannot give them, the job's best trial that can does.
  // scaling: the sweep runs from its largest point down, each point inheriting from the
  // nearest larger one it narrows (role "scaling"; search::Narrows: same levels, blocks and
  // kinds).
  bool inherit = false;
  double scaling_alpha = search::defaults::kScalingAlpha;  // scaling: dWr width weight
  int trials = 0;                                          // admitted trials the job wants in all
  int steps = search::defaults::kSteps;                    // the job's training steps per trial
  PruningConfig pruning;                                   // pruning only
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  // Up to `count` new proposals (admitted or rejected), none of whose hashes is in `seen`
  // (which the caller extends with what it stores). `done` holds the job's trained trials.
  // May return fewer when the space is exhausted. Randomness only from `rng`.
  virtual std::vector<Proposal> Propose(int count, const std::vector<Evaluated>& done,
                                        const std::unordered_set<std::uint64_t>& seen,
                                        std::mt19937_64& rng) = 0;

  // Strategies that work in rounds (pruning) wait for the round's results before proposing
  // more. The coordinator tells the strategy how many of the job's admitted trials are still
  // pending or leased before each Propose; an empty proposal while Waiting() means "later",
  // not "exhausted".
  virtual void SetOpenTrials(int /*open*/) {}
  virtual bool Waiting() const { return false; }
};

enum class StrategyKind { kEvolution, kRandom, kScaling, kPruning };

// INVALID_ARGUMENT for a config the strategy cannot use (scaling without a base).
StatusOr<std::unique_ptr<Strategy>> MakeStrategy(StrategyKind kind, const StrategyConfig& config);

// The cost model's verdict on one architecture under the budget (used by every strategy, and
// by the coordinator for user-given architectures). hash = CandidateHash(arch, lineage).
Proposal Check(const search::Architecture& arch, const StrategyConfig& config,
               const Lineage& lineage = {});

// Evolution's first draws before it breeds: enough to fill the workers once and a quarter of
// the job's trials, at least 2, at most the population.
int InitialDraws(const StrategyConfig& config);

// The pruning strategy (pruning_strategy.cc); MakeStrategy(kPruning) validates and calls it.
std::unique_ptr<Strategy> MakePruningStrategy(const StrategyConfig& config);

// A default U-Net inside `space` to scale from when a job names none: the space's levels
// nearest 4, widths doubling from 32 per level, one block each, the first allowed kinds.
search::Architecture DefaultBase(const search::SearchSpace& space);

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_STRATEGY_H_
