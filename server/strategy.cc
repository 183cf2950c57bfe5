#include "server/strategy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "search/cost_model.h"
#include "search/inheritance.h"
#include "search/tiling.h"
#include "search/units.h"
#include "server/frontier.h"

namespace peaknas::server {
namespace {

// Draws from the generator only through these (no std distributions, whose output differs
// between standard libraries; see search/space.h).
std::size_t UniformIndex(std::size_t n, std::mt19937_64& rng) {
  return static_cast<std::size_t>(rng() % n);
}
double UniformUnit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

std::string BytesText(std::int64_t bytes) {
  return search::FormatBytes(bytes) + " (" + std::to_string(bytes) + " bytes)";
}

Proposal Rejected(Proposal p, std::string reason) {
  p.admitted = false;
  p.rejection = std::move(reason);
  return p;
}

// The smallest share of the budget a stratified draw aims at.
constexpr double kMinFraction = 1.0 / 16;
constexpr double kSmallestScale = 1.0 / 4096;

// The k-th point of the golden-ratio sequence in [0, 1).
double LowDiscrepancy(std::uint64_t k) {
  return std::fmod(0.5 + static_cast<double>(k) * 0.6180339887498949, 1.0);
}

// The budgeted peak a stratified draw or a placed child is scaled by.
double BudgetedPeak(const StrategyConfig& config, const search::Architecture& a) {
  return static_cast<double>(search::BudgetedPeakBytes(config.budget, a));
}

// A shape to be scaled (dWr), with its smallest scaling and that scaling's budgeted peak: the
// least a scaling of it can cost.
struct Scalable {
  search::Architecture shape;
  search::Architecture smallest;
  double floor = 0;
};

Scalable Prepare(search::Architecture shape, const StrategyConfig& config) {
  Scalable s{.shape = std::move(shape)};
  s.smallest = search::ScaleArchitecture(
      s.shape, kSmallestScale, search::ScalingOptions{.alpha = config.scaling_alpha}, config.space);
  s.floor = BudgetedPeak(config, s.smallest);
  return s;
}

// The shape scaled to the largest size whose budgeted peak is at most `target`, `target`
// clamped to [floor, budget]. A shape whose smallest scaling is over the budget comes back as
// that scaling (to be rejected with its figure).
search::Architecture ScaledTo(const Scalable& s, double target, const StrategyConfig& config) {
  const double budget = static_cast<double>(config.budget.bytes);
  if (s.floor >= budget) return s.smallest;
  const auto peak = [&](const search::Architecture& a) { return BudgetedPeak(config, a); };
  StatusOr<search::Architecture> scaled =
      search::ScaleToCost(s.shape, std::clamp(target, s.floor, budget), peak,
                          search::ScalingOptions{.alpha = config.scaling_alpha}, config.space);
  return scaled.ok() ? *scaled : s.smallest;
}

// One draw of the space for the k-th proposal of a job (see StrategyConfig::stratified): the
// shape's peak is aimed at a point of [lo, budget] taken evenly on a log scale, where lo is the
// larger of budget / 16 and the peak of the shape's smallest scaling (so every draw lands in
// the range the shape can reach).
search::Architecture Draw(const StrategyConfig& config, std::uint64_t k, std::mt19937_64& rng) {
  search::Architecture shape = search::Sample(config.space, rng);
  if (!config.stratified) return shape;
  const Scalable s = Prepare(std::move(shape), config);
  const double budget = static_cast<double>(config.budget.bytes);
  const double lo = std::max(s.floor, kMinFraction * budget);
  if (lo >= budget) return s.smallest;
  return ScaledTo(s, lo * std::pow(budget / lo, LowDiscrepancy(k)), config);
}

// Where the next child of a stratified evolution goes: the middle of the widest gap between
// the peaks in `placed` (the job's current front and the children already placed this round)
// over [0, budget], on the linear scale the hypervolume measures memory on.
double GapTarget(const StrategyConfig& config, const std::vector<double>& placed) {
  const double budget = static_cast<double>(config.budget.bytes);
  std::vector<double> edges{0.0, budget};
  for (double peak : placed) edges.push_back(std::clamp(peak, 0.0, budget));
  std::sort(edges.begin(), edges.end());
  std::size_t widest = 0;
  for (std::size_t i = 1; i + 1 < edges.size(); ++i) {
    if (edges[i + 1] - edges[i] > edges[widest + 1] - edges[widest]) widest = i;
  }
  return 0.5 * (edges[widest] + edges[widest + 1]);
}

// The training steps behind a trained trial, its ancestors' included.
std::int64_t TotalSteps(const Evaluated& e, int job_steps) {
  if (e.lineage.total_steps > 0) return e.lineage.total_steps;
  return e.lineage.steps > 0 ? e.lineage.steps : job_steps;
}

// Makes `p` start from `from`'s trained weights and train `steps` more: its lineage (in the
// role `role`) and the hash that lineage gives it.
void InheritFrom(const Evaluated& from, std::string role, int steps, Proposal& p) {
  Lineage lineage;
  lineage.parent_trial = from.trial_id;
  lineage.role = std::move(role);
  lineage.steps = steps;
  lineage.total_steps = TotalSteps(from, steps) + steps;
  p.hash = CandidateHash(p.arch, lineage);
  p.lineage = std::move(lineage);
}

// How many draws a strategy may spend per proposal before it concludes that the space (or what
// is left of it after deduplication) is exhausted.
constexpr int kAttemptsPerProposal = 64;
constexpr int kMinAttempts = 1000;

int AttemptLimit(int count) { return kAttemptsPerProposal * std::max(count, 0) + kMinAttempts; }

// --- random ------------------------------------------------------------------------------

class RandomStrategy final : public Strategy {
 public:
  explicit RandomStrategy(StrategyConfig config) : config_(std::move(config)) {}

