// What the strategy tests share (strategy_test.cc, pruning_strategy_test.cc): a job's config on
// the default CPU profile and an architecture parsed from JSON.
#ifndef PEAKNAS_SERVER_STRATEGY_TEST_UTIL_H_
#define PEAKNAS_SERVER_STRATEGY_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>

#include "search/architecture.h"
#include "search/device_profile.h"
#include "server/strategy.h"

namespace peaknas::server::testing {

// An inference (or training) budget at tile 256 / patch 64 x batch 8, fp32, the `cpu` profile,
// the whole family as the space, and `trials` trials of `steps` steps.
inline StrategyConfig Config(std::int64_t budget_bytes, bool training = false, int trials = 24,
                             int steps = 200) {
  StrategyConfig c;
  c.budget.bytes = budget_bytes;
  c.budget.training = training;
  c.budget.tile = {.batch = 1, .size = 256};
  c.budget.patch = {.batch = 8, .size = 64};
  c.budget.device = &search::DefaultDeviceProfile();
  c.population = 16;
  c.trials = trials;
  c.steps = steps;
  return c;
}

inline search::Architecture Arch(const char* json) {
  auto a = search::ParseArchitecture(json);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return *a;
}

}  // namespace peaknas::server::testing

#endif  // PEAKNAS_SERVER_STRATEGY_TEST_UTIL_H_
