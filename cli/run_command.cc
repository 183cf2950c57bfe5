#include "cli/run_command.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/app.h"
#include "base/status.h"
#include "base/subprocess.h"
#include "cli/client.h"
#include "cli/job_commands.h"
#include "peaknas/v1/peaknas.pb.h"
#include "proto/convert.h"
#include "search/architecture.h"
#include "search/units.h"

namespace peaknas::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// How long a child gets after SIGTERM before SIGKILL.
constexpr auto kWorkerGrace = std::chrono::seconds(20);
constexpr auto kServerGrace = std::chrono::seconds(10);
constexpr auto kServerStartTimeout = std::chrono::seconds(30);

// ---------------------------------------------------------------------------------------------
// Child processes

struct Child {
  std::string name;  // "peaknas-server", "worker 1"
  std::string log;   // where its stderr goes
  pid_t pid = -1;
};

// Starts `argv` with stdout to `stdout_fd` (-1: /dev/null) and stderr appended to `log`; the
// child gets its own process group (a terminal's Ctrl-C reaches only peaknas), the default
// signal mask, and SIGTERM when peaknas dies.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int stdout_fd, const std::string& log) {
  base::SpawnOptions options;
  options.stdin_fd = base::kDevNull;
  options.stdout_fd = stdout_fd >= 0 ? stdout_fd : base::kDevNull;
  options.stderr_path = log;
  options.own_process_group = true;
  options.die_with_parent = true;
  return base::Spawn(argv, options);
}

// The children of one run. Stops every child still running when destroyed.
class Children {
 public:
  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() { StopAll(); }

  void Add(Child child) {
    std::lock_guard<std::mutex> lock(mu_);
    children_.push_back(std::move(child));
  }

  // SIGTERM to the workers, then the server (the last one added first among equals), each
  // SIGKILLed after its grace period.
  void StopAll() {
    std::vector<Child> workers, servers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Child& c : children_) (c.name == "peaknas-server" ? servers : workers).push_back(c);
      children_.clear();
    }
    Stop(workers, kWorkerGrace);
    Stop(servers, kServerGrace);
  }

  // From the signal thread, on a second signal: SIGKILL everything now (reaped by StopAll).
  // Forgets a child already reaped.
  void Forget(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(children_, [pid](const Child& c) { return c.pid == pid; });
  }

  void KillNow() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Child& c : children_) kill(c.pid, SIGKILL);
  }
  void Terminate(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Child& c : children_) {
      if (c.name == name) kill(c.pid, SIGTERM);
    }
  }

  // The first child that has exited, reaped ("" if none).
  std::string Exited() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = children_.begin(); it != children_.end(); ++it) {
      int status = 0;
      if (waitpid(it->pid, &status, WNOHANG) == it->pid) {
        const std::string what =
            it->name + " exited (" + base::DescribeExit(status) + "; see " + it->log + ")";
        children_.erase(it);
        return what;
      }
    }
    return "";
  }

 private:
  static void Stop(const std::vector<Child>& children, Clock::duration grace) {
    for (const Child& c : children) kill(c.pid, SIGTERM);
    const auto deadline = Clock::now() + grace;
    for (const Child& c : children) {
      int status = 0;
      const auto left = std::max(Clock::duration::zero(), deadline - Clock::now());
      if (!base::WaitExitFor(c.pid, left, &status)) {
        kill(c.pid, SIGKILL);
        waitpid(c.pid, &status, 0);
      }
    }
  }

  std::mutex mu_;
  std::vector<Child> children_;  // guarded by mu_
};

// ---------------------------------------------------------------------------------------------
// Finding the programs

bool Executable(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && access(path.c_str(), X_OK) == 0;
}

