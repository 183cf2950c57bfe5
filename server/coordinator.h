// Coordinator: the search service's core (DESIGN.md, "Processes", "Search", "Protocol").
//
// It owns the Store (SQLite), one Strategy per unfinished job, and the lease bookkeeping. It
// speaks in peaknas.v1 messages but knows nothing of gRPC: server/service.cc adapts it, and
// tests drive it directly with an injected clock.
//
//   * SubmitJob validates the spec (INVALID_ARGUMENT naming the field), stores it as JSON and
//     fills the job's queue: up to `parallelism` admitted trials pending or leased at once,
//     every proposal the cost model refuses stored as a rejected trial (reason + predicted
//     bytes), until `trials` admitted trials exist.
//   * LeaseTrial hands the oldest pending trial of any unfinished job to a worker, with a lease
//     id, a fencing token and a deadline; it can wait (long-poll) until a trial is queued.
//   * Heartbeat renews a lease, or answers CANCEL when the job was cancelled.
//   * ReportResult stores the result and the job's new Pareto frontier (when it changed) in ONE
//     transaction, then refills the queue and finishes the job once all its trials are done.
//     A stale lease id or fencing token gets FAILED_PRECONDITION and changes nothing.
//   * ExpireLeases puts every lease whose deadline has passed back in the queue (or fails the
//     trial after `max_attempts` leases); the server calls it periodically.
//   * Artifacts: every assignment asks for the trained model (export_model, per
//     options.export_models). An upload is BeginArtifactUpload (checks the lease, names the
//     partial file) + the caller writing the bytes + CommitArtifactUpload (checks the lease
//     again, the size and the SHA-256, renames the partial file to
//     <artifacts_dir>/<job>/<trial>.pt atomically and records it in the store). A refused
//     upload leaves no file. GetArtifact gives the newest recorded file of a trial.
//   * Open resumes every unfinished job of the database (restart after a crash).
//   * Events: every change a watcher cares about (trial started / finished / rejected, training
//     progress from heartbeats, frontier changed, job finished) is appended to the job's event
//     log in the store, committed with the change itself; WatchEvents replays and follows it.
//   * Workers get only trials they can run: the job's dataset among the worker's datasets, the
//     job's dtype among its dtypes (fp32 always), and the trial's predicted peak (the larger of
//     inference and training) within its memory. A worker that stated no datasets or no memory
//     is not restricted by them.
//
// Group commit: every call that changes state runs at the store inside a group (one SQLite
// transaction for many calls) and returns only once the group is committed, so nothing is
// acknowledged before it is durable. While one group commits (with `synchronous = FULL`: an
// fsync), the calls that arrive wait; when it ends they all run, and the last of them commits
// them as the next group. One commit thus serves every worker that reported meanwhile. If a
// commit fails, every call of its group fails with the store's error, and the in-memory state
// (strategies, frontiers, queues) is rebuilt from the database as on a restart. The queue of
// waiting calls is server/group_commit.h.
//
// Ids on the wire: jobs "j-N", trials "t-N", workers "w-N" (N the database row id).
//
// Thread-safety: every public method is thread-safe (one mutex guards the store and the job
// state). LeaseTrial with a wait blocks only its caller; Shutdown wakes every waiter.
#ifndef PEAKNAS_SERVER_COORDINATOR_H_
#define PEAKNAS_SERVER_COORDINATOR_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "peaknas/v1/peaknas.pb.h"
#include "search/calibration.h"
#include "server/artifact_store.h"
#include "server/group_commit.h"
#include "server/histogram.h"
#include "storage/store.h"

