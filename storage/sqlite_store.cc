#include "storage/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <tuple>
#include <type_traits>
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

// A row of get_worker / list_workers.
Worker ReadWorker(const Use& u) {
  return {.id = u.Int(0),
          .name = u.Text(1),
          .device = u.Text(2),
          .memory_bytes = u.Int(3),
          .datasets = SplitNames(u.Text(6)),
          .dtypes = SplitNames(u.Text(7)),
          .threads = static_cast<int>(u.Int(9)),
          .registered_ms = u.Int(4),
          .last_seen_ms = u.Int(5),
          .principal = u.Text(8)};
}

StatusOr<CalibrationSample> ReadCalibrationSample(const Use& u) {
  PEAKNAS_ASSIGN_OR_RETURN(const search::CalibratedPass pass,
                           search::ParseCalibratedPass(u.Text(2)));
  return CalibrationSample{.device_profile = u.Text(0),
                           .framework = u.Text(1),
                           .pass = pass,
                           .predicted_bytes = u.Int(3),
                           .device_bytes = u.Int(4),
                           .trial_id = u.Int(5),
                           .created_ms = u.Int(6)};
}

// TrialCounts' field for each TrialState, in the enum's order (as store.cc's state names).
constexpr std::array<std::int64_t TrialCounts::*, 5> kCountOf = {
    &TrialCounts::pending, &TrialCounts::rejected, &TrialCounts::leased, &TrialCounts::succeeded,
    &TrialCounts::failed};

