// Store: the coordinator's durable state (DESIGN.md, "Storage"), as an interface.
//
// storage/sqlite_store.h implements it on one SQLite file (WAL); the coordinator only sees this
// interface, so tests can wrap the real store (e.g. to make a commit fail) without a mock
// database. Tables: jobs, trials (every candidate, rejected ones with reason and predicted
// bytes), workers, metrics, frontier snapshots (versioned, with hypervolume) and artifacts.
//
// Atomicity: every state-changing call is atomic: when it returns OK its change is made, and
// when it returns an error nothing changed. Outside a group, each such call is its own
// transaction and is committed when it returns. Inside a group (BeginGroup … CommitGroup), calls
// are still atomic one by one (savepoints), but nothing is committed, and so nothing may be
// acknowledged to anyone, until CommitGroup returns OK; RollbackGroup undoes them all. Groups
// are how the coordinator commits many workers' results with one commit (group commit).
//
// Time is always an argument (milliseconds since the Unix epoch), never read from a clock, so
// tests are exact.
//
// Leases and fencing: LeaseNextPendingTrial moves a pending trial to leased, increments its
// attempts and its fencing token and gives it a fresh lease id and deadline. RenewLease,
// CompleteTrial, FailTrial and RetryTrial succeed only for the current lease id and token of a
// leased trial whose deadline has not passed; otherwise they return FAILED_PRECONDITION and
// change nothing, so a late result from a presumed-dead worker can never overwrite anything.
//
// Thread-safety: none required of implementations; one owner (the coordinator, under its
// mutex) calls a Store.
#ifndef PEAKNAS_STORAGE_STORE_H_
#define PEAKNAS_STORAGE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "search/calibration.h"

