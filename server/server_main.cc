// peaknas-server: the coordinator process.
//
//   peaknas-server [--listen HOST:PORT] [--http-listen HOST:PORT] --db FILE --artifacts DIR
//                  [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--insecure]
//                  [--tenant-max-jobs N] [--tenant-max-trials N]
//                  [--lease-seconds S] [--max-attempts N] [--shutdown-grace-seconds S]
//                  [--registration-burst N] [--registrations-per-second R]
//                  [--max-artifact-bytes N] [--max-total-artifact-bytes N]
//                  [--log-level LEVEL]
//   peaknas-server token create --db FILE --name NAME --role ROLE [--tenant T]
//   peaknas-server token list --db FILE
//   peaknas-server token revoke --db FILE --name NAME
//
// Callers are checked by bearer token (server/auth.h) once a token exists in the database;
// `token create` prints the new secret on stdout, once. gRPC and HTTP are TLS with --tls-cert
// and --tls-key (for gRPC, mutual TLS with --tls-client-ca: every client presents a certificate
// that CA signed). A plaintext listener on anything but a loopback address needs --insecure.
//
// Prints "listening on HOST:PORT" (the port actually bound; --listen with port 0 picks one) as
// the first line of stdout once it serves, then "http on http://HOST:PORT/" (https with TLS) when
// --http-listen is given (the JSON API, /metrics, /livez, /readyz: server/http_api.h); logs go to
// stderr (spdlog). SIGTERM or SIGINT stops it gracefully: no new calls, running calls get
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
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/app.h"
#include "base/subprocess.h"
#include "server/coordinator.h"
#include "server/http_api.h"
#include "server/http_server.h"
#include "server/service.h"
#include "storage/sqlite_store.h"
#include "storage/token_store.h"

