#include "worker/data/raster.h"

// libpng and libjpeg report errors by longjmp: every call that may fail goes through a small
// function below whose frame holds nothing with a destructor, so the jump skips no C++ cleanup.
#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace peaknas::data {
namespace {

constexpr int kPngCompressionLevel = 3;  // zlib: most of level 6's size at twice its speed

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Where a library's last error message goes (per reader or writer).
struct ErrorText {
  char text[256] = "";
  void Set(const char* message) { std::snprintf(text, sizeof text, "%s", message); }
};

Status Corrupt(const std::string& path, RasterFormat format, const std::string& what) {
  return Status::InvalidArgument(path + ": corrupt " + RasterFormatName(format) + " image (" +
                                 what + ")");
}

Status Unsupported(const std::string& path, RasterFormat format, const std::string& what) {
  return Status::InvalidArgument(path + ": unsupported " + RasterFormatName(format) + " image (" +
                                 what + ")");
}

Status CheckRows(const std::string& path, int next_row, int rows, int height) {
  if (rows < 0 || rows > height - next_row) {
    return Status::FailedPrecondition(path + ": asked for rows " + std::to_string(next_row) + ".." +
                                      std::to_string(next_row + rows - 1) + " of " +
                                      std::to_string(height));
  }
  return Status::Ok();
}

// A row of samples as the file stores them: bytes for 8 bits, host-order 16-bit words (the
// codecs swap them where the format wants) for 16.
void PackRow(const std::uint16_t* rgb, std::size_t samples, int bits, std::uint8_t* row) {
  if (bits == 16) {
    std::memcpy(row, rgb, samples * 2);
  } else {
    std::copy(rgb, rgb + samples, row);
  }
}

Status CheckAllRowsWritten(const std::string& path, int written, int height) {
  if (written == height) return Status::Ok();
  return Status::FailedPrecondition(path + ": " + std::to_string(written) + " of " +
                                    std::to_string(height) + " rows written");
}

// --- PNG -------------------------------------------------------------------------------------

void PngError(png_structp png, png_const_charp message) {
  static_cast<ErrorText*>(png_get_error_ptr(png))->Set(message);
  png_longjmp(png, 1);
}
void PngWarning(png_structp, png_const_charp) {}

bool PngReadInfo(png_structp png, png_infop info, std::FILE* file) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_read_info(png, info);
  return true;
}

