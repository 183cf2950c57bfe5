#include "worker/data/mat.h"

#include <matio.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <system_error>

namespace peaknas::data {
namespace {

// matio's logger is process-wide; all matio calls happen under this mutex, and the logger
// appends to `g_matio_log` instead of printing.
std::mutex g_matio_mutex;
std::string g_matio_log;  // guarded by g_matio_mutex

void CaptureMatioLog(int /*log_level*/, char* message) {
  if (message == nullptr) return;
  if (!g_matio_log.empty()) g_matio_log += "; ";
  g_matio_log += message;
}

// Holds the matio lock and a fresh log for the duration of one public call.
class MatioSession {
 public:
  MatioSession() : lock_(g_matio_mutex) {
    static std::once_flag once;
    std::call_once(once, [] { Mat_LogInitFunc("peaknas", CaptureMatioLog); });
    g_matio_log.clear();
  }
  // " (matio: ...)" or "" when matio said nothing.
  std::string Details() const { return g_matio_log.empty() ? "" : " (matio: " + g_matio_log + ")"; }

 private:
  std::lock_guard<std::mutex> lock_;
};

struct MatCloser {
  void operator()(mat_t* mat) const { Mat_Close(mat); }
};
struct VarFreer {
  void operator()(matvar_t* var) const { Mat_VarFree(var); }
};
using MatPtr = std::unique_ptr<mat_t, MatCloser>;
using VarPtr = std::unique_ptr<matvar_t, VarFreer>;

const char* ClassName(matio_classes c) {
  switch (c) {
    case MAT_C_CELL:
      return "cell";
    case MAT_C_STRUCT:
      return "struct";
    case MAT_C_OBJECT:
      return "object";
    case MAT_C_CHAR:
      return "char";
    case MAT_C_SPARSE:
      return "sparse";
    case MAT_C_DOUBLE:
      return "double";
    case MAT_C_SINGLE:
      return "single";
    case MAT_C_INT8:
      return "int8";
    case MAT_C_UINT8:
      return "uint8";
    case MAT_C_INT16:
      return "int16";
    case MAT_C_UINT16:
      return "uint16";
    case MAT_C_INT32:
      return "int32";
    case MAT_C_UINT32:
      return "uint32";
    case MAT_C_INT64:
      return "int64";
    case MAT_C_UINT64:
      return "uint64";
    case MAT_C_FUNCTION:
      return "function";
    case MAT_C_OPAQUE:
      return "opaque";
    default:
      return "unknown";
  }
}

std::size_t Product(const std::vector<std::size_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), std::size_t{1}, std::multiplies<>());
}

