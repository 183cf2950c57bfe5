#include "storage/store.h"

#include <sqlite3.h>

#include <array>
#include <utility>

#include "storage/schema_sql.h"

namespace peaknas::storage {
namespace {

// --- Names ---------------------------------------------------------------------------------

constexpr std::array<std::string_view, 5> kJobStateNames = {"pending", "running", "succeeded",
                                                            "failed", "cancelled"};
constexpr std::array<std::string_view, 5> kTrialStateNames = {"pending", "rejected", "leased",
                                                              "succeeded", "failed"};

// --- Migrations ----------------------------------------------------------------------------

// Migration i (1-based) takes user_version i-1 to i. Append; never edit a shipped step.
struct Migration {
  int to_version;
  const char* sql;
};
const std::array<Migration, 1> kMigrations = {{{1, internal::kSchemaV1Sql}}};
static_assert(kSchemaVersion == 1, "append a migration when bumping kSchemaVersion");

// --- RAII over the C API -------------------------------------------------------------------

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + sqlite3_errstr(rc);
  if (db != nullptr) msg += " (" + std::string(sqlite3_errmsg(db)) + ")";
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return {StatusCode::kUnavailable, msg};
  return Status::Internal(std::move(msg));
}

Status Exec(sqlite3* db, const char* sql, std::string_view what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = std::string(what) + ": " + (err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    return Status::Internal(std::move(msg));
  }
  return Status::Ok();
}

// A prepared statement in use: binds by 1-based index; resets and clears bindings when it
// goes out of scope, so the statement is ready for its next use.
class Use {
 public:
  Use(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  Use& Bind(std::int64_t v) { return Check(sqlite3_bind_int64(stmt_, ++n_, v)); }
  Use& Bind(int v) { return Check(sqlite3_bind_int64(stmt_, ++n_, v)); }
  Use& Bind(double v) { return Check(sqlite3_bind_double(stmt_, ++n_, v)); }
  Use& Bind(std::string_view v) {
    return Check(sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()),
                                   SQLITE_TRANSIENT));
  }
  Use& BindNull() { return Check(sqlite3_bind_null(stmt_, ++n_)); }

  // SQLITE_ROW → true, SQLITE_DONE → false.
  StatusOr<bool> Step() {
    if (!bind_status_.ok()) return bind_status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    int xrc = sqlite3_extended_errcode(db_);
    if (xrc == SQLITE_CONSTRAINT_UNIQUE || xrc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return Status(StatusCode::kAlreadyExists, sqlite3_errmsg(db_));
    }
    if (xrc == SQLITE_CONSTRAINT_FOREIGNKEY) return Status::NotFound(sqlite3_errmsg(db_));
    return SqliteError(db_, rc, sqlite3_sql(stmt_));
  }
  // Steps a statement that returns no rows.
  Status Run() {
    auto r = Step();
    if (!r.ok()) return r.status();
    return Status::Ok();
  }

  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }

 private:
  Use& Check(int rc) {
    if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = SqliteError(db_, rc, "bind");
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int n_ = 0;
  Status bind_status_;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, so no upgrade deadlock);
// ROLLBACK in the destructor unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  Status Begin() {
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "BEGIN IMMEDIATE");
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "COMMIT");
    open_ = false;
    return Status::Ok();
  }
  ~Transaction() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  sqlite3* db_;
  bool open_ = false;
};

constexpr const char* kTrialColumns =
    "id, job_id, architecture, arch_hash, state, predicted_inference_peak_bytes, "
    "predicted_train_peak_bytes, reason, attempts, lease_id, fencing_token, lease_deadline_ms, "
    "worker_id, created_ms, updated_ms";
constexpr const char* kJobColumns = "id, spec, state, created_ms, updated_ms, error";

