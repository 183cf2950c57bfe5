// `peaknas-worker serve` (also `peaknas-worker --coordinator ADDR ...` without the subcommand
// name, DESIGN.md's form): the leasing worker of worker/lease_loop.h behind flags.
//
// As for `once` (worker/once_command.h): AddServeCommand declares the subcommand and binds its
// flags to a ServeOptions; RunServe checks them and runs the lease loop until SIGTERM / SIGINT.
// No LibTorch or gRPC headers here.
//
// Thread-safety: one RunServe per process.
#ifndef PEAKNAS_WORKER_SERVE_COMMAND_H_
#define PEAKNAS_WORKER_SERVE_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::worker {

struct ServeOptions {
  std::string coordinator;                // HOST:PORT; required
  std::string token_file;                 // --token-file: the bearer token (else $PEAKNAS_TOKEN)
  std::string tls_ca, tls_cert, tls_key;  // --tls-ca, --tls-cert, --tls-key (PEM files)
  std::vector<std::string> data;          // NAME=PATH, one or more
  std::string device = "cpu";             // cpu, cuda, cuda:N
  std::string name;                       // empty: HOSTNAME-PID
  int threads = 0;                        // LibTorch intra-op threads; 0: LibTorch's default
  std::string work_dir;                   // scratch directory (checked to exist); empty: none
  double lease_wait = 20;                 // LeaseTrial long-poll seconds
  int latency_runs = 10;          // timed inference passes per trial (the median is reported)
  bool no_latency_100mp = false;  // skip timing the 100-MP pass
  int max_concurrent = 1;         // trials at once (packing above 1)
  std::string memory;             // SIZE trials may use; empty: the device's
  std::string memory_reserve = "256MiB";  // SIZE kept free
};

// Adds the `serve` subcommand to `root`, its flags bound to `options`.
CLI::App* AddServeCommand(CLI::App& root, ServeOptions& options);

// Checks `options` (INVALID_ARGUMENT / NOT_FOUND naming the flag) and runs the lease loop,
// logging to `log`; returns OK after a SIGTERM / SIGINT once the current trial is reported.
Status RunServe(const ServeOptions& options, std::ostream& log);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_SERVE_COMMAND_H_
