#include "worker/data/random.h"

#include <gtest/gtest.h>

#include <cmath>

namespace peaknas::data {
namespace {

TEST(RngTest, EngineIsTheStandardMt19937_64) {
  // The standard fixes the 10000th output of a default-seeded mt19937_64.
  Rng rng(5489u);
  std::uint64_t x = 0;
  for (int i = 0; i < 10000; ++i) x = rng.NextU64();
  EXPECT_EQ(x, 9981545732273789042ULL);
}

TEST(RngTest, DrawsAreInRangeAndReproducible) {
  Rng a(1), b(1);
  for (int i = 0; i < 10000; ++i) {
    const double u = a.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_EQ(u, b.Uniform());
    const std::uint64_t k = a.UniformInt(7);
    ASSERT_LT(k, 7u);
    ASSERT_EQ(k, b.UniformInt(7));
    const std::int64_t j = a.UniformInt(-3, 3);
    ASSERT_GE(j, -3);
    ASSERT_LE(j, 3);
    ASSERT_EQ(j, b.UniformInt(-3, 3));
  }
  EXPECT_NE(Rng::DeriveSeed(1, 0), Rng::DeriveSeed(1, 1));
  EXPECT_NE(Rng::DeriveSeed(1, 0), Rng::DeriveSeed(2, 0));
}

TEST(RngTest, NormalHasUnitVariance) {
  Rng rng(2);
  double sum = 0, sum2 = 0;
  constexpr int kCount = 200000;
  for (int i = 0; i < kCount; ++i) {
    const double z = rng.Normal();
    sum += z;
    sum2 += z * z;
  }
  EXPECT_NEAR(sum / kCount, 0.0, 0.01);
  EXPECT_NEAR(sum2 / kCount, 1.0, 0.01);
}

}  // namespace
}  // namespace peaknas::data