StatusOr<Trial> ReadTrial(const Use& u) {
  Trial t;
  t.id = u.Int(0);
  t.job_id = u.Int(1);
  t.spec.architecture_json = u.Text(2);
  t.spec.arch_hash = static_cast<std::uint64_t>(u.Int(3));
  PEAKNAS_ASSIGN_OR_RETURN(t.state, ParseTrialState(u.Text(4)));
  t.spec.predicted_inference_peak_bytes = u.Int(5);
  t.spec.predicted_train_peak_bytes = u.Int(6);
  t.reason = u.Text(7);
  t.attempts = static_cast<int>(u.Int(8));
  t.lease_id = u.Text(9);
  t.fencing_token = u.Int(10);
  t.lease_deadline_ms = u.IsNull(11) ? 0 : u.Int(11);
  t.worker_id = u.IsNull(12) ? 0 : u.Int(12);
  t.created_ms = u.Int(13);
  t.updated_ms = u.Int(14);
  return t;
}

StatusOr<Job> ReadJob(const Use& u) {
  Job j;
  j.id = u.Int(0);
  j.spec = u.Text(1);
  PEAKNAS_ASSIGN_OR_RETURN(j.state, ParseJobState(u.Text(2)));
  j.created_ms = u.Int(3);
  j.updated_ms = u.Int(4);
  j.error = u.Text(5);
  return j;
}

}  // namespace

std::string_view Name(JobState state) { return kJobStateNames[static_cast<int>(state)]; }
std::string_view Name(TrialState state) { return kTrialStateNames[static_cast<int>(state)]; }

StatusOr<JobState> ParseJobState(std::string_view name) {
  for (std::size_t i = 0; i < kJobStateNames.size(); ++i) {
    if (kJobStateNames[i] == name) return static_cast<JobState>(i);
  }
  return Status::InvalidArgument("job state: unknown '" + std::string(name) + "'");
}
StatusOr<TrialState> ParseTrialState(std::string_view name) {
  for (std::size_t i = 0; i < kTrialStateNames.size(); ++i) {
    if (kTrialStateNames[i] == name) return static_cast<TrialState>(i);
  }
  return Status::InvalidArgument("trial state: unknown '" + std::string(name) + "'");
}

// Every statement, prepared once in Open.
struct Store::Impl {
  DbPtr db;
  StmtPtr insert_job, get_job, list_jobs, set_job_state;
  StmtPtr insert_worker, touch_worker, get_worker;
  StmtPtr job_exists, insert_trial, get_trial, list_trials;
  StmtPtr next_pending_any, next_pending_job, lease_trial;
  StmtPtr trial_by_lease, renew_lease, expired_leases, requeue_trial, fail_trial;
  StmtPtr succeed_trial, insert_metrics, get_metrics;
  StmtPtr next_frontier_version, insert_frontier, latest_frontier;
  StmtPtr insert_artifact, list_artifacts;
  StmtPtr user_version;

  sqlite3* raw() const { return db.get(); }
  Use U(const StmtPtr& s) const { return Use(db.get(), s.get()); }

