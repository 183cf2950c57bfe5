#include "server/frontier.h"

#include <algorithm>
#include <array>
#include <limits>
#include <numeric>

namespace peaknas::server {
namespace {

// Objectives in minimization form.
std::array<double, 3> Minimized(const Evaluated& e) {
  return {-e.psnr, static_cast<double>(e.peak_bytes), e.latency_100mp_s};
}

}  // namespace

bool Dominates(const Evaluated& a, const Evaluated& b) {
  const auto x = Minimized(a);
  const auto y = Minimized(b);
  bool strictly = false;
  for (std::size_t k = 0; k < x.size(); ++k) {
    if (x[k] > y[k]) return false;
    if (x[k] < y[k]) strictly = true;
  }
  return strictly;
}

std::vector<std::size_t> ParetoFront(const std::vector<Evaluated>& points) {
  std::vector<std::size_t> front;
  for (std::size_t i = 0; i < points.size(); ++i) {
    bool dominated = false;
    for (std::size_t j = 0; j < points.size() && !dominated; ++j) {
      dominated = j != i && Dominates(points[j], points[i]);
    }
    if (!dominated) front.push_back(i);
  }
  return front;
}

namespace {

// The non-dominated members of `indices` (into the results, `at` reading one), in increasing
// peak, ties by trial id.
template <typename At>
std::vector<std::size_t> FrontOf(const std::vector<std::size_t>& indices, const At& at) {
  std::vector<Evaluated> points;
  points.reserve(indices.size());
  for (std::size_t i : indices) points.push_back(at(i));
  std::vector<std::size_t> front;
  for (std::size_t k : ParetoFront(points)) front.push_back(indices[k]);
  std::sort(front.begin(), front.end(), [&](std::size_t a, std::size_t b) {
    if (at(a).peak_bytes != at(b).peak_bytes) return at(a).peak_bytes < at(b).peak_bytes;
    return at(a).trial_id < at(b).trial_id;
  });
  return front;
}

}  // namespace

std::vector<std::size_t> FrontOfResults(const std::vector<Evaluated>& done) {
  std::vector<std::size_t> eligible;
  for (std::size_t i = 0; i < done.size(); ++i) {
    if (!done[i].lineage.over_budget) eligible.push_back(i);
  }
  return FrontOf(eligible, [&](std::size_t i) -> const Evaluated& { return done[i]; });
}

std::vector<std::size_t> AddToFront(const std::vector<Evaluated>& done,
                                    const std::vector<std::size_t>& front, const Evaluated& fresh) {
  const std::size_t fresh_index = done.size();
  std::vector<std::size_t> candidates = front;
  if (!fresh.lineage.over_budget) candidates.push_back(fresh_index);
  return FrontOf(candidates, [&](std::size_t i) -> const Evaluated& {
    return i == fresh_index ? fresh : done[i];
  });
}

bool SameMembers(std::vector<std::size_t> a, std::vector<std::size_t> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

std::vector<int> NondominatedSort(const std::vector<Evaluated>& points) {
  const std::size_t n = points.size();
  std::vector<std::vector<std::size_t>> dominates(n);  // i dominates these
  std::vector<int> dominated_by(n, 0);                 // how many dominate i
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      if (Dominates(points[i], points[j])) {
        dominates[i].push_back(j);
        ++dominated_by[j];
      } else if (Dominates(points[j], points[i])) {
        dominates[j].push_back(i);
        ++dominated_by[i];
      }
    }
  }
  std::vector<int> rank(n, -1);
  std::vector<std::size_t> current;
  for (std::size_t i = 0; i < n; ++i) {
    if (dominated_by[i] == 0) current.push_back(i);
  }
  for (int r = 0; !current.empty(); ++r) {
    std::vector<std::size_t> next;
    for (std::size_t i : current) {
      rank[i] = r;
      for (std::size_t j : dominates[i]) {
        if (--dominated_by[j] == 0) next.push_back(j);
      }
    }
    std::sort(next.begin(), next.end());
    current = std::move(next);
  }
  return rank;
}

std::vector<double> CrowdingDistance(const std::vector<Evaluated>& points,
                                     const std::vector<std::size_t>& front) {
  const std::size_t m = front.size();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> distance(m, 0.0);
  if (m <= 2) {
    std::fill(distance.begin(), distance.end(), kInf);
    return distance;
  }
  std::vector<std::array<double, 3>> values(m);
  for (std::size_t i = 0; i < m; ++i) values[i] = Minimized(points[front[i]]);
  std::vector<std::size_t> order(m);
  for (std::size_t k = 0; k < 3; ++k) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return values[a][k] < values[b][k]; });
    distance[order.front()] = kInf;
    distance[order.back()] = kInf;
    const double range = values[order.back()][k] - values[order.front()][k];
    if (range <= 0) continue;
    for (std::size_t i = 1; i + 1 < m; ++i) {
      distance[order[i]] += (values[order[i + 1]][k] - values[order[i - 1]][k]) / range;
    }
  }
  return distance;
}

double Hypervolume(const std::vector<Evaluated>& points, const HypervolumeReference& reference) {
  // Gains over the reference, all to be maximized; boxes anchored at the origin.
  struct Gain {
    double a, b, c;
  };
  std::vector<Gain> gains;
  for (const Evaluated& e : points) {
    const Gain g{e.psnr - reference.psnr, reference.peak_bytes - static_cast<double>(e.peak_bytes),
                 reference.latency_100mp_s - e.latency_100mp_s};
    if (g.a > 0 && g.b > 0 && g.c > 0) gains.push_back(g);
  }
  // Slice along c, from the largest down: between consecutive distinct c values, the cross
  // section is the 2-D union of the boxes of every point whose c reaches that slice.
  std::sort(gains.begin(), gains.end(), [](const Gain& x, const Gain& y) { return x.c > y.c; });
  std::vector<std::pair<double, double>> slice;  // (a, b) of the points with c >= current level
  double volume = 0;
  for (std::size_t i = 0; i < gains.size(); ++i) {
    slice.emplace_back(gains[i].a, gains[i].b);
    const double next_c = i + 1 < gains.size() ? gains[i + 1].c : 0.0;
    const double height = gains[i].c - next_c;
    if (height <= 0) continue;
    std::vector<std::pair<double, double>> sorted = slice;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());  // a descending
    double area = 0;
    double max_b = 0;
    for (const auto& [a, b] : sorted) {
      if (b > max_b) {
        area += a * (b - max_b);
        max_b = b;
      }
    }
    volume += area * height;
  }
  return volume;
}

double NormalizedHypervolume(const std::vector<Evaluated>& points,
                             const HypervolumeReference& reference) {
  return Hypervolume(points, reference) / (reference.peak_bytes * reference.latency_100mp_s);
}

}  // namespace peaknas::server
