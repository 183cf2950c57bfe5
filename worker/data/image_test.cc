#include "worker/data/image.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>

#include <cstdint>
#include <string>

#include "worker/data/random.h"
#include "worker/data/test_util.h"

namespace peaknas::data {
namespace {

using testing::ReadFileBytes;
using testing::ScopedTempDir;
using testing::WriteFileBytes;

Image RandomImage(int w, int h, std::uint64_t seed) {
  Image image(w, h);
  Rng rng(seed);
  for (auto& v : image.rgb) v = static_cast<std::uint8_t>(rng.UniformInt(256));
  return image;
}

TEST(ImageTest, PngRoundTripIsExact) {
  ScopedTempDir dir;
  const Image image = RandomImage(37, 23, 1);
  const std::string path = dir.Sub("a.png");
  ASSERT_TRUE(WritePng(path, image).ok());
  StatusOr<Image> read = ReadImage(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->width, 37);
  EXPECT_EQ(read->height, 23);
  EXPECT_EQ(read->rgb, image.rgb);
  StatusOr<ImageSize> size = ReadImageSize(path);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, (ImageSize{37, 23}));
}

TEST(ImageTest, PngBytesAreDeterministic) {
  ScopedTempDir dir;
  const Image image = RandomImage(16, 16, 2);
  ASSERT_TRUE(WritePng(dir.Sub("a.png"), image).ok());
  ASSERT_TRUE(WritePng(dir.Sub("b.png"), image).ok());
  EXPECT_EQ(ReadFileBytes(dir.Sub("a.png")), ReadFileBytes(dir.Sub("b.png")));
}

TEST(ImageTest, ReadsJpeg) {
  ScopedTempDir dir;
  Image image(32, 16);
  for (std::size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = 100;
  const std::string path = dir.Sub("photo.jpg");
  ASSERT_NE(stbi_write_jpg(path.c_str(), 32, 16, 3, image.rgb.data(), 95), 0);
  StatusOr<Image> read = ReadImage(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->width, 32);
  EXPECT_EQ(read->height, 16);
  for (std::uint8_t v : read->rgb) EXPECT_NEAR(v, 100, 3);
  StatusOr<ImageSize> size = ReadImageSize(path);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, (ImageSize{32, 16}));
}

TEST(ImageTest, MissingFileIsNotFoundNamingIt) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("missing.png");
  StatusOr<Image> read = ReadImage(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find(path), std::string::npos) << read.status().message();
}

TEST(ImageTest, TruncatedPngIsAnErrorNamingTheFile) {
  ScopedTempDir dir;
  const std::string good = dir.Sub("good.png");
  ASSERT_TRUE(WritePng(good, RandomImage(64, 64, 3)).ok());
  std::vector<char> bytes = ReadFileBytes(good);
  const std::string path = dir.Sub("corrupt.png");
  WriteFileBytes(path, std::string(bytes.begin(), bytes.begin() + bytes.size() / 2));
  StatusOr<Image> read = ReadImage(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(read.status().message().find(path + ": corrupt PNG image (chunk IDAT at byte "),
            std::string::npos)
      << read.status().message();
}

// Big-endian 32-bit fields, as PNG stores them.
std::string Be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// A PNG signature and IHDR for a w×h 8-bit RGB image (CRCs zero: stb does not check them).
std::string PngHeader(std::uint32_t w, std::uint32_t h) {
  return std::string("\x89PNG\r\n\x1a\n", 8) + Be32(13) + "IHDR" + Be32(w) + Be32(h) +
         std::string("\x08\x02\x00\x00\x00", 5) + Be32(0);
}

TEST(ImageTest, ChunkLongerThanTheFileIsRefusedBeforeDecoding) {
  // The fuzzer's find: a second IDAT declaring 1.5 GB made stb_image grow its buffer to 2 GiB
  // before noticing that the data is not there.
  ScopedTempDir dir;
  const std::string path = dir.Sub("bomb.png");
  WriteFileBytes(path, PngHeader(5, 4) + Be32(2) + "IDAT" + "xx" + Be32(0) + Be32(1560281088) +
                           "IDAT" + std::string(37, 'x'));
  StatusOr<Image> read = ReadImage(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(),
            path +
                ": corrupt PNG image (chunk IDAT at byte 47 declares 1560281088 bytes; the "
                "file has 37 left)");
}

TEST(ImageTest, ImagesOverThePixelLimitAreRefusedBeforeDecoding) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("huge.png");
  WriteFileBytes(path, PngHeader(16384, 16384) + Be32(0) + "IEND" + Be32(0));
  ASSERT_TRUE(ReadImageSize(path).ok());
  StatusOr<Image> read = ReadImage(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read.status().message(),
            path + ": PNG image of 16384x16384 pixels is over the limit of 134217728 pixels");
}

TEST(ImageTest, OtherFilesAreNotImages) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("notes.png");
  WriteFileBytes(path, "hello, not a picture");
  StatusOr<Image> read = ReadImage(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), path + ": not a PNG or JPEG image (stbi: unknown signature)");
  EXPECT_FALSE(ReadImageSize(path).ok());
  const std::string empty = dir.Sub("empty.png");
  WriteFileBytes(empty, "");
  EXPECT_EQ(ReadImage(empty).status().message(),
            empty + ": not a PNG or JPEG image (stbi: empty file)");
}

TEST(ImageTest, WritePngRejectsBadImagesAndPaths) {
  ScopedTempDir dir;
  Image bad(4, 4);
  bad.rgb.pop_back();
  EXPECT_EQ(WritePng(dir.Sub("bad.png"), bad).code(), StatusCode::kInvalidArgument);
  const Status status = WritePng(dir.Sub("no/such/dir/x.png"), RandomImage(4, 4, 0));
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_NE(status.message().find("no/such/dir/x.png: cannot write PNG"), std::string::npos);
}

TEST(ImageTest, FloatConversionAndCrop) {
  const Image image = RandomImage(10, 7, 4);
  EXPECT_EQ(ToUint8(ToFloat(image)).rgb, image.rgb);
  ImageF f(1, 1);
  f.rgb = {-0.5f, 2.0f, 0.5f};
  EXPECT_EQ(ToUint8(f).rgb, (std::vector<std::uint8_t>{0, 255, 128}));
  const Image crop = Crop(image, 3, 2, 4, 5);
  ASSERT_EQ(crop.width, 4);
  ASSERT_EQ(crop.height, 5);
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 4; ++x) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(crop.rgb[(y * 4 + x) * 3 + c], image.rgb[((y + 2) * 10 + x + 3) * 3 + c]);
      }
    }
  }
}

}  // namespace
}  // namespace peaknas::data
