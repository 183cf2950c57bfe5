// `peaknas run`: the one-machine default (DESIGN.md, "Processes" and "Command line"). It starts
// `peaknas-server` on 127.0.0.1 (port 0) with an SQLite file and N local `peaknas-worker serve`
// processes, generates the built-in synthetic dataset when the data folder is absent or empty,
// submits a small search built from the flags, follows it (the `watch` output), prints the frontier
// (the `frontier` table, or JSON with --json) and where the database and logs are, then stops the
// workers and the server (SIGTERM, then SIGKILL after a grace period). The CLI never links
// LibTorch: the programs run as child processes (fork/exec, each in its own process group, with
// PR_SET_PDEATHSIG so they die with peaknas).
//
// Ctrl-C (SIGINT), SIGTERM or SIGHUP: the job is cancelled, every child stopped, and the command
// fails ("interrupted ..."); a second signal kills the children at once. Every child is stopped
// on every exit path. Errors: INVALID_ARGUMENT naming the flag (--budget, --trials, ...) before
// anything starts; a child that cannot start or dies early, FAILED_PRECONDITION / UNAVAILABLE
// naming it and its log file; a job that ends FAILED or CANCELLED, ABORTED.
//
// Thread-safety: RunRun is meant for main() (it blocks signals and starts a signal thread).
#ifndef PEAKNAS_CLI_RUN_COMMAND_H_
#define PEAKNAS_CLI_RUN_COMMAND_H_

#include <optional>
#include <ostream>
#include <string>

#include "base/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::cli {

// The flags of `peaknas run`; every field has its default.
struct RunOptions {
  std::string budget = "64MiB";         // inference peak budget (a size)
  int trials = 6;                       // trials to train
  int workers = 0;                      // local workers; 0 = one per core
  std::string strategy = "evolution";   // evolution | random | scaling | pruning
  std::string sampling = "stratified";  // stratified | uniform (random, evolution)
  std::int64_t max_steps = 0;           // pruning: training steps the chain may spend; 0 = any
  // evolution, scaling: trials inherit a trained parent's weights (--inherit / --no-inherit);
  // nullopt: the strategy's default (scaling yes, evolution no).
  std::optional<bool> inherit;
  std::string data = "data/synthetic";  // dataset folder; generated when absent or empty
  int steps = 1000;                     // training steps per trial
  std::string db = "runs/peaknas.db";   // SQLite file; logs and artifacts go beside it
  bool json = false;                    // print the frontier as JSON
  std::string server_bin;               // peaknas-server; "" = found beside peaknas or on PATH
  std::string worker_bin;               // peaknas-worker; likewise
  int tile = 256;                       // budgeted inference tile side
  int max_width = 32;                   // widest channel count of the search space
  int max_levels = 3;                   // deepest U-Net of the search space
  unsigned long long seed = 1;          // search seed
};

CLI::App* AddRunCommand(CLI::App& root, RunOptions& options);

// Runs the search; writes the progress and the frontier to `out` (progress to stderr with
// --json, so stdout is one JSON document).
Status RunRun(const RunOptions& options, std::ostream& out);

}  // namespace peaknas::cli

#endif  // PEAKNAS_CLI_RUN_COMMAND_H_
