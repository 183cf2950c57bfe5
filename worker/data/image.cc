#include "worker/data/image.h"

// Debian's libstb.so contains the stb_image and stb_image_write implementations: do not
// define STB_IMAGE_IMPLEMENTATION / STB_IMAGE_WRITE_IMPLEMENTATION here.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <system_error>

namespace peaknas::data {
namespace {

enum class Format { kPng, kJpeg, kOther };

const char* FormatName(Format f) { return f == Format::kPng ? "PNG" : "JPEG"; }

Format Sniff(const std::uint8_t* bytes, std::size_t size) {
  static constexpr std::array<std::uint8_t, 8> kPng = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= kPng.size() && std::memcmp(bytes, kPng.data(), kPng.size()) == 0) {
    return Format::kPng;
  }
  if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) return Format::kJpeg;
  return Format::kOther;
}

std::string StbReason() {
  const char* reason = stbi_failure_reason();
  return reason != nullptr ? reason : "unknown error";
}

// Reads at most `limit` bytes of the file (all of it when limit is 0).
StatusOr<std::vector<std::uint8_t>> ReadBytes(const std::string& path, std::size_t limit) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return Status::NotFound(path + ": no such file");
  if (std::filesystem::is_directory(status)) {
    return Status::InvalidArgument(path + ": is a directory, not an image file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open for reading");
  std::vector<std::uint8_t> bytes;
  if (limit == 0) {
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) return Status::Internal(path + ": cannot determine file size");
    in.seekg(0, std::ios::beg);
    bytes.resize(static_cast<std::size_t>(size));
  } else {
    bytes.resize(limit);
  }
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return Status::Internal(path + ": read error");
  return bytes;
}

Status NotAnImage(const std::string& path, const std::string& reason) {
  return Status::InvalidArgument(path + ": not a PNG or JPEG image (stbi: " + reason + ")");
}

std::uint32_t BigEndian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// Walks the PNG's chunks (length, type, data, CRC) and refuses one whose declared length runs
// past the end of the file. stb_image grows its compressed-data buffer to a chunk's declared
// length before reading it, so a few bytes declaring a 1.5 GB IDAT would otherwise allocate
// gigabytes before failing.
Status CheckPngChunks(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::size_t at = 8;  // after the signature
  while (bytes.size() - at >= 8) {
    const std::uint32_t length = BigEndian32(bytes.data() + at);
    const std::string type(reinterpret_cast<const char*>(bytes.data() + at + 4), 4);
    const std::size_t left = bytes.size() - at - 8;
    if (length > left || left - length < 4) {
      return Status::InvalidArgument(path + ": corrupt PNG image (chunk " + type + " at byte " +
                                     std::to_string(at) + " declares " + std::to_string(length) +
                                     " bytes; the file has " + std::to_string(left) + " left)");
    }
    if (type == "IEND") break;
    at += 12 + std::size_t{length};
  }
  return Status::Ok();
}

// The decoded RGB8 image is width * height * 3 bytes: refuse headers beyond kMaxImagePixels
// before stb allocates for them (a JPEG's header alone can declare 65535 x 65535).
Status CheckPixelCount(const std::string& path, const char* format, int w, int h) {
  if (static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h) > kMaxImagePixels) {
    return Status::InvalidArgument(path + ": " + format + " image of " + std::to_string(w) + "x" +
                                   std::to_string(h) + " pixels is over the limit of " +
                                   std::to_string(kMaxImagePixels) + " pixels");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Image> ReadImage(const std::string& path) {
  PEAKNAS_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, ReadBytes(path, 0));
  const Format format = Sniff(bytes.data(), bytes.size());
  if (format == Format::kOther) {
    return NotAnImage(path, bytes.empty() ? "empty file" : "unknown signature");
  }
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return Status::InvalidArgument(path + ": file too large for stb_image");
  }
  if (format == Format::kPng) PEAKNAS_RETURN_IF_ERROR(CheckPngChunks(path, bytes));
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels) != 0) {
    PEAKNAS_RETURN_IF_ERROR(CheckPixelCount(path, FormatName(format), w, h));
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 3),
      stbi_image_free);
  if (pixels == nullptr) {
    return Status::InvalidArgument(path + ": corrupt " + FormatName(format) +
                                   " image (stbi: " + StbReason() + ")");
  }
  Image image;
  image.width = w;
  image.height = h;
  image.rgb.assign(pixels.get(), pixels.get() + static_cast<std::size_t>(w) * h * 3);
  return image;
}

StatusOr<ImageSize> ReadImageSize(const std::string& path) {
  // PNG's IHDR sits in the first 33 bytes; JPEG's SOF can follow large EXIF blocks, so read
  // the whole file for JPEG (still no pixel decoding).
  PEAKNAS_ASSIGN_OR_RETURN(std::vector<std::uint8_t> head, ReadBytes(path, 64));
  const Format format = Sniff(head.data(), head.size());
  if (format == Format::kOther) {
    return NotAnImage(path, head.empty() ? "empty file" : "unknown signature");
  }
  std::vector<std::uint8_t> bytes;
  if (format == Format::kJpeg) {
    PEAKNAS_ASSIGN_OR_RETURN(bytes, ReadBytes(path, 0));
  } else {
    bytes = std::move(head);
  }
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels) == 0) {
    return Status::InvalidArgument(path + ": corrupt " + FormatName(format) +
                                   " image (stbi: " + StbReason() + ")");
  }
  return ImageSize{w, h};
}

Status WritePng(const std::string& path, const Image& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<std::size_t>(image.width) * image.height * 3) {
    return Status::InvalidArgument(
        path + ": cannot write an empty or inconsistent image (" + std::to_string(image.width) +
        "x" + std::to_string(image.height) + ", " + std::to_string(image.rgb.size()) + " bytes)");
  }
  if (stbi_write_png(path.c_str(), image.width, image.height, 3, image.rgb.data(),
                     image.width * 3) == 0) {
    return Status::Internal(path + ": cannot write PNG");
  }
  return Status::Ok();
}

ImageF ToFloat(const Image& image) {
  ImageF out(image.width, image.height);
  constexpr float kScale = 1.0f / 255.0f;
  for (std::size_t i = 0; i < image.rgb.size(); ++i) out.rgb[i] = image.rgb[i] * kScale;
  return out;
}

Image ToUint8(const ImageF& image) {
  Image out(image.width, image.height);
  for (std::size_t i = 0; i < image.rgb.size(); ++i) {
    const float x = image.rgb[i];
    const float v = x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f;  // NaN -> 0
    out.rgb[i] = static_cast<std::uint8_t>(std::lround(v * 255.0f));
  }
  return out;
}

Image Crop(const Image& image, int x, int y, int w, int h) {
  assert(x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= image.width && y + h <= image.height);
  Image out(w, h);
  for (int row = 0; row < h; ++row) {
    const std::uint8_t* src =
        image.rgb.data() + (static_cast<std::size_t>(y + row) * image.width + x) * 3;
    std::copy(src, src + static_cast<std::size_t>(w) * 3,
              out.rgb.data() + static_cast<std::size_t>(row) * w * 3);
  }
  return out;
}

}  // namespace peaknas::data