// A row of get_metrics; the calibration figures are stored as samples, not read back here.
TrialMetrics ReadMetrics(const Use& u) {
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

Event ReadEvent(const Use& u) {
  return {.job_id = u.Int(0), .sequence = u.Int(1), .created_ms = u.Int(2), .payload = u.Blob(3)};
}

FrontierSnapshot ReadFrontier(const Use& u) {
  return {.job_id = u.Int(0),
          .version = u.Int(1),
          .hypervolume = u.Real(2),
          .members_json = u.Text(3),
          .created_ms = u.Int(4)};
}

Artifact ReadArtifact(const Use& u) {
  return {.id = u.Int(0),
          .trial_id = u.Int(1),
          .path = u.Text(2),
          .size_bytes = u.Int(3),
          .sha256 = u.Text(4),
          .created_ms = u.Int(5)};
}

// The first column of a row that holds one number.
std::int64_t ReadInt(const Use& u) { return u.Int(0); }

// The row type a reader returns: T for a reader returning T or StatusOr<T>.
template <typename R>
struct RowType {
  using type = R;
};
template <typename T>
struct RowType<StatusOr<T>> {
  using type = T;
};
template <typename Read>
using RowOf = typename RowType<std::invoke_result_t<Read, const Use&>>::type;

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

  // --- Running statements: `args` are bound to the parameters in order. ---

  // Steps a statement that returns no rows.
  template <typename... Args>
  Status Run(const StmtPtr& stmt, const Args&... args) const {
    Use u = U(stmt);
    (u.Bind(args), ...);
    return u.Run();
  }

  // Run an INSERT; the new row's id.
  template <typename... Args>
  StatusOr<std::int64_t> Insert(const StmtPtr& stmt, const Args&... args) const {
    PEAKNAS_RETURN_IF_ERROR(Run(stmt, args...));
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(raw()));
  }

  // Run an UPDATE of one row; NOT_FOUND `what` when it matched none.
  template <typename... Args>
  Status Update(const std::string& what, const StmtPtr& stmt, const Args&... args) const {
    PEAKNAS_RETURN_IF_ERROR(Run(stmt, args...));
    if (sqlite3_changes(raw()) == 0) return Status::NotFound(what);
    return Status::Ok();
  }

  // Every row, converted by `read` (a function of a Use returning a row or a StatusOr of one).
  template <typename Read, typename... Args>
  StatusOr<std::vector<RowOf<Read>>> All(const StmtPtr& stmt, Read read,
                                         const Args&... args) const {
    Use u = U(stmt);
    (u.Bind(args), ...);
    std::vector<RowOf<Read>> rows;
    while (true) {
      PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
      if (!row) return rows;
      StatusOr<RowOf<Read>> item = read(u);
      if (!item.ok()) return item.status();
      rows.push_back(std::move(item).value());
    }
  }

  // The first row, converted by `read`; nullopt when there is none.
  template <typename Read, typename... Args>
  StatusOr<std::optional<RowOf<Read>>> First(const StmtPtr& stmt, Read read,
                                             const Args&... args) const {
    Use u = U(stmt);
    (u.Bind(args), ...);
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) return std::optional<RowOf<Read>>();
    StatusOr<RowOf<Read>> value = read(u);
    if (!value.ok()) return value.status();
    return std::optional<RowOf<Read>>(std::move(value).value());
  }

  // The first row, converted by `read`; NOT_FOUND `what` when there is none.
  template <typename Read, typename... Args>
  StatusOr<RowOf<Read>> One(std::string_view what, const StmtPtr& stmt, Read read,
                            const Args&... args) const {
    PEAKNAS_ASSIGN_OR_RETURN(std::optional<RowOf<Read>> row, First(stmt, read, args...));
    if (!row) return Status::NotFound(std::string(what));
    return *std::move(row);
  }

  // Whether the statement returns a row.
  template <typename... Args>
  StatusOr<bool> Exists(const StmtPtr& stmt, const Args&... args) const {
    PEAKNAS_ASSIGN_OR_RETURN(std::optional<std::int64_t> row, First(stmt, ReadInt, args...));
    return row.has_value();
  }

  // --- Atomic calls ---

  // `body()` (a Status or StatusOr) as one Transaction, committed when it succeeds.
  template <typename Body>
  std::invoke_result_t<Body> Atomically(Body body) {
    Transaction txn(conn);
    PEAKNAS_RETURN_IF_ERROR(txn.Begin());
    std::invoke_result_t<Body> result = body();
    if (result.ok()) {
      PEAKNAS_RETURN_IF_ERROR(txn.Commit());
    }
    return result;
  }

  // `body(trial_id)` atomically, on the trial holding this current, unexpired lease.
  template <typename Body>
  std::invoke_result_t<Body, std::int64_t> WithLease(std::string_view lease_id, std::int64_t token,
                                                     std::int64_t now_ms, Body body) {
    return Atomically([&]() -> std::invoke_result_t<Body, std::int64_t> {
      PEAKNAS_ASSIGN_OR_RETURN(std::int64_t trial_id, CheckLease(lease_id, token, now_ms));
      return body(trial_id);
    });
  }

  StatusOr<int> UserVersion() {
    PEAKNAS_ASSIGN_OR_RETURN(std::optional<std::int64_t> version, First(user_version, ReadInt));
    if (!version) return Status::Internal("PRAGMA user_version returned no row");
    return static_cast<int>(*version);
  }

  StatusOr<Trial> LoadTrial(std::int64_t id) {
    return One("trial " + std::to_string(id), get_trial, ReadTrial, id);
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
    PEAKNAS_ASSIGN_OR_RETURN(bool job_found, Exists(job_exists, job_id));
    if (!job_found) return Status::NotFound("job " + std::to_string(job_id));
    StatusOr<std::int64_t> id = Insert(
        insert_trial, job_id, spec.architecture_json, static_cast<std::int64_t>(spec.arch_hash),
        Name(state), spec.predicted_inference_peak_bytes, spec.predicted_train_peak_bytes,
        spec.predicted_latency_100mp_s, reason, now_ms, now_ms, spec.parent_trial_id, spec.lineage,
        spec.over_budget ? 1 : 0);
    if (id.status().code() == StatusCode::kAlreadyExists) {
      return Status(StatusCode::kAlreadyExists, "job " + std::to_string(job_id) +
                                                    " already has candidate hash " +
                                                    std::to_string(spec.arch_hash));
    }
    return id;
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
  return impl_->Atomically(
      [&] { return impl_->Insert(impl_->insert_job, spec, now_ms, now_ms, owner); });
}

StatusOr<Job> SqliteStore::GetJob(std::int64_t job_id) {
  return impl_->One("job " + std::to_string(job_id), impl_->get_job, ReadJob, job_id);
}

