// Tiled inference: a network's output on an image too large to run at once, computed tile by
// tile so that only one window is in flight, and equal to the whole-image output.
//
// The image is cut into output tiles of `tile` x `tile` pixels (smaller at the right and bottom
// edges). Each runs as a window that reaches `overlap` pixels farther on every side (clipped at
// the image's edges), and only its tile is kept. With overlap >= the receptive-field radius
// (search::SeamFreeOverlap) the kept pixels see exactly what they see in the whole image, and,
// with windows starting on the network's downsampling grid, are computed from the same pooled
// pixels: tiled output equals whole-image output to float rounding.
//
// Thread-safety: one call at a time per `forward`.
#ifndef PEAKNAS_WORKER_TILED_H_
#define PEAKNAS_WORKER_TILED_H_

#include <torch/torch.h>

#include <functional>

#include "base/status.h"

namespace peaknas::worker {

struct TiledOptions {
  int tile = 256;    // output tile side; a multiple of `multiple`
  int overlap = 0;   // context on each side; a multiple of `multiple`
  int multiple = 1;  // the network's spatial multiple (search::SpatialMultiple)
  // The memory format each window is handed to `forward` in. The values are the same either
  // way; on the CPU, oneDNN runs channels-last convolutions without converting every layer's
  // input and output to its blocked format and back (InferenceLayout, measure.h).
  torch::MemoryFormat layout = torch::MemoryFormat::Contiguous;
};

// INVALID_ARGUMENT naming the field for a tile that is not a positive multiple of `multiple`,
// or an overlap that is negative or off the grid.
Status CheckTiledOptions(const TiledOptions& options);

// Tiles done and their total, after each tile.
using TileProgress = std::function<void(int done, int total)>;

// forward([1, C, h, w]) -> [1, C', h, w] over `image` ([1, C, H, W]; H and W multiples of
// options.multiple), tile by tile, under NoGradGuard. INVALID_ARGUMENT for a tile, overlap or
// image size off the grid.
StatusOr<torch::Tensor> ForwardTiled(
    const std::function<torch::Tensor(const torch::Tensor&)>& forward, const torch::Tensor& image,
    const TiledOptions& options, const TileProgress& progress = {});

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_TILED_H_
