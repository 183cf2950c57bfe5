#include "server/coordinator.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <set>
#include <unordered_set>
#include <utility>

#include "proto/convert.h"
#include "proto/json.h"
#include "search/architecture.h"
#include "search/budget.h"
#include "search/calibration.h"
#include "search/cost_model.h"
#include "search/space.h"
#include "search/tiling.h"
#include "search/units.h"
#include "server/frontier.h"
#include "server/strategy.h"
#include "storage/store.h"

namespace peaknas::server {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp Timestamp(std::int64_t ms) {
  return TimeUtil::MillisecondsToTimestamp(ms);
}

std::string ToJson(const google::protobuf::Message& message) {
  return proto::ToJson(message, {.preserve_proto_field_names = true});
}

Status FromJson(std::string_view json, google::protobuf::Message* message) {
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message);
  if (!status.ok()) return Status::Internal("stored JSON: " + std::string(status.message()));
  return Status::Ok();
}

// How stale a worker's stored last_seen_ms may be.
constexpr std::int64_t kLastSeenResolutionMs = 1000;
// Dataset names a worker may state.
constexpr int kMaxWorkerDatasets = 64;
constexpr int kMaxWorkerThreads = 4096;
// Characters a reported failure's message may have.
constexpr std::size_t kMaxFailureMessage = 4096;

using proto::JobId;
using proto::ParseId;
using proto::TrialId;
using proto::WorkerId;

std::string HashHex(std::uint64_t hash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4) out[static_cast<std::size_t>(i)] = kHex[hash & 15];
  return out;
}

