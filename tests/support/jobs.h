// Job specs for tests that drive a real coordinator: a random search over a tiny space (levels
// 1-2, widths 8-16, one block, 16-pixel tiles and patches, a 1 GiB budget) that trains in
// seconds on the data of TinyMakeDataArgs (process.h).
#ifndef PEAKNAS_TESTS_SUPPORT_JOBS_H_
#define PEAKNAS_TESTS_SUPPORT_JOBS_H_

#include <cstdint>
#include <string>

#include "peaknas/v1/peaknas.pb.h"

namespace peaknas::testing {

inline v1::JobSpec TinyRandomJob(const std::string& name, int trials, int steps,
                                 const std::string& dataset, std::uint64_t seed) {
  v1::JobSpec spec;
  spec.set_name(name);
  spec.set_strategy(v1::STRATEGY_RANDOM);
  v1::Budget& budget = *spec.mutable_budget();
  budget.set_bytes(std::int64_t{1} << 30);
  budget.set_mode(v1::BUDGET_MODE_INFERENCE);
  budget.set_batch(1);
  budget.set_tile(16);
  budget.set_train_batch(2);
  budget.set_patch(16);
  v1::SearchSpace& space = *spec.mutable_space();
  space.mutable_levels()->set_min(1);
  space.mutable_levels()->set_max(2);
  space.mutable_width()->set_min(8);
  space.mutable_width()->set_max(16);
  space.mutable_enc_blocks()->set_min(1);
  space.mutable_enc_blocks()->set_max(1);
  space.mutable_dec_blocks()->set_min(1);
  space.mutable_dec_blocks()->set_max(1);
  spec.set_trials(trials);
  spec.set_parallelism(1);
  spec.mutable_fidelity()->set_steps(steps);
  spec.set_dataset(dataset);
  spec.set_seed(seed);
  return spec;
}

}  // namespace peaknas::testing

#endif  // PEAKNAS_TESTS_SUPPORT_JOBS_H_