// Grey, palette and sub-byte samples become 8- or 16-bit RGB; alpha is dropped; 16-bit samples
// come in the host's byte order.
bool PngSetRgb(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if ((color & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if ((color & PNG_COLOR_MASK_ALPHA) != 0) png_set_strip_alpha(png);
  if ((color & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
  if (depth == 16) png_set_swap(png);
  png_read_update_info(png, info);
  return true;
}

bool PngReadRow(png_structp png, png_bytep row) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_row(png, row, nullptr);
  return true;
}

// What a PNG reader or writer holds: its file, libpng's structs and the error text libpng's
// callbacks fill, one row's bytes, and the next row's index.
struct PngStream {
  File file;
  ErrorText error;
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<png_byte> row;
  int next_row = 0;
};

class PngReader final : public RasterReader {
 public:
  static StatusOr<std::unique_ptr<RasterReader>> Open(const std::string& path, File file) {
    auto r = std::unique_ptr<PngReader>(new PngReader(path, std::move(file)));
    if (r->stream_.png == nullptr || r->stream_.info == nullptr) {
      return Status::Internal(path + ": cannot start libpng");
    }
    if (!PngReadInfo(r->stream_.png, r->stream_.info, r->stream_.file.get())) {
      return Corrupt(path, RasterFormat::kPng, r->stream_.error.text);
    }
    if (png_get_interlace_type(r->stream_.png, r->stream_.info) != PNG_INTERLACE_NONE) {
      return Unsupported(path, RasterFormat::kPng,
                         "interlaced: it cannot be read in bands; save it without interlacing");
    }
    const int depth = png_get_bit_depth(r->stream_.png, r->stream_.info);
    if (!PngSetRgb(r->stream_.png, r->stream_.info))
      return Corrupt(path, RasterFormat::kPng, r->stream_.error.text);
    r->info_.format = RasterFormat::kPng;
    r->info_.width = static_cast<int>(png_get_image_width(r->stream_.png, r->stream_.info));
    r->info_.height = static_cast<int>(png_get_image_height(r->stream_.png, r->stream_.info));
    r->info_.bits = depth == 16 ? 16 : 8;
    const std::size_t row_bytes = png_get_rowbytes(r->stream_.png, r->stream_.info);
    if (row_bytes != static_cast<std::size_t>(r->info_.width) * 3 * (r->info_.bits / 8)) {
      return Unsupported(path, RasterFormat::kPng, "its rows do not decode to RGB");
    }
    r->stream_.row.resize(row_bytes);
    // libpng keeps the previous row for unfiltering and zlib's 32 KiB window and state.
    r->decoder_bytes_ = static_cast<std::int64_t>(3 * row_bytes) + (64 << 10);
    return std::unique_ptr<RasterReader>(std::move(r));
  }

  ~PngReader() override { png_destroy_read_struct(&stream_.png, &stream_.info, nullptr); }

  Status ReadRows(int rows, std::uint16_t* out) override {
    PEAKNAS_RETURN_IF_ERROR(CheckRows(path_, stream_.next_row, rows, info_.height));
    const std::size_t samples = static_cast<std::size_t>(info_.width) * 3;
    for (int i = 0; i < rows; ++i, ++stream_.next_row, out += samples) {
      if (!PngReadRow(stream_.png, stream_.row.data())) {
        return Corrupt(path_, RasterFormat::kPng,
                       "row " + std::to_string(stream_.next_row) + ": " + stream_.error.text);
      }
      if (info_.bits == 16) {
        std::memcpy(out, stream_.row.data(), samples * 2);
      } else {
        std::copy(stream_.row.begin(), stream_.row.end(), out);
      }
    }
    return Status::Ok();
  }

 private:
  PngReader(std::string path, File file) : path_(std::move(path)) {
    stream_.file = std::move(file);
    stream_.png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &stream_.error, PngError, PngWarning);
    if (stream_.png != nullptr) stream_.info = png_create_info_struct(stream_.png);
  }

  std::string path_;
  PngStream stream_;
};

bool PngWriteInfo(png_structp png, png_infop info, std::FILE* file, int width, int height,
                  int bits) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), bits,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, kPngCompressionLevel);
  png_write_info(png, info);
  if (bits == 16) png_set_swap(png);
  return true;
}

bool PngWriteRow(png_structp png, png_const_bytep row) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_write_row(png, row);
  return true;
}

bool PngWriteEnd(png_structp png) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_write_end(png, nullptr);
  return true;
}

// The part file a writer fills, removed unless Finish renamed it.
class PartFile {
 public:
  explicit PartFile(std::string path) : path_(std::move(path)), part_(path_ + ".part") {}
  ~PartFile() {
    if (!renamed_) {
      std::error_code ec;
      std::filesystem::remove(part_, ec);
    }
  }
  const std::string& part() const { return part_; }
  Status Rename() {
    std::error_code ec;
    std::filesystem::rename(part_, path_, ec);
    if (ec) return Status::Internal(path_ + ": cannot rename " + part_ + ": " + ec.message());
    renamed_ = true;
    return Status::Ok();
  }

 private:
  std::string path_;
  std::string part_;
  bool renamed_ = false;
};

class PngWriter final : public RasterWriter {
 public:
  static StatusOr<std::unique_ptr<RasterWriter>> Create(const std::string& path,
                                                        const RasterInfo& info) {
    auto w = std::unique_ptr<PngWriter>(new PngWriter(path));
    w->stream_.file.reset(std::fopen(w->part_.part().c_str(), "wb"));
    if (w->stream_.file == nullptr) {
      return Status::Internal(w->part_.part() + ": cannot create: " + std::strerror(errno));
    }
    if (w->stream_.png == nullptr || w->stream_.info == nullptr) {
      return Status::Internal(path + ": cannot start libpng");
    }
    w->info_ = info;
    if (!PngWriteInfo(w->stream_.png, w->stream_.info, w->stream_.file.get(), info.width,
                      info.height, info.bits)) {
      return Status::Internal(path + ": cannot write PNG header: " + w->stream_.error.text);
    }
    w->stream_.row.resize(static_cast<std::size_t>(info.width) * 3 * (info.bits / 8));
    w->encoder_bytes_ = static_cast<std::int64_t>(6 * w->stream_.row.size()) + (512 << 10);
    return std::unique_ptr<RasterWriter>(std::move(w));
  }

