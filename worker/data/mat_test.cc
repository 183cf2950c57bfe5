#include "worker/data/mat.h"

#include <gtest/gtest.h>
#include <matio.h>

#include <numeric>
#include <string>

#include "worker/data/image.h"
#include "worker/data/test_util.h"

namespace peaknas::data {
namespace {

using testing::ReadFileBytes;
using testing::ScopedTempDir;

Uint8Array Numbered(std::vector<std::size_t> dims) {
  Uint8Array a;
  a.dims = std::move(dims);
  a.data.resize(std::accumulate(a.dims.begin(), a.dims.end(), std::size_t{1}, std::multiplies<>()));
  for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return a;
}

// Reads the variable with plain matio and checks that MATLAB's element (i0, i1, …) — stored
// column-major — equals our C-order element.
void ExpectColumnMajorOnDisk(const std::string& path, const std::string& name,
                             const Uint8Array& c_order) {
  mat_t* mat = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  ASSERT_NE(mat, nullptr);
  matvar_t* var = Mat_VarRead(mat, name.c_str());
  ASSERT_NE(var, nullptr);
  ASSERT_EQ(var->class_type, MAT_C_UINT8);
  ASSERT_EQ(static_cast<std::size_t>(var->rank), c_order.dims.size());
  for (int j = 0; j < var->rank; ++j) EXPECT_EQ(var->dims[j], c_order.dims[j]);
  const auto* stored = static_cast<const std::uint8_t*>(var->data);
  const std::size_t rank = c_order.dims.size();
  std::vector<std::size_t> idx(rank, 0);
  for (std::size_t c_index = 0; c_index < c_order.data.size(); ++c_index) {
    // idx = the multi-index of c_index in C order.
    std::size_t rem = c_index;
    for (std::size_t j = rank; j-- > 0;) {
      idx[j] = rem % c_order.dims[j];
      rem /= c_order.dims[j];
    }
    std::size_t f_index = 0;
    for (std::size_t j = rank; j-- > 0;) f_index = f_index * c_order.dims[j] + idx[j];
    ASSERT_EQ(stored[f_index], c_order.data[c_index]) << "at C index " << c_index;
  }
  Mat_VarFree(var);
  Mat_Close(mat);
}

TEST(MatTest, SiddBlocksRoundTripInCOrder) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("ValidationNoisyBlocksSrgb.mat");
  const Uint8Array numbered = Numbered({2, 3, 8, 8, 3});
  SiddBlocks blocks;
  blocks.num_images = 2;
  blocks.blocks_per_image = 3;
  blocks.block_size = 8;
  blocks.data = numbered.data;
  ASSERT_TRUE(WriteSiddBlocks(path, "ValidationNoisyBlocksSrgb", blocks).ok());
  ExpectColumnMajorOnDisk(path, "ValidationNoisyBlocksSrgb", numbered);

  StatusOr<SiddBlocks> read = ReadSiddBlocks(path, "ValidationNoisyBlocksSrgb");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->num_images, 2);
  EXPECT_EQ(read->blocks_per_image, 3);
  EXPECT_EQ(read->block_size, 8);
  EXPECT_EQ(read->num_blocks(), 6u);
  ASSERT_EQ(read->data, numbered.data);
  // Element (image 1, block 2, row 5, column 6, blue) in C order.
  const std::size_t index = (((1 * 3 + 2) * 8 + 5) * 8 + 6) * 3 + 2;
  EXPECT_EQ(read->data[index], static_cast<std::uint8_t>(index * 7 + 3));
  const Image block = read->BlockImage(5);
  EXPECT_EQ(block.rgb[(5 * 8 + 6) * 3 + 2], read->data[index]);
}

