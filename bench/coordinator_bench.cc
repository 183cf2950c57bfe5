// Coordinator throughput: lease -> report cycles per second, each report committed to SQLite,
// driven over loopback gRPC by concurrent fake workers, against Optuna's ask -> tell loop on
// SQLite storage (bench/optuna_peer.py on Debian's python3-optuna), measured in one run.
//
// The coordinator side is the real server: server::Coordinator::Open on a fresh SQLite file in
// a temporary directory, served by server::GrpcServer::Start on 127.0.0.1:0 — the same objects
// and code path peaknas-server's main() assembles (only the lease-expiry timer is left out; no
// lease expires during the run). A job with --trials trials, the random strategy, a generous
// budget and --parallelism is submitted over JobService; then --workers threads, each with its
// own channel and stub, register and loop: LeaseTrial (long-poll) -> ReportResult with fixed
// fake metrics at once. A cycle counts when ReportResult returns accepted, i.e. after the
// coordinator committed the result (and the frontier, when it changed) in one transaction. The
// rate is the cycles completed in a --window-seconds window after --warmup-seconds.
//
// Then the peer runs alone (the two never share the CPU): Optuna's study.ask() -> suggest the
// parameters -> study.tell(value) with RDBStorage on a fresh SQLite file, for --optuna-seconds.
//
// Prints both rates, the process CPU time per cycle on the coordinator side (server and fake
// workers share this process), and the ratio, held against the target of 50x. The exit
// status is non-zero when a side fails, not when the target is missed. docs/benchmarks.md has
// the command and the figures.
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/temp_dir.h"
#include "peaknas/v1/peaknas.grpc.pb.h"
#include "server/coordinator.h"
#include "server/http_api.h"
#include "server/http_server.h"
#include "server/service.h"
#include "storage/sqlite_store.h"
#include "tests/support/http_client.h"

namespace peaknas::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "coordinator_bench: " << message << "\n";
  std::exit(1);
}

v1::JobSpec BenchJob(int trials, int parallelism) {
  v1::JobSpec spec;
  spec.set_name("coordinator-bench");
  spec.set_strategy(v1::STRATEGY_RANDOM);
  auto* budget = spec.mutable_budget();
  budget->set_bytes(std::int64_t{64} << 30);  // generous: nothing is rejected for memory
  budget->set_mode(v1::BUDGET_MODE_INFERENCE);
  budget->set_batch(1);
  budget->set_tile(256);
  budget->set_dtype(v1::DTYPE_FP32);
  spec.set_trials(trials);
  spec.set_parallelism(parallelism);
  spec.mutable_fidelity()->set_steps(50);
  spec.set_dataset("synthetic");
  spec.set_device_profile("cpu");
  spec.set_seed(7);
  return spec;
}

// What a worker reports: the same fixed metrics every time.
v1::TrialMetrics FakeMetrics() {
  v1::TrialMetrics m;
  m.set_device("cpu");
  m.set_device_profile("cpu");
  m.set_intra_op_threads(1);
  m.set_steps(50);
  m.set_initial_loss(0.2);
  m.set_final_loss(0.05);
  m.set_train_seconds(1.0);
  m.set_train_steps_per_s(50);
  m.set_psnr(30.0);
  m.set_ssim(0.9);
  m.set_noisy_psnr(20.0);
  m.set_noisy_ssim(0.5);
  m.set_eval_blocks(4);
  m.set_eval_seconds(0.1);
  m.set_latency_ms_per_tile(5);
  m.set_latency_ms_per_mp(76);
  m.set_latency_100mp_s(7.6);
  return m;
}