  std::vector<Proposal> Propose(int count, const std::vector<Evaluated>& /*done*/,
                                const std::unordered_set<std::uint64_t>& seen,
                                std::mt19937_64& rng) override {
    std::vector<Proposal> out;
    std::unordered_set<std::uint64_t> batch;
    const int limit = AttemptLimit(count);
    for (int attempt = 0; attempt < limit && static_cast<int>(out.size()) < count; ++attempt) {
      const search::Architecture arch =
          Draw(config_, static_cast<std::uint64_t>(seen.size() + out.size()), rng);
      const std::uint64_t hash = search::CanonicalHash(arch);
      if (seen.contains(hash) || !batch.insert(hash).second) continue;
      out.push_back(Check(arch, config_));
    }
    return out;
  }

 private:
  StrategyConfig config_;
};

// --- scaling -----------------------------------------------------------------------------

// The sweep spans flops factors [top / kScalingSpan, top], where top is the largest factor
// whose budgeted peak fits.
constexpr double kScalingSpan = 256.0;
constexpr double kMinFactor = 1.0 / 4096;
constexpr double kMaxFactor = 4096.0;
constexpr int kDefaultScalingPoints = 16;

class ScalingStrategy final : public Strategy {
 public:
  explicit ScalingStrategy(StrategyConfig config) : config_(std::move(config)) {
    BuildSweep();
    if (config_.inherit) LinkChain();
  }

  void SetOpenTrials(int open) override { open_ = open; }
  bool Waiting() const override { return waiting_; }

  std::vector<Proposal> Propose(int count, const std::vector<Evaluated>& done,
                                const std::unordered_set<std::uint64_t>& seen,
                                std::mt19937_64& /*rng*/) override {
    if (config_.inherit) return ProposeChained(count, done, seen);
    std::vector<Proposal> out;
    for (const Proposal& p : sweep_) {
      if (static_cast<int>(out.size()) >= count) break;
      if (!seen.contains(p.hash)) out.push_back(p);
    }
    return out;
  }

 private:
  search::Architecture Scaled(double factor) const {
    return search::ScaleArchitecture(*config_.base, factor,
                                     search::ScalingOptions{.alpha = config_.scaling_alpha},
                                     config_.space);
  }
  bool Fits(double factor) const { return Check(Scaled(factor), config_).admitted; }

