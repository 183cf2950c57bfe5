// MATLAB .mat files holding uint8 arrays, and the SIDD validation blocks stored in them.
//
// SIDD ships its validation set as two MAT files, ValidationNoisyBlocksSrgb.mat and
// ValidationGtBlocksSrgb.mat, each holding one uint8 variable named like the file with MATLAB
// dimensions 40×32×256×256×3: image × block × row × column × RGB. MATLAB stores arrays
// column-major (the first index varies fastest); everything here is converted to C order
// (the last index varies fastest), which is the order NumPy's scipy.io.loadmat shows and the
// order the worker's tensors want: data[(((i * B + b) * S + y) * S + x) * 3 + c].
//
// Reading goes through libmatio and accepts MAT v5/v7 (compressed or not) and v7.3 (HDF5).
// Writing produces MAT v5 with zlib-compressed variables and a fixed header text, so equal
// arrays give byte-identical files.
//
// Thread-safety: libmatio keeps process-wide state (its logger), so every call into it is
// serialized by a mutex inside this module; the functions may be called from any thread.
// matio's own diagnostics are captured and appended to the returned Status instead of being
// printed to stderr.
#ifndef PEAKNAS_WORKER_DATA_MAT_H_
#define PEAKNAS_WORKER_DATA_MAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "worker/data/image.h"

namespace peaknas::data {

// An n-dimensional uint8 array in C order (last index fastest). data.size() equals the
// product of dims.
struct Uint8Array {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;
};

// Reads variable `variable_name` of a MAT file. Errors, each starting with "PATH: ":
//   NOT_FOUND         the file does not exist;
//   INVALID_ARGUMENT  not a MAT file; the variable is missing (the message lists the variables
//                     present); the variable is not a real uint8 array (the message names its
//                     class);
//   DATA_LOSS         the variable's data cannot be read (truncated or corrupt file). libmatio
//                     does not notice a truncated uncompressed v5 variable, so the top-level
//                     element framing of v5 files is checked against the file size first.
StatusOr<Uint8Array> ReadUint8Array(const std::string& path, const std::string& variable_name);

// Writes a MAT v5 file (created or overwritten) holding exactly one uint8 variable.
// INVALID_ARGUMENT for a bad name or dims/data mismatch; INTERNAL "PATH: ..." on I/O failure.
Status WriteUint8Array(const std::string& path, const std::string& variable_name,
                       const Uint8Array& array);

// The SIDD validation blocks: num_images × blocks_per_image square RGB8 blocks of side
// block_size, in C order (see the top of this file).
struct SiddBlocks {
  int num_images = 0;
  int blocks_per_image = 0;
  int block_size = 0;
  std::vector<std::uint8_t> data;

  std::size_t num_blocks() const {
    return static_cast<std::size_t>(num_images) * static_cast<std::size_t>(blocks_per_image);
  }
  // Bytes of one block: block_size² × 3.
  std::size_t block_bytes() const {
    return static_cast<std::size_t>(block_size) * static_cast<std::size_t>(block_size) * 3;
  }
  // Interleaved RGB8 of block `index` = image * blocks_per_image + block.
  const std::uint8_t* block(std::size_t index) const { return data.data() + index * block_bytes(); }
  std::uint8_t* block(std::size_t index) { return data.data() + index * block_bytes(); }
  // A copy of one block as an Image.
  Image BlockImage(std::size_t index) const;
};

// Reads SIDD-style blocks: ReadUint8Array's errors, plus INVALID_ARGUMENT
// "PATH: variable 'V' has shape AxBxC; expected 5-D N_images x N_blocks x S x S x 3" when
// the array is not 5-D, its last dimension is not 3, its blocks are not square, or it is
// empty.
StatusOr<SiddBlocks> ReadSiddBlocks(const std::string& path, const std::string& variable_name);

// Writes blocks as a MAT v5 uint8 array of MATLAB size N×B×S×S×3, as SIDD does; SIDD names
// the variable like the file (ValidationNoisyBlocksSrgb, ValidationGtBlocksSrgb).
Status WriteSiddBlocks(const std::string& path, const std::string& variable_name,
                       const SiddBlocks& blocks);

// "40x32x256x256x3".
std::string FormatDims(const std::vector<std::size_t>& dims);

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_MAT_H_