  ~PngWriter() override { png_destroy_write_struct(&stream_.png, &stream_.info); }

  Status WriteRows(int rows, const std::uint16_t* rgb) override {
    PEAKNAS_RETURN_IF_ERROR(CheckRows(path_, stream_.next_row, rows, info_.height));
    const std::size_t samples = static_cast<std::size_t>(info_.width) * 3;
    for (int i = 0; i < rows; ++i, ++stream_.next_row, rgb += samples) {
      PackRow(rgb, samples, info_.bits, stream_.row.data());
      if (!PngWriteRow(stream_.png, stream_.row.data())) {
        return Status::Internal(path_ + ": cannot write PNG row " +
                                std::to_string(stream_.next_row) + ": " + stream_.error.text);
      }
    }
    return Status::Ok();
  }

  Status Finish() override {
    PEAKNAS_RETURN_IF_ERROR(CheckAllRowsWritten(path_, stream_.next_row, info_.height));
    if (!PngWriteEnd(stream_.png))
      return Status::Internal(path_ + ": cannot end PNG: " + stream_.error.text);
    if (std::fflush(stream_.file.get()) != 0 || std::ferror(stream_.file.get()) != 0) {
      return Status::Internal(path_ + ": write error: " + std::strerror(errno));
    }
    stream_.file.reset();
    return part_.Rename();
  }

 private:
  explicit PngWriter(std::string path) : path_(path), part_(std::move(path)) {
    stream_.png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &stream_.error, PngError, PngWarning);
    if (stream_.png != nullptr) stream_.info = png_create_info_struct(stream_.png);
  }

  std::string path_;
  PartFile part_;
  PngStream stream_;
};

// --- TIFF ------------------------------------------------------------------------------------

int TiffError(TIFF*, void* user_data, const char* module, const char* format, va_list args) {
  auto* error = static_cast<ErrorText*>(user_data);
  char message[200];
  std::vsnprintf(message, sizeof message, format, args);
  char text[sizeof error->text];
  std::snprintf(text, sizeof text, "%s%s%s", module != nullptr ? module : "",
                module != nullptr ? ": " : "", message);
  error->Set(text);
  return 1;  // handled: libtiff prints nothing
}
int TiffWarning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

TIFF* TiffOpen(const std::string& path, const char* mode, ErrorText* error) {
  TIFFOpenOptions* options = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(options, TiffError, error);
  TIFFOpenOptionsSetWarningHandlerExtR(options, TiffWarning, nullptr);
  TIFF* tif = TIFFOpenExt(path.c_str(), mode, options);
  TIFFOpenOptionsFree(options);
  return tif;
}

struct TiffCloser {
  void operator()(TIFF* tif) const { TIFFClose(tif); }
};