v1::JobState ToProto(storage::JobState state) {
  switch (state) {
    case storage::JobState::kPending:
      return v1::JOB_STATE_PENDING;
    case storage::JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case storage::JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case storage::JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case storage::JobState::kCancelled:
      return v1::JOB_STATE_CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

bool Finished(storage::JobState state) {
  return state == storage::JobState::kSucceeded || state == storage::JobState::kFailed ||
         state == storage::JobState::kCancelled;
}

v1::TrialState ToProto(storage::TrialState state, bool job_cancelled) {
  switch (state) {
    case storage::TrialState::kPending:
      return job_cancelled ? v1::TRIAL_STATE_CANCELLED : v1::TRIAL_STATE_PENDING;
    case storage::TrialState::kRejected:
      return v1::TRIAL_STATE_REJECTED;
    case storage::TrialState::kLeased:
      return job_cancelled ? v1::TRIAL_STATE_CANCELLED : v1::TRIAL_STATE_RUNNING;
    case storage::TrialState::kSucceeded:
      return v1::TRIAL_STATE_SUCCEEDED;
    case storage::TrialState::kFailed:
      return v1::TRIAL_STATE_FAILED;
  }
  return v1::TRIAL_STATE_UNSPECIFIED;
}

StatusOr<StrategyKind> KindOf(v1::Strategy strategy) {
  switch (strategy) {
    case v1::STRATEGY_EVOLUTION:
      return StrategyKind::kEvolution;
    case v1::STRATEGY_RANDOM:
      return StrategyKind::kRandom;
    case v1::STRATEGY_SCALING:
      return StrategyKind::kScaling;
    case v1::STRATEGY_PRUNING:
      return StrategyKind::kPruning;
    default:
      return Status::InvalidArgument("spec.strategy: unknown strategy");
  }
}

// A trial's lineage as stored: a peaknas.v1.Lineage in JSON, its parent also in the
// parent_trial_id column (the one the database's foreign key checks).
StatusOr<Lineage> LineageFromStored(const storage::TrialSpec& spec) {
  if (spec.lineage.empty()) return Lineage{};
  v1::Lineage stored;
  PEAKNAS_RETURN_IF_ERROR(FromJson(spec.lineage, &stored));
  PEAKNAS_ASSIGN_OR_RETURN(Lineage l, proto::FromProto(stored, "stored lineage"));
  l.parent_trial = spec.parent_trial_id;
  return l;
}

// The fixed latency reference of a job's hypervolume (JobSpec.hypervolume_reference_latency_s):
// 10x the 100-MP latency of the space's default U-Net scaled to the budget; when nothing of it
// fits, 10x that of the space's narrowest version of it.
double ReferenceLatency(const StrategyConfig& config) {
  const search::Architecture base = DefaultBase(config.space);
  StatusOr<search::Architecture> scaled = search::ScaleToCost(
      base, static_cast<double>(config.budget.bytes),
      [&](const search::Architecture& a) {
        return static_cast<double>(search::BudgetedPeakBytes(config.budget, a));
      },
      search::ScalingOptions{}, config.space);
  search::Architecture narrowest = base;
  for (int i = 0; i < narrowest.levels; ++i) narrowest.widths[i] = config.space.width.min;
  double latency = Check(scaled.ok() ? *scaled : narrowest, config).latency_100mp_s;
  if (!(latency > 0)) {
    // Not even the narrowest fits the budget: its latency at a 256 tile stands in.
    latency =
        search::PlanHundredMegapixelsAt(narrowest, 256, config.budget.dtype, *config.budget.device)
            .seconds;
  }
  return 10.0 * std::max(latency, 1e-6);
}

// The predicted peak the budget limits, as stored with the trial (Check computed both peaks
// with the budget's tile, patch, dtype and device).
std::int64_t BudgetedPeak(const StrategyConfig& config, const storage::TrialSpec& spec) {
  return config.budget.training ? spec.predicted_train_peak_bytes
                                : spec.predicted_inference_peak_bytes;
}

// The trial as far as its stored row tells (no metrics, no artifact flag).
v1::Trial TrialProto(const storage::Trial& trial, bool job_cancelled, bool with_architecture) {
  v1::Trial out;
  out.set_id(TrialId(trial.id));
  out.set_job_id(JobId(trial.job_id));
  if (with_architecture) {
    auto arch = search::ParseArchitecture(trial.spec.architecture_json);
    if (arch.ok()) *out.mutable_architecture() = proto::ToProto(*arch);
  }
  // The stored hash is the candidate's identity; the message carries the architecture's.
  if (trial.spec.parent_trial_id == 0) {
    out.set_arch_hash(HashHex(trial.spec.arch_hash));
  } else if (auto arch = search::ParseArchitecture(trial.spec.architecture_json); arch.ok()) {
    out.set_arch_hash(search::CanonicalHashHex(*arch));
  }
  if (!trial.spec.lineage.empty()) {
    (void)FromJson(trial.spec.lineage, out.mutable_lineage());
  }
  out.set_state(ToProto(trial.state, job_cancelled));
  out.set_reason(trial.reason);
  out.set_predicted_inference_peak_bytes(trial.spec.predicted_inference_peak_bytes);
  out.set_predicted_train_peak_bytes(trial.spec.predicted_train_peak_bytes);
  out.set_predicted_latency_100mp_s(trial.spec.predicted_latency_100mp_s);
  out.set_attempts(trial.attempts);
  if (trial.worker_id != 0) out.set_worker_id(WorkerId(trial.worker_id));
  *out.mutable_created() = Timestamp(trial.created_ms);
  if (trial.state == storage::TrialState::kSucceeded ||
      trial.state == storage::TrialState::kFailed ||
      trial.state == storage::TrialState::kRejected) {
    *out.mutable_finished() = Timestamp(trial.updated_ms);
  }
  return out;
}

}  // namespace

// The in-memory state of one unfinished job: its spec, its strategy and what it has learned.
struct Coordinator::JobRuntime {
  std::int64_t id = 0;
  v1::JobSpec spec;  // defaults filled in
  StrategyConfig config;
  std::unique_ptr<Strategy> strategy;
  std::mt19937_64 rng;
  std::unordered_set<std::uint64_t> seen;  // candidate hashes of every trial, rejected included
  // Trained trials: ids, lineage and objectives.
  std::vector<Evaluated> done;
  double noisy_psnr = 0;   // the largest noisy-input PSNR reported (hypervolume reference)
  int admitted = 0;        // trials ever admitted (pending, leased, succeeded, failed)
  int open = 0;            // admitted trials pending or leased
  bool exhausted = false;  // the strategy ran dry
  bool running = false;    // stored as running (its first lease was granted)
  std::vector<std::size_t> frontier;  // the current frontier: indices into done
};

// What a worker said it can run (RegisterWorker), as the lease filter needs it.
struct Coordinator::WorkerCaps {
  std::set<std::string> datasets;   // empty: not stated, any
  std::set<v1::DType> dtypes;       // fp32 always included
  std::int64_t memory_bytes = 0;    // 0: not stated, no limit
  int threads = 0;                  // intra-op threads; 0: not stated
  std::int64_t last_seen_ms = 0;    // as stored
  std::int64_t last_active_ms = 0;  // its last lease request or report (for stats)
};

Coordinator::Coordinator(std::unique_ptr<storage::Store> store, std::string artifacts_dir,
                         CoordinatorOptions options)
    : artifacts_(std::move(artifacts_dir)),
      options_(std::move(options)),
      store_(std::move(store)),
      commits_(*store_, [this](const Status& committed) { CommittedLocked(committed); }) {}

Coordinator::~Coordinator() { Shutdown(); }

StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(std::unique_ptr<storage::Store> store,
                                                         const std::string& artifacts_dir,
                                                         CoordinatorOptions options) {
  PEAKNAS_RETURN_IF_ERROR(ArtifactStore(artifacts_dir).Create());
  std::unique_ptr<Coordinator> coordinator(
      new Coordinator(std::move(store), artifacts_dir, std::move(options)));
  PEAKNAS_RETURN_IF_ERROR(
      coordinator->WithStore(true, [&] { return coordinator->ResumeLocked(); }));
  return coordinator;
}

std::int64_t Coordinator::Now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- Group commit ----------------------------------------------------------------------------

template <typename Call>
auto Coordinator::WithStore(bool write, Call&& call) -> decltype(call()) {
  std::unique_lock lock(mu_);
  auto turn = commits_.Enter(lock, write);
  if (!turn.ok()) return turn.status();
  auto result = call();
  retired_.clear();  // jobs finished by the call: no reference to them outlives it
  Status durable = commits_.Leave(lock, *turn);
  if (!durable.ok()) return durable;
  return result;
}

void Coordinator::CommittedLocked(const Status& committed) {
  if (committed.ok()) {
    PublishLocked();
    return;
  }
  spdlog::error("a commit failed: {}; reloading the jobs from the database", committed.ToString());
  // The in-memory state ran ahead of the database: rebuild it as a restart would.
  jobs_.clear();
  workers_.clear();
  held_leases_.clear();
  frontier_summaries_.clear();  // a rolled-back snapshot's version may come again
  packing_fits_.clear();
  last_sequence_.clear();
  unpublished_.clear();
  unpublished_events_.clear();
  Status resumed = store_->BeginGroup();
  if (resumed.ok()) {
    resumed = ResumeLocked();
    if (resumed.ok()) {
      resumed = store_->CommitGroup();
    } else {
      store_->RollbackGroup();
    }
  }
  if (resumed.ok()) {
    PublishLocked();
  } else {
    spdlog::error("reloading the jobs failed: {}", resumed.ToString());
    jobs_.clear();
    last_sequence_.clear();
  }
  unpublished_.clear();
}

void Coordinator::PublishLocked() {
  // The committed events join their job's tail, which followers read without the store.
  for (auto& [job, events] : unpublished_events_) {
    std::deque<v1::JobEvent>& tail = tails_[job];
    if (!tail.empty() && !events.empty() &&
        events.front().sequence() != tail.back().sequence() + 1) {
      tail.clear();  // a gap (a reload in between): the tail restarts here
    }
    for (v1::JobEvent& e : events) tail.push_back(std::move(e));
    while (tail.size() > kTailEvents) tail.pop_front();
  }
  unpublished_events_.clear();
  while (tails_.size() > kTailJobs) tails_.erase(tails_.begin());  // the oldest jobs
  for (const auto& [job, sequence] : unpublished_) {
    published_[job] = sequence;
    if (signals_.events_published) signals_.events_published(JobId(job), sequence);
  }
  unpublished_.clear();
  events_cv_.notify_all();
}

void Coordinator::SignalQueuedLocked() {
  queued_.notify_all();
  if (signals_.trials_queued) signals_.trials_queued();
}

void Coordinator::SetSignals(Signals signals) {
  std::lock_guard lock(mu_);
  signals_ = std::move(signals);
}

void Coordinator::EndLeaseLocked(std::int64_t trial_id, bool reported) {
  auto it = held_leases_.find(trial_id);
  if (it == held_leases_.end()) return;
  const std::int64_t now = Now();
  if (reported && it->second.granted_ms >= 0) {
    counters_.trial_seconds.Observe(
        static_cast<double>(std::max<std::int64_t>(0, now - it->second.granted_ms)) / 1000.0);
  }
  if (auto worker = workers_.find(it->second.worker_id); reported && worker != workers_.end()) {
    worker->second->last_active_ms = now;
  }
  held_leases_.erase(it);
}

CoordinatorStats Coordinator::stats() {
  std::lock_guard lock(mu_);
  const GroupCommit::Stats group = commits_.stats();
  CoordinatorStats out = counters_;
  out.commits = group.commits;
  out.writes = group.writes;
  out.failed_commits = group.failed_commits;
  out.waiting_for_commit = group.waiting_at_gate;
  out.commit_seconds = group.commit_seconds;
  out.commit_size = group.commit_size;
  std::set<std::int64_t> busy, online;
  for (const auto& [trial, lease] : held_leases_) busy.insert(lease.worker_id);
  online = busy;
  const std::int64_t now = Now();
  for (const auto& [id, caps] : workers_) {
    if (now - caps->last_active_ms <= options_.lease_duration.count()) online.insert(id);
  }
  out.workers_busy = static_cast<int>(busy.size());
  out.workers_online = static_cast<int>(online.size());
  return out;
}

// --- Events ----------------------------------------------------------------------------------

Status Coordinator::EmitLocked(std::int64_t job_id, v1::JobEvent event) {
  auto last = last_sequence_.find(job_id);
  if (last == last_sequence_.end()) {
    PEAKNAS_ASSIGN_OR_RETURN(std::int64_t stored, store_->LastEventSequence(job_id));
    last = last_sequence_.emplace(job_id, stored).first;
  }
  const std::int64_t now = Now();
  event.set_job_id(JobId(job_id));
  event.set_sequence(last->second + 1);
  *event.mutable_time() = Timestamp(now);
  PEAKNAS_RETURN_IF_ERROR(store_->AppendEvent({.job_id = job_id,
                                               .sequence = event.sequence(),
                                               .created_ms = now,
                                               .payload = event.SerializeAsString()}));
  last->second = event.sequence();
  unpublished_[job_id] = event.sequence();
  unpublished_events_[job_id].push_back(std::move(event));
  return Status::Ok();
}

bool Coordinator::IsRunning(std::string_view job_id) {
  const auto id = ParseId(job_id, "j-");
  if (!id) return false;
  std::lock_guard lock(mu_);
  return jobs_.contains(*id);
}

StatusOr<std::vector<v1::JobEvent>> Coordinator::WatchEvents(std::string_view job_id,
                                                             std::int64_t after_sequence, int limit,
                                                             std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  // Followers at the end of the log read its tail in memory: no store, no turn at the group
  // commit. Anything older than the tail comes from the store.
  if (const auto id = ParseId(job_id, "j-")) {
    std::unique_lock lock(mu_);
    const auto tail = tails_.find(*id);
    if (tail != tails_.end() && !tail->second.empty() &&
        tail->second.front().sequence() <= after_sequence + 1) {
      std::vector<v1::JobEvent> out;
      for (const v1::JobEvent& e : tail->second) {
        if (e.sequence() <= after_sequence) continue;
        if (static_cast<int>(out.size()) >= limit) break;
        out.push_back(e);
      }
      if (!out.empty() || wait.count() <= 0) return out;
    }
  }
  while (true) {
    std::int64_t id = 0;
    auto stored = WithStore(false, [&]() -> StatusOr<std::vector<storage::Event>> {
      PEAKNAS_ASSIGN_OR_RETURN(const storage::Job job, FindJobLocked(job_id));
      id = job.id;
      return store_->ListEvents(id, after_sequence, limit);
    });
    if (!stored.ok()) return stored.status();
    if (!stored->empty()) {
      std::vector<v1::JobEvent> out(stored->size());
      for (std::size_t i = 0; i < stored->size(); ++i) {
        if (!out[i].ParseFromString((*stored)[i].payload)) {
          return Status::Internal("event " + std::to_string((*stored)[i].sequence) + " of job " +
                                  std::string(job_id) + " does not parse");
        }
      }
      return out;
    }
    std::unique_lock lock(mu_);
    const bool more = events_cv_.wait_until(lock, deadline, [&] {
      auto it = published_.find(id);
      return shutdown_ || (it != published_.end() && it->second > after_sequence);
    });
    if (!more || shutdown_) return std::vector<v1::JobEvent>();
  }
}

// --- Jobs ------------------------------------------------------------------------------------

Status Coordinator::ResumeLocked() {
  PEAKNAS_ASSIGN_OR_RETURN(auto jobs, store_->ListJobs());
  int resumed = 0;
  for (const auto& job : jobs) {
    if (Finished(job.state)) continue;
    auto runtime = LoadJobLocked(job.id);
    if (!runtime.ok()) {
      spdlog::error("job {}: cannot resume: {}", JobId(job.id), runtime.status().ToString());
      PEAKNAS_RETURN_IF_ERROR(store_->SetJobState(job.id, storage::JobState::kFailed,
                                                  runtime.status().message(), Now()));
      v1::JobEvent event;
      PEAKNAS_ASSIGN_OR_RETURN(*event.mutable_job_finished()->mutable_job(),
                               JobMessageLocked(job.id));
      PEAKNAS_RETURN_IF_ERROR(EmitLocked(job.id, std::move(event)));
      continue;
    }
    PEAKNAS_RETURN_IF_ERROR(RefillLocked(**runtime));
    PEAKNAS_RETURN_IF_ERROR(MaybeFinishLocked(**runtime));
    ++resumed;
  }
  if (resumed > 0) spdlog::info("resumed {} unfinished job(s)", resumed);
  return Status::Ok();
}

// Builds the runtime of a stored job from its spec and trials, and registers it in jobs_.
StatusOr<Coordinator::JobRuntime*> Coordinator::LoadJobLocked(std::int64_t job_id) {
  PEAKNAS_ASSIGN_OR_RETURN(auto job, store_->GetJob(job_id));
  auto runtime = std::make_unique<JobRuntime>();
  runtime->id = job_id;
  runtime->running = job.state == storage::JobState::kRunning;
  PEAKNAS_RETURN_IF_ERROR(FromJson(job.spec, &runtime->spec));
  const v1::JobSpec& spec = runtime->spec;
  PEAKNAS_ASSIGN_OR_RETURN(runtime->config.budget, proto::BudgetFromProto(spec, "spec"));
  PEAKNAS_ASSIGN_OR_RETURN(runtime->config.space, proto::FromProto(spec.space(), "spec.space"));
  if (spec.has_base_architecture()) {
    PEAKNAS_ASSIGN_OR_RETURN(runtime->config.base,
                             proto::FromProto(spec.base_architecture(), "spec.base_architecture"));
  }
  runtime->config.steps = spec.fidelity().steps();
  if (spec.strategy() == v1::STRATEGY_PRUNING) {
    const v1::PruningOptions& p = spec.pruning();
    PruningConfig& c = runtime->config.pruning;
    if (p.has_start_architecture()) {
      PEAKNAS_ASSIGN_OR_RETURN(
          c.start, proto::FromProto(p.start_architecture(), "spec.pruning.start_architecture"));
    }
    if (p.start_budget_multiple() > 0) c.start_multiple = p.start_budget_multiple();
    if (p.iterations() > 0) c.iterations = p.iterations();
    if (p.has_below_budget_iterations()) c.below_iterations = p.below_budget_iterations();
    c.finetune_steps = p.finetune_steps();
    c.final_finetune_steps = p.final_finetune_steps();
    c.max_total_steps = p.max_total_steps();
  }
  if (spec.population() > 0) runtime->config.population = spec.population();
  runtime->config.parallelism = spec.parallelism();
  runtime->config.stratified = spec.sampling() != v1::SAMPLING_UNIFORM;
  runtime->config.inherit = spec.inherit();
  if (spec.scaling_alpha() > 0) runtime->config.scaling_alpha = spec.scaling_alpha();
  runtime->config.trials = spec.trials();
  if (spec.hypervolume_reference_latency_s() == 0) {
    // A job stored before the reference was: the same figure, computed now.
    runtime->spec.set_hypervolume_reference_latency_s(ReferenceLatency(runtime->config));
  }
  PEAKNAS_ASSIGN_OR_RETURN(auto kind, KindOf(spec.strategy()));
  PEAKNAS_ASSIGN_OR_RETURN(runtime->strategy, MakeStrategy(kind, runtime->config));

  PEAKNAS_ASSIGN_OR_RETURN(auto trials, store_->ListTrials(job_id));
  // Seeded by the job's seed and how far it got, so a resumed job does not replay proposals.
  runtime->rng.seed(spec.seed() ^ (0x9e3779b97f4a7c15ULL * (trials.size() + 1)));
  for (const auto& trial : trials) {
    runtime->seen.insert(trial.spec.arch_hash);
    if (trial.state == storage::TrialState::kRejected) continue;
    ++runtime->admitted;
    if (trial.state == storage::TrialState::kPending ||
        trial.state == storage::TrialState::kLeased) {
      ++runtime->open;
    }
    if (trial.state == storage::TrialState::kLeased) {
      // Its worker is busy; when the lease began is not known here (-1: not timed).
      held_leases_[trial.id] = {.worker_id = trial.worker_id, .granted_ms = -1};
    }
    if (trial.state != storage::TrialState::kSucceeded) continue;
    PEAKNAS_ASSIGN_OR_RETURN(auto metrics, store_->GetMetrics(trial.id));
    PEAKNAS_ASSIGN_OR_RETURN(auto arch, search::ParseArchitecture(trial.spec.architecture_json));
    PEAKNAS_ASSIGN_OR_RETURN(Lineage lineage, LineageFromStored(trial.spec));
    runtime->done.push_back({.arch = arch,
                             .trial_id = trial.id,
                             .lineage = std::move(lineage),
                             .psnr = metrics.psnr,
                             .peak_bytes = BudgetedPeak(runtime->config, trial.spec),
                             .latency_100mp_s = metrics.latency_100mp_s,
                             .measured_latency_100mp_s = metrics.tiled_100mp_s,
                             .measured_on = metrics.tiled_100mp_s > 0 ? metrics.device : ""});
    runtime->noisy_psnr = std::max(runtime->noisy_psnr, metrics.noisy_psnr);
  }
  runtime->frontier = FrontOfResults(runtime->done);
  JobRuntime* raw = runtime.get();
  jobs_[job_id] = std::move(runtime);
  return raw;
}

// Keeps up to `parallelism` admitted trials open until `trials` have been admitted.
Status Coordinator::RefillLocked(JobRuntime& job) {
  const int parallelism = job.spec.parallelism();
  const int target = job.spec.trials();
  // Refill in batches: once a quarter of the queue is free (at once for small queues), so that
  // one proposal round serves many trials.
  const int slack = std::max(1, parallelism / 4);
  if (job.open > parallelism - slack && job.open > 0) return Status::Ok();
  int barren = 0;
  bool queued = false;
  while (!job.exhausted && job.admitted < target && job.open < parallelism) {
    const int want = std::min(parallelism - job.open, target - job.admitted);
    job.strategy->SetOpenTrials(job.open);
    std::vector<Proposal> proposals = job.strategy->Propose(want, job.done, job.seen, job.rng);
    if (proposals.empty() && job.strategy->Waiting()) break;  // for the open trials' results
    if (proposals.empty()) {
      job.exhausted = true;
      spdlog::info("job {}: search space exhausted after {} admitted trials", JobId(job.id),
                   job.admitted);
      break;
    }
    std::vector<storage::Store::NewTrial> batch;
    std::vector<const Proposal*> stored;
    std::unordered_set<std::uint64_t> in_batch;
    int admitted = 0;
    for (const Proposal& p : proposals) {
      // A strategy bug otherwise; never store duplicates.
      if (job.seen.contains(p.hash) || in_batch.contains(p.hash)) continue;
      if (p.admitted && (job.admitted + admitted >= target || job.open + admitted >= parallelism)) {
        break;
      }
      batch.push_back(
          {.spec = {.architecture_json = search::ToCanonicalJson(p.arch),
                    .arch_hash = p.hash,
                    .predicted_inference_peak_bytes = p.predicted_inference_peak_bytes,
                    .predicted_train_peak_bytes = p.predicted_train_peak_bytes,
                    .predicted_latency_100mp_s = p.latency_100mp_s,
                    .parent_trial_id = p.lineage.parent_trial,
                    .lineage =
                        p.lineage == Lineage{} ? std::string() : ToJson(proto::ToProto(p.lineage)),
                    .over_budget = p.admitted && p.lineage.over_budget},
           .rejected = !p.admitted,
           .reason = p.admitted ? "" : p.rejection});
      stored.push_back(&p);
      in_batch.insert(p.hash);
      admitted += p.admitted ? 1 : 0;
    }
    const std::int64_t now = Now();
    PEAKNAS_ASSIGN_OR_RETURN(const std::vector<std::int64_t> ids,
                             store_->AddTrials(job.id, batch, now));
    for (std::size_t k = 0; k < ids.size(); ++k) {
      const Proposal& p = *stored[k];
      job.seen.insert(p.hash);
      if (p.admitted) {
        spdlog::debug("job {}: queued trial {}", JobId(job.id), TrialId(ids[k]));
        continue;
      }
      spdlog::info("job {}: rejected trial {}: {}", JobId(job.id), TrialId(ids[k]), p.rejection);
      ++counters_.candidates_rejected;
      // The row as stored, without reading it back.
      storage::Trial row;
      row.id = ids[k];
      row.job_id = job.id;
      row.spec = batch[k].spec;
      row.state = storage::TrialState::kRejected;
      row.reason = p.rejection;
      row.created_ms = row.updated_ms = now;
      v1::JobEvent event;
      v1::Trial* t = event.mutable_trial_rejected()->mutable_trial();
      *t = TrialProto(row, false, /*with_architecture=*/false);
      *t->mutable_architecture() = proto::ToProto(p.arch);
      PEAKNAS_RETURN_IF_ERROR(EmitLocked(job.id, std::move(event)));
    }
    job.admitted += admitted;
    job.open += admitted;
    queued = queued || admitted > 0;
    if (admitted == 0 && ++barren >= options_.max_barren_rounds) {
      job.exhausted = true;
      spdlog::warn(
          "job {}: {} proposal rounds without an admissible candidate; stopping the search",
          JobId(job.id), barren);
    }
  }
  if (queued) SignalQueuedLocked();
  return Status::Ok();
}

Status Coordinator::MaybeFinishLocked(JobRuntime& job) {
  if (job.open > 0) return Status::Ok();
  if (job.admitted < job.spec.trials() && !job.exhausted) return Status::Ok();
  const std::int64_t id = job.id;
  PEAKNAS_RETURN_IF_ERROR(store_->SetJobState(id, storage::JobState::kSucceeded, "", Now()));
  spdlog::info("job {}: finished ({} trials admitted, {} trained)", JobId(id), job.admitted,
               job.done.size());
  // Out of the running jobs, kept alive until the call ends: callers still hold `job`.
  auto it = jobs_.find(id);
  retired_.push_back(std::move(it->second));
  jobs_.erase(it);
  v1::JobEvent event;
  PEAKNAS_ASSIGN_OR_RETURN(*event.mutable_job_finished()->mutable_job(), JobMessageLocked(id));
  return EmitLocked(id, std::move(event));
}

Status Coordinator::ResolveDeviceBudget(v1::JobSpec* spec) {
  v1::Budget& budget = *spec->mutable_budget();
  const std::int64_t device = budget.device_bytes();
  if (device < 1 || device > proto::kMaxBytes) {
    return Status::InvalidArgument("spec.budget.device_bytes: " + std::to_string(device) +
                                   " is not in [1, 2^50]");
  }
  if (budget.bytes() != 0) {
    return Status::InvalidArgument(
        "spec.budget: bytes (allocator) and device_bytes (device) are both set; set one");
  }
  if (budget.mode() != v1::BUDGET_MODE_INFERENCE && budget.mode() != v1::BUDGET_MODE_TRAINING) {
    return Status::InvalidArgument(
        "spec.budget.mode: required with device_bytes; allowed: "
        "INFERENCE, TRAINING");
  }
  const search::CalibratedPass pass = budget.mode() == v1::BUDGET_MODE_TRAINING
                                          ? search::CalibratedPass::kTraining
                                          : search::CalibratedPass::kInference;
  const std::string profile =
      spec->device_profile().empty() ? search::DefaultDeviceProfile().name : spec->device_profile();
  PEAKNAS_ASSIGN_OR_RETURN(const std::vector<v1::Calibration> calibrations,
                           ListCalibrations(profile, ""));
  // A line that does not grow has no largest allocator peak below a device budget.
  const v1::Calibration* chosen =
      proto::NewestCalibration(calibrations, profile, [&](const v1::Calibration& c) {
        const auto fit = proto::FittedPass(c, pass);
        return fit.has_value() && fit->slope > 0;
      });
  if (chosen == nullptr) {
    return Status::FailedPrecondition(
        "spec.budget.device_bytes: no calibration of device profile \"" + profile +
        "\" has a fit for the " + std::string(search::Name(pass)) +
        " pass yet (peaknas calibration); workers report a "
        "sample with every trial: state the first jobs' budgets in allocator bytes");
  }
  const search::CalibrationFit fit = *proto::FittedPass(*chosen, pass);
  const std::int64_t lo = fit.LargestFitting(device);
  if (lo < 1) {
    return Status::InvalidArgument(
        "spec.budget.device_bytes: " + std::to_string(device) + " (" + search::FormatBytes(device) +
        ") is below what any network needs on " + profile + " (" + chosen->framework() +
        "): the calibrated " + std::string(search::Name(pass)) + " peak of the smallest is " +
        search::FormatBytes(fit.Predict(1)));
  }
  budget.set_bytes(lo);
  *budget.mutable_device_calibration() = *chosen;
  spdlog::info("device budget {} ({} {}) is an allocator budget of {} by the {} calibration of {}",
               search::FormatBytes(device), search::Name(pass), profile, search::FormatBytes(lo),
               chosen->framework(), profile);
  return Status::Ok();
}

Status Coordinator::UnknownJob(std::string_view job_id) {
  return Status::NotFound("job_id: unknown job \"" + std::string(job_id) + "\"");
}

StatusOr<v1::Job> Coordinator::SubmitJob(const v1::JobSpec& submitted, std::string_view owner) {
  v1::JobSpec converted;
  const bool device_budget = submitted.has_budget() && submitted.budget().device_bytes() != 0;
  if (device_budget) {
    converted = submitted;
    PEAKNAS_RETURN_IF_ERROR(ResolveDeviceBudget(&converted));
  }
  const v1::JobSpec& spec = device_budget ? converted : submitted;
  PEAKNAS_RETURN_IF_ERROR(proto::ValidateJobSpec(spec, "spec"));
  PEAKNAS_ASSIGN_OR_RETURN(auto budget, proto::BudgetFromProto(spec, "spec"));
  v1::JobSpec resolved = proto::ResolveJobSpec(spec, budget);
  if (resolved.hypervolume_reference_latency_s() == 0) {
    StrategyConfig config;
    config.budget = budget;
    if (spec.has_space()) {
      PEAKNAS_ASSIGN_OR_RETURN(config.space, proto::FromProto(spec.space(), "spec.space"));
    }
    resolved.set_hypervolume_reference_latency_s(ReferenceLatency(config));
  }
  return WithStore(true, [&]() -> StatusOr<v1::Job> {
    PEAKNAS_RETURN_IF_ERROR(CheckTenantLimitsLocked(owner, resolved.trials()));
    PEAKNAS_ASSIGN_OR_RETURN(auto job_id, store_->CreateJob(ToJson(resolved), owner, Now()));
    auto runtime = LoadJobLocked(job_id);
    if (!runtime.ok()) {
      PEAKNAS_RETURN_IF_ERROR(store_->SetJobState(job_id, storage::JobState::kFailed,
                                                  runtime.status().message(), Now()));
      return runtime.status();
    }
    spdlog::info("job {}: submitted ({} trials, parallelism {})", JobId(job_id), resolved.trials(),
                 resolved.parallelism());
    PEAKNAS_RETURN_IF_ERROR(RefillLocked(**runtime));
    PEAKNAS_RETURN_IF_ERROR(MaybeFinishLocked(**runtime));
    return JobMessageLocked(job_id);
  });
}

Status Coordinator::CheckTenantLimitsLocked(std::string_view owner, std::int64_t trials) {
  if (options_.tenant_max_jobs <= 0 && options_.tenant_max_trials <= 0) return Status::Ok();
  PEAKNAS_ASSIGN_OR_RETURN(const std::vector<storage::Job> jobs, store_->ListJobs());
  int unfinished = 0;
  std::int64_t asked = 0;
  for (const storage::Job& job : jobs) {
    if (job.owner != owner || Finished(job.state)) continue;
    ++unfinished;
    v1::JobSpec spec;
    PEAKNAS_RETURN_IF_ERROR(FromJson(job.spec, &spec));
    asked += spec.trials();
  }
  const std::string who = owner.empty() ? "this server" : "tenant \"" + std::string(owner) + "\"";
  if (options_.tenant_max_jobs > 0 && unfinished >= options_.tenant_max_jobs) {
    return Status::ResourceExhausted(who + " has " + std::to_string(unfinished) +
                                     " unfinished jobs, the most allowed (--tenant-max-jobs " +
                                     std::to_string(options_.tenant_max_jobs) +
                                     "); cancel one or wait for one to end");
  }
  if (options_.tenant_max_trials > 0 && asked + trials > options_.tenant_max_trials) {
    return Status::ResourceExhausted(
        "spec.trials: " + std::to_string(trials) + " more trials would make " +
        std::to_string(asked + trials) + " for the unfinished jobs of " + who +
        ", over --tenant-max-trials " + std::to_string(options_.tenant_max_trials));
  }
  return Status::Ok();
}

StatusOr<v1::Job> Coordinator::JobMessageLocked(std::int64_t job_id) {
  PEAKNAS_ASSIGN_OR_RETURN(auto job, store_->GetJob(job_id));
  v1::Job out;
  out.set_id(JobId(job.id));
  out.set_owner(job.owner);
  PEAKNAS_RETURN_IF_ERROR(FromJson(job.spec, out.mutable_spec()));
  out.set_state(ToProto(job.state));
  *out.mutable_created() = Timestamp(job.created_ms);
  out.set_error(job.error);
  PEAKNAS_ASSIGN_OR_RETURN(const storage::TrialCounts n, store_->CountTrials(job_id));
  // Pending and leased trials of a cancelled job show as cancelled (ToProto(TrialState)).
  auto* counts = out.mutable_counts();
  if (job.state == storage::JobState::kCancelled) {
    counts->set_cancelled(static_cast<std::int32_t>(n.pending + n.leased));
  } else {
    counts->set_pending(static_cast<std::int32_t>(n.pending));
    counts->set_running(static_cast<std::int32_t>(n.leased));
  }
  counts->set_succeeded(static_cast<std::int32_t>(n.succeeded));
  counts->set_failed(static_cast<std::int32_t>(n.failed));
  counts->set_rejected(static_cast<std::int32_t>(n.rejected));
  counts->set_over_budget_ancestors(static_cast<std::int32_t>(n.over_budget));
  *out.mutable_updated() = Timestamp(std::max(job.updated_ms, n.updated_ms));
  PEAKNAS_ASSIGN_OR_RETURN(auto frontier, store_->LatestFrontier(job_id));
  out.set_frontier_version(frontier ? frontier->version : 0);
  if (frontier) {
    out.set_hypervolume(frontier->hypervolume);
    // Size and best PSNR from the snapshot, parsed once per version.
    auto& cached = frontier_summaries_[job_id];
    if (cached.version != frontier->version) {
      v1::Frontier f;
      PEAKNAS_RETURN_IF_ERROR(FromJson(frontier->members_json, &f));
      cached = {.version = frontier->version, .size = f.points_size(), .best_psnr = 0};
      for (const v1::FrontierPoint& p : f.points()) {
        cached.best_psnr = std::max(cached.best_psnr, p.psnr());
      }
    }
    out.set_frontier_size(cached.size);
    out.set_best_psnr(cached.best_psnr);
  }
  return out;
}

StatusOr<storage::Job> Coordinator::FindJobLocked(std::string_view job_id) {
  const auto unknown = [&] { return UnknownJob(job_id); };
  const auto id = ParseId(job_id, "j-");
  if (!id) return unknown();
  auto job = store_->GetJob(*id);
  if (!job.ok() && job.status().code() == StatusCode::kNotFound) return unknown();
  return job;
}

StatusOr<v1::Job> Coordinator::GetJob(std::string_view job_id) {
  return WithStore(false, [&]() -> StatusOr<v1::Job> {
    PEAKNAS_ASSIGN_OR_RETURN(const storage::Job job, FindJobLocked(job_id));
    return JobMessageLocked(job.id);
  });
}

StatusOr<std::vector<v1::Job>> Coordinator::ListJobs() {
  return WithStore(false, [&]() -> StatusOr<std::vector<v1::Job>> {
    PEAKNAS_ASSIGN_OR_RETURN(auto jobs, store_->ListJobs());
    std::vector<v1::Job> out;
    out.reserve(jobs.size());
    for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) {
      PEAKNAS_ASSIGN_OR_RETURN(auto job, JobMessageLocked(it->id));
      out.push_back(std::move(job));
    }
    return out;
  });
}