namespace peaknas::server {
namespace {

constexpr std::string_view kProgram = "peaknas-server";

int Fail(const Status& status) {
  std::cerr << kProgram << ": " << base::OneLine(status.message()) << "\n";
  return base::kExitError;
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatMs(std::int64_t ms) {
  if (ms == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Whether HOST:PORT names a loopback interface (127.0.0.0/8, ::1, localhost).
bool Loopback(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// peaknas-server token create|list|revoke.
int TokenMain(int argc, char** argv) {
  CLI::App app(
      "Bearer tokens of the callers of this coordinator (stored hashed in its database). Once "
      "one exists, every call needs a valid token: reader (read jobs, frontiers, workers, "
      "models), submitter (a reader that also submits and cancels jobs), worker (register, "
      "lease, report, upload: nothing else), admin (everything, every tenant). Revocation takes "
      "effect on the next call, also while the server runs.",
      "peaknas-server token");
  base::ConfigureRootApp(app);
  std::string db, name, role, tenant;
  const auto add_db = [&db](CLI::App* command) {
    command->add_option("--db", db, "The server's SQLite database file")->required();
  };
  CLI::App* create = app.add_subcommand("create", "Create a token; prints its secret once");
  add_db(create);
  create->add_option("--name", name, "Its unique name (1-64 of A-Z a-z 0-9 . _ -)")->required();
  create->add_option("--role", role, "reader, submitter, worker or admin")
      ->required()
      ->check(CLI::IsMember({"reader", "submitter", "worker", "admin"}));
  create->add_option("--tenant", tenant,
                     "The tenant its jobs belong to and that it sees (default: its name); \"*\" "
                     "lets a reader see every tenant's jobs");
  CLI::App* list = app.add_subcommand("list", "List the tokens (never their secrets)");
  add_db(list);
  CLI::App* revoke = app.add_subcommand("revoke", "Revoke a token");
  add_db(revoke);
  revoke->add_option("--name", name, "The token's name")->required();

  // The schema (and its tokens table) comes with the store.
  const auto open = [&]() -> StatusOr<std::unique_ptr<storage::TokenStore>> {
    PEAKNAS_ASSIGN_OR_RETURN(const auto store, storage::SqliteStore::Open(db));
    return storage::TokenStore::Open(db);
  };
  const std::vector<base::Subcommand> commands = {
      {create,
       [&]() -> Status {
         PEAKNAS_ASSIGN_OR_RETURN(const auto tokens, open());
         if (tenant.empty()) tenant = name;
         PEAKNAS_ASSIGN_OR_RETURN(const std::string secret,
                                  tokens->Create(name, role, tenant, NowMs()));
         std::cout << secret << std::endl;
         std::cerr << kProgram << ": token \"" << name << "\" (" << role << ", tenant " << tenant
                   << ") created; its secret, above, is not stored and cannot be shown again\n";
         return Status::Ok();
       }},
      {list,
       [&]() -> Status {
         PEAKNAS_ASSIGN_OR_RETURN(const auto tokens, open());
         PEAKNAS_ASSIGN_OR_RETURN(const std::vector<storage::TokenInfo> all, tokens->List());
         std::printf("%-24s %-10s %-16s %-21s %s\n", "NAME", "ROLE", "TENANT", "CREATED",
                     "REVOKED");
         for (const storage::TokenInfo& t : all) {
           std::printf("%-24s %-10s %-16s %-21s %s\n", t.name.c_str(), t.role.c_str(),
                       t.tenant.c_str(), FormatMs(t.created_ms).c_str(),
                       FormatMs(t.revoked_ms).c_str());
         }
         return Status::Ok();
       }},
      {revoke,
       [&]() -> Status {
         PEAKNAS_ASSIGN_OR_RETURN(const auto tokens, open());
         PEAKNAS_RETURN_IF_ERROR(tokens->Revoke(name, NowMs()));
         std::cerr << kProgram << ": token \"" << name << "\" revoked\n";
         return Status::Ok();
       }},
  };
  return base::RunSubcommands(app, commands, argc, argv);
}

int Main(int argc, char** argv) {
  CLI::App app("peaknas-server: the peaknas coordinator (search, leases, frontier; gRPC).",
               std::string(kProgram));
  app.footer(
      "Callers: `peaknas-server token create|list|revoke --db FILE` manages the bearer tokens\n"
      "(roles reader, submitter, worker, admin); once one exists, every call needs one.\n"
      "See `peaknas-server token --help` and the README's \"Security\".");
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
  bool insecure = false;
  std::string tls_cert, tls_key, tls_client_ca;
  int tenant_max_jobs = 0;
  std::int64_t tenant_max_trials = 0;
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
  app.add_option("--tls-cert", tls_cert,
                 "Serve gRPC over TLS with this certificate chain (PEM); with --tls-key. "
                 "scripts/make-test-ca makes one for a test cluster")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "The certificate's private key (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", tls_client_ca,
                 "Require every gRPC client to present a certificate signed by this CA bundle "
                 "(PEM): mutual TLS")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", insecure,
               "Allow --listen and --http-listen on an address that is not loopback: the "
               "traffic is plaintext, so do it only on a network you trust, and create tokens "
               "(peaknas-server token) so that callers are checked");
  app.add_option("--tenant-max-jobs", tenant_max_jobs,
                 "The most unfinished jobs one tenant may have (0: no limit); beyond it "
                 "SubmitJob is RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tenant-max-trials", tenant_max_trials,
                 "The most trials one tenant's unfinished jobs may ask for together (0: no "
                 "limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
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

  if (tls_cert.empty() != tls_key.empty() || (!tls_client_ca.empty() && tls_cert.empty())) {
    std::cerr << kProgram << ": "
              << (tls_cert.empty() != tls_key.empty() ? "--tls-cert and --tls-key go together"
                                                      : "--tls-client-ca needs --tls-cert and "
                                                        "--tls-key")
              << " (see " << kProgram << " --help)\n";
    return base::kExitUsage;
  }
  const bool tls = !tls_cert.empty();
  for (const auto& [flag, address, plaintext] :
       {std::tuple{"--listen", listen, !tls}, {"--http-listen", http_listen, !tls}}) {
    if (!address.empty() && plaintext && !Loopback(address) && !insecure) {
      std::cerr << kProgram << ": " << flag << " " << address
                << ": not a loopback address; the traffic would be plaintext (add --insecure to "
                   "allow it on a trusted network)\n";
      return base::kExitUsage;
    }
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
  options.tenant_max_jobs = tenant_max_jobs;
  options.tenant_max_trials = tenant_max_trials;
  // The database: SQLite at --db, fsynced per --synchronous.
  storage::SqliteStore::Options store_options;
  store_options.synchronous =
      synchronous == "full" ? storage::Synchronous::kFull : storage::Synchronous::kNormal;
  auto store = storage::SqliteStore::Open(db, store_options);
  if (!store.ok()) return Fail(store.status());
  auto tokens = storage::TokenStore::Open(db);
  if (!tokens.ok()) return Fail(tokens.status());
  const Authenticator auth(tokens->get());
  spdlog::info(auth.required() ? "callers need a bearer token (peaknas-server token list)"
                               : "no tokens: every caller may do everything");
  auto coordinator = Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                       artifacts, options);
  if (!coordinator.ok()) return Fail(coordinator.status());
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (tls) {
    grpc::SslServerCredentialsOptions tls_options(
        tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    const auto read = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    tls_options.pem_key_cert_pairs.push_back({read(tls_key), read(tls_cert)});
    if (!tls_client_ca.empty()) tls_options.pem_root_certs = read(tls_client_ca);
    credentials = grpc::SslServerCredentials(tls_options);
  }
  auto server = GrpcServer::Start(**coordinator, listen, auth, credentials);
  if (!server.ok()) return Fail(server.status());
  std::cout << "listening on " << (*server)->address() << std::endl;
  if (tls) {
    spdlog::info("gRPC over TLS{}", tls_client_ca.empty() ? "" : ", client certificates required");
  }
  spdlog::info("serving on {} (db {}, artifacts {})", (*server)->address(), db, artifacts);
  HttpApi api(**coordinator, (*server)->jobs(), (*server)->parked(), &(*server)->rpc_metrics());
  std::unique_ptr<HttpServer> http;
  if (!http_listen.empty()) {
    auto started =
        HttpServer::Start(http_listen, [&api](const HttpRequest& r) { return api.Handle(r); }, 2,
                          {.cert_file = tls_cert, .key_file = tls_key});
    if (!started.ok()) return Fail(started.status());
    http = std::move(started).value();
    const std::string scheme = tls ? "https" : "http";
    std::cout << "http on " << scheme << "://" << http->address() << "/" << std::endl;
    spdlog::info("http on {}://{}/", scheme, http->address());
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
    if (argc >= 2 && std::string_view(argv[1]) == "token") {
      return peaknas::server::TokenMain(argc - 1, argv + 1);
    }
    return peaknas::server::Main(argc, argv);
  } catch (const std::exception& e) {
    return peaknas::base::ReportInternalError("peaknas-server", e);
  }
}
