// Tiled inference of a network of the family (`peaknas-worker denoise`): how far an output
// pixel sees, so that tiles overlapping by that much give, on their valid centres, exactly the
// whole-image output; the largest tile whose window fits a memory budget; and the windows, and
// the roofline time, of a tiled pass over an image (the frontier's 100-megapixel latency).
//
// Each op widens the reach of an output pixel by the kernel's reach at the op's input scale
// (2^i input pixels per feature pixel at level i): a 3x3 convolution by one feature pixel; a
// downsampling (2x2 stride-2 convolution, or 2x2 max pooling) by one input-scale pixel; an
// upsampling (transposed 2x2, or 1x1 convolution and pixel shuffle) by one output-scale pixel,
// bilinear (two taps per axis at the coarse scale) by two. A skip merges a path of smaller
// reach. The sum is an upper bound on the reach, and tight to within the scale changes'
// rounding (worker/tiled_test.cc measures it by perturbing one input pixel).
//
// A tile's window must start on the grid of SpatialMultiple(arch) for its downsamplings to pool
// the same pixels as the whole image's; SeamFreeOverlap rounds the radius up to it.
//
// Thread-safety: pure functions.
#ifndef PEAKNAS_SEARCH_TILING_H_
#define PEAKNAS_SEARCH_TILING_H_

#include <cstdint>
#include <vector>

#include "search/architecture.h"
#include "search/cost_model.h"
#include "search/device_profile.h"

namespace peaknas::search {

// Input pixels (per axis) an output pixel may depend on, on either side. Precondition:
// Validate(arch).
int ReceptiveFieldRadius(const Architecture& arch);

// ReceptiveFieldRadius rounded up to a multiple of SpatialMultiple(arch): the overlap on each
// side of a tile that makes tiled and whole-image output equal.
int SeamFreeOverlap(const Architecture& arch);

// The largest output tile side T (a multiple of SpatialMultiple(arch)) whose window, T + 2 x
// overlap on a side, runs one inference within `budget_bytes` (InferencePeakBytes at batch 1);
// 0 when not even the smallest does. Precondition: overlap is a multiple of SpatialMultiple.
int MaxTiledOutputSide(const Architecture& arch, std::int64_t budget_bytes, int overlap,
                       DType dtype, const DeviceProfile& device);

// One tile along an axis: the output pixels [begin, end) it keeps and the window
// [window_begin, window_end) it runs on.
struct TileSpan {
  int begin = 0;
  int end = 0;
  int window_begin = 0;
  int window_end = 0;
};

// How a tiled pass cuts an axis of `length` pixels (worker/tiled.h, worker/streamed.h): tiles
// of `tile` from 0 (the last one smaller), each window reaching `overlap` farther on both sides,
// clipped to [0, length). Precondition: length >= 1, tile >= 1, overlap >= 0.
std::vector<TileSpan> TileSpans(int length, int tile, int overlap);

// Windows of one shape in a tiled pass, and how many of them there are.
struct WindowShape {
  int height = 0;
  int width = 0;
  std::int64_t count = 0;
};

// How a tiled pass (worker/tiled.h, worker/streamed.h) cuts an image: padded to the grid of
// `multiple`, into output tiles of `tile` (smaller at the right and bottom edges), each run as a
// window reaching `overlap` farther on every side, clipped at the padded image's edges. An axis
// has at most three window extents (first, inner, last), so a pass has at most nine shapes.
struct TilePlan {
  int height = 0;  // the padded image
  int width = 0;
  int tile = 0;
  int overlap = 0;
  std::vector<WindowShape> windows;  // distinct shapes, most numerous first

  std::int64_t WindowCount() const;
};

// Precondition: height, width >= 1; tile a positive multiple of `multiple`; overlap a
// non-negative multiple of it.
TilePlan PlanTiles(int height, int width, int tile, int overlap, int multiple);

// Roofline seconds of a tiled pass: every window's InferenceLatencySeconds at batch 1.
double TiledLatencySeconds(const Architecture& arch, const TilePlan& plan, DType dtype,
                           const DeviceProfile& device);

// The frontier's latency objective (DESIGN.md, "Search"): one 10000 x 10000 image denoised
// seam-free (overlap SeamFreeOverlap) at the largest tile whose window fits `budget_bytes`
// (MaxTiledOutputSide, at most the padded image: one window), by the roofline. An empty plan (tile
// 0) and 0 s when no window fits.
struct HundredMegapixelPass {
  TilePlan plan;
  double seconds = 0;
};
HundredMegapixelPass PlanHundredMegapixels(const Architecture& arch, std::int64_t budget_bytes,
                                           DType dtype, const DeviceProfile& device);
// The same pass at a given output tile (a multiple of SpatialMultiple(arch)).
HundredMegapixelPass PlanHundredMegapixelsAt(const Architecture& arch, int tile, DType dtype,
                                             const DeviceProfile& device);

}  // namespace peaknas::search

#endif  // PEAKNAS_SEARCH_TILING_H_
