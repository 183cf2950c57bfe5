// Training images (SIDD's NOISY_SRGB_*.PNG and GT_SRGB_*.PNG, or any PNG/JPEG a worker's data
// folder holds): data::ReadImage and data::ReadImageSize refuse with INVALID_ARGUMENT and never
// crash; an image ReadImage accepts has width x height x 3 bytes, and the header's size agrees.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz/dataset_files.h"
#include "worker/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = peaknas::fuzz::WriteScratchFile(data, size, ".png");
  const auto header = peaknas::data::ReadImageSize(path);
  const auto image = peaknas::data::ReadImage(path);
  for (const peaknas::Status& s : {header.status(), image.status()}) {
    if (!s.ok() && s.code() != peaknas::StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "unexpected status: %s\n", s.ToString().c_str());
      std::abort();
    }
  }
  if (!image.ok()) return 0;
  if (image->width <= 0 || image->height <= 0 ||
      image->rgb.size() != static_cast<std::size_t>(image->width) * image->height * 3) {
    std::fprintf(stderr, "%dx%d with %zu bytes\n", image->width, image->height, image->rgb.size());
    std::abort();
  }
  if (!header.ok() || header->width != image->width || header->height != image->height) {
    std::fprintf(stderr, "decoded %dx%d, header %s\n", image->width, image->height,
                 header.ok() ? "differs" : header.status().ToString().c_str());
    std::abort();
  }
  return 0;
}
