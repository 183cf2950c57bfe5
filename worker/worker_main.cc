// peaknas-worker: the LibTorch side of peaknas. Subcommands:
//   once       one trial run locally, one JSON object on stdout (worker/once_command.h);
//   make-data  a synthetic dataset in SIDD's layout (worker/make_data_command.h).
// The leasing worker (`peaknas-worker` against a coordinator) slots in the same way: one file
// per subcommand with an Add...Command and a Run..., plus one row in `commands` below.
//
// Parsing, help, dispatch and the error convention are the `peaknas` CLI's (cli/app.h): every
// error is one line on stderr, "peaknas-worker <subcommand>: <message>", and a non-zero exit
// status: 2 for command-line usage (unknown flag, missing value, not a number), 1 for input the
// subcommand rejects or a failed trial. --help prints the full help on stdout and exits 0.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <vector>

#include "cli/app.h"
#include "worker/counting_allocator.h"
#include "worker/data/make_data.h"
#include "worker/make_data_command.h"
#include "worker/malloc_tuning.h"
#include "worker/once_command.h"

namespace peaknas::worker {
namespace {

int Main(int argc, char** argv) {
  CLI::App app(
      "peaknas-worker: trains, evaluates and measures U-Net denoisers for peaknas (LibTorch).",
      "peaknas-worker");
  cli::ConfigureRootApp(app);

  OnceOptions once;
  data::MakeDataOptions make_data;
  const std::vector<cli::Subcommand> commands = {
      {AddOnceCommand(app, once), [&] { return RunOnce(once, std::cout, std::cerr); }},
      {AddMakeDataCommand(app, make_data),
       [&] { return RunMakeData(make_data, std::cout, std::cerr); }},
  };
  return cli::RunSubcommands(app, commands, argc, argv);
}

}  // namespace
}  // namespace peaknas::worker

int main(int argc, char** argv) {
  // Before any tensor exists, so that every CPU allocation is counted (measure.h).
  peaknas::worker::CpuAllocationCounter::Install();
  // Keep freed activation buffers in the heap rather than faulting them in again every step.
  if (const peaknas::Status s = peaknas::worker::KeepFreedHeapMemory(); !s.ok()) {
    std::cerr << "peaknas-worker: warning: " << s.message() << '\n';
  }
  try {
    return peaknas::worker::Main(argc, argv);
  } catch (const std::exception& e) {  // a bug, not bad input: still one line
    return peaknas::cli::ReportInternalError("peaknas-worker", e);
  }
}
