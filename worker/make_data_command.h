// `peaknas-worker make-data`: writes a synthetic dataset in SIDD's sRGB layout
// (worker/data/make_data.h) — training pairs and validation blocks with realistic camera noise.
//
// AddMakeDataCommand declares the subcommand and binds its flags to data::MakeDataOptions;
// RunMakeData runs the generator with progress lines on a stream and prints a one-line summary.
// Errors name the flag (the generator's option names are rewritten to the flags') or the path.
//
// Thread-safety: RunMakeData may run concurrently for different output directories.
#ifndef PEAKNAS_WORKER_MAKE_DATA_COMMAND_H_
#define PEAKNAS_WORKER_MAKE_DATA_COMMAND_H_

#include <ostream>

#include "base/status.h"
#include "worker/data/make_data.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::worker {

// Adds the `make-data` subcommand to `root`, its flags bound to `options` (which must outlive
// the parse; its fields' values are the flags' defaults). Returns the subcommand.
CLI::App* AddMakeDataCommand(CLI::App& root, data::MakeDataOptions& options);

// Writes the dataset. Progress lines go to `progress`, the summary line to `out`.
Status RunMakeData(const data::MakeDataOptions& options, std::ostream& out, std::ostream& progress);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_MAKE_DATA_COMMAND_H_
