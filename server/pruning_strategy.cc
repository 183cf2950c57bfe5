// The pruning strategy: NetAdapt's loop (Yang et al., ECCV 2018) with the exact cost model in
// place of measured lookup tables (DESIGN.md, "Search").
//
//   node_0 = the start architecture, trained from scratch (fidelity.steps);
//   for k = 1, 2, ...:
//     target_k   = a geometric schedule from the start's budgeted peak P0 that reaches the
//                  budget B at k = K, then 0.6x per step for below_iterations more (halfway
//                  to the narrowest reachable peak where 0.6x is out of reach); never above
//                  0.97 x the node's own peak, so every step shrinks. K is `iterations`, or
//                  fewer where steps of 0.7x reach the budget sooner: a start just above the
//                  budget takes one step to it, not `iterations` steps of 3 %;
//     proposals  = per level, the node with that level's width cut to the largest multiple of
//                  8 whose budgeted peak meets target_k (none when that level alone cannot:
//                  the peak is a maximum over the pass, and cutting one level moves it); one
//                  that follows the peak, cutting whichever level holds it until the target
//                  is met; and a uniform width shrink (dWr with alpha 1) to the target. Each
//                  inherits node_k-1's weights and fine-tunes finetune_steps;
//     node_k     = the proposal losing the least PSNR per byte saved,
//                  (psnr(node) - psnr(p)) / (peak(node) - peak(p));
//   then one "final" child of the last node, the same architecture fine-tuned
//   final_finetune_steps from its weights, and then the same for the chain's node nearest the
//   budget (or, with max_total_steps, for as many in-budget nodes, nearest the budget first,
//   as the steps left allow).
//
// The strategy keeps no state of its own: every Propose re-derives the chain from the job's
// trained trials (their lineage says which iteration and parent each belongs to), so a
// restarted coordinator resumes it from the database. It proposes an iteration only once the
// previous one has no trial open (SetOpenTrials); a proposal that failed is simply absent.
//
// With an inference budget, nodes above the budget are trained as ancestors (Lineage::
// over_budget; they must fit a worker, which the lease filter ensures) and never enter the
// frontier. With a training budget nothing over the budget can be trained, so the chain starts
// from the largest scaling of the base that fits and shrinks below it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "search/cost_model.h"
#include "search/inheritance.h"
#include "search/job_defaults.h"
#include "search/space.h"
#include "server/strategy.h"

namespace peaknas::server {
namespace {

constexpr double kAboveRatio = 0.7;  // the gentlest step the schedule takes above the budget
constexpr double kBelowRatio = 0.6;  // each step below the budget
constexpr double kMinShrink = 0.97;  // a step's target is at most this x the node's peak

class PruningStrategy final : public Strategy {
 public:
  explicit PruningStrategy(StrategyConfig config) : config_(std::move(config)) {
    const PruningConfig& c = config_.pruning;
    finetune_steps_ = c.finetune_steps > 0
                          ? c.finetune_steps
                          : std::max(1, config_.steps / search::defaults::kPruningFinetuneDivisor);
    final_steps_ = c.final_finetune_steps > 0 ? c.final_finetune_steps : config_.steps;
    start_ = MakeStart();
    start_peak_ = Peak(start_.arch);
    to_budget_ = StepsToBudget();
  }

  void SetOpenTrials(int open) override { open_ = open; }
  bool Waiting() const override { return waiting_; }

  std::vector<Proposal> Propose(int count, const std::vector<Evaluated>& done,
                                const std::unordered_set<std::uint64_t>& seen,
                                std::mt19937_64& /*rng*/) override {
    waiting_ = false;
    const Evaluated* node = nullptr;
    for (const Evaluated& e : done) {
      if (e.lineage.role == "start" && e.lineage.parent_trial == 0) node = &e;
    }
    if (node == nullptr) return OfferOrWait({start_}, count, seen);
    // Steps spent by the chain before the current round: the start and every earlier round.
    std::int64_t spent = node->lineage.steps;
    std::vector<const Evaluated*> chain = {node};
    for (int k = 1;; ++k) {
      std::vector<const Evaluated*> children;
      const Evaluated* final_child = nullptr;
      for (const Evaluated& e : done) {
        if (e.lineage.parent_trial != node->trial_id) continue;
        if (e.lineage.role == "final") {
          final_child = &e;
        } else {
          children.push_back(&e);
        }
      }
      if (final_child != nullptr) return ExtraFinals(chain, *node, done, count, seen);
      std::vector<Proposal> round = k <= to_budget_ + config_.pruning.below_iterations
                                        ? Round(*node, k)
                                        : std::vector<Proposal>{};
      // Within max_total_steps: as many of the round as leave room for the final fine-tune.
      if (const std::int64_t cap = config_.pruning.max_total_steps; cap > 0) {
        const std::int64_t room = cap - spent - final_steps_;
        const std::size_t fits =
            room < finetune_steps_ ? 0 : static_cast<std::size_t>(room / finetune_steps_);
        if (round.size() > fits) round.resize(fits);
        if (children.empty() && round.empty() && spent + final_steps_ > cap) return {};
      }
      if (round.empty()) return OfferOrWait({Final(*node)}, count, seen);
      const bool all_seen = std::all_of(round.begin(), round.end(),
                                        [&](const Proposal& p) { return seen.contains(p.hash); });
      if (!all_seen || open_ > 0) return OfferOrWait(round, count, seen);
      if (children.empty()) return OfferOrWait({Final(*node)}, count, seen);  // the round failed
      for (const Evaluated* c : children) spent += c->lineage.steps;
      node = Best(*node, children);
      chain.push_back(node);
    }
  }

