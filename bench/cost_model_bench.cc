// How many cost-model estimates one core makes per second (DESIGN.md: "The estimate must be
// cheap: the search calls it for every candidate it considers").
//
// The target is at least 2 million InferencePeakBytes per second on one core, for 5-level
// architectures at tile 256, batch 1, fp32, on the default device profile. The estimates cycle
// through a pool of 1024 architectures sampled up front with a fixed seed, so the figure
// includes the branch and cache behaviour of varied candidates, not one architecture learnt by
// the predictor. Peers measured in the same run: the same peak with its location and breakdown
// (EstimateInferencePeak), the training-step peak, and the two other per-candidate costs of a
// search step (sampling a candidate, hashing it for deduplication).
//
// Each benchmark reports items_per_second; BM_InferencePeakBytes also reports vs_target, its
// rate divided by the 2 M/s target (>= 1 meets it). A summary of every rate and ratio follows
// the table. Run it pinned to one core; docs/benchmarks.md has the command and the figures.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/device_profile.h"
#include "search/space.h"

namespace peaknas::search {
namespace {

constexpr double kTargetPerSecond = 2e6;  // InferencePeakBytes per second on one core
constexpr std::size_t kPoolSize = 1024;   // a power of two: the index wraps with a mask
constexpr std::uint64_t kSeed = 20261122;

SearchSpace FiveLevelSpace() {
  SearchSpace space;
  space.levels = {5, 5};
  return space;
}

// 1024 seeded 5-level architectures, built once.
const std::vector<Architecture>& Pool() {
  static const std::vector<Architecture> pool = [] {
    const SearchSpace space = FiveLevelSpace();
    std::mt19937_64 rng(kSeed);
    std::vector<Architecture> archs;
    archs.reserve(kPoolSize);
    for (std::size_t i = 0; i < kPoolSize; ++i) archs.push_back(Sample(space, rng));
    return archs;
  }();
  return pool;
}

const Shape kTile{.batch = 1, .size = 256};
const Shape kPatch{.batch = 8, .size = 64};

void BM_InferencePeakBytes(benchmark::State& state) {
  const std::vector<Architecture>& pool = Pool();
  const DeviceProfile& device = DefaultDeviceProfile();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        InferencePeakBytes(pool[i++ & (kPoolSize - 1)], kTile, DType::kFp32, device));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["vs_target"] = benchmark::Counter(
      static_cast<double>(state.iterations()) / kTargetPerSecond, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_InferencePeakBytes);

void BM_EstimateInferencePeak(benchmark::State& state) {
  const std::vector<Architecture>& pool = Pool();
  const DeviceProfile& device = DefaultDeviceProfile();
  std::size_t i = 0;
  for (auto _ : state) {
    PeakEstimate estimate =
        EstimateInferencePeak(pool[i++ & (kPoolSize - 1)], kTile, DType::kFp32, device);
    benchmark::DoNotOptimize(estimate);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EstimateInferencePeak);

// At the intra-op thread count of the argument: above one, every oneDNN convolution's backward
// searches its split of threads (DirectConvSplit, PointwiseConvSplit in search/cost_model.cc).
void BM_TrainPeakBytes(benchmark::State& state) {
  const std::vector<Architecture>& pool = Pool();
  DeviceProfile device = DefaultDeviceProfile();
  device.cpu_conv.intra_op_threads = static_cast<int>(state.range(0));
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        TrainPeakBytes(pool[i++ & (kPoolSize - 1)], kPatch, DType::kFp32, device));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrainPeakBytes)->ArgName("threads")->Arg(1)->Arg(16)->Arg(64);

void BM_Sample(benchmark::State& state) {
  const SearchSpace space = FiveLevelSpace();
  std::mt19937_64 rng(kSeed);
  for (auto _ : state) {
    Architecture arch = Sample(space, rng);
    benchmark::DoNotOptimize(arch);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sample);

void BM_CanonicalHash(benchmark::State& state) {
  const std::vector<Architecture>& pool = Pool();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(CanonicalHash(pool[i++ & (kPoolSize - 1)]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CanonicalHash);

// The console table, then one summary line per benchmark: its rate, and its ratio to
// InferencePeakBytes (and, for that one, to the target). Uses the median when the run was
// repeated, else the mean, else the single run.
template <typename... Args>
std::string Format(const char* format, Args... args) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, format, args...);
  return buffer;
}

class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& reports) override {
    // vs_target is a rate counter (iterations / 2e6 per second), so the table would print it
    // as "1.6/s"; it is a plain ratio, so show it without the unit.
    std::vector<Run> shown = reports;
    for (Run& run : shown) {
      const auto ratio = run.counters.find("vs_target");
      if (ratio != run.counters.end()) ratio->second.flags = benchmark::Counter::kDefaults;
    }
    ConsoleReporter::ReportRuns(shown);
    for (const Run& run : reports) {
      if (run.error_occurred) continue;
      const auto rate = run.counters.find("items_per_second");
      if (rate == run.counters.end()) continue;
      const int rank = run.run_type == Run::RT_Iteration ? 1
                       : run.aggregate_name == "mean"    ? 2
                       : run.aggregate_name == "median"  ? 3
                                                         : 0;
      if (rank == 0) continue;
      const std::string& name = run.run_name.function_name;
      auto it =
          std::find_if(rates_.begin(), rates_.end(), [&](const Rate& r) { return r.name == name; });
      if (it == rates_.end()) it = rates_.insert(rates_.end(), Rate{name, 0, 0});
      if (rank >= it->rank) {
        it->rank = rank;
        it->per_second = rate->second.value;
      }
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    if (rates_.empty()) return;
    std::ostream& out = GetOutputStream();
    const auto inference = std::find_if(rates_.begin(), rates_.end(), [](const Rate& r) {
      return r.name == "BM_InferencePeakBytes";
    });
    out << "\nSummary (items per second on one thread; median when repeated):\n";
    for (const Rate& rate : rates_) {
      out << Format("  %-26s %10.3f M/s", rate.name.c_str(), rate.per_second / 1e6);
      if (inference != rates_.end() && rate.name != inference->name) {
        out << Format("   %.2fx InferencePeakBytes", rate.per_second / inference->per_second);
      }
      out << '\n';
    }
    if (inference != rates_.end()) {
      const double ratio = inference->per_second / kTargetPerSecond;
      out << Format("  InferencePeakBytes vs target %.1f M/s: %.2fx (", kTargetPerSecond / 1e6,
                    ratio)
          << (ratio >= 1 ? "meets it" : "BELOW target") << ")\n";
    }
    out.flush();
  }

 private:
  struct Rate {
    std::string name;
    int rank = 0;  // what the rate comes from: 1 one run, 2 the mean, 3 the median
    double per_second = 0;
  };
  std::vector<Rate> rates_;  // in the order the benchmarks ran
};

}  // namespace
}  // namespace peaknas::search

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Build the pool before timing starts, so no benchmark's first run pays for it.
  benchmark::DoNotOptimize(peaknas::search::Pool().data());
  peaknas::search::SummaryReporter reporter(isatty(STDOUT_FILENO)
                                                ? benchmark::ConsoleReporter::OO_Color
                                                : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
