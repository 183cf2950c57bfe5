#include "worker/data/raster.h"

#include <gtest/gtest.h>
#include <png.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <tiffio.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "worker/data/random.h"
#include "worker/data/test_util.h"

namespace peaknas::data {
namespace {

using testing::ReadFileBytes;
using testing::ScopedTempDir;
using testing::WriteFileBytes;

std::vector<std::uint16_t> RandomSamples(int w, int h, int max_value, std::uint64_t seed) {
  std::vector<std::uint16_t> samples(static_cast<std::size_t>(w) * h * 3);
  Rng rng(seed);
  for (auto& v : samples) v = static_cast<std::uint16_t>(rng.UniformInt(max_value + 1));
  return samples;
}

// Writes `samples` in bands of `band` rows and finishes.
void WriteInBands(const std::string& path, int w, int h, int bits,
                  const std::vector<std::uint16_t>& samples, int band) {
  StatusOr<std::unique_ptr<RasterWriter>> writer = CreateRaster(path, w, h, bits);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  for (int y = 0; y < h; y += band) {
    const int rows = std::min(band, h - y);
    ASSERT_TRUE(
        (*writer)->WriteRows(rows, samples.data() + static_cast<std::size_t>(y) * w * 3).ok());
  }
  const Status finished = (*writer)->Finish();
  ASSERT_TRUE(finished.ok()) << finished.ToString();
}

// Reads the whole raster in bands of `band` rows.
std::vector<std::uint16_t> ReadInBands(const std::string& path, int band, RasterInfo* info) {
  StatusOr<std::unique_ptr<RasterReader>> reader = OpenRaster(path);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return {};
  *info = (*reader)->info();
  std::vector<std::uint16_t> samples(static_cast<std::size_t>(info->width) * info->height * 3);
  for (int y = 0; y < info->height; y += band) {
    const int rows = std::min(band, info->height - y);
    const Status read =
        (*reader)->ReadRows(rows, samples.data() + static_cast<std::size_t>(y) * info->width * 3);
    EXPECT_TRUE(read.ok()) << read.ToString();
  }
  return samples;
}

class RasterRoundTrip : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(RasterRoundTrip, BandsWrittenAreTheBandsRead) {
  const auto& [extension, bits] = GetParam();
  ScopedTempDir dir;
  const std::string path = dir.Sub("image" + extension);
  const int w = 37, h = 23, max_value = bits == 16 ? 65535 : 255;
  const std::vector<std::uint16_t> samples = RandomSamples(w, h, max_value, 7);
  WriteInBands(path, w, h, bits, samples, 5);
  EXPECT_FALSE(std::filesystem::exists(path + ".part"));
  RasterInfo info;
  EXPECT_EQ(ReadInBands(path, 4, &info), samples);
  EXPECT_EQ(info.width, w);
  EXPECT_EQ(info.height, h);
  EXPECT_EQ(info.bits, bits);
  EXPECT_EQ(info.max_value(), max_value);
  EXPECT_EQ(info.format, extension == ".png" ? RasterFormat::kPng : RasterFormat::kTiff);
}

INSTANTIATE_TEST_SUITE_P(PngAndTiff, RasterRoundTrip,
                         ::testing::Combine(::testing::Values(".png", ".tif", ".TIFF"),
                                            ::testing::Values(8, 16)));

TEST(RasterTest, PngDecodesAsStbDoesAndGreyBecomesRgb) {
  ScopedTempDir dir;
  const int w = 19, h = 11;
  std::vector<std::uint8_t> grey(static_cast<std::size_t>(w) * h);
  Rng rng(3);
  for (auto& v : grey) v = static_cast<std::uint8_t>(rng.UniformInt(256));
  const std::string path = dir.Sub("grey.png");
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, 1, grey.data(), w), 0);
  RasterInfo info;
  const std::vector<std::uint16_t> samples = ReadInBands(path, 3, &info);
  ASSERT_EQ(samples.size(), grey.size() * 3);
  for (std::size_t i = 0; i < grey.size(); ++i) {
    ASSERT_EQ(samples[3 * i], grey[i]);
    ASSERT_EQ(samples[3 * i + 1], grey[i]);
    ASSERT_EQ(samples[3 * i + 2], grey[i]);
  }
}

TEST(RasterTest, JpegDecodesCloseToStb) {
  ScopedTempDir dir;
  const int w = 40, h = 24;
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c)
        rgb[(y * w + x) * 3 + c] = static_cast<std::uint8_t>(x * 6 + c * 20 + y);
    }
  }
  const std::string path = dir.Sub("smooth.jpg");
  ASSERT_NE(stbi_write_jpg(path.c_str(), w, h, 3, rgb.data(), 95), 0);
  int sw = 0, sh = 0, sc = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> stb(stbi_load(path.c_str(), &sw, &sh, &sc, 3),
                                                stbi_image_free);
  ASSERT_NE(stb, nullptr);
  RasterInfo info;
  const std::vector<std::uint16_t> samples = ReadInBands(path, 7, &info);
  EXPECT_EQ(info.format, RasterFormat::kJpeg);
  EXPECT_EQ(info.bits, 8);
  ASSERT_EQ(samples.size(), rgb.size());
  double diff = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) diff += std::abs(samples[i] - stb.get()[i]);
  EXPECT_LT(diff / samples.size(), 2.0);  // two decoders' rounding, not a different image
}

