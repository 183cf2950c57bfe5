#include "server/frontier.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace peaknas::server {
namespace {

Evaluated P(double psnr, std::int64_t peak, double latency) {
  Evaluated e;
  e.psnr = psnr;
  e.peak_bytes = peak;
  e.latency_100mp_s = latency;
  return e;
}

TEST(Dominates, NeedsNoWorseEverywhereAndStrictlyBetterSomewhere) {
  EXPECT_TRUE(Dominates(P(30, 100, 1), P(29, 100, 1)));
  EXPECT_TRUE(Dominates(P(30, 90, 1), P(30, 100, 1)));
  EXPECT_TRUE(Dominates(P(30, 100, 0.5), P(30, 100, 1)));
  EXPECT_FALSE(Dominates(P(30, 100, 1), P(30, 100, 1)));  // identical
  EXPECT_FALSE(Dominates(P(31, 110, 1), P(30, 100, 1)));  // trade-off
  EXPECT_FALSE(Dominates(P(29, 100, 1), P(30, 100, 1)));
}

TEST(ParetoFront, RemovesDominatedAndKeepsTradeOffs) {
  const std::vector<Evaluated> points = {
      P(30, 100, 1.0),  // 0: front
      P(29, 120, 1.5),  // 1: dominated by 0
      P(32, 200, 2.0),  // 2: front (best psnr)
      P(25, 50, 3.0),   // 3: front (smallest peak)
      P(26, 60, 0.5),   // 4: front (fastest)
      P(25, 60, 3.0),   // 5: dominated by 3 and 4
  };
  EXPECT_EQ(ParetoFront(points), (std::vector<std::size_t>{0, 2, 3, 4}));
}

TEST(ParetoFront, TiesOnThreeObjectives) {
  // Identical points never dominate each other: both stay. A point equal on two objectives and
  // worse on the third is dominated.
  const std::vector<Evaluated> points = {
      P(30, 100, 1.0), P(30, 100, 1.0),  // identical twins
      P(30, 100, 1.1),                   // equal psnr and peak, slower
      P(30, 90, 1.2),                    // equal psnr, smaller but slower: trade-off
  };
  EXPECT_EQ(ParetoFront(points), (std::vector<std::size_t>{0, 1, 3}));
  EXPECT_TRUE(ParetoFront({}).empty());
  EXPECT_EQ(ParetoFront({P(1, 1, 1)}), (std::vector<std::size_t>{0}));
}

TEST(NondominatedSort, RanksAHandExample) {
  const std::vector<Evaluated> points = {
      P(30, 100, 1.0),  // 0: rank 0
      P(29, 110, 1.1),  // 1: dominated by 0 -> rank 1
      P(28, 120, 1.2),  // 2: dominated by 0 and 1 -> rank 2
      P(32, 200, 2.0),  // 3: rank 0
      P(31, 210, 2.1),  // 4: dominated by 3 only -> rank 1
      P(29, 110, 1.1),  // 5: twin of 1 -> rank 1
      P(27, 300, 9.0),  // 6: dominated by 0, 1, 2, 3, 4 -> rank 3
  };
  EXPECT_EQ(NondominatedSort(points), (std::vector<int>{0, 1, 2, 0, 1, 1, 3}));
  const std::vector<int> ranks = NondominatedSort(points);
  // Rank 0 is exactly the Pareto front.
  std::vector<std::size_t> zero;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] == 0) zero.push_back(i);
  }
  EXPECT_EQ(zero, ParetoFront(points));
}

TEST(CrowdingDistance, InfiniteAtTheExtremesAndNormalizedInside) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // A front along a line: psnr up as peak and latency go up.
  const std::vector<Evaluated> points = {P(20, 100, 1.0), P(25, 200, 2.0), P(26, 300, 3.0),
                                         P(30, 500, 5.0)};
  const std::vector<double> d = CrowdingDistance(points, {0, 1, 2, 3});
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0], kInf);
  EXPECT_EQ(d[3], kInf);
  // Point 1: psnr (26-20)/10, peak (300-100)/400, latency (3-1)/4.
  EXPECT_NEAR(d[1], 0.6 + 0.5 + 0.5, 1e-12);
  // Point 2: psnr (30-25)/10, peak (500-200)/400, latency (5-2)/4.
  EXPECT_NEAR(d[2], 0.5 + 0.75 + 0.75, 1e-12);

  // One or two members: all infinite. Order follows `front`.
  EXPECT_EQ(CrowdingDistance(points, {2}), (std::vector<double>{kInf}));
  EXPECT_EQ(CrowdingDistance(points, {3, 1}), (std::vector<double>{kInf, kInf}));
  EXPECT_TRUE(CrowdingDistance(points, {}).empty());
  const std::vector<double> sub = CrowdingDistance(points, {3, 1, 0});
  EXPECT_EQ(sub[0], kInf);
  EXPECT_EQ(sub[2], kInf);
  EXPECT_TRUE(std::isfinite(sub[1]));
}

