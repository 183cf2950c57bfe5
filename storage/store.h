// Store: the coordinator's durable state in one SQLite file (DESIGN.md, "Storage").
//
// Tables: jobs, trials (every candidate, rejected ones with reason and predicted bytes),
// workers, metrics, frontier snapshots (versioned, with hypervolume) and artifacts. The schema
// is storage/schema.sql, versioned with `PRAGMA user_version`; Open applies every known forward
// migration, each in its own transaction, and refuses a database newer than this build.
//
// Durability: WAL mode with `synchronous=NORMAL` by default. In WAL mode a commit has been
// written to the WAL file (in the OS page cache) when the call returns, so an acknowledged
// state change survives the coordinator process crashing or being SIGKILLed; it may be lost only
// if the operating system or the machine goes down before the next WAL sync. Set
// `Options::synchronous_full` to fsync the WAL on every commit and survive power loss too.
//
// Every state-changing call is one transaction (BEGIN IMMEDIATE … COMMIT); when it returns OK
// the change is committed, and when it returns an error nothing changed. Time is always an
// argument (milliseconds since the Unix epoch), never read from a clock, so tests are exact.
//
// Leases and fencing: LeaseNextPendingTrial moves a pending trial to leased, increments its
// attempts and its fencing token and gives it a fresh lease id and deadline. RenewLease and
// CompleteTrial succeed only for the current lease id and token of a leased trial whose deadline
// has not passed; otherwise they return FAILED_PRECONDITION and change nothing, so a late
// result from a presumed-dead worker can never overwrite anything.
//
// Thread-safety: a Store owns one connection and is NOT thread-safe; one owner (the
// coordinator's strand or a mutex around it) calls it. Several processes may open the same file
// (SQLite's locking, with a busy timeout), as the crash test does.
#ifndef PEAKNAS_STORAGE_STORE_H_
#define PEAKNAS_STORAGE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "search/status.h"

namespace peaknas::storage {

// The newest schema version this build knows (user_version after Open).
inline constexpr int kSchemaVersion = 1;

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
};

// A candidate as the search proposes it.
struct TrialSpec {
  std::string architecture_json;  // canonical JSON (search::ToCanonicalJson)
  std::uint64_t arch_hash = 0;    // search hash of that JSON; unique within a job
  std::int64_t predicted_inference_peak_bytes = 0;
  std::int64_t predicted_train_peak_bytes = 0;
};

struct Trial {
  std::int64_t id = 0;
  std::int64_t job_id = 0;
  TrialSpec spec;
  TrialState state = TrialState::kPending;
  std::string reason;  // rejection reason, or why it failed
  int attempts = 0;    // leases granted so far
  std::string lease_id;  // empty unless leased
  std::int64_t fencing_token = 0;
  std::int64_t lease_deadline_ms = 0;  // 0 unless leased
  std::int64_t worker_id = 0;          // 0 if never leased
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

struct Lease {
  Trial trial;  // as it is after the lease was granted
  std::string lease_id;
  std::int64_t fencing_token = 0;
  std::int64_t deadline_ms = 0;
};

struct Worker {
  std::int64_t id = 0;
  std::string name;
  std::string device;
  std::int64_t memory_bytes = 0;
  std::int64_t registered_ms = 0;
  std::int64_t last_seen_ms = 0;
};

struct TrialMetrics {
  double psnr = 0;
  double ssim = 0;
  double noisy_psnr = 0;
  std::int64_t measured_inference_peak_bytes = 0;
  std::int64_t measured_train_peak_bytes = 0;
  double latency_100mp_s = 0;      // estimated on the job's target device profile
  double measured_latency_ms = 0;  // measured on the worker's device
  double steps_per_second = 0;
  std::string device;              // the worker's device name
  std::string report_json = "{}";  // the full report, as the caller serialized it
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

// What ReleaseExpiredLeases did.
struct ReleasedLeases {
  std::vector<std::int64_t> requeued;  // back to pending
  std::vector<std::int64_t> failed;    // attempts exhausted
};

class Store {
 public:
  struct Options {
    int busy_timeout_ms = 5000;     // how long to wait for another connection's lock
    bool synchronous_full = false;  // fsync every commit (power-loss durable); see above
  };

  // Opens (creating if absent) the database at `path` and migrates it to kSchemaVersion.
  // FAILED_PRECONDITION if the file's user_version is newer than kSchemaVersion; INTERNAL if
  // SQLite fails (the message carries SQLite's).
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path, const Options& options);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The schema version of the open database (kSchemaVersion after a successful Open).
  StatusOr<int> SchemaVersion();