StatusOr<v1::Job> Coordinator::CancelJob(std::string_view job_id) {
  return WithStore(true, [&]() -> StatusOr<v1::Job> {
    PEAKNAS_ASSIGN_OR_RETURN(const storage::Job job, FindJobLocked(job_id));
    const std::int64_t id = job.id;
    if (Finished(job.state)) return JobMessageLocked(id);
    PEAKNAS_RETURN_IF_ERROR(store_->SetJobState(id, storage::JobState::kCancelled, "", Now()));
    jobs_.erase(id);
    spdlog::info("job {}: cancelled", JobId(id));
    PEAKNAS_ASSIGN_OR_RETURN(v1::Job message, JobMessageLocked(id));
    v1::JobEvent event;
    *event.mutable_job_finished()->mutable_job() = message;
    PEAKNAS_RETURN_IF_ERROR(EmitLocked(id, std::move(event)));
    return message;
  });
}

StatusOr<v1::Frontier> Coordinator::FrontierMessageLocked(std::int64_t job_id) {
  PEAKNAS_ASSIGN_OR_RETURN(auto snapshot, store_->LatestFrontier(job_id));
  v1::Frontier out;
  if (snapshot) {
    PEAKNAS_RETURN_IF_ERROR(FromJson(snapshot->members_json, &out));
    out.set_version(snapshot->version);
    out.set_hypervolume(snapshot->hypervolume);
    *out.mutable_updated() = Timestamp(snapshot->created_ms);
  }
  out.set_job_id(JobId(job_id));
  return out;
}