// Converts an array stored column-major (first index fastest) with `dims` into C order (last
// index fastest) with the same dims. Since a C-order array with dims D is a column-major one
// with dims reversed(D), the same routine converts C order to column-major.
//
// The leading input axes whose product reaches kTile are flattened into m (contiguous in the
// input); the remaining axes, walked in C order, are k (contiguous in the output for a fixed
// m). The array is then a matrix transpose in[k_f][m] → out[m][k], done in kTile × kTile
// tiles through a small buffer, so that both sides move whole cache lines (a naive loop
// writes one byte to each of 64 streams whose power-of-two spacing thrashes the cache).
void ColumnMajorToCOrder(const std::uint8_t* in, const std::vector<std::size_t>& dims,
                         std::uint8_t* out) {
  const std::size_t rank = dims.size();
  const std::size_t total = Product(dims);
  if (total == 0) return;
  if (rank <= 1) {
    std::copy(in, in + total, out);
    return;
  }
  constexpr std::size_t kTile = 64;
  std::size_t p = 0;  // axes [0, p) are flattened into m
  std::size_t m_count = 1;
  while (p < rank - 1 && m_count < kTile) m_count *= dims[p++];
  const std::vector<std::size_t> rest(dims.begin() + static_cast<std::ptrdiff_t>(p), dims.end());
  const std::size_t k_count = Product(rest);
  // Column-major strides of the rest axes, in units of m_count.
  std::vector<std::size_t> rest_f_stride(rest.size());
  for (std::size_t j = 0, s = 1; j < rest.size(); ++j) {
    rest_f_stride[j] = s;
    s *= rest[j];
  }
  // base[m]: C-order offset of the leading indices encoded by m. m is column-major over
  // axes [0, p): m = i0 + d0·(i1 + d1·(…)); their C-order index is ((i0·d1 + i1)·d2 + …).
  std::vector<std::size_t> lead_c_stride(p, 1);
  for (std::size_t j = p - 1; j-- > 0;) lead_c_stride[j] = lead_c_stride[j + 1] * dims[j + 1];
  std::vector<std::size_t> base(m_count);
  for (std::size_t m = 0; m < m_count; ++m) {
    std::size_t rem = m, lead_c = 0;
    for (std::size_t j = 0; j < p; ++j) {
      lead_c += (rem % dims[j]) * lead_c_stride[j];
      rem /= dims[j];
    }
    base[m] = lead_c * k_count;
  }
  std::uint8_t tile[kTile][kTile];
  std::size_t f_offset[kTile];  // input row (in units of m_count) of output columns k0 + kk
  std::vector<std::size_t> idx(rest.size(), 0);  // odometer over the rest axes, C order
  std::size_t f = 0;                             // column-major offset of idx
  for (std::size_t k0 = 0; k0 < k_count; k0 += kTile) {
    const std::size_t kn = std::min(kTile, k_count - k0);
    for (std::size_t kk = 0; kk < kn; ++kk) {
      f_offset[kk] = f;
      for (std::size_t j = rest.size(); j-- > 0;) {
        if (++idx[j] < rest[j]) {
          f += rest_f_stride[j];
          break;
        }
        f -= (rest[j] - 1) * rest_f_stride[j];
        idx[j] = 0;
      }
    }
    for (std::size_t m0 = 0; m0 < m_count; m0 += kTile) {
      const std::size_t mn = std::min(kTile, m_count - m0);
      for (std::size_t kk = 0; kk < kn; ++kk) {
        const std::uint8_t* src = in + f_offset[kk] * m_count + m0;
        for (std::size_t mm = 0; mm < mn; ++mm) tile[mm][kk] = src[mm];
      }
      for (std::size_t mm = 0; mm < mn; ++mm) {
        std::memcpy(out + base[m0 + mm] + k0, tile[mm], kn);
      }
    }
  }
}

bool ValidVariableName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::isalpha(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
  });
}

std::string VariablesIn(mat_t* mat) {
  std::size_t n = 0;
  char** names = Mat_GetDir(mat, &n);
  if (names == nullptr || n == 0) return "none";
  std::string list;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) list += ", ";
    list += names[i] != nullptr ? names[i] : "?";
  }
  return list;
}

// libmatio reads a truncated uncompressed v5 variable without complaint (the missing bytes
// come back as garbage), so the top-level framing of a v5 file is checked here: after the
// 128-byte header, each element's tag (type, byte count) must be followed by that many bytes.
Status CheckMat5Framing(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open for reading");
  in.seekg(0, std::ios::end);
  const std::uint64_t file_size = static_cast<std::uint64_t>(in.tellg());
  unsigned char header[128];
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) {
    return Status(StatusCode::kDataLoss, path + ": truncated MAT file header");
  }
  // The endian indicator "MI" as written by the producer: "IM" in the file = little-endian.
  const bool little = header[126] == 'I' && header[127] == 'M';
  auto u32 = [little](const unsigned char* b) {
    return little ? (std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 |
                     std::uint32_t{b[3]} << 24)
                  : (std::uint32_t{b[3]} | std::uint32_t{b[2]} << 8 | std::uint32_t{b[1]} << 16 |
                     std::uint32_t{b[0]} << 24);
  };
  std::uint64_t pos = 128;
  while (pos < file_size) {
    unsigned char tag[8];
    in.seekg(static_cast<std::streamoff>(pos));
    if (file_size - pos < 8 || !in.read(reinterpret_cast<char*>(tag), sizeof tag)) {
      return Status(
          StatusCode::kDataLoss,
          path + ": truncated MAT file (partial element tag at byte " + std::to_string(pos) + ")");
    }
    const std::uint64_t nbytes = u32(tag + 4);
    if (nbytes > file_size - pos - 8) {
      return Status(StatusCode::kDataLoss, path + ": truncated MAT file (element at byte " +
                                               std::to_string(pos) + " needs " +
                                               std::to_string(nbytes) + " bytes, " +
                                               std::to_string(file_size - pos - 8) + " remain)");
    }
    pos += 8 + nbytes;
  }
  return Status::Ok();
}

}  // namespace