  Status Prepare(StmtPtr& out, const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db.get(), sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s,
                                nullptr);
    if (rc != SQLITE_OK) return SqliteError(db.get(), rc, "prepare: " + sql);
    out.reset(s);
    return Status::Ok();
  }

  Status PrepareAll() {
    const std::string tc = kTrialColumns;
    const std::string jc = kJobColumns;
    PEAKNAS_RETURN_IF_ERROR(Prepare(user_version, "PRAGMA user_version"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(insert_job,
        "INSERT INTO jobs (spec, state, created_ms, updated_ms) VALUES (?, 'pending', ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(get_job, "SELECT " + jc + " FROM jobs WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(list_jobs, "SELECT " + jc + " FROM jobs ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(set_job_state,
        "UPDATE jobs SET state = ?, error = ?, updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(insert_worker,
        "INSERT INTO workers (name, device, memory_bytes, registered_ms, last_seen_ms) "
        "VALUES (?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(touch_worker,
        "UPDATE workers SET last_seen_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(get_worker,
        "SELECT id, name, device, memory_bytes, registered_ms, last_seen_ms FROM workers "
        "WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(job_exists, "SELECT 1 FROM jobs WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(insert_trial,
        "INSERT INTO trials (job_id, architecture, arch_hash, state, "
        "predicted_inference_peak_bytes, predicted_train_peak_bytes, reason, created_ms, "
        "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(get_trial, "SELECT " + tc + " FROM trials WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(list_trials,
        "SELECT " + tc + " FROM trials WHERE job_id = ? ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(next_pending_any,
        "SELECT t.id FROM trials t JOIN jobs j ON j.id = t.job_id "
        "WHERE t.state = 'pending' AND j.state IN ('pending', 'running') "
        "ORDER BY t.id LIMIT 1"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(next_pending_job,
        "SELECT t.id FROM trials t JOIN jobs j ON j.id = t.job_id "
        "WHERE t.job_id = ? AND t.state = 'pending' AND j.state IN ('pending', 'running') "
        "ORDER BY t.id LIMIT 1"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(lease_trial,
        "UPDATE trials SET state = 'leased', attempts = attempts + 1, "
        "fencing_token = fencing_token + 1, lease_id = id || '.' || (fencing_token + 1), "
        "lease_deadline_ms = ?, worker_id = ?, updated_ms = ? "
        "WHERE id = ? AND state = 'pending'"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(trial_by_lease,
        "SELECT id, fencing_token, lease_deadline_ms FROM trials "
        "WHERE lease_id = ? AND state = 'leased'"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(renew_lease,
        "UPDATE trials SET lease_deadline_ms = ?, updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(expired_leases,
        "SELECT id, attempts FROM trials WHERE state = 'leased' AND lease_deadline_ms < ? "
        "ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(requeue_trial,
        "UPDATE trials SET state = 'pending', lease_id = NULL, lease_deadline_ms = NULL, "
        "updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(fail_trial,
        "UPDATE trials SET state = 'failed', reason = ?, lease_id = NULL, "
        "lease_deadline_ms = NULL, updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(succeed_trial,
        "UPDATE trials SET state = 'succeeded', lease_id = NULL, lease_deadline_ms = NULL, "
        "updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(insert_metrics,
        "INSERT INTO metrics (trial_id, psnr, ssim, noisy_psnr, measured_inference_peak_bytes, "
        "measured_train_peak_bytes, latency_100mp_s, measured_latency_ms, steps_per_second, "
        "device, report_json, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(get_metrics,
        "SELECT psnr, ssim, noisy_psnr, measured_inference_peak_bytes, "
        "measured_train_peak_bytes, latency_100mp_s, measured_latency_ms, steps_per_second, "
        "device, report_json FROM metrics WHERE trial_id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(next_frontier_version,
        "SELECT COALESCE(MAX(version), 0) + 1 FROM frontier_snapshots WHERE job_id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(insert_frontier,
        "INSERT INTO frontier_snapshots (job_id, version, hypervolume, members_json, "
        "created_ms) VALUES (?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(latest_frontier,
        "SELECT job_id, version, hypervolume, members_json, created_ms FROM frontier_snapshots "
        "WHERE job_id = ? ORDER BY version DESC LIMIT 1"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(insert_artifact,
        "INSERT INTO artifacts (trial_id, path, size_bytes, sha256, created_ms) "
        "VALUES (?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(list_artifacts,
        "SELECT id, trial_id, path, size_bytes, sha256, created_ms FROM artifacts "
        "WHERE trial_id = ? ORDER BY id"));
    return Status::Ok();
  }

  StatusOr<int> UserVersion() {
    Use u = U(user_version);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) return Status::Internal("PRAGMA user_version returned no row");
    return static_cast<int>(u.Int(0));
  }

  StatusOr<Trial> LoadTrial(std::int64_t id) {
    Use u = U(get_trial);
    u.Bind(id);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) return Status::NotFound("trial " + std::to_string(id));
    return ReadTrial(u);
  }

  // The trial id holding this current, unexpired lease; FAILED_PRECONDITION otherwise.
  StatusOr<std::int64_t> CheckLease(std::string_view lease_id, std::int64_t token,
                                    std::int64_t now_ms) {
    Use u = U(trial_by_lease);
    u.Bind(lease_id);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    const std::string lease(lease_id);
    if (!row) return Status::FailedPrecondition("lease " + lease + " is not current");
    if (u.Int(1) != token) {
      return Status::FailedPrecondition("lease " + lease + ": fencing token " +
                                        std::to_string(token) + " is stale (current " +
                                        std::to_string(u.Int(1)) + ")");
    }
    if (u.Int(2) < now_ms) {
      return Status::FailedPrecondition("lease " + lease + " expired at " +
                                        std::to_string(u.Int(2)) + " ms");
    }
    return u.Int(0);
  }

  StatusOr<std::int64_t> InsertTrial(std::int64_t job_id, const TrialSpec& spec,
                                     TrialState state, std::string_view reason,
                                     std::int64_t now_ms) {
    Transaction txn(raw());
    PEAKNAS_RETURN_IF_ERROR(txn.Begin());
    PEAKNAS_ASSIGN_OR_RETURN(std::int64_t id, InsertTrialRow(job_id, spec, state, reason, now_ms));
    PEAKNAS_RETURN_IF_ERROR(txn.Commit());
    return id;
  }

  // Inside the caller's transaction.
  StatusOr<std::int64_t> InsertTrialRow(std::int64_t job_id, const TrialSpec& spec,
                                        TrialState state, std::string_view reason,
                                        std::int64_t now_ms) {
    {
      Use e = U(job_exists);
      e.Bind(job_id);
      PEAKNAS_ASSIGN_OR_RETURN(bool row, e.Step());
      if (!row) return Status::NotFound("job " + std::to_string(job_id));
    }
    {
      Use u = U(insert_trial);
      u.Bind(job_id).Bind(std::string_view(spec.architecture_json))
          .Bind(static_cast<std::int64_t>(spec.arch_hash)).Bind(Name(state))
          .Bind(spec.predicted_inference_peak_bytes).Bind(spec.predicted_train_peak_bytes)
          .Bind(reason).Bind(now_ms).Bind(now_ms);
      Status s = u.Run();
      if (s.code() == StatusCode::kAlreadyExists) {
        return Status(StatusCode::kAlreadyExists,
                      "job " + std::to_string(job_id) + " already has architecture hash " +
                          std::to_string(spec.arch_hash));
      }
      PEAKNAS_RETURN_IF_ERROR(s);
    }
    return sqlite3_last_insert_rowid(raw());
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
// Impl's statements are declared after `db`, so they are finalized before it closes.
Store::~Store() = default;

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  return Open(path, Options{});
}

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, const Options& options) {
  auto impl = std::make_unique<Impl>();
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  impl->db.reset(raw);  // closed even when open failed
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "open " + path);
  sqlite3* db = raw;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  PEAKNAS_RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode = WAL", "journal_mode=WAL"));
  PEAKNAS_RETURN_IF_ERROR(Exec(
      db, options.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
      "synchronous"));
  PEAKNAS_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys = ON", "foreign_keys"));

  // Migrate: each step in its own transaction, user_version bumped inside it.
  PEAKNAS_RETURN_IF_ERROR(impl->Prepare(impl->user_version, "PRAGMA user_version"));
  PEAKNAS_ASSIGN_OR_RETURN(int version, impl->UserVersion());
  if (version > kSchemaVersion) {
    return Status::FailedPrecondition(
        path + ": database schema version " + std::to_string(version) +
        " is newer than this build knows (" + std::to_string(kSchemaVersion) +
        "); upgrade peaknas");
  }
  if (version < 0) {
    return Status::FailedPrecondition(path + ": negative schema version " +
                                      std::to_string(version));
  }
  for (const Migration& m : kMigrations) {
    if (m.to_version <= version) continue;
    Transaction txn(db);
    PEAKNAS_RETURN_IF_ERROR(txn.Begin());
    // Re-read inside the write lock: another process may have migrated meanwhile.
    PEAKNAS_ASSIGN_OR_RETURN(int current, impl->UserVersion());
    if (current >= m.to_version) continue;
    PEAKNAS_RETURN_IF_ERROR(
        Exec(db, m.sql, "migration to schema version " + std::to_string(m.to_version)));
    const std::string bump = "PRAGMA user_version = " + std::to_string(m.to_version);
    PEAKNAS_RETURN_IF_ERROR(Exec(db, bump.c_str(), "set user_version"));
    PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  }
  PEAKNAS_RETURN_IF_ERROR(impl->PrepareAll());
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

StatusOr<int> Store::SchemaVersion() { return impl_->UserVersion(); }

// --- Jobs ----------------------------------------------------------------------------------

StatusOr<std::int64_t> Store::CreateJob(std::string_view spec, std::int64_t now_ms) {
  Use u = impl_->U(impl_->insert_job);
  u.Bind(spec).Bind(now_ms).Bind(now_ms);
  PEAKNAS_RETURN_IF_ERROR(u.Run());  // a single statement is its own transaction
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_->raw()));
}

StatusOr<Job> Store::GetJob(std::int64_t job_id) {
  Use u = impl_->U(impl_->get_job);
  u.Bind(job_id);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  if (!row) return Status::NotFound("job " + std::to_string(job_id));
  return ReadJob(u);
}

StatusOr<std::vector<Job>> Store::ListJobs() {
  Use u = impl_->U(impl_->list_jobs);
  std::vector<Job> jobs;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    PEAKNAS_ASSIGN_OR_RETURN(Job j, ReadJob(u));
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Status Store::SetJobState(std::int64_t job_id, JobState state, std::string_view error,
                          std::int64_t now_ms) {
  Use u = impl_->U(impl_->set_job_state);
  u.Bind(Name(state)).Bind(error).Bind(now_ms).Bind(job_id);
  PEAKNAS_RETURN_IF_ERROR(u.Run());
  if (sqlite3_changes(impl_->raw()) == 0) return Status::NotFound("job " + std::to_string(job_id));
  return Status::Ok();
}

// --- Workers -------------------------------------------------------------------------------

StatusOr<std::int64_t> Store::RegisterWorker(std::string_view name, std::string_view device,
                                             std::int64_t memory_bytes, std::int64_t now_ms) {
  Use u = impl_->U(impl_->insert_worker);
  u.Bind(name).Bind(device).Bind(memory_bytes).Bind(now_ms).Bind(now_ms);
  PEAKNAS_RETURN_IF_ERROR(u.Run());
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_->raw()));
}

Status Store::TouchWorker(std::int64_t worker_id, std::int64_t now_ms) {
  Use u = impl_->U(impl_->touch_worker);
  u.Bind(now_ms).Bind(worker_id);
  PEAKNAS_RETURN_IF_ERROR(u.Run());
  if (sqlite3_changes(impl_->raw()) == 0) {
    return Status::NotFound("worker " + std::to_string(worker_id));
  }
  return Status::Ok();
}

StatusOr<Worker> Store::GetWorker(std::int64_t worker_id) {
  Use u = impl_->U(impl_->get_worker);
  u.Bind(worker_id);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  if (!row) return Status::NotFound("worker " + std::to_string(worker_id));
  Worker w;
  w.id = u.Int(0);
  w.name = u.Text(1);
  w.device = u.Text(2);
  w.memory_bytes = u.Int(3);
  w.registered_ms = u.Int(4);
  w.last_seen_ms = u.Int(5);
  return w;
}

// --- Trials --------------------------------------------------------------------------------

StatusOr<std::int64_t> Store::AddTrial(std::int64_t job_id, const TrialSpec& spec,
                                       std::int64_t now_ms) {
  return impl_->InsertTrial(job_id, spec, TrialState::kPending, "", now_ms);
}

StatusOr<std::int64_t> Store::AddRejectedTrial(std::int64_t job_id, const TrialSpec& spec,
                                               std::string_view reason, std::int64_t now_ms) {
  return impl_->InsertTrial(job_id, spec, TrialState::kRejected, reason, now_ms);
}

StatusOr<std::vector<std::int64_t>> Store::AddTrials(std::int64_t job_id,
                                                    const std::vector<NewTrial>& trials,
                                                    std::int64_t now_ms) {
  Transaction txn(impl_->raw());
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  std::vector<std::int64_t> ids;
  ids.reserve(trials.size());
  for (const NewTrial& t : trials) {
    PEAKNAS_ASSIGN_OR_RETURN(
        std::int64_t id,
        impl_->InsertTrialRow(job_id, t.spec, t.rejected ? TrialState::kRejected : TrialState::kPending,
                              t.reason, now_ms));
    ids.push_back(id);
  }
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return ids;
}

StatusOr<Trial> Store::GetTrial(std::int64_t trial_id) { return impl_->LoadTrial(trial_id); }

StatusOr<std::vector<Trial>> Store::ListTrials(std::int64_t job_id) {
  Use u = impl_->U(impl_->list_trials);
  u.Bind(job_id);
  std::vector<Trial> trials;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    PEAKNAS_ASSIGN_OR_RETURN(Trial t, ReadTrial(u));
    trials.push_back(std::move(t));
  }
  return trials;
}

StatusOr<std::optional<Lease>> Store::LeaseNextPendingTrial(std::optional<std::int64_t> job_id,
                                                            std::int64_t worker_id,
                                                            std::int64_t now_ms,
                                                            std::int64_t deadline_ms) {
  if (deadline_ms <= now_ms) {
    return Status::InvalidArgument("deadline_ms: " + std::to_string(deadline_ms) +
                                   " must be after now_ms " + std::to_string(now_ms));
  }
  Transaction txn(impl_->raw());
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use w = impl_->U(impl_->get_worker);
    w.Bind(worker_id);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, w.Step());
    if (!row) return Status::NotFound("worker " + std::to_string(worker_id));
  }
  std::int64_t trial_id = 0;
  {
    Use u = impl_->U(job_id ? impl_->next_pending_job : impl_->next_pending_any);
    if (job_id) u.Bind(*job_id);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) return std::optional<Lease>();
    trial_id = u.Int(0);
  }
  {
    Use u = impl_->U(impl_->lease_trial);
    u.Bind(deadline_ms).Bind(worker_id).Bind(now_ms).Bind(trial_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  PEAKNAS_ASSIGN_OR_RETURN(Trial t, impl_->LoadTrial(trial_id));
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  Lease lease;
  lease.lease_id = t.lease_id;
  lease.fencing_token = t.fencing_token;
  lease.deadline_ms = t.lease_deadline_ms;
  lease.trial = std::move(t);
  return std::optional<Lease>(std::move(lease));
}

Status Store::RenewLease(std::string_view lease_id, std::int64_t fencing_token,
                         std::int64_t now_ms, std::int64_t new_deadline_ms) {
  Transaction txn(impl_->raw());
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  PEAKNAS_ASSIGN_OR_RETURN(std::int64_t trial_id,
                           impl_->CheckLease(lease_id, fencing_token, now_ms));
  {
    Use u = impl_->U(impl_->renew_lease);
    u.Bind(new_deadline_ms).Bind(now_ms).Bind(trial_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  return txn.Commit();
}

StatusOr<ReleasedLeases> Store::ReleaseExpiredLeases(std::int64_t now_ms, int max_attempts) {
  Transaction txn(impl_->raw());
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  std::vector<std::pair<std::int64_t, int>> expired;
  {
    Use u = impl_->U(impl_->expired_leases);
    u.Bind(now_ms);
    while (true) {
      PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
      if (!row) break;
      expired.emplace_back(u.Int(0), static_cast<int>(u.Int(1)));
    }
  }
  ReleasedLeases out;
  for (const auto& [id, attempts] : expired) {
    if (attempts >= max_attempts) {
      Use u = impl_->U(impl_->fail_trial);
      const std::string reason = "lease expired " + std::to_string(attempts) +
                                 " times (max_attempts " + std::to_string(max_attempts) + ")";
      u.Bind(std::string_view(reason)).Bind(now_ms).Bind(id);
      PEAKNAS_RETURN_IF_ERROR(u.Run());
      out.failed.push_back(id);
    } else {
      Use u = impl_->U(impl_->requeue_trial);
      u.Bind(now_ms).Bind(id);
      PEAKNAS_RETURN_IF_ERROR(u.Run());
      out.requeued.push_back(id);
    }
  }
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return out;
}

StatusOr<std::int64_t> Store::CompleteTrial(std::string_view lease_id,
                                            std::int64_t fencing_token, std::int64_t now_ms,
                                            const TrialMetrics& m,
                                            const std::optional<FrontierSnapshot>& frontier) {
  Transaction txn(impl_->raw());
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  PEAKNAS_ASSIGN_OR_RETURN(std::int64_t trial_id,
                           impl_->CheckLease(lease_id, fencing_token, now_ms));
  {
    Use u = impl_->U(impl_->succeed_trial);
    u.Bind(now_ms).Bind(trial_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  {
    Use u = impl_->U(impl_->insert_metrics);
    u.Bind(trial_id).Bind(m.psnr).Bind(m.ssim).Bind(m.noisy_psnr)
        .Bind(m.measured_inference_peak_bytes).Bind(m.measured_train_peak_bytes)
        .Bind(m.latency_100mp_s).Bind(m.measured_latency_ms).Bind(m.steps_per_second)
        .Bind(std::string_view(m.device)).Bind(std::string_view(m.report_json)).Bind(now_ms);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  std::int64_t version = 0;
  if (frontier) {
    PEAKNAS_ASSIGN_OR_RETURN(Trial t, impl_->LoadTrial(trial_id));
    if (frontier->job_id != t.job_id) {
      return Status::InvalidArgument("frontier.job_id: " + std::to_string(frontier->job_id) +
                                     " is not the trial's job " + std::to_string(t.job_id));
    }
    {
      Use u = impl_->U(impl_->next_frontier_version);
      u.Bind(t.job_id);
      PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
      if (!row) return Status::Internal("next frontier version: no row");
      version = u.Int(0);
    }
    Use u = impl_->U(impl_->insert_frontier);
    u.Bind(t.job_id).Bind(version).Bind(frontier->hypervolume)
        .Bind(std::string_view(frontier->members_json)).Bind(now_ms);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return version;
}

Status Store::FailTrial(std::string_view lease_id, std::int64_t fencing_token,
                        std::int64_t now_ms, std::string_view reason) {
  Transaction txn(impl_->raw());
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  PEAKNAS_ASSIGN_OR_RETURN(std::int64_t trial_id,
                           impl_->CheckLease(lease_id, fencing_token, now_ms));
  {
    Use u = impl_->U(impl_->fail_trial);
    u.Bind(reason).Bind(now_ms).Bind(trial_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  return txn.Commit();
}

StatusOr<TrialMetrics> Store::GetMetrics(std::int64_t trial_id) {
  Use u = impl_->U(impl_->get_metrics);
  u.Bind(trial_id);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  if (!row) return Status::NotFound("metrics of trial " + std::to_string(trial_id));
  TrialMetrics m;
  m.psnr = u.Real(0);
  m.ssim = u.Real(1);
  m.noisy_psnr = u.Real(2);
  m.measured_inference_peak_bytes = u.Int(3);
  m.measured_train_peak_bytes = u.Int(4);
  m.latency_100mp_s = u.Real(5);
  m.measured_latency_ms = u.Real(6);
  m.steps_per_second = u.Real(7);
  m.device = u.Text(8);
  m.report_json = u.Text(9);
  return m;
}

// --- Frontier and artifacts ----------------------------------------------------------------

StatusOr<std::optional<FrontierSnapshot>> Store::LatestFrontier(std::int64_t job_id) {
  Use u = impl_->U(impl_->latest_frontier);
  u.Bind(job_id);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  if (!row) return std::optional<FrontierSnapshot>();
  FrontierSnapshot f;
  f.job_id = u.Int(0);
  f.version = u.Int(1);
  f.hypervolume = u.Real(2);
  f.members_json = u.Text(3);
  f.created_ms = u.Int(4);
  return std::optional<FrontierSnapshot>(std::move(f));
}

StatusOr<std::int64_t> Store::RecordArtifact(std::int64_t trial_id, std::string_view path,
                                             std::int64_t size_bytes, std::string_view sha256,
                                             std::int64_t now_ms) {
  Use u = impl_->U(impl_->insert_artifact);
  u.Bind(trial_id).Bind(path).Bind(size_bytes).Bind(sha256).Bind(now_ms);
  Status s = u.Run();
  if (s.code() == StatusCode::kNotFound) return Status::NotFound("trial " + std::to_string(trial_id));
  PEAKNAS_RETURN_IF_ERROR(s);
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_->raw()));
}

StatusOr<std::vector<Artifact>> Store::ListArtifacts(std::int64_t trial_id) {
  Use u = impl_->U(impl_->list_artifacts);
  u.Bind(trial_id);
  std::vector<Artifact> out;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    Artifact a;
    a.id = u.Int(0);
    a.trial_id = u.Int(1);
    a.path = u.Text(2);
    a.size_bytes = u.Int(3);
    a.sha256 = u.Text(4);
    a.created_ms = u.Int(5);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace peaknas::storage