StatusOr<std::vector<Job>> SqliteStore::ListJobs() { return impl_->All(impl_->list_jobs, ReadJob); }

Status SqliteStore::SetJobState(std::int64_t job_id, JobState state, std::string_view error,
                                std::int64_t now_ms) {
  return impl_->Atomically([&] {
    return impl_->Update("job " + std::to_string(job_id), impl_->set_job_state, Name(state), error,
                         now_ms, job_id);
  });
}

// --- Workers -------------------------------------------------------------------------------

StatusOr<std::int64_t> SqliteStore::RegisterWorker(const Worker& worker, std::int64_t now_ms) {
  for (const auto& names : {worker.datasets, worker.dtypes}) {
    for (const auto& n : names) {
      if (n.empty() || n.find(',') != std::string::npos) {
        return Status::InvalidArgument("worker capability \"" + n +
                                       "\": must be non-empty, without commas");
      }
    }
  }
  return impl_->Atomically([&] {
    return impl_->Insert(impl_->insert_worker, worker.name, worker.device, worker.memory_bytes,
                         JoinNames(worker.datasets), JoinNames(worker.dtypes), now_ms, now_ms,
                         worker.principal, worker.threads);
  });
}

Status SqliteStore::TouchWorker(std::int64_t worker_id, std::int64_t now_ms) {
  return impl_->Atomically([&] {
    return impl_->Update("worker " + std::to_string(worker_id), impl_->touch_worker, now_ms,
                         worker_id);
  });
}

StatusOr<Worker> SqliteStore::GetWorker(std::int64_t worker_id) {
  return impl_->One("worker " + std::to_string(worker_id), impl_->get_worker, ReadWorker,
                    worker_id);
}

StatusOr<std::vector<Worker>> SqliteStore::ListWorkers(std::int64_t seen_since_ms) {
  return impl_->All(impl_->list_workers, ReadWorker, seen_since_ms);
}

// --- Trials --------------------------------------------------------------------------------

StatusOr<std::vector<std::int64_t>> SqliteStore::AddTrials(std::int64_t job_id,
                                                           const std::vector<NewTrial>& trials,
                                                           std::int64_t now_ms) {
  return impl_->Atomically([&]() -> StatusOr<std::vector<std::int64_t>> {
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
    return ids;
  });
}

StatusOr<Trial> SqliteStore::GetTrial(std::int64_t trial_id) { return impl_->LoadTrial(trial_id); }

StatusOr<std::vector<Trial>> SqliteStore::ListTrials(std::int64_t job_id) {
  return impl_->All(impl_->list_trials, ReadTrial, job_id);
}

StatusOr<TrialCounts> SqliteStore::CountTrials(std::int64_t job_id) {
  Use u = impl_->U(impl_->count_trials);
  u.Bind(job_id);
  TrialCounts counts;
  while (true) {
    PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
    if (!row) break;
    PEAKNAS_ASSIGN_OR_RETURN(TrialState state, ParseTrialState(u.Text(0)));
    counts.*kCountOf[static_cast<std::size_t>(state)] = u.Int(1);
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
  return impl_->Atomically([&]() -> StatusOr<std::optional<Lease>> {
    PEAKNAS_ASSIGN_OR_RETURN(bool worker_found, impl_->Exists(impl_->get_worker, worker_id));
    if (!worker_found) return Status::NotFound("worker " + std::to_string(worker_id));
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
        limits += "[" + std::to_string(l.job_id) + "," +
                  std::to_string(l.max_inference_peak_bytes) + "," +
                  std::to_string(l.max_train_peak_bytes) + "]";
      }
      limits += ']';
      u.Bind(std::string_view(limits));
      u.Bind(filter.max_reserve_bytes);
      PEAKNAS_ASSIGN_OR_RETURN(bool row, u.Step());
      if (!row) return std::optional<Lease>();
      trial_id = u.Int(0);
      queued_ms = u.Int(1);
    }
    PEAKNAS_RETURN_IF_ERROR(
        impl_->Run(impl_->lease_trial, deadline_ms, worker_id, now_ms, trial_id));
    PEAKNAS_ASSIGN_OR_RETURN(Trial t, impl_->LoadTrial(trial_id));
    Lease lease;
    lease.lease_id = t.lease_id;
    lease.fencing_token = t.fencing_token;
    lease.deadline_ms = t.lease_deadline_ms;
    lease.queued_ms = queued_ms;
    lease.trial = std::move(t);
    return std::optional<Lease>(std::move(lease));
  });
}