// Threads of this process now.
int ThreadCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Workers that register for a dataset no job uses and keep a long poll parked at the server
// the whole time, re-issued whenever one ends: what a large idle cluster costs the server.
class IdleWorkers {
 public:
  IdleWorkers(const std::string& address, int n) : calls_(n) {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    stub_ = v1::WorkerService::NewStub(channel);
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      v1::RegisterWorkerRequest request;
      request.set_name("idle-" + std::to_string(i));
      request.add_datasets("no-such-dataset");
      v1::RegisterWorkerResponse response;
      const grpc::Status status = stub_->RegisterWorker(&context, request, &response);
      if (!status.ok()) Die("RegisterWorker: " + status.error_message());
      calls_[i].request.set_worker_id(response.worker_id());
      calls_[i].request.set_wait_seconds(30);
    }
    for (int i = 0; i < n; ++i) Poll(i);
  }
  // Stops re-issuing; waits for the polls still open (the server's shutdown ends them).
  void Drain() {
    std::unique_lock lock(mu_);
    stop_ = true;
    done_.wait(lock, [&] { return open_ == 0; });
  }

 private:
  struct Call {
    v1::LeaseTrialRequest request;
    v1::LeaseTrialResponse response;
    std::unique_ptr<grpc::ClientContext> context;
  };
  void Poll(int i) {
    std::lock_guard lock(mu_);
    if (stop_) return;
    ++open_;
    Call& call = calls_[i];
    call.context = std::make_unique<grpc::ClientContext>();
    call.response.Clear();
    stub_->async()->LeaseTrial(call.context.get(), &call.request, &call.response,
                               [this, i](const grpc::Status&) {
                                 {
                                   std::lock_guard lock(mu_);
                                   --open_;
                                 }
                                 done_.notify_all();
                                 Poll(i);
                               });
  }
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::vector<Call> calls_;
  std::mutex mu_;
  std::condition_variable done_;
  int open_ = 0;
  bool stop_ = false;
};

// A dashboard left open on the bench's job: `streams` Server-Sent-Event connections to its
// events (read and discarded as they come, by one thread), and the job page's fetches (the job
// and its frontier) `page_hz` times a second (0: none).
class DashboardLoad {
 public:
  DashboardLoad(const std::string& http, const std::string& job, int streams, int page_hz) {
    for (int i = 0; i < streams; ++i) {
      const int fd = testing::ConnectTo(http);
      if (fd < 0) Die("cannot connect to " + http);
      const std::string request =
          testing::RequestText("GET", "/v1/jobs/" + job + "/events", "", true);
      if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
        Die("cannot write to " + http);
      }
      fds_.push_back(fd);
    }
    reader_ = std::thread([this] {
      std::vector<pollfd> polls;
      for (int fd : fds_) polls.push_back({.fd = fd, .events = POLLIN, .revents = 0});
      char buffer[65536];
      while (!stop_) {
        if (poll(polls.data(), polls.size(), 100) <= 0) continue;
        for (pollfd& p : polls) {
          if ((p.revents & POLLIN) != 0 && read(p.fd, buffer, sizeof buffer) > 0) {
            bytes_ += 1;
          }
        }
      }
    });
    page_ = std::thread([this, http, job, page_hz] {
      while (!stop_ && page_hz > 0) {
        testing::Http(http, "GET", "/v1/jobs/" + job);
        testing::Http(http, "GET", "/v1/jobs/" + job + "/frontier");
        std::this_thread::sleep_for(std::chrono::milliseconds(1000 / page_hz));
      }
    });
  }
  ~DashboardLoad() {
    stop_ = true;
    reader_.join();
    page_.join();
    for (int fd : fds_) close(fd);
  }
  long reads() const { return bytes_; }

 private:
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<long> bytes_{0};
  std::thread reader_;
  std::thread page_;
};

struct CoordinatorResult {
  long stream_reads = 0;   // reads of event-stream data by the dashboard load
  int threads = 0;         // of the process during the window
  std::size_t parked = 0;  // calls parked at the server during the window
  long cycles = 0;
  long commits = 0;  // groups committed in the window
  long writes = 0;   // state-changing calls they held
  double seconds = 0;
  double cpu_seconds = 0;
  long errors = 0;
  bool starved = false;  // the job ran out of trials inside the window
};

