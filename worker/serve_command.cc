#include "worker/serve_command.h"

#include <CLI/CLI.hpp>
#include <string>

#include "proto/channel.h"
#include "search/units.h"
#include "worker/lease_loop.h"

namespace peaknas::worker {
namespace {

constexpr const char* kDescription =
    "Serve a coordinator: register with `peaknas-server`, long-poll it for trials, run each "
    "one (as `once` does), heartbeat progress, and report the metrics or the failure. Runs "
    "until SIGTERM or SIGINT.";

constexpr const char* kFooter =
    "The coordinator being away is not an error: every call is retried with exponential\n"
    "backoff (0.5 s to 10 s), logged on stderr. A trial whose job is cancelled (or whose lease\n"
    "is lost) is stopped at its next progress report and not reported.\n"
    "SIGTERM / SIGINT: no new lease; the current trial finishes and is reported; exit 0.\n"
    "A second signal exits at once (status 128 + signal).\n"
    "The coordinator gives this worker only trials it can run: on a dataset named by --data, in\n"
    "a precision the device supports, predicted to fit its memory. Trained models are uploaded\n"
    "when the coordinator asks for them.\n"
    "\n"
    "Packing (--max-concurrent above 1): several trials run at once when their calibrated device\n"
    "peaks fit (`peaknas calibration`). Each lease request states what is free: --memory less\n"
    "--memory-reserve, the running trials' reservations and their data (and, on cpu, no more than\n"
    "the system's available memory). Until the coordinator has a calibration, trials run alone;\n"
    "nothing joins a trial before it has reported its data size. A trial whose process goes\n"
    "over its reservation is stopped (on cpu, read every 20 ms) and comes back with 1.5x the\n"
    "headroom; the others go on.\n"
    "\n"
    "Examples:\n"
    "  peaknas-worker make-data --out /tmp/syn\n"
    "  peaknas-worker serve --coordinator 127.0.0.1:50051 --data synthetic=/tmp/syn\n"
    "  peaknas-worker --coordinator coord:50051 --data sidd=/data/sidd --device cuda:0\n"
    "  peaknas-worker serve --coordinator 127.0.0.1:50051 --data synthetic=/tmp/syn \\\n"
    "      --threads 1 --max-concurrent 4 --memory 6GiB\n"
    "\n"
    "Exit status: 0 after a signal; 1 for bad flags' values (data directory missing, unknown\n"
    "device); 2 for a command-line usage error.";

}  // namespace

CLI::App* AddServeCommand(CLI::App& root, ServeOptions& options) {
  CLI::App* cmd = root.add_subcommand("serve", kDescription);
  cmd->footer(kFooter);
  cmd->add_option("--coordinator", options.coordinator,
                  "Address of the coordinator's gRPC endpoint (peaknas-server --listen). "
                  "Required.")
      ->required()
      ->type_name("HOST:PORT");
  cmd->add_option("--token-file", options.token_file,
                  "A file holding this worker's bearer token (a `worker` token of "
                  "`peaknas-server token create`), for a coordinator that checks callers. "
                  "Default: $PEAKNAS_TOKEN, else none.")
      ->type_name("FILE");
  cmd->add_option("--tls-ca", options.tls_ca,
                  "Talk TLS: the CA bundle (PEM) the coordinator's certificate must chain to. "
                  "Default: $PEAKNAS_TLS_CA, else plaintext.")
      ->type_name("FILE");
  cmd->add_option("--tls-cert", options.tls_cert,
                  "This worker's client certificate (PEM), for a coordinator that requires one "
                  "(mutual TLS). Default: $PEAKNAS_TLS_CERT.")
      ->type_name("FILE");
  cmd->add_option("--tls-key", options.tls_key,
                  "The client certificate's private key (PEM). Default: $PEAKNAS_TLS_KEY.")
      ->type_name("FILE");
  cmd->add_option("--data", options.data,
                  "A dataset this worker can train on: the name jobs use (their `dataset`) and "
                  "its SIDD-layout directory. Repeat for several. Required.")
      ->required()
      ->take_all()
      ->allow_extra_args(false)
      ->type_name("NAME=PATH");
  cmd->add_option("--device", options.device, "Where trials run: cpu, cuda (= cuda:0) or cuda:N.")
      ->type_name("cpu|cuda:N")
      ->capture_default_str();
  cmd->add_option("--name", options.name, "Name shown by the coordinator. Default: HOSTNAME-PID.")
      ->type_name("NAME");
  cmd->add_option("--threads", options.threads,
                  "LibTorch intra-op threads; 0: LibTorch's default (one per core).")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--work-dir", options.work_dir, "Scratch directory (must exist). Default: none.")
      ->type_name("DIR");
  cmd->add_option("--latency-runs", options.latency_runs,
                  "Timed inference passes per trial, in [1, 1000]; the median is reported. Fewer "
                  "make trials of large networks quicker and their latency noisier.")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_flag("--no-latency-100mp", options.no_latency_100mp,
                "Do not time the frontier's 100-MP pass after each trial (a 10000x10000 image "
                "denoised seam-free at the largest tile that fits the job's budget, "
                "extrapolated from one window of each shape): the frontier then shows only the "
                "roofline's prediction. On a CPU, with a budget of GiBs, the timing takes about "
                "as long as denoising that image once.");
  cmd->add_option("--max-concurrent", options.max_concurrent,
                  "Trials run at once, in [1, 64]. Above 1, trials are packed by their "
                  "calibrated device peaks (see below); give each few --threads.")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--memory", options.memory,
                  "Memory trials may use on the device, e.g. 6GiB. Default: the device's "
                  "(physical RAM on cpu, the GPU's memory on cuda).")
      ->type_name("SIZE");
  cmd->add_option("--memory-reserve", options.memory_reserve,
                  "Memory kept free for the worker itself and the system, off --memory (and, "
                  "on cpu, off what the system has available).")
      ->type_name("SIZE")
      ->capture_default_str();
  cmd->add_option("--lease-wait", options.lease_wait,
                  "Seconds each LeaseTrial long poll waits for work (the server caps it).")
      ->type_name("S")
      ->capture_default_str();
  return cmd;
}

