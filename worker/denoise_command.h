// `peaknas-worker denoise`: applies a trained model (a TorchScript file from `peaknas export`,
// or a worker's --export) to an image of any size within a memory budget, tile by tile
// (worker/tiled.h), seam-free by construction. With --job and --trial the model is the trial's,
// fetched from the coordinator into a temporary file (checked against its SHA-256) for the run.
//
//   peaknas-worker denoise --model MODEL.pt | --job J --trial T [--coordinator ADDR]
//                          --in IMAGE --out IMAGE.png|.tif --budget SIZE
//                          [--tile auto|T] [--overlap auto|N] [--bits auto|8|16]
//                          [--calibration FILE] [--device D] [--threads N]
//
// The image is read, denoised and written in bands (worker/streamed.h): PNG, TIFF or JPEG in,
// PNG or TIFF out, 8 or 16 bits. The network is the C++ U-Net the cost model describes, with the
// model's weights: the tile is the largest whose window's predicted inference peak fits what
// the budget leaves once the stream's rows and the codecs' buffers are counted
// (StreamBufferBytes, which grows with the tile and the image's width, never its height);
// with --calibration the budget is the whole process's (the calibration's inference fit gives
// the process peak of a window, the stream's buffers come on top). The overlap defaults to
// search::SeamFreeOverlap; a smaller one is allowed and shows seams. The image is padded at
// its right and bottom edges (replicated) to the network's spatial multiple and cropped back.
// The network's tensors go in one arena of huge pages the size of a window's predicted peak
// (huge_page_blocks.h), and other large blocks are mapped on their own (malloc_tuning.h), so
// that the process's resident set stays within what the budget counts and repeats from run to
// run (a kept heap scatters by tens of MiB); --allocator heap keeps freed memory in glibc's
// heap instead, without that bound. Progress goes to stderr; one JSON object to stdout with what
// was done, the predictions and the process's measured peak (`process_peak_bytes`, CPU).
//
// Thread-safety: one RunDenoise per process at a time.
#ifndef PEAKNAS_WORKER_DENOISE_COMMAND_H_
#define PEAKNAS_WORKER_DENOISE_COMMAND_H_

#include <ostream>
#include <string>

#include "base/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::worker {

struct DenoiseOptions {
  std::string model;  // TorchScript file with the "architecture" attribute
  // Or a trial's model fetched from a coordinator (JobService.GetArtifact) for the run.
  std::string job;
  std::string trial;
  std::string coordinator;  // HOST:PORT; empty: $PEAKNAS_COORDINATOR, else 127.0.0.1:50051
  std::string token_file;   // the client's security, as `peaknas` takes it (proto/channel.h)
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string in;                    // PNG, TIFF or JPEG
  std::string out;                   // PNG or TIFF, by the extension
  std::string budget;                // SIZE: what the whole run may hold
  std::string tile = "auto";         // auto | output tile side
  std::string overlap = "auto";      // auto | context pixels on each side
  std::string bits = "auto";         // auto (the input's depth) | 8 | 16: the output's samples
  std::string allocator = "mapped";  // mapped | heap (see --help)
  std::string layout = "auto";       // auto | channels-last | contiguous (see --help)
  std::string device = "cpu";
  int threads = 0;  // LibTorch intra-op threads; 0: LibTorch's default
  // A device calibration (`peaknas calibration --format json`): the budget is then the whole
  // process's, the window's peak converted through the calibration's inference fit.
  std::string calibration;
};

CLI::App* AddDenoiseCommand(CLI::App& root, DenoiseOptions& options);

// INVALID_ARGUMENT naming the flag for bad input (a tile off the grid, a budget that cannot
// hold the image or any window); NOT_FOUND for a missing file.
Status RunDenoise(const DenoiseOptions& options, std::ostream& out, std::ostream& log);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_DENOISE_COMMAND_H_
