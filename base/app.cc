#include "base/app.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace peaknas::base {
namespace {

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

// "peaknas" or "peaknas estimate": whose error a message is.
std::string Who(const CLI::App& root) {
  std::string who = root.get_name();
  const std::vector<CLI::App*> selected = root.get_subcommands();
  if (!selected.empty()) who += " " + selected.front()->get_name();
  return who;
}

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

}  // namespace

std::string OneLine(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!message.empty() && message.back() == ' ') message.pop_back();
  return message;
}

void ConfigureRootApp(CLI::App& root) {
  root.require_subcommand(1);
  auto formatter = std::make_shared<WrappingFormatter>();
  formatter->column_width(34);
  root.formatter(formatter);  // subcommands added after this inherit it
}

int RunSubcommands(CLI::App& root, const std::vector<Subcommand>& commands, int argc, char** argv) {
  try {
    root.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << Who(root) << ": " << UsageMessage(root, e, argc, argv) << " (see " << Who(root)
              << " --help)\n";
    return kExitUsage;
  }

  for (const Subcommand& command : commands) {
    if (!command.app->parsed()) continue;
    const Status status = command.run();
    if (status.ok()) return 0;
    std::cerr << Who(root) << ": " << OneLine(status.message()) << '\n';
    return kExitError;
  }
  // Unreachable after ConfigureRootApp (exactly one subcommand), unless one is not in `commands`.
  std::cerr << Who(root) << ": no subcommand ran\n";
  return kExitError;
}

int ReportInternalError(std::string_view program, const std::exception& e) {
  std::cerr << program << ": internal error: " << OneLine(e.what()) << '\n';
  return kExitError;
}

CLI::Option* AddArchOption(CLI::App& command, std::string& arch, std::string_view extra) {
  return command
      .add_option("--arch", arch,
                  "Architecture: a path to a JSON file, or the JSON object itself (an argument "
                  "starting with '{' is read as JSON)." +
                      (extra.empty() ? std::string() : " " + std::string(extra)))
      ->required()
      ->type_name("FILE|JSON");
}

}  // namespace peaknas::base