Status SqliteStore::RenewLease(std::string_view lease_id, std::int64_t fencing_token,
                               std::int64_t now_ms, std::int64_t new_deadline_ms) {
  return impl_->WithLease(lease_id, fencing_token, now_ms, [&](std::int64_t trial_id) {
    return impl_->Run(impl_->renew_lease, new_deadline_ms, now_ms, trial_id);
  });
}

StatusOr<ReleasedLeases> SqliteStore::ReleaseExpiredLeases(std::int64_t now_ms, int max_attempts) {
  return impl_->Atomically([&]() -> StatusOr<ReleasedLeases> {
    PEAKNAS_ASSIGN_OR_RETURN(
        const auto expired,
        impl_->All(
            impl_->expired_leases,
            [](const Use& u) { return std::pair(u.Int(0), static_cast<int>(u.Int(1))); }, now_ms));
    ReleasedLeases out;
    for (const auto& [id, attempts] : expired) {
      if (attempts >= max_attempts) {
        const std::string reason = "lease expired " + std::to_string(attempts) +
                                   " times (max_attempts " + std::to_string(max_attempts) + ")";
        PEAKNAS_RETURN_IF_ERROR(impl_->Run(impl_->fail_trial, reason, now_ms, id));
        out.failed.push_back(id);
      } else {
        PEAKNAS_RETURN_IF_ERROR(impl_->Run(impl_->requeue_trial, now_ms, id));
        out.requeued.push_back(id);
      }
    }
    return out;
  });
}

StatusOr<std::int64_t> SqliteStore::CompleteTrial(std::string_view lease_id,
                                                  std::int64_t fencing_token, std::int64_t now_ms,
                                                  const TrialMetrics& m,
                                                  const std::optional<FrontierSnapshot>& frontier) {
  return impl_->WithLease(
      lease_id, fencing_token, now_ms, [&](std::int64_t trial_id) -> StatusOr<std::int64_t> {
        PEAKNAS_RETURN_IF_ERROR(impl_->Run(impl_->succeed_trial, now_ms, trial_id));
        PEAKNAS_RETURN_IF_ERROR(impl_->Run(impl_->insert_metrics, trial_id, m.psnr, m.ssim,
                                           m.noisy_psnr, m.measured_inference_peak_bytes,
                                           m.measured_train_peak_bytes, m.latency_100mp_s,
                                           m.measured_latency_ms, m.steps_per_second, m.device,
                                           m.report_json, now_ms, m.tiled_100mp_s));
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
            PEAKNAS_RETURN_IF_ERROR(impl_->Run(impl_->insert_calibration_sample, m.device_profile,
                                               m.framework, search::Name(pass), predicted, device,
                                               trial_id, now_ms));
          }
        }
        if (!frontier) return std::int64_t{0};
        PEAKNAS_ASSIGN_OR_RETURN(Trial t, impl_->LoadTrial(trial_id));
        if (frontier->job_id != t.job_id) {
          return Status::InvalidArgument("frontier.job_id: " + std::to_string(frontier->job_id) +
                                         " is not the trial's job " + std::to_string(t.job_id));
        }
        PEAKNAS_ASSIGN_OR_RETURN(std::optional<std::int64_t> version,
                                 impl_->First(impl_->next_frontier_version, ReadInt, t.job_id));
        if (!version) return Status::Internal("next frontier version: no row");
        PEAKNAS_RETURN_IF_ERROR(impl_->Run(impl_->insert_frontier, t.job_id, *version,
                                           frontier->hypervolume, frontier->members_json, now_ms));
        return *version;
      });
}

Status SqliteStore::FailTrial(std::string_view lease_id, std::int64_t fencing_token,
                              std::int64_t now_ms, std::string_view reason) {
  return impl_->WithLease(lease_id, fencing_token, now_ms, [&](std::int64_t trial_id) {
    return impl_->Run(impl_->fail_trial, reason, now_ms, trial_id);
  });
}

