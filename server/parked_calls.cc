#include "server/parked_calls.h"

#include <utility>

namespace peaknas::server {

ParkedCalls::ParkedCalls(Coordinator& coordinator, int event_batch)
    : coordinator_(coordinator), event_batch_(event_batch) {
  coordinator_.SetSignals({
      .trials_queued = [this] { OnTrialsQueued(); },
      .events_published = [this](const std::string& job_id,
                                 std::int64_t sequence) { OnEventsPublished(job_id, sequence); },
  });
  lease_thread_ = std::thread([this] { RunLeases(); });
  watch_thread_ = std::thread([this] { RunWatches(); });
}

ParkedCalls::~ParkedCalls() {
  coordinator_.SetSignals({});
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
    stop_ = true;
  }
  leases_cv_.notify_all();
  watches_cv_.notify_all();
  lease_thread_.join();
  watch_thread_.join();
}

template <typename Call>
std::uint64_t ParkedCalls::Enqueue(std::map<std::uint64_t, Call>& queue,
                                   std::condition_variable& cv, Call call) {
  std::uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = next_ticket_++;
    queue.emplace(ticket, std::move(call));
  }
  cv.notify_all();
  return ticket;
}

std::uint64_t ParkedCalls::Lease(Coordinator::LeaseAsk ask, Clock::time_point deadline,
                                 LeaseDone done) {
  return Enqueue(lease_arrivals_, leases_cv_, LeaseCall{std::move(ask), deadline, std::move(done)});
}

std::uint64_t ParkedCalls::Events(std::string job_id, std::int64_t after_sequence,
                                  EventsDone done) {
  return Enqueue(watch_ready_, watches_cv_,
                 WatchCall{std::move(job_id), after_sequence, std::move(done)});
}

void ParkedCalls::Cancel(std::uint64_t ticket) {
  std::lock_guard lock(mu_);
  const auto take = [&](auto& calls, auto& cancelled) {
    auto it = calls.find(ticket);
    if (it == calls.end()) return false;
    cancelled.emplace_back(ticket, std::move(it->second.done));
    return true;
  };
  if (auto it = lease_parked_.find(ticket); it != lease_parked_.end()) {
    lease_deadlines_.erase({it->second.deadline, ticket});
  }
  if (take(lease_parked_, lease_cancelled_)) {
    lease_parked_.erase(ticket);
  } else if (take(lease_arrivals_, lease_cancelled_)) {
    lease_arrivals_.erase(ticket);
  } else if (auto it = watch_parked_.find(ticket); it != watch_parked_.end()) {
    const auto [first, last] = watch_by_job_.equal_range(it->second.job_id);
    for (auto j = first; j != last; ++j) {
      if (j->second == ticket) {
        watch_by_job_.erase(j);
        break;
      }
    }
    take(watch_parked_, watch_cancelled_);
    watch_parked_.erase(it);
  } else if (take(watch_ready_, watch_cancelled_)) {
    watch_ready_.erase(ticket);
  } else {
    if (serving_.contains(ticket)) cancel_on_park_.insert(ticket);
    return;
  }
  leases_cv_.notify_all();
  watches_cv_.notify_all();
}

void ParkedCalls::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  leases_cv_.notify_all();
  watches_cv_.notify_all();
}

std::size_t ParkedCalls::size() const {
  std::lock_guard lock(mu_);
  return lease_arrivals_.size() + lease_parked_.size() + watch_ready_.size() + watch_parked_.size();
}

void ParkedCalls::OnTrialsQueued() {
  {
    std::lock_guard lock(mu_);
    trials_queued_ = true;
  }
  leases_cv_.notify_all();
}

void ParkedCalls::OnEventsPublished(const std::string& job_id, std::int64_t sequence) {
  bool woke = false;
  {
    std::lock_guard lock(mu_);
    std::int64_t& last = published_[job_id];
    last = std::max(last, sequence);
    const auto [first, end] = watch_by_job_.equal_range(job_id);
    for (auto it = first; it != end;) {
      auto call = watch_parked_.find(it->second);
      if (call->second.after < sequence) {
        watch_ready_.insert(watch_parked_.extract(call));
        it = watch_by_job_.erase(it);
        woke = true;
      } else {
        ++it;
      }
    }
  }
  if (woke) watches_cv_.notify_all();
}

