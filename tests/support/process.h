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
#include <cstdio>
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

// Reads the first line a `peaknas-server --listen HOST:0` writes on `read_fd` ("listening on
// HOST:PORT") and closes the fd. Returns HOST:PORT, or empty when the line is missing or
// different; `first_line` gets what was read, for the failure message.
inline std::string ReadListeningAddress(int read_fd, std::string* first_line) {
  FILE* stream = fdopen(read_fd, "r");
  char line[256] = {};
  const bool got = stream != nullptr && fgets(line, sizeof line, stream) != nullptr;
  if (stream != nullptr) fclose(stream);
  *first_line = got ? line : "";
  const std::string prefix = "listening on ";
  if (first_line->rfind(prefix, 0) != 0) return "";
  std::string address = first_line->substr(prefix.size());
  while (!address.empty() && (address.back() == '\n' || address.back() == '\r')) {
    address.pop_back();
  }
  return address;
}

// A peaknas-server started by SpawnServer.
struct SpawnedServer {
  pid_t pid = -1;          // -1 when it could not be started
  std::string address;     // HOST:PORT it serves on; empty when no "listening on" line came
  std::string first_line;  // what it printed first, for the failure message
};

// Spawns `args` (a peaknas-server command line), stderr to `stderr_path` (appended to with
// `append_stderr`), and waits for the "listening on HOST:PORT" line it prints once it serves.
inline SpawnedServer SpawnServer(std::vector<std::string> args, const std::string& stderr_path,
                                 bool append_stderr = false) {
  SpawnedServer server;
  int out[2];
  if (pipe(out) != 0) return server;
  server.pid = Spawn(std::move(args), out[1], stderr_path, append_stderr);
  close(out[1]);
  if (server.pid <= 0) {
    close(out[0]);
    return server;
  }
  server.address = ReadListeningAddress(out[0], &server.first_line);
  return server;
}

// `peaknas-worker make-data` arguments for a dataset of a few 32-pixel images and 16-pixel
// validation blocks: seconds to make and to train on.
inline std::vector<std::string> TinyMakeDataArgs(const std::string& worker_binary,
                                                 const std::string& out_dir) {
  return {worker_binary,       "make-data", "--out",        out_dir, "--scenes",     "2",
          "--pairs-per-scene", "1",         "--size",       "32",    "--val-images", "1",
          "--val-blocks",      "2",         "--block-size", "16",    "--threads",    "1"};
}

// Runs `peaknas-worker make-data` with TinyMakeDataArgs into `out_dir`, stderr to `log_path`;
// returns its exit status (-1 when it could not be started).
inline int MakeTinyData(const std::string& worker_binary, const std::string& out_dir,
                        const std::string& log_path) {
  const pid_t pid = Spawn(TinyMakeDataArgs(worker_binary, out_dir), -1, log_path);
  return pid > 0 ? Wait(pid) : -1;
}

}  // namespace peaknas::testing

#endif  // PEAKNAS_TESTS_SUPPORT_PROCESS_H_
