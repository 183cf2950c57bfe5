// The leasing worker (DESIGN.md, "Processes" and "Protocol"): registers with a
// coordinator's WorkerService, long-polls LeaseTrial, runs each assignment as `peaknas-worker
// once` in a child process (worker/trial_process.h: one trial, one process, so its process
// peak is its own and a crash or an out-of-memory kill ends the trial, not the worker),
// heartbeats while it runs, and reports the metrics or the failure with the lease's fencing
// token. `peaknas-worker serve` is this function plus flag parsing
// (worker/serve_command.h).
//
// Behaviour:
//   * Registration: name (default "HOSTNAME-PID"), device, memory (memory_bytes, or the
//     device's: physical RAM on cpu, the GPU's on cuda), threads, and the dataset names of
//     `data` as capabilities. NOT_FOUND on a later LeaseTrial (a coordinator that forgot us)
//     registers again.
//   * Coordinator away (any RPC error other than the ones below): logged on `log`, retried with
//     exponential backoff from 0.5 s to 10 s; the worker never gives up on its own.
//   * Assignment → TrialSpec: the dataset name maps to its --data path; an unknown name is
//     reported at once as a failure (NOT_FOUND, naming the dataset and the known ones).
//   * Heartbeats: a helper thread sends the latest progress (stage, step, loss) every
//     min(2 s, the assignment's heartbeat interval). CANCEL (job cancelled) or
//     FAILED_PRECONDITION / NOT_FOUND (lease lost) request a stop through the trial's stop
//     token: the trial's process is killed at once, and nothing is reported.
//   * Result: TrialMetrics, or TrialFailure with the Status's canonical code and one-line
//     message (retryable for NOT_FOUND / UNAVAILABLE: worker-side data or I/O, and a trial
//     process that died without an outcome, e.g. killed by the kernel's out-of-memory killer).
//     The trial's stderr goes to <work-dir>/<trial>.<token>.log, removed after a success and
//     kept (its path logged) after a failure. Transport
//     errors are retried with backoff for up to 2 minutes; FAILED_PRECONDITION (stale lease) is
//     logged and dropped.
//   * Signals: SIGTERM / SIGINT are blocked in every thread and taken by a helper thread. The
//     first one stops leasing (an idle long poll is cancelled at once) and lets the current
//     trials finish and be reported; then RunLeaseLoop returns OK. A second one exits the
//     process at once with status 128 + signal.
//   * Packing (max_concurrent > 1): up to max_concurrent trials run at once, each in its own
//     thread and child process. Every lease request states the bytes free for one more trial
//     (LeaseTrialRequest.free_bytes):
//         memory - reserve - sum over running trials of (their limit, below) - data allowance
//     and on cpu also no more than the system's MemAvailable less the same reserve and what
//     running trials may still grow into. A trial's data (the bytes of input data its child
//     reports, {"data_bytes"} of once_command.h) is counted on cpu only (on cuda it stays in
//     host memory); the allowance is the largest data any child reported. Nothing more is
//     leased while a running trial has not reported its data (so a worker's first trial starts
//     alone), nor while a trial the coordinator gave with reserved_bytes 0 (no calibration yet)
//     runs. Each child is held
//     to its reservation (the calibrated peak of its whole process, less data) plus 10 % and
//     8 MiB of slack plus its data: on cpu a watch (trial_process.h) reads its resident peak
//     every 20 ms and kills it above that; the trial fails with RESOURCE_EXHAUSTED, retryable,
//     with the bytes it reached less its data (TrialFailure.over_reservation_bytes), and the
//     coordinator leases it again with 1.5 times that reserved. So does an out-of-memory error
//     from the child's own allocator (cuda). While trials run, the long poll waits at most 2 s,
//     so a finished trial's bytes are offered again soon.
//   * Every result carries TrialMetrics.process_peak_bytes: the child's resident peak over its
//     life less its data on cpu (the larger pass figure on cuda), the calibration's "trial"
//     figure that packing reserves by.
//   * Fault injection for tests: PEAKNAS_FAULT_HOLD_BYTES=TRIAL_ID:BYTES in the environment
//     makes every run of that trial hold BYTES more after its measurements (once's
//     --fault-hold-bytes), so it goes over its reservation.
//   * Model upload: when the assignment has export_model, the trained model is exported as
//     TorchScript to --work-dir (or a private temporary directory) and streamed with
//     UploadArtifact (1 MiB chunks, lease id, fencing token, SHA-256 of the file) BEFORE
//     ReportResult, while heartbeats go on; the file is removed afterwards. Transport errors are
//     retried like ReportResult; a lost lease (FAILED_PRECONDITION) reports nothing; any other
//     refusal reports the trial as failed with that error.
//
// Thread-safety: one RunLeaseLoop per process (it owns the signal disposition).
#ifndef PEAKNAS_WORKER_LEASE_LOOP_H_
#define PEAKNAS_WORKER_LEASE_LOOP_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "base/status.h"

