// peaknas: the client command line: `estimate` (cost model only) and the subcommands that talk
// to a coordinator (submit, jobs, status, watch, frontier, trials, cancel, export, workers,
// calibration, health) and `run`:
// one file per subcommand with an Add...Command that declares its flags on an options struct
// and a Run... that does the work and returns a Status, plus one row in `commands` below.
//
// Parsing, help, dispatch and the error convention (one line on stderr, "peaknas <subcommand>:
// <message>"; exit 2 for usage, 1 for rejected input) are cli/app.h's, shared with
// peaknas-worker.
#include <grpc/support/log.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <vector>

#include "base/app.h"
#include "cli/estimate_command.h"
#include "cli/job_commands.h"
#include "cli/run_command.h"

namespace peaknas::cli {
namespace {

int Main(int argc, char** argv) {
  CLI::App app(
      "peaknas: neural-architecture search of U-Net denoisers under a hard peak-memory budget.",
      "peaknas");
  base::ConfigureRootApp(app);

  EstimateOptions estimate;
  RunOptions run;
  JobCommandOptions submit, jobs, status, watch, frontier, trials, cancel, export_, workers,
      calibration, health;
  const std::vector<base::Subcommand> commands = {
      {AddEstimateCommand(app, estimate), [&] { return RunEstimate(estimate, std::cout); }},
      {AddRunCommand(app, run), [&] { return RunRun(run, std::cout); }},
      {AddSubmitCommand(app, submit), [&] { return RunSubmit(submit, std::cout); }},
      {AddJobsCommand(app, jobs), [&] { return RunJobs(jobs, std::cout); }},
      {AddStatusCommand(app, status), [&] { return RunStatus(status, std::cout); }},
      {AddWatchCommand(app, watch),
       [&] { return RunWatch(watch, std::cout, isatty(STDOUT_FILENO) == 1); }},
      {AddFrontierCommand(app, frontier), [&] { return RunFrontier(frontier, std::cout); }},
      {AddTrialsCommand(app, trials), [&] { return RunTrials(trials, std::cout); }},
      {AddCancelCommand(app, cancel), [&] { return RunCancel(cancel, std::cout); }},
      {AddExportCommand(app, export_), [&] { return RunExport(export_, std::cout); }},
      {AddWorkersCommand(app, workers), [&] { return RunWorkers(workers, std::cout); }},
      {AddCalibrationCommand(app, calibration),
       [&] { return RunCalibration(calibration, std::cout); }},
      {AddHealthCommand(app, health), [&] { return RunHealth(health, std::cout); }},
  };
  return base::RunSubcommands(app, commands, argc, argv);
}

}  // namespace
}  // namespace peaknas::cli

int main(int argc, char** argv) {
  // gRPC's own log lines (a failed TLS handshake, say) would break the one-line error: the
  // call's status carries the same reason. $GRPC_VERBOSITY brings them back for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
  try {
    return peaknas::cli::Main(argc, argv);
  } catch (const std::exception& e) {  // a bug, not bad input: still one line
    return peaknas::base::ReportInternalError("peaknas", e);
  }
}
