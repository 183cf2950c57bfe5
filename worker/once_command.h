// `peaknas-worker once`: one trial run locally, reported as one JSON object on stdout
// (DESIGN.md, "Command line"; the trial itself is worker/trial.h).
//
// As in the `peaknas` CLI (cli/estimate_command.h), the command has two halves: AddOnceCommand
// declares the subcommand and binds its flags to a OnceOptions; RunOnce validates them, runs
// the trial and writes the report. Bad input comes back as a Status whose one-line message
// names the offending flag, architecture field or path; main() prints it.
//
// Thread-safety: one RunOnce per process at a time (see trial.h).
#ifndef PEAKNAS_WORKER_ONCE_COMMAND_H_
#define PEAKNAS_WORKER_ONCE_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"
#include "search/job_defaults.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::worker {

struct TrialSpec;  // worker/trial.h

struct OnceOptions {
  // A path to an architecture JSON file, or the JSON itself (when it starts with '{').
  std::string arch;
  std::string data;                      // SIDD-layout dataset directory (make-data writes one)
  int steps = search::defaults::kSteps;  // training steps
  int train_batch = 8;                   // training batch
  int patch = 64;                        // training patch side
  int batch = 1;                         // inference batch for the peak and latency measurements
  int tile = 256;                  // inference tile side for the peak and latency measurements
  std::string device = "cpu";      // cpu, cuda, cuda:N
  std::string export_path;         // TorchScript file; empty: no export
  std::string parent;              // a trained parent's TorchScript file to inherit from
  std::string importance = "l1";   // l1, group-l1: how the parent's channels are ranked
  std::uint64_t seed = 0;          // weights' init, patch sampling
  std::string precision = "fp32";  // fp32, bf16, fp16 (autocast)
  double lr = search::defaults::kLearningRate;  // initial learning rate (cosine decay)
  int eval_batch = 8;                           // validation blocks per forward pass
  int threads = 1;                              // LibTorch intra-op threads; 0: LibTorch's default
  int progress_every = 10;                      // steps between progress lines on stderr
  int latency_runs = 10;                        // timed passes for the median latency
  int latency_tile = 0;  // the 100-MP pass's output tile (TrialSpec::latency_tile); 0: not timed
  // For `serve`, which runs each trial as `once` in a child process: a descriptor the stages,
  // the training progress and the outcome are written to as JSON lines (EventLine); -1: none.
  int events_fd = -1;
  // Fault injection (TrialSpec::fault_hold_bytes); not in --help.
  std::int64_t fault_hold_bytes = 0;
};

// The JSON lines of --events-fd, one object each, in this order: {"stage": S, "detail": D} as
// the trial enters each stage; {"data_bytes": N} once, after the measurements (the input data
// the process holds); {"resident_peak": N} on CPU before the timing (the latency and, with
// --latency-tile, the 100-MP pass), the process's resident-set high-water mark without it;
// {"progress": {"step", "steps", "loss"}} every
// --progress-every steps; last, {"metrics": TrialMetrics in protobuf's JSON mapping, "export": FILE
// or null} on success or {"error": {"code": canonical code, "message": M}} on failure.

// The `once` command line that runs `spec` with `threads` intra-op threads and its events on
// `events_fd` (argv[0] = `program`): what `serve` starts for each trial. Parsed by `once`, it
// gives back `spec` (once_command_test.cc).
std::vector<std::string> OnceCommandLine(const std::string& program, const TrialSpec& spec,
                                         int threads, int events_fd);

// Adds the `once` subcommand to `root`, its flags bound to `options` (which must outlive the
// parse). Returns the subcommand.
CLI::App* AddOnceCommand(CLI::App& root, OnceOptions& options);

// Validates `options`, runs the trial with progress lines on `progress`, and writes one JSON
// object (one line) to `out`. On error nothing is written to `out`.
Status RunOnce(const OnceOptions& options, std::ostream& out, std::ostream& progress);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_ONCE_COMMAND_H_