StatusOr<v1::Frontier> Coordinator::GetFrontier(std::string_view job_id) {
  return WithStore(false, [&]() -> StatusOr<v1::Frontier> {
    PEAKNAS_ASSIGN_OR_RETURN(const storage::Job job, FindJobLocked(job_id));
    return FrontierMessageLocked(job.id);
  });
}

StatusOr<v1::Trial> Coordinator::TrialMessageLocked(std::int64_t trial_id, bool job_cancelled) {
  PEAKNAS_ASSIGN_OR_RETURN(auto trial, store_->GetTrial(trial_id));
  v1::Trial out = TrialProto(trial, job_cancelled, /*with_architecture=*/true);
  if (trial.spec.predicted_latency_100mp_s == 0 && trial.state != storage::TrialState::kRejected) {
    // Stored before schema version 2: compute it as the strategy did.
    auto runtime = jobs_.find(trial.job_id);
    auto arch = search::ParseArchitecture(trial.spec.architecture_json);
    if (arch.ok() && runtime != jobs_.end()) {
      out.set_predicted_latency_100mp_s(Check(*arch, runtime->second->config).latency_100mp_s);
    }
  }
  if (trial.state == storage::TrialState::kSucceeded) {
    auto metrics = store_->GetMetrics(trial.id);
    if (metrics.ok()) (void)FromJson(metrics->report_json, out.mutable_metrics());
    auto artifacts = store_->ListArtifacts(trial.id);
    out.set_has_artifact(artifacts.ok() && !artifacts->empty());
  }
  return out;
}

StatusOr<std::vector<v1::Trial>> Coordinator::ListTrials(
    std::string_view job_id, const std::vector<v1::TrialState>& states) {
  return WithStore(false, [&]() -> StatusOr<std::vector<v1::Trial>> {
    PEAKNAS_ASSIGN_OR_RETURN(const storage::Job job, FindJobLocked(job_id));
    const std::int64_t id = job.id;
    const bool cancelled = job.state == storage::JobState::kCancelled;
    PEAKNAS_ASSIGN_OR_RETURN(auto trials, store_->ListTrials(id));
    std::vector<v1::Trial> out;
    for (const auto& trial : trials) {
      if (!states.empty() && std::find(states.begin(), states.end(),
                                       ToProto(trial.state, cancelled)) == states.end()) {
        continue;
      }
      PEAKNAS_ASSIGN_OR_RETURN(auto message, TrialMessageLocked(trial.id, cancelled));
      out.push_back(std::move(message));
    }
    return out;
  });
}

// --- Calibrations ----------------------------------------------------------------------------

namespace {

v1::CalibrationFit FitToProto(const std::vector<search::CalibrationSample>& samples) {
  const StatusOr<search::CalibrationFit> fit = search::FitCalibration(samples);
  if (fit.ok()) return proto::ToProto(*fit);
  v1::CalibrationFit out;
  out.set_samples(static_cast<std::int32_t>(samples.size()));
  out.set_unfitted(fit.status().message());
  return out;
}

}  // namespace

