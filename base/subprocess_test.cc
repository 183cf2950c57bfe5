#include "base/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "base/temp_dir.h"

namespace peaknas::base {
namespace {

using namespace std::chrono_literals;

// Each test gets a fresh directory under testing::TempDir(), removed afterwards.
class SubprocessTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(temp_.ok()); }
  static std::string Read(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Everything readable from `fd` until its writers are gone.
  static std::string Drain(int fd) {
    std::string out;
    char buffer[256];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0)
      out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
  base::TempDir temp_{"peaknas-subprocess"};
  const std::filesystem::path& dir_ = temp_.path();
};

TEST_F(SubprocessTest, RedirectsTheStreamsAndReportsTheExitStatus) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  SpawnOptions options;
  options.stdin_fd = kDevNull;
  options.stdout_fd = out[1];
  options.stderr_path = (dir_ / "err.log").string();
  auto pid = Spawn({"/bin/sh", "-c", "echo hi; echo oops >&2; read x || exit 3"}, options);
  close(out[1]);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(Drain(out[0]), "hi\n");
  close(out[0]);
  EXPECT_EQ(WaitExit(*pid), 3) << "stdin was /dev/null, so read fails";
  EXPECT_EQ(Read(dir_ / "err.log"), "oops\n");

  // Appended to, unless told to truncate.
  options.stdout_fd = kDevNull;
  ASSERT_EQ(WaitExit(*Spawn({"/bin/sh", "-c", "echo again >&2"}, options)), 0);
  EXPECT_EQ(Read(dir_ / "err.log"), "oops\nagain\n");
  options.append_stderr = false;
  ASSERT_EQ(WaitExit(*Spawn({"/bin/sh", "-c", "echo fresh >&2"}, options)), 0);
  EXPECT_EQ(Read(dir_ / "err.log"), "fresh\n");
}

TEST_F(SubprocessTest, AProgramThatCannotRunIsAnErrorNotAChild) {
  const auto missing = Spawn({(dir_ / "no-such-program").string()});
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("cannot run \"" + (dir_ / "no-such-program").string() +
                                            "\": No such file"),
            std::string::npos)
      << missing.status().message();
  EXPECT_EQ(Spawn({}).status().code(), StatusCode::kInvalidArgument);
  SpawnOptions unwritable;
  unwritable.stderr_path = (dir_ / "missing-dir" / "err.log").string();
  const auto refused = Spawn({"/bin/true"}, unwritable);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("missing-dir"), std::string::npos);
}

TEST_F(SubprocessTest, OwnGroupAndSignalsInWords) {
  SpawnOptions options;
  options.own_process_group = true;
  options.die_with_parent = true;
  auto pid = Spawn({"/bin/sh", "-c", "kill -STOP $$; exit 0"}, options);
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(getpgid(*pid), *pid) << "the child leads its own process group";
  int status = 0;
  EXPECT_FALSE(WaitExitFor(*pid, 0ms, &status)) << "it is stopped, not ended";
  kill(*pid, SIGKILL);
  ASSERT_TRUE(WaitExitFor(*pid, 10s, &status));
  EXPECT_EQ(DescribeExit(status), "signal Killed");
}

TEST_F(SubprocessTest, ReadsTheListenLineOrSaysWhy) {
  const auto run = [](const std::string& script, std::chrono::milliseconds timeout,
                      const std::function<std::string()>& failed = {}) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    SpawnOptions options;
    options.stdout_fd = out[1];
    const pid_t pid = *Spawn({"/bin/sh", "-c", script}, options);
    close(out[1]);
    StatusOr<std::string> address = ReadListenAddress(out[0], timeout, "the server", failed);
    kill(pid, SIGKILL);
    WaitExit(pid);
    close(out[0]);
    return address;
  };
  EXPECT_EQ(*run("echo 'listening on 127.0.0.1:4242'; exec sleep 30", 10s), "127.0.0.1:4242");
  const auto other = run("echo 'error: port taken'", 10s);
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("the server printed \"error: port taken\""),
            std::string::npos);
  const auto closed = run("exit 1", 10s);
  EXPECT_EQ(closed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(closed.status().message().find("closed its output"), std::string::npos);
  const auto died = run("exec sleep 30", 10s, [] { return std::string("the server exited"); });
  EXPECT_EQ(died.status().message(), "the server exited");
  const auto silent = run("exec sleep 30", 300ms);
  EXPECT_EQ(silent.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(SignalThread, TakesItsSignalsAndRestoresTheMask) {
  std::mutex mu;
  std::condition_variable cv;
  int got = 0;
  {
    SignalThread signals({SIGUSR1}, [&](int s) {
      std::lock_guard lock(mu);
      got = s;
      cv.notify_all();
    });
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    EXPECT_TRUE(sigismember(&now, SIGUSR1)) << "blocked in the calling thread";
    kill(getpid(), SIGUSR1);
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return got != 0; }));
    EXPECT_EQ(got, SIGUSR1);
  }
  sigset_t after;
  pthread_sigmask(SIG_BLOCK, nullptr, &after);
  EXPECT_FALSE(sigismember(&after, SIGUSR1)) << "the mask is restored";
}

}  // namespace
}  // namespace peaknas::base
