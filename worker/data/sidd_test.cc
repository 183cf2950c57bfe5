#include "worker/data/sidd.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "worker/data/make_data.h"
#include "worker/data/test_util.h"

namespace peaknas::data {
namespace {

namespace fs = std::filesystem;
using testing::ScopedTempDir;

// The side of MakeSmall's training images.
constexpr int kSide = 48;

// A small generated dataset: 3 scenes × 2 pairs of 48×48, validation 2 × 3 blocks of 16×16.
void MakeSmall(const std::string& out) {
  MakeDataOptions o;
  o.out_dir = out;
  o.scenes = 3;
  o.image_size = kSide;
  o.val_images = 2;
  o.val_blocks = 3;
  o.block_size = 16;
  o.seed = 11;
  const Status status = MakeSiddLikeDataset(o);
  ASSERT_TRUE(status.ok()) << status.ToString();
}

TEST(SiddTest, OpensAGeneratedDataset) {
  ScopedTempDir dir;
  const std::string out = dir.Sub("sidd");
  MakeSmall(out);
  StatusOr<SiddDataset> dataset = OpenSiddDataset(out);
  ASSERT_TRUE(dataset.ok()) << dataset.status().ToString();
  ASSERT_EQ(dataset->train.size(), 6u);
  EXPECT_EQ(dataset->train[0].scene, "0001_SYN");
  EXPECT_EQ(dataset->train[5].scene, "0003_SYN");
  EXPECT_EQ(fs::path(dataset->train[1].noisy_path).filename(), "NOISY_SRGB_011.PNG");
  EXPECT_EQ(fs::path(dataset->train[1].clean_path).filename(), "GT_SRGB_011.PNG");
  for (const TrainingPair& pair : dataset->train) {
    EXPECT_EQ(pair.width, kSide);
    EXPECT_EQ(pair.height, kSide);
  }
  EXPECT_EQ(dataset->val_noisy.num_images, 2);
  EXPECT_EQ(dataset->val_noisy.blocks_per_image, 3);
  EXPECT_EQ(dataset->val_noisy.block_size, 16);
  EXPECT_EQ(dataset->val_clean.num_blocks(), 6u);
  EXPECT_NE(dataset->val_noisy.data, dataset->val_clean.data);

  StatusOr<LoadedPair> pair = LoadTrainingPair(dataset->train[0]);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(pair->noisy.width, kSide);
  EXPECT_EQ(pair->clean.height, kSide);
  EXPECT_NE(pair->noisy.rgb, pair->clean.rgb);

  OpenSiddOptions no_validation;
  no_validation.read_validation = false;
  dataset = OpenSiddDataset(out, no_validation);
  ASSERT_TRUE(dataset.ok());
  EXPECT_EQ(dataset->val_noisy.num_blocks(), 0u);
}

TEST(SiddTest, MissingDirectories) {
  ScopedTempDir dir;
  StatusOr<SiddDataset> dataset = OpenSiddDataset(dir.Sub("nope"));
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(dataset.status().message(), dir.Sub("nope") + ": no such dataset directory");

  dataset = OpenSiddDataset(dir.path().string());
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().code(), StatusCode::kNotFound);
  EXPECT_NE(dataset.status().message().find(dir.Sub("Data") + ": no such directory"),
            std::string::npos);

  fs::create_directories(dir.path() / "Data" / "0001_empty");
  dataset = OpenSiddDataset(dir.path().string());
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dataset.status().message().find("no scenes"), std::string::npos);
}

TEST(SiddTest, UnpairedImageIsNamed) {
  ScopedTempDir dir;
  const std::string out = dir.Sub("sidd");
  MakeSmall(out);
  const fs::path scene = fs::path(out) / "Data" / "0002_SYN";
  fs::remove(scene / "GT_SRGB_011.PNG");
  StatusOr<SiddDataset> dataset = OpenSiddDataset(out);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().message(),
            (scene / "NOISY_SRGB_011.PNG").string() + ": no matching GT_SRGB_011.PNG");

  fs::remove(scene / "NOISY_SRGB_011.PNG");
  fs::remove(scene / "NOISY_SRGB_010.PNG");
  dataset = OpenSiddDataset(out);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().message(),
            (scene / "GT_SRGB_010.PNG").string() + ": no matching NOISY_SRGB_010.PNG");
}

TEST(SiddTest, SizeMismatchAndCorruptImage) {
  ScopedTempDir dir;
  const std::string out = dir.Sub("sidd");
  MakeSmall(out);
  const fs::path scene = fs::path(out) / "Data" / "0003_SYN";
  ASSERT_TRUE(WritePng((scene / "GT_SRGB_010.PNG").string(), Image(40, kSide)).ok());
  StatusOr<SiddDataset> dataset = OpenSiddDataset(out);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().message(), (scene / "NOISY_SRGB_010.PNG").string() +
                                            ": size 48x48 differs from " +
                                            (scene / "GT_SRGB_010.PNG").string() + " (40x48)");

  testing::WriteFileBytes(scene / "GT_SRGB_010.PNG", "garbage");
  dataset = OpenSiddDataset(out);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().message(), (scene / "GT_SRGB_010.PNG").string() +
                                            ": not a PNG or JPEG image (stbi: unknown signature)");
}

TEST(SiddTest, ValidationFilesMustExistAndAgree) {
  ScopedTempDir dir;
  const std::string out = dir.Sub("sidd");
  MakeSmall(out);
  const fs::path gt = fs::path(out) / "ValidationGtBlocksSrgb.mat";
  SiddBlocks other;
  other.num_images = 2;
  other.blocks_per_image = 2;
  other.block_size = 16;
  other.data.resize(other.num_blocks() * other.block_bytes());
  ASSERT_TRUE(WriteSiddBlocks(gt.string(), "ValidationGtBlocksSrgb", other).ok());
  StatusOr<SiddDataset> dataset = OpenSiddDataset(out);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().message(), (fs::path(out) / "ValidationNoisyBlocksSrgb.mat").string() +
                                            ": shape 2x3x16x16x3 differs from " + gt.string() +
                                            " (2x2x16x16x3)");

  fs::remove(gt);
  dataset = OpenSiddDataset(out);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(dataset.status().message(), gt.string() + ": no such file");
}

}  // namespace
}  // namespace peaknas::data