  // The sweep: distinct scalings of the base in increasing flops factor, kept only where the
  // predicted budgeted peak strictly increases, thinned evenly to `trials` points (the first
  // and the largest fitting one included). When not even the smallest scaling fits, the sweep
  // is that one rejected point, so the job records why.
  void BuildSweep() {
    if (!Fits(kMinFactor)) {
      sweep_.push_back(Check(Scaled(kMinFactor), config_));
      return;
    }
    // Bisection on log(factor) for the largest fitting factor (the ScaleToCost search, kept
    // here because the sweep needs the factor, not only the architecture).
    double lo = std::log(kMinFactor);
    double hi = std::log(kMaxFactor);
    if (Fits(kMaxFactor)) {
      lo = hi;
    } else {
      for (int i = 0; i < 60; ++i) {
        const double mid = 0.5 * (lo + hi);
        (Fits(std::exp(mid)) ? lo : hi) = mid;
      }
    }
    const double top = std::exp(lo);
    const double bottom = std::max(kMinFactor, top / kScalingSpan);
    const int points = config_.trials > 0 ? config_.trials : kDefaultScalingPoints;
    // A dense geometric grid, deduplicated and made monotone in peak, then thinned.
    const int grid = 8 * points + 64;
    std::vector<Proposal> dense;
    std::unordered_set<std::uint64_t> hashes;
    std::int64_t last_peak = -1;
    for (int i = 0; i < grid; ++i) {
      const double t = grid == 1 ? 1.0 : static_cast<double>(i) / (grid - 1);
      const double factor = i == grid - 1 ? top : bottom * std::pow(top / bottom, t);
      Proposal p = Check(Scaled(factor), config_);
      if (!p.admitted || !hashes.insert(p.hash).second) continue;
      const std::int64_t peak = search::BudgetedPeakBytes(config_.budget, p.arch);
      if (peak <= last_peak) continue;
      last_peak = peak;
      dense.push_back(std::move(p));
    }
    if (static_cast<int>(dense.size()) <= points) {
      sweep_ = std::move(dense);
      return;
    }
    for (int i = 0; i < points; ++i) {
      const std::size_t index =
          points == 1 ? dense.size() - 1
                      : static_cast<std::size_t>(std::llround(
                            static_cast<double>(i) * static_cast<double>(dense.size() - 1) /
                            static_cast<double>(points - 1)));
      sweep_.push_back(dense[index]);
    }
  }

  // For every sweep point, the larger points it narrows (search::Narrows), nearest
  // first. dWr keeps a point's levels and kinds and rounds its block counts, so the sweep falls
  // into a few runs of equal depth, each a chain from its largest point down.
  void LinkChain() {
    donors_.assign(sweep_.size(), {});
    for (std::size_t i = 0; i < sweep_.size(); ++i) {
      if (!sweep_[i].admitted) continue;
      for (std::size_t j = i + 1; j < sweep_.size(); ++j) {
        if (sweep_[j].admitted && search::Narrows(sweep_[j].arch, sweep_[i].arch)) {
          donors_[i].push_back(j);
        }
      }
    }
  }

  // The sweep from its largest point down. A point starts from the trained weights of its
  // nearest larger point that trained; it waits while that point may still be training (or is
  // proposed in this batch), and skips a donor that failed. A point with no donor left trains
  // from scratch.
  std::vector<Proposal> ProposeChained(int count, const std::vector<Evaluated>& done,
                                       const std::unordered_set<std::uint64_t>& seen) {
    waiting_ = false;
    std::vector<Proposal> out;
    std::vector<bool> in_batch(sweep_.size(), false);
    const auto trained = [&](std::size_t j) -> const Evaluated* {
      for (const Evaluated& e : done) {
        if (e.arch == sweep_[j].arch) return &e;
      }
      return nullptr;
    };
    for (std::size_t i = sweep_.size(); i-- > 0 && static_cast<int>(out.size()) < count;) {
      Proposal p = sweep_[i];
      const Evaluated* parent = nullptr;
      bool wait = false;
      for (std::size_t j : donors_[i]) {
        if ((parent = trained(j)) != nullptr) break;
        if (in_batch[j] || open_ > 0) {
          wait = true;
          break;
        }
      }
      if (wait) {
        waiting_ = true;
        continue;
      }
      if (parent != nullptr) InheritFrom(*parent, "scaling", config_.steps, p);
      if (seen.contains(p.hash)) continue;
      in_batch[i] = true;
      out.push_back(std::move(p));
    }
    return out;
  }