 private:
  std::int64_t Peak(const search::Architecture& arch) const {
    return search::BudgetedPeakBytes(config_.budget, arch);
  }

  // Proposals are admitted whatever the budget says when they are pruning ancestors above an
  // inference budget; Check's other refusals (shapes) stand.
  Proposal Admit(const search::Architecture& arch, const Lineage& lineage) const {
    Proposal p = Check(arch, config_, lineage);
    const std::int64_t peak =
        config_.budget.training ? p.predicted_train_peak_bytes : p.predicted_inference_peak_bytes;
    p.lineage.over_budget = peak > config_.budget.bytes;
    if (p.lineage.over_budget && !config_.budget.training) {
      p.admitted = true;
      p.rejection.clear();
    }
    return p;
  }

  Proposal MakeStart() const {
    Lineage lineage;
    lineage.role = "start";
    lineage.steps = config_.steps;
    lineage.total_steps = config_.steps;
    const PruningConfig& c = config_.pruning;
    if (c.start.has_value()) return Admit(*c.start, lineage);
    const search::Architecture base = config_.base.value_or(DefaultBase(config_.space));
    const double target = config_.budget.training
                              ? static_cast<double>(config_.budget.bytes)
                              : c.start_multiple * static_cast<double>(config_.budget.bytes);
    StatusOr<search::Architecture> scaled = search::ScaleToCost(
        base, target, [&](const search::Architecture& a) { return static_cast<double>(Peak(a)); },
        search::ScalingOptions{.alpha = config_.scaling_alpha}, config_.space);
    // Even the smallest scaling is over: start from it, Check records why it cannot train.
    return Admit(
        scaled.ok() ? *scaled : search::ScaleArchitecture(base, 1.0 / 4096, {}, config_.space),
        lineage);
  }

  // K of the schedule: `iterations`, or fewer when steps of kAboveRatio reach the budget from
  // the start's peak sooner (at least one step when the start is over the budget).
  int StepsToBudget() const {
    const double over =
        static_cast<double>(start_peak_) / static_cast<double>(config_.budget.bytes);
    if (over <= 1) return config_.pruning.iterations;
    const int needed = static_cast<int>(std::ceil(std::log(over) / std::log(1 / kAboveRatio)));
    return std::clamp(needed, 1, config_.pruning.iterations);
  }

  // The resource target of iteration k (see the top of this file) for `node`; when the
  // schedule asks for less than the node's narrowest version (every width at the space's
  // floor) can reach, halfway from the node to that floor instead.
  double Target(int k, const search::Architecture& node) const {
    const std::int64_t peak = Peak(node);
    const double p0 = static_cast<double>(start_peak_);
    const double budget = static_cast<double>(config_.budget.bytes);
    const int K = to_budget_;
    double schedule;
    if (p0 > budget) {
      const double ratio = std::pow(budget / p0, 1.0 / K);
      schedule = k <= K ? p0 * std::pow(ratio, k) : budget * std::pow(kBelowRatio, k - K);
    } else {
      schedule = p0 * std::pow(kBelowRatio, k);
    }
    if (k == K && p0 > budget) schedule = budget;  // exactly the budget, not a rounding above
    search::Architecture narrowest = node;
    for (int i = 0; i < node.levels; ++i) narrowest.widths[i] = config_.space.width.min;
    const double floor = static_cast<double>(Peak(narrowest));
    if (schedule < floor) schedule = 0.5 * (floor + static_cast<double>(peak));
    return std::min(schedule, kMinShrink * static_cast<double>(peak));
  }