class TiffReader final : public RasterReader {
 public:
  static StatusOr<std::unique_ptr<RasterReader>> Open(const std::string& path) {
    auto r = std::unique_ptr<TiffReader>(new TiffReader(path));
    // "m": read(), not mmap(): mapped pages of the file would count in the resident set.
    r->tif_.reset(TiffOpen(path, "rm", &r->error_));
    if (r->tif_ == nullptr) return Corrupt(path, RasterFormat::kTiff, r->error_.text);
    TIFF* tif = r->tif_.get();
    std::uint32_t width = 0, height = 0;
    std::uint16_t bits = 1, spp = 1, planar = PLANARCONFIG_CONTIG, sample_format = 1;
    std::uint16_t photometric = PHOTOMETRIC_MINISBLACK;
    if (TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width) != 1 ||
        TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height) != 1) {
      return Corrupt(path, RasterFormat::kTiff, "no image width or length");
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sample_format);
    TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
    if (TIFFIsTiled(tif) != 0) {
      return Unsupported(path, RasterFormat::kTiff, "tiled; save it in strips");
    }
    if (bits != 8 && bits != 16) {
      return Unsupported(path, RasterFormat::kTiff,
                         std::to_string(bits) + " bits per sample; 8 or 16 are read");
    }
    if (sample_format != SAMPLEFORMAT_UINT) {
      return Unsupported(path, RasterFormat::kTiff, "samples are not unsigned integers");
    }
    if (planar != PLANARCONFIG_CONTIG && spp > 1) {
      return Unsupported(path, RasterFormat::kTiff, "planar samples; save them interleaved");
    }
    const bool grey = photometric == PHOTOMETRIC_MINISBLACK && spp >= 1;
    const bool rgb = photometric == PHOTOMETRIC_RGB && spp >= 3;
    if (!grey && !rgb) {
      return Unsupported(path, RasterFormat::kTiff,
                         "photometric " + std::to_string(photometric) + " with " +
                             std::to_string(spp) + " samples; grey or RGB are read");
    }
    if (width < 1 || height < 1 || width > (1u << 30) || height > (1u << 30)) {
      return Corrupt(path, RasterFormat::kTiff,
                     std::to_string(width) + "x" + std::to_string(height) + " pixels");
    }
    r->info_ = {RasterFormat::kTiff, static_cast<int>(width), static_cast<int>(height), bits};
    r->channels_ = spp;
    r->grey_ = grey;
    const tmsize_t scanline = TIFFScanlineSize(tif);
    const std::size_t expected = static_cast<std::size_t>(width) * spp * (bits / 8);
    if (scanline <= 0 || static_cast<std::size_t>(scanline) < expected) {
      return Corrupt(path, RasterFormat::kTiff, "scanline size");
    }
    r->scanline_.resize(static_cast<std::size_t>(scanline));
    // libtiff decodes a compressed strip into a buffer of its own.
    r->decoder_bytes_ = static_cast<std::int64_t>(scanline) + TIFFStripSize64(tif);
    return std::unique_ptr<RasterReader>(std::move(r));
  }

  Status ReadRows(int rows, std::uint16_t* out) override {
    PEAKNAS_RETURN_IF_ERROR(CheckRows(path_, next_row_, rows, info_.height));
    const int w = info_.width;
    for (int i = 0; i < rows; ++i, ++next_row_, out += static_cast<std::size_t>(w) * 3) {
      if (TIFFReadScanline(tif_.get(), scanline_.data(), static_cast<std::uint32_t>(next_row_)) <
          0) {
        return Corrupt(path_, RasterFormat::kTiff,
                       "row " + std::to_string(next_row_) + ": " + error_.text);
      }
      if (info_.bits == 16) {
        Convert(reinterpret_cast<const std::uint16_t*>(scanline_.data()), w, out);
      } else {
        Convert(scanline_.data(), w, out);
      }
    }
    return Status::Ok();
  }

 private:
  explicit TiffReader(std::string path) : path_(std::move(path)) {}

  template <typename T>
  void Convert(const T* in, int width, std::uint16_t* out) const {
    for (int x = 0; x < width; ++x, in += channels_, out += 3) {
      out[0] = in[0];
      out[1] = grey_ ? in[0] : in[1];
      out[2] = grey_ ? in[0] : in[2];
    }
  }

  std::string path_;
  ErrorText error_;
  std::unique_ptr<TIFF, TiffCloser> tif_;
  std::vector<std::uint8_t> scanline_;
  int channels_ = 3;
  bool grey_ = false;
  int next_row_ = 0;
};

