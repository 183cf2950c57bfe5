#include "worker/tiled.h"

#include <string>
#include <vector>

#include "search/tiling.h"

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
  const std::vector<search::TileSpan> rows =
      search::TileSpans(static_cast<int>(height), options.tile, options.overlap);
  const std::vector<search::TileSpan> cols =
      search::TileSpans(static_cast<int>(width), options.tile, options.overlap);
  const int total = static_cast<int>(rows.size() * cols.size());
  torch::Tensor out;
  int done = 0;
  for (const search::TileSpan& r : rows) {
    for (const search::TileSpan& c : cols) {
      const std::int64_t y0 = r.begin, y1 = r.end, wy0 = r.window_begin, wy1 = r.window_end;
      const std::int64_t x0 = c.begin, x1 = c.end, wx0 = c.window_begin, wx1 = c.window_end;
      const torch::Tensor window =
          image
              .index({torch::indexing::Slice(), torch::indexing::Slice(),
                      torch::indexing::Slice(wy0, wy1), torch::indexing::Slice(wx0, wx1)})
              .contiguous(options.layout);
      const torch::Tensor y = forward(window);
      if (!out.defined()) {
        out = torch::empty({1, y.size(1), height, width}, y.options());
      }
      out.index({torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(y0, y1),
                 torch::indexing::Slice(x0, x1)})
          .copy_(y.index({torch::indexing::Slice(), torch::indexing::Slice(),
                          torch::indexing::Slice(y0 - wy0, y1 - wy0),
                          torch::indexing::Slice(x0 - wx0, x1 - wx0)}));
      if (progress) progress(++done, total);
    }
  }
  return out;
}

}  // namespace peaknas::worker
