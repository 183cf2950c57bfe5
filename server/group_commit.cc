#include "server/group_commit.h"

#include <chrono>

namespace peaknas::server {

StatusOr<GroupCommit::Turn> GroupCommit::Enter(std::unique_lock<std::mutex>& lock, bool write) {
  Turn turn;
  if (committing_) {
    ++gate_waiters_;
    gate_.wait(lock, [&] { return !committing_; });
    --gate_waiters_;
    turn.cohort = true;
  }
  if (write && !group_open_) {
    Status begun = store_.BeginGroup();
    if (!begun.ok()) {
      if (turn.cohort) --cohort_;
      // It was the one the queue waited for: somebody must lead.
      if (cohort_ == 0 && !writers_.empty()) CommitLocked(lock);
      return begun;
    }
    group_open_ = true;
  }
  ++in_flight_;
  turn.changes = store_.ChangeCount();
  return turn;
}

Status GroupCommit::Leave(std::unique_lock<std::mutex>& lock, Turn turn) {
  --in_flight_;
  if (turn.cohort) --cohort_;
  Writer self;
  self.wrote = store_.ChangeCount() != turn.changes;
  dirty_ = dirty_ || self.wrote;
  if (!dirty_) {
    // It saw only committed state. Close an empty group once nobody is using it.
    if (group_open_ && in_flight_ == 0 && writers_.empty()) {
      store_.RollbackGroup();
      group_open_ = false;
    }
    return Status::Ok();
  }
  writers_.push_back(&self);
  if (cohort_ == 0) CommitLocked(lock);
  done_.wait(lock, [&] { return self.done; });
  return self.status;
}

void GroupCommit::CommitLocked(std::unique_lock<std::mutex>& lock) {
  committing_ = true;
  std::deque<Writer*> batch;
  batch.swap(writers_);
  dirty_ = false;
  Status committed = Status::Ok();
  double seconds = 0;
  if (group_open_) {
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    committed = store_.CommitGroup();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    lock.lock();
    group_open_ = false;
  }
  if (committed.ok()) {
    ++stats_.commits;
    std::int64_t writes = 0;
    for (const Writer* w : batch) writes += w->wrote ? 1 : 0;
    stats_.writes += writes;
    stats_.commit_seconds.Observe(seconds);
    stats_.commit_size.Observe(static_cast<double>(writes));
  } else {
    ++stats_.failed_commits;
  }
  committed_(committed);
  const Status status =
      committed.ok() ? committed : Status::Internal("not committed: " + committed.ToString());
  for (Writer* w : batch) {
    w->status = status;
    w->done = true;
  }
  committing_ = false;
  cohort_ = gate_waiters_;  // everyone who waited goes next, as one batch
  gate_.notify_all();
  done_.notify_all();
}

GroupCommit::Stats GroupCommit::stats() const {
  Stats out = stats_;
  out.waiting_at_gate = gate_waiters_;
  return out;
}

}  // namespace peaknas::server
