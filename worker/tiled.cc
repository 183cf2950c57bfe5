#include "worker/tiled.h"

#include <algorithm>
#include <string>

namespace peaknas::worker {

Status CheckTiledOptions(const TiledOptions& options) {
  const int m = options.multiple;
  if (m < 1 || options.tile < m || options.tile % m != 0) {
    return Status::InvalidArgument("tile: " + std::to_string(options.tile) +
                                   " is not a positive multiple of " + std::to_string(m));
  }
  if (options.overlap < 0 || options.overlap % m != 0) {
    return Status::InvalidArgument("overlap: " + std::to_string(options.overlap) +
                                   " is not a multiple of " + std::to_string(m) + " (>= 0)");
  }
  return Status::Ok();
}

StatusOr<torch::Tensor> ForwardTiled(
    const std::function<torch::Tensor(const torch::Tensor&)>& forward, const torch::Tensor& image,
    const TiledOptions& options, const TileProgress& progress) {
  PEAKNAS_RETURN_IF_ERROR(CheckTiledOptions(options));
  const int m = options.multiple;
  if (image.dim() != 4 || image.size(0) != 1) {
    return Status::InvalidArgument("image: expected [1, C, H, W]");
  }
  const std::int64_t height = image.size(2), width = image.size(3);
  if (height % m != 0 || width % m != 0) {
    return Status::InvalidArgument("image: " + std::to_string(width) + "x" +
                                   std::to_string(height) + " is not a multiple of " +
                                   std::to_string(m) + " on each side");
  }
  torch::NoGradGuard no_grad;
  const std::int64_t tile = options.tile, overlap = options.overlap;
  const int rows = static_cast<int>((height + tile - 1) / tile);
  const int cols = static_cast<int>((width + tile - 1) / tile);
  torch::Tensor out;
  int done = 0;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const std::int64_t y0 = r * tile, x0 = c * tile;
      const std::int64_t y1 = std::min(y0 + tile, height), x1 = std::min(x0 + tile, width);
      const std::int64_t wy0 = std::max<std::int64_t>(0, y0 - overlap);
      const std::int64_t wx0 = std::max<std::int64_t>(0, x0 - overlap);
      const std::int64_t wy1 = std::min(height, y1 + overlap);
      const std::int64_t wx1 = std::min(width, x1 + overlap);
      const torch::Tensor window =
          image
              .index({torch::indexing::Slice(), torch::indexing::Slice(),
                      torch::indexing::Slice(wy0, wy1), torch::indexing::Slice(wx0, wx1)})
              .contiguous();
      const torch::Tensor y = forward(window);
      if (!out.defined()) {
        out = torch::empty({1, y.size(1), height, width}, y.options());
      }
      out.index({torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(y0, y1),
                 torch::indexing::Slice(x0, x1)})
          .copy_(y.index({torch::indexing::Slice(), torch::indexing::Slice(),
                          torch::indexing::Slice(y0 - wy0, y1 - wy0),
                          torch::indexing::Slice(x0 - wx0, x1 - wx0)}));
      if (progress) progress(++done, rows * cols);
    }
  }
  return out;
}

}  // namespace peaknas::worker
