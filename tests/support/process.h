// Helpers for tests that run the project's programs as real processes: spawn with redirected
// output, wait for the exit status, read a log, and poll a condition with a deadline (tests
// wait for conditions, never for fixed times).
//
// Header-only; for test executables only. Thread-safety: the functions are independent and
// reentrant, except that Spawn inherits the caller's environment.
#ifndef PEAKNAS_TESTS_SUPPORT_PROCESS_H_
#define PEAKNAS_TESTS_SUPPORT_PROCESS_H_

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/subprocess.h"

namespace peaknas::testing {

// Spawns `args` (args[0] a path), stdout to `stdout_fd` (inherited when -1), stderr to the file
// `stderr_path` (inherited when empty), truncated or, with `append_stderr`, appended to.
// Returns the pid, or -1 when the program cannot be started.
inline pid_t Spawn(std::vector<std::string> args, int stdout_fd, const std::string& stderr_path,
                   bool append_stderr = false) {
  base::SpawnOptions options;
  options.stdout_fd = stdout_fd >= 0 ? stdout_fd : base::kInherit;
  options.stderr_path = stderr_path;
  options.append_stderr = append_stderr;
  const StatusOr<pid_t> pid = base::Spawn(args, options);
  return pid.ok() ? *pid : -1;
}

// The exit status of `pid`, or 128 + the signal that ended it; -1 if it is not our child.
inline int Wait(pid_t pid) { return base::WaitExit(pid); }

// Signals `pid` (when > 0) and reaps it; `pid` becomes 0.
inline void StopAndReap(pid_t& pid, int signal) {
  if (pid <= 0) return;
  kill(pid, signal);
  Wait(pid);
  pid = 0;
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A test's folder at its end: removed when the test passed; otherwise kept, and its path and
// the named logs printed to stderr for whoever reads the failure.
inline void RemoveOrReport(const std::filesystem::path& dir, bool failed,
                           const std::vector<std::pair<std::string, std::filesystem::path>>& logs) {
  if (!failed) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return;
  }
  std::cerr << "kept " << dir << "\n";
  for (const auto& [name, path] : logs) std::cerr << name << " log:\n" << ReadFile(path);
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

// A peaknas-server started by SpawnServer.
struct SpawnedServer {
  pid_t pid = -1;          // -1 when it could not be started
  std::string address;     // HOST:PORT it serves on; empty when no "listening on" line came
  std::string first_line;  // when there is no address: why, for the failure message
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
  StatusOr<std::string> address =
      base::ReadListenAddress(out[0], std::chrono::seconds(60), "peaknas-server");
  close(out[0]);
  if (address.ok()) {
    server.address = *address;
  } else {
    server.first_line = address.status().message();
  }
  return server;
}

// The datasets process tests train on, seconds to make and to train on: kTiny, 2 training images
// of 32 pixels and 2 validation blocks of 16; kPatches, 2 training images of 96 pixels for
// 64-pixel patches and 2 validation blocks of 32 (a 3-level U-Net evaluates them).
enum class TestData { kTiny, kPatches };

// `peaknas-worker make-data` arguments for `kind` into `out_dir`.
inline std::vector<std::string> MakeDataArgs(const std::string& worker_binary,
                                             const std::string& out_dir, TestData kind) {
  const std::string size = kind == TestData::kPatches ? "96" : "32";
  const std::string block = kind == TestData::kPatches ? "32" : "16";
  return {worker_binary,       "make-data", "--out",        out_dir, "--scenes",     "2",
          "--pairs-per-scene", "1",         "--size",       size,    "--val-images", "1",
          "--val-blocks",      "2",         "--block-size", block,   "--threads",    "1"};
}

// Runs `peaknas-worker make-data` for `kind` into `out_dir`, stderr to OUT_DIR.log. "" when it
// succeeded; else its exit status and that log, for an assertion's message.
inline std::string MakeData(const std::string& worker_binary, const std::filesystem::path& out_dir,
                            TestData kind) {
  std::vector<std::string> args = MakeDataArgs(worker_binary, out_dir.string(), kind);
  const std::string log = out_dir.string() + ".log";
  const pid_t pid = Spawn(std::move(args), -1, log);
  const int status = pid > 0 ? Wait(pid) : -1;
  if (status == 0) return "";
  return "make-data exited with " + std::to_string(status) + ":\n" + ReadFile(log);
}

// A fresh "<tmp>/<prefix>-XXXXXX" for a test that keeps it when it fails (RemoveOrReport);
// empty when it cannot be made.
inline std::filesystem::path MakeTestDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

}  // namespace peaknas::testing

#endif  // PEAKNAS_TESTS_SUPPORT_PROCESS_H_
