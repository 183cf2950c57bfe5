#include "base/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace peaknas::base {
namespace {

using Clock = std::chrono::steady_clock;

std::string Errno(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

// Ends the signal thread: sent to it with pthread_kill, never delivered to the process.
constexpr int kStopSignal = SIGUSR2;

}  // namespace

StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return Status::InvalidArgument("spawn: empty command line");
  int stderr_fd = options.stderr_fd;
  int opened_stderr = -1;
  if (!options.stderr_path.empty()) {
    opened_stderr =
        open(options.stderr_path.c_str(),
             O_WRONLY | O_CREAT | O_CLOEXEC | (options.append_stderr ? O_APPEND : O_TRUNC), 0644);
    if (opened_stderr < 0) {
      return Status::InvalidArgument("cannot write \"" + options.stderr_path +
                                     "\": " + std::strerror(errno));
    }
    stderr_fd = opened_stderr;
  }
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  const auto target = [null_fd](int fd) { return fd == kDevNull ? null_fd : fd; };
  const int in = target(options.stdin_fd), out = target(options.stdout_fd), err = target(stderr_fd);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // A pipe that closes on a successful exec carries an exec failure's errno back.
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    if (opened_stderr >= 0) close(opened_stderr);
    if (null_fd >= 0) close(null_fd);
    return Status::Internal(Errno("pipe", e));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {  // async-signal-safe calls only
    if (options.own_process_group) setpgid(0, 0);
    if (options.die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    // dup2 clears FD_CLOEXEC on the copy; a stream already on its number is made inheritable.
    const auto attach = [](int fd, int number) {
      if (fd < 0) return;
      if (fd == number) {
        fcntl(fd, F_SETFD, 0);
      } else {
        dup2(fd, number);
      }
    };
    attach(in, STDIN_FILENO);
    attach(out, STDOUT_FILENO);
    attach(err, STDERR_FILENO);
    attach(options.fd3, 3);  // last: the standard streams are copied off 3 if one was on it
    execv(args[0], args.data());
    const int e = errno;
    (void)!write(status_pipe[1], &e, sizeof e);
    _exit(127);
  }
  const int fork_errno = errno;
  close(status_pipe[1]);
  if (opened_stderr >= 0) close(opened_stderr);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) {
    close(status_pipe[0]);
    return Status::Internal(Errno("fork", fork_errno));
  }
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(status_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  close(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    waitpid(pid, nullptr, 0);
    return Status::FailedPrecondition("cannot run \"" + argv[0] +
                                      "\": " + std::strerror(exec_errno));
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool WaitExitFor(pid_t pid, Clock::duration timeout, int* status) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return "status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return std::string("signal ") + strsignal(WTERMSIG(wait_status));
  return "status " + std::to_string(wait_status);
}

StatusOr<std::string> ReadListenAddress(int fd, std::chrono::milliseconds timeout,
                                        const std::string& who,
                                        const std::function<std::string()>& failed) {
  return ReadAnnouncement(fd, "listening on ", timeout, who, failed);
}

StatusOr<std::string> ReadAnnouncement(int fd, std::string_view prefix,
                                       std::chrono::milliseconds timeout, const std::string& who,
                                       const std::function<std::string()>& failed) {
  const auto deadline = Clock::now() + timeout;
  std::string line;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return Status(StatusCode::kDeadlineExceeded, who + " did not report its address within " +
                                                       std::to_string(timeout.count() / 1000) +
                                                       " s");
    }
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left, 200)));
    if (r < 0 && errno != EINTR) return Status::Internal(Errno("poll", errno));
    if (r > 0) {
      char c;
      const ssize_t n = read(fd, &c, 1);
      if (n == 1) {
        if (c == '\n') break;
        line += c;
        continue;
      }
      if (n == 0) {
        const std::string why = failed ? failed() : "";
        return Status::FailedPrecondition(
            why.empty() ? who + " closed its output before reporting its address" : why);
      }
    }
    if (failed) {
      if (std::string why = failed(); !why.empty()) return Status::FailedPrecondition(why);
    }
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.rfind(prefix, 0) != 0) {
    return Status::FailedPrecondition(who + " printed \"" + line + "\" instead of \"" +
                                      std::string(prefix) + "...\"");
  }
  return line.substr(prefix.size());
}

SignalThread::SignalThread(std::initializer_list<int> signals, std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  sigemptyset(&set_);
  for (int s : signals) sigaddset(&set_, s);
  sigaddset(&set_, kStopSignal);
  pthread_sigmask(SIG_BLOCK, &set_, &old_);
  thread_ = std::thread([this] {
    while (true) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (sig == kStopSignal) return;
      on_signal_(sig);
    }
  });
}

SignalThread::~SignalThread() {
  pthread_kill(thread_.native_handle(), kStopSignal);
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace peaknas::base
