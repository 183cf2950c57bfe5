// The command-line scaffolding shared by peaknas's executables (`peaknas`, `peaknas-server`,
// `peaknas-worker`): a program of subcommands parsed by CLI11, help wrapped to a 100-column
// terminal, one error convention and its exit codes, and the `--arch FILE|JSON` option. Library
// `peaknas_base_app`: base/status.h and CLI11 only.
//
// The error convention (DESIGN.md, "Command line"): every error is one line on stderr,
// "PROGRAM SUBCOMMAND: message", and a non-zero exit status: 2 (kExitUsage) for command-line
// usage (unknown flag or subcommand, missing value, not a number), 1 (kExitError) for input the
// subcommand rejects. --help prints the full help on stdout and exits 0.
//
// A program's main() reads:
//
//   CLI::App app("prog: what it does.", "prog");
//   ConfigureRootApp(app);
//   FooOptions foo;
//   const std::vector<Subcommand> commands = {
//       {AddFooCommand(app, foo), [&] { return RunFoo(foo, std::cout); }},
//   };
//   return RunSubcommands(app, commands, argc, argv);
//
// inside `try { ... } catch (const std::exception& e) { return ReportInternalError("prog", e); }`.
//
// Thread-safety: RunSubcommands and ReportInternalError write to std::cout / std::cerr and are
// meant for main() only; OneLine is safe from any thread.
#ifndef PEAKNAS_BASE_APP_H_
#define PEAKNAS_BASE_APP_H_

#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace peaknas::base {

inline constexpr int kExitError = 1;  // input the subcommand rejects, or an internal error
inline constexpr int kExitUsage = 2;  // a command-line usage error

// A subcommand as declared on the root CLI::App, and what running it means.
struct Subcommand {
  CLI::App* app;
  std::function<Status()> run;
};

// `message` on one line: line breaks become spaces, trailing spaces are dropped.
std::string OneLine(std::string message);

// Makes `root` a program of exactly one subcommand whose help wraps descriptions to 100 columns
// (options in a 34-column first column). Call it before adding the subcommands: they inherit
// the formatter.
void ConfigureRootApp(CLI::App& root);

// Parses argv with `root` and runs the one selected subcommand of `commands`. Returns the exit
// status: 0 after --help (printed on stdout) or a subcommand that succeeded; kExitUsage after a
// parse error, printed as "WHO: message (see WHO --help)"; kExitError after a subcommand that
// failed, printed as "WHO: message". WHO is the root's name and the selected subcommand's
// ("peaknas estimate"), or the root's alone when none was recognized.
int RunSubcommands(CLI::App& root, const std::vector<Subcommand>& commands, int argc, char** argv);

// For main()'s last-resort catch: an exception is a bug, not bad input, but still one line on
// stderr, "PROGRAM: internal error: what". Returns kExitError.
int ReportInternalError(std::string_view program, const std::exception& e);

// Adds the required `--arch FILE|JSON` option to `command` (read by
// search::LoadArchitectureArgument);
// `extra` is appended to its help text.
CLI::Option* AddArchOption(CLI::App& command, std::string& arch, std::string_view extra = "");

}  // namespace peaknas::base

#endif  // PEAKNAS_BASE_APP_H_