namespace peaknas::storage {

// The newest schema version this build knows (user_version after opening a SQLite file).
inline constexpr int kSchemaVersion = 9;

enum class JobState { kPending, kRunning, kSucceeded, kFailed, kCancelled };
enum class TrialState { kPending, kRejected, kLeased, kSucceeded, kFailed };

// "pending", "running", …; Parse* fails with INVALID_ARGUMENT on an unknown name.
std::string_view Name(JobState state);
std::string_view Name(TrialState state);
StatusOr<JobState> ParseJobState(std::string_view name);
StatusOr<TrialState> ParseTrialState(std::string_view name);

struct Job {
  std::int64_t id = 0;
  std::string spec;  // the job spec as the caller serialized it (JSON)
  JobState state = JobState::kPending;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::string error;  // why the job failed; empty otherwise
  std::string owner;  // the tenant that submitted it; '' on a server without tokens
};

// A candidate as the search proposes it.
struct TrialSpec {
  std::string architecture_json;  // canonical JSON (search::ToCanonicalJson)
  // The candidate's identity, unique within a job: search hash of that JSON for a trial trained
  // from scratch; for one that inherits weights, the caller's hash of it with its lineage.
  std::uint64_t arch_hash = 0;
  std::int64_t predicted_inference_peak_bytes = 0;
  std::int64_t predicted_train_peak_bytes = 0;
  // Seconds for one 100-megapixel image on the job's device profile (the frontier's latency
  // objective); 0 when unknown (trials stored before schema version 2).
  double predicted_latency_100mp_s = 0;
  std::int64_t parent_trial_id = 0;  // the trial whose weights it inherits; 0: none
  std::string lineage;               // where it comes from, as the caller serialized it; '' if none
  bool over_budget = false;          // admitted although over an inference budget (an ancestor)
};

struct Trial {
  std::int64_t id = 0;
  std::int64_t job_id = 0;
  TrialSpec spec;
  TrialState state = TrialState::kPending;
  std::string reason;    // rejection reason, or why it failed
  int attempts = 0;      // leases granted so far
  std::string lease_id;  // empty unless leased
  std::int64_t fencing_token = 0;
  std::int64_t lease_deadline_ms = 0;  // 0 unless leased
  std::int64_t worker_id = 0;          // 0 if never leased
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  // The least device bytes a lease reserves for it (RetryTrial raises it); 0: no floor.
  std::int64_t reserve_bytes = 0;
};

// A lease's id: "<trial id>.<fencing token>", unique across the trial's leases (the SQLite
// store composes it in its lease statement the same way).
std::string LeaseId(std::int64_t trial_id, std::int64_t fencing_token);
// The trial of a lease id; nullopt when malformed.
std::optional<std::int64_t> LeaseTrialId(std::string_view lease_id);

struct Lease {
  Trial trial;  // as it is after the lease was granted
  // When the trial was queued (added, requeued or retried): its updated_ms before the lease.
  std::int64_t queued_ms = 0;
  std::string lease_id;
  std::int64_t fencing_token = 0;
  std::int64_t deadline_ms = 0;
};

struct Worker {
  std::int64_t id = 0;
  std::string name;
  std::string device;
  std::int64_t memory_bytes = 0;      // 0 = not stated
  std::vector<std::string> datasets;  // dataset names it can map to local paths
  std::vector<std::string> dtypes;    // "fp32", "fp16", "bf16"; empty = fp32 only
  int threads = 0;                    // intra-op threads it trains with; 0 = not stated
  std::int64_t registered_ms = 0;
  std::int64_t last_seen_ms = 0;
  std::string principal;  // the token it registered with; '' on a server without tokens
};

struct TrialMetrics {
  double psnr = 0;
  double ssim = 0;
  double noisy_psnr = 0;
  std::int64_t measured_inference_peak_bytes = 0;
  std::int64_t measured_train_peak_bytes = 0;
  double latency_100mp_s = 0;      // estimated on the job's target device profile
  double measured_latency_ms = 0;  // measured on the worker's device
  double tiled_100mp_s = 0;        // the 100-MP pass measured on `device`; 0: not measured
  double steps_per_second = 0;
  std::string device;              // the worker's device name
  std::string report_json = "{}";  // the full report, as the caller serialized it
  // Device-calibration samples (search/calibration.h): the worker's cost-model profile and
  // framework, and per pass its prediction beside the process figure. A pass is stored as a
  // sample when framework is set and both its figures are positive.
  std::string device_profile;
  std::string framework;
  std::int64_t predicted_inference_peak_bytes = 0;
  std::int64_t process_inference_peak_bytes = 0;
  std::int64_t predicted_train_peak_bytes = 0;
  std::int64_t process_train_peak_bytes = 0;
  std::int64_t process_peak_bytes = 0;  // the whole trial's (pass "trial", against the larger)
};

// One stored calibration sample.
struct CalibrationSample {
  std::string device_profile;
  std::string framework;
  search::CalibratedPass pass = search::CalibratedPass::kInference;
  std::int64_t predicted_bytes = 0;
  std::int64_t device_bytes = 0;
  std::int64_t trial_id = 0;
  std::int64_t created_ms = 0;
};

struct FrontierSnapshot {
  std::int64_t job_id = 0;
  std::int64_t version = 0;  // assigned by the store: 1, 2, … per job
  double hypervolume = 0;
  std::string members_json;  // the frontier's members, as the caller serialized them
  std::int64_t created_ms = 0;
};

struct Artifact {
  std::int64_t id = 0;
  std::int64_t trial_id = 0;
  std::string path;
  std::int64_t size_bytes = 0;
  std::string sha256;  // hex
  std::int64_t created_ms = 0;
};

// Trials of a job by state (rejected included).
struct TrialCounts {
  std::int64_t pending = 0, rejected = 0, leased = 0, succeeded = 0, failed = 0;
  std::int64_t over_budget = 0;  // of the admitted ones, how many are over_budget
  std::int64_t updated_ms = 0;   // the latest updated_ms of any of the job's trials; 0 if none
};

// Which pending trials a lease may take.
struct LeaseFilter {
  // Only trials of these jobs (empty: none); nullopt = of any job.
  std::optional<std::vector<std::int64_t>> job_ids = std::nullopt;
  // Trials whose predicted peak (the larger of inference and training) exceeds this are
  // skipped; 0 = no limit.
  std::int64_t max_peak_bytes = 0;
  // Per job, limits on each pass's predicted peak (0 = no limit); jobs not listed have none.
  struct PassLimits {
    std::int64_t job_id = 0;
    std::int64_t max_inference_peak_bytes = 0;
    std::int64_t max_train_peak_bytes = 0;
  };
  std::vector<PassLimits> pass_limits = {};
  // Trials whose reserve_bytes exceeds this are skipped; 0 = no limit.
  std::int64_t max_reserve_bytes = 0;
};

// One entry of a job's event log. The payload is opaque to the store (the coordinator keeps a
// serialized peaknas.v1.JobEvent there).
struct Event {
  std::int64_t job_id = 0;
  std::int64_t sequence = 0;  // 1, 2, … per job, assigned by the caller
  std::int64_t created_ms = 0;
  std::string payload;
};

// What ReleaseExpiredLeases did.
struct ReleasedLeases {
  std::vector<std::int64_t> requeued;  // back to pending
  std::vector<std::int64_t> failed;    // attempts exhausted
};

class Store {
 public:
  virtual ~Store() = default;

