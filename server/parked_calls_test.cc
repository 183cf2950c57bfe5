// ParkedCalls over a real coordinator on a real SQLite file, without gRPC: calls park, complete
// when the coordinator signals, at their deadline, on Cancel and on Shutdown.
#include "server/parked_calls.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "base/temp_dir.h"
#include "server/test_coordinator.h"
#include "server/test_job_spec.h"

namespace peaknas::server {
namespace {

using base::TempDir;
using Assignment = StatusOr<std::optional<v1::TrialAssignment>>;
using Batch = StatusOr<ParkedCalls::EventBatch>;
constexpr auto kLimit = std::chrono::seconds(30);

class ParkedCallsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::OpenSqliteCoordinator(
        (dir_.path() / "db.sqlite").string(), (dir_.path() / "artifacts").string(), &coordinator_));
    parked_ = std::make_unique<ParkedCalls>(*coordinator_, /*event_batch=*/4);
  }
  void TearDown() override {
    parked_.reset();
    coordinator_.reset();
  }

  std::string Worker() {
    v1::RegisterWorkerRequest request;
    request.set_name("w");
    auto id = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }
  std::future<Assignment> Lease(const std::string& worker, std::chrono::milliseconds wait,
                                std::uint64_t* ticket = nullptr) {
    auto promise = std::make_shared<std::promise<Assignment>>();
    auto future = promise->get_future();
    const std::uint64_t t = parked_->Lease({.worker_id = worker}, ParkedCalls::Clock::now() + wait,
                                           [promise](Assignment a) { promise->set_value(a); });
    if (ticket) *ticket = t;
    return future;
  }
  std::future<Batch> Events(const std::string& job, std::int64_t after,
                            std::uint64_t* ticket = nullptr) {
    auto promise = std::make_shared<std::promise<Batch>>();
    auto future = promise->get_future();
    const std::uint64_t t =
        parked_->Events(job, after, [promise](Batch b) { promise->set_value(b); });
    if (ticket) *ticket = t;
    return future;
  }
  // Waits until `n` calls are parked (or queued for their thread).
  bool ParkedReaches(std::size_t n) {
    const auto limit = std::chrono::steady_clock::now() + kLimit;
    while (parked_->size() != n) {
      if (std::chrono::steady_clock::now() > limit) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }
  std::string Submit(int trials) {
    auto job = coordinator_->SubmitJob(testing::RandomJobSpec(trials, trials));
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? job->id() : "";
  }

  TempDir dir_{"peaknas-parked"};
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<ParkedCalls> parked_;
};

TEST_F(ParkedCallsTest, ALeaseWaitsParkedUntilTrialsAreQueued) {
  const std::string worker = Worker();
  auto leased = Lease(worker, std::chrono::seconds(60));
  ASSERT_TRUE(ParkedReaches(1));
  // Parked: nothing completes it while there is no work.
  EXPECT_EQ(leased.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  const std::string job = Submit(1);
  ASSERT_EQ(leased.wait_for(kLimit), std::future_status::ready);
  const Assignment a = leased.get();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->job_id(), job);
  EXPECT_EQ(parked_->size(), 0u);
}

TEST_F(ParkedCallsTest, ALeaseThatFindsWorkCompletesWithoutParking) {
  Submit(2);
  auto leased = Lease(Worker(), std::chrono::seconds(60));
  ASSERT_EQ(leased.wait_for(kLimit), std::future_status::ready);
  const Assignment a = leased.get();
  ASSERT_TRUE(a.ok() && a->has_value());
}

TEST_F(ParkedCallsTest, ALeaseEndsEmptyAtItsDeadline) {
  const auto start = std::chrono::steady_clock::now();
  auto leased = Lease(Worker(), std::chrono::milliseconds(200));
  ASSERT_EQ(leased.wait_for(kLimit), std::future_status::ready);
  const Assignment a = leased.get();
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  EXPECT_EQ(parked_->size(), 0u);
}

TEST_F(ParkedCallsTest, AnUnknownWorkerGetsNotFound) {
  auto leased = Lease("w-999", std::chrono::seconds(60));
  ASSERT_EQ(leased.wait_for(kLimit), std::future_status::ready);
  EXPECT_EQ(leased.get().status().code(), StatusCode::kNotFound);
}

