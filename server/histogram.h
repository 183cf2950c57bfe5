// A Prometheus histogram's data: observations counted per bucket (each value counted in the
// first bucket whose upper bound is >= it; the +Inf bucket last), their sum and their count.
// server/metrics.cc writes it in the text format (cumulative buckets, _sum, _count).
//
// Thread-safety: a value type; the owner guards it.
#ifndef PEAKNAS_SERVER_HISTOGRAM_H_
#define PEAKNAS_SERVER_HISTOGRAM_H_

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace peaknas::server {

struct Histogram {
  Histogram() = default;
  explicit Histogram(std::vector<double> upper_bounds)
      : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}

  void Observe(double value) {
    const auto i = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
    ++counts[static_cast<std::size_t>(i)];
    sum += value;
  }
  std::int64_t count() const {
    std::int64_t n = 0;
    for (std::int64_t c : counts) n += c;
    return n;
  }

  std::vector<double> bounds;        // increasing upper bounds, +Inf implied
  std::vector<std::int64_t> counts;  // per bucket, not cumulative; bounds.size() + 1 of them
  double sum = 0;
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_HISTOGRAM_H_