// `flag_value` if set; else NAME beside this executable, in ../DIR/ of its build tree, or on PATH.
StatusOr<std::string> FindProgram(const std::string& flag_value, const std::string& flag,
                                  const std::string& name, const std::string& build_dir) {
  if (!flag_value.empty()) {
    if (!Executable(flag_value)) {
      return Status::InvalidArgument(flag + ": \"" + flag_value + "\" is not an executable file");
    }
    return fs::absolute(flag_value).string();
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& p :
         {self.parent_path() / name, self.parent_path().parent_path() / build_dir / name}) {
      if (Executable(p)) return p.lexically_normal().string();
    }
  }
  if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    std::size_t start = 0;
    while (start <= dirs.size()) {
      const std::size_t end = std::min(dirs.find(':', start), dirs.size());
      const fs::path p = fs::path(dirs.substr(start, end - start)) / name;
      if (end > start && Executable(p)) return p.string();
      start = end + 1;
    }
  }
  return Status::NotFound(name + " not found beside peaknas, in its build tree or on PATH; pass " +
                          flag + " PATH");
}

// ---------------------------------------------------------------------------------------------
// The job

StatusOr<v1::JobSpec> BuildSpec(const RunOptions& o, std::int64_t budget, int workers) {
  v1::JobSpec spec;
  spec.set_name("peaknas run");
  if (o.strategy == "evolution") spec.set_strategy(v1::STRATEGY_EVOLUTION);
  if (o.strategy == "random") spec.set_strategy(v1::STRATEGY_RANDOM);
  if (o.strategy == "pruning") spec.set_strategy(v1::STRATEGY_PRUNING);
  if (o.strategy == "scaling") spec.set_strategy(v1::STRATEGY_SCALING);
  if (o.strategy == "scaling" || o.strategy == "pruning") {
    // One base for both, so that their fronts compare: scaling sweeps it across sizes, pruning
    // starts from it scaled to 4x the budget and shrinks it where its peak sits. Two levels (one
    // if the space has only one), the widest widths allowed.
    const int levels = std::min(2, o.max_levels);
    const std::vector<int> widths =
        levels == 2 ? std::vector<int>{std::max(8, o.max_width / 2), o.max_width}
                    : std::vector<int>{o.max_width};
    const std::vector<int> enc(static_cast<std::size_t>(levels), 1);
    const std::vector<int> dec(static_cast<std::size_t>(levels - 1), 1);
    PEAKNAS_ASSIGN_OR_RETURN(
        const search::Architecture base,
        search::MakeArchitecture(widths, enc, dec, search::SkipKind::kAdd,
                                 search::UpsampleKind::kBilinear, search::DownsampleKind::kMaxPool,
                                 search::ActivationKind::kLeakyRelu));
    *spec.mutable_base_architecture() = proto::ToProto(base);
  }
  v1::Budget* b = spec.mutable_budget();
  b->set_bytes(budget);
  b->set_mode(v1::BUDGET_MODE_INFERENCE);
  b->set_batch(1);
  b->set_tile(o.tile);
  b->set_dtype(v1::DTYPE_FP32);
  v1::SearchSpace* s = spec.mutable_space();
  s->mutable_levels()->set_min(1);
  s->mutable_levels()->set_max(o.max_levels);
  s->mutable_width()->set_min(8);
  s->mutable_width()->set_max(o.max_width);
  s->mutable_enc_blocks()->set_min(1);
  s->mutable_enc_blocks()->set_max(2);
  s->mutable_dec_blocks()->set_min(1);
  s->mutable_dec_blocks()->set_max(2);
  spec.set_trials(o.trials);
  if (o.inherit.has_value()) spec.set_inherit(*o.inherit);
  if (o.strategy == "pruning" && o.max_steps > 0) {
    spec.mutable_pruning()->set_max_total_steps(o.max_steps);
  }
  if (o.strategy == "random" || o.strategy == "evolution") {
    spec.set_sampling(o.sampling == "uniform" ? v1::SAMPLING_UNIFORM : v1::SAMPLING_STRATIFIED);
  }
  spec.set_parallelism(workers);
  spec.mutable_fidelity()->set_steps(o.steps);
  spec.set_dataset("synthetic");
  spec.set_device_profile("cpu");
  spec.set_seed(o.seed);
  return spec;
}

