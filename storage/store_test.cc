// Tests of Store on real SQLite files in a fresh temporary directory; no mocks.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "base/temp_dir.h"
#include "storage/schema_sql.h"
#include "storage/sqlite_store.h"

namespace peaknas::storage {
namespace {

namespace fs = std::filesystem;

Worker NewWorker(std::string name, std::string device, std::int64_t memory_bytes) {
  Worker w;
  w.name = std::move(name);
  w.device = std::move(device);
  w.memory_bytes = memory_bytes;
  return w;
}
LeaseFilter Any() { return {}; }

// One pending / one rejected trial: AddTrials of one.
StatusOr<std::int64_t> AddTrial(Store& store, std::int64_t job, const TrialSpec& spec,
                                std::int64_t now_ms) {
  PEAKNAS_ASSIGN_OR_RETURN(
      auto ids, store.AddTrials(job, {{.spec = spec, .rejected = false, .reason = ""}}, now_ms));
  return ids.front();
}
StatusOr<std::int64_t> AddRejectedTrial(Store& store, std::int64_t job, const TrialSpec& spec,
                                        std::string_view reason, std::int64_t now_ms) {
  PEAKNAS_ASSIGN_OR_RETURN(
      auto ids,
      store.AddTrials(job, {{.spec = spec, .rejected = true, .reason = std::string(reason)}},
                      now_ms));
  return ids.front();
}
LeaseFilter Only(std::int64_t job) { return {.job_ids = std::vector<std::int64_t>{job}}; }

// Every field of a TrialCounts, to compare two at once: (pending, rejected, leased, succeeded,
// failed, over_budget, updated_ms).
auto Fields(const TrialCounts& c) {
  return std::tuple(c.pending, c.rejected, c.leased, c.succeeded, c.failed, c.over_budget,
                    c.updated_ms);
}

void ExpectSameCounts(const TrialCounts& got, const TrialCounts& want, const std::string& when) {
  EXPECT_EQ(Fields(got), Fields(want)) << when;
}

// The first row `sql` returns, each column as text, read through a separate connection to the
// file at `path` (what another process would see); empty if it returns none.
std::vector<std::string> QueryFromOutside(const std::string& path, const std::string& sql) {
  std::vector<std::string> row;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
  if (sqlite3_step(st) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const unsigned char* text = sqlite3_column_text(st, i);
      row.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return row;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(temp_.ok());
    path_ = (dir_ / "peaknas.db").string();
  }

  std::unique_ptr<SqliteStore> OpenOrDie() {
    auto s = SqliteStore::Open(path_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Runs raw SQL on the file through a separate connection (to hand-make old/new versions).
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  static TrialSpec Spec(std::uint64_t hash) {
    TrialSpec s;
    s.architecture_json = "{\"levels\":" + std::to_string(hash % 6 + 1) + "}";
    s.arch_hash = hash;
    s.predicted_inference_peak_bytes = 1000 + static_cast<std::int64_t>(hash);
    s.predicted_train_peak_bytes = 5000 + static_cast<std::int64_t>(hash);
    return s;
  }

  static TrialMetrics Metrics(double psnr) {
    TrialMetrics m;
    m.psnr = psnr;
    m.ssim = 0.9;
    m.noisy_psnr = 20.0;
    m.measured_inference_peak_bytes = 1234;
    m.measured_train_peak_bytes = 5678;
    m.latency_100mp_s = 12.5;
    m.measured_latency_ms = 3.25;
    m.tiled_100mp_s = 17.75;
    m.steps_per_second = 40.0;
    m.device = "cpu";
    m.report_json = "{\"psnr\":" + std::to_string(psnr) + "}";
    return m;
  }

  base::TempDir temp_{"peaknas-store"};
  const fs::path& dir_ = temp_.path();
  std::string path_;
};

TEST_F(StoreTest, CreatesSchemaAndSetsUserVersion) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  auto v = store->SchemaVersion();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, kSchemaVersion);
  // WAL mode is persistent in the file: check it through another connection.
  EXPECT_EQ(QueryFromOutside(path_, "PRAGMA journal_mode"), std::vector<std::string>{"wal"});
  EXPECT_EQ(QueryFromOutside(path_,
                             "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name "
                             "IN ('jobs','trials','workers','metrics','frontier_snapshots',"
                             "'artifacts')"),
            std::vector<std::string>{"6"});
}

TEST_F(StoreTest, ReopenPreservesData) {
  std::int64_t job = 0, trial = 0;
  {
    auto store = OpenOrDie();
    auto j = store->CreateJob("{\"strategy\":\"random\"}", 100);
    ASSERT_TRUE(j.ok());
    job = *j;
    auto t = AddTrial(*store, job, Spec(7), 101);
    ASSERT_TRUE(t.ok());
    trial = *t;
    ASSERT_TRUE(store->SetJobState(job, JobState::kRunning, "", 102).ok());
  }
  auto store = OpenOrDie();
  auto j = store->GetJob(job);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->spec, "{\"strategy\":\"random\"}");
  EXPECT_EQ(j->state, JobState::kRunning);
  EXPECT_EQ(j->created_ms, 100);
  EXPECT_EQ(j->updated_ms, 102);
  auto t = store->GetTrial(trial);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->spec.arch_hash, 7u);
  EXPECT_EQ(t->state, TrialState::kPending);
  auto jobs = store->ListJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 1u);
  EXPECT_EQ(store->GetJob(job + 1).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, MigratesHandMadeVersionZeroFile) {
  RawExec("PRAGMA user_version = 0; CREATE TABLE unrelated (x INTEGER);");
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), kSchemaVersion);
  EXPECT_TRUE(store->CreateJob("{}", 1).ok());
}

TEST_F(StoreTest, FailedMigrationChangesNothing) {
  // A version-0 file whose existing `jobs` table makes migration 1 fail half-way.
  RawExec("CREATE TABLE jobs (x INTEGER); INSERT INTO jobs VALUES (5);");
  auto store = SqliteStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("migration to schema version 1"), std::string::npos)
      << store.status().message();
  // Version 0 and only the hand-made table: the migration was rolled back.
  EXPECT_EQ(QueryFromOutside(path_,
                             "SELECT (SELECT user_version FROM pragma_user_version), "
                             "(SELECT count(*) FROM sqlite_master)"),
            (std::vector<std::string>{"0", "1"}));
}