CoordinatorResult RunCoordinator(const fs::path& dir, int workers, int trials, int parallelism,
                                 double warmup_s, double window_s, storage::Synchronous synchronous,
                                 int idle_workers, int http_streams, int page_hz) {
  storage::SqliteStore::Options store_options;
  store_options.synchronous = synchronous;
  auto store = storage::SqliteStore::Open((dir / "bench.db").string(), store_options);
  if (!store.ok()) Die("open: " + store.status().ToString());
  server::CoordinatorOptions options;
  options.registration_burst = 200'000;  // --idle-workers registers them all at once
  auto coordinator =
      server::Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                (dir / "artifacts").string(), options);
  if (!coordinator.ok()) Die("open: " + coordinator.status().ToString());
  auto server = server::GrpcServer::Start(**coordinator, "127.0.0.1:0");
  if (!server.ok()) Die("start: " + server.status().ToString());
  const std::string address = (*server)->address();

  {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto jobs = v1::JobService::NewStub(channel);
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    *request.mutable_spec() = BenchJob(trials, parallelism);
    v1::SubmitJobResponse response;
    const grpc::Status status = jobs->SubmitJob(&context, request, &response);
    if (!status.ok()) Die("SubmitJob: " + status.error_message());
  }

  std::unique_ptr<IdleWorkers> idle;
  if (idle_workers > 0) idle = std::make_unique<IdleWorkers>(address, idle_workers);
  // The HTTP side, as peaknas-server assembles it, with a dashboard's load on it.
  std::unique_ptr<server::HttpApi> api;
  std::unique_ptr<server::HttpServer> http;
  std::unique_ptr<DashboardLoad> dashboard;
  if (http_streams >= 0) {
    api = std::make_unique<server::HttpApi>(**coordinator, (*server)->jobs(), (*server)->parked(),
                                            &(*server)->rpc_metrics());
    auto started = server::HttpServer::Start(
        "127.0.0.1:0", [&api](const server::HttpRequest& r) { return api->Handle(r); });
    if (!started.ok()) Die("http: " + started.status().ToString());
    http = std::move(started).value();
    dashboard = std::make_unique<DashboardLoad>(http->address(), "j-1", http_streams, page_hz);
  }

  std::atomic<long> cycles{0};
  std::atomic<long> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const v1::TrialMetrics metrics = FakeMetrics();
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      // A channel argument unique to this worker keeps gRPC from sharing one connection.
      grpc::ChannelArguments args;
      args.SetInt("peaknas.bench.worker", w);
      auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      auto stub = v1::WorkerService::NewStub(channel);
      std::string worker_id;
      {
        grpc::ClientContext context;
        // The first call on a fresh channel waits for the connection instead of failing fast.
        context.set_wait_for_ready(true);
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::RegisterWorkerRequest request;
        request.set_name("bench-" + std::to_string(w));
        request.set_device("cpu");
        request.set_memory_bytes(std::int64_t{8} << 30);
        request.add_datasets("synthetic");
        request.set_threads(1);
        v1::RegisterWorkerResponse response;
        const grpc::Status status = stub->RegisterWorker(&context, request, &response);
        if (!status.ok()) Die("RegisterWorker: " + status.error_message());
        worker_id = response.worker_id();
      }
      v1::LeaseTrialRequest lease;
      lease.set_worker_id(worker_id);
      lease.set_wait_seconds(0.5);
      v1::ReportResultRequest report;
      *report.mutable_metrics() = metrics;
      while (!stop.load(std::memory_order_relaxed)) {
        v1::LeaseTrialResponse leased;
        {
          grpc::ClientContext context;
          const grpc::Status status = stub->LeaseTrial(&context, lease, &leased);
          if (!status.ok()) {
            errors.fetch_add(1);
            continue;
          }
        }
        if (!leased.has_assignment()) continue;
        report.set_lease_id(leased.assignment().lease_id());
        report.set_fencing_token(leased.assignment().fencing_token());
        grpc::ClientContext context;
        v1::ReportResultResponse reported;
        const grpc::Status status = stub->ReportResult(&context, report, &reported);
        if (status.ok() && reported.accepted()) {
          cycles.fetch_add(1, std::memory_order_relaxed);
        } else {
          errors.fetch_add(1);
        }
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::duration<double>(warmup_s));
  const long cycles0 = cycles.load();
  const auto t0 = Clock::now();
  const double cpu0 = CpuSeconds();
  const server::CoordinatorStats stats0 = (*coordinator)->stats();
  std::this_thread::sleep_for(std::chrono::duration<double>(window_s / 2));
  const int window_threads = ThreadCount();
  const std::size_t window_parked = (*server)->parked_calls();
  std::this_thread::sleep_for(std::chrono::duration<double>(window_s / 2));
  const long cycles1 = cycles.load();
  const auto t1 = Clock::now();
  const double cpu1 = CpuSeconds();
  const server::CoordinatorStats stats1 = (*coordinator)->stats();
  stop = true;
  for (auto& t : threads) t.join();
  const long stream_reads = dashboard ? dashboard->reads() : 0;
  dashboard.reset();
  (*server)->Shutdown(std::chrono::milliseconds(100));
  if (http) http->Stop();
  if (idle) idle->Drain();
  (*coordinator)->Shutdown();

  CoordinatorResult result;
  result.stream_reads = stream_reads;
  result.threads = window_threads;
  result.parked = window_parked;
  result.cycles = cycles1 - cycles0;
  result.commits = stats1.commits - stats0.commits;
  result.writes = stats1.writes - stats0.writes;
  result.seconds = std::chrono::duration<double>(t1 - t0).count();
  result.cpu_seconds = cpu1 - cpu0;
  result.errors = errors.load();
  result.starved = cycles1 >= trials;
  return result;
}

