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
};

struct TrialProcessOutcome {
  v1::TrialMetrics metrics;  // as the child measured them
  std::string export_path;   // the model it exported; empty: none
  // The child's resident-set high-water mark (getrusage of the reaped child): what the whole
  // trial process held at its largest.
  std::int64_t peak_rss_bytes = 0;
};

// Runs `argv` (a `once` command line with --events-fd 3), its stderr to `log_path` (truncated),
// and returns its outcome. `events` is called from this thread as the lines arrive. Errors:
//   * the child's own error, with its code and message (bad input, out of memory in LibTorch:
//     RESOURCE_EXHAUSTED, diverged training, ...);
//   * CANCELLED when `stop` was requested: the child is killed (SIGKILL) at once;
//   * UNAVAILABLE when it ended without an outcome (killed by a signal: the kernel's
//     out-of-memory killer sends SIGKILL; or exited early), naming how it ended and the log:
//     worth another try, maybe on another worker;
//   * FAILED_PRECONDITION when it cannot be started (naming the program).
StatusOr<TrialProcessOutcome> RunTrialProcess(const std::vector<std::string>& argv,
                                              const std::string& log_path, std::stop_token stop,
                                              const TrialProcessEvents& events = {});

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_TRIAL_PROCESS_H_