std::string FormatDims(const std::vector<std::size_t>& dims) {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += "x";
    s += std::to_string(dims[i]);
  }
  return s.empty() ? "(scalar)" : s;
}

StatusOr<Uint8Array> ReadUint8Array(const std::string& path, const std::string& variable_name) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(path + ": no such file");
  if (std::filesystem::is_directory(path, ec)) {
    return Status::InvalidArgument(path + ": is a directory, not a MAT file");
  }
  MatioSession session;
  MatPtr mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (mat == nullptr || Mat_GetVersion(mat.get()) == MAT_FT_UNDEFINED) {
    return Status::InvalidArgument(path + ": not a MAT file (v5, v7 or v7.3)" + session.Details());
  }
  if (Mat_GetVersion(mat.get()) == MAT_FT_MAT5) PEAKNAS_RETURN_IF_ERROR(CheckMat5Framing(path));
  VarPtr info(Mat_VarReadInfo(mat.get(), variable_name.c_str()));
  if (info == nullptr) {
    Mat_Rewind(mat.get());
    return Status::InvalidArgument(path + ": no variable '" + variable_name +
                                   "' (variables present: " + VariablesIn(mat.get()) + ")");
  }
  std::vector<std::size_t> dims(info->dims, info->dims + info->rank);
  if (info->class_type != MAT_C_UINT8 || info->isComplex || info->isLogical) {
    std::string kind = ClassName(info->class_type);
    if (info->isComplex) kind = "complex " + kind;
    if (info->isLogical) kind = "logical";
    return Status::InvalidArgument(path + ": variable '" + variable_name + "' is a " +
                                   FormatDims(dims) + " " + kind +
                                   " array; expected a real uint8 array");
  }
  info.reset();
  // A variable cannot hold more than its file can: its bytes raw, or zlib's largest expansion
  // (1032:1) of them compressed. A larger declared size is a damaged or crafted header, refused
  // before matio allocates it.
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, ec);
  std::uintmax_t declared = 1;
  for (std::size_t d : dims) {
    if (d != 0 && declared > std::numeric_limits<std::uintmax_t>::max() / d) {
      declared = std::numeric_limits<std::uintmax_t>::max();
      break;
    }
    declared *= d;
  }
  if (ec || declared / 1032 > file_bytes) {
    return Status(StatusCode::kDataLoss, path + ": variable '" + variable_name + "' declares " +
                                             FormatDims(dims) + " uint8, more than a file of " +
                                             std::to_string(file_bytes) + " bytes can hold");
  }
  Mat_Rewind(mat.get());
  VarPtr var(Mat_VarRead(mat.get(), variable_name.c_str()));
  const std::size_t count = Product(dims);
  // matio reports a short compressed stream only through its logger.
  if (var == nullptr || (count > 0 && var->data == nullptr) || var->nbytes < count ||
      !session.Details().empty()) {
    return Status(StatusCode::kDataLoss, path + ": cannot read the data of variable '" +
                                             variable_name + "' (" + FormatDims(dims) + " uint8)" +
                                             session.Details());
  }
  Uint8Array array;
  array.dims = std::move(dims);
  array.data.resize(count);
  ColumnMajorToCOrder(static_cast<const std::uint8_t*>(var->data), array.dims, array.data.data());
  return array;
}

