// peaknas-worker: the LibTorch side of peaknas. Subcommands:
//   once       one trial run locally, one JSON object on stdout (worker/once_command.h);
//   make-data  a synthetic dataset in SIDD's layout (worker/make_data_command.h).
// The leasing worker (`peaknas-worker` against a coordinator) slots in the same way: one file
// per subcommand with an Add...Command and a Run..., plus one row in `commands` below.
//
// As in the `peaknas` CLI (cli/main.cc): every error is one line on stderr,
// "peaknas-worker <subcommand>: <message>", and a non-zero exit status: 2 for command-line
// usage (unknown flag, missing value, not a number), 1 for input the subcommand rejects or a
// failed trial. --help prints the full help on stdout and exits 0.
#include <CLI/CLI.hpp>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "search/status.h"
#include "worker/counting_allocator.h"
#include "worker/data/make_data.h"
#include "worker/make_data_command.h"
#include "worker/once_command.h"

namespace peaknas::worker {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

struct Command {
  CLI::App* app;
  std::function<Status()> run;
};

std::string Who(const CLI::App& root) {
  std::string who = root.get_name();
  const std::vector<CLI::App*> selected = root.get_subcommands();
  if (!selected.empty()) who += " " + selected.front()->get_name();
  return who;
}

std::string OneLine(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!message.empty() && message.back() == ' ') message.pop_back();
  return message;
}

// CLI11's formatter with descriptions wrapped to 100 columns (CLI11 2.1 does not wrap); the
// same as cli/main.cc's, which the worker does not link.
class WrappingFormatter : public CLI::Formatter {
 public:
  static constexpr std::size_t kWidth = 100;

  std::string make_description(const CLI::App* app) const override {
    std::string description = CLI::Formatter::make_description(app);
    return description.empty() ? description : Wrap(description, kWidth) + "\n";
  }
  std::string make_option_desc(const CLI::Option* option) const override {
    return Wrap(CLI::Formatter::make_option_desc(option), DescriptionWidth());
  }
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_display_name(true),
                             Wrap(sub->get_description(), DescriptionWidth()), column_width_);
    return out.str();
  }

 private:
  std::size_t DescriptionWidth() const {
    return column_width_ + 40 < kWidth ? kWidth - column_width_ : 40;
  }

  static std::string Wrap(const std::string& text, std::size_t width) {
    std::string out;
    std::size_t line_start = 0;
    while (line_start <= text.size()) {
      std::size_t line_end = text.find('\n', line_start);
      if (line_end == std::string::npos) line_end = text.size();
      std::size_t column = 0;
      std::size_t word_start = line_start;
      while (word_start < line_end) {
        std::size_t word_end = text.find(' ', word_start);
        if (word_end == std::string::npos || word_end > line_end) word_end = line_end;
        const std::size_t length = word_end - word_start;
        if (column > 0 && column + 1 + length > width) {
          out += '\n';
          column = 0;
        } else if (column > 0) {
          out += ' ';
          ++column;
        }
        out.append(text, word_start, length);
        column += length;
        word_start = word_end + 1;
      }
      if (line_end == text.size()) break;
      out += '\n';
      line_start = line_end + 1;
    }
    return out;
  }
};

std::string UsageMessage(const CLI::App& root, const CLI::ParseError& e, int argc, char** argv) {
  if (!root.get_subcommands().empty()) return OneLine(e.what());
  std::string known;
  for (const CLI::App* sub : root.get_subcommands(std::function<bool(const CLI::App*)>{})) {
    if (!known.empty()) known += ", ";
    known += sub->get_name();
  }
  if (argc < 2) return "a subcommand is required; one of: " + known;
  const std::string first = argv[1];
  if (!first.empty() && first.front() == '-') {
    return "unknown option \"" + OneLine(first) + "\" before the subcommand; subcommands: " + known;
  }
  return "unknown subcommand \"" + OneLine(first) + "\"; one of: " + known;
}

int Main(int argc, char** argv) {
  CLI::App app(
      "peaknas-worker: trains, evaluates and measures U-Net denoisers for peaknas (LibTorch).",
      "peaknas-worker");
  app.require_subcommand(1);
  auto formatter = std::make_shared<WrappingFormatter>();
  formatter->column_width(34);
  app.formatter(formatter);

  OnceOptions once;
  data::MakeDataOptions make_data;
  const std::vector<Command> commands = {
      {AddOnceCommand(app, once), [&] { return RunOnce(once, std::cout, std::cerr); }},
      {AddMakeDataCommand(app, make_data),
       [&] { return RunMakeData(make_data, std::cout, std::cerr); }},
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << Who(app) << ": " << UsageMessage(app, e, argc, argv) << " (see " << Who(app)
              << " --help)\n";
    return kExitUsage;
  }

  for (const Command& command : commands) {
    if (!command.app->parsed()) continue;
    const Status status = command.run();
    if (status.ok()) return 0;
    std::cerr << Who(app) << ": " << OneLine(status.message()) << '\n';
    return kExitError;
  }
  std::cerr << Who(app) << ": no subcommand ran\n";
  return kExitError;
}

}  // namespace
}  // namespace peaknas::worker

int main(int argc, char** argv) {
  // Before any tensor exists, so that every CPU allocation is counted (measure.h).
  peaknas::worker::CpuAllocationCounter::Install();
  try {
    return peaknas::worker::Main(argc, argv);
  } catch (const std::exception& e) {  // a bug, not bad input: still one line
    std::cerr << "peaknas-worker: internal error: " << peaknas::worker::OneLine(e.what()) << '\n';
    return 1;
  }
}