Status RunServe(const ServeOptions& o, std::ostream& log) {
  LeaseLoopOptions options;
  options.coordinator = o.coordinator;
  PEAKNAS_ASSIGN_OR_RETURN(const proto::ClientSecurity security,
                           proto::ReadClientSecurity({.token_file = o.token_file,
                                                      .tls_ca = o.tls_ca,
                                                      .tls_cert = o.tls_cert,
                                                      .tls_key = o.tls_key}));
  options.token = security.token;
  options.tls_ca_pem = security.ca_pem;
  options.tls_cert_pem = security.cert_pem;
  options.tls_key_pem = security.key_pem;
  for (const std::string& entry : o.data) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      return Status::InvalidArgument("data: \"" + entry + "\" is not NAME=PATH");
    }
    const std::string name = entry.substr(0, eq);
    if (options.data.count(name) != 0) {
      return Status::InvalidArgument("data: dataset \"" + name + "\" given twice");
    }
    options.data[name] = entry.substr(eq + 1);
  }
  options.device = o.device;
  options.name = o.name;
  options.threads = o.threads;
  options.work_dir = o.work_dir;
  options.latency_runs = o.latency_runs;
  options.time_latency_100mp = !o.no_latency_100mp;
  if (!(o.lease_wait >= 0 && o.lease_wait <= 300)) {
    return Status::InvalidArgument("lease-wait: " + std::to_string(o.lease_wait) +
                                   " is not in [0, 300]");
  }
  options.lease_wait_seconds = o.lease_wait;
  options.max_concurrent = o.max_concurrent;
  if (!o.memory.empty()) {
    PEAKNAS_ASSIGN_OR_RETURN(options.memory_bytes, search::ParseByteSize(o.memory, "memory"));
  }
  PEAKNAS_ASSIGN_OR_RETURN(options.memory_reserve_bytes,
                           search::ParseByteSize(o.memory_reserve, "memory-reserve"));
  return RunLeaseLoop(options, log);
}

}  // namespace peaknas::worker
