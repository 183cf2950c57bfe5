// GroupCommit: many calls, one store commit (leveldb's DBImpl::Write and its `writers_` queue
// are the model).
//
// Every call that touches the store takes a turn under its owner's mutex:
//
//   Enter   waits out a running commit (the gate) and, for a call that may write, opens the
//           store's group when none is open. The call then reads and writes the store as it
//           likes (each write a savepoint of the open group), still under the mutex.
//   Leave   queues the call as a writer when it wrote, or when it read writes not yet
//           committed (nothing it saw may be acknowledged before it is durable), and waits
//           for its writer to be done. The last call of its cohort (the calls that waited out
//           the previous commit together) becomes the leader: it takes the whole queue as one
//           batch, commits with the mutex released (an fsync), then gives every writer of the
//           batch the commit's status and wakes them. Calls arriving meanwhile wait at the
//           gate and go in the next batch.
//
// One fsync thus serves every call that arrived during the previous one. After each commit the
// owner's `committed` callback runs, mutex held, with the commit's status: on OK it publishes
// what became durable; on an error the store has rolled the group back and the owner rebuilds
// its in-memory state from the database (the callback may use the store: no group is open).
//
// Thread-safety: every method REQUIRES the owner's mutex, held through `lock`; the store is
// used only by the mutex's holder, or by the leader while the gate is closed (committing_).
#ifndef PEAKNAS_SERVER_GROUP_COMMIT_H_
#define PEAKNAS_SERVER_GROUP_COMMIT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "base/status.h"
#include "server/histogram.h"
#include "storage/store.h"

namespace peaknas::server {

class GroupCommit {
 public:
  struct Stats {
    std::int64_t commits = 0;  // batches committed
    std::int64_t writes = 0;   // calls with writes those batches carried
    std::int64_t failed_commits = 0;
    int waiting_at_gate = 0;  // calls waiting, now, for a running commit to end
    // Seconds each commit took at the store (with synchronous=FULL: its fsync), and the
    // state-changing calls each carried.
    Histogram commit_seconds{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}};
    Histogram commit_size{{1, 2, 4, 8, 16, 32, 64, 128, 256}};
  };
  // A call's turn, from Enter to Leave.
  struct Turn {
    bool cohort = false;       // it waited out a commit, and the next batch waits for it
    std::int64_t changes = 0;  // the store's ChangeCount when the turn began
  };

  GroupCommit(storage::Store& store, std::function<void(const Status&)> committed)
      : store_(store), committed_(std::move(committed)) {}

  // Waits out a running commit; opens the store's group for a call that may write. The
  // store's error when the group cannot be opened.
  StatusOr<Turn> Enter(std::unique_lock<std::mutex>& lock, bool write);
  // Ends the turn and waits until everything it wrote or read is committed, leading the
  // commit itself when it is the last of its cohort. The status of the commit that made its
  // writes durable ("not committed: ..." when that commit failed); OK at once when the call
  // saw nothing uncommitted.
  Status Leave(std::unique_lock<std::mutex>& lock, Turn turn);

  Stats stats() const;

 private:
  // A call waiting in the queue for the commit of its writes.
  struct Writer {
    bool wrote = false;  // it changed the store (a reader otherwise)
    bool done = false;   // its batch was committed (or failed): `status` is set
    Status status;
  };
  // Leads one commit: the whole queue as one batch, the store committed with the mutex
  // released, then every writer of the batch done with the result.
  void CommitLocked(std::unique_lock<std::mutex>& lock);

  storage::Store& store_;
  const std::function<void(const Status&)> committed_;

  // All guarded by the owner's mutex.
  bool group_open_ = false;       // the store has an open group
  bool dirty_ = false;            // it holds writes no commit has taken yet
  bool committing_ = false;       // a leader is committing, with the mutex released: the gate
  int gate_waiters_ = 0;          // calls waiting for that commit to end
  int cohort_ = 0;                // of those, released at its end and not yet left
  int in_flight_ = 0;             // calls between Enter and Leave
  std::deque<Writer*> writers_;   // calls waiting for the next commit, oldest first
  std::condition_variable gate_;  // committing_ went false
  std::condition_variable done_;  // some writers are done
  Stats stats_;
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_GROUP_COMMIT_H_