StatusOr<std::vector<v1::Calibration>> Coordinator::ListCalibrations(
    std::string_view device_profile, std::string_view framework) {
  return WithStore(false, [&]() -> StatusOr<std::vector<v1::Calibration>> {
    return ListCalibrationsLocked(device_profile, framework);
  });
}

StatusOr<std::optional<search::CalibrationFit>> Coordinator::PackingFitLocked(
    const std::string& device_profile) {
  if (auto it = packing_fits_.find(device_profile); it != packing_fits_.end()) return it->second;
  PEAKNAS_ASSIGN_OR_RETURN(const std::vector<v1::Calibration> calibrations,
                           ListCalibrationsLocked(device_profile, ""));
  // A line that does not grow has no largest prediction below the free bytes.
  const v1::Calibration* chosen =
      proto::NewestCalibration(calibrations, device_profile, [](const v1::Calibration& c) {
        const auto fit = proto::FittedPass(c, search::CalibratedPass::kTrial);
        return fit.has_value() && fit->slope > 0;
      });
  std::optional<search::CalibrationFit> fit;
  if (chosen != nullptr) fit = proto::FittedPass(*chosen, search::CalibratedPass::kTrial);
  packing_fits_[device_profile] = fit;
  return fit;
}

StatusOr<std::vector<v1::Calibration>> Coordinator::ListCalibrationsLocked(
    std::string_view device_profile, std::string_view framework) {
  PEAKNAS_ASSIGN_OR_RETURN(const std::vector<storage::CalibrationSample> stored,
                           store_->ListCalibrationSamples(kCalibrationSamplesPerFit));
  struct Key {
    std::string device_profile, framework;
    auto operator<=>(const Key&) const = default;
  };
  struct Samples {
    std::map<search::CalibratedPass, std::vector<search::CalibrationSample>> by_pass;
    std::int64_t newest_ms = 0;
  };
  std::map<Key, Samples> by_key;
  for (const storage::CalibrationSample& s : stored) {
    if (!device_profile.empty() && s.device_profile != device_profile) continue;
    if (!framework.empty() && s.framework != framework) continue;
    Samples& group = by_key[{s.device_profile, s.framework}];
    group.by_pass[s.pass].push_back(
        {.predicted_bytes = s.predicted_bytes, .device_bytes = s.device_bytes});
    group.newest_ms = std::max(group.newest_ms, s.created_ms);
  }
  std::vector<v1::Calibration> out;
  for (auto& [key, group] : by_key) {
    v1::Calibration c;
    c.set_device_profile(key.device_profile);
    c.set_framework(key.framework);
    *c.mutable_inference() = FitToProto(group.by_pass[search::CalibratedPass::kInference]);
    *c.mutable_training() = FitToProto(group.by_pass[search::CalibratedPass::kTraining]);
    *c.mutable_trial() = FitToProto(group.by_pass[search::CalibratedPass::kTrial]);
    *c.mutable_updated() = Timestamp(group.newest_ms);
    out.push_back(std::move(c));
  }
  return out;
}

// --- Workers ---------------------------------------------------------------------------------

StatusOr<std::vector<v1::Worker>> Coordinator::ListWorkers(bool all) {
  return WithStore(false, [&]() -> StatusOr<std::vector<v1::Worker>> {
    const std::int64_t now = Now();
    const std::int64_t window = options_.lease_duration.count();
    std::map<std::int64_t, std::vector<std::int64_t>> held;  // worker -> trials
    for (const auto& [trial, lease] : held_leases_) held[lease.worker_id].push_back(trial);
    // The store's last sighting is at most kLastSeenResolutionMs stale; a report is not in it.
    PEAKNAS_ASSIGN_OR_RETURN(auto stored,
                             store_->ListWorkers(all ? 0 : now - window - kLastSeenResolutionMs));
    std::set<std::int64_t> listed;
    std::vector<v1::Worker> out;
    const auto add = [&](const storage::Worker& w) {
      std::int64_t last_seen = w.last_seen_ms;
      if (auto caps = workers_.find(w.id); caps != workers_.end()) {
        last_seen = std::max(last_seen, caps->second->last_active_ms);
      }
      const auto trials = held.find(w.id);
      const bool online = now - last_seen <= window || trials != held.end();
      if (!online && !all) return;
      v1::Worker m;
      m.set_id(WorkerId(w.id));
      m.set_name(w.name);
      m.set_device(w.device);
      m.set_memory_bytes(w.memory_bytes);
      for (const std::string& d : w.datasets) m.add_datasets(d);
      for (const std::string& name : w.dtypes) {
        v1::DType dtype;
        if (v1::DType_Parse(name, &dtype)) m.add_dtypes(dtype);
      }
      *m.mutable_registered() = Timestamp(w.registered_ms);
      *m.mutable_last_seen() = Timestamp(last_seen);
      m.set_online(online);
      if (trials != held.end()) {
        for (std::int64_t t : trials->second) m.add_trial_ids(TrialId(t));
      }
      listed.insert(w.id);
      out.push_back(std::move(m));
    };
    for (const storage::Worker& w : stored) add(w);
    // Workers busy or active since longer than the window the query covered.
    for (const auto& [id, trials] : held) {
      if (listed.contains(id)) continue;
      PEAKNAS_ASSIGN_OR_RETURN(const storage::Worker w, store_->GetWorker(id));
      add(w);
    }
    for (const auto& [id, caps] : workers_) {
      if (listed.contains(id) || now - caps->last_active_ms > window) continue;
      PEAKNAS_ASSIGN_OR_RETURN(const storage::Worker w, store_->GetWorker(id));
      add(w);
    }
    std::sort(out.begin(), out.end(), [](const v1::Worker& a, const v1::Worker& b) {
      return ParseId(a.id(), "w-") < ParseId(b.id(), "w-");
    });
    return out;
  });
}

StatusOr<std::string> Coordinator::WorkerPrincipal(std::string_view worker_id) {
  const auto id = ParseId(worker_id, "w-");
  const auto unknown = [&] {
    return Status::NotFound("worker_id: unknown worker \"" + std::string(worker_id) + "\"");
  };
  if (!id) return unknown();
  return WithStore(false, [&]() -> StatusOr<std::string> {
    auto worker = store_->GetWorker(*id);
    if (!worker.ok() && worker.status().code() == StatusCode::kNotFound) return unknown();
    PEAKNAS_RETURN_IF_ERROR(worker.status());
    return worker->principal;
  });
}

StatusOr<std::optional<std::string>> Coordinator::LeaseHolder(std::string_view lease_id) {
  const std::optional<std::int64_t> trial_id = storage::LeaseTrialId(lease_id);
  if (!trial_id) return std::optional<std::string>();
  return WithStore(false, [&]() -> StatusOr<std::optional<std::string>> {
    auto trial = store_->GetTrial(*trial_id);
    if (!trial.ok() && trial.status().code() == StatusCode::kNotFound) {
      return std::optional<std::string>();
    }
    PEAKNAS_RETURN_IF_ERROR(trial.status());
    if (trial->lease_id != lease_id || trial->worker_id == 0) return std::optional<std::string>();
    PEAKNAS_ASSIGN_OR_RETURN(const storage::Worker worker, store_->GetWorker(trial->worker_id));
    return std::optional<std::string>(worker.principal);
  });
}

StatusOr<bool> Coordinator::HoldsLeaseInJob(std::string_view principal, std::string_view job_id) {
  const auto id = ParseId(job_id, "j-");
  if (!id) return false;
  return WithStore(false, [&]() -> StatusOr<bool> {
    PEAKNAS_ASSIGN_OR_RETURN(const std::vector<storage::Trial> trials, store_->ListTrials(*id));
    for (const storage::Trial& t : trials) {
      if (t.state != storage::TrialState::kLeased || t.worker_id == 0) continue;
      PEAKNAS_ASSIGN_OR_RETURN(const storage::Worker worker, store_->GetWorker(t.worker_id));
      if (worker.principal == principal) return true;
    }
    return false;
  });
}

StatusOr<std::string> Coordinator::RegisterWorker(const v1::RegisterWorkerRequest& request,
                                                  std::string_view principal) {
  if (request.name().empty() || request.name().size() > 200) {
    return Status::InvalidArgument("name: must be 1 to 200 characters, got " +
                                   std::to_string(request.name().size()));
  }
  if (request.device().size() > 200 || request.version().size() > 200) {
    return Status::InvalidArgument(
        std::string(request.device().size() > 200 ? "device" : "version") +
        ": at most 200 characters");
  }
  if (request.datasets_size() > kMaxWorkerDatasets) {
    return Status::InvalidArgument("datasets: " + std::to_string(request.datasets_size()) +
                                   " names; at most " + std::to_string(kMaxWorkerDatasets));
  }
  if (request.dtypes_size() > 8) {
    return Status::InvalidArgument("dtypes: " + std::to_string(request.dtypes_size()) +
                                   " entries; at most 8");
  }
  storage::Worker worker;
  worker.principal = principal;
  worker.name = request.name();
  worker.device = request.device();
  worker.memory_bytes = request.memory_bytes();
  if (worker.memory_bytes < 0) {
    return Status::InvalidArgument("memory_bytes: must be >= 0 (0 = not stated), got " +
                                   std::to_string(worker.memory_bytes));
  }
  worker.threads = request.threads();
  if (worker.threads < 0 || worker.threads > kMaxWorkerThreads) {
    return Status::InvalidArgument("threads: must be in [0, " + std::to_string(kMaxWorkerThreads) +
                                   "] (0 = not stated), got " + std::to_string(worker.threads));
  }
  for (int i = 0; i < request.datasets_size(); ++i) {
    const std::string& name = request.datasets(i);
    if (name.empty() || name.size() > 200 || name.find(',') != std::string::npos) {
      return Status::InvalidArgument(
          "datasets[" + std::to_string(i) +
          "]: a dataset name must be 1 to 200 characters, without commas; got \"" +
          name.substr(0, 200) + (name.size() > 200 ? "...\"" : "\""));
    }
    worker.datasets.push_back(name);
  }
  for (int i = 0; i < request.dtypes_size(); ++i) {
    auto dtype = proto::FromProto(request.dtypes(i), "dtypes[" + std::to_string(i) + "]");
    if (!dtype.ok()) return dtype.status();
    worker.dtypes.push_back(v1::DType_Name(request.dtypes(i)));
  }
  return WithStore(true, [&]() -> StatusOr<std::string> {
    const std::int64_t now = Now();
    if (registration_tokens_ < 0) {
      registration_tokens_ = options_.registration_burst;
      registration_refilled_ms_ = now;
    }
    registration_tokens_ = std::min<double>(
        options_.registration_burst,
        registration_tokens_ + options_.registrations_per_second *
                                   static_cast<double>(now - registration_refilled_ms_) / 1000.0);
    registration_refilled_ms_ = now;
    if (registration_tokens_ < 1) {
      char rate[32];
      std::snprintf(rate, sizeof rate, "%g", options_.registrations_per_second);
      return Status::ResourceExhausted(
          "RegisterWorker: more than " + std::to_string(options_.registration_burst) +
          " registrations at once or " + rate + " a second; try again shortly");
    }
    registration_tokens_ -= 1;
    PEAKNAS_ASSIGN_OR_RETURN(auto id, store_->RegisterWorker(worker, now));
    spdlog::info("worker {} registered: {} ({}, datasets [{}])", WorkerId(id), request.name(),
                 request.device(), fmt::join(worker.datasets, ", "));
    return WorkerId(id);
  });
}