TEST(MatTest, ReadsMat73AndUncompressedV5) {
  ScopedTempDir dir;
  const Uint8Array a = Numbered({2, 3, 8, 8, 3});
  // Write column-major data with plain matio, as MATLAB would.
  std::vector<std::size_t> reversed(a.dims.rbegin(), a.dims.rend());
  std::vector<std::uint8_t> column_major(a.data.size());
  for (std::size_t c_index = 0; c_index < a.data.size(); ++c_index) {
    std::size_t rem = c_index, f_index = 0, stride = 1;
    std::vector<std::size_t> idx(a.dims.size());
    for (std::size_t j = a.dims.size(); j-- > 0;) {
      idx[j] = rem % a.dims[j];
      rem /= a.dims[j];
    }
    for (std::size_t j = 0; j < a.dims.size(); ++j) {
      f_index += idx[j] * stride;
      stride *= a.dims[j];
    }
    column_major[f_index] = a.data[c_index];
  }
  for (const mat_ft version : {MAT_FT_MAT73, MAT_FT_MAT5}) {
    const std::string path = dir.Sub(version == MAT_FT_MAT73 ? "v73.mat" : "v5.mat");
    mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, version);
    ASSERT_NE(mat, nullptr);
    std::vector<std::size_t> dims = a.dims;
    matvar_t* var = Mat_VarCreate("ValidationGtBlocksSrgb", MAT_C_UINT8, MAT_T_UINT8, 5,
                                  dims.data(), column_major.data(), MAT_F_DONT_COPY_DATA);
    ASSERT_NE(var, nullptr);
    ASSERT_EQ(Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE), 0);
    Mat_VarFree(var);
    Mat_Close(mat);
    StatusOr<SiddBlocks> read = ReadSiddBlocks(path, "ValidationGtBlocksSrgb");
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->num_images, 2);
    EXPECT_EQ(read->data, a.data) << path;
  }
}

TEST(MatTest, ArraysOfOtherRanksRoundTrip) {
  ScopedTempDir dir;
  for (const std::vector<std::size_t>& dims : std::vector<std::vector<std::size_t>>{
           {5}, {1, 7}, {3, 5}, {70, 3}, {2, 65, 3}, {3, 5, 7, 7, 3}, {1, 1, 1, 1, 1, 2}}) {
    const std::string path = dir.Sub("x.mat");
    const Uint8Array a = Numbered(dims);
    ASSERT_TRUE(WriteUint8Array(path, "x", a).ok()) << FormatDims(dims);
    ExpectColumnMajorOnDisk(path, "x", a);
    StatusOr<Uint8Array> read = ReadUint8Array(path, "x");
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->dims, a.dims);
    EXPECT_EQ(read->data, a.data) << FormatDims(dims);
  }
}

TEST(MatTest, WritesAreByteIdentical) {
  ScopedTempDir dir;
  const Uint8Array a = Numbered({2, 3, 8, 8, 3});
  ASSERT_TRUE(WriteUint8Array(dir.Sub("a.mat"), "v", a).ok());
  ASSERT_TRUE(WriteUint8Array(dir.Sub("b.mat"), "v", a).ok());
  EXPECT_EQ(ReadFileBytes(dir.Sub("a.mat")), ReadFileBytes(dir.Sub("b.mat")));
}

// A compressed variable whose header declares far more elements than its file could inflate
// to (found by fuzz/mat_fuzzer.cc: matio then tried to allocate 1.5 TB) is refused first.
TEST(MatTest, ADeclaredSizeBeyondTheFileIsRefusedBeforeReading) {
  const std::string path =
      std::string(PEAKNAS_SOURCE_DIR) + "/fuzz/corpus/mat/huge-declared-size.mat";
  const auto read = ReadUint8Array(path, "ValidationNoisyBlocksSrgb");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("more than a file of 585 bytes can hold"),
            std::string::npos)
      << read.status().message();
}

TEST(MatTest, MissingVariableListsThePresentOnes) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("ValidationGtBlocksSrgb.mat");
  ASSERT_TRUE(WriteUint8Array(path, "ValidationGtBlocksSrgb", Numbered({1, 1, 4, 4, 3})).ok());
  StatusOr<SiddBlocks> read = ReadSiddBlocks(path, "ValidationNoisyBlocksSrgb");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read.status().message(),
            path +
                ": no variable 'ValidationNoisyBlocksSrgb' (variables present: "
                "ValidationGtBlocksSrgb)");
}