class TiffWriter final : public RasterWriter {
 public:
  static StatusOr<std::unique_ptr<RasterWriter>> Create(const std::string& path,
                                                        const RasterInfo& info) {
    auto w = std::unique_ptr<TiffWriter>(new TiffWriter(path));
    // Classic TIFF addresses 4 GiB; larger images go to BigTIFF.
    const double bytes = static_cast<double>(info.width) * info.height * 3 * (info.bits / 8);
    w->tif_.reset(TiffOpen(w->part_.part(), bytes > 3.5e9 ? "w8" : "w", &w->error_));
    if (w->tif_ == nullptr) {
      return Status::Internal(w->part_.part() + ": cannot create: " + w->error_.text);
    }
    TIFF* tif = w->tif_.get();
    w->info_ = info;
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(info.width));
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(info.height));
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(info.bits));
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, std::uint16_t{3});
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tif, 0));
    w->row_.resize(static_cast<std::size_t>(info.width) * 3 * (info.bits / 8));
    w->encoder_bytes_ = static_cast<std::int64_t>(2 * w->row_.size()) + (64 << 10);
    return std::unique_ptr<RasterWriter>(std::move(w));
  }

  Status WriteRows(int rows, const std::uint16_t* rgb) override {
    PEAKNAS_RETURN_IF_ERROR(CheckRows(path_, next_row_, rows, info_.height));
    const std::size_t samples = static_cast<std::size_t>(info_.width) * 3;
    for (int i = 0; i < rows; ++i, ++next_row_, rgb += samples) {
      PackRow(rgb, samples, info_.bits, row_.data());
      if (TIFFWriteScanline(tif_.get(), row_.data(), static_cast<std::uint32_t>(next_row_)) < 0) {
        return Status::Internal(path_ + ": cannot write TIFF row " + std::to_string(next_row_) +
                                ": " + error_.text);
      }
    }
    return Status::Ok();
  }

  Status Finish() override {
    PEAKNAS_RETURN_IF_ERROR(CheckAllRowsWritten(path_, next_row_, info_.height));
    if (TIFFFlush(tif_.get()) != 1) {
      return Status::Internal(path_ + ": cannot write TIFF: " + error_.text);
    }
    tif_.reset();
    return part_.Rename();
  }

 private:
  explicit TiffWriter(std::string path) : path_(path), part_(std::move(path)) {}

  std::string path_;
  PartFile part_;
  ErrorText error_;
  std::unique_ptr<TIFF, TiffCloser> tif_;
  std::vector<std::uint8_t> row_;
  int next_row_ = 0;
};

// --- JPEG ------------------------------------------------------------------------------------

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  ErrorText text;
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* error = reinterpret_cast<JpegError*>(cinfo->err);
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  error->text.Set(message);
  std::longjmp(error->jump, 1);
}
// Warnings (data ending early, bytes out of place) are kept: a row read with one is corrupt.
void JpegMessage(j_common_ptr cinfo) {
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  reinterpret_cast<JpegError*>(cinfo->err)->text.Set(message);
}