TEST_F(StoreTest, RefusesFutureSchemaVersion) {
  RawExec("PRAGMA user_version = 99;");
  auto store = SqliteStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().message();
}

TEST_F(StoreTest, DeduplicatesByHashWithinJob) {
  auto store = OpenOrDie();
  std::int64_t a = *store->CreateJob("{}", 1);
  std::int64_t b = *store->CreateJob("{}", 1);
  ASSERT_TRUE(AddTrial(*store, a, Spec(42), 2).ok());
  EXPECT_EQ(AddTrial(*store, a, Spec(42), 3).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(AddRejectedTrial(*store, a, Spec(42), "over budget", 3).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(AddTrial(*store, b, Spec(42), 3).ok());  // another job may have it
  // Hashes above 2^63 round-trip.
  auto big = AddTrial(*store, a, Spec(0xFEDCBA9876543210ull), 4);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(store->GetTrial(*big)->spec.arch_hash, 0xFEDCBA9876543210ull);
  EXPECT_EQ(AddTrial(*store, 999, Spec(1), 4).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, AddTrialsIsOneTransaction) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  const auto pending = [](std::uint64_t hash) {
    return Store::NewTrial{.spec = Spec(hash), .rejected = false, .reason = ""};
  };
  auto ids = store->AddTrials(
      job, {pending(1), {.spec = Spec(2), .rejected = true, .reason = "over budget"}, pending(3)},
      2);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ(store->GetTrial((*ids)[0])->state, TrialState::kPending);
  EXPECT_EQ(store->GetTrial((*ids)[1])->state, TrialState::kRejected);
  EXPECT_EQ(store->GetTrial((*ids)[1])->reason, "over budget");
  // A duplicate anywhere in a batch adds nothing of it.
  auto dup = store->AddTrials(job, {pending(4), pending(2)}, 3);
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store->ListTrials(job)->size(), 3u);
  EXPECT_EQ(store->AddTrials(999, {pending(5)}, 3).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, RejectedTrialKeepsReasonAndIsNeverLeased) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
  auto r = AddRejectedTrial(*store, job, Spec(5), "inference peak 1005 B > budget 1000 B", 2);
  ASSERT_TRUE(r.ok());
  auto t = store->GetTrial(*r);
  EXPECT_EQ(t->state, TrialState::kRejected);
  EXPECT_EQ(t->reason, "inference peak 1005 B > budget 1000 B");
  EXPECT_EQ(t->spec.predicted_inference_peak_bytes, 1005);
  auto lease = store->LeaseNextPendingTrial(Any(), w, 3, 100);
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE(lease->has_value());
  EXPECT_EQ(store->ListTrials(job)->size(), 1u);
}

TEST_F(StoreTest, LeaseThenComplete) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
  std::int64_t t1 = *AddTrial(*store, job, Spec(1), 2);
  std::int64_t t2 = *AddTrial(*store, job, Spec(2), 2);
  auto lease = store->LeaseNextPendingTrial(Only(job), w, 10, 1000);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ASSERT_TRUE(lease->has_value());
  const Lease& l = **lease;
  EXPECT_EQ(l.trial.id, t1);  // oldest first
  EXPECT_EQ(l.trial.state, TrialState::kLeased);
  EXPECT_EQ(l.fencing_token, 1);
  EXPECT_EQ(l.trial.attempts, 1);
  EXPECT_EQ(l.trial.worker_id, w);
  EXPECT_EQ(l.deadline_ms, 1000);
  EXPECT_EQ(l.lease_id, LeaseId(t1, 1)) << "the store composes the id as LeaseId does";
  EXPECT_EQ(LeaseTrialId(l.lease_id), t1);
  for (const char* bad : {"", "12", ".3", "x.3", "-2.3", "0.1"}) {
    EXPECT_FALSE(LeaseTrialId(bad).has_value()) << bad;
  }

  ASSERT_TRUE(store->RenewLease(l.lease_id, l.fencing_token, 500, 2000).ok());
  EXPECT_EQ(store->GetTrial(t1)->lease_deadline_ms, 2000);

  auto v = store->CompleteTrial(l.lease_id, l.fencing_token, 1500, Metrics(31.5), std::nullopt);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 0);
  auto t = store->GetTrial(t1);
  EXPECT_EQ(t->state, TrialState::kSucceeded);
  EXPECT_TRUE(t->lease_id.empty());
  auto m = store->GetMetrics(t1);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->psnr, 31.5);
  EXPECT_EQ(m->measured_train_peak_bytes, 5678);
  EXPECT_DOUBLE_EQ(m->latency_100mp_s, 12.5);
  EXPECT_DOUBLE_EQ(m->tiled_100mp_s, 17.75);
  EXPECT_EQ(m->device, "cpu");
  // Completing twice is refused.
  EXPECT_EQ(store->CompleteTrial(l.lease_id, l.fencing_token, 1600, Metrics(1), std::nullopt)
                .status()
                .code(),
            StatusCode::kFailedPrecondition);

  auto next = store->LeaseNextPendingTrial(Any(), w, 1700, 2700);
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->trial.id, t2);
  auto none = store->LeaseNextPendingTrial(Only(job), w, 1700, 2700);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(store->LeaseNextPendingTrial(Only(job), w + 100, 1700, 2700).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store->LeaseNextPendingTrial(Only(job), w, 1700, 1700).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, CancelledJobsTrialsAreNotLeased) {
  auto store = OpenOrDie();
  std::int64_t a = *store->CreateJob("{}", 1);
  std::int64_t b = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
  ASSERT_TRUE(AddTrial(*store, a, Spec(1), 2).ok());
  std::int64_t tb = *AddTrial(*store, b, Spec(1), 2);
  ASSERT_TRUE(store->SetJobState(a, JobState::kCancelled, "cancelled by user", 3).ok());
  EXPECT_EQ(store->GetJob(a)->error, "cancelled by user");
  EXPECT_FALSE(store->LeaseNextPendingTrial(Only(a), w, 4, 100)->has_value());
  auto l = store->LeaseNextPendingTrial(Any(), w, 4, 100);
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->trial.id, tb);
  EXPECT_EQ(store->SetJobState(b + 1, JobState::kRunning, "", 5).code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, StaleTokenRefusedAndNothingChanged) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
  std::int64_t t1 = *AddTrial(*store, job, Spec(1), 2);
  Lease l = **store->LeaseNextPendingTrial(Only(job), w, 10, 1000);
  auto before = store->GetTrial(t1);

  FrontierSnapshot f;
  f.job_id = job;
  f.hypervolume = 1.0;
  f.members_json = "[1]";
  auto r = store->CompleteTrial(l.lease_id, l.fencing_token + 1, 20, Metrics(30), f);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      store->CompleteTrial("no-such-lease", l.fencing_token, 20, Metrics(30), f).status().code(),
      StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->RenewLease(l.lease_id, l.fencing_token - 1, 20, 5000).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->FailTrial(l.lease_id, l.fencing_token + 1, 20, "x").code(),
            StatusCode::kFailedPrecondition);

  auto after = store->GetTrial(t1);
  EXPECT_EQ(after->state, TrialState::kLeased);
  EXPECT_EQ(after->updated_ms, before->updated_ms);
  EXPECT_EQ(after->lease_deadline_ms, 1000);
  EXPECT_EQ(store->GetMetrics(t1).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store->LatestFrontier(job)->has_value());
}