  StrategyConfig config_;
  std::vector<Proposal> sweep_;                   // in increasing predicted peak
  std::vector<std::vector<std::size_t>> donors_;  // inherit: per point, nearest donor first
  int open_ = 0;
  bool waiting_ = false;
};

// --- evolution ---------------------------------------------------------------------------

constexpr double kCrossoverProbability = 0.5;
constexpr int kRepairTries = 6;

class EvolutionStrategy final : public Strategy {
 public:
  explicit EvolutionStrategy(StrategyConfig config)
      : config_(std::move(config)), random_(config_) {}

  void SetOpenTrials(int open) override { open_ = open; }

  std::vector<Proposal> Propose(int count, const std::vector<Evaluated>& done,
                                const std::unordered_set<std::uint64_t>& seen,
                                std::mt19937_64& rng) override {
    const int population = std::max(config_.population, 2);
    std::vector<std::size_t> pool;
    for (std::size_t i = 0; i < done.size(); ++i) {
      if (search::Contains(config_.space, done[i].arch)) pool.push_back(i);
    }
    // Draws until InitialDraws are trained or training; breeds from then on (from at least
    // two trained parents).
    const int initial = InitialDraws(config_);
    if (static_cast<int>(done.size()) + open_ < initial || pool.size() < 2) {
      return random_.Propose(count, done, seen, rng);
    }
    // Environmental selection: the best `population` trials by (rank, crowding).
    std::vector<Evaluated> members;
    members.reserve(pool.size());
    for (std::size_t i : pool) members.push_back(done[i]);
    const std::vector<int> rank = NondominatedSort(members);
    std::vector<double> crowding(members.size(), 0.0);
    const int max_rank = *std::max_element(rank.begin(), rank.end());
    for (int r = 0; r <= max_rank; ++r) {
      std::vector<std::size_t> front;
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (rank[i] == r) front.push_back(i);
      }
      const std::vector<double> d = CrowdingDistance(members, front);
      for (std::size_t k = 0; k < front.size(); ++k) crowding[front[k]] = d[k];
    }
    auto better = [&](std::size_t a, std::size_t b) {
      if (rank[a] != rank[b]) return rank[a] < rank[b];
      return crowding[a] > crowding[b];
    };
    std::vector<std::size_t> parents(members.size());
    std::iota(parents.begin(), parents.end(), std::size_t{0});
    std::stable_sort(parents.begin(), parents.end(), better);
    parents.resize(std::min(parents.size(), static_cast<std::size_t>(population)));

    auto tournament = [&]() -> const Evaluated& {
      const std::size_t a = parents[UniformIndex(parents.size(), rng)];
      const std::size_t b = parents[UniformIndex(parents.size(), rng)];
      return members[better(b, a) ? b : a];
    };

    std::vector<double> placed;  // peaks of the front (rank 0), then of this round's children
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (rank[i] == 0) placed.push_back(static_cast<double>(members[i].peak_bytes));
    }
    std::vector<Proposal> out;
    std::unordered_set<std::uint64_t> batch;
    const int limit = AttemptLimit(count);
    for (int attempt = 0; attempt < limit && static_cast<int>(out.size()) < count; ++attempt) {
      const Evaluated& parent = tournament();
      search::Architecture child = parent.arch;
      if (UniformUnit(rng) < kCrossoverProbability) {
        child = search::Crossover(child, tournament().arch, config_.space, rng);
      }
      child = search::Mutate(child, config_.space, rng);
      // The mutated shape, sized to the widest gap of the front.
      if (config_.stratified) {
        child = ScaledTo(Prepare(std::move(child), config_), GapTarget(config_, placed), config_);
      }
      Proposal p = Check(child, config_);
      if (!p.admitted) p = Repair(std::move(p));
      // A child starts from trained weights when some trial can give them: its first parent
      // if it can, else the best (by PSNR) trial of the job it can inherit from.
      if (const Evaluated* donor = config_.inherit ? Donor(parent, members, p.arch) : nullptr) {
        InheritFrom(*donor, "mutation", config_.steps, p);
      }
      if (seen.contains(p.hash) || !batch.insert(p.hash).second) continue;
      if (p.admitted) placed.push_back(BudgetedPeak(config_, p.arch));
      out.push_back(std::move(p));
    }
    return out;
  }