StatusOr<Coordinator::WorkerCaps*> Coordinator::WorkerLocked(std::int64_t worker_id) {
  auto it = workers_.find(worker_id);
  if (it != workers_.end()) return it->second.get();
  PEAKNAS_ASSIGN_OR_RETURN(const storage::Worker stored, store_->GetWorker(worker_id));
  auto caps = std::make_unique<WorkerCaps>();
  caps->datasets.insert(stored.datasets.begin(), stored.datasets.end());
  caps->dtypes.insert(v1::DTYPE_FP32);
  for (const std::string& name : stored.dtypes) {
    v1::DType dtype = v1::DTYPE_UNSPECIFIED;
    if (v1::DType_Parse(name, &dtype)) caps->dtypes.insert(dtype);
  }
  caps->memory_bytes = stored.memory_bytes;
  caps->threads = stored.threads;
  caps->last_seen_ms = stored.last_seen_ms;
  return workers_.emplace(worker_id, std::move(caps)).first->second.get();
}

StatusOr<std::optional<v1::TrialAssignment>> Coordinator::TryLeaseLocked(std::int64_t worker_id,
                                                                         std::int64_t free_bytes) {
  const std::int64_t now = Now();
  const std::int64_t deadline = now + options_.lease_duration.count();
  PEAKNAS_ASSIGN_OR_RETURN(const WorkerCaps* caps, WorkerLocked(worker_id));
  const bool holds_lease =
      std::any_of(held_leases_.begin(), held_leases_.end(),
                  [&](const auto& held) { return held.second.worker_id == worker_id; });
  storage::LeaseFilter filter;
  filter.job_ids.emplace();
  std::map<std::int64_t, search::CalibrationFit> job_fits;  // packing: each calibrated job's
  for (const auto& [id, job] : jobs_) {
    if (!caps->datasets.empty() && !caps->datasets.contains(job->spec.dataset())) continue;
    if (!caps->dtypes.contains(job->spec.budget().dtype())) continue;
    if (free_bytes > 0) {
      const std::string& profile = job->spec.device_profile().empty()
                                       ? search::DefaultDeviceProfile().name
                                       : job->spec.device_profile();
      PEAKNAS_ASSIGN_OR_RETURN(const std::optional<search::CalibrationFit> fit,
                               PackingFitLocked(profile));
      if (!fit) {
        if (holds_lease) continue;  // not calibrated: its trials run alone
      } else {
        const std::int64_t largest = fit->LargestFitting(free_bytes);
        if (largest < 1) continue;  // not even the smallest fits
        filter.pass_limits.push_back(
            {.job_id = id, .max_inference_peak_bytes = largest, .max_train_peak_bytes = largest});
        job_fits.emplace(id, *fit);
      }
    }
    filter.job_ids->push_back(id);
  }
  if (filter.job_ids->empty()) return std::optional<v1::TrialAssignment>();  // nothing it can run
  filter.max_peak_bytes = caps->memory_bytes;
  filter.max_reserve_bytes = free_bytes;
  PEAKNAS_ASSIGN_OR_RETURN(auto lease,
                           store_->LeaseNextPendingTrial(filter, worker_id, now, deadline));
  if (!lease) return std::optional<v1::TrialAssignment>();
  const storage::Trial& trial = lease->trial;
  auto it = jobs_.find(trial.job_id);
  if (it == jobs_.end())
    return Status::Internal("leased a trial of job " + JobId(trial.job_id) +
                            " that is not running");
  JobRuntime* job = it->second.get();
  if (!job->running) {
    PEAKNAS_RETURN_IF_ERROR(
        store_->SetJobState(trial.job_id, storage::JobState::kRunning, "", now));
    job->running = true;
  }
  PEAKNAS_ASSIGN_OR_RETURN(auto arch, search::ParseArchitecture(trial.spec.architecture_json));
  const v1::JobSpec& spec = job->spec;
  v1::TrialAssignment a;
  a.set_lease_id(lease->lease_id);
  a.set_fencing_token(lease->fencing_token);
  a.set_job_id(JobId(trial.job_id));
  a.set_trial_id(TrialId(trial.id));
  *a.mutable_architecture() = proto::ToProto(arch);
  *a.mutable_fidelity() = spec.fidelity();
  PEAKNAS_ASSIGN_OR_RETURN(const Lineage lineage, LineageFromStored(trial.spec));
  if (lineage.steps > 0) a.mutable_fidelity()->set_steps(lineage.steps);
  if (lineage.parent_trial != 0) {
    a.set_parent_trial_id(TrialId(lineage.parent_trial));
    a.set_importance(spec.strategy() == v1::STRATEGY_PRUNING ? spec.pruning().importance()
                                                             : v1::IMPORTANCE_L1);
  }
  a.set_dataset(spec.dataset());
  a.set_batch(spec.budget().batch());
  a.set_tile(spec.budget().tile());
  a.set_dtype(spec.budget().dtype());
  a.set_seed(spec.seed() ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(trial.id)));
  a.set_device_profile(spec.device_profile());
  // A pruning trial may become a parent: its model is needed whatever the options say.
  a.set_export_model(options_.export_models || spec.strategy() == v1::STRATEGY_PRUNING ||
                     spec.inherit());
  // The frontier's 100-MP pass, timed by the worker after the trial. A packed trial times it
  // only when its largest window's calibrated peak fits the trial's reservation.
  const search::Budget& budget = job->config.budget;
  const int latency_tile =
      search::PlanHundredMegapixels(arch, budget.bytes, budget.dtype, *budget.device).plan.tile;
  a.set_latency_tile(latency_tile);
  a.set_threads(search::MostThreadsWithinBudget(budget, arch, caps->threads));
  if (auto fit = job_fits.find(trial.job_id); fit != job_fits.end()) {
    a.set_reserved_bytes(
        std::max(fit->second.Predict(std::max(trial.spec.predicted_inference_peak_bytes,
                                              trial.spec.predicted_train_peak_bytes)),
                 trial.reserve_bytes));
    if (latency_tile > 0) {
      const int window = latency_tile + 2 * search::SeamFreeOverlap(arch);
      const std::int64_t window_peak =
          search::InferencePeakBytes(arch, {1, window}, budget.dtype, *budget.device);
      if (fit->second.Predict(window_peak) > a.reserved_bytes()) a.set_latency_tile(0);
    }
  }
  *a.mutable_lease_deadline() = Timestamp(lease->deadline_ms);
  a.set_heartbeat_interval_s(static_cast<double>(options_.lease_duration.count()) / 3000.0);
  ++counters_.leases_granted;
  held_leases_[trial.id] = {.worker_id = worker_id, .granted_ms = now};
  counters_.queue_wait_seconds.Observe(
      static_cast<double>(std::max<std::int64_t>(0, now - lease->queued_ms)) / 1000.0);
  spdlog::info("trial {} of job {} leased to {} (attempt {}, token {})", TrialId(trial.id),
               JobId(trial.job_id), WorkerId(worker_id), trial.attempts, lease->fencing_token);
  v1::JobEvent event;
  auto* started = event.mutable_trial_started();
  v1::Trial* t = started->mutable_trial();
  *t = TrialProto(trial, false, /*with_architecture=*/false);
  *t->mutable_architecture() = a.architecture();
  started->set_worker_id(WorkerId(worker_id));
  started->set_attempt(trial.attempts);
  PEAKNAS_RETURN_IF_ERROR(EmitLocked(trial.job_id, std::move(event)));
  return std::optional<v1::TrialAssignment>(std::move(a));
}

StatusOr<std::optional<v1::TrialAssignment>> Coordinator::LeaseForLocked(std::string_view worker_id,
                                                                         bool touch,
                                                                         std::int64_t free_bytes) {
  const auto id = ParseId(worker_id, "w-");
  if (!id) return Status::NotFound("worker_id: unknown worker \"" + std::string(worker_id) + "\"");
  auto leased = [&]() -> StatusOr<std::optional<v1::TrialAssignment>> {
    if (touch) {
      // To the second: a worker leasing many times a second writes its row once.
      PEAKNAS_ASSIGN_OR_RETURN(WorkerCaps* const caps, WorkerLocked(*id));
      const std::int64_t now = Now();
      caps->last_active_ms = now;
      if (now - caps->last_seen_ms >= kLastSeenResolutionMs) {
        PEAKNAS_RETURN_IF_ERROR(store_->TouchWorker(*id, now));
        caps->last_seen_ms = now;
      }
    }
    return TryLeaseLocked(*id, free_bytes);
  }();
  if (!leased.ok() && leased.status().code() == StatusCode::kNotFound) {
    return Status::NotFound("worker_id: unknown worker \"" + std::string(worker_id) +
                            "\"; register again");
  }
  return leased;
}