nlohmann::json RunPeer(const std::string& python, const std::string& peer, const fs::path& dir,
                       double seconds) {
  const std::string command = python + " " + peer + " --db " + (dir / "optuna.db").string() +
                              " --seconds " + std::to_string(seconds);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) Die("cannot run: " + command);
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int rc = pclose(pipe);
  if (rc != 0) Die("peer failed (" + std::to_string(rc) + "): " + command);
  try {
    return nlohmann::json::parse(out);
  } catch (const std::exception& e) {
    Die(std::string("peer output is not JSON: ") + e.what() + ": " + out);
  }
}

int Main(int argc, char** argv) {
  CLI::App app("Coordinator lease->report cycles/s against Optuna ask->tell on SQLite.");
  int workers = 16;
  int trials = 100000;
  int parallelism = 256;
  double warmup_s = 2;
  double window_s = 10;
  double optuna_s = 10;
  std::string python = "/usr/bin/python3";
  std::string peer = std::string(PEAKNAS_SOURCE_DIR) + "/bench/optuna_peer.py";
  bool skip_optuna = false;
  std::string synchronous = "full";
  int idle_workers = 0;
  int http_streams = 0;
  int page_hz = 4;
  int rounds = 1;
  app.add_option("--workers", workers, "Concurrent fake workers (threads, one channel each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--trials", trials, "Trials of the submitted job (enough not to run out)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--parallelism", parallelism, "The job's parallelism (queue depth)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--warmup-seconds", warmup_s, "Untimed start")->capture_default_str();
  app.add_option("--window-seconds", window_s, "Timed window")->capture_default_str();
  app.add_option("--optuna-seconds", optuna_s, "Timed window of the peer")->capture_default_str();
  app.add_option("--python", python, "Interpreter with optuna")->capture_default_str();
  app.add_option("--peer", peer, "bench/optuna_peer.py")->capture_default_str();
  app.add_flag("--skip-optuna", skip_optuna, "Coordinator side only");
  app.add_option("--synchronous", synchronous,
                 "The coordinator's SQLite durability: full (fsync per commit, survives power "
                 "loss; the server's default) or normal (survives a process crash)")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--idle-workers", idle_workers,
                 "Extra registered workers, for a dataset no job uses, each keeping a long poll "
                 "parked at the server during the run (what a large idle cluster costs)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  CLI::Option* dashboard_option =
      app.add_option("--http-streams", http_streams,
                     "Also run the coordinator a second time with its HTTP side on and a "
                     "dashboard open: this many event streams on the job (0: the HTTP server on, "
                     "no stream) and the job page's fetches --page-hz times a second; prints the "
                     "rate with it against the rate without. Not given: no second run")
          ->check(CLI::Range(0, 1000));
  app.add_option("--rounds", rounds,
                 "With --http-streams: rounds of a run without and a run with the dashboard, in "
                 "alternating order, each on a fresh database; prints each round's ratio and the "
                 "median (the machine's drift cancels out of the median)")
      ->capture_default_str()
      ->check(CLI::Range(1, 50));
  app.add_option("--page-hz", page_hz,
                 "With --http-streams: the job page's fetches (the job and its frontier) per "
                 "second (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::warn);
  const base::TempDir temp("peaknas-coordinator-bench");  // removed with what the runs wrote
  if (!temp.ok()) Die("mkdtemp failed");
  const fs::path& dir = temp.path();

  const CoordinatorResult c = RunCoordinator(
      dir, workers, trials, parallelism, warmup_s, window_s,
      synchronous == "full" ? storage::Synchronous::kFull : storage::Synchronous::kNormal,
      idle_workers, /*http_streams=*/-1, /*page_hz=*/0);
  const double rate = c.cycles / c.seconds;
  std::printf(
      "coordinator: %ld lease->report cycles in %.2f s = %.1f cycles/s "
      "(%d workers, parallelism %d, synchronous=%s; %.0f us CPU/cycle, server+workers "
      "in one process; %ld commits, %.1f writes/commit; %ld errors)%s\n",
      c.cycles, c.seconds, rate, workers, parallelism, synchronous.c_str(),
      1e6 * c.cpu_seconds / std::max<long>(c.cycles, 1), c.commits,
      static_cast<double>(c.writes) / std::max<long>(c.commits, 1), c.errors,
      c.starved ? " [job ran out of trials: raise --trials]" : "");
  std::printf("process threads during the window: %d, with %zu calls parked (%d idle workers)\n",
              c.threads, c.parked, idle_workers);
  std::fflush(stdout);
  if (dashboard_option->count() > 0) {
    // Rounds of one run without and one with the dashboard, in alternating order (ABBA), each
    // on a fresh database: the ratio of each round, then their median and range.
    const storage::Synchronous sync =
        synchronous == "full" ? storage::Synchronous::kFull : storage::Synchronous::kNormal;
    std::vector<double> ratios;
    for (int round = 0; round < rounds; ++round) {
      double without = 0, with = 0;
      for (int k = 0; k < 2; ++k) {
        const bool dashboard_on = (round % 2 == 0) == (k == 1);
        if (round == 0 && !dashboard_on) {
          without = rate;  // the first round's run without is the one printed above
          continue;
        }
        const fs::path run_dir =
            dir / ("round-" + std::to_string(round) + "-" + (dashboard_on ? "with" : "without"));
        fs::create_directories(run_dir);
        const CoordinatorResult d =
            RunCoordinator(run_dir, workers, trials, parallelism, warmup_s, window_s, sync,
                           idle_workers, dashboard_on ? http_streams : -1, page_hz);
        if (dashboard_on) {
          with = d.cycles / d.seconds;
          std::printf(
              "round %d with the dashboard open (%d event streams, the job page %dx/s): %.1f "
              "cycles/s (%.0f us CPU/cycle, %ld stream reads)\n",
              round + 1, http_streams, page_hz, with,
              1e6 * d.cpu_seconds / std::max<long>(d.cycles, 1), d.stream_reads);
        } else {
          without = d.cycles / d.seconds;
          std::printf("round %d without: %.1f cycles/s (%.0f us CPU/cycle)\n", round + 1, without,
                      1e6 * d.cpu_seconds / std::max<long>(d.cycles, 1));
        }
        std::fflush(stdout);
      }
      ratios.push_back(with / without);
      std::printf("round %d with/without: %.3f\n", round + 1, with / without);
    }
    std::vector<double> sorted = ratios;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.size() % 2 == 1
                              ? sorted[sorted.size() / 2]
                              : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
    std::printf(
        "with the dashboard open / without: median %.3f over %d round(s) (range %.3f-%.3f); "
        "target >= 0.95: %s\n",
        median, rounds, sorted.front(), sorted.back(), median >= 0.95 ? "met" : "NOT met");
    std::fflush(stdout);
  }
  if (!skip_optuna) {
    const nlohmann::json o = RunPeer(python, peer, dir, optuna_s);
    const double optuna_rate = o.at("trials_per_s").get<double>();
    std::printf("optuna %s: %d ask->tell trials in %.2f s = %.1f trials/s (%.0f us CPU/trial)\n",
                o.at("optuna").get<std::string>().c_str(), o.at("trials").get<int>(),
                o.at("seconds").get<double>(), optuna_rate,
                1e6 * o.at("cpu_seconds").get<double>() / std::max(1, o.at("trials").get<int>()));
    std::printf("ratio: %.1fx (target >= 50x: %s)\n", rate / optuna_rate,
                rate / optuna_rate >= 50 ? "met" : "NOT met");
  }
  return 0;
}

}  // namespace
}  // namespace peaknas::bench

int main(int argc, char** argv) { return peaknas::bench::Main(argc, argv); }
