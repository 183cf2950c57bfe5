// `peaknas estimate`: what an architecture costs, from the analytical cost model alone
// (DESIGN.md, "Cost model" and "Command line"). Nothing is run and no server is contacted.
//
// The command has two halves, so that the flag parsing stays in CLI11 and the work stays
// testable without it: AddEstimateCommand declares the subcommand and binds its flags to an
// EstimateOptions; RunEstimate validates those options and writes the report (text, or one
// JSON object with --json) to a stream. Every bad input comes back as a Status whose one-line
// message names the offending flag or architecture field; main() prints it.
//
// Thread-safety: RunEstimate is a pure function of its arguments apart from reading the file
// named by --arch.
#ifndef PEAKNAS_CLI_ESTIMATE_COMMAND_H_
#define PEAKNAS_CLI_ESTIMATE_COMMAND_H_

#include <optional>
#include <ostream>
#include <string>

#include "base/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::cli {

struct EstimateOptions {
  // A path to an architecture JSON file, or the JSON itself (when it starts with '{').
  std::string arch;
  int batch = 1;        // inference batch
  int tile = 256;       // inference tile side (square tiles)
  int train_batch = 8;  // training batch
  int patch = 64;       // training patch side (square patches)
  std::string dtype = "fp32";
  std::optional<std::string> budget;  // a size ("2GiB"); unset means no budget questions
  std::string device_profile;         // empty means search::DefaultDeviceProfile()
  int threads = 1;                    // the CPU worker's intra-op threads
  bool json = false;                  // one JSON object instead of the readable report
  // A file ("-": standard input) with device calibrations, as `peaknas calibration --format
  // json` prints them; the one for the device profile adds the device peaks to the report.
  std::string calibration;
};

// Adds the `estimate` subcommand to `root`, its flags bound to `options` (which must outlive
// the parse). Returns the subcommand, so the caller can tell whether it was selected.
CLI::App* AddEstimateCommand(CLI::App& root, EstimateOptions& options);

// Validates `options`, estimates, and writes the report to `out`. INVALID_ARGUMENT or
// NOT_FOUND, with nothing written, for malformed or invalid architecture JSON, an unreadable
// --arch file, a shape the architecture cannot take, an unparsable budget, an unknown
// dtype or device profile, or a calibration file that cannot be read, is malformed, or has no
// fitted calibration for the device profile.
Status RunEstimate(const EstimateOptions& options, std::ostream& out);

}  // namespace peaknas::cli

#endif  // PEAKNAS_CLI_ESTIMATE_COMMAND_H_