bool JpegStart(jpeg_decompress_struct* cinfo, JpegError* error, std::FILE* file) {
  if (setjmp(error->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_stdio_src(cinfo, file);
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
    error->text.Set("CMYK; save it as RGB");
    return false;
  }
  cinfo->out_color_space = JCS_RGB;
  jpeg_start_decompress(cinfo);
  return true;
}

bool JpegReadRow(jpeg_decompress_struct* cinfo, JpegError* error, JSAMPROW row) {
  if (setjmp(error->jump)) return false;
  return jpeg_read_scanlines(cinfo, &row, 1) == 1;
}

class JpegReader final : public RasterReader {
 public:
  static StatusOr<std::unique_ptr<RasterReader>> Open(const std::string& path, File file) {
    auto r = std::unique_ptr<JpegReader>(new JpegReader(path, std::move(file)));
    r->cinfo_.err = jpeg_std_error(&r->error_.mgr);
    r->error_.mgr.error_exit = JpegErrorExit;
    r->error_.mgr.output_message = JpegMessage;
    r->created_ = true;
    if (!JpegStart(&r->cinfo_, &r->error_, r->file_.get())) {
      return Corrupt(path, RasterFormat::kJpeg, r->error_.text.text);
    }
    r->info_ = {RasterFormat::kJpeg, static_cast<int>(r->cinfo_.output_width),
                static_cast<int>(r->cinfo_.output_height), 8};
    if (r->cinfo_.output_components != 3) {
      return Unsupported(path, RasterFormat::kJpeg,
                         std::to_string(r->cinfo_.output_components) + " components");
    }
    r->row_.resize(static_cast<std::size_t>(r->info_.width) * 3);
    // Buffered (progressive) decoding holds every coefficient of the image: 2 bytes each.
    const std::int64_t pixels = static_cast<std::int64_t>(r->info_.width) * r->info_.height;
    r->decoder_bytes_ = r->cinfo_.buffered_image || r->cinfo_.progressive_mode
                            ? pixels * 3 * 2
                            : static_cast<std::int64_t>(r->info_.width) * 3 * 2 * 16 * 2;
    return std::unique_ptr<RasterReader>(std::move(r));
  }

  ~JpegReader() override {
    if (created_) jpeg_destroy_decompress(&cinfo_);
  }

  Status ReadRows(int rows, std::uint16_t* out) override {
    PEAKNAS_RETURN_IF_ERROR(CheckRows(path_, next_row_, rows, info_.height));
    for (int i = 0; i < rows; ++i, ++next_row_, out += row_.size()) {
      if (!JpegReadRow(&cinfo_, &error_, row_.data()) || error_.mgr.num_warnings > 0) {
        return Corrupt(path_, RasterFormat::kJpeg,
                       "row " + std::to_string(next_row_) + ": " + error_.text.text);
      }
      std::copy(row_.begin(), row_.end(), out);
    }
    return Status::Ok();
  }

 private:
  JpegReader(std::string path, File file) : path_(std::move(path)), file_(std::move(file)) {}

  std::string path_;
  File file_;
  jpeg_decompress_struct cinfo_{};
  JpegError error_{};
  bool created_ = false;
  std::vector<JSAMPLE> row_;
  int next_row_ = 0;
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

const char* RasterFormatName(RasterFormat format) {
  switch (format) {
    case RasterFormat::kPng:
      return "PNG";
    case RasterFormat::kTiff:
      return "TIFF";
    case RasterFormat::kJpeg:
      return "JPEG";
  }
  return "?";
}

StatusOr<std::unique_ptr<RasterReader>> OpenRaster(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return Status::NotFound(path + ": no such file");
  if (std::filesystem::is_directory(status)) {
    return Status::InvalidArgument(path + ": is a directory, not an image file");
  }
  File file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    return Status::NotFound(path + ": cannot open for reading: " + std::strerror(errno));
  }
  unsigned char head[8] = {};
  const std::size_t got = std::fread(head, 1, sizeof head, file.get());
  std::rewind(file.get());
  static constexpr unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (got == 8 && std::memcmp(head, kPng, 8) == 0) return PngReader::Open(path, std::move(file));
  if (got >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) {
    return JpegReader::Open(path, std::move(file));
  }
  const bool intel = got >= 4 && head[0] == 'I' && head[1] == 'I' && head[3] == 0 &&
                     (head[2] == 42 || head[2] == 43);
  const bool motorola = got >= 4 && head[0] == 'M' && head[1] == 'M' && head[2] == 0 &&
                        (head[3] == 42 || head[3] == 43);
  if (intel || motorola) {
    file.reset();
    return TiffReader::Open(path);
  }
  return Status::InvalidArgument(path + ": not a PNG, TIFF or JPEG image" +
                                 (got == 0 ? std::string(" (empty file)") : std::string()));
}

StatusOr<std::unique_ptr<RasterWriter>> CreateRaster(const std::string& path, int width, int height,
                                                     int bits) {
  if (width < 1 || height < 1) {
    return Status::InvalidArgument(path + ": cannot write a " + std::to_string(width) + "x" +
                                   std::to_string(height) + " image");
  }
  if (bits != 8 && bits != 16) {
    return Status::InvalidArgument(path + ": cannot write " + std::to_string(bits) +
                                   "-bit samples (8 or 16)");
  }
  const std::string ext = Lower(std::filesystem::path(path).extension().string());
  if (ext == ".png") {
    if (width > 0x7fffffff / 6) return Status::InvalidArgument(path + ": too wide for PNG");
    return PngWriter::Create(path, {RasterFormat::kPng, width, height, bits});
  }
  if (ext == ".tif" || ext == ".tiff") {
    return TiffWriter::Create(path, {RasterFormat::kTiff, width, height, bits});
  }
  return Status::InvalidArgument(path + ": the extension must be .png, .tif or .tiff");
}

}  // namespace peaknas::data