TEST_F(StoreTest, ExpiredLeaseRequeuedWithHigherTokenOldRefused) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w1 = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
  std::int64_t w2 = *store->RegisterWorker(NewWorker("w2", "cpu", 1 << 30), 1);
  std::int64_t t1 = *AddTrial(*store, job, Spec(1), 2);
  Lease old = **store->LeaseNextPendingTrial(Only(job), w1, 10, 100);

  // Past the deadline, before release: the old holder can neither renew nor complete.
  EXPECT_EQ(store->RenewLease(old.lease_id, old.fencing_token, 101, 500).code(),
            StatusCode::kFailedPrecondition);
  auto released = store->ReleaseExpiredLeases(101, 3);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->requeued, std::vector<std::int64_t>{t1});
  EXPECT_TRUE(released->failed.empty());
  EXPECT_EQ(store->GetTrial(t1)->state, TrialState::kPending);

  Lease fresh = **store->LeaseNextPendingTrial(Only(job), w2, 110, 1000);
  EXPECT_EQ(fresh.trial.id, t1);
  EXPECT_GT(fresh.fencing_token, old.fencing_token);
  EXPECT_NE(fresh.lease_id, old.lease_id);
  EXPECT_EQ(fresh.trial.attempts, 2);
  EXPECT_EQ(fresh.trial.worker_id, w2);

  // The presumed-dead worker's late result: refused, nothing changed.
  EXPECT_EQ(store->CompleteTrial(old.lease_id, old.fencing_token, 120, Metrics(99), std::nullopt)
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->GetTrial(t1)->state, TrialState::kLeased);
  EXPECT_EQ(store->GetMetrics(t1).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(
      store->CompleteTrial(fresh.lease_id, fresh.fencing_token, 130, Metrics(28), std::nullopt)
          .ok());
  EXPECT_DOUBLE_EQ(store->GetMetrics(t1)->psnr, 28);
}

TEST_F(StoreTest, MaxAttemptsFailsWithReason) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
  std::int64_t t1 = *AddTrial(*store, job, Spec(1), 2);
  std::int64_t now = 10;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto l = store->LeaseNextPendingTrial(Only(job), w, now, now + 10);
    ASSERT_TRUE(l.ok() && l->has_value());
    EXPECT_EQ((*l)->trial.attempts, attempt);
    now += 20;
    auto r = store->ReleaseExpiredLeases(now, 2);
    ASSERT_TRUE(r.ok());
    if (attempt < 2) {
      EXPECT_EQ(r->requeued, std::vector<std::int64_t>{t1});
    } else {
      EXPECT_EQ(r->failed, std::vector<std::int64_t>{t1});
    }
  }
  auto t = store->GetTrial(t1);
  EXPECT_EQ(t->state, TrialState::kFailed);
  EXPECT_NE(t->reason.find("lease expired 2 times"), std::string::npos) << t->reason;
  EXPECT_FALSE(store->LeaseNextPendingTrial(Only(job), w, now, now + 10)->has_value());
}

TEST_F(StoreTest, FrontierCommittedWithResultVisibleAfterReopen) {
  std::int64_t job = 0, t1 = 0, t2 = 0;
  {
    auto store = OpenOrDie();
    job = *store->CreateJob("{}", 1);
    std::int64_t w = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
    t1 = *AddTrial(*store, job, Spec(1), 2);
    t2 = *AddTrial(*store, job, Spec(2), 2);
    FrontierSnapshot f;
    f.job_id = job;
    f.hypervolume = 0.5;
    f.members_json = "[" + std::to_string(t1) + "]";
    Lease l1 = **store->LeaseNextPendingTrial(Only(job), w, 10, 100);
    auto v1 = store->CompleteTrial(l1.lease_id, l1.fencing_token, 20, Metrics(30), f);
    ASSERT_TRUE(v1.ok()) << v1.status().ToString();
    EXPECT_EQ(*v1, 1);
    Lease l2 = **store->LeaseNextPendingTrial(Only(job), w, 30, 100);
    f.hypervolume = 0.75;
    f.members_json = "[" + std::to_string(t1) + "," + std::to_string(t2) + "]";
    auto v2 = store->CompleteTrial(l2.lease_id, l2.fencing_token, 40, Metrics(31), f);
    ASSERT_TRUE(v2.ok());
    EXPECT_EQ(*v2, 2);
    // A snapshot for another job is refused and rolls the result back.
    std::int64_t t3 = *AddTrial(*store, job, Spec(3), 50);
    Lease l3 = **store->LeaseNextPendingTrial(Only(job), w, 50, 100);
    f.job_id = job + 1;
    EXPECT_EQ(
        store->CompleteTrial(l3.lease_id, l3.fencing_token, 60, Metrics(1), f).status().code(),
        StatusCode::kInvalidArgument);
    EXPECT_EQ(store->GetTrial(t3)->state, TrialState::kLeased);
    EXPECT_EQ(store->GetMetrics(t3).status().code(), StatusCode::kNotFound);
  }
  auto store = OpenOrDie();
  auto f = store->LatestFrontier(job);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->version, 2);
  EXPECT_DOUBLE_EQ((*f)->hypervolume, 0.75);
  EXPECT_EQ((*f)->members_json, "[" + std::to_string(t1) + "," + std::to_string(t2) + "]");
  EXPECT_EQ((*f)->created_ms, 40);
  EXPECT_EQ(store->GetTrial(t2)->state, TrialState::kSucceeded);
  EXPECT_DOUBLE_EQ(store->GetMetrics(t2)->psnr, 31);
}