 private:
  // Whom `child` inherits from (search::CanInherit: narrower, wider or deeper, same levels and
  // kinds): `parent` when it can, else the trained trial with the best PSNR that can; nullptr
  // when none can.
  static const Evaluated* Donor(const Evaluated& parent, const std::vector<Evaluated>& trained,
                                const search::Architecture& child) {
    const auto can = [&](const Evaluated& e) {
      return e.trial_id != 0 && e.arch != child && search::CanInherit(e.arch, child);
    };
    if (can(parent)) return &parent;
    const Evaluated* best = nullptr;
    for (const Evaluated& e : trained) {
      if (can(e) && (best == nullptr || e.psnr > best->psnr)) best = &e;
    }
    return best;
  }

  // Shrinks an over-budget child toward the budget: first its widths (dWr with alpha 1 scales
  // widths only), then, when widths are at the space's floor, its depth. Returns the first
  // admitted shrink, or the original child rejected with the reason and the repair's outcome.
  Proposal Repair(Proposal child) const {
    // Nothing to shrink toward when the cost model never ran (invalid shape for the levels).
    if (child.predicted_inference_peak_bytes == 0) return child;
    search::Architecture arch = child.arch;
    std::int64_t peak = search::BudgetedPeakBytes(config_.budget, arch);
    for (int i = 0; i < kRepairTries; ++i) {
      const double ratio = static_cast<double>(config_.budget.bytes) /
                           static_cast<double>(std::max<std::int64_t>(peak, 1));
      // Peak is roughly linear in width (activations) and widths scale as factor^(1/2).
      const double factor = std::clamp(0.9 * ratio * ratio, 1.0 / 64, 0.95);
      search::Architecture next = search::ScaleArchitecture(
          arch, factor, search::ScalingOptions{.alpha = 1.0}, config_.space);
      if (next == arch) {
        next = search::ScaleArchitecture(arch, 0.5, search::ScalingOptions{.alpha = 0.05},
                                         config_.space);
      }
      if (next == arch) break;
      arch = next;
      Proposal p = Check(arch, config_);
      if (p.admitted) return p;
      peak = search::BudgetedPeakBytes(config_.budget, arch);
    }
    child.rejection +=
        "; repair by shrinking widths and depth reached " + BytesText(peak) + ", still over budget";
    return child;
  }

  StrategyConfig config_;
  RandomStrategy random_;
  int open_ = 0;
};

}  // namespace

int InitialDraws(const StrategyConfig& config) {
  const int quarter = (std::max(config.trials, 0) + 3) / 4;
  return std::clamp(std::max(config.parallelism, quarter), 2, std::max(config.population, 2));
}

std::uint64_t CandidateHash(const search::Architecture& arch, const Lineage& lineage) {
  const std::uint64_t arch_hash = search::CanonicalHash(arch);
  if (lineage.parent_trial == 0) return arch_hash;
  // FNV-1a 64 over the architecture's hash, the parent's id and the role.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  };
  mix(arch_hash);
  mix(static_cast<std::uint64_t>(lineage.parent_trial));
  for (char c : lineage.role) mix(static_cast<unsigned char>(c));
  return h;
}

search::Architecture DefaultBase(const search::SearchSpace& space) {
  search::Architecture a;
  a.levels = std::clamp(4, space.levels.min, space.levels.max);
  for (int i = 0; i < a.levels; ++i) {
    a.widths[i] = std::clamp(32 << i, space.width.min, space.width.max);
    a.enc_blocks[i] = std::clamp(1, space.enc_blocks.min, space.enc_blocks.max);
    if (i + 1 < a.levels)
      a.dec_blocks[i] = std::clamp(1, space.dec_blocks.min, space.dec_blocks.max);
  }
  a.skip = space.skips.front();
  a.upsample = space.upsamples.front();
  a.downsample = space.downsamples.front();
  a.activation = space.activations.front();
  return a;
}