StatusOr<TrialState> SqliteStore::RetryTrial(std::string_view lease_id, std::int64_t fencing_token,
                                             std::int64_t now_ms, std::string_view reason,
                                             int max_attempts, std::int64_t reserve_bytes) {
  return impl_->WithLease(
      lease_id, fencing_token, now_ms, [&](std::int64_t trial_id) -> StatusOr<TrialState> {
        PEAKNAS_ASSIGN_OR_RETURN(Trial trial, impl_->LoadTrial(trial_id));
        if (trial.attempts >= max_attempts) {
          const std::string why = std::string(reason) + " (leased " +
                                  std::to_string(trial.attempts) + " times, max_attempts " +
                                  std::to_string(max_attempts) + ")";
          PEAKNAS_RETURN_IF_ERROR(impl_->Run(impl_->fail_trial, why, now_ms, trial_id));
          return TrialState::kFailed;
        }
        PEAKNAS_RETURN_IF_ERROR(
            impl_->Run(impl_->retry_trial, reason, now_ms, reserve_bytes, trial_id));
        return TrialState::kPending;
      });
}

StatusOr<TrialMetrics> SqliteStore::GetMetrics(std::int64_t trial_id) {
  return impl_->One("metrics of trial " + std::to_string(trial_id), impl_->get_metrics, ReadMetrics,
                    trial_id);
}

StatusOr<std::vector<CalibrationSample>> SqliteStore::ListCalibrationSamples(int per_key) {
  return impl_->All(impl_->list_calibration_samples, ReadCalibrationSample, per_key);
}

// --- Events ------------------------------------------------------------------------------

Status SqliteStore::AppendEvent(const Event& event) {
  return impl_->Atomically([&]() -> Status {
    Use u = impl_->U(impl_->insert_event);
    u.Bind(event.job_id).Bind(event.sequence).Bind(event.created_ms).BindBlob(event.payload);
    Status s = u.Run();
    if (s.code() == StatusCode::kNotFound) {
      return Status::NotFound("job " + std::to_string(event.job_id));
    }
    return s;
  });
}

StatusOr<std::vector<Event>> SqliteStore::ListEvents(std::int64_t job_id,
                                                     std::int64_t after_sequence, int limit) {
  return impl_->All(impl_->list_events, ReadEvent, job_id, after_sequence, limit);
}

StatusOr<std::int64_t> SqliteStore::LastEventSequence(std::int64_t job_id) {
  PEAKNAS_ASSIGN_OR_RETURN(std::optional<std::int64_t> last,
                           impl_->First(impl_->last_event, ReadInt, job_id));
  return last.value_or(0);
}

// --- Frontier and artifacts ----------------------------------------------------------------

StatusOr<std::optional<FrontierSnapshot>> SqliteStore::LatestFrontier(std::int64_t job_id) {
  return impl_->First(impl_->latest_frontier, ReadFrontier, job_id);
}

StatusOr<std::int64_t> SqliteStore::RecordArtifact(std::int64_t trial_id, std::string_view path,
                                                   std::int64_t size_bytes, std::string_view sha256,
                                                   std::int64_t now_ms) {
  return impl_->Atomically([&]() -> StatusOr<std::int64_t> {
    StatusOr<std::int64_t> id =
        impl_->Insert(impl_->insert_artifact, trial_id, path, size_bytes, sha256, now_ms);
    if (id.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("trial " + std::to_string(trial_id));
    }
    return id;
  });
}

StatusOr<std::int64_t> SqliteStore::StoredArtifactBytes() {
  PEAKNAS_ASSIGN_OR_RETURN(std::optional<std::int64_t> bytes,
                           impl_->First(impl_->stored_artifact_bytes, ReadInt));
  return bytes.value_or(0);
}

StatusOr<std::vector<Artifact>> SqliteStore::ListArtifacts(std::int64_t trial_id) {
  return impl_->All(impl_->list_artifacts, ReadArtifact, trial_id);
}

}  // namespace peaknas::storage