  // --- Jobs ---
  // A new job in state pending; returns its id.
  StatusOr<std::int64_t> CreateJob(std::string_view spec, std::int64_t now_ms);
  // NOT_FOUND for an unknown id.
  StatusOr<Job> GetJob(std::int64_t job_id);
  // All jobs, by id.
  StatusOr<std::vector<Job>> ListJobs();
  // Sets state and error (empty clears it). NOT_FOUND for an unknown id.
  Status SetJobState(std::int64_t job_id, JobState state, std::string_view error,
                     std::int64_t now_ms);

  // --- Workers ---
  StatusOr<std::int64_t> RegisterWorker(std::string_view name, std::string_view device,
                                        std::int64_t memory_bytes, std::int64_t now_ms);
  // NOT_FOUND for an unknown id.
  Status TouchWorker(std::int64_t worker_id, std::int64_t now_ms);
  StatusOr<Worker> GetWorker(std::int64_t worker_id);

  // --- Trials ---
  // A pending trial; returns its id. ALREADY_EXISTS if the job already has a trial (of any
  // state, rejected included) with this arch_hash; NOT_FOUND if the job does not exist.
  StatusOr<std::int64_t> AddTrial(std::int64_t job_id, const TrialSpec& spec,
                                  std::int64_t now_ms);
  // A trial in state rejected, never leased, with the reason (e.g. over budget). Same errors.
  StatusOr<std::int64_t> AddRejectedTrial(std::int64_t job_id, const TrialSpec& spec,
                                          std::string_view reason, std::int64_t now_ms);
  // Several trials, pending or rejected, in one transaction (one commit for a whole refill of
  // the queue); ids in order. The same errors as AddTrial; on any error nothing is added.
  struct NewTrial {
    TrialSpec spec;
    bool rejected = false;
    std::string reason;  // when rejected
  };
  StatusOr<std::vector<std::int64_t>> AddTrials(std::int64_t job_id,
                                                const std::vector<NewTrial>& trials,
                                                std::int64_t now_ms);
  // NOT_FOUND for an unknown id.
  StatusOr<Trial> GetTrial(std::int64_t trial_id);
  // All trials of a job (rejected included), by id.
  StatusOr<std::vector<Trial>> ListTrials(std::int64_t job_id);

  // Atomically leases the oldest pending trial (of `job_id`, or of any job if nullopt) whose
  // job is pending or running (not finished or cancelled) to `worker_id` until `deadline_ms`.
  // nullopt if nothing is pending. NOT_FOUND if the worker is
  // unknown; INVALID_ARGUMENT if deadline_ms <= now_ms.
  StatusOr<std::optional<Lease>> LeaseNextPendingTrial(std::optional<std::int64_t> job_id,
                                                       std::int64_t worker_id,
                                                       std::int64_t now_ms,
                                                       std::int64_t deadline_ms);
  // Extends the lease to new_deadline_ms. FAILED_PRECONDITION (nothing changed) if the lease id
  // or token is not the trial's current one, or the lease expired (deadline < now_ms).
  Status RenewLease(std::string_view lease_id, std::int64_t fencing_token, std::int64_t now_ms,
                    std::int64_t new_deadline_ms);
  // Every leased trial whose deadline is before now_ms goes back to pending, or to failed
  // (with the reason) if it has been leased max_attempts times already (max_attempts <= 1:
  // every expired trial fails).
  StatusOr<ReleasedLeases> ReleaseExpiredLeases(std::int64_t now_ms, int max_attempts);

  // Records the result of a leased trial and, if given, the job's new frontier snapshot, in
  // ONE transaction: the trial becomes succeeded, its metrics row is written, and the snapshot
  // gets the next version of its job (returned; 0 if no snapshot). FAILED_PRECONDITION, and
  // nothing changed, for a stale lease id or token or an expired lease; INVALID_ARGUMENT if
  // the snapshot names another job.
  StatusOr<std::int64_t> CompleteTrial(std::string_view lease_id, std::int64_t fencing_token,
                                       std::int64_t now_ms, const TrialMetrics& metrics,
                                       const std::optional<FrontierSnapshot>& frontier);
  // The worker reports a failure: the trial becomes failed with the reason. Same fencing rules.
  Status FailTrial(std::string_view lease_id, std::int64_t fencing_token, std::int64_t now_ms,
                   std::string_view reason);
  // NOT_FOUND if the trial has no metrics.
  StatusOr<TrialMetrics> GetMetrics(std::int64_t trial_id);

  // --- Frontier and artifacts ---
  // The highest-version snapshot of the job; nullopt if none.
  StatusOr<std::optional<FrontierSnapshot>> LatestFrontier(std::int64_t job_id);
  // NOT_FOUND if the trial does not exist. Returns the artifact id.
  StatusOr<std::int64_t> RecordArtifact(std::int64_t trial_id, std::string_view path,
                                        std::int64_t size_bytes, std::string_view sha256,
                                        std::int64_t now_ms);
  StatusOr<std::vector<Artifact>> ListArtifacts(std::int64_t trial_id);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peaknas::storage

#endif  // PEAKNAS_STORAGE_STORE_H_