namespace peaknas::server {

struct CoordinatorOptions {
  // How long a lease lasts without a heartbeat.
  std::chrono::milliseconds lease_duration{60'000};
  // Leases a trial may get; when the last one expires the trial fails.
  int max_attempts = 3;
  // Milliseconds since the Unix epoch; empty = the system clock. Tests inject a fake.
  std::function<std::int64_t()> clock;
  // Longest long-poll LeaseTrial honours.
  std::chrono::milliseconds max_lease_wait{30'000};
  // Proposal rounds with nothing admitted before the coordinator decides the space is
  // exhausted for now (guards against strategies that keep proposing rejected candidates).
  int max_barren_rounds = 50;
  // Whether assignments ask workers to upload the trained model (TrialAssignment.export_model).
  bool export_models = true;
  // The largest model one upload may store, and (0: no limit) the most the artifact directory
  // may hold: the newest model of every trial. An upload gets what is left, checked when it
  // begins and as it is written (uploads running at once may together pass the total by their
  // own sizes); beyond it RESOURCE_EXHAUSTED and nothing is kept.
  std::int64_t max_artifact_bytes = std::int64_t{4} << 30;
  std::int64_t max_total_artifact_bytes = 0;
  // RegisterWorker's rate limit, a token bucket: `registration_burst` at once, refilled at
  // `registrations_per_second`. Beyond it RegisterWorker is RESOURCE_EXHAUSTED and stores
  // nothing (a flood of registrations would otherwise grow the database without end).
  double registrations_per_second = 20;
  int registration_burst = 200;
  // Per tenant (a job's owner; the one tenant "" on a server without tokens): the most
  // unfinished jobs, and the most trials those jobs may ask for together (JobSpec.trials
  // summed); 0 = no limit. A submission beyond either is RESOURCE_EXHAUSTED.
  int tenant_max_jobs = 0;
  std::int64_t tenant_max_trials = 0;
};

// Counters since the coordinator opened, for /metrics, tests and benchmarks. The event counts
// are counted as the calls apply them (a call whose group then fails to commit was counted).
struct CoordinatorStats {
  std::int64_t commits = 0;  // groups committed
  std::int64_t writes = 0;   // state-changing calls those groups held
  std::int64_t failed_commits = 0;
  int waiting_for_commit = 0;  // calls waiting, now, for a running commit to end

  std::int64_t candidates_rejected = 0;  // proposals the cost model refused before training
  std::int64_t leases_granted = 0;
  std::int64_t lease_expiries = 0;  // leases whose deadline passed without a report
  std::int64_t retries = 0;         // failed trials queued again (retryable failures)
  std::int64_t trials_succeeded = 0;
  std::int64_t trials_failed = 0;
  // Measured / predicted inference peak of each successful report with both: how well the
  // cost model holds in production (the contract: at most 1).
  Histogram peak_ratio{{0.5, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0}};
  // Seconds from lease to report of each reported trial (succeeded, failed or retried), and
  // seconds each leased trial waited in the queue (since it was queued or requeued).
  Histogram trial_seconds{{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200}};
  Histogram queue_wait_seconds{{0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600}};
  // Group commits: seconds at the store (the fsync) and calls carried (GroupCommit's).
  Histogram commit_seconds, commit_size;

  // Now: workers seen (registered, asked for work, reported) within one lease duration or
  // holding a lease, and workers holding a lease.
  int workers_online = 0;
  int workers_busy = 0;
};

class Coordinator {
 public:
  // Resumes every unfinished job of `store` (the program chooses the database: peaknas-server
  // opens storage::SqliteStore; tests wrap it). Artifacts are kept under `artifacts_dir`
  // (created if absent). INTERNAL/FAILED_PRECONDITION from the store.
  static StatusOr<std::unique_ptr<Coordinator>> Open(std::unique_ptr<storage::Store> store,
                                                     const std::string& artifacts_dir,
                                                     CoordinatorOptions options = {});
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // --- Jobs. Unknown or malformed ids give NOT_FOUND.
  // INVALID_ARGUMENT naming "spec.<field>" for a bad spec; the job is stored and its queue
  // filled otherwise. The returned job has its defaults filled in. A budget in device bytes is
  // converted to allocator bytes first (v1::Budget.device_bytes); FAILED_PRECONDITION when no
  // calibration of the job's device profile has a fit for the budgeted pass.
  // The job belongs to tenant `owner` (v1::Job.owner), within its limits (options).
  StatusOr<v1::Job> SubmitJob(const v1::JobSpec& spec, std::string_view owner = "");
  // The NOT_FOUND an unknown job id gets: also the answer for another tenant's job.
  static Status UnknownJob(std::string_view job_id);
  StatusOr<v1::Job> GetJob(std::string_view job_id);
  // Newest first.
  StatusOr<std::vector<v1::Job>> ListJobs();
  // Idempotent: a finished job is returned as it is.
  StatusOr<v1::Job> CancelJob(std::string_view job_id);
  // Version 0 and no points before the first frontier.
  StatusOr<v1::Frontier> GetFrontier(std::string_view job_id);
  // Every trial of the job (rejected included) by id; `states` empty = all.
  StatusOr<std::vector<v1::Trial>> ListTrials(std::string_view job_id,
                                              const std::vector<v1::TrialState>& states = {});

  // The job's events with sequence > after_sequence (at most `limit`, oldest first). When there
  // are none yet, waits up to `wait` for one (0 = at once); empty when none came or Shutdown
  // was called. Only committed events are returned.
  StatusOr<std::vector<v1::JobEvent>> WatchEvents(std::string_view job_id,
                                                  std::int64_t after_sequence, int limit,
                                                  std::chrono::milliseconds wait);

  // Whether the job is running (not finished), from memory: no store access. False for an
  // unknown or malformed id too.
  bool IsRunning(std::string_view job_id);

  // --- Workers.
  // The workers online now (seen within one lease duration, or holding a lease), or with
  // `all` every registered worker; by id, with the trials each holds.
  StatusOr<std::vector<v1::Worker>> ListWorkers(bool all);
  // Device calibrations fitted on the newest kCalibrationSamplesPerFit samples of every device
  // profile and framework (filtered by either when not empty), by profile, then framework.
  StatusOr<std::vector<v1::Calibration>> ListCalibrations(std::string_view device_profile,
                                                          std::string_view framework);
  static constexpr int kCalibrationSamplesPerFit = 1000;
  // INVALID_ARGUMENT for a name outside 1..200 characters or a dataset name that is empty or
  // has a comma (and the other limits of RegisterWorkerRequest); RESOURCE_EXHAUSTED beyond the
  // registration rate limit (options). Returns the worker id.
  // `principal`: the token it registers with (server/auth.h), kept with the worker.
  StatusOr<std::string> RegisterWorker(const v1::RegisterWorkerRequest& request,
                                       std::string_view principal = "");
  // The token a worker registered with. NOT_FOUND for an unknown worker.
  StatusOr<std::string> WorkerPrincipal(std::string_view worker_id);
  // The token of the worker that holds lease `lease_id` now; nullopt when no trial is held
  // under that lease (the lease calls' own answer for a lost lease applies).
  StatusOr<std::optional<std::string>> LeaseHolder(std::string_view lease_id);
  // Whether a worker registered with token `principal` holds a lease on a trial of the job
  // (a worker downloads the parents' models of the trials it runs). False for an unknown job.
  StatusOr<bool> HoldsLeaseInJob(std::string_view principal, std::string_view job_id);
  // The oldest pending trial of any unfinished job the worker can run, or nullopt when none is
  // queued within `wait` (capped at options.max_lease_wait; 0 = at once). NOT_FOUND for an
  // unknown worker.
  //
  // Packing (`free_bytes` > 0: LeaseTrialRequest.free_bytes): only a trial whose calibrated
  // device peak (the "trial" pass of the newest calibration of its job's device profile, of
  // the larger of its two predicted peaks; at least the trial's reserve_bytes) is within
  // free_bytes; the assignment's reserved_bytes says how much that is. A job whose profile has
  // no such calibration yet gives trials only to a worker that holds no other lease, with
  // reserved_bytes 0.
  StatusOr<std::optional<v1::TrialAssignment>> LeaseTrial(std::string_view worker_id,
                                                          std::chrono::milliseconds wait = {},
                                                          std::int64_t free_bytes = 0);
  struct LeaseAsk {
    std::string worker_id;
    std::int64_t free_bytes = 0;  // as LeaseTrial's
  };
  // LeaseTrial without a wait for each ask in turn, all in one group commit: what parked
  // long-polls (server/parked_calls.h) ask for when trials are queued. One result per ask;
  // a failed commit fails them all.
  std::vector<StatusOr<std::optional<v1::TrialAssignment>>> LeaseTrials(
      const std::vector<LeaseAsk>& asks);
  // KEEP_GOING with the new deadline, or CANCEL when the job was cancelled.
  // FAILED_PRECONDITION for an unknown/expired lease or a stale token.
  StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  // true once committed; false for a duplicate report of an already completed lease.
  // FAILED_PRECONDITION for an expired lease or a stale token (nothing changes);
  // INVALID_ARGUMENT when neither metrics nor failure is set.
  StatusOr<bool> ReportResult(const v1::ReportResultRequest& request);

  // --- Artifacts.
  // Checks that the lease is current (FAILED_PRECONDITION otherwise, like ReportResult) and
  // creates the job's artifact directory. Nothing is written.
  StatusOr<ArtifactUpload> BeginArtifactUpload(std::string_view lease_id,
                                               std::int64_t fencing_token);
  // The caller has written `size_bytes` bytes hashing to `actual_sha256` to
  // upload.partial_path. Checks the lease again (FAILED_PRECONDITION), the file's size
  // (DATA_LOSS) and `claimed_sha256` against `actual_sha256` (DATA_LOSS; INVALID_ARGUMENT if
  // it is not 64 hex digits), then renames the file into place and records it. On any error
  // the partial file is removed. Returns the stored size and hash.
  StatusOr<v1::UploadArtifactResponse> CommitArtifactUpload(const ArtifactUpload& upload,
                                                            std::int64_t size_bytes,
                                                            std::string_view actual_sha256,
                                                            std::string_view claimed_sha256);
  // The newest artifact of the trial. NOT_FOUND for an unknown job or trial, a trial of another
  // job, or a trial without an artifact.
  StatusOr<ArtifactFile> GetArtifact(std::string_view job_id, std::string_view trial_id);

  // Releases every lease whose deadline is before the clock's now; refills and finishes the
  // affected jobs. Returns how many leases were released.
  StatusOr<int> ExpireLeases();

  // Wakes every LeaseTrial and WatchEvents waiter (they return empty) and makes later waits
  // return at once.
  void Shutdown();

  // What callers waiting without a thread of their own (server/parked_calls.h) are told,
  // instead of blocking on the coordinator's condition variables. Each is called with the
  // coordinator's lock held, by whichever call made the change: it must return quickly and
  // must not call the Coordinator.
  struct Signals {
    // Trials were queued (submitted, refilled, retried or released by an expired lease); they
    // are leasable once the call that queued them commits.
    std::function<void()> trials_queued;
    // The job's events through `sequence` are committed: WatchEvents returns them.
    std::function<void(const std::string& job_id, std::int64_t sequence)> events_published;
  };
  // Replaces the signals; set them before any call that may fire them is running.
  void SetSignals(Signals signals);

  // The longest wait LeaseTrial honours (options.max_lease_wait).
  std::chrono::milliseconds max_lease_wait() const { return options_.max_lease_wait; }

  CoordinatorStats stats();

  const std::string& artifacts_dir() const { return artifacts_.dir(); }

 private:
  struct JobRuntime;
  struct WorkerCaps;
  Coordinator(std::unique_ptr<storage::Store> store, std::string artifacts_dir,
              CoordinatorOptions options);

  // Runs `call` (returning a StatusOr or Status) as one turn at the store (commits_) and
  // returns its result once everything it wrote or read is committed; `write` for calls that
  // may change state (they open a group).
  template <typename Call>
  auto WithStore(bool write, Call&& call) -> decltype(call());
  // After each group commit (commits_' callback): publishes its events, or, when it failed,
  // rebuilds the in-memory state from the database as a restart would.
  void CommittedLocked(const Status& committed);

  std::int64_t Now() const;
  Status ResumeLocked();
  StatusOr<JobRuntime*> LoadJobLocked(std::int64_t job_id);
  // The job named by a wire id ("j-N"); NOT_FOUND naming job_id for a malformed or unknown one.
  StatusOr<storage::Job> FindJobLocked(std::string_view job_id);
  Status RefillLocked(JobRuntime& job);
  Status MaybeFinishLocked(JobRuntime& job);
  StatusOr<v1::Job> JobMessageLocked(std::int64_t job_id);
  // RESOURCE_EXHAUSTED when tenant `owner` may not add a job of `trials` trials (options).
  Status CheckTenantLimitsLocked(std::string_view owner, std::int64_t trials);
  // Fills spec->budget.bytes from budget.device_bytes (see SubmitJob).
  Status ResolveDeviceBudget(v1::JobSpec* spec);
  StatusOr<v1::Trial> TrialMessageLocked(std::int64_t trial_id, bool job_cancelled);
  StatusOr<std::optional<v1::TrialAssignment>> TryLeaseLocked(std::int64_t worker_id,
                                                              std::int64_t free_bytes);
  // TryLeaseLocked for a wire worker id, recording the worker's last sighting when `touch`.
  StatusOr<std::optional<v1::TrialAssignment>> LeaseForLocked(std::string_view worker_id,
                                                              bool touch, std::int64_t free_bytes);
  // ListCalibrations inside a store turn.
  StatusOr<std::vector<v1::Calibration>> ListCalibrationsLocked(std::string_view device_profile,
                                                                std::string_view framework);
  // The fit packing reserves by: the "trial" pass of the newest calibration of
  // `device_profile` that has a growing line for it; nullopt when there is none. Cached until
  // the next reported trial.
  StatusOr<std::optional<search::CalibrationFit>> PackingFitLocked(
      const std::string& device_profile);
  // Makes the open group's events visible to watchers (after its commit).
  void PublishLocked();
  // Wakes LeaseTrial waiters and fires signals_.trials_queued.
  void SignalQueuedLocked();
  StatusOr<WorkerCaps*> WorkerLocked(std::int64_t worker_id);
  // FAILED_PRECONDITION unless `lease_id`/`fencing_token` is the trial's current, unexpired
  // lease; returns the trial.
  StatusOr<std::int64_t> CurrentLeaseLocked(std::string_view lease_id, std::int64_t fencing_token);
  StatusOr<bool> ReportMetricsLocked(JobRuntime& job, const storage::Trial& trial,
                                     const v1::ReportResultRequest& request);
  // Appends the event to the job's log (sequence and time filled in); watchers see it once the
  // group commits.
  Status EmitLocked(std::int64_t job_id, v1::JobEvent event);
  // The job's frontier snapshot as a message (version 0 and no points before the first).
  StatusOr<v1::Frontier> FrontierMessageLocked(std::int64_t job_id);

  const ArtifactStore artifacts_;
  const CoordinatorOptions options_;

  std::mutex mu_;
  std::condition_variable queued_;  // signalled when trials are queued
  // Guarded by mu_, except that the leader of a group commit (commits_) commits it with mu_
  // released while its gate keeps every other call out.
  std::unique_ptr<storage::Store> store_;
  std::map<std::int64_t, std::unique_ptr<JobRuntime>> jobs_;  // unfinished jobs; guarded by mu_
  // Jobs finished during the current call, destroyed when it ends (MaybeFinishLocked's callers
  // still hold them); guarded by mu_.
  std::vector<std::unique_ptr<JobRuntime>> retired_;
  std::map<std::int64_t, std::unique_ptr<WorkerCaps>> workers_;  // cache; guarded by mu_
  bool shutdown_ = false;                                        // guarded by mu_
  // RegisterWorker's token bucket (options' rate and burst); guarded by mu_.
  double registration_tokens_ = -1;  // -1: full, at the first call
  std::int64_t registration_refilled_ms_ = 0;

  GroupCommit commits_;        // over store_, under mu_
  CoordinatorStats counters_;  // the event counts; guarded by mu_
  // The lease each leased trial holds, by trial id: its worker and when it was granted (for
  // stats; rebuilt from the store's leased trials when a job is loaded, with granted_ms -1:
  // not known). Guarded by mu_.
  struct HeldLease {
    std::int64_t worker_id = 0;
    std::int64_t granted_ms = -1;
  };
  std::map<std::int64_t, HeldLease> held_leases_;
  // Each job's latest frontier snapshot at a glance (JobMessageLocked), by job id: parsed
  // once per version. Guarded by mu_.
  struct FrontierSummary {
    std::int64_t version = 0;
    int size = 0;
    double best_psnr = 0;
  };
  std::map<std::int64_t, FrontierSummary> frontier_summaries_;
  // PackingFitsLocked's answers by device profile; cleared when samples are added or the state
  // is rebuilt. Guarded by mu_.
  std::map<std::string, std::optional<search::CalibrationFit>> packing_fits_;
  // Ends a trial's lease in held_leases_, observing its duration when `reported`.
  void EndLeaseLocked(std::int64_t trial_id, bool reported);

  // Event logs, guarded by mu_: the last sequence per job (loaded lazily), sequences appended
  // in the open group and not yet committed, and the committed ones watchers may see.
  std::map<std::int64_t, std::int64_t> last_sequence_;
  std::map<std::int64_t, std::int64_t> unpublished_;
  std::map<std::int64_t, std::int64_t> published_;
  // The events of the open group, by job (published with it), and the last kTailEvents
  // committed events of the kTailJobs most recent jobs: what WatchEvents serves from memory.
  static constexpr std::size_t kTailEvents = 4096;
  static constexpr std::size_t kTailJobs = 64;
  std::map<std::int64_t, std::vector<v1::JobEvent>> unpublished_events_;
  std::map<std::int64_t, std::deque<v1::JobEvent>> tails_;
  std::condition_variable events_cv_;  // published_ advanced, or Shutdown
  Signals signals_;                    // guarded by mu_
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_COORDINATOR_H_
