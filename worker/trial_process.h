// One trial, one process: `serve` runs each trial as `peaknas-worker once` in a child process
// (the command line is OnceCommandLine, worker/once_command.h) and follows it through the JSON
// lines the child writes on its descriptor 3. So a trial's process peak is the trial's own (a
// fresh process, not the worker's cumulative high-water mark), an out-of-memory kill or a crash
// ends the trial and not the worker, and everything the trial held (memory, LibTorch's thread
// pools, the allocator's caches) is returned when it ends.
//
// The child is started in its own process group (a terminal's Ctrl-C reaches only the worker,
// which lets the current trial finish) and receives SIGTERM if the worker dies. Its stdout (the
// `once` report) is discarded; its stderr (progress lines) goes to a log file.
//
// Thread-safety: RunTrialProcess may run in several threads at once, one child each.
#ifndef PEAKNAS_WORKER_TRIAL_PROCESS_H_
#define PEAKNAS_WORKER_TRIAL_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "peaknas/v1/peaknas.pb.h"

namespace peaknas::worker {

struct TrialProcessEvents {
  std::function<void(std::string_view stage, std::string_view detail)> stage;
  std::function<void(int step, int steps, double loss)> progress;
  std::function<void(std::int64_t bytes)> data_bytes;  // the child's input data (once, early)
};

// A memory watch on the child: every kTrialWatchPeriod its resident-set high-water mark is read
// (/proc/PID/status) and passed to `resident`; when it exceeds `limit()` (0: no limit), the
// child is killed and the trial ends with RESOURCE_EXHAUSTED. `limit` may change as the trial
// goes (a worker learns the trial's data bytes). Both are called from a thread of
// RunTrialProcess's own.
struct TrialProcessWatch {
  std::function<std::int64_t()> limit;
  std::function<void(std::int64_t resident_peak)> resident;
};
inline constexpr std::chrono::milliseconds kTrialWatchPeriod{20};

struct TrialProcessOutcome {
  v1::TrialMetrics metrics;  // as the child measured them
  std::string export_path;   // the model it exported; empty: none
  // What the whole trial process held at its largest: the larger of the watch's readings of
  // its resident-set high-water mark (the child resets the mark to measure its passes) and the
  // mark getrusage gives for the reaped child. When the child said {"resident_peak": N}
  // before its timing (the latency, and the 100-MP pass with --latency-tile), the figure before
  // it: the larger of the readings until then and N. The timing's kernels and the 100-MP pass's
  // window are not the trial's own passes, and the calibration's "trial" figure is the trial's.
  std::int64_t peak_rss_bytes = 0;
};

// Runs `argv` (a `once` command line with --events-fd 3), its stderr to `log_path` (truncated),
// and returns its outcome. `events` is called from this thread as the lines arrive. Errors:
//   * the child's own error, with its code and message (bad input, out of memory in LibTorch:
//     RESOURCE_EXHAUSTED, diverged training, ...);
//   * CANCELLED when `stop` was requested: the child is killed (SIGKILL) at once;
//   * RESOURCE_EXHAUSTED when the watch found it over its limit (it is killed at once), naming
//     both figures;
//   * UNAVAILABLE when it ended without an outcome (killed by a signal: the kernel's
//     out-of-memory killer sends SIGKILL; or exited early), naming how it ended and the log:
//     worth another try, maybe on another worker;
//   * FAILED_PRECONDITION when it cannot be started (naming the program).
StatusOr<TrialProcessOutcome> RunTrialProcess(const std::vector<std::string>& argv,
                                              const std::string& log_path, std::stop_token stop,
                                              const TrialProcessEvents& events = {},
                                              const TrialProcessWatch& watch = {});

// The resident-set high-water mark of process `pid` (VmHWM of /proc/PID/status), bytes; 0 when
// it cannot be read (the process has ended).
std::int64_t ResidentPeakBytes(pid_t pid);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_TRIAL_PROCESS_H_
