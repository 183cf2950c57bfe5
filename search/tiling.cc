#include "search/tiling.h"

#include <algorithm>
#include <cassert>
#include <map>
#include <utility>

namespace peaknas::search {

int ReceptiveFieldRadius(const Architecture& arch) {
  const int levels = arch.levels;
  int reach = 1;  // the stem's 3x3
  for (int i = 0; i < levels; ++i) {
    const int scale = 1 << i;
    reach += arch.enc_blocks[i] * scale;
    if (i < levels - 1) reach += scale;  // 2x2 downsampling at this scale
  }
  for (int i = levels - 2; i >= 0; --i) {
    const int scale = 1 << i;  // the decoder level's output scale
    reach += arch.upsample == UpsampleKind::kBilinear ? 2 * scale : scale;
    reach += arch.dec_blocks[i] * scale;
  }
  return reach + 1;  // the head's 3x3
}

int SeamFreeOverlap(const Architecture& arch) {
  const int multiple = SpatialMultiple(arch);
  const int radius = ReceptiveFieldRadius(arch);
  return (radius + multiple - 1) / multiple * multiple;
}

int MaxTiledOutputSide(const Architecture& arch, std::int64_t budget_bytes, int overlap,
                       DType dtype, const DeviceProfile& device) {
  const int window = MaxTile(arch, budget_bytes, /*batch=*/1, dtype, device);
  const int side = window - 2 * overlap;
  return side >= SpatialMultiple(arch) ? side : 0;
}

namespace {

// Window extents along one axis of `length` pixels, with their counts.
std::map<int, std::int64_t> AxisWindows(int length, int tile, int overlap) {
  std::map<int, std::int64_t> extents;
  for (const TileSpan& s : TileSpans(length, tile, overlap)) {
    ++extents[s.window_end - s.window_begin];
  }
  return extents;
}

}  // namespace

std::vector<TileSpan> TileSpans(int length, int tile, int overlap) {
  assert(length >= 1 && tile >= 1 && overlap >= 0);
  std::vector<TileSpan> spans;
  for (int begin = 0; begin < length; begin += tile) {
    const int end = std::min(begin + tile, length);
    spans.push_back({.begin = begin,
                     .end = end,
                     .window_begin = std::max(0, begin - overlap),
                     .window_end = std::min(length, end + overlap)});
  }
  return spans;
}

std::int64_t TilePlan::WindowCount() const {
  std::int64_t n = 0;
  for (const WindowShape& w : windows) n += w.count;
  return n;
}

TilePlan PlanTiles(int height, int width, int tile, int overlap, int multiple) {
  assert(height >= 1 && width >= 1 && multiple >= 1 && tile >= multiple && tile % multiple == 0);
  assert(overlap >= 0 && overlap % multiple == 0);
  TilePlan plan;
  plan.height = (height + multiple - 1) / multiple * multiple;
  plan.width = (width + multiple - 1) / multiple * multiple;
  plan.tile = tile;
  plan.overlap = overlap;
  for (const auto& [h, rows] : AxisWindows(plan.height, tile, overlap)) {
    for (const auto& [w, cols] : AxisWindows(plan.width, tile, overlap)) {
      plan.windows.push_back({.height = h, .width = w, .count = rows * cols});
    }
  }
  std::stable_sort(plan.windows.begin(), plan.windows.end(),
                   [](const WindowShape& a, const WindowShape& b) { return a.count > b.count; });
  return plan;
}

double TiledLatencySeconds(const Architecture& arch, const TilePlan& plan, DType dtype,
                           const DeviceProfile& device) {
  double seconds = 0;
  for (const WindowShape& w : plan.windows) {
    seconds += static_cast<double>(w.count) *
               InferenceLatencySeconds(arch, 1, w.height, w.width, dtype, device);
  }
  return seconds;
}

HundredMegapixelPass PlanHundredMegapixelsAt(const Architecture& arch, int tile, DType dtype,
                                             const DeviceProfile& device) {
  HundredMegapixelPass pass;
  pass.plan = PlanTiles(kHundredMegapixelSide, kHundredMegapixelSide, tile, SeamFreeOverlap(arch),
                        SpatialMultiple(arch));
  pass.seconds = TiledLatencySeconds(arch, pass.plan, dtype, device);
  return pass;
}

HundredMegapixelPass PlanHundredMegapixels(const Architecture& arch, std::int64_t budget_bytes,
                                           DType dtype, const DeviceProfile& device) {
  const int m = SpatialMultiple(arch);
  const int image = (kHundredMegapixelSide + m - 1) / m * m;  // padded: one tile at most
  const int tile =
      std::min(image, MaxTiledOutputSide(arch, budget_bytes, SeamFreeOverlap(arch), dtype, device));
  if (tile == 0) return {};
  return PlanHundredMegapixelsAt(arch, tile, dtype, device);
}

}  // namespace peaknas::search
