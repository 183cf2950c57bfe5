// ParkedCalls: long-polling leases and event watches that wait without holding a thread each.
//
// A LeaseTrial long-poll or a WatchJob stream spends most of its life waiting for something
// the coordinator has not done yet. Here such a call is a ticket and a completion callback:
// parking it costs a map entry, not a thread, so ten thousand idle workers or a wall of
// dashboards cost memory, not threads. Two threads of this object do every blocking
// coordinator call on the parked calls' behalf (the callers' reactors never block):
//
//   * the lease thread asks Coordinator::LeaseTrials, in one group commit, for every call that
//     just arrived and, whenever the coordinator signals that trials were queued, for every
//     parked one (oldest first); calls that got nothing park again until their deadline.
//   * the watch thread reads a job's events for each call that arrived or whose job's log
//     grew (Coordinator::Signals::events_published), once for all the calls at the same place
//     of the same log, at most one round every 50 ms (the commits in between reach a watcher
//     as one batch); a call with nothing to read parks until its job publishes, or completes
//     as ended when the job has ended and its log has nothing more.
//
// Every callback runs exactly once, on one of these two threads, never inside Lease, Events or
// Cancel, and never with a lock of this object held: it may start the next call at once.
//
// Thread-safety: every public method is thread-safe. Lock order: the coordinator's lock, then
// this object's (the coordinator's signals take it); this object never calls the coordinator
// with its own lock held.
#ifndef PEAKNAS_SERVER_PARKED_CALLS_H_
#define PEAKNAS_SERVER_PARKED_CALLS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "peaknas/v1/peaknas.pb.h"
#include "server/coordinator.h"

namespace peaknas::server {

class ParkedCalls {
 public:
  using Clock = std::chrono::steady_clock;
  using LeaseDone = std::function<void(StatusOr<std::optional<v1::TrialAssignment>>)>;
  struct EventBatch {
    // Oldest first; empty only when `ended`. Shared, read-only, by every call served by the
    // same read of the log (a dashboard's viewers get one copy between them).
    std::shared_ptr<const std::vector<v1::JobEvent>> events =
        std::make_shared<const std::vector<v1::JobEvent>>();
    bool ended = false;  // the job has ended and its log has nothing more (or Shutdown)
  };
  using EventsDone = std::function<void(StatusOr<EventBatch>)>;

  // Installs itself as `coordinator`'s signals (Coordinator::SetSignals) and starts its two
  // threads. `event_batch`: the most events one EventsDone carries.
  explicit ParkedCalls(Coordinator& coordinator, int event_batch = 256);
  // Shutdown, then waits for its threads; the coordinator must outlive it.
  ~ParkedCalls();
  ParkedCalls(const ParkedCalls&) = delete;
  ParkedCalls& operator=(const ParkedCalls&) = delete;

  // A lease for `ask` (a worker and the bytes it has free) now or when one becomes possible
  // before `deadline`. `done` gets the assignment; nullopt when none came in time or on
  // Shutdown; the coordinator's error (an unknown worker, a failed commit); or CANCELLED after
  // Cancel. Returns the call's ticket.
  std::uint64_t Lease(Coordinator::LeaseAsk ask, Clock::time_point deadline, LeaseDone done);

  // The job's events after `after_sequence` (at most event_batch), as soon as there are any;
  // or none with `ended` when the job has ended and its log has nothing more, or on Shutdown;
  // NOT_FOUND for an unknown job; CANCELLED after Cancel. Returns the call's ticket.
  std::uint64_t Events(std::string job_id, std::int64_t after_sequence, EventsDone done);

  // The caller left: a call still parked completes with CANCELLED; one being served, or
  // already completed, is not affected.
  void Cancel(std::uint64_t ticket);

  // Completes every parked call (leases with nullopt, watches as ended) and every later one
  // at once. Idempotent.
  void Shutdown();

  // Calls waiting now: parked, or queued for their thread (tests and benchmarks).
  std::size_t size() const;

 private:
  struct LeaseCall {
    Coordinator::LeaseAsk ask;
    Clock::time_point deadline;
    LeaseDone done;
  };
  struct WatchCall {
    std::string job_id;
    std::int64_t after = 0;
    EventsDone done;
  };
  // Files `call` under a new ticket in `queue` and wakes its thread.
  template <typename Call>
  std::uint64_t Enqueue(std::map<std::uint64_t, Call>& queue, std::condition_variable& cv,
                        Call call);
  void OnTrialsQueued();
  void OnEventsPublished(const std::string& job_id, std::int64_t sequence);
  void RunLeases();
  void RunWatches();
  // One read of the call's job log: the batch to complete it with, or nullopt to park it.
  std::optional<StatusOr<EventBatch>> ReadEvents(const WatchCall& call);

  // The shortest time between two rounds of event reads (a watcher's latency at most this).
  static constexpr std::chrono::milliseconds kWatchRound{50};

  Coordinator& coordinator_;
  const int event_batch_;

  mutable std::mutex mu_;
  bool shutdown_ = false;          // guarded by mu_
  bool stop_ = false;              // guarded by mu_: the threads exit
  std::uint64_t next_ticket_ = 1;  // guarded by mu_
  // Calls a thread is serving with mu_ released, and those of them Cancel was called for: they
  // complete with CANCELLED instead of parking. Guarded by mu_.
  std::set<std::uint64_t> serving_;
  std::set<std::uint64_t> cancel_on_park_;

  // Leases, guarded by mu_. Tickets grow with arrival, so the maps are oldest first.
  std::condition_variable leases_cv_;
  std::map<std::uint64_t, LeaseCall> lease_arrivals_;  // not tried yet
  std::map<std::uint64_t, LeaseCall> lease_parked_;    // tried; waiting for trials
  std::set<std::pair<Clock::time_point, std::uint64_t>> lease_deadlines_;  // of lease_parked_
  std::vector<std::pair<std::uint64_t, LeaseDone>> lease_cancelled_;       // to complete
  bool trials_queued_ = false;

  // Watches, guarded by mu_.
  std::condition_variable watches_cv_;
  std::map<std::uint64_t, WatchCall> watch_ready_;          // to read (new, or their log grew)
  std::map<std::uint64_t, WatchCall> watch_parked_;         // read to the end; waiting for events
  std::multimap<std::string, std::uint64_t> watch_by_job_;  // of watch_parked_
  std::map<std::string, std::int64_t> published_;           // the last sequence signalled per job
  std::vector<std::pair<std::uint64_t, EventsDone>> watch_cancelled_;  // to complete

  std::thread lease_thread_;
  std::thread watch_thread_;
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_PARKED_CALLS_H_
