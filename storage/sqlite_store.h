// SqliteStore: the Store on one SQLite file (DESIGN.md, "Storage").
//
// The schema is storage/schema.sql (one file: every migration in order), versioned with
// `PRAGMA user_version`; Open applies every forward migration the file lacks, each in its own
// transaction, and refuses a database newer than this build. Statements are prepared once, in
// Open.
//
// Durability: WAL mode. With `synchronous = FULL` (the default) every commit fsyncs the WAL, so
// an acknowledged change survives power loss; the coordinator commits in groups, so one fsync
// serves many workers. With `synchronous = NORMAL` a commit is in the OS page cache when it
// returns: it survives the process crashing or being SIGKILLed, but not the machine going down
// before the next checkpoint.
//
// Groups map to one SQLite transaction (BEGIN IMMEDIATE … COMMIT), each call inside to a
// savepoint. If SQLite abandons the group's transaction on its own (an I/O error, a full disk),
// every later call fails with INTERNAL until the group is rolled back: nothing is silently
// committed outside the group.
//
// Several processes may open the same file (SQLite's locking, with a busy timeout), as the
// crash tests do.
#ifndef PEAKNAS_STORAGE_SQLITE_STORE_H_
#define PEAKNAS_STORAGE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "storage/store.h"

namespace peaknas::storage {

enum class Synchronous { kNormal, kFull };

class SqliteStore final : public Store {
 public:
  struct Options {
    int busy_timeout_ms = 5000;  // how long to wait for another connection's lock
    Synchronous synchronous = Synchronous::kFull;
    std::string vfs;  // SQLite VFS name; empty = the default (tests simulate power loss)
  };

  // Opens (creating if absent) the database at `path` and migrates it to kSchemaVersion.
  // FAILED_PRECONDITION if the file's user_version is newer than kSchemaVersion; INTERNAL if
  // SQLite fails (the message carries SQLite's).
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                     const Options& options);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  StatusOr<int> SchemaVersion() override;
  // Commits (write transactions) since Open; a group counts once.
  std::int64_t commits() const;

  Status BeginGroup() override;
  Status CommitGroup() override;
  void RollbackGroup() override;
  std::int64_t ChangeCount() override;

  using Store::CreateJob;
  StatusOr<std::int64_t> CreateJob(std::string_view spec, std::string_view owner,
                                   std::int64_t now_ms) override;
  StatusOr<Job> GetJob(std::int64_t job_id) override;
  StatusOr<std::vector<Job>> ListJobs() override;
  Status SetJobState(std::int64_t job_id, JobState state, std::string_view error,
                     std::int64_t now_ms) override;

  StatusOr<std::int64_t> RegisterWorker(const Worker& worker, std::int64_t now_ms) override;
  Status TouchWorker(std::int64_t worker_id, std::int64_t now_ms) override;
  StatusOr<Worker> GetWorker(std::int64_t worker_id) override;
  StatusOr<std::vector<Worker>> ListWorkers(std::int64_t seen_since_ms) override;

  StatusOr<std::vector<std::int64_t>> AddTrials(std::int64_t job_id,
                                                const std::vector<NewTrial>& trials,
                                                std::int64_t now_ms) override;
  StatusOr<Trial> GetTrial(std::int64_t trial_id) override;
  StatusOr<std::vector<Trial>> ListTrials(std::int64_t job_id) override;
  StatusOr<TrialCounts> CountTrials(std::int64_t job_id) override;
  StatusOr<std::optional<Lease>> LeaseNextPendingTrial(const LeaseFilter& filter,
                                                       std::int64_t worker_id, std::int64_t now_ms,
                                                       std::int64_t deadline_ms) override;
  Status RenewLease(std::string_view lease_id, std::int64_t fencing_token, std::int64_t now_ms,
                    std::int64_t new_deadline_ms) override;
  StatusOr<ReleasedLeases> ReleaseExpiredLeases(std::int64_t now_ms, int max_attempts) override;
  StatusOr<std::int64_t> CompleteTrial(std::string_view lease_id, std::int64_t fencing_token,
                                       std::int64_t now_ms, const TrialMetrics& metrics,
                                       const std::optional<FrontierSnapshot>& frontier) override;
  Status FailTrial(std::string_view lease_id, std::int64_t fencing_token, std::int64_t now_ms,
                   std::string_view reason) override;
  StatusOr<TrialState> RetryTrial(std::string_view lease_id, std::int64_t fencing_token,
                                  std::int64_t now_ms, std::string_view reason, int max_attempts,
                                  std::int64_t reserve_bytes = 0) override;
  StatusOr<TrialMetrics> GetMetrics(std::int64_t trial_id) override;
  StatusOr<std::vector<CalibrationSample>> ListCalibrationSamples(int per_key) override;

  Status AppendEvent(const Event& event) override;
  StatusOr<std::vector<Event>> ListEvents(std::int64_t job_id, std::int64_t after_sequence,
                                          int limit) override;
  StatusOr<std::int64_t> LastEventSequence(std::int64_t job_id) override;

  StatusOr<std::optional<FrontierSnapshot>> LatestFrontier(std::int64_t job_id) override;
  StatusOr<std::int64_t> RecordArtifact(std::int64_t trial_id, std::string_view path,
                                        std::int64_t size_bytes, std::string_view sha256,
                                        std::int64_t now_ms) override;
  StatusOr<std::vector<Artifact>> ListArtifacts(std::int64_t trial_id) override;
  StatusOr<std::int64_t> StoredArtifactBytes() override;

 private:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peaknas::storage

#endif  // PEAKNAS_STORAGE_SQLITE_STORE_H_