namespace {

// INVALID_ARGUMENT unless LeaseTrialRequest.free_bytes is in [0, 2^50].
Status CheckFreeBytes(std::int64_t free_bytes) {
  if (free_bytes < 0 || free_bytes > proto::kMaxBytes) {
    return Status::InvalidArgument("free_bytes: " + std::to_string(free_bytes) +
                                   " is not in [0, 2^50] (0 = not stated)");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::optional<v1::TrialAssignment>> Coordinator::LeaseTrial(std::string_view worker_id,
                                                                     std::chrono::milliseconds wait,
                                                                     std::int64_t free_bytes) {
  if (!ParseId(worker_id, "w-")) {
    return Status::NotFound("worker_id: unknown worker \"" + std::string(worker_id) + "\"");
  }
  PEAKNAS_RETURN_IF_ERROR(CheckFreeBytes(free_bytes));
  const auto deadline = std::chrono::steady_clock::now() + std::min(wait, options_.max_lease_wait);
  std::unique_lock lock(mu_);
  bool seen = false;  // the worker's last sighting is recorded once per call
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(const GroupCommit::Turn turn, commits_.Enter(lock, true));
    auto leased = LeaseForLocked(worker_id, /*touch=*/!seen, free_bytes);
    seen = true;
    PEAKNAS_RETURN_IF_ERROR(commits_.Leave(lock, turn));
    if (!leased.ok() || leased->has_value()) return leased;
    if (shutdown_ || std::chrono::steady_clock::now() >= deadline) return leased;
    queued_.wait_until(lock, deadline);
  }
}

std::vector<StatusOr<std::optional<v1::TrialAssignment>>> Coordinator::LeaseTrials(
    const std::vector<LeaseAsk>& asks) {
  using Result = StatusOr<std::optional<v1::TrialAssignment>>;
  std::vector<Result> out;
  out.reserve(asks.size());
  if (asks.empty()) return out;
  std::unique_lock lock(mu_);
  auto turn = commits_.Enter(lock, true);
  if (!turn.ok()) return std::vector<Result>(asks.size(), turn.status());
  for (const LeaseAsk& ask : asks) {
    if (Status checked = CheckFreeBytes(ask.free_bytes); !checked.ok()) {
      out.push_back(checked);
      continue;
    }
    out.push_back(LeaseForLocked(ask.worker_id, true, ask.free_bytes));
  }
  if (Status durable = commits_.Leave(lock, *turn); !durable.ok()) {
    return std::vector<Result>(asks.size(), durable);
  }
  return out;
}

StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(const v1::HeartbeatRequest& request) {
  const std::string& lease_id = request.lease_id();
  const auto trial_id = storage::LeaseTrialId(lease_id);
  if (!trial_id) return Status::FailedPrecondition("lease_id: unknown lease \"" + lease_id + "\"");
  return WithStore(true, [&]() -> StatusOr<v1::HeartbeatResponse> {
    const std::int64_t now = Now();
    auto trial = store_->GetTrial(*trial_id);
    if (!trial.ok()) {
      return Status::FailedPrecondition("lease_id: unknown lease \"" + lease_id + "\"");
    }
    PEAKNAS_ASSIGN_OR_RETURN(auto job, store_->GetJob(trial->job_id));
    v1::HeartbeatResponse response;
    if (job.state == storage::JobState::kCancelled && trial->lease_id == lease_id &&
        trial->fencing_token == request.fencing_token()) {
      response.set_action(v1::HEARTBEAT_ACTION_CANCEL);
      return response;
    }
    const std::int64_t deadline = now + options_.lease_duration.count();
    PEAKNAS_RETURN_IF_ERROR(store_->RenewLease(lease_id, request.fencing_token(), now, deadline));
    if (request.steps() > 0) {
      v1::JobEvent event;
      auto* progress = event.mutable_trial_progress();
      progress->set_trial_id(TrialId(trial->id));
      progress->set_step(request.step());
      progress->set_steps(request.steps());
      progress->set_loss(request.loss());
      PEAKNAS_RETURN_IF_ERROR(EmitLocked(trial->job_id, std::move(event)));
    }
    response.set_action(v1::HEARTBEAT_ACTION_KEEP_GOING);
    *response.mutable_lease_deadline() = Timestamp(deadline);
    return response;
  });
}

StatusOr<bool> Coordinator::ReportResult(const v1::ReportResultRequest& request) {
  if (request.outcome_case() == v1::ReportResultRequest::OUTCOME_NOT_SET) {
    return Status::InvalidArgument("outcome: set metrics or failure");
  }
  // What a worker reports is checked before anything is read or written.
  if (request.has_metrics())
    PEAKNAS_RETURN_IF_ERROR(proto::ValidateTrialMetrics(request.metrics()));
  if (request.has_failure() && request.failure().message().size() > kMaxFailureMessage) {
    return Status::InvalidArgument(
        "failure.message: " + std::to_string(request.failure().message().size()) +
        " characters; at most " + std::to_string(kMaxFailureMessage));
  }
  const std::string& lease_id = request.lease_id();
  const auto trial_id = storage::LeaseTrialId(lease_id);
  if (!trial_id) return Status::FailedPrecondition("lease_id: unknown lease \"" + lease_id + "\"");
  return WithStore(true, [&]() -> StatusOr<bool> {
    auto trial = store_->GetTrial(*trial_id);
    if (!trial.ok()) {
      return Status::FailedPrecondition("lease_id: unknown lease \"" + lease_id + "\"");
    }
    // A repeat of a report that was already committed for this very lease: nothing to do.
    const bool final_state = trial->state == storage::TrialState::kSucceeded ||
                             trial->state == storage::TrialState::kFailed;
    if (final_state && trial->fencing_token == request.fencing_token() &&
        lease_id == std::to_string(trial->id) + "." + std::to_string(trial->fencing_token)) {
      return false;
    }
    auto it = jobs_.find(trial->job_id);
    if (it == jobs_.end()) {
      // The job has ended (cancelled): the result is too late to matter.
      return Status::FailedPrecondition("lease_id: the job " + JobId(trial->job_id) +
                                        " is no longer running");
    }
    JobRuntime& job = *it->second;
    if (request.has_failure()) {
      const v1::TrialFailure& failure = request.failure();
      std::string reason = failure.message();
      if (reason.empty()) reason = "worker failure (code " + std::to_string(failure.code()) + ")";
      const std::int64_t now = Now();
      storage::TrialState ended = storage::TrialState::kFailed;
      if (failure.retryable()) {
        // Over its reservation: the next lease reserves half as much again as it reached.
        const std::int64_t over =
            std::clamp<std::int64_t>(failure.over_reservation_bytes(), 0, proto::kMaxBytes);
        PEAKNAS_ASSIGN_OR_RETURN(ended,
                                 store_->RetryTrial(lease_id, request.fencing_token(), now, reason,
                                                    options_.max_attempts, over + (over + 1) / 2));
      } else {
        PEAKNAS_RETURN_IF_ERROR(store_->FailTrial(lease_id, request.fencing_token(), now, reason));
      }
      EndLeaseLocked(trial->id, /*reported=*/true);
      if (ended == storage::TrialState::kPending) {
        spdlog::warn("trial {} failed, will be retried: {}", TrialId(trial->id), reason);
        ++counters_.retries;
        SignalQueuedLocked();
        return true;
      }
      spdlog::warn("trial {} failed: {}", TrialId(trial->id), reason);
      ++counters_.trials_failed;
      --job.open;
      PEAKNAS_ASSIGN_OR_RETURN(const storage::Trial failed, store_->GetTrial(trial->id));
      v1::JobEvent event;
      *event.mutable_trial_finished()->mutable_trial() =
          TrialProto(failed, false, /*with_architecture=*/false);
      PEAKNAS_RETURN_IF_ERROR(EmitLocked(job.id, std::move(event)));
    } else {
      PEAKNAS_ASSIGN_OR_RETURN(bool accepted, ReportMetricsLocked(job, *trial, request));
      if (!accepted) return false;
    }
    PEAKNAS_RETURN_IF_ERROR(RefillLocked(job));
    PEAKNAS_RETURN_IF_ERROR(MaybeFinishLocked(job));
    return true;
  });
}

StatusOr<bool> Coordinator::ReportMetricsLocked(JobRuntime& job, const storage::Trial& trial,
                                                const v1::ReportResultRequest& request) {
  PEAKNAS_ASSIGN_OR_RETURN(auto arch, search::ParseArchitecture(trial.spec.architecture_json));
  const v1::TrialMetrics& m = request.metrics();
  const std::int64_t now = Now();
  const std::int64_t trial_id = trial.id;
  // The strategy's prediction, stored with the trial; computed again only for trials stored
  // before schema version 2.
  const double latency = trial.spec.predicted_latency_100mp_s > 0
                             ? trial.spec.predicted_latency_100mp_s
                             : Check(arch, job.config).latency_100mp_s;

  // The frontier with this result (AddToFront: the work is the size of the front), computed
  // before the commit and stored in the same transaction as the result.
  PEAKNAS_ASSIGN_OR_RETURN(Lineage lineage, LineageFromStored(trial.spec));
  const Evaluated fresh{.arch = arch,
                        .trial_id = trial_id,
                        .lineage = std::move(lineage),
                        .psnr = m.psnr(),
                        .peak_bytes = BudgetedPeak(job.config, trial.spec),
                        .latency_100mp_s = latency,
                        .measured_latency_100mp_s = m.tiled_100mp_s(),
                        .measured_on = m.tiled_100mp_s() > 0 ? m.device() : ""};
  const std::size_t fresh_index = job.done.size();
  const auto point_at = [&](std::size_t i) -> const Evaluated& {
    return i == fresh_index ? fresh : job.done[i];
  };
  const double noisy_psnr = std::max(job.noisy_psnr, m.noisy_psnr());
  std::vector<std::size_t> front = AddToFront(job.done, job.frontier, fresh);

  std::optional<storage::FrontierSnapshot> snapshot;
  v1::Frontier frontier;
  if (!SameMembers(front, job.frontier)) {
    std::vector<Evaluated> front_points;
    frontier.set_job_id(JobId(job.id));
    for (std::size_t i : front) {
      const Evaluated& e = point_at(i);
      front_points.push_back(e);
      auto* point = frontier.add_points();
      point->set_trial_id(TrialId(e.trial_id));
      *point->mutable_architecture() = proto::ToProto(e.arch);
      point->set_arch_hash(search::CanonicalHashHex(e.arch));
      point->set_psnr(e.psnr);
      point->set_peak_bytes(e.peak_bytes);
      point->set_latency_100mp_s(e.latency_100mp_s);
      point->set_measured_latency_100mp_s(e.measured_latency_100mp_s);
      point->set_measured_on(e.measured_on);
      if (e.lineage != Lineage{}) *point->mutable_lineage() = proto::ToProto(e.lineage);
    }
    const HypervolumeReference reference{
        .psnr = noisy_psnr,
        .peak_bytes = static_cast<double>(job.config.budget.bytes),
        .latency_100mp_s = job.spec.hypervolume_reference_latency_s()};
    snapshot =
        storage::FrontierSnapshot{.job_id = job.id,
                                  .hypervolume = NormalizedHypervolume(front_points, reference),
                                  .members_json = ToJson(frontier),
                                  .created_ms = now};
  }

  storage::TrialMetrics metrics{
      .psnr = m.psnr(),
      .ssim = m.ssim(),
      .noisy_psnr = m.noisy_psnr(),
      .measured_inference_peak_bytes = m.measured_inference_peak_bytes(),
      .measured_train_peak_bytes = m.measured_train_peak_bytes(),
      .latency_100mp_s = latency,
      .measured_latency_ms = m.latency_ms_per_tile(),
      .tiled_100mp_s = m.tiled_100mp_s(),
      .steps_per_second = m.train_steps_per_s(),
      .device = m.device(),
      .report_json = ToJson(m),
      .device_profile = m.device_profile(),
      .framework = m.framework(),
      .predicted_inference_peak_bytes = m.predicted_inference_peak_bytes(),
      .process_inference_peak_bytes = m.process_inference_peak_bytes(),
      .predicted_train_peak_bytes = m.predicted_train_peak_bytes(),
      .process_train_peak_bytes = m.process_train_peak_bytes(),
      .process_peak_bytes = m.process_peak_bytes()};
  PEAKNAS_ASSIGN_OR_RETURN(
      auto version,
      store_->CompleteTrial(request.lease_id(), request.fencing_token(), now, metrics, snapshot));
  packing_fits_.clear();  // the trial's calibration samples are in
  // Stored (the group's commit makes it durable): the in-memory state follows.
  ++counters_.trials_succeeded;
  EndLeaseLocked(trial.id, /*reported=*/true);
  if (m.measured_inference_peak_bytes() > 0 && trial.spec.predicted_inference_peak_bytes > 0) {
    counters_.peak_ratio.Observe(static_cast<double>(m.measured_inference_peak_bytes()) /
                                 static_cast<double>(trial.spec.predicted_inference_peak_bytes));
  }
  job.done.push_back(fresh);
  job.noisy_psnr = noisy_psnr;
  if (snapshot) job.frontier = std::move(front);
  --job.open;
  spdlog::info("trial {} of job {} succeeded: psnr {:.3f} dB{}", TrialId(trial_id), JobId(job.id),
               m.psnr(), version > 0 ? fmt::format(", frontier v{}", version) : "");

  v1::JobEvent finished;
  v1::Trial* t = finished.mutable_trial_finished()->mutable_trial();
  storage::Trial done = trial;
  done.state = storage::TrialState::kSucceeded;
  done.updated_ms = now;
  *t = TrialProto(done, false, /*with_architecture=*/false);
  *t->mutable_metrics() = m;
  t->set_predicted_latency_100mp_s(latency);
  PEAKNAS_RETURN_IF_ERROR(EmitLocked(job.id, std::move(finished)));
  if (snapshot) {
    v1::JobEvent changed;
    v1::Frontier* f = changed.mutable_frontier_changed()->mutable_frontier();
    *f = std::move(frontier);
    f->set_version(version);
    f->set_hypervolume(snapshot->hypervolume);
    *f->mutable_updated() = Timestamp(now);
    PEAKNAS_RETURN_IF_ERROR(EmitLocked(job.id, std::move(changed)));
  }
  return true;
}

// --- Artifacts ---

StatusOr<std::int64_t> Coordinator::CurrentLeaseLocked(std::string_view lease_id,
                                                       std::int64_t fencing_token) {
  const std::string id(lease_id);
  const auto trial_id = storage::LeaseTrialId(id);
  if (!trial_id) return Status::FailedPrecondition("lease_id: unknown lease \"" + id + "\"");
  auto trial = store_->GetTrial(*trial_id);
  if (!trial.ok()) return Status::FailedPrecondition("lease_id: unknown lease \"" + id + "\"");
  if (trial->state != storage::TrialState::kLeased || trial->lease_id != id ||
      trial->fencing_token != fencing_token) {
    return Status::FailedPrecondition("lease_id: lease \"" + id + "\" with token " +
                                      std::to_string(fencing_token) +
                                      " is not the trial's current lease");
  }
  if (trial->lease_deadline_ms < Now()) {
    return Status::FailedPrecondition("lease_id: lease \"" + id + "\" has expired");
  }
  return trial->id;
}

StatusOr<ArtifactUpload> Coordinator::BeginArtifactUpload(std::string_view lease_id,
                                                          std::int64_t fencing_token) {
  return WithStore(false, [&]() -> StatusOr<ArtifactUpload> {
    PEAKNAS_ASSIGN_OR_RETURN(std::int64_t trial_row, CurrentLeaseLocked(lease_id, fencing_token));
    PEAKNAS_ASSIGN_OR_RETURN(auto trial, store_->GetTrial(trial_row));
    ArtifactUpload upload;
    upload.lease_id = std::string(lease_id);
    upload.fencing_token = fencing_token;
    upload.trial_row = trial_row;
    upload.job_id = JobId(trial.job_id);
    upload.trial_id = TrialId(trial.id);
    upload.max_bytes = options_.max_artifact_bytes;
    if (options_.max_total_artifact_bytes > 0) {
      PEAKNAS_ASSIGN_OR_RETURN(std::int64_t stored, store_->StoredArtifactBytes());
      // The trial's own model, if it has one, is replaced by this one.
      PEAKNAS_ASSIGN_OR_RETURN(const auto own, store_->ListArtifacts(trial_row));
      if (!own.empty()) stored -= own.back().size_bytes;
      const std::int64_t left = options_.max_total_artifact_bytes - stored;
      if (left <= 0) {
        return Status::ResourceExhausted(
            "artifacts: the stored models hold " + std::to_string(stored) + " B of the " +
            std::to_string(options_.max_total_artifact_bytes) +
            " B allowed (--max-total-artifact-bytes); nothing more is kept");
      }
      upload.max_bytes = std::min(upload.max_bytes, left);
    }
    PEAKNAS_RETURN_IF_ERROR(artifacts_.Place(upload));
    return upload;
  });
}

StatusOr<v1::UploadArtifactResponse> Coordinator::CommitArtifactUpload(
    const ArtifactUpload& upload, std::int64_t size_bytes, std::string_view actual_sha256,
    std::string_view claimed_sha256) {
  return WithStore(true, [&]() -> StatusOr<v1::UploadArtifactResponse> {
    auto refuse = [&](Status status) {
      ArtifactStore::Discard(upload);
      spdlog::warn("artifact of trial {} refused: {}", upload.trial_id, status.message());
      return status;
    };
    {
      auto current = CurrentLeaseLocked(upload.lease_id, upload.fencing_token);
      if (!current.ok()) return refuse(current.status());
    }
    if (upload.max_bytes > 0 && size_bytes > upload.max_bytes) {
      return refuse(Status::ResourceExhausted("artifact: " + std::to_string(size_bytes) +
                                              " B; this upload may store at most " +
                                              std::to_string(upload.max_bytes) + " B"));
    }
    if (Status committed = artifacts_.Commit(upload, size_bytes, actual_sha256, claimed_sha256);
        !committed.ok()) {
      return refuse(committed);
    }
    PEAKNAS_RETURN_IF_ERROR(
        store_
            ->RecordArtifact(upload.trial_row, upload.final_path, size_bytes, claimed_sha256, Now())
            .status());
    spdlog::info("artifact of trial {} stored: {} ({} bytes)", upload.trial_id, upload.final_path,
                 size_bytes);
    v1::UploadArtifactResponse response;
    response.set_size(size_bytes);
    response.set_sha256(std::string(claimed_sha256));
    return response;
  });
}

StatusOr<ArtifactFile> Coordinator::GetArtifact(std::string_view job_id,
                                                std::string_view trial_id) {
  auto job = ParseId(job_id, "j-");
  auto trial = ParseId(trial_id, "t-");
  if (!job) return Status::NotFound("job_id: unknown job \"" + std::string(job_id) + "\"");
  if (!trial) return Status::NotFound("trial_id: unknown trial \"" + std::string(trial_id) + "\"");
  return WithStore(false, [&]() -> StatusOr<ArtifactFile> {
    auto stored = store_->GetTrial(*trial);
    if (!stored.ok() || stored->job_id != *job) {
      if (stored.ok() || stored.status().code() == StatusCode::kNotFound) {
        return Status::NotFound("trial_id: job " + std::string(job_id) + " has no trial \"" +
                                std::string(trial_id) + "\"");
      }
      return stored.status();
    }
    PEAKNAS_ASSIGN_OR_RETURN(auto artifacts, store_->ListArtifacts(*trial));
    if (artifacts.empty()) {
      return Status::NotFound("trial " + std::string(trial_id) + " has no artifact");
    }
    const storage::Artifact* newest = &artifacts.front();
    for (const auto& a : artifacts) {
      if (a.id > newest->id) newest = &a;
    }
    ArtifactFile out;
    out.path = newest->path;
    out.filename = TrialId(*trial) + ".pt";
    out.size_bytes = newest->size_bytes;
    out.sha256 = newest->sha256;
    return out;
  });
}

StatusOr<int> Coordinator::ExpireLeases() {
  // Called every second; a pass that releases nothing changes nothing and commits nothing.
  return WithStore(true, [&]() -> StatusOr<int> {
    PEAKNAS_ASSIGN_OR_RETURN(auto released,
                             store_->ReleaseExpiredLeases(Now(), options_.max_attempts));
    std::set<std::int64_t> touched_jobs;
    for (std::int64_t id : released.requeued) {
      spdlog::warn("trial {}: lease expired, back in the queue", TrialId(id));
      EndLeaseLocked(id, /*reported=*/false);
    }
    for (std::int64_t id : released.failed) {
      EndLeaseLocked(id, /*reported=*/false);
      PEAKNAS_ASSIGN_OR_RETURN(auto trial, store_->GetTrial(id));
      spdlog::warn("trial {}: lease expired {} times, failed", TrialId(id), trial.attempts);
      auto it = jobs_.find(trial.job_id);
      if (it == jobs_.end()) continue;
      --it->second->open;
      touched_jobs.insert(trial.job_id);
      v1::JobEvent event;
      *event.mutable_trial_finished()->mutable_trial() =
          TrialProto(trial, false, /*with_architecture=*/false);
      PEAKNAS_RETURN_IF_ERROR(EmitLocked(trial.job_id, std::move(event)));
    }
    for (std::int64_t job_id : touched_jobs) {
      auto it = jobs_.find(job_id);
      if (it == jobs_.end()) continue;
      PEAKNAS_RETURN_IF_ERROR(RefillLocked(*it->second));
      PEAKNAS_RETURN_IF_ERROR(MaybeFinishLocked(*it->second));
    }
    if (!released.requeued.empty()) SignalQueuedLocked();
    counters_.lease_expiries +=
        static_cast<std::int64_t>(released.requeued.size() + released.failed.size());
    counters_.trials_failed += static_cast<std::int64_t>(released.failed.size());
    return static_cast<int>(released.requeued.size() + released.failed.size());
  });
}

void Coordinator::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  queued_.notify_all();
  events_cv_.notify_all();
}

}  // namespace peaknas::server