TEST_F(StoreTest, ArtifactsAndWorkers) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w1", "h100", 80ll << 30), 1);
  ASSERT_TRUE(store->TouchWorker(w, 7).ok());
  auto worker = store->GetWorker(w);
  ASSERT_TRUE(worker.ok());
  EXPECT_EQ(worker->device, "h100");
  EXPECT_EQ(worker->memory_bytes, 80ll << 30);
  EXPECT_EQ(worker->last_seen_ms, 7);
  EXPECT_EQ(store->TouchWorker(w + 1, 7).code(), StatusCode::kNotFound);
  std::int64_t t1 = *AddTrial(*store, job, Spec(1), 2);
  auto a = store->RecordArtifact(t1, "/artifacts/1/model.pt", 4096, "ab12", 9);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto list = store->ListArtifacts(t1);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].path, "/artifacts/1/model.pt");
  EXPECT_EQ((*list)[0].size_bytes, 4096);
  EXPECT_EQ((*list)[0].sha256, "ab12");
  EXPECT_EQ(store->RecordArtifact(t1 + 100, "/x", 1, "00", 9).status().code(),
            StatusCode::kNotFound);
}

// A result acknowledged (CompleteTrial returned OK) survives the process being killed at once:
// the child completes and reports over a pipe, then the parent SIGKILLs it (no destructors, no
// close, no checkpoint) and reopens the file.
void CrashAfterComplete(const std::string& path, bool self_exit) {
  std::int64_t job = 0, trial = 0, worker = 0;
  {
    auto store = SqliteStore::Open(path);
    ASSERT_TRUE(store.ok());
    job = *(*store)->CreateJob("{}", 1);
    worker = *(*store)->RegisterWorker(NewWorker("w", "cpu", 1), 1);
    TrialSpec spec;
    spec.architecture_json = "{}";
    spec.arch_hash = 77;
    spec.predicted_inference_peak_bytes = 1;
    spec.predicted_train_peak_bytes = 2;
    trial = *AddTrial(**store, job, spec, 2);
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto store = SqliteStore::Open(path);
    if (!store.ok()) _exit(2);
    auto lease = (*store)->LeaseNextPendingTrial(Only(job), worker, 10, 1000);
    if (!lease.ok() || !lease->has_value()) _exit(3);
    FrontierSnapshot f{job, 0, 0.25, "[77]", 0};
    TrialMetrics m;
    m.psnr = 33.0;
    auto v = (*store)->CompleteTrial((*lease)->lease_id, (*lease)->fencing_token, 20, m, f);
    if (!v.ok()) _exit(4);
    if (self_exit) _exit(0);  // no destructors: the connection is never closed
    char ack = 'k';
    if (write(fds[1], &ack, 1) != 1) _exit(5);
    while (true) pause();  // wait to be killed
  }
  close(fds[1]);
  int status = 0;
  if (!self_exit) {
    char ack = 0;
    ASSERT_EQ(read(fds[0], &ack, 1), 1);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  } else {
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
  }
  close(fds[0]);

  auto store = SqliteStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto t = (*store)->GetTrial(trial);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->state, TrialState::kSucceeded);
  EXPECT_DOUBLE_EQ((*store)->GetMetrics(trial)->psnr, 33.0);
  auto f = (*store)->LatestFrontier(job);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->version, 1);
  EXPECT_EQ((*f)->members_json, "[77]");
}

TEST_F(StoreTest, AcknowledgedResultSurvivesSigkill) { CrashAfterComplete(path_, false); }
TEST_F(StoreTest, AcknowledgedResultSurvivesUnclosedExit) { CrashAfterComplete(path_, true); }

// Several processes, each with its own connection, lease from one file at once: every trial
// is leased exactly once (BEGIN IMMEDIATE plus the busy timeout serialize them).
TEST_F(StoreTest, ConcurrentProcessesNeverLeaseTheSameTrial) {
  constexpr int kTrials = 60;
  constexpr int kProcs = 4;
  std::int64_t job = 0;
  std::vector<std::int64_t> workers;
  {
    auto store = OpenOrDie();
    job = *store->CreateJob("{}", 1);
    for (int i = 0; i < kProcs; ++i)
      workers.push_back(*store->RegisterWorker(NewWorker("w", "cpu", 1), 1));
    for (int i = 0; i < kTrials; ++i) ASSERT_TRUE(AddTrial(*store, job, Spec(100 + i), 2).ok());
  }
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto store = SqliteStore::Open(path_);
      if (!store.ok()) _exit(2);
      while (true) {
        auto l = (*store)->LeaseNextPendingTrial(Only(job), workers[p], 10, 1000);
        if (!l.ok()) _exit(3);
        if (!l->has_value()) _exit(0);
        if (!(*store)
                 ->CompleteTrial((*l)->lease_id, (*l)->fencing_token, 20, Metrics(p), std::nullopt)
                 .ok()) {
          _exit(4);
        }
      }
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto store = OpenOrDie();
  auto trials = store->ListTrials(job);
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), static_cast<std::size_t>(kTrials));
  for (const Trial& t : *trials) {
    EXPECT_EQ(t.state, TrialState::kSucceeded);
    EXPECT_EQ(t.attempts, 1) << "trial " << t.id << " leased more than once";
    EXPECT_EQ(t.fencing_token, 1);
  }
}

