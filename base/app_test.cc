#include "base/app.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace peaknas::base {
namespace {

TEST(OneLineTest, JoinsLinesAndDropsTrailingSpaces) {
  EXPECT_EQ(OneLine("a\nb\r\nc \n"), "a b  c");
  EXPECT_EQ(OneLine(""), "");
}

// The exit codes of the convention: 0 for success and --help, kExitUsage for a parse error,
// kExitError for a subcommand that fails; only the selected subcommand runs.
TEST(RunSubcommandsTest, ExitCodesFollowTheConvention) {
  const auto run = [](std::vector<std::string> args, Status result, int* ran) {
    CLI::App app("test program", "prog");
    ConfigureRootApp(app);
    int value = 0;
    CLI::App* good = app.add_subcommand("good", "succeeds or fails as told");
    good->add_option("--n", value);
    CLI::App* other = app.add_subcommand("other", "never selected here");
    const std::vector<Subcommand> commands = {
        {good,
         [&] {
           ++*ran;
           return result;
         }},
        {other,
         [&] {
           ADD_FAILURE() << "ran the wrong subcommand";
           return Status::Ok();
         }},
    };
    std::vector<char*> argv;
    std::string name = "prog";
    argv.push_back(name.data());
    for (std::string& a : args) argv.push_back(a.data());
    return RunSubcommands(app, commands, static_cast<int>(argv.size()), argv.data());
  };
  int ran = 0;
  EXPECT_EQ(run({"good", "--n", "3"}, Status::Ok(), &ran), 0);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(run({"good"}, Status::InvalidArgument("n: bad"), &ran), kExitError);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(run({"good", "--n", "three"}, Status::Ok(), &ran), kExitUsage);
  EXPECT_EQ(run({"nonesuch"}, Status::Ok(), &ran), kExitUsage);
  EXPECT_EQ(ran, 2) << "nothing runs after a parse error";
}

}  // namespace
}  // namespace peaknas::base
