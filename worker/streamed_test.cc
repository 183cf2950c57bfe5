// The streamed pipeline against ForwardTiled on the padded image (which tiled_test.cc holds to
// the whole-image output) for every skip, upsample and downsample kind; its errors from either
// end and from the network; and a real PNG through real codecs.
#include "worker/streamed.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/temp_dir.h"
#include "search/tiling.h"
#include "worker/measure.h"
#include "worker/test_nets.h"
#include "worker/unet.h"

namespace peaknas::worker {
namespace {

using search::DownsampleKind;
using search::SkipKind;
using search::UpsampleKind;

// An image in memory, read in rows; fails at row `fail_at` when set.
class MemoryReader : public data::RasterReader {
 public:
  MemoryReader(int w, int h, int bits, std::vector<std::uint16_t> samples, int fail_at = -1)
      : samples_(std::move(samples)), fail_at_(fail_at) {
    info_ = {data::RasterFormat::kPng, w, h, bits};
  }
  Status ReadRows(int rows, std::uint16_t* out) override {
    const std::size_t row = static_cast<std::size_t>(info_.width) * 3;
    for (int i = 0; i < rows; ++i, ++next_, out += row) {
      if (next_ == fail_at_) return Status::InvalidArgument("in.png: corrupt PNG image (row 5)");
      std::copy_n(samples_.begin() + static_cast<std::ptrdiff_t>(next_ * row), row, out);
    }
    return Status::Ok();
  }

 private:
  std::vector<std::uint16_t> samples_;
  int fail_at_;
  int next_ = 0;
};

class MemoryWriter : public data::RasterWriter {
 public:
  MemoryWriter(int w, int h, int bits, int fail_at = -1) : fail_at_(fail_at) {
    info_ = {data::RasterFormat::kPng, w, h, bits};
  }
  Status WriteRows(int rows, const std::uint16_t* rgb) override {
    const std::size_t row = static_cast<std::size_t>(info_.width) * 3;
    for (int i = 0; i < rows; ++i, ++written_, rgb += row) {
      if (written_ == fail_at_) return Status::Internal("out.png: cannot write PNG row 3");
      samples.insert(samples.end(), rgb, rgb + row);
    }
    return Status::Ok();
  }
  Status Finish() override {
    finished = true;
    return Status::Ok();
  }
  std::vector<std::uint16_t> samples;
  bool finished = false;

 private:
  int fail_at_;
  int written_ = 0;
};

std::vector<std::uint16_t> RandomSamples(int w, int h, int max_value) {
  torch::manual_seed(11);
  const torch::Tensor t = torch::randint(0, max_value + 1, {h * w * 3}, torch::kInt32);
  std::vector<std::uint16_t> out(static_cast<std::size_t>(h) * w * 3);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint16_t>(t[i].item<int>());
  return out;
}

// ForwardTiled's output on the image padded by repetition to the grid, cropped and quantized.
std::vector<std::uint16_t> Reference(UNet& net, const std::vector<std::uint16_t>& samples, int w,
                                     int h, int max_value, const TiledOptions& options) {
  const int m = options.multiple;
  const int ph = (h + m - 1) / m * m, pw = (w + m - 1) / m * m;
  torch::Tensor image = torch::empty({1, 3, ph, pw});
  auto a = image.accessor<float, 4>();
  const float scale = 1.0f / static_cast<float>(max_value);
  for (int y = 0; y < ph; ++y) {
    for (int x = 0; x < pw; ++x) {
      for (int c = 0; c < 3; ++c) {
        a[0][c][y][x] =
            samples[(static_cast<std::size_t>(std::min(y, h - 1)) * w + std::min(x, w - 1)) * 3 +
                    c] *
            scale;
      }
    }
  }
  torch::NoGradGuard no_grad;
  const auto out =
      ForwardTiled([&](const torch::Tensor& x) { return net->forward(x); }, image, options);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  auto o = out->accessor<float, 4>();
  std::vector<std::uint16_t> result(static_cast<std::size_t>(h) * w * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        const float v = std::clamp(o[0][c][y][x], 0.0f, 1.0f);
        result[(static_cast<std::size_t>(y) * w + x) * 3 + c] =
            static_cast<std::uint16_t>(std::nearbyint(v * static_cast<float>(max_value)));
      }
    }
  }
  return result;
}

