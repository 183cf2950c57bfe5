// Rng: a seeded random-number source whose draws are the same on every platform.
//
// std::mt19937_64 is fully specified by the C++ standard, but the standard distributions
// (std::uniform_int_distribution, std::normal_distribution, ...) are not: libstdc++, libc++
// and MSVC produce different sequences from the same engine. Every draw here is computed by
// this file from the engine's raw 64-bit output, so a seed names the same data everywhere.
// Normal draws use the Box–Muller transform; std::log/std::sin/std::cos may differ in the
// last ulp between C libraries, which can at most flip a rare rounding of a quantized value.
//
// Thread-safety: an Rng is a value; one object must not be used from two threads at once.
#ifndef PEAKNAS_WORKER_DATA_RANDOM_H_
#define PEAKNAS_WORKER_DATA_RANDOM_H_

#include <cstdint>
#include <random>

namespace peaknas::data {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  // A seed for an independent stream `stream` derived from `seed` (SplitMix64 mixing), so
  // that e.g. scene 7 of a generated dataset does not depend on how many draws scene 6 used.
  static std::uint64_t DeriveSeed(std::uint64_t seed, std::uint64_t stream);

  std::uint64_t NextU64() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  // Uniform in [lo, hi).
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n); n > 0. Unbiased (rejection sampling).
  std::uint64_t UniformInt(std::uint64_t n);
  // Uniform integer in [lo, hi] (inclusive); lo <= hi.
  std::int64_t UniformInt(std::int64_t lo, std::int64_t hi);
  bool Bernoulli() { return (engine_() >> 63) != 0; }
  // Standard normal N(0, 1) by Box–Muller; the second value of each pair is cached.
  double Normal();
  double Normal(double mean, double stddev) { return mean + stddev * Normal(); }

 private:
  std::mt19937_64 engine_;
  bool has_cached_normal_ = false;
  double cached_normal_ = 0.0;
};

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_RANDOM_H_