// A job-spec validator's message ("spec.budget.bytes: ...") with the field named by the flag
// that sets it ("--budget: ..."); other fields keep their path.
std::string InFlagTerms(const std::string& message) {
  static const std::pair<std::string_view, std::string_view> kFlags[] = {
      {"spec.budget.bytes", "--budget"},
      {"spec.budget.tile", "--tile"},
      {"spec.trials", "--trials"},
      {"spec.parallelism", "--workers"},
      {"spec.fidelity.steps", "--steps"},
      {"spec.space.levels", "--max-levels"},
      {"spec.space.width", "--max-width"},
      {"spec.base_architecture", "--max-width"},
      {"spec.pruning.max_total_steps", "--max-steps"},
  };
  for (const auto& [field, flag] : kFlags) {
    if (message.starts_with(field)) return std::string(flag) + message.substr(field.size());
  }
  return message;
}

bool EmptyOrAbsent(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
}

// The run once every flag is checked; `children` stops what it started on every path.
Status RunSearch(const RunOptions& o, const v1::JobSpec& spec, int workers, std::ostream& out,
                 std::ostream& progress, bool live) {
  PEAKNAS_ASSIGN_OR_RETURN(const std::string server_bin,
                           FindProgram(o.server_bin, "--server-bin", "peaknas-server", "server"));
  PEAKNAS_ASSIGN_OR_RETURN(const std::string worker_bin,
                           FindProgram(o.worker_bin, "--worker-bin", "peaknas-worker", "worker"));
  std::error_code ec;
  const fs::path db = fs::absolute(o.db);
  const fs::path run_dir = db.parent_path();
  const fs::path logs = run_dir / "logs";
  fs::create_directories(logs, ec);
  if (ec) {
    return Status::InvalidArgument("--db: cannot create \"" + logs.string() +
                                   "\": " + ec.message());
  }
  const fs::path data = fs::absolute(o.data);

  Children children;
  std::atomic<bool> interrupted{false};
  std::atomic<int> signals{0};
  std::mutex job_mu;
  std::string address, job_id;  // guarded by job_mu
  base::SignalThread signal_thread({SIGINT, SIGTERM, SIGHUP}, [&](int sig) {
    interrupted = true;
    if (signals.fetch_add(1) > 0) {
      children.KillNow();
      return;
    }
    std::cerr << "peaknas run: " << strsignal(sig) << ": cancelling and stopping" << std::endl;
    std::string addr, id;
    {
      std::lock_guard<std::mutex> lock(job_mu);
      addr = address;
      id = job_id;
    }
    bool cancelled = false;
    if (!id.empty()) {
      auto stub = NewJobServiceStub(addr);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::CancelJobRequest request;
      request.set_job_id(id);
      v1::CancelJobResponse response;
      cancelled = stub->CancelJob(&context, request, &response).ok();
    }
    // Before a job exists (or if the cancel failed) stopping the server ends whatever waits.
    if (!cancelled) children.Terminate("peaknas-server");
  });
  // Stops the children while the signal thread still handles signals (a second Ctrl-C kills).
  struct StopChildren {
    Children& children;
    ~StopChildren() { children.StopAll(); }
  } stop_children{children};
  auto check_interrupted = [&]() -> Status {
    if (!interrupted) return Status::Ok();
    std::lock_guard<std::mutex> lock(job_mu);
    return Status(StatusCode::kAborted, job_id.empty() ? std::string("interrupted")
                                                       : "interrupted; job " + job_id +
                                                             " cancelled, every process stopped");
  };

  // The dataset.
  if (EmptyOrAbsent(data)) {
    progress << "generating the synthetic dataset in " << data.string()
             << " (peaknas-worker make-data)" << std::endl;
    const std::string log = (logs / "make-data.log").string();
    PEAKNAS_ASSIGN_OR_RETURN(const pid_t pid,
                             Spawn({worker_bin, "make-data", "--out", data.string()}, -1, log));
    children.Add({"make-data", log, pid});
    int status = 0;
    while (!base::WaitExitFor(pid, std::chrono::milliseconds(200), &status)) {
      if (interrupted) break;
    }
    PEAKNAS_RETURN_IF_ERROR(check_interrupted());
    children.Forget(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Status::FailedPrecondition("peaknas-worker make-data --out " + data.string() +
                                        " failed (" + base::DescribeExit(status) + "; see " + log +
                                        ")");
    }
  }

  // The server.
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Status::Internal("pipe failed");
  const std::string server_log = (logs / "server.log").string();
  StatusOr<pid_t> server = Spawn(
      {server_bin, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--db", db.string(),
       "--artifacts", (run_dir / "artifacts").string(), "--shutdown-grace-seconds", "1"},
      out_pipe[1], server_log);
  close(out_pipe[1]);
  if (!server.ok()) {
    close(out_pipe[0]);
    return server.status();
  }
  children.Add({"peaknas-server", server_log, *server});
  StatusOr<std::string> listen =
      base::ReadListenAddress(out_pipe[0], kServerStartTimeout, "peaknas-server",
                              [&children] { return children.Exited(); });
  if (!listen.ok() && listen.status().message().rfind("peaknas-server", 0) == 0) {
    listen =
        Status(listen.status().code(), listen.status().message() + " (see " + server_log + ")");
  }
  // Its second line: the HTTP address (the JSON API and the live event stream).
  StatusOr<std::string> http =
      listen.ok()
          ? base::ReadAnnouncement(out_pipe[0], "http on ", kServerStartTimeout, "peaknas-server",
                                   [&children] { return children.Exited(); })
          : listen.status();
  close(out_pipe[0]);  // the server writes nothing more on stdout
  PEAKNAS_RETURN_IF_ERROR(check_interrupted());
  PEAKNAS_RETURN_IF_ERROR(listen.status());
  PEAKNAS_RETURN_IF_ERROR(http.status());
  {
    std::lock_guard<std::mutex> lock(job_mu);
    address = *listen;
  }

  // The workers.
  for (int i = 1; i <= workers; ++i) {
    const std::string log = (logs / ("worker-" + std::to_string(i) + ".log")).string();
    PEAKNAS_ASSIGN_OR_RETURN(const pid_t pid,
                             Spawn({worker_bin, "serve", "--coordinator", *listen, "--data",
                                    "synthetic=" + data.string(), "--threads", "1", "--name",
                                    "local-" + std::to_string(i)},
                                   -1, log));
    children.Add({"worker " + std::to_string(i), log, pid});
  }

  // The job.
  std::string id;
  {
    auto stub = NewJobServiceStub(*listen);
    grpc::ClientContext context;
    SetUnaryDeadline(context);
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    v1::SubmitJobResponse response;
    PEAKNAS_RETURN_IF_ERROR(
        ToStatus(stub->SubmitJob(&context, request, &response), *listen, "SubmitJob"));
    id = response.job().id();
  }
  {
    std::lock_guard<std::mutex> lock(job_mu);
    job_id = id;
  }
  progress << "job " << id << " on peaknas-server " << *listen << ": " << o.strategy << ", "
           << o.trials << " trials of " << o.steps << " steps, " << workers
           << (workers == 1 ? " worker" : " workers") << ", inference budget "
           << search::FormatBytes(spec.budget().bytes()) << " at " << o.tile << "x" << o.tile
           << std::endl;
  progress << "follow it over HTTP: " << *http << "v1/jobs/" << id << " (events: " << *http
           << "v1/jobs/" << id << "/events; metrics: " << *http << "metrics)" << std::endl;
  if (interrupted) children.Terminate("peaknas-server");  // a signal raced the submit

  // Follow it; a child that dies on its own ends the watch through the server's exit, or is
  // reported after the job ends.
  JobCommandOptions watch;
  watch.coordinator = *listen;
  watch.job = id;
  const Status watched = RunWatch(watch, progress, live);
  PEAKNAS_RETURN_IF_ERROR(check_interrupted());
  PEAKNAS_RETURN_IF_ERROR(watched);

  // The result.
  JobCommandOptions frontier = watch;
  frontier.format = o.json ? "json" : "table";
  if (!o.json) out << "\n";
  PEAKNAS_RETURN_IF_ERROR(RunFrontier(frontier, out));
  // The Pareto picture beside the database, for reports.
  const fs::path svg = db.parent_path() / (db.stem().string() + "-frontier.svg");
  {
    std::ofstream file(svg);
    JobCommandOptions picture = frontier;
    picture.format = "svg";
    PEAKNAS_RETURN_IF_ERROR(RunFrontier(picture, file));
    if (!file) return Status::Internal("writing \"" + svg.string() + "\" failed");
  }
  progress << (o.json ? "" : "\n") << "frontier picture: " << svg.string() << "\n"
           << "database: " << db.string() << " (job " << id
           << "); models: " << (run_dir / "artifacts").string() << "/; logs: " << logs.string()
           << "/" << std::endl;
  progress << "inspect later: peaknas-server --db " << db.string() << " --artifacts "
           << (run_dir / "artifacts").string() << " & peaknas trials " << id << "; peaknas export "
           << id << " TRIAL -o model.pt" << std::endl;
  return Status::Ok();
}

}  // namespace

