// What the HTTP side costs: a Prometheus scrape of /metrics, the job's JSON and /livez, answered
// by HttpApi over a coordinator holding one job of --trials (default 10 000) reported trials
// (real SQLite file, synchronous=normal to fill it quickly). In-process, no sockets: the
// figure is the server's work per request. Target: a scrape at 10 000 trials costs under 5 ms.
// Prints each request's mean time, the scrape against GET of the job (its peer: the same trial
// counts from the store) and against the target; then the cost of printing the job's events as
// JSON, protobuf's printer against proto/json.h's.
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "base/temp_dir.h"
#include "proto/json.h"
#include "server/coordinator.h"
#include "server/http_api.h"
#include "server/service.h"
#include "storage/sqlite_store.h"

namespace peaknas::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "http_bench: " << message << "\n";
  std::exit(1);
}

v1::JobSpec Job(int trials) {
  v1::JobSpec spec;
  spec.set_name("http-bench");
  spec.set_strategy(v1::STRATEGY_RANDOM);
  spec.mutable_budget()->set_bytes(std::int64_t{64} << 30);
  spec.mutable_budget()->set_mode(v1::BUDGET_MODE_INFERENCE);
  spec.set_trials(trials);
  spec.set_parallelism(1024);
  spec.set_dataset("synthetic");
  return spec;
}

// Mean seconds per call of `request` over `seconds`.
double MeanSeconds(server::HttpApi& api, const std::string& target, double seconds) {
  const server::HttpRequest request{
      .method = "GET", .target = target, .body = "", .last_event_id = ""};
  long n = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::size_t bytes = 0;
  while (Clock::now() < end || n == 0) {
    const server::HttpResponse r = api.Handle(request);
    if (r.status != 200) Die(target + ": status " + std::to_string(r.status) + ": " + r.body);
    bytes = r.body.size();
    ++n;
  }
  const double mean = std::chrono::duration<double>(Clock::now() - start).count() / n;
  std::printf("  GET %-24s %9.3f ms  (%ld requests, %zu bytes each)\n", target.c_str(), mean * 1e3,
              n, bytes);
  return mean;
}

// Microseconds per event to print the job's first events as the event streams do (zero
// values included), with protobuf's printer and with proto::AppendJson, in alternating rounds.
void CompareEventJson(server::Coordinator& coordinator, const std::string& job, double seconds) {
  const auto events = coordinator.WatchEvents(job, 0, 500, std::chrono::milliseconds(0));
  if (!events.ok() || events->empty()) Die("no events to print");
  google::protobuf::util::JsonPrintOptions library_options;
  library_options.always_print_primitive_fields = true;
  const proto::JsonOptions options{.always_print_primitive_fields = true,
                                   .preserve_proto_field_names = false};
  double library_s = 0, ours_s = 0;
  long rounds = 0;
  std::string json;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end || rounds == 0) {
    auto t0 = Clock::now();
    for (const v1::JobEvent& e : *events) {
      json.clear();
      (void)google::protobuf::util::MessageToJsonString(e, &json, library_options);
    }
    auto t1 = Clock::now();
    for (const v1::JobEvent& e : *events) {
      json.clear();
      (void)proto::AppendJson(e, options, &json);
    }
    auto t2 = Clock::now();
    library_s += std::chrono::duration<double>(t1 - t0).count();
    ours_s += std::chrono::duration<double>(t2 - t1).count();
    ++rounds;
  }
  const double n = static_cast<double>(rounds) * static_cast<double>(events->size());
  std::printf(
      "event JSON (%zu events of the job, %ld rounds): protobuf %.2f us/event, "
      "proto::AppendJson %.2f us/event: %.1fx faster\n",
      events->size(), rounds, library_s / n * 1e6, ours_s / n * 1e6, library_s / ours_s);
}

int Main(int argc, char** argv) {
  CLI::App app("Cost of the coordinator's HTTP answers (/metrics, the job's JSON, /livez).");
  int trials = 10000;
  double seconds = 3;
  app.add_option("--trials", trials, "Reported trials of the job")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--seconds", seconds, "Time per request kind")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  const base::TempDir temp("peaknas-http-bench");  // removed with what the runs wrote
  if (!temp.ok()) Die("mkdtemp failed");
  const fs::path& dir = temp.path();
  storage::SqliteStore::Options store_options;
  store_options.synchronous = storage::Synchronous::kNormal;  // fills the job quickly
  auto store = storage::SqliteStore::Open((dir / "db.sqlite").string(), store_options);
  if (!store.ok()) Die(store.status().ToString());
  server::CoordinatorOptions options;
  options.export_models = false;  // nothing is uploaded here
  auto coordinator = server::Coordinator::Open(
      std::unique_ptr<storage::Store>(std::move(store).value()), (dir / "art").string(), options);
  if (!coordinator.ok()) Die(coordinator.status().ToString());
  auto grpc_server = server::GrpcServer::Start(**coordinator, "127.0.0.1:0");
  if (!grpc_server.ok()) Die(grpc_server.status().ToString());
  server::HttpApi api(**coordinator, (*grpc_server)->jobs(), (*grpc_server)->parked(),
                      &(*grpc_server)->rpc_metrics());

  const auto job = (*coordinator)->SubmitJob(Job(trials));
  if (!job.ok()) Die(job.status().ToString());
  v1::RegisterWorkerRequest reg;
  reg.set_name("bench");
  const auto worker = (*coordinator)->RegisterWorker(reg);
  if (!worker.ok()) Die(worker.status().ToString());
  std::fprintf(stderr, "filling the job with %d reported trials...\n", trials);
  for (int i = 0; i < trials; ++i) {
    const auto a = (*coordinator)->LeaseTrial(*worker);
    if (!a.ok() || !a->has_value()) Die("lease " + std::to_string(i) + " failed");
    v1::ReportResultRequest report;
    report.set_lease_id((*a)->lease_id());
    report.set_fencing_token((*a)->fencing_token());
    report.mutable_metrics()->set_psnr(25 + (i % 97) * 0.05);
    report.mutable_metrics()->set_noisy_psnr(20);
    if (const auto r = (*coordinator)->ReportResult(report); !r.ok()) Die(r.status().ToString());
  }

  std::printf("http_bench: one job of %d reported trials\n", trials);
  MeanSeconds(api, "/livez", seconds);
  const double scrape = MeanSeconds(api, "/metrics", seconds);
  const double get_job = MeanSeconds(api, "/v1/jobs/" + job->id(), seconds);
  MeanSeconds(api, "/v1/jobs/" + job->id() + "/frontier", seconds);
  std::printf(
      "metrics scrape: %.3f ms = %.2fx GET /v1/jobs/%s (the same trial counts); vs the "
      "5 ms target: %.2fx (%s)\n",
      scrape * 1e3, scrape / get_job, job->id().c_str(), scrape / 5e-3,
      scrape < 5e-3 ? "met" : "NOT met");
  CompareEventJson(**coordinator, job->id(), seconds);
  grpc_server->reset();
  coordinator->reset();
  return 0;
}

}  // namespace
}  // namespace peaknas::bench

int main(int argc, char** argv) { return peaknas::bench::Main(argc, argv); }