  // The schema version of the open database.
  virtual StatusOr<int> SchemaVersion() = 0;

  // --- Groups (group commit; see the top of this file) ---
  // FAILED_PRECONDITION if a group is already open; UNAVAILABLE if the write lock cannot be
  // had (another process holds it).
  virtual Status BeginGroup() = 0;
  // Commits every change made since BeginGroup. On an error the group is rolled back (nothing
  // of it is kept) and closed.
  virtual Status CommitGroup() = 0;
  // Undoes every change since BeginGroup and closes the group; nothing if none is open.
  virtual void RollbackGroup() = 0;
  // Rows changed through this store so far, monotonic (a change later rolled back still
  // counts). A caller compares it before and after a call to learn whether the call wrote.
  virtual std::int64_t ChangeCount() = 0;

  // --- Jobs ---
  // A new job in state pending, of tenant `owner`; returns its id.
  virtual StatusOr<std::int64_t> CreateJob(std::string_view spec, std::string_view owner,
                                           std::int64_t now_ms) = 0;
  StatusOr<std::int64_t> CreateJob(std::string_view spec, std::int64_t now_ms) {
    return CreateJob(spec, "", now_ms);
  }
  // NOT_FOUND for an unknown id.
  virtual StatusOr<Job> GetJob(std::int64_t job_id) = 0;
  // All jobs, by id.
  virtual StatusOr<std::vector<Job>> ListJobs() = 0;
  // Sets state and error (empty clears it). NOT_FOUND for an unknown id.
  virtual Status SetJobState(std::int64_t job_id, JobState state, std::string_view error,
                             std::int64_t now_ms) = 0;

  // --- Workers ---
  // `worker.id`, `registered_ms` and `last_seen_ms` are ignored; returns the new id.
  virtual StatusOr<std::int64_t> RegisterWorker(const Worker& worker, std::int64_t now_ms) = 0;
  // NOT_FOUND for an unknown id.
  virtual Status TouchWorker(std::int64_t worker_id, std::int64_t now_ms) = 0;
  virtual StatusOr<Worker> GetWorker(std::int64_t worker_id) = 0;
  // Workers whose stored last_seen_ms is >= seen_since_ms (0: every registered one), by id.
  virtual StatusOr<std::vector<Worker>> ListWorkers(std::int64_t seen_since_ms) = 0;

  // --- Trials ---
  // Several trials, pending or rejected (with the reason, e.g. over budget; never leased), in
  // one transaction; ids in order. ALREADY_EXISTS if the job already has a trial (of any
  // state, rejected included) with one of the arch hashes, NOT_FOUND if the job does not
  // exist; on any error nothing is added.
  struct NewTrial {
    TrialSpec spec;
    bool rejected = false;
    std::string reason;  // when rejected
  };
  virtual StatusOr<std::vector<std::int64_t>> AddTrials(std::int64_t job_id,
                                                        const std::vector<NewTrial>& trials,
                                                        std::int64_t now_ms) = 0;
  // NOT_FOUND for an unknown id.
  virtual StatusOr<Trial> GetTrial(std::int64_t trial_id) = 0;
  // All trials of a job (rejected included), by id.
  virtual StatusOr<std::vector<Trial>> ListTrials(std::int64_t job_id) = 0;
  // How many trials of the job are in each state, without reading them.
  virtual StatusOr<TrialCounts> CountTrials(std::int64_t job_id) = 0;

