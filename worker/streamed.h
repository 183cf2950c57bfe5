// Streamed tiled inference: an image of any size read in bands, run tile by tile and written
// in bands, with only a few rows of the image in memory (`peaknas-worker denoise`).
//
// Three stages run at once: a reader thread decodes rows into a queue that holds one tile row
// ahead; the calling thread assembles each tile's window from the rows it needs (the tile row
// with `overlap` rows above and below) in options.layout (a channels-last window takes the
// rows' interleaved samples as they are), runs the network and quantizes the window's valid
// centre, in whichever dense layout the network answers in, into output rows; a writer thread
// encodes them from a queue of one tile row. Decoding and encoding so overlap with the network's
// compute.
//
// The windows are those of ForwardTiled (worker/tiled.h) on the image padded at the right and
// bottom to a multiple of `multiple` by repeating its last column and row, so the output equals
// ForwardTiled's, cropped to the image, sample for sample; with overlap >= the receptive-field
// radius, it equals the whole-image output.
//
// Thread-safety: one call at a time per `forward`; the reader and writer are used only by
// the call's own threads while it runs.
#ifndef PEAKNAS_WORKER_STREAMED_H_
#define PEAKNAS_WORKER_STREAMED_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>

#include "base/status.h"
#include "worker/data/raster.h"
#include "worker/tiled.h"

namespace peaknas::worker {

// Bytes of image rows a stream over an image `width` pixels wide holds at most, besides the
// network's window (which InferencePeakBytes counts) and the codecs' own buffers:
//   input:  the rows of one window (tile + 2 x overlap) and the reader's lead (tile rows) and
//           the row it is decoding;
//   output: the rows of one tile row being filled, the writer's queue (tile rows) and the row
//           it is encoding;
// at 2 bytes per sample, and one window's output copied to the host when the network runs on
// a device.
std::int64_t StreamBufferBytes(int width, const TiledOptions& options, bool device_is_cpu);

struct StreamStats {
  int tiles = 0;
  double seconds = 0;             // the whole stream
  double network_seconds = 0;     // inside `forward`
  double read_wait_seconds = 0;   // the compute stage waiting for decoded rows
  double write_wait_seconds = 0;  // the compute stage waiting for the writer
  // Rows allocated beyond StreamBufferBytes's count (0: the bound held).
  int extra_rows = 0;
};

// Denoises `reader`'s image into `writer` (same width and height; any depths: samples are
// scaled by their max_value) with `forward` ([1, 3, h, w] float in [0, 1] on `device` ->
// the same shape). Calls writer.Finish() on success. The reader's or writer's error, or
// INVALID_ARGUMENT for options off the grid or mismatched sizes, or INTERNAL with LibTorch's
// message when `forward` throws.
StatusOr<StreamStats> DenoiseStream(
    const std::function<torch::Tensor(const torch::Tensor&)>& forward, data::RasterReader& reader,
    data::RasterWriter& writer, const TiledOptions& options, const torch::Device& device,
    const TileProgress& progress = {});

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_STREAMED_H_
