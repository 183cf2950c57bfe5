// peaknas: the client command line. Today it has `estimate`; the service's subcommands
// (submit, jobs, status, watch, frontier, trials, cancel, export, run) slot in the same way:
// one file per subcommand with an Add...Command that declares its flags on an options struct
// and a Run... that does the work and returns a Status, plus one row in `commands` below.
//
// Parsing, help, dispatch and the error convention (one line on stderr, "peaknas <subcommand>:
// <message>"; exit 2 for usage, 1 for rejected input) are cli/app.h's, shared with
// peaknas-worker.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <vector>

#include "cli/app.h"
#include "cli/estimate_command.h"

namespace peaknas::cli {
namespace {

int Main(int argc, char** argv) {
  CLI::App app(
      "peaknas: neural-architecture search of U-Net denoisers under a hard peak-memory budget.",
      "peaknas");
  ConfigureRootApp(app);

  EstimateOptions estimate;
  const std::vector<Subcommand> commands = {
      {AddEstimateCommand(app, estimate), [&] { return RunEstimate(estimate, std::cout); }},
  };
  return RunSubcommands(app, commands, argc, argv);
}

}  // namespace
}  // namespace peaknas::cli

int main(int argc, char** argv) {
  try {
    return peaknas::cli::Main(argc, argv);
  } catch (const std::exception& e) {  // a bug, not bad input: still one line
    return peaknas::cli::ReportInternalError("peaknas", e);
  }
}
