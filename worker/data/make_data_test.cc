#include "worker/data/make_data.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "worker/data/dead_leaves.h"
#include "worker/data/metrics.h"
#include "worker/data/sidd.h"
#include "worker/data/test_util.h"

namespace peaknas::data {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileBytes;
using testing::ScopedTempDir;

MakeDataOptions Small(const std::string& out, std::uint64_t seed) {
  return {.out_dir = out,
          .scenes = 2,
          .image_size = 64,
          .val_images = 2,
          .val_blocks = 4,
          .block_size = 32,
          .seed = seed};
}

// Relative path → bytes, for every file under `root`.
std::map<std::string, std::vector<char>> Snapshot(const fs::path& root) {
  std::map<std::string, std::vector<char>> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), root).string()] = ReadFileBytes(entry.path());
    }
  }
  return files;
}

TEST(MakeDataTest, WritesTheSiddLayout) {
  ScopedTempDir dir;
  const fs::path out = dir.path() / "data";
  const Status status = MakeSiddLikeDataset(Small(out.string(), 1));
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto files = Snapshot(out);
  std::vector<std::string> names;
  for (const auto& [name, bytes] : files) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "Data/0001_SYN/GT_SRGB_010.PNG", "Data/0001_SYN/GT_SRGB_011.PNG",
                       "Data/0001_SYN/NOISY_SRGB_010.PNG", "Data/0001_SYN/NOISY_SRGB_011.PNG",
                       "Data/0002_SYN/GT_SRGB_010.PNG", "Data/0002_SYN/GT_SRGB_011.PNG",
                       "Data/0002_SYN/NOISY_SRGB_010.PNG", "Data/0002_SYN/NOISY_SRGB_011.PNG",
                       "ValidationGtBlocksSrgb.mat", "ValidationNoisyBlocksSrgb.mat",
                       "peaknas-data.json"}));
  const std::string manifest(files.at("peaknas-data.json").begin(),
                             files.at("peaknas-data.json").end());
  EXPECT_NE(manifest.find("\"complete\": true"), std::string::npos) << manifest;
  EXPECT_NE(manifest.find("\"scene\": \"0002_SYN\""), std::string::npos) << manifest;
}

TEST(MakeDataTest, SameSeedSameBytesAnyThreadsOtherSeedOtherBytes) {
  ScopedTempDir dir;
  MakeDataOptions one_thread = Small(dir.Sub("a"), 7), four_threads = Small(dir.Sub("b"), 7);
  one_thread.threads = 1;
  four_threads.threads = 4;
  ASSERT_TRUE(MakeSiddLikeDataset(one_thread).ok());
  ASSERT_TRUE(MakeSiddLikeDataset(four_threads).ok());
  ASSERT_TRUE(MakeSiddLikeDataset(Small(dir.Sub("c"), 8)).ok());
  const auto a = Snapshot(dir.Sub("a")), b = Snapshot(dir.Sub("b")), c = Snapshot(dir.Sub("c"));
  EXPECT_TRUE(a == b);
  ASSERT_EQ(a.size(), c.size());
  for (const auto& [name, bytes] : a) {
    if (name == "peaknas-data.json") continue;
    EXPECT_NE(bytes, c.at(name)) << name;
  }
}

TEST(MakeDataTest, NoisyBaselineIsPlausible) {
  ScopedTempDir dir;
  MakeDataOptions o = Small(dir.Sub("d"), 3);
  o.val_images = 6;
  ASSERT_TRUE(MakeSiddLikeDataset(o).ok());
  StatusOr<SiddDataset> dataset = OpenSiddDataset(dir.Sub("d"));
  ASSERT_TRUE(dataset.ok()) << dataset.status().ToString();
  const SiddScores scores = EvaluateBlocks(dataset->val_noisy, dataset->val_clean);
  EXPECT_EQ(scores.blocks, 24u);
  // Brooks et al.'s noise levels give noisy sRGB between roughly 20 and 45 dB.
  EXPECT_GT(scores.psnr, 18.0);
  EXPECT_LT(scores.psnr, 48.0);
  EXPECT_GT(scores.ssim, 0.1);
  EXPECT_LT(scores.ssim, 0.999);
}

