// peaknas-server: the coordinator process.
//
//   peaknas-server [--listen HOST:PORT] [--http-listen HOST:PORT] --db FILE --artifacts DIR
//                  [--lease-seconds S] [--max-attempts N] [--shutdown-grace-seconds S]
//                  [--registration-burst N] [--registrations-per-second R]
//                  [--max-artifact-bytes N] [--max-total-artifact-bytes N]
//                  [--log-level LEVEL]
//
// Prints "listening on HOST:PORT" (the port actually bound; --listen with port 0 picks one) as
// the first line of stdout once it serves, then "http on http://HOST:PORT/" when --http-listen
// is given (the JSON API, /metrics, /livez, /readyz: server/http_api.h); logs go to stderr
// (spdlog). SIGTERM or SIGINT stops it gracefully: no new calls, running calls get
// --shutdown-grace-seconds (5), long polls return empty at once. (With gRPC 1.51, a client that
// keeps its connection open makes the stop take the whole grace period.) A background thread
// releases expired leases every second.
//
// Errors follow cli/app.h's convention: one line on stderr "peaknas-server: message", exit 2
// for usage errors, 1 for anything else.
#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <exception>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "base/app.h"
#include "base/subprocess.h"
#include "server/coordinator.h"
#include "server/http_api.h"
#include "server/http_server.h"
#include "server/service.h"
#include "storage/sqlite_store.h"

