// MAT files (the SIDD validation blocks, ValidationNoisyBlocksSrgb.mat and its ground truth; a
// worker reads whatever its --data folder holds): data::ReadUint8Array refuses with
// INVALID_ARGUMENT or DATA_LOSS and never crashes; an array it accepts holds exactly the
// product of its dimensions in bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz/dataset_files.h"
#include "worker/data/mat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = peaknas::fuzz::WriteScratchFile(data, size, ".mat");
  const auto array = peaknas::data::ReadUint8Array(path, "ValidationNoisyBlocksSrgb");
  if (!array.ok()) {
    const peaknas::StatusCode code = array.status().code();
    if (code != peaknas::StatusCode::kInvalidArgument && code != peaknas::StatusCode::kDataLoss) {
      std::fprintf(stderr, "unexpected status: %s\n", array.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  std::size_t elements = 1;
  for (std::size_t d : array->dims) elements *= d;
  if (array->dims.empty() || elements != array->data.size()) {
    std::fprintf(stderr, "%zu dims, %zu elements, %zu bytes\n", array->dims.size(), elements,
                 array->data.size());
    std::abort();
  }
  return 0;
}