TEST(MakeDataTest, OutputDirectoryPolicy) {
  ScopedTempDir dir;
  const fs::path out = dir.path() / "out";
  ASSERT_TRUE(MakeSiddLikeDataset(Small(out.string(), 1)).ok());
  // A previous generation is replaced; other files survive.
  testing::WriteFileBytes(out / "README.txt", "mine");
  testing::WriteFileBytes(out / "Data" / "stale.txt", "old");
  MakeDataOptions again = Small(out.string(), 2);
  again.scenes = 1;
  ASSERT_TRUE(MakeSiddLikeDataset(again).ok());
  EXPECT_TRUE(fs::exists(out / "README.txt"));
  EXPECT_FALSE(fs::exists(out / "Data" / "stale.txt"));
  EXPECT_FALSE(fs::exists(out / "Data" / "0002_SYN"));
  // A foreign non-empty directory is refused and left alone.
  const fs::path foreign = dir.path() / "photos";
  fs::create_directories(foreign);
  testing::WriteFileBytes(foreign / "holiday.jpg", "precious");
  const Status status = MakeSiddLikeDataset(Small(foreign.string(), 1));
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find(foreign.string() + ": exists, is not empty"), std::string::npos)
      << status.message();
  EXPECT_EQ(Snapshot(foreign).size(), 1u);
}

TEST(MakeDataTest, FromAFolderOfImages) {
  ScopedTempDir dir;
  const fs::path images = dir.path() / "images";
  fs::create_directories(images);
  ASSERT_TRUE(WritePng((images / "a.png").string(), DeadLeavesImage(90, 70, 1)).ok());
  ASSERT_TRUE(WritePng((images / "b.PNG").string(), DeadLeavesImage(70, 80, 2)).ok());
  testing::WriteFileBytes(images / "notes.txt", "ignored");
  MakeDataOptions o = Small(dir.Sub("out"), 5);
  o.from_dir = images.string();
  int last_done = 0;
  std::string last_stage;
  o.progress = [&](const MakeDataProgress& p) {
    last_stage = std::string(p.stage);
    last_done = p.done;
  };
  Status status = MakeSiddLikeDataset(o);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(last_stage, "writing");
  EXPECT_EQ(last_done, 2);
  ASSERT_TRUE(OpenSiddDataset(dir.Sub("out")).ok());

  ASSERT_TRUE(WritePng((images / "c.png").string(), DeadLeavesImage(40, 40, 3)).ok());
  o.out_dir = dir.Sub("out2");
  o.scenes = 3;
  status = MakeSiddLikeDataset(o);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), (images / "c.png").string() + ": 40x40 is smaller than 64x64");
  EXPECT_FALSE(fs::exists(dir.path() / "out2"));  // checked before writing anything

  o.from_dir = dir.Sub("nothing");
  EXPECT_EQ(MakeSiddLikeDataset(o).code(), StatusCode::kNotFound);
}

TEST(MakeDataTest, RejectsBadOptions) {
  ScopedTempDir dir;
  MakeDataOptions o = Small(dir.Sub("x"), 1);
  o.block_size = 128;
  const Status status = MakeSiddLikeDataset(o);
  EXPECT_EQ(status.message(), "block_size: 128 is not in [11, 64]");
  o = Small("", 1);
  EXPECT_EQ(MakeSiddLikeDataset(o).code(), StatusCode::kInvalidArgument);
  o = Small(dir.Sub("x"), 1);
  o.scenes = 0;
  EXPECT_EQ(MakeSiddLikeDataset(o).message(), "scenes: 0 is not in [1, 100000]");
  EXPECT_FALSE(fs::exists(dir.path() / "x"));
}

TEST(DeadLeavesTest, DeterministicCoveredAndVaried) {
  const Image a = DeadLeavesImage(96, 64, 42);
  const Image b = DeadLeavesImage(96, 64, 42);
  const Image c = DeadLeavesImage(96, 64, 43);
  EXPECT_EQ(a.rgb, b.rgb);
  EXPECT_NE(a.rgb, c.rgb);
  ASSERT_EQ(a.width, 96);
  ASSERT_EQ(a.height, 64);
  // Not flat: many distinct colours and a real spread of values.
  double sum = 0, sum2 = 0;
  for (std::uint8_t v : a.rgb) {
    sum += v;
    sum2 += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(a.rgb.size());
  const double stddev = std::sqrt(sum2 / n - (sum / n) * (sum / n));
  EXPECT_GT(stddev, 20.0);
}

}  // namespace
}  // namespace peaknas::data
