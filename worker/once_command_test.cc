// The command line `serve` starts each trial with (OnceCommandLine) parses, as `once`, back to
// the trial it was made from.
#include "worker/once_command.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "search/architecture.h"
#include "worker/test_nets.h"
#include "worker/trial.h"

namespace peaknas::worker {
namespace {

TEST(OnceCommandLine, ParsesBackToTheTrial) {
  TrialSpec spec;
  spec.arch = testing::TwoLevelNet();
  spec.arch.widths[0] = 24;
  spec.data_dir = "/data/with space";
  spec.train_shape = {.batch = 4, .size = 48};
  spec.tile = {.batch = 2, .size = 128};
  spec.steps = 1234;
  spec.learning_rate = 3.0e-4 / 7;  // not a short decimal: must survive the text exactly
  spec.precision = search::DType::kBf16;
  spec.eval_batch = 3;
  spec.seed = 18446744073709551557ULL;
  spec.export_path = "/w/t-3.2.pt";
  spec.parent_model = "/w/parents/j-1.t-1.pt";
  spec.importance = Importance::kGroupL1;
  spec.progress_every = 7;
  spec.latency_runs = 4;
  spec.latency_tile = 208;
  const std::vector<std::string> argv = OnceCommandLine("/usr/bin/peaknas-worker", spec, 2, 3);
  ASSERT_GE(argv.size(), 3u);
  EXPECT_EQ(argv[0], "/usr/bin/peaknas-worker");
  EXPECT_EQ(argv[1], "once");

  CLI::App root("test");
  OnceOptions o;
  AddOnceCommand(root, o);
  std::vector<std::string> reversed(argv.rbegin(), argv.rend() - 1);  // CLI11 takes them reversed
  ASSERT_NO_THROW(root.parse(reversed));
  // Each flag as `once` parsed it, against what `spec` (and the threads and fd) gave.
  const std::vector<std::tuple<std::string_view, std::string, std::string>> strings = {
      {"arch", o.arch, search::ToCanonicalJson(spec.arch)},
      {"data", o.data, spec.data_dir},
      {"device", o.device, "cpu"},
      {"precision", o.precision, "bf16"},
      {"export", o.export_path, spec.export_path},
      {"parent", o.parent, spec.parent_model},
      {"importance", o.importance, std::string(Name(Importance::kGroupL1))}};
  for (const auto& [flag, got, want] : strings) EXPECT_EQ(got, want) << flag;
  const std::vector<std::tuple<std::string_view, int, int>> ints = {
      {"steps", o.steps, 1234},
      {"train-batch", o.train_batch, 4},
      {"patch", o.patch, 48},
      {"batch", o.batch, 2},
      {"tile", o.tile, 128},
      {"eval-batch", o.eval_batch, 3},
      {"threads", o.threads, 2},
      {"progress-every", o.progress_every, 7},
      {"latency-runs", o.latency_runs, 4},
      {"latency-tile", o.latency_tile, 208},
      {"events-fd", o.events_fd, 3}};
  for (const auto& [flag, got, want] : ints) EXPECT_EQ(got, want) << flag;
  EXPECT_EQ(o.seed, spec.seed);
  EXPECT_EQ(o.lr, spec.learning_rate);

  // Without an export or a parent, neither flag is given.
  spec.export_path.clear();
  spec.parent_model.clear();
  for (const std::string& a : OnceCommandLine("p", spec, 1, 3)) {
    EXPECT_NE(a, "--export");
    EXPECT_NE(a, "--parent");
  }
}

}  // namespace
}  // namespace peaknas::worker