TEST_F(ParkedCallsTest, WatchesReadTheLogInBatchesThenParkUntilItGrows) {
  const std::string worker = Worker();
  const std::string job = Submit(6);
  for (int i = 0; i < 5; ++i) {
    auto leased = coordinator_->LeaseTrial(worker);  // each logs trial_started
    ASSERT_TRUE(leased.ok() && leased->has_value());
  }
  const auto log = coordinator_->WatchEvents(job, 0, 1000, {});
  ASSERT_TRUE(log.ok());
  ASSERT_GE(log->size(), 5u);
  const std::int64_t end = log->back().sequence();

  // From the start: at most event_batch (4) events, in order.
  auto first = Events(job, 0);
  ASSERT_EQ(first.wait_for(kLimit), std::future_status::ready);
  const Batch batch = first.get();
  ASSERT_TRUE(batch.ok());
  EXPECT_FALSE(batch->ended);
  ASSERT_EQ(batch->events->size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*batch->events)[i].sequence(), i + 1);

  // At the end of the log: parked until the lease adds trial_started.
  auto next = Events(job, end);
  ASSERT_TRUE(ParkedReaches(1));
  EXPECT_EQ(next.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  auto leased = coordinator_->LeaseTrial(worker);
  ASSERT_TRUE(leased.ok() && leased->has_value());
  ASSERT_EQ(next.wait_for(kLimit), std::future_status::ready);
  const Batch grown = next.get();
  ASSERT_TRUE(grown.ok());
  ASSERT_FALSE(grown->events->empty());
  EXPECT_EQ((*grown->events)[0].sequence(), end + 1);
  EXPECT_TRUE((*grown->events)[0].has_trial_started());
}

TEST_F(ParkedCallsTest, AWatchOfAnEndedJobEndsAfterItsLastEvent) {
  const std::string job = Submit(1);
  ASSERT_TRUE(coordinator_->CancelJob(job).ok());
  const auto log = coordinator_->WatchEvents(job, 0, 1000, {});
  ASSERT_TRUE(log.ok() && !log->empty());
  auto last = Events(job, log->back().sequence());
  ASSERT_EQ(last.wait_for(kLimit), std::future_status::ready);
  const Batch batch = last.get();
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->ended);
  EXPECT_TRUE(batch->events->empty());

  auto unknown = Events("j-999", 0);
  ASSERT_EQ(unknown.wait_for(kLimit), std::future_status::ready);
  EXPECT_EQ(unknown.get().status().code(), StatusCode::kNotFound);
}

TEST_F(ParkedCallsTest, CancelCompletesAParkedCallWithCancelled) {
  const std::string job = Submit(1);
  const std::string worker = Worker();
  ASSERT_TRUE(coordinator_->LeaseTrial(worker).ok());  // the only trial: later polls wait
  std::uint64_t lease_ticket = 0, watch_ticket = 0;
  auto leased = Lease(worker, std::chrono::seconds(60), &lease_ticket);
  auto watched = Events(job, 1000, &watch_ticket);
  ASSERT_TRUE(ParkedReaches(2));
  parked_->Cancel(lease_ticket);
  parked_->Cancel(watch_ticket);
  ASSERT_EQ(leased.wait_for(kLimit), std::future_status::ready);
  ASSERT_EQ(watched.wait_for(kLimit), std::future_status::ready);
  EXPECT_EQ(leased.get().status().code(), StatusCode::kCancelled);
  EXPECT_EQ(watched.get().status().code(), StatusCode::kCancelled);
  EXPECT_EQ(parked_->size(), 0u);
  parked_->Cancel(lease_ticket);  // completed already: nothing happens
}

TEST_F(ParkedCallsTest, ShutdownCompletesParkedAndLaterCalls) {
  const std::string job = Submit(1);
  const std::string worker = Worker();
  ASSERT_TRUE(coordinator_->LeaseTrial(worker).ok());
  auto leased = Lease(worker, std::chrono::seconds(60));
  auto watched = Events(job, 1000);
  ASSERT_TRUE(ParkedReaches(2));
  parked_->Shutdown();
  ASSERT_EQ(leased.wait_for(kLimit), std::future_status::ready);
  ASSERT_EQ(watched.wait_for(kLimit), std::future_status::ready);
  const Assignment a = leased.get();
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());
  const Batch b = watched.get();
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->ended);

  auto later = Lease(worker, std::chrono::seconds(60));
  ASSERT_EQ(later.wait_for(kLimit), std::future_status::ready);
  EXPECT_FALSE(later.get()->has_value());
}

}  // namespace
}  // namespace peaknas::server