// --- Leases ------------------------------------------------------------------------------------

void ParkedCalls::RunLeases() {
  using Result = StatusOr<std::optional<v1::TrialAssignment>>;
  std::unique_lock lock(mu_);
  while (true) {
    const auto ready = [&] {
      return stop_ || !lease_arrivals_.empty() || !lease_cancelled_.empty() ||
             (shutdown_ && !lease_parked_.empty()) || (trials_queued_ && !lease_parked_.empty()) ||
             (!lease_deadlines_.empty() && lease_deadlines_.begin()->first <= Clock::now());
    };
    if (lease_deadlines_.empty()) {
      leases_cv_.wait(lock, ready);
    } else {
      // A copy: while the wait has the lock released, the entry may be erased.
      const Clock::time_point next = lease_deadlines_.begin()->first;
      leases_cv_.wait_until(lock, next, ready);
    }
    if (stop_ && lease_arrivals_.empty() && lease_parked_.empty() && lease_cancelled_.empty()) {
      return;
    }

    // What completes without asking the coordinator: cancelled, past the deadline, shut down.
    std::vector<std::pair<LeaseDone, Result>> complete;
    for (auto& [ticket, done] : lease_cancelled_) {
      complete.emplace_back(std::move(done), Status(StatusCode::kCancelled, "the caller left"));
    }
    lease_cancelled_.clear();
    const auto now = Clock::now();
    while (!lease_deadlines_.empty() && (shutdown_ || lease_deadlines_.begin()->first <= now)) {
      const std::uint64_t ticket = lease_deadlines_.begin()->second;
      lease_deadlines_.erase(lease_deadlines_.begin());
      complete.emplace_back(std::move(lease_parked_.at(ticket).done),
                            std::optional<v1::TrialAssignment>());
      lease_parked_.erase(ticket);
    }
    if (shutdown_) {
      for (auto& [ticket, call] : lease_arrivals_) {
        complete.emplace_back(std::move(call.done), std::optional<v1::TrialAssignment>());
      }
      lease_arrivals_.clear();
    }

    // The batch: every new call, and every parked one when trials were queued.
    std::map<std::uint64_t, LeaseCall> batch = std::move(lease_arrivals_);
    lease_arrivals_.clear();
    if (trials_queued_) {
      trials_queued_ = false;
      batch.merge(lease_parked_);
      lease_parked_.clear();
      lease_deadlines_.clear();
    }
    std::vector<Coordinator::LeaseAsk> workers;
    workers.reserve(batch.size());
    for (const auto& [ticket, call] : batch) {
      workers.push_back(call.ask);
      serving_.insert(ticket);
    }
    lock.unlock();
    for (auto& [done, result] : complete) done(std::move(result));
    complete.clear();
    if (!batch.empty()) {
      std::vector<Result> results = coordinator_.LeaseTrials(workers);
      lock.lock();
      std::size_t i = 0;
      for (auto& [ticket, call] : batch) {
        Result& result = results[i++];
        serving_.erase(ticket);
        const bool cancelled = cancel_on_park_.erase(ticket) > 0;
        if (!result.ok() || result->has_value() || shutdown_ || call.deadline <= Clock::now()) {
          complete.emplace_back(std::move(call.done), std::move(result));
        } else if (cancelled) {
          complete.emplace_back(std::move(call.done),
                                Status(StatusCode::kCancelled, "the caller left"));
        } else {
          lease_deadlines_.emplace(call.deadline, ticket);
          lease_parked_.emplace(ticket, std::move(call));
        }
      }
      lock.unlock();
      for (auto& [done, result] : complete) done(std::move(result));
    }
    lock.lock();
  }
}

// --- Watches -----------------------------------------------------------------------------------