namespace {

// Writes `data` (C order, `c_dims`) as the only variable of a new MAT v5 file.
Status WriteCOrder(const std::string& path, const std::string& variable_name,
                   const std::uint8_t* data, const std::vector<std::size_t>& c_dims) {
  if (!ValidVariableName(variable_name)) {
    return Status::InvalidArgument(path + ": '" + variable_name +
                                   "' is not a valid MATLAB variable name");
  }
  // Column-major with dims D is C order with dims reversed(D).
  const std::vector<std::size_t> reversed(c_dims.rbegin(), c_dims.rend());
  std::vector<std::uint8_t> column_major(Product(c_dims));
  ColumnMajorToCOrder(data, reversed, column_major.data());
  std::vector<std::size_t> dims = c_dims;  // matio wants a mutable pointer

  MatioSession session;
  // A fixed header (no creation date) keeps the file's bytes a function of its contents.
  MatPtr mat(Mat_CreateVer(path.c_str(), "MATLAB 5.0 MAT-file, written by peaknas (libmatio)",
                           MAT_FT_MAT5));
  if (mat == nullptr) {
    return Status::Internal(path + ": cannot create MAT file" + session.Details());
  }
  VarPtr var(Mat_VarCreate(variable_name.c_str(), MAT_C_UINT8, MAT_T_UINT8,
                           static_cast<int>(dims.size()), dims.data(), column_major.data(),
                           MAT_F_DONT_COPY_DATA));
  if (var == nullptr) {
    return Status::Internal(path + ": cannot create variable '" + variable_name + "'" +
                            session.Details());
  }
  if (Mat_VarWrite(mat.get(), var.get(), MAT_COMPRESSION_ZLIB) != 0) {
    return Status::Internal(path + ": cannot write variable '" + variable_name + "'" +
                            session.Details());
  }
  var.reset();  // does not free column_major (MAT_F_DONT_COPY_DATA)
  if (Mat_Close(mat.release()) != 0) {
    return Status::Internal(path + ": cannot close MAT file" + session.Details());
  }
  return Status::Ok();
}

}  // namespace

Status WriteUint8Array(const std::string& path, const std::string& variable_name,
                       const Uint8Array& array) {
  if (array.dims.empty() || Product(array.dims) != array.data.size()) {
    return Status::InvalidArgument(path + ": dims " + FormatDims(array.dims) + " do not match " +
                                   std::to_string(array.data.size()) + " bytes of data");
  }
  return WriteCOrder(path, variable_name, array.data.data(), array.dims);
}

Image SiddBlocks::BlockImage(std::size_t index) const {
  Image image(block_size, block_size);
  std::copy(block(index), block(index) + block_bytes(), image.rgb.begin());
  return image;
}

StatusOr<SiddBlocks> ReadSiddBlocks(const std::string& path, const std::string& variable_name) {
  PEAKNAS_ASSIGN_OR_RETURN(Uint8Array array, ReadUint8Array(path, variable_name));
  const auto& d = array.dims;
  constexpr std::size_t kMaxDim = 1 << 20;
  const bool ok = d.size() == 5 && d[4] == 3 && d[2] == d[3] && d[0] > 0 && d[1] > 0 && d[2] > 0 &&
                  d[0] < kMaxDim && d[1] < kMaxDim && d[2] < kMaxDim;
  if (!ok) {
    return Status::InvalidArgument(path + ": variable '" + variable_name + "' has shape " +
                                   FormatDims(d) +
                                   "; expected 5-D N_images x N_blocks x S x S x 3 "
                                   "(square RGB blocks, e.g. 40x32x256x256x3)");
  }
  SiddBlocks blocks;
  blocks.num_images = static_cast<int>(d[0]);
  blocks.blocks_per_image = static_cast<int>(d[1]);
  blocks.block_size = static_cast<int>(d[2]);
  blocks.data = std::move(array.data);
  return blocks;
}

Status WriteSiddBlocks(const std::string& path, const std::string& variable_name,
                       const SiddBlocks& blocks) {
  if (blocks.num_images <= 0 || blocks.blocks_per_image <= 0 || blocks.block_size <= 0 ||
      blocks.data.size() != blocks.num_blocks() * blocks.block_bytes()) {
    return Status::InvalidArgument(
        path + ": inconsistent blocks (" + std::to_string(blocks.num_images) + "x" +
        std::to_string(blocks.blocks_per_image) + "x" + std::to_string(blocks.block_size) + "x" +
        std::to_string(blocks.block_size) + "x3, " + std::to_string(blocks.data.size()) +
        " bytes)");
  }
  const std::vector<std::size_t> dims = {static_cast<std::size_t>(blocks.num_images),
                                         static_cast<std::size_t>(blocks.blocks_per_image),
                                         static_cast<std::size_t>(blocks.block_size),
                                         static_cast<std::size_t>(blocks.block_size), 3};
  return WriteCOrder(path, variable_name, blocks.data.data(), dims);
}

}  // namespace peaknas::data
