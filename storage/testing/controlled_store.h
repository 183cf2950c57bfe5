// ControlledStore: a Store for tests that forwards every call to a real one (the SQLite store)
// and can hold a group commit until the test releases it, or make the next one fail: group
// commit under a test's control, without a mock database.
//
// Thread-safety: as the wrapped store, except Control, which the test thread and the store's
// caller share under Control::mu.
#ifndef PEAKNAS_STORAGE_TESTING_CONTROLLED_STORE_H_
#define PEAKNAS_STORAGE_TESTING_CONTROLLED_STORE_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace peaknas::storage::testing {

class ControlledStore final : public Store {
 public:
  explicit ControlledStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}

  struct Control {
    std::mutex mu;
    std::condition_variable cv;
    bool hold = false;       // CommitGroup blocks while set
    bool holding = false;    // a CommitGroup is blocked now
    bool fail_next = false;  // the next CommitGroup rolls back and fails
  };
  std::shared_ptr<Control> control() { return control_; }

  Status CommitGroup() override {
    std::unique_lock lock(control_->mu);
    if (control_->fail_next) {
      control_->fail_next = false;
      inner_->RollbackGroup();
      return Status::Internal("disk I/O error (injected)");
    }
    control_->holding = true;
    control_->cv.notify_all();
    control_->cv.wait(lock, [&] { return !control_->hold; });
    control_->holding = false;
    lock.unlock();
    return inner_->CommitGroup();
  }

  StatusOr<int> SchemaVersion() override { return inner_->SchemaVersion(); }
  Status BeginGroup() override { return inner_->BeginGroup(); }
  void RollbackGroup() override { inner_->RollbackGroup(); }
  std::int64_t ChangeCount() override { return inner_->ChangeCount(); }
  using Store::CreateJob;
  StatusOr<std::int64_t> CreateJob(std::string_view spec, std::string_view owner,
                                   std::int64_t now) override {
    return inner_->CreateJob(spec, owner, now);
  }
  StatusOr<Job> GetJob(std::int64_t id) override { return inner_->GetJob(id); }
  StatusOr<std::vector<Job>> ListJobs() override { return inner_->ListJobs(); }
  Status SetJobState(std::int64_t id, JobState state, std::string_view error,
                     std::int64_t now) override {
    return inner_->SetJobState(id, state, error, now);
  }
  StatusOr<std::int64_t> RegisterWorker(const Worker& w, std::int64_t now) override {
    return inner_->RegisterWorker(w, now);
  }
  Status TouchWorker(std::int64_t id, std::int64_t now) override {
    return inner_->TouchWorker(id, now);
  }
  StatusOr<Worker> GetWorker(std::int64_t id) override { return inner_->GetWorker(id); }
  StatusOr<std::vector<Worker>> ListWorkers(std::int64_t seen_since_ms) override {
    return inner_->ListWorkers(seen_since_ms);
  }
  StatusOr<std::vector<std::int64_t>> AddTrials(std::int64_t job,
                                                const std::vector<NewTrial>& trials,
                                                std::int64_t now) override {
    return inner_->AddTrials(job, trials, now);
  }
  StatusOr<Trial> GetTrial(std::int64_t id) override { return inner_->GetTrial(id); }
  StatusOr<std::vector<Trial>> ListTrials(std::int64_t job) override {
    return inner_->ListTrials(job);
  }
  StatusOr<TrialCounts> CountTrials(std::int64_t job) override { return inner_->CountTrials(job); }
  StatusOr<std::optional<Lease>> LeaseNextPendingTrial(const LeaseFilter& f, std::int64_t worker,
                                                       std::int64_t now,
                                                       std::int64_t deadline) override {
    return inner_->LeaseNextPendingTrial(f, worker, now, deadline);
  }
  Status RenewLease(std::string_view lease, std::int64_t token, std::int64_t now,
                    std::int64_t deadline) override {
    return inner_->RenewLease(lease, token, now, deadline);
  }
  StatusOr<ReleasedLeases> ReleaseExpiredLeases(std::int64_t now, int max) override {
    return inner_->ReleaseExpiredLeases(now, max);
  }
  StatusOr<std::int64_t> CompleteTrial(std::string_view lease, std::int64_t token, std::int64_t now,
                                       const TrialMetrics& m,
                                       const std::optional<FrontierSnapshot>& f) override {
    return inner_->CompleteTrial(lease, token, now, m, f);
  }
  Status FailTrial(std::string_view lease, std::int64_t token, std::int64_t now,
                   std::string_view reason) override {
    return inner_->FailTrial(lease, token, now, reason);
  }
  StatusOr<TrialState> RetryTrial(std::string_view lease, std::int64_t token, std::int64_t now,
                                  std::string_view reason, int max,
                                  std::int64_t reserve_bytes = 0) override {
    return inner_->RetryTrial(lease, token, now, reason, max, reserve_bytes);
  }
  StatusOr<TrialMetrics> GetMetrics(std::int64_t id) override { return inner_->GetMetrics(id); }
  StatusOr<std::vector<CalibrationSample>> ListCalibrationSamples(int per_key) override {
    return inner_->ListCalibrationSamples(per_key);
  }
  Status AppendEvent(const Event& e) override { return inner_->AppendEvent(e); }
  StatusOr<std::vector<Event>> ListEvents(std::int64_t job, std::int64_t after,
                                          int limit) override {
    return inner_->ListEvents(job, after, limit);
  }
  StatusOr<std::int64_t> LastEventSequence(std::int64_t job) override {
    return inner_->LastEventSequence(job);
  }
  StatusOr<std::optional<FrontierSnapshot>> LatestFrontier(std::int64_t job) override {
    return inner_->LatestFrontier(job);
  }
  StatusOr<std::int64_t> RecordArtifact(std::int64_t trial, std::string_view path,
                                        std::int64_t size, std::string_view sha,
                                        std::int64_t now) override {
    return inner_->RecordArtifact(trial, path, size, sha, now);
  }
  StatusOr<std::int64_t> StoredArtifactBytes() override { return inner_->StoredArtifactBytes(); }
  StatusOr<std::vector<Artifact>> ListArtifacts(std::int64_t trial) override {
    return inner_->ListArtifacts(trial);
  }

 private:
  std::unique_ptr<Store> inner_;
  std::shared_ptr<Control> control_ = std::make_shared<Control>();
};

}  // namespace peaknas::storage::testing

#endif  // PEAKNAS_STORAGE_TESTING_CONTROLLED_STORE_H_