std::optional<StatusOr<ParkedCalls::EventBatch>> ParkedCalls::ReadEvents(const WatchCall& call) {
  auto events = coordinator_.WatchEvents(call.job_id, call.after, event_batch_, {});
  if (!events.ok()) return StatusOr<EventBatch>(events.status());
  if (!events->empty()) {
    return StatusOr<EventBatch>(EventBatch{
        std::make_shared<const std::vector<v1::JobEvent>>(std::move(events).value()), false});
  }
  // Nothing after `after`: a job that has ended adds nothing more. Its job_finished event
  // commits with its state, so a read after seeing the state has every event there will be.
  if (coordinator_.IsRunning(call.job_id)) return std::nullopt;  // from memory: no store
  auto job = coordinator_.GetJob(call.job_id);
  if (!job.ok()) return StatusOr<EventBatch>(job.status());
  const auto state = job->state();
  if (state != v1::JOB_STATE_SUCCEEDED && state != v1::JOB_STATE_FAILED &&
      state != v1::JOB_STATE_CANCELLED) {
    return std::nullopt;
  }
  events = coordinator_.WatchEvents(call.job_id, call.after, event_batch_, {});
  if (!events.ok()) return StatusOr<EventBatch>(events.status());
  const bool ended = events->empty();
  return StatusOr<EventBatch>(EventBatch{
      std::make_shared<const std::vector<v1::JobEvent>>(std::move(events).value()), ended});
}

void ParkedCalls::RunWatches() {
  std::unique_lock lock(mu_);
  auto last_round = Clock::now() - kWatchRound;
  while (true) {
    watches_cv_.wait(lock, [&] {
      return stop_ || !watch_ready_.empty() || !watch_cancelled_.empty() ||
             (shutdown_ && !watch_parked_.empty());
    });
    // At most one round of reads per kWatchRound: the commits in between reach each watcher
    // as one batch (one write to each stream) instead of one each.
    watches_cv_.wait_until(lock, last_round + kWatchRound,
                           [&] { return stop_ || shutdown_ || !watch_cancelled_.empty(); });
    last_round = Clock::now();
    if (stop_ && watch_ready_.empty() && watch_parked_.empty() && watch_cancelled_.empty()) {
      return;
    }
    std::vector<std::pair<EventsDone, StatusOr<EventBatch>>> complete;
    for (auto& [ticket, done] : watch_cancelled_) {
      complete.emplace_back(std::move(done), Status(StatusCode::kCancelled, "the caller left"));
    }
    watch_cancelled_.clear();
    if (shutdown_) {
      for (auto* calls : {&watch_parked_, &watch_ready_}) {
        for (auto& [ticket, call] : *calls) {
          complete.emplace_back(std::move(call.done), EventBatch{.ended = true});
        }
        calls->clear();
      }
      watch_by_job_.clear();
    }
    std::map<std::uint64_t, WatchCall> batch = std::move(watch_ready_);
    watch_ready_.clear();
    for (const auto& [ticket, call] : batch) serving_.insert(ticket);
    lock.unlock();
    for (auto& [done, result] : complete) done(std::move(result));
    // Watchers of one job at one position (a dashboard's many viewers, after the same
    // commit) share one read of the log.
    std::map<std::pair<std::string, std::int64_t>, std::optional<StatusOr<EventBatch>>> reads;
    for (auto& [ticket, call] : batch) {
      const auto key = std::make_pair(call.job_id, call.after);
      auto known = reads.find(key);
      if (known == reads.end()) known = reads.emplace(key, ReadEvents(call)).first;
      std::optional<StatusOr<EventBatch>> read = known->second;
      lock.lock();
      serving_.erase(ticket);
      const bool cancelled = cancel_on_park_.erase(ticket) > 0;
      if (read || cancelled || shutdown_) {
        lock.unlock();
        if (read) {
          call.done(std::move(*read));
        } else if (cancelled) {
          call.done(Status(StatusCode::kCancelled, "the caller left"));
        } else {
          call.done(EventBatch{.ended = true});
        }
        continue;
      }
      // Events published since the read come back through watch_ready_ at once.
      const auto published = published_.find(call.job_id);
      const std::string job = call.job_id;
      if (published != published_.end() && published->second > call.after) {
        watch_ready_.emplace(ticket, std::move(call));
      } else {
        watch_by_job_.emplace(job, ticket);
        watch_parked_.emplace(ticket, std::move(call));
      }
      lock.unlock();
    }
    lock.lock();
  }
}

}  // namespace peaknas::server
