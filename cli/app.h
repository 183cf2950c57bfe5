// The command-line scaffolding shared by peaknas's executables (`peaknas`, `peaknas-worker`):
// a program of subcommands parsed by CLI11, help wrapped to a 100-column terminal, one error
// convention, and the `--arch FILE|JSON` argument. Library `peaknas_cli_app`: search/ and CLI11
// only, never LibTorch, so the worker may link it.
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
// meant for main() only; OneLine and LoadArchitectureArgument are safe from any thread.
#ifndef PEAKNAS_CLI_APP_H_
#define PEAKNAS_CLI_APP_H_

#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "search/architecture.h"
#include "search/status.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace peaknas::cli {

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

// The architecture named by an --arch argument: the JSON object itself when the argument starts
// with '{' (after whitespace), else a path to a file holding it. Errors name where the
// architecture came from, "arch" or "arch \"FILE\"", then the problem:
//   INVALID_ARGUMENT  an empty argument; a directory; a read error; malformed JSON or an invalid
//                     field (search::ParseArchitecture's message: "arch \"FILE\": widths[1]: ...");
//   NOT_FOUND         a file that cannot be opened (with the system's reason).
StatusOr<search::Architecture> LoadArchitectureArgument(const std::string& arg);

// Adds the required `--arch FILE|JSON` option to `command`, read by LoadArchitectureArgument;
// `extra` is appended to its help text.
CLI::Option* AddArchOption(CLI::App& command, std::string& arch, std::string_view extra = "");

}  // namespace peaknas::cli

#endif  // PEAKNAS_CLI_APP_H_
