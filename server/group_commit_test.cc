// GroupCommit over a real SQLite store wrapped to hold or fail a commit on the test's word
// (storage::testing::ControlledStore): calls that arrive during a commit share the next one,
// and each learns the status of the commit that carried its own writes.
#include "server/group_commit.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/temp_dir.h"
#include "storage/sqlite_store.h"
#include "storage/testing/controlled_store.h"

namespace peaknas::server {
namespace {

using storage::testing::ControlledStore;

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sqlite = storage::SqliteStore::Open((dir_.path() / "db.sqlite").string(), {});
    ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
    store_ = std::make_unique<ControlledStore>(std::move(sqlite).value());
    commits_ = std::make_unique<GroupCommit>(
        *store_, [this](const Status& committed) { committed_.push_back(committed); });
  }

  // One call that creates a job, as the coordinator's calls write.
  Status Write() {
    std::unique_lock lock(mu_);
    auto turn = commits_->Enter(lock, true);
    if (!turn.ok()) return turn.status();
    if (auto job = store_->CreateJob("{}", 1); !job.ok()) return job.status();
    return commits_->Leave(lock, *turn);
  }
  // One call that only reads.
  Status Read() {
    std::unique_lock lock(mu_);
    auto turn = commits_->Enter(lock, false);
    if (!turn.ok()) return turn.status();
    if (auto jobs = store_->ListJobs(); !jobs.ok()) return jobs.status();
    return commits_->Leave(lock, *turn);
  }
  GroupCommit::Stats Stats() {
    std::lock_guard lock(mu_);
    return commits_->stats();
  }
  bool Eventually(const std::function<bool()>& condition) {
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!condition()) {
      if (std::chrono::steady_clock::now() > limit) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  base::TempDir dir_{"peaknas-group-commit"};
  std::unique_ptr<ControlledStore> store_;
  std::mutex mu_;
  std::vector<Status> committed_;  // guarded by mu_
  std::unique_ptr<GroupCommit> commits_;
};

TEST_F(GroupCommitTest, ALoneCallCommitsItsOwnWrites) {
  EXPECT_TRUE(Write().ok());
  const GroupCommit::Stats stats = Stats();
  EXPECT_EQ(stats.commits, 1);
  EXPECT_EQ(stats.writes, 1);
  ASSERT_EQ(committed_.size(), 1u);
  EXPECT_TRUE(committed_[0].ok());
}

TEST_F(GroupCommitTest, AReaderOfCommittedStateDoesNotWaitForACommit) {
  ASSERT_TRUE(Write().ok());
  EXPECT_TRUE(Read().ok());
  EXPECT_EQ(Stats().commits, 1);  // the write's commit only
}

// A commits alone and is held in the middle of its commit; B and C arrive meanwhile and wait at
// the gate. Their batch is one commit, which fails: A's status is OK, B's and C's are the
// failure, and their jobs are gone.
TEST_F(GroupCommitTest, CallsArrivingDuringACommitShareTheNextAndEachGetsItsOwnStatus) {
  auto control = store_->control();
  {
    std::lock_guard lock(control->mu);
    control->hold = true;
  }
  Status a, b, c;
  std::thread first([&] { a = Write(); });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(control->mu);
    return control->holding;
  }));
  std::thread second([&] { b = Write(); });
  ASSERT_TRUE(Eventually([&] { return Stats().waiting_at_gate == 1; }));
  std::thread third([&] { c = Write(); });
  ASSERT_TRUE(Eventually([&] { return Stats().waiting_at_gate == 2; }));
  {
    std::lock_guard lock(control->mu);
    control->fail_next = true;  // the commit after the held one
    control->hold = false;
  }
  control->cv.notify_all();
  first.join();
  second.join();
  third.join();

  EXPECT_TRUE(a.ok()) << a.ToString();
  EXPECT_EQ(b.code(), StatusCode::kInternal);
  EXPECT_NE(b.message().find("not committed"), std::string::npos) << b.ToString();
  EXPECT_EQ(c.code(), StatusCode::kInternal);
  const GroupCommit::Stats stats = Stats();
  EXPECT_EQ(stats.commits, 1);
  EXPECT_EQ(stats.failed_commits, 1);
  EXPECT_EQ(stats.writes, 1);  // A's: B's and C's never became durable
  ASSERT_EQ(committed_.size(), 2u);
  EXPECT_TRUE(committed_[0].ok());
  EXPECT_FALSE(committed_[1].ok());
  auto jobs = store_->ListJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 1u);  // A's only

  // The queue goes on: the next call commits.
  EXPECT_TRUE(Write().ok());
  EXPECT_EQ(Stats().commits, 2);
}

}  // namespace
}  // namespace peaknas::server