// In both layouts: a channels-last window is assembled from the rows' interleaved samples, and
// the output is read in whichever layout the network answers in (channels-last for most kinds;
// contiguous after a transposed convolution).
TEST(Streamed, EqualsForwardTiledOnThePaddedImageForEveryKindAndLayout) {
  // 16-bit samples, a size off the grid (padding on both edges), tiles that do not divide it.
  const int w = 45, h = 38, max_value = 65535;
  const std::vector<std::uint16_t> samples = RandomSamples(w, h, max_value);
  for (const torch::MemoryFormat layout : testing::kLayouts) {
    for (const search::Architecture& arch : testing::EveryKindThreeLevelNets()) {
      SCOPED_TRACE(testing::KindsLabel(arch) + " " + LayoutName(layout));
      torch::manual_seed(5);
      UNet net(arch);
      SetWeightLayout(net, layout);
      const TiledOptions options{.tile = 16,
                                 .overlap = search::SeamFreeOverlap(arch),
                                 .multiple = search::SpatialMultiple(arch),
                                 .layout = layout};
      MemoryReader reader(w, h, 16, samples);
      MemoryWriter writer(w, h, 16);
      int calls = 0, last_total = 0, in_layout = 0;
      torch::NoGradGuard no_grad;
      const auto stats = DenoiseStream(
          [&](const torch::Tensor& x) {
            in_layout += x.is_contiguous(layout);
            return net->forward(x);
          },
          reader, writer, options, torch::kCPU,
          [&](int done, int total) {
            calls = done;
            last_total = total;
          });
      ASSERT_TRUE(stats.ok()) << stats.status().ToString();
      EXPECT_TRUE(writer.finished);
      EXPECT_EQ(stats->tiles, 9);       // 48 x 48 padded, tiles of 16
      EXPECT_EQ(stats->extra_rows, 0);  // StreamBufferBytes's count of rows held
      EXPECT_EQ(calls, 9);
      EXPECT_EQ(last_total, 9);
      EXPECT_EQ(in_layout, 9);
      EXPECT_EQ(writer.samples, Reference(net, samples, w, h, max_value, options));
    }
  }
}

TEST(Streamed, EightBitInSixteenBitOut) {
  // The same output at two depths: the 16-bit samples, brought to 8 bits, are the 8-bit ones
  // (within the second rounding), and they keep finer steps than 8 bits have.
  const int w = 20, h = 12;
  const std::vector<std::uint16_t> samples = RandomSamples(w, h, 255);
  torch::manual_seed(5);
  UNet net(
      testing::ThreeLevelNet(SkipKind::kAdd, UpsampleKind::kBilinear, DownsampleKind::kMaxPool));
  const TiledOptions options{.tile = 8, .overlap = 8, .multiple = 4};
  torch::NoGradGuard no_grad;
  MemoryReader reader8(w, h, 8, samples), reader16(w, h, 8, samples);
  MemoryWriter writer8(w, h, 8), writer16(w, h, 16);
  const auto forward = [&](const torch::Tensor& x) { return net->forward(x); };
  ASSERT_TRUE(DenoiseStream(forward, reader8, writer8, options, torch::kCPU).ok());
  ASSERT_TRUE(DenoiseStream(forward, reader16, writer16, options, torch::kCPU).ok());
  ASSERT_EQ(writer8.samples.size(), samples.size());
  ASSERT_EQ(writer16.samples.size(), samples.size());
  int finer = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const double as8 = writer16.samples[i] * 255.0 / 65535.0;
    ASSERT_LE(std::abs(as8 - writer8.samples[i]), 0.5 + 1e-3) << i;
    finer += writer16.samples[i] % 257 != 0;
  }
  EXPECT_GT(finer, static_cast<int>(samples.size()) / 2);
}

// Streams a 16-wide, `h`-high 8-bit image through a three-level net, the reader failing at row
// `read_fail_at` or the writer at row `write_fail_at` (-1: never); expects the stream to fail
// with `message` and to leave the output unfinished.
void ExpectStreamFails(int h, int read_fail_at, int write_fail_at, const std::string& message) {
  const int w = 16;
  UNet net(
      testing::ThreeLevelNet(SkipKind::kAdd, UpsampleKind::kBilinear, DownsampleKind::kMaxPool));
  MemoryReader reader(w, h, 8, RandomSamples(w, h, 255), read_fail_at);
  MemoryWriter writer(w, h, 8, write_fail_at);
  torch::NoGradGuard no_grad;
  const auto stats = DenoiseStream([&](const torch::Tensor& x) { return net->forward(x); }, reader,
                                   writer, {.tile = 4, .overlap = 4, .multiple = 4}, torch::kCPU);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().message(), message);
  EXPECT_FALSE(writer.finished);
}

