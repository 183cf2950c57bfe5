// Search strategies of the coordinator (DESIGN.md, "Search"): given what a job has learned so
// far, propose the next architectures to train. Every proposal has been through the cost model:
// it is either admitted (its budgeted peak fits) or rejected with the reason and the predicted
// bytes, which the coordinator records as a rejected trial. Candidates are deduplicated by the
// canonical hash of their architecture against every trial the job already has.
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

#include "proto/convert.h"
#include "search/architecture.h"
#include "search/space.h"
#include "search/status.h"

namespace peaknas::server {

// A trained trial as the strategies see it: the frontier objectives.
struct Evaluated {
  search::Architecture arch;
  double psnr = 0;                  // maximize
  std::int64_t peak_bytes = 0;      // predicted budgeted peak; minimize
  double latency_100mp_s = 0;       // predicted 100-MP latency at the largest fitting tile; minimize
};

// One proposed architecture after the cost model's check.
struct Proposal {
  search::Architecture arch;
  std::uint64_t hash = 0;                  // search::CanonicalHash(arch)
  bool admitted = false;                   // false: rejected, never trained
  std::string rejection;                   // why, when rejected ("predicted peak 3.1 GiB > budget 2 GiB")
  std::int64_t predicted_inference_peak_bytes = 0;
  std::int64_t predicted_train_peak_bytes = 0;
  double latency_100mp_s = 0;              // at the largest tile that fits the budget (0: none)
};

// What a strategy needs from the job.
struct StrategyConfig {
  search::SearchSpace space;
  proto::JobBudget budget;
  std::optional<search::Architecture> base;  // scaling: the architecture to sweep
  int population = 16;                       // evolution: parents kept / initial random draws
  double scaling_alpha = 0.8;                // scaling: dWr width weight
  int trials = 0;                            // admitted trials the job wants in all
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
};

enum class StrategyKind { kEvolution, kRandom, kScaling };

// INVALID_ARGUMENT for a config the strategy cannot use (scaling without a base).
StatusOr<std::unique_ptr<Strategy>> MakeStrategy(StrategyKind kind, const StrategyConfig& config);

// The cost model's verdict on one architecture under the budget (used by every strategy, and
// by the coordinator for user-given architectures).
Proposal Check(const search::Architecture& arch, const StrategyConfig& config);

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_STRATEGY_H_
