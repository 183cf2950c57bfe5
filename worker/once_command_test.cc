// The command line `serve` starts each trial with (OnceCommandLine) parses, as `once`, back to
// the trial it was made from.
#include "worker/once_command.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
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
  EXPECT_EQ(o.arch, search::ToCanonicalJson(spec.arch));
  EXPECT_EQ(o.data, spec.data_dir);
  EXPECT_EQ(o.steps, 1234);
  EXPECT_EQ(o.train_batch, 4);
  EXPECT_EQ(o.patch, 48);
  EXPECT_EQ(o.batch, 2);
  EXPECT_EQ(o.tile, 128);
  EXPECT_EQ(o.device, "cpu");
  EXPECT_EQ(o.seed, spec.seed);
  EXPECT_EQ(o.precision, "bf16");
  EXPECT_EQ(o.lr, spec.learning_rate);
  EXPECT_EQ(o.eval_batch, 3);
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.progress_every, 7);
  EXPECT_EQ(o.latency_runs, 4);
  EXPECT_EQ(o.latency_tile, 208);
  EXPECT_EQ(o.events_fd, 3);
  EXPECT_EQ(o.export_path, spec.export_path);
  EXPECT_EQ(o.parent, spec.parent_model);
  EXPECT_EQ(o.importance, std::string(Name(Importance::kGroupL1)));

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