TEST(RasterTest, DamagedDataIsAnErrorNamingTheFileAndRow) {
  ScopedTempDir dir;
  const std::string good = dir.Sub("good.png");
  WriteInBands(good, 64, 64, 8, RandomSamples(64, 64, 255, 1), 64);
  const std::vector<char> bytes = ReadFileBytes(good);
  const std::string path = dir.Sub("cut.png");
  WriteFileBytes(path, std::string(bytes.begin(), bytes.begin() + bytes.size() / 2));
  StatusOr<std::unique_ptr<RasterReader>> reader = OpenRaster(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();  // the header is intact
  std::vector<std::uint16_t> rows(64 * 64 * 3);
  const Status read = (*reader)->ReadRows(64, rows.data());
  EXPECT_EQ(read.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(read.message().find(path + ": corrupt PNG image (row "), std::string::npos)
      << read.message();
  // Past the last row.
  StatusOr<std::unique_ptr<RasterReader>> again = OpenRaster(good);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->ReadRows(65, rows.data()).code(), StatusCode::kFailedPrecondition);
}

TEST(RasterTest, TruncatedJpegIsCorrupt) {
  ScopedTempDir dir;
  const std::string good = dir.Sub("good.jpg");
  const std::vector<std::uint16_t> samples = RandomSamples(64, 64, 255, 2);
  std::vector<std::uint8_t> rgb(samples.begin(), samples.end());
  ASSERT_NE(stbi_write_jpg(good.c_str(), 64, 64, 3, rgb.data(), 90), 0);
  const std::vector<char> bytes = ReadFileBytes(good);
  const std::string path = dir.Sub("cut.jpg");
  WriteFileBytes(path, std::string(bytes.begin(), bytes.begin() + bytes.size() / 2));
  StatusOr<std::unique_ptr<RasterReader>> reader = OpenRaster(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<std::uint16_t> rows(64 * 64 * 3);
  const Status read = (*reader)->ReadRows(64, rows.data());
  EXPECT_EQ(read.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(read.message().find(path + ": corrupt JPEG image (row "), std::string::npos)
      << read.message();
}

// An Adam7-interlaced 8-bit RGB PNG, written with libpng directly.
void WriteInterlacedPng(const std::string& path, int w, int h) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, file);
  png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::vector<png_byte> pixels(static_cast<std::size_t>(w) * h * 3, 128);
  std::vector<png_bytep> rows(h);
  for (int y = 0; y < h; ++y) rows[y] = pixels.data() + static_cast<std::size_t>(y) * w * 3;
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(file);
}

TEST(RasterTest, WhatCannotBeReadInBandsIsNamed) {
  ScopedTempDir dir;
  const std::string interlaced = dir.Sub("interlaced.png");
  WriteInterlacedPng(interlaced, 16, 16);
  EXPECT_EQ(OpenRaster(interlaced).status().message(),
            interlaced +
                ": unsupported PNG image (interlaced: it cannot be read in bands; save it "
                "without interlacing)");

  const std::string tiled = dir.Sub("tiled.tif");
  TIFF* tif = TIFFOpen(tiled.c_str(), "w");
  ASSERT_NE(tif, nullptr);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 32);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 32);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_TILEWIDTH, 16);
  TIFFSetField(tif, TIFFTAG_TILELENGTH, 16);
  std::vector<std::uint8_t> tile(16 * 16 * 3, 7);
  for (int t = 0; t < 4; ++t) TIFFWriteEncodedTile(tif, t, tile.data(), tile.size());
  TIFFClose(tif);
  EXPECT_EQ(OpenRaster(tiled).status().message(),
            tiled + ": unsupported TIFF image (tiled; save it in strips)");
}

TEST(RasterTest, OpeningRefusesWhatIsNotAnImage) {
  ScopedTempDir dir;
  const std::string missing = dir.Sub("missing.png");
  EXPECT_EQ(OpenRaster(missing).status().code(), StatusCode::kNotFound);
  const std::string text = dir.Sub("notes.tif");
  WriteFileBytes(text, "hello");
  EXPECT_EQ(OpenRaster(text).status().message(), text + ": not a PNG, TIFF or JPEG image");
  const std::string empty = dir.Sub("empty.png");
  WriteFileBytes(empty, "");
  EXPECT_EQ(OpenRaster(empty).status().message(),
            empty + ": not a PNG, TIFF or JPEG image (empty file)");
  EXPECT_EQ(OpenRaster(dir.path()).status().code(), StatusCode::kInvalidArgument);
}

TEST(RasterTest, AWriterLeavesNothingUnlessFinished) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("out.png");
  {
    StatusOr<std::unique_ptr<RasterWriter>> writer = CreateRaster(path, 8, 4, 8);
    ASSERT_TRUE(writer.ok());
    EXPECT_TRUE(std::filesystem::exists(path + ".part"));
    const std::vector<std::uint16_t> row(8 * 3, 9);
    ASSERT_TRUE((*writer)->WriteRows(1, row.data()).ok());
    const Status early = (*writer)->Finish();
    EXPECT_EQ(early.code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(early.message(), path + ": 1 of 4 rows written");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".part"));
}

TEST(RasterTest, CreateRefusesBadRequests) {
  ScopedTempDir dir;
  EXPECT_EQ(CreateRaster(dir.Sub("out.jpg"), 8, 8, 8).status().message(),
            dir.Sub("out.jpg") + ": the extension must be .png, .tif or .tiff");
  EXPECT_EQ(CreateRaster(dir.Sub("out.png"), 0, 8, 8).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateRaster(dir.Sub("out.png"), 8, 8, 12).status().message(),
            dir.Sub("out.png") + ": cannot write 12-bit samples (8 or 16)");
  EXPECT_EQ(CreateRaster(dir.Sub("no/such/dir/out.png"), 8, 8, 8).status().code(),
            StatusCode::kInternal);
}

}  // namespace
}  // namespace peaknas::data
