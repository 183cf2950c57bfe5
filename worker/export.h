// Export of a trained U-Net as TorchScript: one file that plain LibTorch (torch::jit::load) and
// PyTorch (torch.jit.load) load and run without peaknas.
//
// LibTorch's C++ API has no tracer for torch::nn modules, so the script is generated from the
// architecture: a torch::jit::Module of class "peaknas.UNet" holds every parameter of the net
// (named like UNetImpl's parameters with '.' replaced by '_': "l1_enc0.weight" becomes
// "l1_enc0_weight"), a string attribute "architecture" with the canonical architecture JSON
// (search::ToCanonicalJson), and a `forward(x)` compiled from TorchScript source that runs the
// same op schedule as UNetImpl::forward (DESIGN.md, "The U-Net family"): the same aten ops with
// the same arguments, so the outputs agree with the C++ module's to float rounding.
//
// The exported parameters are float32 copies on the CPU, whatever the net's device; a loader
// moves the module where it wants it (module.to(device)).
//
// Thread-safety: functions of their arguments; `net` must not be trained or moved while it is
// exported.
#ifndef PEAKNAS_WORKER_EXPORT_H_
#define PEAKNAS_WORKER_EXPORT_H_

#include <torch/script.h>

#include <string>

#include "base/status.h"
#include "search/architecture.h"
#include "worker/unet.h"

namespace peaknas::worker {

// The class name and the attribute that holds the canonical architecture JSON.
inline constexpr char kTorchScriptClassName[] = "peaknas.UNet";
inline constexpr char kArchitectureAttribute[] = "architecture";

// The TorchScript source of `forward` for `arch` (the method that ToTorchScript defines).
// Precondition: search::Validate(arch).ok().
std::string TorchScriptSource(const search::Architecture& arch);

// The scripted module for `net`, with copies of its current parameters. Throws c10::Error only
// on a broken invariant (the generated source failing to compile).
torch::jit::Module ToTorchScript(UNet& net);

// Writes ToTorchScript(net) to `path` (a zip archive, the format of torch.jit.save). The file
// is written beside `path` under a temporary name and renamed, so a reader never sees half a
// model. INVALID_ARGUMENT for an empty path; INTERNAL naming the path when the file cannot be
// written (missing directory, no permission, disk full).
Status ExportTorchScript(UNet& net, const std::string& path);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_EXPORT_H_
