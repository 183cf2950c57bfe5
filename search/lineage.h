// A candidate's lineage: whether it starts from a trained trial's weights, and where it sits in
// the chain that produced it (DESIGN.md, "Search"). Strategies set it, the coordinator stores
// it, proto/convert.h converts it to and from peaknas.v1.Lineage.
//
// Thread-safety: a plain value.
#ifndef PEAKNAS_SEARCH_LINEAGE_H_
#define PEAKNAS_SEARCH_LINEAGE_H_

#include <cstdint>
#include <string>

namespace peaknas::search {

// Where a candidate comes from. A trial trained from scratch has parent_trial 0 and a default
// lineage; one that inherits its weights (a pruning chain's node, a chained scaling point, an
// evolution child grown or narrowed from a trained trial) names the trained trial it starts from.
struct Lineage {
  std::int64_t parent_trial = 0;  // the trained trial whose weights it inherits; 0: none
  // pruning: "start", "level", "peak", "uniform", "final"; evolution: "mutation"; scaling:
  // "scaling"; empty for a trial trained from scratch.
  std::string role;
  int iteration = 0;  // pruning: 0 for the start, k for the k-th shrink
  int level = -1;     // "level": the level whose width was shrunk; else -1
  // Trained although its budgeted peak is over an inference budget (a pruning ancestor): it
  // must fit the worker, it is recorded as such, and it never enters the frontier.
  bool over_budget = false;
  int steps = 0;                 // its own training steps; 0: the job's fidelity.steps
  std::int64_t total_steps = 0;  // its steps plus every ancestor's (equal-compute accounting)
  std::string parent_peak;       // where the parent's budgeted peak sits, for the record

  friend bool operator==(const Lineage&, const Lineage&) = default;
};

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_LINEAGE_H_
