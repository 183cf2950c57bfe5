// peaknas: the client command line. Today it has `estimate`; the service's subcommands
// (submit, jobs, status, watch, frontier, trials, cancel, export, run) slot in the same way:
// one file per subcommand with an Add...Command that declares its flags on an options struct
// and a Run... that does the work and returns a Status, plus one row in `commands` below.
//
// Every error is one line on stderr, "peaknas <subcommand>: <message>", and a non-zero exit
// status: 2 for command-line usage (unknown flag, missing value, not a number), 1 for input
// the subcommand rejects. --help prints the full help on stdout and exits 0.
#include <CLI/CLI.hpp>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/estimate_command.h"
#include "search/status.h"

namespace peaknas::cli {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// A subcommand as parsed by CLI11, and what running it means.
struct Command {
  CLI::App* app;
  std::function<Status()> run;
};

// "peaknas" or "peaknas estimate": whose error a message is.
std::string Who(const CLI::App& root) {
  std::string who = root.get_name();
  const std::vector<CLI::App*> selected = root.get_subcommands();
  if (!selected.empty()) who += " " + selected.front()->get_name();
  return who;
}

// Messages go on one line whatever their origin.
std::string OneLine(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!message.empty() && message.back() == ' ') message.pop_back();
  return message;
}

// CLI11's formatter, with descriptions wrapped to fit a 100-column terminal (CLI11 2.1 does not
// wrap), so that help can explain each flag fully and still read well.
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

  // Greedy word wrap of every line of `text` at `width` columns; existing line breaks stay.
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

// CLI11's message, except where no subcommand was recognized: then it would say only "A
// subcommand is required", so say what was wrong with the first argument.
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
      "peaknas: neural-architecture search of U-Net denoisers under a hard peak-memory budget.",
      "peaknas");
  app.require_subcommand(1);
  auto formatter = std::make_shared<WrappingFormatter>();
  formatter->column_width(34);
  app.formatter(formatter);  // subcommands added below inherit it

  EstimateOptions estimate;
  const std::vector<Command> commands = {
      {AddEstimateCommand(app, estimate), [&] { return RunEstimate(estimate, std::cout); }},
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
  std::cerr << Who(app) << ": no subcommand ran\n";  // require_subcommand makes this unreachable
  return kExitError;
}

}  // namespace
}  // namespace peaknas::cli

int main(int argc, char** argv) {
  try {
    return peaknas::cli::Main(argc, argv);
  } catch (const std::exception& e) {  // a bug, not bad input: still one line
    std::cerr << "peaknas: internal error: " << peaknas::cli::OneLine(e.what()) << '\n';
    return 1;
  }
}