TEST_F(StoreTest, MigratesVersionOneFileKeepingItsRows) {
  // A database exactly as schema version 1 left it: migration 1 of schema.sql, one worker and
  // one trial written with version 1's columns.
  const std::string all = internal::kSchemaSql;
  const std::size_t second = all.find("\n-- @migration 2");
  ASSERT_NE(second, std::string::npos);
  RawExec(all.substr(0, second) + "; PRAGMA user_version = 1;");
  RawExec(
      "INSERT INTO jobs (id, spec, state, created_ms, updated_ms) VALUES (1, '{}', "
      "'running', 1, 1);"
      "INSERT INTO workers (id, name, device, memory_bytes, registered_ms, last_seen_ms) "
      "VALUES (1, 'old', 'cpu', 7, 1, 1);"
      "INSERT INTO trials (id, job_id, architecture, arch_hash, state, "
      "predicted_inference_peak_bytes, predicted_train_peak_bytes, created_ms, updated_ms) "
      "VALUES (1, 1, '{}', 5, 'pending', 10, 20, 1, 1);");
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), kSchemaVersion);
  auto worker = store->GetWorker(1);
  ASSERT_TRUE(worker.ok()) << worker.status().ToString();
  EXPECT_EQ(worker->name, "old");
  EXPECT_TRUE(worker->datasets.empty());
  EXPECT_TRUE(worker->dtypes.empty());
  EXPECT_EQ(worker->threads, 0);  // not stated
  auto trial = store->GetTrial(1);
  ASSERT_TRUE(trial.ok());
  EXPECT_EQ(trial->spec.predicted_train_peak_bytes, 20);
  EXPECT_EQ(trial->spec.predicted_latency_100mp_s, 0);
  EXPECT_EQ(trial->spec.parent_trial_id, 0);
  EXPECT_EQ(trial->spec.lineage, "");
  // The trial counts kept since version 4 include the rows written before it.
  EXPECT_EQ(store->CountTrials(1)->pending, 1);
  EXPECT_EQ(store->CountTrials(1)->updated_ms, 1);
  // The migrated file takes the current version's writes.
  TrialSpec spec = Spec(6);
  spec.predicted_latency_100mp_s = 4.5;
  auto added = AddTrial(*store, 1, spec, 2);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(store->GetTrial(*added)->spec.predicted_latency_100mp_s, 4.5);
}

TEST_F(StoreTest, ParentAndLineageRoundTripAndTheParentMustExist) {
  auto store = OpenOrDie();
  const std::int64_t job = *store->CreateJob("{}", 1);
  auto parent = AddTrial(*store, job, Spec(1), 1);
  ASSERT_TRUE(parent.ok());
  TrialSpec child = Spec(2);
  child.parent_trial_id = *parent;
  child.lineage = R"({"role":"level"})";
  child.over_budget = true;
  auto added = AddTrial(*store, job, child, 2);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  auto back = store->GetTrial(*added);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->spec.parent_trial_id, *parent);
  EXPECT_EQ(back->spec.lineage, child.lineage);
  EXPECT_TRUE(back->spec.over_budget);
  EXPECT_EQ(store->CountTrials(job)->over_budget, 1);
  EXPECT_EQ(store->GetTrial(*parent)->spec.parent_trial_id, 0);
  // A parent that is not a trial is refused (the foreign key), and nothing is stored.
  TrialSpec orphan = Spec(3);
  orphan.parent_trial_id = 999;
  EXPECT_FALSE(AddTrial(*store, job, orphan, 3).ok());
  EXPECT_EQ(store->ListTrials(job)->size(), 2u);
}

TEST_F(StoreTest, WorkerCapabilitiesRoundTrip) {
  auto store = OpenOrDie();
  Worker w = NewWorker("gpu-7", "cuda:0", 24ll << 30);
  w.datasets = {"sidd", "synthetic"};
  w.dtypes = {"fp16", "bf16"};
  w.threads = 6;
  auto id = store->RegisterWorker(w, 1);
  ASSERT_TRUE(id.ok());
  auto back = store->GetWorker(*id);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->datasets, w.datasets);
  EXPECT_EQ(back->dtypes, w.dtypes);
  EXPECT_EQ(back->threads, 6);
  w.datasets = {"a,b"};
  EXPECT_EQ(store->RegisterWorker(w, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, LeaseFilterByJobAndPeak) {
  auto store = OpenOrDie();
  std::int64_t a = *store->CreateJob("{}", 1);
  std::int64_t b = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w", "cpu", 1), 1);
  TrialSpec big = Spec(1);
  big.predicted_train_peak_bytes = 9000;  // the larger of the two peaks counts
  std::int64_t a_big = *AddTrial(*store, a, big, 2);
  std::int64_t b_small = *AddTrial(*store, b, Spec(2), 2);  // peaks 1002 / 5002
  std::int64_t a_small = *AddTrial(*store, a, Spec(3), 2);  // peaks 1003 / 5003
  // No job allowed: nothing, even with trials pending.
  EXPECT_FALSE(store->LeaseNextPendingTrial({.job_ids = std::vector<std::int64_t>{}}, w, 3, 100)
                   ->has_value());
  // Job b only.
  auto l = store->LeaseNextPendingTrial(Only(b), w, 3, 100);
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->trial.id, b_small);
  // Job a under a peak limit between the two: the big trial is skipped, not leased.
  l = store->LeaseNextPendingTrial(
      {.job_ids = std::vector<std::int64_t>{a}, .max_peak_bytes = 5003}, w, 3, 100);
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->trial.id, a_small);
  EXPECT_FALSE(
      store->LeaseNextPendingTrial({.job_ids = std::nullopt, .max_peak_bytes = 8999}, w, 3, 100)
          ->has_value());
  l = store->LeaseNextPendingTrial(Any(), w, 3, 100);
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->trial.id, a_big);
}

