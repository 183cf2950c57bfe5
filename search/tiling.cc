#include "search/tiling.h"

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

}  // namespace peaknas::search