  search::PeakEstimate Estimate(const search::Architecture& arch) const {
    return config_.budget.training
               ? search::EstimateTrainPeak(arch, config_.budget.patch, config_.budget.dtype,
                                           *config_.budget.device)
               : search::EstimateInferencePeak(arch, config_.budget.tile, config_.budget.dtype,
                                               *config_.budget.device);
  }

  std::string PeakText(const search::Architecture& arch) const {
    const search::PeakEstimate e = Estimate(arch);
    return std::string(search::Name(e.location.stage)) + " level " +
           std::to_string(e.location.level) + " " + std::string(search::Name(e.location.phase));
  }

  Lineage ChildLineage(const Evaluated& node, int k, std::string role, int level, int steps) const {
    Lineage l;
    l.parent_trial = node.trial_id;
    l.role = std::move(role);
    l.iteration = k;
    l.level = level;
    l.steps = steps;
    l.total_steps = node.lineage.total_steps + steps;
    l.parent_peak = PeakText(node.arch);
    return l;
  }

  // Proposals(node, k), computed once per node and round: every Propose walks the chain again
  // from its start, and the rounds behind it do not change.
  const std::vector<Proposal>& Round(const Evaluated& node, int k) {
    auto [it, fresh] = rounds_.try_emplace({node.trial_id, k});
    if (fresh) it->second = Proposals(node, k);
    return it->second;
  }

  // Iteration k's proposals from `node`: the peak-following cut, a uniform shrink, and per
  // level the largest width meeting the target; empty when nothing can shrink to the target.
  std::vector<Proposal> Proposals(const Evaluated& node, int k) const {
    const double target = Target(k, node.arch);
    std::vector<Proposal> out;
    std::vector<search::Architecture> archs;
    const auto add = [&](const search::Architecture& a, std::string role, int level) {
      if (a == node.arch || !search::CanInherit(node.arch, a)) return;
      if (!search::Contains(config_.space, a)) return;
      if (static_cast<double>(Peak(a)) > target) return;
      if (std::find(archs.begin(), archs.end(), a) != archs.end()) return;
      archs.push_back(a);
      out.push_back(Admit(a, ChildLineage(node, k, std::move(role), level, finetune_steps_)));
    };
    // Most promising first, for when max_total_steps cuts a round: the peak-following
    // shrink, the uniform one, then one level at a time.
    AddPeakFollowing(node, target, add);
    StatusOr<search::Architecture> uniform = search::ScaleToCost(
        node.arch, target,
        [&](const search::Architecture& a) { return static_cast<double>(Peak(a)); },
        search::ScalingOptions{.alpha = 1.0}, config_.space);
    if (uniform.ok()) add(*uniform, "uniform", -1);
    for (int i = 0; i < node.arch.levels; ++i) {
      for (int w = node.arch.widths[i] - search::kWidthMultiple; w >= config_.space.width.min;
           w -= search::kWidthMultiple) {
        search::Architecture a = node.arch;
        a.widths[i] = w;
        if (static_cast<double>(Peak(a)) <= target) {
          add(a, "level", i);
          break;
        }
      }
    }
    return out;
  }

  // Where the peak sits: cut the width of the level that holds the peak (an eighth, at least
  // 8 channels; the widest level once that one is at the floor) until the target is met.
  template <typename Add>
  void AddPeakFollowing(const Evaluated& node, double target, Add& add) const {
    search::Architecture a = node.arch;
    for (int guard = 0; guard < 1024 && static_cast<double>(Peak(a)) > target; ++guard) {
      int level = std::clamp(Estimate(a).location.level, 0, a.levels - 1);
      if (a.widths[level] <= config_.space.width.min) {
        level = static_cast<int>(std::max_element(a.widths.begin(), a.widths.begin() + a.levels) -
                                 a.widths.begin());
        if (a.widths[level] <= config_.space.width.min) break;
      }
      const int w = a.widths[level];
      const int cut =
          std::max(search::kWidthMultiple, w / 8 / search::kWidthMultiple * search::kWidthMultiple);
      a.widths[level] = std::max(config_.space.width.min, w - cut);
      if (config_.space.nondecreasing_widths) {
        for (int j = 0; j < level; ++j) a.widths[j] = std::min(a.widths[j], a.widths[level]);
      }
    }
    add(a, "peak", -1);
  }