TEST(Streamed, ReportsTheReadersErrorAndStops) {
  ExpectStreamFails(/*h=*/24, /*read_fail_at=*/5, /*write_fail_at=*/-1,
                    "in.png: corrupt PNG image (row 5)");
}

TEST(Streamed, ReportsTheWritersErrorAndStops) {
  ExpectStreamFails(/*h=*/64, /*read_fail_at=*/-1, /*write_fail_at=*/3,
                    "out.png: cannot write PNG row 3");
}

TEST(Streamed, ANetworkThatThrowsIsAnInternalError) {
  const int w = 16, h = 16;
  MemoryReader reader(w, h, 8, RandomSamples(w, h, 255));
  MemoryWriter writer(w, h, 8);
  std::atomic<int> calls = 0;
  const auto stats = DenoiseStream(
      [&](const torch::Tensor&) -> torch::Tensor {
        if (++calls == 2) throw std::runtime_error("out of memory");
        return torch::zeros({1, 3, 8, 8});
      },
      reader, writer, {.tile = 8, .overlap = 0, .multiple = 4}, torch::kCPU);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kInternal);
  EXPECT_EQ(stats.status().message(), "inference failed: out of memory");
  EXPECT_FALSE(writer.finished);
}

TEST(Streamed, ANetworkOfTheWrongShapeIsRefused) {
  MemoryReader reader(16, 16, 8, RandomSamples(16, 16, 255));
  MemoryWriter writer(16, 16, 8);
  const auto stats = DenoiseStream(
      [&](const torch::Tensor&) {
        return torch::zeros({1, 3, 4, 4});
      },
      reader, writer, {.tile = 8, .overlap = 0, .multiple = 4}, torch::kCPU);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().message(),
            "inference failed: the network gave [1, 3, 4, 4] for a window of [1, 3, 8, 8]");
}

TEST(Streamed, ARealPngThroughRealCodecs) {
  base::TempDir dir("peaknas-streamed");
  ASSERT_TRUE(dir.ok());
  const int w = 33, h = 21;
  const std::vector<std::uint16_t> samples = RandomSamples(w, h, 255);
  {
    auto writer = data::CreateRaster(dir.Sub("in.png"), w, h, 8);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteRows(h, samples.data()).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
  }
  const search::Architecture arch = testing::ThreeLevelNet(
      SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided);
  torch::manual_seed(5);
  UNet net(arch);
  const TiledOptions options{.tile = 8, .overlap = search::SeamFreeOverlap(arch), .multiple = 4};
  auto reader = data::OpenRaster(dir.Sub("in.png"));
  ASSERT_TRUE(reader.ok());
  auto writer = data::CreateRaster(dir.Sub("out.tif"), w, h, 8);
  ASSERT_TRUE(writer.ok());
  torch::NoGradGuard no_grad;
  const auto stats = DenoiseStream([&](const torch::Tensor& x) { return net->forward(x); },
                                   **reader, **writer, options, torch::kCPU);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  auto out = data::OpenRaster(dir.Sub("out.tif"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  std::vector<std::uint16_t> got(samples.size());
  ASSERT_TRUE((*out)->ReadRows(h, got.data()).ok());
  EXPECT_EQ(got, Reference(net, samples, w, h, 255, options));
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("out.tif.part")));
}

TEST(Streamed, BufferBytesGrowWithTheTileAndTheWidthOnly) {
  const TiledOptions a{.tile = 64, .overlap = 16, .multiple = 4};
  const TiledOptions b{.tile = 128, .overlap = 16, .multiple = 4};
  // input (64 + 32) + 64 + 1 rows, output 64 + 64 + 1 rows, 6 bytes a pixel.
  EXPECT_EQ(StreamBufferBytes(1000, a, true), (161 + 129) * 1000 * 6);
  EXPECT_GT(StreamBufferBytes(1000, b, true), StreamBufferBytes(1000, a, true));
  EXPECT_EQ(StreamBufferBytes(2000, a, true), 2 * StreamBufferBytes(1000, a, true));
  EXPECT_EQ(StreamBufferBytes(1000, a, false) - StreamBufferBytes(1000, a, true), 3 * 96 * 96 * 4);
}

}  // namespace
}  // namespace peaknas::worker