TEST(Hypervolume, HandComputedSets) {
  const HypervolumeReference ref{.psnr = 20, .peak_bytes = 1000, .latency_100mp_s = 10};
  EXPECT_EQ(Hypervolume({}, ref), 0.0);
  // One point: a box (30-20) x (1000-600) x (10-6).
  EXPECT_DOUBLE_EQ(Hypervolume({P(30, 600, 6)}, ref), 10.0 * 400 * 4);
  // Two points, gains (10, 400, 4) and (5, 800, 8): 16000 + 32000 - overlap 5*400*4 = 8000.
  EXPECT_DOUBLE_EQ(Hypervolume({P(30, 600, 6), P(25, 200, 2)}, ref), 16000.0 + 32000 - 8000);
  // Three points, gains A (10, 400, 4), B (5, 800, 8), C (8, 600, 2).
  // Union by inclusion-exclusion: |A|=16000 |B|=32000 |C|=9600; A^B=(5,400,4)=8000,
  // A^C=(8,400,2)=6400, B^C=(5,600,2)=6000, A^B^C=(5,400,2)=4000.
  const double expected = 16000.0 + 32000 + 9600 - 8000 - 6400 - 6000 + 4000;
  EXPECT_DOUBLE_EQ(Hypervolume({P(30, 600, 6), P(25, 200, 2), P(28, 400, 8)}, ref), expected);
  // Points not strictly better than the reference on every objective add nothing.
  EXPECT_DOUBLE_EQ(Hypervolume({P(30, 600, 6), P(19, 100, 1), P(40, 1000, 1), P(40, 10, 10)}, ref),
                   16000.0);
}

TEST(Hypervolume, NormalizedAxesScoreGainTimesFreedPeakTimesFreedLatency) {
  const HypervolumeReference ref{.psnr = 30, .peak_bytes = 1000, .latency_100mp_s = 8};
  Evaluated p;
  p.psnr = 33;              // gain 3 dB
  p.peak_bytes = 500;       // half the budget
  p.latency_100mp_s = 0.8;  // a tenth of the reference latency
  EXPECT_NEAR(NormalizedHypervolume({p}, ref), 3 * 0.5 * 0.9, 1e-12);
  EXPECT_NEAR(NormalizedHypervolume({p}, ref), Hypervolume({p}, ref) / (1000 * 8), 1e-12);
  // Units cancel: the same points in other units of bytes and seconds score the same.
  const HypervolumeReference scaled{.psnr = 30, .peak_bytes = 1e6, .latency_100mp_s = 8000};
  Evaluated q = p;
  q.peak_bytes = 500'000;
  q.latency_100mp_s = 800;
  EXPECT_NEAR(NormalizedHypervolume({q}, scaled), NormalizedHypervolume({p}, ref), 1e-12);
}

TEST(Hypervolume, GrowsWithANonDominatedPointAndIgnoresADominatedOne) {
  const HypervolumeReference ref{.psnr = 20, .peak_bytes = 1000, .latency_100mp_s = 10};
  std::vector<Evaluated> points = {P(30, 600, 6), P(25, 200, 2), P(28, 400, 8)};
  const double base = Hypervolume(points, ref);

  std::vector<Evaluated> with_dominated = points;
  with_dominated.push_back(P(24, 700, 7));  // dominated by (30, 600, 6)
  with_dominated.push_back(P(30, 600, 6));  // a duplicate
  EXPECT_DOUBLE_EQ(Hypervolume(with_dominated, ref), base);

  std::vector<Evaluated> with_new = points;
  with_new.push_back(P(35, 900, 9));  // best psnr: non-dominated
  EXPECT_GT(Hypervolume(with_new, ref), base);

  // Order does not matter.
  std::vector<Evaluated> reversed(points.rbegin(), points.rend());
  EXPECT_DOUBLE_EQ(Hypervolume(reversed, ref), base);
}

// The incremental front equals the front of every result, after each of a few hundred random
// results (with ties, duplicates and ancestors over the budget), in the same order; it changes
// exactly when its members do.
TEST(AddToFront, FollowsTheFrontOfAllResults) {
  std::mt19937_64 rng(5);
  std::vector<Evaluated> done;
  std::vector<std::size_t> front;
  int unchanged = 0;
  for (int i = 0; i < 300; ++i) {
    Evaluated e;
    e.trial_id = i + 1;
    e.psnr = 25.0 + static_cast<double>(rng() % 40) / 10.0;
    e.peak_bytes = static_cast<std::int64_t>(1 + rng() % 30) << 20;
    e.latency_100mp_s = static_cast<double>(1 + rng() % 20);
    e.lineage.over_budget = rng() % 10 == 0;
    const std::vector<std::size_t> next = AddToFront(done, front, e);
    done.push_back(e);
    const std::vector<std::size_t> full = FrontOfResults(done);
    ASSERT_EQ(next, full) << "after result " << i;
    for (std::size_t k : next) EXPECT_FALSE(done[k].lineage.over_budget);
    if (SameMembers(next, front)) ++unchanged;
    front = next;
  }
  EXPECT_GT(unchanged, 0) << "dominated results leave the front as it is";
  EXPECT_LT(unchanged, 300);
  for (std::size_t k = 1; k < front.size(); ++k) {
    EXPECT_LE(done[front[k - 1]].peak_bytes, done[front[k]].peak_bytes) << "in increasing peak";
  }
}

}  // namespace
}  // namespace peaknas::server
