// Child processes and signals, for every program, test and benchmark of the project that runs
// another one: spawning with redirected streams (exec failures reported as errors, not as a
// child that exits 127), waiting with or without a deadline, reading a server's "listening on
// HOST:PORT" line, and a thread that takes the process's termination signals.
//
// Thread-safety: Spawn may be called from any thread (the child runs only async-signal-safe
// calls before exec); SignalThread is for a program's main thread (it changes the signal mask
// of the calling thread, which threads started later inherit).
#ifndef PEAKNAS_BASE_SUBPROCESS_H_
#define PEAKNAS_BASE_SUBPROCESS_H_

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"

namespace peaknas::base {

// What a stream of a spawned child is connected to: a file descriptor of ours (>= 0), or:
inline constexpr int kInherit = -1;  // the parent's own
inline constexpr int kDevNull = -2;  // /dev/null

struct SpawnOptions {
  int stdin_fd = kInherit;
  int stdout_fd = kInherit;
  // stderr: a file, created if needed (kept open across exec only in the child), appended to
  // or truncated; empty: `stderr_fd`.
  std::string stderr_path;
  bool append_stderr = true;
  int stderr_fd = kInherit;
  // Its own process group (a terminal's Ctrl-C reaches only the parent), and SIGTERM when the
  // parent dies (Linux's PR_SET_PDEATHSIG); the child also starts with no signal blocked.
  bool own_process_group = false;
  bool die_with_parent = false;
  // A descriptor of ours the child gets as its descriptor 3 (a protocol beside the standard
  // streams); -1: none.
  int fd3 = -1;
};

// Starts argv[0] (a path) with `argv`. Errors: INVALID_ARGUMENT for an empty argv or a stderr
// file that cannot be opened (naming it), FAILED_PRECONDITION when exec fails ("cannot run
// \"PATH\": No such file or directory"), INTERNAL for fork or pipe failures.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

// The exit status of child `pid` (blocking), or 128 + the signal that ended it; -1 if it is not
// our child.
int WaitExit(pid_t pid);
// Waits up to `timeout` for child `pid`; true (and its status in `*status`) when it ended.
bool WaitExitFor(pid_t pid, std::chrono::steady_clock::duration timeout, int* status);
// "status 3", "signal Killed": a wait status in words.
std::string DescribeExit(int wait_status);

// Reads the first line a server writes on `fd` ("listening on HOST:PORT") and returns
// HOST:PORT. Polls `failed` while waiting: a non-empty answer (a child that died, say) ends the
// wait with FAILED_PRECONDITION and that text. DEADLINE_EXCEEDED after `timeout`;
// FAILED_PRECONDITION when the stream ends first or the line says something else. `who` names
// the server in messages. Does not close `fd`.
StatusOr<std::string> ReadListenAddress(int fd, std::chrono::milliseconds timeout,
                                        const std::string& who,
                                        const std::function<std::string()>& failed = {});

// The next line a child writes on `fd` that starts with `prefix`, without it (the line must
// start so; FAILED_PRECONDITION otherwise), with ReadListenAddress's waiting and errors.
StatusOr<std::string> ReadAnnouncement(int fd, std::string_view prefix,
                                       std::chrono::milliseconds timeout, const std::string& who,
                                       const std::function<std::string()>& failed = {});

// Takes `signals` (SIGINT, SIGTERM, ...) on a thread of its own with sigwait, so that no
// handler ever runs in an arbitrary thread's context: the constructor blocks them in the
// calling thread (and so in every thread started after it) and `on_signal` runs on the
// signal thread for each one. The destructor stops the thread and restores the mask; a signal
// that arrived after the thread stopped is then handled by its default action.
class SignalThread {
 public:
  SignalThread(std::initializer_list<int> signals, std::function<void(int)> on_signal);
  ~SignalThread();
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  std::function<void(int)> on_signal_;
  sigset_t set_;
  sigset_t old_;
  std::thread thread_;
};

}  // namespace peaknas::base

#endif  // PEAKNAS_BASE_SUBPROCESS_H_