  // Atomically leases the oldest pending trial that `filter` allows, of a job that is pending
  // or running (not finished or cancelled), to `worker_id` until `deadline_ms`. nullopt if
  // there is none. NOT_FOUND if the worker is unknown; INVALID_ARGUMENT if
  // deadline_ms <= now_ms.
  virtual StatusOr<std::optional<Lease>> LeaseNextPendingTrial(const LeaseFilter& filter,
                                                               std::int64_t worker_id,
                                                               std::int64_t now_ms,
                                                               std::int64_t deadline_ms) = 0;
  // Extends the lease to new_deadline_ms. FAILED_PRECONDITION (nothing changed) if the lease id
  // or token is not the trial's current one, or the lease expired (deadline < now_ms).
  virtual Status RenewLease(std::string_view lease_id, std::int64_t fencing_token,
                            std::int64_t now_ms, std::int64_t new_deadline_ms) = 0;
  // Every leased trial whose deadline is before now_ms goes back to pending, or to failed
  // (with the reason) if it has been leased max_attempts times already (max_attempts <= 1:
  // every expired trial fails).
  virtual StatusOr<ReleasedLeases> ReleaseExpiredLeases(std::int64_t now_ms, int max_attempts) = 0;

  // Records the result of a leased trial and, if given, the job's new frontier snapshot, in
  // ONE transaction: the trial becomes succeeded, its metrics row is written, and the snapshot
  // gets the next version of its job (returned; 0 if no snapshot). FAILED_PRECONDITION, and
  // nothing changed, for a stale lease id or token or an expired lease; INVALID_ARGUMENT if
  // the snapshot names another job.
  virtual StatusOr<std::int64_t> CompleteTrial(std::string_view lease_id,
                                               std::int64_t fencing_token, std::int64_t now_ms,
                                               const TrialMetrics& metrics,
                                               const std::optional<FrontierSnapshot>& frontier) = 0;
  // The worker reports a failure: the trial becomes failed with the reason. Same fencing rules.
  virtual Status FailTrial(std::string_view lease_id, std::int64_t fencing_token,
                           std::int64_t now_ms, std::string_view reason) = 0;
  // The worker reports a failure worth another try: the trial goes back to pending with the
  // reason, or fails with it when it has been leased max_attempts times. Returns the state it
  // ends in (kPending or kFailed). Its reserve_bytes becomes at least `reserve_bytes`. Same
  // fencing rules.
  virtual StatusOr<TrialState> RetryTrial(std::string_view lease_id, std::int64_t fencing_token,
                                          std::int64_t now_ms, std::string_view reason,
                                          int max_attempts, std::int64_t reserve_bytes = 0) = 0;
  // NOT_FOUND if the trial has no metrics.
  virtual StatusOr<TrialMetrics> GetMetrics(std::int64_t trial_id) = 0;
  // The newest `per_key` samples of every (device_profile, framework, pass), ordered by those
  // three, then newest first.
  virtual StatusOr<std::vector<CalibrationSample>> ListCalibrationSamples(int per_key) = 0;

  // --- Events ---
  // Appends to the job's log. ALREADY_EXISTS if the job already has that sequence number,
  // NOT_FOUND if the job does not exist.
  virtual Status AppendEvent(const Event& event) = 0;
  // Events of the job with sequence > after_sequence, oldest first, at most `limit`.
  virtual StatusOr<std::vector<Event>> ListEvents(std::int64_t job_id, std::int64_t after_sequence,
                                                  int limit) = 0;
  // The job's highest sequence number; 0 if it has no events.
  virtual StatusOr<std::int64_t> LastEventSequence(std::int64_t job_id) = 0;

  // --- Frontier and artifacts ---
  // The highest-version snapshot of the job; nullopt if none.
  virtual StatusOr<std::optional<FrontierSnapshot>> LatestFrontier(std::int64_t job_id) = 0;
  // NOT_FOUND if the trial does not exist. Returns the artifact id.
  virtual StatusOr<std::int64_t> RecordArtifact(std::int64_t trial_id, std::string_view path,
                                                std::int64_t size_bytes, std::string_view sha256,
                                                std::int64_t now_ms) = 0;
  virtual StatusOr<std::vector<Artifact>> ListArtifacts(std::int64_t trial_id) = 0;
  // The bytes of the newest artifact of every trial (what the artifact directory holds).
  virtual StatusOr<std::int64_t> StoredArtifactBytes() = 0;
};

}  // namespace peaknas::storage

#endif  // PEAKNAS_STORAGE_STORE_H_