  // Once the last node has its long fine-tune, the same for other nodes of the chain within
  // the budget, nearest the budget first (the short fine-tunes of the larger nodes are what
  // the smaller, long-tuned last node otherwise dominates): one more without max_total_steps,
  // as many as the steps left allow with it, and then the steps still left for the
  // fine-tuned model nearest the budget.
  std::vector<Proposal> ExtraFinals(const std::vector<const Evaluated*>& chain,
                                    const Evaluated& last, const std::vector<Evaluated>& done,
                                    int count, const std::unordered_set<std::uint64_t>& seen) {
    std::vector<const Evaluated*> nodes;
    for (const Evaluated* n : chain) {
      if (n != &last && !n->lineage.over_budget && n->peak_bytes <= config_.budget.bytes) {
        nodes.push_back(n);
      }
    }
    std::stable_sort(nodes.begin(), nodes.end(), [](const Evaluated* a, const Evaluated* b) {
      return a->peak_bytes > b->peak_bytes;
    });
    const std::int64_t cap = config_.pruning.max_total_steps;
    std::int64_t spent = 0;
    for (const Evaluated& e : done) spent += e.lineage.steps;
    std::unordered_set<std::uint64_t> trained;
    for (const Evaluated& e : done) trained.insert(CandidateHash(e.arch, e.lineage));
    std::vector<Proposal> out;
    int extras = 0;
    for (const Evaluated* n : nodes) {
      Proposal p = Final(*n);
      if (seen.contains(p.hash)) {
        ++extras;
        if (!trained.contains(p.hash)) spent += final_steps_;  // proposed, still open
        continue;
      }
      if (cap > 0 ? spent + final_steps_ > cap : extras >= 1) break;
      if (static_cast<int>(out.size()) >= count) break;
      spent += final_steps_;
      ++extras;
      out.push_back(std::move(p));
    }
    // With max_total_steps, what no further fine-tune fits into goes to the model nearest the
    // budget: its fine-tuned trial trains on for the steps left (at least a proposal's worth).
    if (out.empty() && open_ == 0 && cap > 0 && cap - spent >= finetune_steps_) {
      const Evaluated* nearest = nullptr;
      for (const Evaluated& e : done) {
        if (e.lineage.role != "final" || e.lineage.over_budget ||
            e.peak_bytes > config_.budget.bytes) {
          continue;
        }
        if (nearest == nullptr || e.peak_bytes > nearest->peak_bytes ||
            (e.peak_bytes == nearest->peak_bytes &&
             e.lineage.total_steps > nearest->lineage.total_steps)) {
          nearest = &e;
        }
      }
      if (nearest != nullptr) {
        const int left = static_cast<int>(std::min<std::int64_t>(cap - spent, 10'000'000));
        Proposal p = Admit(nearest->arch, ChildLineage(*nearest, nearest->lineage.iteration + 1,
                                                       "final", -1, left));
        if (!seen.contains(p.hash) && count > 0) out.push_back(std::move(p));
      }
    }
    waiting_ = out.empty() && open_ > 0;
    return out;
  }

  Proposal Final(const Evaluated& node) const {
    return Admit(node.arch,
                 ChildLineage(node, node.lineage.iteration + 1, "final", -1, final_steps_));
  }

  // NetAdapt's choice: the least PSNR lost per byte saved (peaks as the trials were stored).
  static const Evaluated* Best(const Evaluated& node,
                               const std::vector<const Evaluated*>& children) {
    const Evaluated* best = nullptr;
    double best_score = std::numeric_limits<double>::infinity();
    for (const Evaluated* c : children) {
      const double saved = static_cast<double>(node.peak_bytes - c->peak_bytes);
      const double score = (node.psnr - c->psnr) / std::max(saved, 1.0);
      if (best == nullptr || score < best_score ||
          (score == best_score && c->peak_bytes < best->peak_bytes)) {
        best = c;
        best_score = score;
      }
    }
    return best;
  }

  // Up to `count` of `proposals` not yet seen; none while the ones seen are still open
  // (Waiting), or none at all when the chain has nothing left to try.
  std::vector<Proposal> OfferOrWait(std::vector<Proposal> proposals, int count,
                                    const std::unordered_set<std::uint64_t>& seen) {
    std::vector<Proposal> out;
    for (Proposal& p : proposals) {
      if (static_cast<int>(out.size()) >= count) break;
      if (!seen.contains(p.hash)) out.push_back(std::move(p));
    }
    waiting_ = out.empty() && open_ > 0;
    return out;
  }

  StrategyConfig config_;
  int finetune_steps_ = 0;
  int final_steps_ = 0;
  Proposal start_;
  std::int64_t start_peak_ = 0;
  int to_budget_ = 0;  // K: rounds from the start to the budget
  int open_ = 0;
  bool waiting_ = false;
  std::map<std::pair<std::int64_t, int>, std::vector<Proposal>> rounds_;  // Round's memo
};

}  // namespace

std::unique_ptr<Strategy> MakePruningStrategy(const StrategyConfig& config) {
  return std::make_unique<PruningStrategy>(config);
}

}  // namespace peaknas::server