TEST_F(StoreTest, LeaseFilterByPassLimitsAndReservation) {
  auto store = OpenOrDie();
  std::int64_t a = *store->CreateJob("{}", 1);
  std::int64_t b = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w", "cpu", 1), 1);
  std::int64_t a1 = *AddTrial(*store, a, Spec(1), 2);  // peaks 1001 / 5001
  std::int64_t b2 = *AddTrial(*store, b, Spec(2), 2);  // peaks 1002 / 5002
  std::int64_t a3 = *AddTrial(*store, a, Spec(3), 2);  // peaks 1003 / 5003
  const auto limits = [&](std::int64_t job, std::int64_t inference, std::int64_t train) {
    return LeaseFilter{
        .pass_limits = {
            {.job_id = job, .max_inference_peak_bytes = inference, .max_train_peak_bytes = train}}};
  };
  // A training limit below a1's and a3's: job a has nothing; b has no limit.
  auto l = store->LeaseNextPendingTrial(limits(a, 0, 5000), w, 3, 100);
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->trial.id, b2);
  // An inference limit that a1 meets and a3 does not; then job a's limits let nothing through.
  LeaseFilter both = limits(a, 1002, 0);
  both.pass_limits.push_back({.job_id = b, .max_inference_peak_bytes = 1});
  l = store->LeaseNextPendingTrial(both, w, 3, 100);
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->trial.id, a1);
  EXPECT_FALSE(store->LeaseNextPendingTrial(both, w, 3, 100)->has_value());
  // A retry raises the trial's reservation floor; never lowers it.
  auto got = store->LeaseNextPendingTrial(Only(a), w, 3, 100);
  ASSERT_TRUE(got.ok() && got->has_value());
  ASSERT_EQ((*got)->trial.id, a3);
  EXPECT_EQ((*got)->trial.reserve_bytes, 0);
  ASSERT_EQ(*store->RetryTrial((*got)->lease_id, (*got)->fencing_token, 4, "over", 5, 7000),
            TrialState::kPending);
  EXPECT_EQ(store->GetTrial(a3)->reserve_bytes, 7000);
  EXPECT_FALSE(
      store->LeaseNextPendingTrial({.job_ids = std::nullopt, .max_reserve_bytes = 6999}, w, 5, 100)
          ->has_value());
  got =
      store->LeaseNextPendingTrial({.job_ids = std::nullopt, .max_reserve_bytes = 7000}, w, 5, 100);
  ASSERT_TRUE(got.ok() && got->has_value());
  ASSERT_EQ(*store->RetryTrial((*got)->lease_id, (*got)->fencing_token, 6, "again", 5, 10),
            TrialState::kPending);
  EXPECT_EQ(store->GetTrial(a3)->reserve_bytes, 7000);
}

TEST_F(StoreTest, ListWorkersByLastSighting) {
  auto store = OpenOrDie();
  Worker gpu = NewWorker("gpu-box", "cuda:0", 80);
  gpu.datasets = {"sidd", "syn"};
  gpu.dtypes = {"bf16"};
  const std::int64_t a = *store->RegisterWorker(gpu, 100);
  const std::int64_t b = *store->RegisterWorker(NewWorker("cpu-box", "cpu", 8), 200);
  ASSERT_TRUE(store->TouchWorker(a, 500).ok());
  auto all = store->ListWorkers(0);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, a);
  EXPECT_EQ((*all)[0].name, "gpu-box");
  EXPECT_EQ((*all)[0].datasets, (std::vector<std::string>{"sidd", "syn"}));
  EXPECT_EQ((*all)[0].dtypes, std::vector<std::string>{"bf16"});
  EXPECT_EQ((*all)[0].last_seen_ms, 500);
  EXPECT_EQ((*all)[1].id, b);
  auto recent = store->ListWorkers(300);
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ(recent->front().id, a);
  EXPECT_TRUE(store->ListWorkers(501)->empty());
}

TEST_F(StoreTest, CountTrialsByState) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w", "cpu", 1), 1);
  for (std::uint64_t h = 1; h <= 4; ++h) ASSERT_TRUE(AddTrial(*store, job, Spec(h), 2).ok());
  ASSERT_TRUE(AddRejectedTrial(*store, job, Spec(9), "over budget", 3).ok());
  Lease l = **store->LeaseNextPendingTrial(Only(job), w, 5, 100);
  ASSERT_TRUE(store->CompleteTrial(l.lease_id, l.fencing_token, 6, Metrics(30), std::nullopt).ok());
  (void)**store->LeaseNextPendingTrial(Only(job), w, 8, 100);
  auto counts = store->CountTrials(job);
  ASSERT_TRUE(counts.ok());
  ExpectSameCounts(*counts,
                   {.pending = 2,
                    .rejected = 1,
                    .leased = 1,
                    .succeeded = 1,
                    .failed = 0,
                    .over_budget = 0,
                    .updated_ms = 8},
                   "two pending, one leased, one succeeded, one rejected");
  EXPECT_EQ(store->CountTrials(job + 1)->pending, 0);
}

// What CountTrials must equal: the job's trials counted one by one.
TrialCounts CountByScan(Store& store, std::int64_t job) {
  TrialCounts c;
  std::map<TrialState, std::int64_t> by_state;
  const auto trials = store.ListTrials(job);
  for (const Trial& t : *trials) {
    ++by_state[t.state];
    if (t.state != TrialState::kRejected && t.spec.over_budget) ++c.over_budget;
    c.updated_ms = std::max(c.updated_ms, t.updated_ms);
  }
  c.pending = by_state[TrialState::kPending];
  c.rejected = by_state[TrialState::kRejected];
  c.leased = by_state[TrialState::kLeased];
  c.succeeded = by_state[TrialState::kSucceeded];
  c.failed = by_state[TrialState::kFailed];
  return c;
}

