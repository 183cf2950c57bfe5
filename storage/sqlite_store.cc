#include "storage/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <tuple>
#include <utility>

#include "storage/schema_sql.h"

namespace peaknas::storage {
namespace {

// --- Migrations ----------------------------------------------------------------------------

// schema.sql split at its "-- @migration N" lines: step i (0-based) takes user_version i to
// i+1. INTERNAL if the steps are not numbered 1, 2, … kSchemaVersion.
StatusOr<std::vector<std::string>> Migrations() {
  constexpr std::string_view kMarker = "\n-- @migration ";
  const std::string_view all = internal::kSchemaSql;
  std::vector<std::string> steps;
  std::size_t at = all.find(kMarker);
  while (at != std::string_view::npos) {
    const std::size_t number = at + kMarker.size();
    int n = 0;
    auto [end, ec] = std::from_chars(all.data() + number, all.data() + all.size(), n);
    if (ec != std::errc() || n != static_cast<int>(steps.size()) + 1) {
      return Status::Internal("schema.sql: migration markers must count 1, 2, ...");
    }
    const std::size_t body = static_cast<std::size_t>(end - all.data());
    const std::size_t next = all.find(kMarker, body);
    steps.emplace_back(
        all.substr(body, next == std::string_view::npos ? all.size() - body : next - body));
    at = next;
  }
  if (static_cast<int>(steps.size()) != kSchemaVersion) {
    return Status::Internal("schema.sql has " + std::to_string(steps.size()) +
                            " migrations; this build expects " + std::to_string(kSchemaVersion));
  }
  return steps;
}

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
    return Check(
        sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Use& BindBlob(std::string_view v) {
    return Check(
        sqlite3_bind_blob(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
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
  std::string Blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
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

// The connection and its transaction state, shared by Transaction and the group calls.
struct Connection {
  sqlite3* db = nullptr;
  bool in_group = false;
  std::int64_t commits = 0;  // write transactions committed (a group counts once)

  // INTERNAL when a group is open but SQLite has abandoned its transaction (an I/O error or a
  // full disk rolls the whole transaction back): nothing may then run outside the group.
  Status CheckGroup() const {
    if (in_group && sqlite3_get_autocommit(db) != 0) {
      return Status::Internal(
          "the group's transaction was rolled back by SQLite after an error; roll it back");
    }
    return Status::Ok();
  }
};

// One atomic call. Outside a group: BEGIN IMMEDIATE … COMMIT (the write lock is taken up front,
// so two processes never deadlock upgrading). Inside a group: SAVEPOINT … RELEASE, so a failing
// call undoes only itself. Rolled back in the destructor unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Connection& c) : c_(c) {}
  Status Begin() {
    PEAKNAS_RETURN_IF_ERROR(c_.CheckGroup());
    savepoint_ = c_.in_group;
    const char* sql = savepoint_ ? "SAVEPOINT call" : "BEGIN IMMEDIATE";
    int rc = sqlite3_exec(c_.db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(c_.db, rc, sql);
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    const char* sql = savepoint_ ? "RELEASE call" : "COMMIT";
    int rc = sqlite3_exec(c_.db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(c_.db, rc, sql);
    open_ = false;
    if (!savepoint_) ++c_.commits;
    return Status::Ok();
  }
  ~Transaction() {
    if (!open_) return;
    if (!savepoint_) {
      sqlite3_exec(c_.db, "ROLLBACK", nullptr, nullptr, nullptr);
    } else if (sqlite3_get_autocommit(c_.db) == 0) {
      sqlite3_exec(c_.db, "ROLLBACK TO call; RELEASE call", nullptr, nullptr, nullptr);
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  Connection& c_;
  bool open_ = false;
  bool savepoint_ = false;
};

constexpr const char* kTrialColumns =
    "id, job_id, architecture, arch_hash, state, predicted_inference_peak_bytes, "
    "predicted_train_peak_bytes, reason, attempts, lease_id, fencing_token, lease_deadline_ms, "
    "worker_id, created_ms, updated_ms, predicted_latency_100mp_s, parent_trial_id, lineage, "
    "over_budget, reserve_bytes";
constexpr const char* kJobColumns = "id, spec, state, created_ms, updated_ms, error, owner";

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
  t.spec.predicted_latency_100mp_s = u.Real(15);
  t.spec.parent_trial_id = u.IsNull(16) ? 0 : u.Int(16);
  t.spec.lineage = u.Text(17);
  t.spec.over_budget = u.Int(18) != 0;
  t.reserve_bytes = u.Int(19);
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
  j.owner = u.Text(6);
  return j;
}

}  // namespace

// Every statement, prepared once in Open.
struct SqliteStore::Impl {
  DbPtr db;
  Connection conn;
  StmtPtr insert_job, get_job, list_jobs, set_job_state;
  StmtPtr insert_worker, touch_worker, get_worker;
  StmtPtr list_workers;
  StmtPtr job_exists, insert_trial, get_trial, list_trials, count_trials;
  StmtPtr next_pending, lease_trial;
  StmtPtr trial_by_lease, renew_lease, expired_leases, requeue_trial, retry_trial, fail_trial;
  StmtPtr succeed_trial, insert_metrics, get_metrics, insert_calibration_sample,
      list_calibration_samples;
  StmtPtr next_frontier_version, insert_frontier, latest_frontier;
  StmtPtr insert_artifact, list_artifacts, stored_artifact_bytes;
  StmtPtr insert_event, list_events, last_event;
  StmtPtr user_version;

  sqlite3* raw() const { return db.get(); }
  Use U(const StmtPtr& s) const { return Use(db.get(), s.get()); }

  Status Prepare(StmtPtr& out, const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db.get(), sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db.get(), rc, "prepare: " + sql);
    out.reset(s);
    return Status::Ok();
  }

  Status PrepareAll() {
    const std::string tc = kTrialColumns;
    const std::string jc = kJobColumns;
    PEAKNAS_RETURN_IF_ERROR(Prepare(user_version, "PRAGMA user_version"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(insert_job,
                                    "INSERT INTO jobs (spec, state, created_ms, updated_ms, owner) "
                                    "VALUES (?, 'pending', ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(get_job, "SELECT " + jc + " FROM jobs WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(list_jobs, "SELECT " + jc + " FROM jobs ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        set_job_state, "UPDATE jobs SET state = ?, error = ?, updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(insert_worker,
                "INSERT INTO workers (name, device, memory_bytes, datasets, dtypes, registered_ms, "
                "last_seen_ms, principal, threads) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(touch_worker, "UPDATE workers SET last_seen_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        get_worker,
        "SELECT id, name, device, memory_bytes, registered_ms, last_seen_ms, datasets, dtypes, "
        "principal, threads FROM workers WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        list_workers,
        "SELECT id, name, device, memory_bytes, registered_ms, last_seen_ms, datasets, dtypes, "
        "principal, threads FROM workers WHERE last_seen_ms >= ? ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(job_exists, "SELECT 1 FROM jobs WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        insert_trial,
        "INSERT INTO trials (job_id, architecture, arch_hash, state, "
        "predicted_inference_peak_bytes, predicted_train_peak_bytes, predicted_latency_100mp_s, "
        "reason, created_ms, updated_ms, parent_trial_id, lineage, over_budget) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, 0), ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(get_trial, "SELECT " + tc + " FROM trials WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(list_trials, "SELECT " + tc + " FROM trials WHERE job_id = ? ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        count_trials,
        "SELECT state, n, updated_ms, over_budget FROM trial_counts WHERE job_id = ? AND n > 0"));
    // ?1: the allowed job ids as a JSON array, NULL = any; ?2: the peak limit, 0 = none.
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        next_pending,
        "SELECT t.id, t.updated_ms FROM trials t JOIN jobs j ON j.id = t.job_id "
        "WHERE t.state = 'pending' AND j.state IN ('pending', 'running') "
        "AND (?1 IS NULL OR t.job_id IN (SELECT value FROM json_each(?1))) "
        "AND (?2 = 0 OR MAX(t.predicted_inference_peak_bytes, t.predicted_train_peak_bytes) <= ?2) "
        "AND (?4 = 0 OR t.reserve_bytes <= ?4) "
        "AND NOT EXISTS (SELECT 1 FROM json_each(?3) l WHERE l.value ->> 0 = t.job_id AND ("
        "  (l.value ->> 1 > 0 AND t.predicted_inference_peak_bytes > l.value ->> 1) OR "
        "  (l.value ->> 2 > 0 AND t.predicted_train_peak_bytes > l.value ->> 2))) "
        "ORDER BY t.id LIMIT 1"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(lease_trial,
                "UPDATE trials SET state = 'leased', attempts = attempts + 1, "
                "fencing_token = fencing_token + 1, lease_id = id || '.' || (fencing_token + 1), "
                "lease_deadline_ms = ?, worker_id = ?, updated_ms = ? "
                "WHERE id = ? AND state = 'pending'"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(trial_by_lease,
                                    "SELECT id, fencing_token, lease_deadline_ms FROM trials "
                                    "WHERE lease_id = ? AND state = 'leased'"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        renew_lease, "UPDATE trials SET lease_deadline_ms = ?, updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(expired_leases,
                "SELECT id, attempts FROM trials WHERE state = 'leased' AND lease_deadline_ms < ? "
                "ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(requeue_trial,
                "UPDATE trials SET state = 'pending', lease_id = NULL, lease_deadline_ms = NULL, "
                "updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(retry_trial,
                "UPDATE trials SET state = 'pending', reason = ?, lease_id = NULL, "
                "lease_deadline_ms = NULL, updated_ms = ?, reserve_bytes = MAX(reserve_bytes, ?) "
                "WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(fail_trial,
                "UPDATE trials SET state = 'failed', reason = ?, lease_id = NULL, "
                "lease_deadline_ms = NULL, updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(succeed_trial,
                "UPDATE trials SET state = 'succeeded', lease_id = NULL, lease_deadline_ms = NULL, "
                "updated_ms = ? WHERE id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        insert_metrics,
        "INSERT INTO metrics (trial_id, psnr, ssim, noisy_psnr, measured_inference_peak_bytes, "
        "measured_train_peak_bytes, latency_100mp_s, measured_latency_ms, steps_per_second, "
        "device, report_json, created_ms, tiled_100mp_s) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        get_metrics,
        "SELECT psnr, ssim, noisy_psnr, measured_inference_peak_bytes, "
        "measured_train_peak_bytes, latency_100mp_s, measured_latency_ms, steps_per_second, "
        "device, report_json, tiled_100mp_s FROM metrics WHERE trial_id = ?"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        insert_calibration_sample,
        "INSERT INTO calibration_samples (device_profile, framework, pass, "
        "predicted_bytes, device_bytes, trial_id, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        list_calibration_samples,
        "SELECT device_profile, framework, pass, predicted_bytes, device_bytes, trial_id, "
        "created_ms FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY device_profile, framework, "
        "pass ORDER BY id DESC) AS newest FROM calibration_samples) WHERE newest <= ? "
        "ORDER BY device_profile, framework, pass, id DESC"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(next_frontier_version,
                "SELECT COALESCE(MAX(version), 0) + 1 FROM frontier_snapshots WHERE job_id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(insert_frontier,
                "INSERT INTO frontier_snapshots (job_id, version, hypervolume, members_json, "
                "created_ms) VALUES (?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(
        latest_frontier,
        "SELECT job_id, version, hypervolume, members_json, created_ms FROM frontier_snapshots "
        "WHERE job_id = ? ORDER BY version DESC LIMIT 1"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(insert_event,
                "INSERT INTO events (job_id, sequence, created_ms, event) VALUES (?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(Prepare(list_events,
                                    "SELECT job_id, sequence, created_ms, event FROM events "
                                    "WHERE job_id = ? AND sequence > ? ORDER BY sequence LIMIT ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(last_event, "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE job_id = ?"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(insert_artifact,
                "INSERT INTO artifacts (trial_id, path, size_bytes, sha256, created_ms) "
                "VALUES (?, ?, ?, ?, ?)"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(list_artifacts,
                "SELECT id, trial_id, path, size_bytes, sha256, created_ms FROM artifacts "
                "WHERE trial_id = ? ORDER BY id"));
    PEAKNAS_RETURN_IF_ERROR(
        Prepare(stored_artifact_bytes,
                "SELECT COALESCE(SUM(size_bytes), 0) FROM artifacts a "
                "WHERE a.id = (SELECT MAX(b.id) FROM artifacts b WHERE b.trial_id = a.trial_id)"));
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
      u.Bind(job_id)
          .Bind(std::string_view(spec.architecture_json))
          .Bind(static_cast<std::int64_t>(spec.arch_hash))
          .Bind(Name(state))
          .Bind(spec.predicted_inference_peak_bytes)
          .Bind(spec.predicted_train_peak_bytes)
          .Bind(spec.predicted_latency_100mp_s)
          .Bind(reason)
          .Bind(now_ms)
          .Bind(now_ms)
          .Bind(spec.parent_trial_id)
          .Bind(std::string_view(spec.lineage))
          .Bind(spec.over_budget ? 1 : 0);
      Status s = u.Run();
      if (s.code() == StatusCode::kAlreadyExists) {
        return Status(StatusCode::kAlreadyExists, "job " + std::to_string(job_id) +
                                                      " already has candidate hash " +
                                                      std::to_string(spec.arch_hash));
      }
      PEAKNAS_RETURN_IF_ERROR(s);
    }
    return sqlite3_last_insert_rowid(raw());
  }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
// Impl's statements are declared after `db`, so they are finalized before it closes.
SqliteStore::~SqliteStore() = default;

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  return Open(path, Options{});
}

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                         const Options& options) {
  PEAKNAS_ASSIGN_OR_RETURN(const std::vector<std::string> migrations, Migrations());
  auto impl = std::make_unique<Impl>();
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  impl->db.reset(raw);  // closed even when open failed
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "open " + path);
  sqlite3* db = raw;
  impl->conn.db = db;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  PEAKNAS_RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode = WAL", "journal_mode=WAL"));
  PEAKNAS_RETURN_IF_ERROR(Exec(db,
                               options.synchronous == Synchronous::kFull
                                   ? "PRAGMA synchronous = FULL"
                                   : "PRAGMA synchronous = NORMAL",
                               "synchronous"));
  PEAKNAS_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys = ON", "foreign_keys"));

  // Migrate: each step in its own transaction, user_version bumped inside it.
  PEAKNAS_RETURN_IF_ERROR(impl->Prepare(impl->user_version, "PRAGMA user_version"));
  PEAKNAS_ASSIGN_OR_RETURN(int version, impl->UserVersion());
  if (version > kSchemaVersion) {
    return Status::FailedPrecondition(path + ": database schema version " +
                                      std::to_string(version) +
                                      " is newer than this build knows (" +
                                      std::to_string(kSchemaVersion) + "); upgrade peaknas");
  }
  if (version < 0) {
    return Status::FailedPrecondition(path + ": negative schema version " +
                                      std::to_string(version));
  }
  for (int to = version + 1; to <= kSchemaVersion; ++to) {
    Transaction txn(impl->conn);
    PEAKNAS_RETURN_IF_ERROR(txn.Begin());
    // Re-read inside the write lock: another process may have migrated meanwhile.
    PEAKNAS_ASSIGN_OR_RETURN(int current, impl->UserVersion());
    if (current >= to) continue;
    const std::string& sql = migrations[static_cast<std::size_t>(to - 1)];
    PEAKNAS_RETURN_IF_ERROR(
        Exec(db, sql.c_str(), "migration to schema version " + std::to_string(to)));
    const std::string bump = "PRAGMA user_version = " + std::to_string(to);
    PEAKNAS_RETURN_IF_ERROR(Exec(db, bump.c_str(), "set user_version"));
    PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  }
  PEAKNAS_RETURN_IF_ERROR(impl->PrepareAll());
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

StatusOr<int> SqliteStore::SchemaVersion() { return impl_->UserVersion(); }

std::int64_t SqliteStore::commits() const { return impl_->conn.commits; }

// --- Groups --------------------------------------------------------------------------------

Status SqliteStore::BeginGroup() {
  Connection& c = impl_->conn;
  if (c.in_group) return Status::FailedPrecondition("a group is already open");
  int rc = sqlite3_exec(c.db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(c.db, rc, "BEGIN IMMEDIATE (group)");
  c.in_group = true;
  return Status::Ok();
}

Status SqliteStore::CommitGroup() {
  Connection& c = impl_->conn;
  if (!c.in_group) return Status::FailedPrecondition("no group is open");
  Status lost = c.CheckGroup();
  if (!lost.ok()) {
    c.in_group = false;
    return lost;
  }
  int rc = sqlite3_exec(c.db, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    Status error = SqliteError(c.db, rc, "COMMIT (group)");
    if (sqlite3_get_autocommit(c.db) == 0)
      sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
    c.in_group = false;
    return error;
  }
  c.in_group = false;
  ++c.commits;
  return Status::Ok();
}

void SqliteStore::RollbackGroup() {
  Connection& c = impl_->conn;
  if (!c.in_group) return;
  if (sqlite3_get_autocommit(c.db) == 0) sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
  c.in_group = false;
}

std::int64_t SqliteStore::ChangeCount() { return sqlite3_total_changes64(impl_->raw()); }

// --- Jobs ----------------------------------------------------------------------------------

StatusOr<std::int64_t> SqliteStore::CreateJob(std::string_view spec, std::string_view owner,
                                              std::int64_t now_ms) {
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use u = impl_->U(impl_->insert_job);
    u.Bind(spec).Bind(now_ms).Bind(now_ms).Bind(owner);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  const auto id = static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_->raw()));
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return id;
}

StatusOr<Job> SqliteStore::GetJob(std::int64_t job_id) {
  Use u = impl_->U(impl_->get_job);
  u.Bind(job_id);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  if (!row) return Status::NotFound("job " + std::to_string(job_id));
  return ReadJob(u);
}

StatusOr<std::vector<Job>> SqliteStore::ListJobs() {
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

Status SqliteStore::SetJobState(std::int64_t job_id, JobState state, std::string_view error,
                                std::int64_t now_ms) {
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use u = impl_->U(impl_->set_job_state);
    u.Bind(Name(state)).Bind(error).Bind(now_ms).Bind(job_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  if (sqlite3_changes(impl_->raw()) == 0) return Status::NotFound("job " + std::to_string(job_id));
  return txn.Commit();
}

// --- Workers -------------------------------------------------------------------------------

namespace {

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ',';
    out += n;
  }
  return out;
}

std::vector<std::string> SplitNames(const std::string& joined) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < joined.size()) {
    std::size_t comma = joined.find(',', start);
    if (comma == std::string::npos) comma = joined.size();
    if (comma > start) out.push_back(joined.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

StatusOr<std::int64_t> SqliteStore::RegisterWorker(const Worker& worker, std::int64_t now_ms) {
  for (const auto& names : {worker.datasets, worker.dtypes}) {
    for (const auto& n : names) {
      if (n.empty() || n.find(',') != std::string::npos) {
        return Status::InvalidArgument("worker capability \"" + n +
                                       "\": must be non-empty, without commas");
      }
    }
  }
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use u = impl_->U(impl_->insert_worker);
    u.Bind(std::string_view(worker.name))
        .Bind(std::string_view(worker.device))
        .Bind(worker.memory_bytes)
        .Bind(std::string_view(JoinNames(worker.datasets)))
        .Bind(std::string_view(JoinNames(worker.dtypes)))
        .Bind(now_ms)
        .Bind(now_ms)
        .Bind(std::string_view(worker.principal))
        .Bind(static_cast<std::int64_t>(worker.threads));
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  const auto id = static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_->raw()));
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return id;
}

Status SqliteStore::TouchWorker(std::int64_t worker_id, std::int64_t now_ms) {
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use u = impl_->U(impl_->touch_worker);
    u.Bind(now_ms).Bind(worker_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  if (sqlite3_changes(impl_->raw()) == 0) {
    return Status::NotFound("worker " + std::to_string(worker_id));
  }
  return txn.Commit();
}

namespace {

// A row of get_worker / list_workers.
Worker WorkerRow(const Use& u) {
  Worker w;
  w.id = u.Int(0);
  w.name = u.Text(1);
  w.device = u.Text(2);
  w.memory_bytes = u.Int(3);
  w.registered_ms = u.Int(4);
  w.last_seen_ms = u.Int(5);
  w.datasets = SplitNames(u.Text(6));
  w.dtypes = SplitNames(u.Text(7));
  w.principal = u.Text(8);
  w.threads = static_cast<int>(u.Int(9));
  return w;
}

}  // namespace

StatusOr<Worker> SqliteStore::GetWorker(std::int64_t worker_id) {
  Use u = impl_->U(impl_->get_worker);
  u.Bind(worker_id);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  if (!row) return Status::NotFound("worker " + std::to_string(worker_id));
  return WorkerRow(u);
}

StatusOr<std::vector<Worker>> SqliteStore::ListWorkers(std::int64_t seen_since_ms) {
  Use u = impl_->U(impl_->list_workers);
  u.Bind(seen_since_ms);
  std::vector<Worker> out;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    out.push_back(WorkerRow(u));
  }
  return out;
}

// --- Trials --------------------------------------------------------------------------------

StatusOr<std::vector<std::int64_t>> SqliteStore::AddTrials(std::int64_t job_id,
                                                           const std::vector<NewTrial>& trials,
                                                           std::int64_t now_ms) {
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  std::vector<std::int64_t> ids;
  ids.reserve(trials.size());
  for (const NewTrial& t : trials) {
    PEAKNAS_ASSIGN_OR_RETURN(
        std::int64_t id,
        impl_->InsertTrialRow(job_id, t.spec,
                              t.rejected ? TrialState::kRejected : TrialState::kPending, t.reason,
                              now_ms));
    ids.push_back(id);
  }
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return ids;
}

StatusOr<Trial> SqliteStore::GetTrial(std::int64_t trial_id) { return impl_->LoadTrial(trial_id); }

StatusOr<std::vector<Trial>> SqliteStore::ListTrials(std::int64_t job_id) {
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

StatusOr<TrialCounts> SqliteStore::CountTrials(std::int64_t job_id) {
  Use u = impl_->U(impl_->count_trials);
  u.Bind(job_id);
  TrialCounts counts;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    PEAKNAS_ASSIGN_OR_RETURN(TrialState state, ParseTrialState(u.Text(0)));
    const std::int64_t n = u.Int(1);
    switch (state) {
      case TrialState::kPending:
        counts.pending = n;
        break;
      case TrialState::kRejected:
        counts.rejected = n;
        break;
      case TrialState::kLeased:
        counts.leased = n;
        break;
      case TrialState::kSucceeded:
        counts.succeeded = n;
        break;
      case TrialState::kFailed:
        counts.failed = n;
        break;
    }
    counts.updated_ms = std::max(counts.updated_ms, u.Int(2));
    if (state != TrialState::kRejected) counts.over_budget += u.Int(3);
  }
  return counts;
}

StatusOr<std::optional<Lease>> SqliteStore::LeaseNextPendingTrial(const LeaseFilter& filter,
                                                                  std::int64_t worker_id,
                                                                  std::int64_t now_ms,
                                                                  std::int64_t deadline_ms) {
  if (deadline_ms <= now_ms) {
    return Status::InvalidArgument("deadline_ms: " + std::to_string(deadline_ms) +
                                   " must be after now_ms " + std::to_string(now_ms));
  }
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use w = impl_->U(impl_->get_worker);
    w.Bind(worker_id);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, w.Step());
    if (!row) return Status::NotFound("worker " + std::to_string(worker_id));
  }
  std::int64_t trial_id = 0, queued_ms = 0;
  {
    Use u = impl_->U(impl_->next_pending);
    if (filter.job_ids) {
      std::string job_ids = "[";
      for (std::int64_t id : *filter.job_ids) {
        if (job_ids.size() > 1) job_ids += ',';
        job_ids += std::to_string(id);
      }
      job_ids += ']';
      u.Bind(std::string_view(job_ids));
    } else {
      u.BindNull();
    }
    u.Bind(filter.max_peak_bytes);
    std::string limits = "[";
    for (const LeaseFilter::PassLimits& l : filter.pass_limits) {
      if (limits.size() > 1) limits += ',';
      limits += "[" + std::to_string(l.job_id) + "," + std::to_string(l.max_inference_peak_bytes) +
                "," + std::to_string(l.max_train_peak_bytes) + "]";
    }
    limits += ']';
    u.Bind(std::string_view(limits));
    u.Bind(filter.max_reserve_bytes);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) return std::optional<Lease>();
    trial_id = u.Int(0);
    queued_ms = u.Int(1);
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
  lease.queued_ms = queued_ms;
  lease.trial = std::move(t);
  return std::optional<Lease>(std::move(lease));
}

Status SqliteStore::RenewLease(std::string_view lease_id, std::int64_t fencing_token,
                               std::int64_t now_ms, std::int64_t new_deadline_ms) {
  Transaction txn(impl_->conn);
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

StatusOr<ReleasedLeases> SqliteStore::ReleaseExpiredLeases(std::int64_t now_ms, int max_attempts) {
  Transaction txn(impl_->conn);
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

StatusOr<std::int64_t> SqliteStore::CompleteTrial(std::string_view lease_id,
                                                  std::int64_t fencing_token, std::int64_t now_ms,
                                                  const TrialMetrics& m,
                                                  const std::optional<FrontierSnapshot>& frontier) {
  Transaction txn(impl_->conn);
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
    u.Bind(trial_id)
        .Bind(m.psnr)
        .Bind(m.ssim)
        .Bind(m.noisy_psnr)
        .Bind(m.measured_inference_peak_bytes)
        .Bind(m.measured_train_peak_bytes)
        .Bind(m.latency_100mp_s)
        .Bind(m.measured_latency_ms)
        .Bind(m.steps_per_second)
        .Bind(std::string_view(m.device))
        .Bind(std::string_view(m.report_json))
        .Bind(now_ms)
        .Bind(m.tiled_100mp_s);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  if (!m.framework.empty()) {
    for (const auto& [pass, predicted, device] :
         {std::tuple<search::CalibratedPass, std::int64_t, std::int64_t>{
              search::CalibratedPass::kInference, m.predicted_inference_peak_bytes,
              m.process_inference_peak_bytes},
          {search::CalibratedPass::kTraining, m.predicted_train_peak_bytes,
           m.process_train_peak_bytes},
          {search::CalibratedPass::kTrial,
           std::max(m.predicted_inference_peak_bytes, m.predicted_train_peak_bytes),
           m.process_peak_bytes}}) {
      if (predicted <= 0 || device <= 0) continue;
      Use u = impl_->U(impl_->insert_calibration_sample);
      u.Bind(std::string_view(m.device_profile))
          .Bind(std::string_view(m.framework))
          .Bind(search::Name(pass))
          .Bind(predicted)
          .Bind(device)
          .Bind(trial_id)
          .Bind(now_ms);
      PEAKNAS_RETURN_IF_ERROR(u.Run());
    }
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
    u.Bind(t.job_id)
        .Bind(version)
        .Bind(frontier->hypervolume)
        .Bind(std::string_view(frontier->members_json))
        .Bind(now_ms);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return version;
}

Status SqliteStore::FailTrial(std::string_view lease_id, std::int64_t fencing_token,
                              std::int64_t now_ms, std::string_view reason) {
  Transaction txn(impl_->conn);
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

StatusOr<TrialState> SqliteStore::RetryTrial(std::string_view lease_id, std::int64_t fencing_token,
                                             std::int64_t now_ms, std::string_view reason,
                                             int max_attempts, std::int64_t reserve_bytes) {
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  PEAKNAS_ASSIGN_OR_RETURN(std::int64_t trial_id,
                           impl_->CheckLease(lease_id, fencing_token, now_ms));
  PEAKNAS_ASSIGN_OR_RETURN(Trial trial, impl_->LoadTrial(trial_id));
  TrialState state = TrialState::kPending;
  if (trial.attempts >= max_attempts) {
    state = TrialState::kFailed;
    const std::string why = std::string(reason) + " (leased " + std::to_string(trial.attempts) +
                            " times, max_attempts " + std::to_string(max_attempts) + ")";
    Use u = impl_->U(impl_->fail_trial);
    u.Bind(std::string_view(why)).Bind(now_ms).Bind(trial_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  } else {
    Use u = impl_->U(impl_->retry_trial);
    u.Bind(reason).Bind(now_ms).Bind(reserve_bytes).Bind(trial_id);
    PEAKNAS_RETURN_IF_ERROR(u.Run());
  }
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return state;
}

StatusOr<TrialMetrics> SqliteStore::GetMetrics(std::int64_t trial_id) {
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
  m.tiled_100mp_s = u.Real(10);
  return m;
}

StatusOr<std::vector<CalibrationSample>> SqliteStore::ListCalibrationSamples(int per_key) {
  Use u = impl_->U(impl_->list_calibration_samples);
  u.Bind(static_cast<std::int64_t>(per_key));
  std::vector<CalibrationSample> out;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    PEAKNAS_ASSIGN_OR_RETURN(const search::CalibratedPass pass,
                             search::ParseCalibratedPass(u.Text(2)));
    out.push_back({.device_profile = u.Text(0),
                   .framework = u.Text(1),
                   .pass = pass,
                   .predicted_bytes = u.Int(3),
                   .device_bytes = u.Int(4),
                   .trial_id = u.Int(5),
                   .created_ms = u.Int(6)});
  }
  return out;
}

// --- Events ------------------------------------------------------------------------------

Status SqliteStore::AppendEvent(const Event& event) {
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use u = impl_->U(impl_->insert_event);
    u.Bind(event.job_id).Bind(event.sequence).Bind(event.created_ms).BindBlob(event.payload);
    Status s = u.Run();
    if (s.code() == StatusCode::kNotFound) {
      return Status::NotFound("job " + std::to_string(event.job_id));
    }
    PEAKNAS_RETURN_IF_ERROR(s);
  }
  return txn.Commit();
}

StatusOr<std::vector<Event>> SqliteStore::ListEvents(std::int64_t job_id,
                                                     std::int64_t after_sequence, int limit) {
  Use u = impl_->U(impl_->list_events);
  u.Bind(job_id).Bind(after_sequence).Bind(limit);
  std::vector<Event> out;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    out.push_back(
        {.job_id = u.Int(0), .sequence = u.Int(1), .created_ms = u.Int(2), .payload = u.Blob(3)});
  }
  return out;
}

StatusOr<std::int64_t> SqliteStore::LastEventSequence(std::int64_t job_id) {
  Use u = impl_->U(impl_->last_event);
  u.Bind(job_id);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  return row ? u.Int(0) : 0;
}

// --- Frontier and artifacts ----------------------------------------------------------------

StatusOr<std::optional<FrontierSnapshot>> SqliteStore::LatestFrontier(std::int64_t job_id) {
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

StatusOr<std::int64_t> SqliteStore::RecordArtifact(std::int64_t trial_id, std::string_view path,
                                                   std::int64_t size_bytes, std::string_view sha256,
                                                   std::int64_t now_ms) {
  Transaction txn(impl_->conn);
  PEAKNAS_RETURN_IF_ERROR(txn.Begin());
  {
    Use u = impl_->U(impl_->insert_artifact);
    u.Bind(trial_id).Bind(path).Bind(size_bytes).Bind(sha256).Bind(now_ms);
    Status s = u.Run();
    if (s.code() == StatusCode::kNotFound) {
      return Status::NotFound("trial " + std::to_string(trial_id));
    }
    PEAKNAS_RETURN_IF_ERROR(s);
  }
  const auto id = static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_->raw()));
  PEAKNAS_RETURN_IF_ERROR(txn.Commit());
  return id;
}

StatusOr<std::int64_t> SqliteStore::StoredArtifactBytes() {
  Use u = impl_->U(impl_->stored_artifact_bytes);
  PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
  return row ? u.Int(0) : 0;
}

StatusOr<std::vector<Artifact>> SqliteStore::ListArtifacts(std::int64_t trial_id) {
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