CLI::App* AddRunCommand(CLI::App& root, RunOptions& options) {
  CLI::App* c = root.add_subcommand(
      "run",
      "Run a search on this machine: starts peaknas-server on 127.0.0.1 with an SQLite file and "
      "N local peaknas-worker processes, generates the synthetic dataset if --data is absent, "
      "searches a small CPU-sized space (levels 1-3, widths 8-32, blocks 1-2) under an "
      "inference budget at batch 1, prints each finished trial, then the Pareto frontier and "
      "where the database is, and stops every process it started. Ctrl-C cancels the job.");
  c->add_option("--budget", options.budget, "Inference peak-memory budget (e.g. 64MiB, 1GB)")
      ->type_name("SIZE")
      ->capture_default_str();
  c->add_option("--trials", options.trials, "Trials to train, in [1, 100000]")
      ->capture_default_str();
  c->add_option("--workers", options.workers,
                "Local workers, one single-threaded process each (0 = one per core)")
      ->capture_default_str();
  c->add_option("--strategy", options.strategy,
                "Search strategy: evolution (NSGA-II), random, scaling (uniform shrinking of a "
                "2-level base U-Net of the space's widest widths) or pruning (the same base "
                "scaled to 4x the budget, trained once, then shrunk where its peak sits, each "
                "step inheriting the trained weights; --trials caps the chain)")
      ->check(CLI::IsMember({"evolution", "random", "scaling", "pruning"}))
      ->type_name("evolution|random|scaling|pruning")
      ->capture_default_str();
  c->add_option("--sampling", options.sampling,
                "How random and evolution draw candidates: stratified (a random shape scaled "
                "to a fraction of the budget, covering small to the budget) or uniform (the "
                "classic random-search baseline)")
      ->check(CLI::IsMember({"stratified", "uniform"}))
      ->type_name("stratified|uniform")
      ->capture_default_str();
  c->add_option("--max-steps", options.max_steps,
                "pruning: training steps the whole chain may spend, start and final fine-tune "
                "included (to compare strategies at equal compute); 0 = no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  auto* inherit = c->add_flag_function(
      "--inherit", [&options](std::int64_t) { options.inherit = true; },
      "scaling (default): the sweep trains from its largest point down, each point starting "
      "from the trained weights of the nearest larger one of the same depth; evolution: a "
      "child with its parent's levels and kinds starts from the parent's weights, narrowed, "
      "widened or deepened");
  c->add_flag_function(
       "--no-inherit", [&options](std::int64_t) { options.inherit = false; },
       "scaling, evolution (default): every trial trains from scratch")
      ->excludes(inherit);
  c->add_option("--data", options.data,
                "Dataset folder (SIDD layout); generated with peaknas-worker make-data when "
                "absent or empty")
      ->type_name("DIR")
      ->capture_default_str();
  c->add_option("--steps", options.steps, "Training steps per trial")->capture_default_str();
  c->add_option("--db", options.db, "SQLite database; logs/ and artifacts/ are created beside it")
      ->type_name("FILE")
      ->capture_default_str();
  c->add_flag("--json", options.json, "Print the frontier as JSON (progress goes to stderr)");
  c->add_option("--server-bin", options.server_bin,
                "peaknas-server to run (default: beside peaknas, its build tree, or PATH)")
      ->type_name("PATH");
  c->add_option("--worker-bin", options.worker_bin, "peaknas-worker to run (likewise)")
      ->type_name("PATH");
  c->add_option("--tile", options.tile,
                "Budgeted inference tile side, a multiple of 2^(levels-1) (small = fast tests)")
      ->capture_default_str();
  c->add_option("--max-width", options.max_width, "Widest channel count searched, a multiple of 8")
      ->capture_default_str();
  c->add_option("--max-levels", options.max_levels, "Deepest U-Net searched, in [1, 6]")
      ->capture_default_str();
  c->add_option("--seed", options.seed, "Search seed")->capture_default_str();
  return c;
}

