#include "worker/data/patch_sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "worker/data/test_util.h"

namespace peaknas::data {
namespace {

namespace fs = std::filesystem;
using testing::ScopedTempDir;

// Pairs whose pixels encode their coordinates: noisy (x, y, id), clean (x, y, 100 + id).
std::vector<TrainingPair> CoordinatePairs(const fs::path& dir, int count, int w, int h) {
  std::vector<TrainingPair> pairs;
  for (int id = 0; id < count; ++id) {
    Image noisy(w, h), clean(w, h);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const std::size_t p = (static_cast<std::size_t>(y) * w + x) * 3;
        noisy.rgb[p] = clean.rgb[p] = static_cast<std::uint8_t>(x);
        noisy.rgb[p + 1] = clean.rgb[p + 1] = static_cast<std::uint8_t>(y);
        noisy.rgb[p + 2] = static_cast<std::uint8_t>(id);
        clean.rgb[p + 2] = static_cast<std::uint8_t>(100 + id);
      }
    }
    TrainingPair pair;
    pair.scene = std::string("s").append(std::to_string(id));
    pair.noisy_path = (dir / ("NOISY_SRGB_" + std::to_string(id) + ".PNG")).string();
    pair.clean_path = (dir / ("GT_SRGB_" + std::to_string(id) + ".PNG")).string();
    pair.width = w;
    pair.height = h;
    EXPECT_TRUE(WritePng(pair.noisy_path, noisy).ok());
    EXPECT_TRUE(WritePng(pair.clean_path, clean).ok());
    pairs.push_back(pair);
  }
  return pairs;
}

int At(const std::vector<float>& v, std::size_t i) {
  return static_cast<int>(std::lround(v[i] * 255));
}

TEST(PatchSamplerTest, PatchesAreTransformedCropsInsideTheImage) {
  ScopedTempDir dir;
  constexpr int kW = 40, kH = 30, kP = 8, kB = 64;
  const PatchSamplerOptions options{.batch = kB, .patch = kP, .seed = 3};
  StatusOr<PatchSampler> sampler =
      PatchSampler::Create(CoordinatePairs(dir.path(), 3, kW, kH), options);
  ASSERT_TRUE(sampler.ok()) << sampler.status().ToString();
  EXPECT_EQ(sampler->working_set_size(), 3u);
  PatchBatch batch;
  std::set<int> ids, corners;
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(sampler->Next(&batch).ok());
    ASSERT_EQ(batch.noisy.size(), static_cast<std::size_t>(kB) * 3 * kP * kP);
    const std::size_t plane = kP * kP;
    for (int b = 0; b < kB; ++b) {
      const std::size_t base = static_cast<std::size_t>(b) * 3 * plane;
      const int id = At(batch.noisy, base + 2 * plane);
      ids.insert(id);
      int min_x = 1000, max_x = -1, min_y = 1000, max_y = -1;
      std::set<std::pair<int, int>> seen;
      for (std::size_t k = 0; k < plane; ++k) {
        const int x = At(batch.noisy, base + k), y = At(batch.noisy, base + plane + k);
        ASSERT_EQ(At(batch.clean, base + k), x);  // same transform for both
        ASSERT_EQ(At(batch.clean, base + plane + k), y);
        ASSERT_EQ(At(batch.noisy, base + 2 * plane + k), id);
        ASSERT_EQ(At(batch.clean, base + 2 * plane + k), 100 + id);
        min_x = std::min(min_x, x);
        max_x = std::max(max_x, x);
        min_y = std::min(min_y, y);
        max_y = std::max(max_y, y);
        seen.insert({x, y});
      }
      // A P×P window of distinct source pixels inside the image.
      EXPECT_EQ(max_x - min_x, kP - 1);
      EXPECT_EQ(max_y - min_y, kP - 1);
      EXPECT_GE(min_x, 0);
      EXPECT_LT(max_x, kW);
      EXPECT_LT(max_y, kH);
      EXPECT_EQ(seen.size(), plane);
      // Where the window's top-left source pixel landed: varies with flips and rotations.
      for (int k : {0, kP - 1, kP * (kP - 1), kP * kP - 1}) {
        if (At(batch.noisy, base + k) == min_x && At(batch.noisy, base + plane + k) == min_y) {
          corners.insert(k);
        }
      }
    }
  }
  EXPECT_EQ(ids, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(corners.size(), 4u);
}

TEST(PatchSamplerTest, ReproducibleFromTheSeed) {
  ScopedTempDir dir;
  const auto pairs = CoordinatePairs(dir.path(), 4, 24, 24);
  PatchSamplerOptions options{.batch = 4, .patch = 16, .seed = 9};
  auto a = PatchSampler::Create(pairs, options);
  auto b = PatchSampler::Create(pairs, options);
  options.seed = 10;
  auto c = PatchSampler::Create(pairs, options);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  PatchBatch ba, bb, bc;
  bool any_difference = false;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a->Next(&ba).ok());
    ASSERT_TRUE(b->Next(&bb).ok());
    ASSERT_TRUE(c->Next(&bc).ok());
    EXPECT_EQ(ba.noisy, bb.noisy);
    EXPECT_EQ(ba.clean, bb.clean);
    any_difference = any_difference || ba.noisy != bc.noisy;
  }
  EXPECT_TRUE(any_difference);
}

TEST(PatchSamplerTest, WorkingSetWhenPairsDoNotFit) {
  ScopedTempDir dir;
  const auto pairs = CoordinatePairs(dir.path(), 5, 16, 16);
  const PatchSamplerOptions options{
      .batch = 2,
      .patch = 8,
      .max_resident_bytes = 2 * (2 * 3 * 16 * 16),  // two decoded pairs
      .refresh_every_batches = 1};
  auto a = PatchSampler::Create(pairs, options);
  auto b = PatchSampler::Create(pairs, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->working_set_size(), 2u);
  EXPECT_EQ(a->num_pairs(), 5u);
  PatchBatch ba, bb;
  std::set<int> ids;
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(a->Next(&ba).ok());
    ASSERT_TRUE(b->Next(&bb).ok());
    ASSERT_EQ(ba.noisy, bb.noisy);
    for (int k = 0; k < 2; ++k) ids.insert(At(ba.noisy, (k * 3 + 2) * 64));
  }
  EXPECT_EQ(ids.size(), 5u);  // every pair visited over time
}

TEST(PatchSamplerTest, Errors) {
  ScopedTempDir dir;
  auto pairs = CoordinatePairs(dir.path(), 2, 20, 12);
  PatchSamplerOptions options;
  options.patch = 16;
  auto sampler = PatchSampler::Create(pairs, options);
  ASSERT_FALSE(sampler.ok());
  EXPECT_EQ(sampler.status().message(),
            pairs[0].noisy_path + ": 20x12 is smaller than the patch 16x16");
  options.patch = 8;
  options.batch = 0;
  EXPECT_EQ(PatchSampler::Create(pairs, options).status().message(),
            "batch: 0 is not in [1, 65536]");
  options.batch = 2;
  EXPECT_FALSE(PatchSampler::Create({}, options).ok());
  // A file that disappeared is reported when its pair is first decoded.
  fs::remove(pairs[1].clean_path);
  fs::remove(pairs[0].clean_path);
  sampler = PatchSampler::Create(pairs, options);
  ASSERT_TRUE(sampler.ok());
  PatchBatch batch;
  const Status status = sampler->Next(&batch);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_NE(status.message().find("GT_SRGB_"), std::string::npos);
}

}  // namespace
}  // namespace peaknas::data