namespace peaknas::worker {

struct LeaseLoopOptions {
  std::string coordinator;  // HOST:PORT of the coordinator; required
  std::string token;        // bearer token (role worker); empty: none
  // TLS (PEM text): the CA bundle of the coordinator's certificate (empty: plaintext), and a
  // client certificate and key for a coordinator that requires one.
  std::string tls_ca_pem, tls_cert_pem, tls_key_pem;
  std::map<std::string, std::string> data;  // dataset name → SIDD-layout directory; >= 1 entry
  std::string device = "cpu";               // cpu, cuda, cuda:N
  std::string name;                         // empty: "HOSTNAME-PID"
  int threads = 0;                          // LibTorch intra-op threads; 0: LibTorch's default
  std::string work_dir;                     // exported models; empty: a private temp directory
  double lease_wait_seconds = 20;           // LeaseTrial long-poll wait
  int latency_runs = 10;                    // timed inference passes per trial, >= 1
  // Time the frontier's 100-MP pass after each trial (TrialAssignment.latency_tile).
  bool time_latency_100mp = true;
  // Packing: trials run at once, in [1, 64]. Above 1 the worker states its free bytes with
  // each lease request and holds every trial to its reservation (see above).
  int max_concurrent = 1;
  std::int64_t memory_bytes = 0;  // what trials may use; 0: the device's total (RAM on cpu)
  std::int64_t memory_reserve_bytes = std::int64_t{256} << 20;  // kept free, off memory_bytes
};

// What a packed trial's process may hold before the worker stops it, for a reservation of
// `reserved_bytes` (its data comes on top): the reservation plus 10 % and 8 MiB. The slack
// covers the 20 ms between the watch's readings and the run-to-run scatter of a process's
// resident peak (on CPU, glibc places the same allocations differently from one run to the
// next: 258-283 MiB for one trial measured 12 times, docs/cost-model.md).
inline constexpr double kReservationSlackFraction = 0.10;
inline constexpr std::int64_t kReservationSlackBytes = std::int64_t{8} << 20;
inline std::int64_t ReservationLimitBytes(std::int64_t reserved_bytes) {
  return reserved_bytes +
         static_cast<std::int64_t>(kReservationSlackFraction *
                                   static_cast<double>(reserved_bytes)) +
         kReservationSlackBytes;
}

// Checks the options (device, data directories, threads, latency runs, packing).
// INVALID_ARGUMENT / NOT_FOUND naming the flag (--device, --data, --threads, --work-dir,
// --latency-runs, --max-concurrent, --memory, --memory-reserve).
Status ValidateLeaseLoopOptions(const LeaseLoopOptions& options);

// Runs until a SIGTERM / SIGINT (see above); returns OK then. Errors only for invalid options.
// Log lines ("peaknas-worker serve: ...") go to `log`.
Status RunLeaseLoop(const LeaseLoopOptions& options, std::ostream& log);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_LEASE_LOOP_H_