Status RunRun(const RunOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const std::int64_t budget,
                           search::ParseByteSize(options.budget, "--budget"));
  if (budget <= 0) {
    return Status::InvalidArgument("--budget: \"" + options.budget + "\": must be positive");
  }
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("--trials", options.trials, 1, 100000));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("--workers", options.workers, 0, 1024, "0 = one per core"));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("--steps", options.steps, 1, 10000000));
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("--max-levels", options.max_levels, 1, 6));
  if (options.max_width < 8 || options.max_width > 512 || options.max_width % 8 != 0) {
    return Status::InvalidArgument("--max-width: " + std::to_string(options.max_width) +
                                   ": must be a multiple of 8 in [8, 512]");
  }
  const int align = 1 << (options.max_levels - 1);
  if (options.tile < 8 || options.tile > 16384 || options.tile % align != 0) {
    return Status::InvalidArgument("--tile: " + std::to_string(options.tile) +
                                   ": must be a multiple of " + std::to_string(align) +
                                   " in [8, 16384]");
  }
  if (options.inherit.has_value() && options.strategy != "evolution" &&
      options.strategy != "scaling") {
    return Status::InvalidArgument(std::string(*options.inherit ? "--inherit" : "--no-inherit") +
                                   ": only with --strategy evolution or scaling");
  }
  if (options.db.empty()) return Status::InvalidArgument("--db: empty path");
  if (options.data.empty()) return Status::InvalidArgument("--data: empty path");
  const int workers = options.workers > 0
                          ? options.workers
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  // The job as the server will see it, checked by the server's own validator before anything
  // starts, its errors in terms of the flags.
  PEAKNAS_ASSIGN_OR_RETURN(const v1::JobSpec spec, BuildSpec(options, budget, workers));
  if (Status valid = proto::ValidateJobSpec(spec, "spec"); !valid.ok()) {
    return Status(valid.code(), InFlagTerms(valid.message()));
  }
  std::ostream& progress = options.json ? std::cerr : out;
  const bool live = isatty(options.json ? STDERR_FILENO : STDOUT_FILENO) == 1;
  return RunSearch(options, spec, workers, out, progress, live);
}

}  // namespace peaknas::cli