TEST_F(StoreTest, CountTrialsEqualsAScanThroughEveryKindOfChange) {
  // Random adds (rejected, over budget), leases, completions, failures, retries, renewals and
  // expiries over two jobs, some inside a rolled-back group: after each step the counts kept
  // by the database equal a count of the trials themselves.
  auto store = OpenOrDie();
  const std::int64_t jobs[] = {*store->CreateJob("{}", 1), *store->CreateJob("{}", 1)};
  const std::int64_t w = *store->RegisterWorker(NewWorker("w", "cpu", 1), 1);
  std::mt19937 rng(7);
  std::vector<Lease> leases;
  std::uint64_t next_hash = 1;
  std::int64_t now = 10;
  for (int step = 0; step < 400; ++step) {
    now += 1 + static_cast<std::int64_t>(rng() % 3);
    const std::int64_t job = jobs[rng() % 2];
    const bool rollback = rng() % 10 == 0;
    if (rollback) {
      ASSERT_TRUE(store->BeginGroup().ok());
    }
    switch (rng() % 7) {
      case 0:
      case 1: {
        TrialSpec spec = Spec(next_hash++);
        spec.over_budget = rng() % 4 == 0;
        if (rng() % 3 == 0) {
          ASSERT_TRUE(AddRejectedTrial(*store, job, spec, "over budget", now).ok());
        } else {
          ASSERT_TRUE(AddTrial(*store, job, spec, now).ok());
        }
        break;
      }
      case 2: {
        auto l = store->LeaseNextPendingTrial(Only(job), w, now, now + 5);
        ASSERT_TRUE(l.ok());
        if (l->has_value()) leases.push_back(**l);
        break;
      }
      case 3:
      case 4: {
        if (leases.empty()) break;
        const Lease l = leases[rng() % leases.size()];
        // Stale or expired leases are refused and change nothing; that is part of the test.
        if (rng() % 2 == 0) {
          (void)store->CompleteTrial(l.lease_id, l.fencing_token, now, Metrics(30), std::nullopt);
        } else if (rng() % 2 == 0) {
          (void)store->FailTrial(l.lease_id, l.fencing_token, now, "x");
        } else {
          (void)store->RetryTrial(l.lease_id, l.fencing_token, now, "again", 2);
        }
        break;
      }
      case 5:
        if (!leases.empty()) {
          const Lease& l = leases[rng() % leases.size()];
          (void)store->RenewLease(l.lease_id, l.fencing_token, now, now + 5);
        }
        break;
      case 6:
        ASSERT_TRUE(store->ReleaseExpiredLeases(now, 2).ok());
        break;
    }
    if (rollback) store->RollbackGroup();
    for (std::int64_t j : jobs) {
      auto counts = store->CountTrials(j);
      ASSERT_TRUE(counts.ok()) << counts.status().ToString();
      ExpectSameCounts(*counts, CountByScan(*store, j),
                       "job " + std::to_string(j) + " after step " + std::to_string(step));
    }
    if (HasFailure()) return;
  }
  // The walk reached every state.
  const TrialCounts a = CountByScan(*store, jobs[0]);
  EXPECT_GT(a.pending + a.leased, 0);
  EXPECT_GT(a.succeeded, 0);
  EXPECT_GT(a.failed, 0);
  EXPECT_GT(a.rejected, 0);
  EXPECT_GT(a.over_budget, 0);
}

TEST_F(StoreTest, RetryableFailureRequeuesUntilMaxAttempts) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  std::int64_t w = *store->RegisterWorker(NewWorker("w", "cpu", 1), 1);
  std::int64_t t = *AddTrial(*store, job, Spec(1), 2);
  Lease first = **store->LeaseNextPendingTrial(Only(job), w, 3, 100);
  auto state = store->RetryTrial(first.lease_id, first.fencing_token, 4, "disk full", 2);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, TrialState::kPending);
  EXPECT_EQ(store->GetTrial(t)->reason, "disk full");
  // The old lease is gone: a second report with it changes nothing.
  EXPECT_EQ(store->RetryTrial(first.lease_id, first.fencing_token, 5, "again", 2).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->GetTrial(t)->state, TrialState::kPending);
  Lease second = **store->LeaseNextPendingTrial(Only(job), w, 6, 100);
  EXPECT_EQ(second.trial.id, t);
  EXPECT_EQ(second.trial.attempts, 2);
  state = store->RetryTrial(second.lease_id, second.fencing_token, 7, "disk full", 2);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, TrialState::kFailed);
  auto failed = store->GetTrial(t);
  EXPECT_EQ(failed->state, TrialState::kFailed);
  EXPECT_NE(failed->reason.find("disk full"), std::string::npos) << failed->reason;
  EXPECT_NE(failed->reason.find("max_attempts 2"), std::string::npos) << failed->reason;
}

// Counts rows through a second connection: what another process would see.
std::int64_t CountFromOutside(const std::string& path, const std::string& table) {
  const std::vector<std::string> row = QueryFromOutside(path, "SELECT COUNT(*) FROM " + table);
  EXPECT_EQ(row.size(), 1u);
  return row.empty() ? -1 : std::stoll(row[0]);
}

