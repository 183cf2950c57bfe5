// Helpers for tests that run the project's programs as real processes: spawn with redirected
// output, wait for the exit status, read a log, and poll a condition with a deadline (tests
// wait for conditions, never for fixed times).
//
// Header-only; for test executables only. Thread-safety: the functions are independent and
// reentrant, except that Spawn inherits the caller's environment.
#ifndef PEAKNAS_TESTS_SUPPORT_PROCESS_H_
#define PEAKNAS_TESTS_SUPPORT_PROCESS_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace peaknas::testing {

// Spawns `args` (args[0] a path), stdout to `stdout_fd` (inherited when -1), stderr to the file
// `stderr_path` (inherited when empty), truncated or, with `append_stderr`, appended to.
// Returns the pid, or -1 when the program cannot be started.
inline pid_t Spawn(std::vector<std::string> args, int stdout_fd, const std::string& stderr_path,
                   bool append_stderr = false) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  if (!stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | (append_stderr ? O_APPEND : O_TRUNC),
                                     0644);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The exit status of `pid`, or 128 + the signal that ended it; -1 if it is not our child.
inline int Wait(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Polls `done` every 50 ms until it holds or `seconds` pass; returns its last value.
inline bool PollUntil(double seconds, const std::function<bool()>& done) {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace peaknas::testing

#endif  // PEAKNAS_TESTS_SUPPORT_PROCESS_H_