namespace peaknas::server {
namespace {

constexpr std::string_view kProgram = "peaknas-server";

int Fail(const Status& status) {
  std::cerr << kProgram << ": " << base::OneLine(status.message()) << "\n";
  return base::kExitError;
}

int Main(int argc, char** argv) {
  CLI::App app("peaknas-server: the peaknas coordinator (search, leases, frontier; gRPC).",
               std::string(kProgram));
  std::string listen = "127.0.0.1:50051";
  std::string http_listen;
  std::string db;
  std::string artifacts;
  double lease_seconds = 60;
  int max_attempts = 3;
  int registration_burst = CoordinatorOptions().registration_burst;
  std::int64_t max_artifact_bytes = CoordinatorOptions().max_artifact_bytes;
  std::int64_t max_total_artifact_bytes = CoordinatorOptions().max_total_artifact_bytes;
  double registration_rate = CoordinatorOptions().registrations_per_second;
  double grace_seconds = 5;
  std::string log_level = "info";
  std::string synchronous = "full";
  app.add_option("--listen", listen, "Address to serve on, HOST:PORT (port 0 picks a free one)")
      ->capture_default_str();
  app.add_option(
      "--http-listen", http_listen,
      "Also serve HTTP on HOST:PORT (port 0 picks a free one): the JSON API under /v1/, "
      "Prometheus metrics at /metrics, probes at /livez and /readyz. Off when not given; "
      "keep it on a loopback address unless the network is trusted");
  app.add_option("--db", db, "SQLite database file (created if absent)")->required();
  app.add_option("--artifacts", artifacts, "Directory for trained models (created if absent)")
      ->required();
  app.add_option("--lease-seconds", lease_seconds, "Lease duration without a heartbeat")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-attempts", max_attempts, "Leases a trial may get before it fails")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--max-artifact-bytes", max_artifact_bytes,
                 "The largest trained model one upload may store")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-total-artifact-bytes", max_total_artifact_bytes,
                 "The most the artifact directory may hold (the newest model of every trial); "
                 "0: no limit. Beyond it uploads are RESOURCE_EXHAUSTED and their trials fail "
                 "(a frontier point must be downloadable)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--registration-burst", registration_burst,
                 "Worker registrations taken at once; beyond it (and the rate below) "
                 "RegisterWorker is RESOURCE_EXHAUSTED and the worker retries")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  app.add_option("--registrations-per-second", registration_rate,
                 "The rate the registration allowance refills at")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--shutdown-grace-seconds", grace_seconds,
                 "On SIGTERM/SIGINT, how long running calls may finish before they are cancelled")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--synchronous", synchronous,
                 "Durability of the database: full (every commit is fsynced before it is "
                 "acknowledged: survives power loss; commits are grouped, so the cost is shared) "
                 "or normal (survives the server crashing, not the machine)")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << kProgram << ": " << base::OneLine(e.what()) << " (see " << kProgram
              << " --help)\n";
    return base::kExitUsage;
  }

  auto logger = spdlog::stderr_color_mt("peaknas-server");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  // SIGINT/SIGTERM are taken by one thread (base::SignalThread), started before any other so
  // that every thread started from here on (gRPC's included) has them blocked. The first one
  // stops the expiry loop and shuts the server down with the grace period.
  std::mutex mu;
  std::condition_variable stop_cv;
  bool stopping = false;          // guarded by mu
  GrpcServer* serving = nullptr;  // guarded by mu; set once the server runs
  const auto grace = std::chrono::milliseconds(static_cast<std::int64_t>(grace_seconds * 1000));
  base::SignalThread signals({SIGINT, SIGTERM}, [&](int signal) {
    spdlog::info("{}: shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
    // Under mu for the whole shutdown: main() clears `serving` only after it.
    std::lock_guard lock(mu);
    if (stopping) return;
    stopping = true;
    stop_cv.notify_all();
    if (serving != nullptr) serving->Shutdown(grace);
  });

  CoordinatorOptions options;
  options.lease_duration =
      std::chrono::milliseconds(static_cast<std::int64_t>(lease_seconds * 1000));
  options.max_attempts = max_attempts;
  options.registration_burst = registration_burst;
  options.max_artifact_bytes = max_artifact_bytes;
  options.max_total_artifact_bytes = max_total_artifact_bytes;
  options.registrations_per_second = registration_rate;
  // The database: SQLite at --db, fsynced per --synchronous.
  storage::SqliteStore::Options store_options;
  store_options.synchronous =
      synchronous == "full" ? storage::Synchronous::kFull : storage::Synchronous::kNormal;
  auto store = storage::SqliteStore::Open(db, store_options);
  if (!store.ok()) return Fail(store.status());
  auto coordinator = Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                       artifacts, options);
  if (!coordinator.ok()) return Fail(coordinator.status());
  auto server = GrpcServer::Start(**coordinator, listen);
  if (!server.ok()) return Fail(server.status());
  std::cout << "listening on " << (*server)->address() << std::endl;
  spdlog::info("serving on {} (db {}, artifacts {})", (*server)->address(), db, artifacts);
  HttpApi api(**coordinator, (*server)->jobs(), (*server)->parked(), &(*server)->rpc_metrics());
  std::unique_ptr<HttpServer> http;
  if (!http_listen.empty()) {
    auto started =
        HttpServer::Start(http_listen, [&api](const HttpRequest& r) { return api.Handle(r); });
    if (!started.ok()) return Fail(started.status());
    http = std::move(started).value();
    std::cout << "http on http://" << http->address() << "/" << std::endl;
    spdlog::info("http on http://{}/", http->address());
  }

  std::thread expirer([&] {
    auto next = std::chrono::steady_clock::now();
    std::unique_lock lock(mu);
    while (!stopping) {
      next += std::chrono::seconds(1);  // re-armed from the previous expiry: no drift
      if (stop_cv.wait_until(lock, next, [&] { return stopping; })) break;
      lock.unlock();
      auto released = (*coordinator)->ExpireLeases();
      if (!released.ok()) spdlog::error("lease expiry: {}", released.status().ToString());
      lock.lock();
    }
  });

  {
    std::lock_guard lock(mu);
    serving = server->get();
    if (stopping) serving->Shutdown(grace);  // a signal came while it started
  }

  (*server)->Wait();
  if (http) http->Stop();
  {
    std::lock_guard lock(mu);
    stopping = true;
  }
  stop_cv.notify_all();
  expirer.join();
  {
    std::lock_guard lock(mu);
    serving = nullptr;
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace peaknas::server

int main(int argc, char** argv) {
  try {
    return peaknas::server::Main(argc, argv);
  } catch (const std::exception& e) {
    return peaknas::base::ReportInternalError("peaknas-server", e);
  }
}