Proposal Check(const search::Architecture& arch, const StrategyConfig& config,
               const Lineage& lineage) {
  Proposal p;
  p.arch = arch;
  p.lineage = lineage;
  p.hash = CandidateHash(arch, lineage);
  const search::Budget& budget = config.budget;
  if (Status s = search::Validate(arch); !s.ok()) return Rejected(std::move(p), s.message());
  if (Status s = search::ValidateShape(arch, budget.tile, "budget.tile.batch", "budget.tile");
      !s.ok()) {
    return Rejected(std::move(p), s.message());
  }
  if (Status s = search::ValidateShape(arch, budget.patch, "budget.patch.batch", "budget.patch");
      !s.ok()) {
    return Rejected(std::move(p), s.message());
  }
  const search::DeviceProfile& device = *budget.device;
  p.predicted_inference_peak_bytes =
      search::InferencePeakBytes(arch, budget.tile, budget.dtype, device);
  p.predicted_train_peak_bytes = search::TrainPeakBytes(arch, budget.patch, budget.dtype, device);
  const std::int64_t peak = search::BudgetedPeakBytes(budget, arch);
  if (peak > budget.bytes) {
    return Rejected(std::move(p), std::string("predicted ") +
                                      (budget.training ? "training-step" : "inference") + " peak " +
                                      BytesText(peak) + " > budget " + BytesText(budget.bytes));
  }
  p.admitted = true;
  p.latency_100mp_s =
      search::PlanHundredMegapixels(arch, budget.bytes, budget.dtype, device).seconds;
  return p;
}

StatusOr<std::unique_ptr<Strategy>> MakeStrategy(StrategyKind kind, const StrategyConfig& config) {
  if (Status s = search::Validate(config.space); !s.ok()) return s;
  if (config.budget.device == nullptr) {
    return Status::InvalidArgument("budget.device: no device profile");
  }
  if (config.budget.bytes < 1) return Status::InvalidArgument("budget.bytes: must be >= 1");
  switch (kind) {
    case StrategyKind::kRandom:
      return std::unique_ptr<Strategy>(new RandomStrategy(config));
    case StrategyKind::kEvolution:
      if (config.population < 2) {
        return Status::InvalidArgument("population: " + std::to_string(config.population) + " < 2");
      }
      return std::unique_ptr<Strategy>(new EvolutionStrategy(config));
    case StrategyKind::kScaling:
      if (!config.base.has_value()) {
        return Status::InvalidArgument("base: the scaling strategy needs a base architecture");
      }
      if (!search::Contains(config.space, *config.base)) {
        return Status::InvalidArgument("base: outside the search space");
      }
      if (!(config.scaling_alpha > 0 && config.scaling_alpha <= 1)) {
        return Status::InvalidArgument("scaling_alpha: " + std::to_string(config.scaling_alpha) +
                                       " not in (0, 1]");
      }
      return std::unique_ptr<Strategy>(new ScalingStrategy(config));
    case StrategyKind::kPruning: {
      const PruningConfig& c = config.pruning;
      if (c.start.has_value() && !search::Contains(config.space, *c.start)) {
        return Status::InvalidArgument("pruning.start_architecture: outside the search space");
      }
      if (!(c.start_multiple > 1 && c.start_multiple <= 1024)) {
        return Status::InvalidArgument("pruning.start_budget_multiple: " +
                                       std::to_string(c.start_multiple) + " not in (1, 1024]");
      }
      if (c.iterations < 1 || c.iterations > 100) {
        return Status::InvalidArgument("pruning.iterations: " + std::to_string(c.iterations) +
                                       " not in [1, 100]");
      }
      if (c.below_iterations < 0 || c.below_iterations > 100) {
        return Status::InvalidArgument("pruning.below_budget_iterations: " +
                                       std::to_string(c.below_iterations) + " not in [0, 100]");
      }
      return MakePruningStrategy(config);
    }
  }
  return Status::InvalidArgument("strategy: unknown kind");
}

}  // namespace peaknas::server
