#include "worker/trial_process.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "base/proc.h"
#include "base/subprocess.h"

namespace peaknas::worker {

namespace {

using Json = nlohmann::json;

// What the child said, line by line.
struct Outcome {
  std::optional<v1::TrialMetrics> metrics;
  std::string export_path;
  std::optional<Status> error;
  std::string bad_line;  // the first line that was not the protocol's, for the message
  // {"resident_peak": N}: the child's high-water mark before its timing; -1: not said.
  std::int64_t resident_peak = -1;
};

void HandleObject(const Json& j, const TrialProcessEvents& events, Outcome& outcome);

// One line of the child's: a JSON object of the protocol, or (remembered for the message) not.
void Handle(const std::string& line, const TrialProcessEvents& events, Outcome& outcome) {
  const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  try {
    if (j.is_object()) return HandleObject(j, events, outcome);
  } catch (const Json::exception&) {  // a field of the wrong type
  }
  if (outcome.bad_line.empty()) outcome.bad_line = line.substr(0, 200);
}

void HandleObject(const Json& j, const TrialProcessEvents& events, Outcome& outcome) {
  if (j.contains("stage")) {
    if (events.stage) {
      events.stage(j.value("stage", std::string()), j.value("detail", std::string()));
    }
  } else if (j.contains("progress")) {
    const Json& p = j["progress"];
    if (events.progress && p.is_object()) {
      events.progress(p.value("step", 0), p.value("steps", 0), p.value("loss", 0.0));
    }
  } else if (j.contains("resident_peak")) {
    outcome.resident_peak = std::max<std::int64_t>(j["resident_peak"].get<std::int64_t>(), 0);
  } else if (j.contains("data_bytes")) {
    if (events.data_bytes) events.data_bytes(j["data_bytes"].get<std::int64_t>());
  } else if (j.contains("metrics")) {
    v1::TrialMetrics metrics;
    const auto parsed = google::protobuf::util::JsonStringToMessage(j["metrics"].dump(), &metrics);
    if (!parsed.ok()) {
      outcome.error = Status::Internal("trial process: its metrics do not parse: " +
                                       std::string(parsed.message()));
      return;
    }
    outcome.metrics = std::move(metrics);
    if (j["export"].is_string()) outcome.export_path = j["export"].get<std::string>();
  } else if (j.contains("error")) {
    const Json& e = j["error"];
    const int code = e.value("code", static_cast<int>(StatusCode::kInternal));
    outcome.error =
        Status(code > 0 && code <= 16 ? static_cast<StatusCode>(code) : StatusCode::kInternal,
               e.value("message", std::string("(no message)")));
  }
}

}  // namespace

std::int64_t ResidentPeakBytes(pid_t pid) {
  return std::max<std::int64_t>(
      base::ProcKibField("/proc/" + std::to_string(pid) + "/status", "VmHWM"), 0);
}

StatusOr<TrialProcessOutcome> RunTrialProcess(const std::vector<std::string>& argv,
                                              const std::string& log_path, std::stop_token stop,
                                              const TrialProcessEvents& events,
                                              const TrialProcessWatch& watch) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Status::Internal(std::string("trial process: pipe: ") + std::strerror(errno));
  }
  base::SpawnOptions options;
  options.stdin_fd = base::kDevNull;
  options.stdout_fd = base::kDevNull;
  options.stderr_path = log_path;
  options.append_stderr = false;
  options.own_process_group = true;
  options.die_with_parent = true;
  options.fd3 = pipe_fds[1];
  const StatusOr<pid_t> spawned = base::Spawn(argv, options);
  close(pipe_fds[1]);
  if (!spawned.ok()) {
    close(pipe_fds[0]);
    return spawned.status();
  }
  const pid_t pid = *spawned;

  // A stop kills the child; `alive` keeps the kill from reaching a reaped (reused) pid.
  std::mutex mu;
  bool alive = true;
  bool killed = false;
  std::stop_callback on_stop(stop, [&] {
    std::lock_guard lock(mu);
    if (alive) {
      kill(-pid, SIGKILL);  // its process group: anything it started goes too
      kill(pid, SIGKILL);
      killed = true;
    }
  });

  // The watch: the largest reading, and the one that went over the limit (0: none did).
  std::int64_t watched_peak = 0, over = 0, over_limit = 0;
  std::condition_variable watch_cv;
  bool watch_done = false;
  std::thread watcher([&] {
    std::unique_lock lock(mu);
    while (!watch_cv.wait_for(lock, kTrialWatchPeriod, [&] { return watch_done; })) {
      if (!alive) continue;
      const std::int64_t resident = ResidentPeakBytes(pid);
      watched_peak = std::max(watched_peak, resident);
      lock.unlock();
      if (watch.resident) watch.resident(resident);
      const std::int64_t limit = watch.limit ? watch.limit() : 0;
      lock.lock();
      if (limit > 0 && resident > limit && alive && over == 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        over = resident;
        over_limit = limit;
      }
    }
  });

  Outcome outcome;
  // The whole trial's peak without its timing: the watch's largest reading and the child's
  // own high-water mark when it said it; -1 until then.
  std::int64_t before_timing = -1;
  std::string pending;
  char buffer[4096];
  while (true) {
    const ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // every copy of the write end is closed: the child has ended
    pending.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t end; (end = pending.find('\n')) != std::string::npos;) {
      Handle(pending.substr(0, end), events, outcome);
      pending.erase(0, end + 1);
      if (outcome.resident_peak >= 0 && before_timing < 0) {
        std::lock_guard lock(mu);
        before_timing = std::max(watched_peak, outcome.resident_peak);
      }
    }
  }
  close(pipe_fds[0]);

  // Wait without reaping, so a stop racing with the end still kills the right process.
  siginfo_t info{};
  while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  {
    std::lock_guard lock(mu);
    alive = false;
    watch_done = true;
  }
  watch_cv.notify_all();
  watcher.join();
  int wait_status = 0;
  rusage usage{};
  while (wait4(pid, &wait_status, 0, &usage) < 0 && errno == EINTR) {
  }

  if (killed || stop.stop_requested()) return Status::Cancelled("trial process stopped");
  if (over > 0) {
    return Status::ResourceExhausted(
        "trial process went over its memory reservation: " + std::to_string(over >> 20) +
        " MiB resident, limit " + std::to_string(over_limit >> 20) + " MiB; stopped");
  }
  if (outcome.error) return *outcome.error;
  if (outcome.metrics && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
    TrialProcessOutcome out;
    out.metrics = std::move(*outcome.metrics);
    out.export_path = std::move(outcome.export_path);
    out.peak_rss_bytes =
        before_timing >= 0
            ? before_timing
            : std::max(watched_peak, static_cast<std::int64_t>(usage.ru_maxrss) * 1024);  // KiB
    return out;
  }
  std::string how = "trial process ended with " + base::DescribeExit(wait_status);
  if (WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL) {
    how += " (the kernel's out-of-memory killer?)";
  }
  how += " before reporting an outcome";
  if (!outcome.bad_line.empty()) how += "; it wrote \"" + outcome.bad_line + "\"";
  return Status::Unavailable(how + "; its log: " + log_path);
}

}  // namespace peaknas::worker
