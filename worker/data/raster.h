// Images read and written a few rows at a time, so that an image of any size passes through
// a process that holds only a band of it (`peaknas-worker denoise`).
//
// Readers: PNG (libpng; 1- to 16-bit, grey, palette or RGB, alpha dropped), TIFF (libtiff;
// 8- or 16-bit unsigned grey or RGB, interleaved, in strips, any compression libtiff reads)
// and JPEG (libjpeg; 8-bit grey or colour). The format is recognized by the file's signature.
// Writers: PNG and TIFF (by the extension: .png, .tif, .tiff), RGB, 8 or 16 bits.
//
// Samples are interleaved RGB, row-major, one std::uint16_t each at the raster's depth: 0..255
// for 8-bit rasters, 0..65535 for 16-bit ones (RasterInfo::max_value). Grey is replicated to
// the three channels; sub-byte depths are scaled to 8 bits.
//
// A writer writes to PATH.part and renames it to PATH in Finish, so an interrupted or failed
// run leaves no truncated image behind; a writer destroyed before Finish removes the part file.
//
// Thread-safety: a reader or writer is used by one thread at a time; different ones are
// independent (libpng, libtiff and libjpeg keep their errors per handle here).
#ifndef PEAKNAS_WORKER_DATA_RASTER_H_
#define PEAKNAS_WORKER_DATA_RASTER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace peaknas::data {

enum class RasterFormat { kPng, kTiff, kJpeg };

// "PNG", "TIFF", "JPEG".
const char* RasterFormatName(RasterFormat format);

struct RasterInfo {
  RasterFormat format = RasterFormat::kPng;
  int width = 0;
  int height = 0;
  int bits = 8;  // 8 or 16: the depth of the samples a reader gives or a writer takes
  int max_value() const { return bits == 16 ? 65535 : 255; }
};

class RasterReader {
 public:
  virtual ~RasterReader() = default;
  const RasterInfo& info() const { return info_; }
  // Memory the decoder holds besides the caller's rows (row buffers, a TIFF strip, libjpeg's
  // whole coefficient image for a progressive JPEG), for the caller's budget.
  std::int64_t decoder_bytes() const { return decoder_bytes_; }
  // The next `rows` rows, width * 3 samples each, into out[rows * width * 3]. INVALID_ARGUMENT
  // "PATH: corrupt FORMAT image (row R: REASON)" when the data is damaged or ends early, and
  // FAILED_PRECONDITION when asked for rows past the last.
  virtual Status ReadRows(int rows, std::uint16_t* out) = 0;

 protected:
  RasterInfo info_;
  std::int64_t decoder_bytes_ = 0;
};

class RasterWriter {
 public:
  virtual ~RasterWriter() = default;
  const RasterInfo& info() const { return info_; }
  std::int64_t encoder_bytes() const { return encoder_bytes_; }
  // The next `rows` rows (samples at info().bits, as a reader gives them).
  virtual Status WriteRows(int rows, const std::uint16_t* rgb) = 0;
  // After the last row: completes the file and renames PATH.part to PATH. FAILED_PRECONDITION
  // when rows are missing.
  virtual Status Finish() = 0;

 protected:
  RasterInfo info_;
  std::int64_t encoder_bytes_ = 0;
};

// NOT_FOUND when the file is missing; INVALID_ARGUMENT "PATH: not a PNG, TIFF or JPEG image"
// for other signatures, and naming what is unsupported (an interlaced PNG, a tiled, planar,
// floating-point or 32-bit TIFF, a CMYK JPEG) or damaged in the header.
StatusOr<std::unique_ptr<RasterReader>> OpenRaster(const std::string& path);

// A writer of a width x height RGB image of `bits` (8 or 16) at `path`. INVALID_ARGUMENT for an
// extension other than .png, .tif or .tiff (any case), a size < 1 or another depth; INTERNAL
// when PATH.part cannot be created.
StatusOr<std::unique_ptr<RasterWriter>> CreateRaster(const std::string& path, int width, int height,
                                                     int bits);

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_RASTER_H_