TEST(MatTest, WrongClassIsAnError) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("double.mat");
  {
    mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
    ASSERT_NE(mat, nullptr);
    std::size_t dims[2] = {2, 3};
    double values[6] = {1, 2, 3, 4, 5, 6};
    matvar_t* var = Mat_VarCreate("blocks", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, values, 0);
    ASSERT_NE(var, nullptr);
    ASSERT_EQ(Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE), 0);
    Mat_VarFree(var);
    Mat_Close(mat);
  }
  StatusOr<SiddBlocks> read = ReadSiddBlocks(path, "blocks");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(),
            path + ": variable 'blocks' is a 2x3 double array; expected a real uint8 array");
}

TEST(MatTest, WrongShapeIsAnError) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("blocks.mat");
  for (const std::vector<std::size_t>& dims : std::vector<std::vector<std::size_t>>{
           {2, 3, 8, 8}, {2, 3, 8, 8, 4}, {2, 3, 8, 6, 3}, {1, 2, 3, 8, 8, 3}}) {
    ASSERT_TRUE(WriteUint8Array(path, "blocks", Numbered(dims)).ok());
    StatusOr<SiddBlocks> read = ReadSiddBlocks(path, "blocks");
    ASSERT_FALSE(read.ok()) << FormatDims(dims);
    EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(read.status().message().find(path + ": variable 'blocks' has shape " +
                                           FormatDims(dims) + "; expected 5-D"),
              std::string::npos)
        << read.status().message();
  }
}

TEST(MatTest, NotAMatFileAndMissingFile) {
  ScopedTempDir dir;
  const std::string png = dir.Sub("image.mat");
  ASSERT_TRUE(WritePng(png, Image(8, 8)).ok());
  StatusOr<Uint8Array> read = ReadUint8Array(png, "x");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read.status().message().rfind(png + ": not a MAT file", 0), 0u)
      << read.status().message();

  const std::string missing = dir.Sub("missing.mat");
  read = ReadUint8Array(missing, "x");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(), missing + ": no such file");
}

TEST(MatTest, TruncatedFilesAreDataLoss) {
  ScopedTempDir dir;
  const Uint8Array a = Numbered({4, 4, 16, 16, 3});
  const std::string compressed = dir.Sub("compressed.mat");
  ASSERT_TRUE(WriteUint8Array(compressed, "v", a).ok());
  // libmatio alone would return garbage for a truncated uncompressed variable.
  const std::string plain = dir.Sub("plain.mat");
  {
    mat_t* mat = Mat_CreateVer(plain.c_str(), nullptr, MAT_FT_MAT5);
    ASSERT_NE(mat, nullptr);
    std::vector<std::size_t> dims = a.dims;
    std::vector<std::uint8_t> data = a.data;  // the order does not matter here
    matvar_t* var = Mat_VarCreate("v", MAT_C_UINT8, MAT_T_UINT8, 5, dims.data(), data.data(),
                                  MAT_F_DONT_COPY_DATA);
    ASSERT_NE(var, nullptr);
    ASSERT_EQ(Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE), 0);
    Mat_VarFree(var);
    Mat_Close(mat);
  }
  ASSERT_TRUE(ReadUint8Array(plain, "v").ok());
  for (const std::string& path : {compressed, plain}) {
    const std::vector<char> bytes = ReadFileBytes(path);
    for (const std::size_t keep : {bytes.size() / 2, bytes.size() - 1, std::size_t{132}}) {
      testing::WriteFileBytes(path, std::string(bytes.begin(), bytes.begin() + keep));
      StatusOr<Uint8Array> read = ReadUint8Array(path, "v");
      ASSERT_FALSE(read.ok()) << path << " cut to " << keep;
      EXPECT_EQ(read.status().code(), StatusCode::kDataLoss) << read.status().ToString();
      EXPECT_EQ(read.status().message().rfind(path + ": truncated MAT file", 0), 0u)
          << read.status().message();
    }
  }
}

TEST(MatTest, WriteRejectsBadInput) {
  ScopedTempDir dir;
  EXPECT_EQ(WriteUint8Array(dir.Sub("a.mat"), "1bad", Numbered({2})).code(),
            StatusCode::kInvalidArgument);
  Uint8Array wrong = Numbered({2, 2});
  wrong.data.pop_back();
  EXPECT_EQ(WriteUint8Array(dir.Sub("a.mat"), "v", wrong).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteSiddBlocks(dir.Sub("a.mat"), "v", SiddBlocks{}).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace peaknas::data
