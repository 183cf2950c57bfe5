// In-memory RGB images and their PNG/JPEG files.
//
// Image holds interleaved 8-bit RGB (row-major, R G B per pixel), the form PNG files and the
// SIDD blocks take; ImageF holds the same layout in float, nominally in [0, 1] (sRGB or linear
// RAW, as the caller says). Decoding goes through stb_image (Debian's libstb, which already
// contains the implementation), encoding through stb_image_write. Only PNG and JPEG files are
// accepted, recognized by their signature bytes, whatever their extension.
//
// Thread-safety: pure functions over values; stb keeps its failure reason thread-local, so
// images may be read and written from several threads at once.
#ifndef PEAKNAS_WORKER_DATA_IMAGE_H_
#define PEAKNAS_WORKER_DATA_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace peaknas::data {

// Interleaved RGB of samples T: the sample (x, y, c) is rgb[(y * width + x) * 3 + c].
template <typename T>
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<T> rgb;

  RgbImage() = default;
  // A black image of the given size.
  RgbImage(int w, int h) : width(w), height(h), rgb(static_cast<std::size_t>(w) * h * 3, T{0}) {}
  std::size_t num_pixels() const { return static_cast<std::size_t>(width) * height; }
};

using Image = RgbImage<std::uint8_t>;  // 8 bits per sample, as PNG files and SIDD blocks
using ImageF = RgbImage<float>;        // nominally in [0, 1]

struct ImageSize {
  int width = 0;
  int height = 0;
  friend bool operator==(const ImageSize&, const ImageSize&) = default;
};

// The most pixels ReadImage decodes (2^27, 134 megapixels: 402 MB of RGB8).
inline constexpr std::uint64_t kMaxImagePixels = std::uint64_t{1} << 27;

// Decodes a PNG or JPEG file to RGB8 (grey and alpha are converted; 16-bit PNGs are reduced
// to 8 bits). NOT_FOUND "PATH: no such file" when missing; INVALID_ARGUMENT
// "PATH: not a PNG or JPEG image (stbi: REASON)" for any other signature,
// "PATH: corrupt PNG image (stbi: REASON)" (or JPEG) when the signature is right but decoding
// fails (truncated or damaged data, or a PNG chunk declaring more bytes than the file has),
// and "PATH: ... over the limit of kMaxImagePixels pixels" before decoding a larger image.
StatusOr<Image> ReadImage(const std::string& path);

// Width and height from the file's header only (cheap: no pixel decoding). Errors as
// ReadImage's, for what the header reveals.
StatusOr<ImageSize> ReadImageSize(const std::string& path);

// Writes an 8-bit RGB PNG (stb_image_write, deterministic bytes for equal images).
// INVALID_ARGUMENT for an empty or inconsistent image; INTERNAL "PATH: cannot write PNG" when
// the file cannot be created or written.
Status WritePng(const std::string& path, const Image& image);

// sample / 255.
ImageF ToFloat(const Image& image);
// Clamps to [0, 1] (NaN to 0), scales by 255 and rounds to nearest.
Image ToUint8(const ImageF& image);

// The w×h rectangle at (x, y); the rectangle must lie inside the image (asserted).
Image Crop(const Image& image, int x, int y, int w, int h);

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_IMAGE_H_
