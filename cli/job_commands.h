// The `peaknas` subcommands that talk to a coordinator over JobService (DESIGN.md, "Command
// line" and "Protocol"):
//
//   submit JOB.json        reads a JobSpec (protobuf's JSON mapping), prints the new job's id
//   jobs                   a table of jobs: id, name, state, trial counts
//   status JOB             state, counts, frontier size/version/hypervolume, error
//   watch JOB              events until the job ends; a live progress line on a terminal
//   frontier JOB           the Pareto frontier sorted by peak bytes (--format table|csv|json)
//   trials JOB             every trial, rejected ones with reason (--format table|csv|json)
//   cancel JOB             cancels the job, prints its final state
//   export JOB TRIAL -o F  downloads a trained model to F (atomically: F.partial, then rename)
//   workers                the workers online (--all: every registered one) and their trials
//   calibration            device calibrations: device peak from the predicted allocator peak
//
// Each has an Add...Command that declares it and binds its flags to a JobCommandOptions, and a
// Run... that does the work and returns a Status: gRPC errors come back through ToStatus
// (cli/client.h), so main() prints them as one line and exits 1.
//
// Thread-safety: the Run functions are meant for main() (they write to the given stream).
#ifndef PEAKNAS_CLI_JOB_COMMANDS_H_
#define PEAKNAS_CLI_JOB_COMMANDS_H_

#include <ostream>
#include <string>

#include "base/status.h"
#include "proto/channel.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::cli {

// The flags and arguments of one service subcommand (each uses the fields it declares).
struct JobCommandOptions {
  std::string coordinator;              // HOST:PORT; AddCoordinatorOption fills the default
  proto::ClientSecurityFiles security;  // --token-file, --tls-ca, --tls-cert, --tls-key
  std::string spec_file;                // submit: the JobSpec JSON file
  std::string job;                      // the job id ("j-1")
  std::string trial;                    // export: the trial id ("t-3")
  std::string output;                   // export: -o FILE
  std::string format = "table";         // frontier, trials: table | csv | json
  bool all = false;                     // workers: offline ones too
  std::string device_profile;           // calibration: only this device profile
  std::string framework;                // calibration: only this framework
  std::string service;                  // health: the service asked about ("": the server)
};

CLI::App* AddSubmitCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddJobsCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddStatusCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddWatchCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddFrontierCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddTrialsCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddCancelCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddExportCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddWorkersCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddCalibrationCommand(CLI::App& root, JobCommandOptions& options);
CLI::App* AddHealthCommand(CLI::App& root, JobCommandOptions& options);

// INVALID_ARGUMENT naming the field for a spec file that is malformed JSON, has an unknown
// field or a bad value, or that the server refuses; NOT_FOUND for a file that cannot be opened.
Status RunSubmit(const JobCommandOptions& options, std::ostream& out);
Status RunJobs(const JobCommandOptions& options, std::ostream& out);
Status RunStatus(const JobCommandOptions& options, std::ostream& out);
// `live`: redraw one progress line (a terminal) instead of printing one line per event.
// OK when the job SUCCEEDED; ABORTED ("job j-1 ended CANCELLED ...") when it failed or was
// cancelled.
Status RunWatch(const JobCommandOptions& options, std::ostream& out, bool live);
Status RunFrontier(const JobCommandOptions& options, std::ostream& out);
Status RunTrials(const JobCommandOptions& options, std::ostream& out);
Status RunCancel(const JobCommandOptions& options, std::ostream& out);
Status RunExport(const JobCommandOptions& options, std::ostream& out);
Status RunWorkers(const JobCommandOptions& options, std::ostream& out);
// --format table (one row per device profile, framework and pass) or json (the
// ListCalibrationsResponse in protobuf's JSON mapping, which `estimate --calibration` reads).
Status RunCalibration(const JobCommandOptions& options, std::ostream& out);

// gRPC's standard health check (grpc.health.v1.Health/Check) of the server, or of
// options.service: prints SERVING. UNAVAILABLE when it answers anything else (naming the
// answer), NOT_FOUND for a service it does not know, and the mapping of cli/client.h when it
// cannot be reached.
Status RunHealth(const JobCommandOptions& options, std::ostream& out);

}  // namespace peaknas::cli

#endif  // PEAKNAS_CLI_JOB_COMMANDS_H_