TEST_F(StoreTest, GroupCommitsOnceAndFailedCallsUndoOnlyThemselves) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  const std::int64_t commits_before = store->commits();
  ASSERT_TRUE(store->BeginGroup().ok());
  EXPECT_EQ(store->BeginGroup().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(AddTrial(*store, job, Spec(1), 2).ok());
  ASSERT_TRUE(AddTrial(*store, job, Spec(2), 2).ok());
  // A failing call inside the group (a duplicate in its batch) undoes only itself.
  EXPECT_EQ(store
                ->AddTrials(job,
                            {{.spec = Spec(3), .rejected = false, .reason = ""},
                             {.spec = Spec(1), .rejected = false, .reason = ""}},
                            2)
                .status()
                .code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(AddTrial(*store, job, Spec(4), 2).ok());
  // The group's own connection sees its changes; nobody else does before the commit.
  EXPECT_EQ(store->ListTrials(job)->size(), 3u);
  EXPECT_EQ(CountFromOutside(path_, "trials"), 0);
  ASSERT_TRUE(store->CommitGroup().ok());
  EXPECT_EQ(CountFromOutside(path_, "trials"), 3);
  EXPECT_EQ(store->commits(), commits_before + 1);
  EXPECT_EQ(store->CommitGroup().code(), StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, RolledBackGroupLeavesNothing) {
  auto store = OpenOrDie();
  std::int64_t job = *store->CreateJob("{}", 1);
  ASSERT_TRUE(AddTrial(*store, job, Spec(1), 2).ok());
  ASSERT_TRUE(store->BeginGroup().ok());
  ASSERT_TRUE(AddTrial(*store, job, Spec(2), 3).ok());
  ASSERT_TRUE(store->SetJobState(job, JobState::kRunning, "", 3).ok());
  store->RollbackGroup();
  EXPECT_EQ(store->ListTrials(job)->size(), 1u);
  EXPECT_EQ(store->GetJob(job)->state, JobState::kPending);
  // Outside a group again: each call commits by itself.
  ASSERT_TRUE(AddTrial(*store, job, Spec(3), 4).ok());
  EXPECT_EQ(CountFromOutside(path_, "trials"), 2);
}

TEST_F(StoreTest, EventLogAppendsAndReplaysInOrder) {
  auto store = OpenOrDie();
  std::int64_t a = *store->CreateJob("{}", 1);
  std::int64_t b = *store->CreateJob("{}", 1);
  EXPECT_EQ(*store->LastEventSequence(a), 0);
  const std::string binary("\0\x01payload", 9);  // blobs keep NUL bytes
  for (std::int64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_TRUE(store
                    ->AppendEvent({.job_id = a,
                                   .sequence = seq,
                                   .created_ms = 10 + seq,
                                   .payload = binary + std::to_string(seq)})
                    .ok());
  }
  ASSERT_TRUE(
      store->AppendEvent({.job_id = b, .sequence = 1, .created_ms = 1, .payload = "b"}).ok());
  EXPECT_EQ(
      store->AppendEvent({.job_id = a, .sequence = 3, .created_ms = 1, .payload = "x"}).code(),
      StatusCode::kAlreadyExists);
  EXPECT_EQ(
      store->AppendEvent({.job_id = 99, .sequence = 1, .created_ms = 1, .payload = "x"}).code(),
      StatusCode::kNotFound);
  EXPECT_EQ(*store->LastEventSequence(a), 5);
  auto events = store->ListEvents(a, 2, 2);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].sequence, 3);
  EXPECT_EQ((*events)[0].payload, binary + "3");
  EXPECT_EQ((*events)[1].sequence, 4);
  EXPECT_EQ((*events)[1].created_ms, 14);
  EXPECT_EQ(store->ListEvents(a, 5, 100)->size(), 0u);
}

// Every completed trial adds one sample per pass that has both figures, keyed by the
// worker's device profile and framework; the newest `per_key` of each key are listed. A stale
// completion adds nothing; samples survive a reopen.
TEST_F(StoreTest, CalibrationSamplesComeWithResultsNewestFirstPerKey) {
  auto store = OpenOrDie();
  const std::int64_t job = *store->CreateJob("{}", 1);
  const std::int64_t w = *store->RegisterWorker(NewWorker("w1", "cpu", 1 << 30), 1);
  const auto complete = [&](std::uint64_t hash, const std::string& profile,
                            const std::string& framework, std::int64_t process_train) {
    ASSERT_TRUE(AddTrial(*store, job, Spec(hash), 2).ok());
    auto lease = store->LeaseNextPendingTrial(Only(job), w, 10, 100000);
    ASSERT_TRUE(lease.ok() && lease->has_value());
    TrialMetrics m = Metrics(30);
    m.device_profile = profile;
    m.framework = framework;
    m.predicted_inference_peak_bytes = 1000 + static_cast<std::int64_t>(hash);
    m.process_inference_peak_bytes = 9000 + static_cast<std::int64_t>(hash);
    m.predicted_train_peak_bytes = 2000 + static_cast<std::int64_t>(hash);
    m.process_train_peak_bytes = process_train;
    // A whole trial's figure only for the h100 one: against the larger prediction.
    if (profile == "h100") m.process_peak_bytes = 8000 + static_cast<std::int64_t>(hash);
    ASSERT_TRUE(store
                    ->CompleteTrial((*lease)->lease_id, (*lease)->fencing_token,
                                    20 + static_cast<std::int64_t>(hash), m, std::nullopt)
                    .ok());
    // The same lease again: refused, and no second sample.
    EXPECT_FALSE(
        store->CompleteTrial((*lease)->lease_id, (*lease)->fencing_token, 99, m, std::nullopt)
            .ok());
  };
  complete(1, "cpu", "libtorch 1.13.0", 7001);
  complete(2, "cpu", "libtorch 1.13.0", 7002);
  complete(3, "cpu", "libtorch 1.13.0", 0);  // no training figure: inference only
  complete(4, "h100", "libtorch 2.4.0", 7004);
  complete(5, "cpu", "", 7005);  // no framework: not a sample

  store.reset();
  store = OpenOrDie();
  auto all = store->ListCalibrationSamples(10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> got;
  for (const CalibrationSample& c : *all) {
    got.push_back(c.device_profile + "/" + std::string(search::Name(c.pass)) + "/" +
                  std::to_string(c.predicted_bytes) + "/" + std::to_string(c.device_bytes) + "/t" +
                  std::to_string(c.trial_id) + "@" + std::to_string(c.created_ms));
    EXPECT_EQ(c.framework, c.device_profile == "cpu" ? "libtorch 1.13.0" : "libtorch 2.4.0");
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "cpu/inference/1003/9003/t3@23", "cpu/inference/1002/9002/t2@22",
                     "cpu/inference/1001/9001/t1@21", "cpu/training/2002/7002/t2@22",
                     "cpu/training/2001/7001/t1@21", "h100/inference/1004/9004/t4@24",
                     "h100/training/2004/7004/t4@24", "h100/trial/2004/8004/t4@24"}));
  auto newest = store->ListCalibrationSamples(1);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 5u);
  EXPECT_EQ((*newest)[0].trial_id, 3);
  EXPECT_EQ((*newest)[1].trial_id, 2);
}

TEST(StoreNames, RoundTrip) {
  for (auto s : {JobState::kPending, JobState::kRunning, JobState::kSucceeded, JobState::kFailed,
                 JobState::kCancelled}) {
    EXPECT_EQ(*ParseJobState(Name(s)), s);
  }
  for (auto s : {TrialState::kPending, TrialState::kRejected, TrialState::kLeased,
                 TrialState::kSucceeded, TrialState::kFailed}) {
    EXPECT_EQ(*ParseTrialState(Name(s)), s);
  }
  EXPECT_EQ(ParseTrialState("bogus").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace peaknas::storage
