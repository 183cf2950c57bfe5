// peaknas-worker: the LibTorch side of peaknas. Subcommands:
//   once       one trial run locally, one JSON object on stdout (worker/once_command.h);
//   make-data  a synthetic dataset in SIDD's layout (worker/make_data_command.h);
//   serve      the leasing worker against a coordinator (worker/serve_command.h). DESIGN.md's
//              form without the subcommand, `peaknas-worker --coordinator ADDR ...`, means
//              `serve`: a first argument that is an option other than -h/--help selects it.
// One file per subcommand with an Add...Command and a Run..., plus one row in `commands` below.
//
// Parsing, help, dispatch and the error convention are the `peaknas` CLI's (cli/app.h): every
// error is one line on stderr, "peaknas-worker <subcommand>: <message>", and a non-zero exit
// status: 2 for command-line usage (unknown flag, missing value, not a number), 1 for input the
// subcommand rejects or a failed trial. --help prints the full help on stdout and exits 0.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "base/app.h"
#include "worker/counting_allocator.h"
#include "worker/data/make_data.h"
#include "worker/denoise_command.h"
#include "worker/make_data_command.h"
#include "worker/malloc_tuning.h"
#include "worker/once_command.h"
#include "worker/serve_command.h"

namespace peaknas::worker {
namespace {

int Main(int argc, char** argv) {
  CLI::App app(
      "peaknas-worker: trains, evaluates and measures U-Net denoisers for peaknas (LibTorch).",
      "peaknas-worker");
  base::ConfigureRootApp(app);

  OnceOptions once;
  data::MakeDataOptions make_data;
  ServeOptions serve;
  DenoiseOptions denoise;
  const std::vector<base::Subcommand> commands = {
      {AddOnceCommand(app, once), [&] { return RunOnce(once, std::cout, std::cerr); }},
      {AddMakeDataCommand(app, make_data),
       [&] { return RunMakeData(make_data, std::cout, std::cerr); }},
      {AddServeCommand(app, serve), [&] { return RunServe(serve, std::cerr); }},
      {AddDenoiseCommand(app, denoise), [&] { return RunDenoise(denoise, std::cout, std::cerr); }},
  };
  // `peaknas-worker --coordinator ADDR ...` is `peaknas-worker serve --coordinator ADDR ...`.
  std::vector<char*> args(argv, argv + argc);
  static char serve_name[] = "serve";
  if (argc > 1) {
    const std::string first = argv[1];
    if (first.size() > 1 && first[0] == '-' && first != "-h" && first != "--help") {
      args.insert(args.begin() + 1, serve_name);
    }
  }
  return base::RunSubcommands(app, commands, static_cast<int>(args.size()), args.data());
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
    return peaknas::base::ReportInternalError("peaknas-worker", e);
  }
}
