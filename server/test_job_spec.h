// What the coordinator's tests share (coordinator_test.cc, parked_calls_test.cc,
// service_test.cc): a small random-search job.
#ifndef PEAKNAS_SERVER_TEST_JOB_SPEC_H_
#define PEAKNAS_SERVER_TEST_JOB_SPEC_H_

#include <cstdint>

#include "peaknas/v1/peaknas.pb.h"

namespace peaknas::server::testing {

// Random search, uniform draws over levels 1-4 and widths 8-512 under an inference budget of
// 32 MiB at 256x256 tiles: many candidates are far over the budget (rejected), the narrow ones
// fit. `trials` trials of 10 steps, `parallelism` at once, on the "synthetic" dataset.
inline v1::JobSpec RandomJobSpec(int trials, int parallelism) {
  v1::JobSpec spec;
  spec.set_name("test");
  spec.set_strategy(v1::STRATEGY_RANDOM);
  spec.set_sampling(v1::SAMPLING_UNIFORM);
  spec.mutable_budget()->set_bytes(std::int64_t{32} << 20);
  spec.mutable_budget()->set_mode(v1::BUDGET_MODE_INFERENCE);
  spec.mutable_space()->mutable_levels()->set_min(1);
  spec.mutable_space()->mutable_levels()->set_max(4);
  spec.mutable_space()->mutable_width()->set_min(8);
  spec.mutable_space()->mutable_width()->set_max(512);
  spec.set_trials(trials);
  spec.set_parallelism(parallelism);
  spec.mutable_fidelity()->set_steps(10);
  spec.set_dataset("synthetic");
  spec.set_seed(7);
  return spec;
}

}  // namespace peaknas::server::testing

#endif  // PEAKNAS_SERVER_TEST_JOB_SPEC_H_
