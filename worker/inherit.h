// Weight inheritance: a child U-Net starts from a trained parent's weights, keeping in every
// channel group (search/inheritance.h) the parent's most important channels when it is
// narrower, and every parent channel plus new ones when it is wider; appended blocks start as
// the identity, so a wider or deeper child computes exactly what its parent did.
//
// The plan of what each group touches comes from search::PlanInheritance (pure, no Torch);
// this file only scores channels, picks the indices and slices the tensors.
//
// Importance of channel c of a group (Li et al., "Pruning Filters for Efficient ConvNets",
// 2017): the L1 norm of the weights that produce it (for a pixel-shuffle producer, its block
// of 4 output filters; with an add-skip, both producers' filters). kGroupL1 adds the L1 norm
// of the weight columns that read it. The child keeps the top child_width channels, in their
// parent order (ties go to the lower index), so a child as wide as its parent is the parent
// exactly, and keeping the top k of channels sorted by importance is the same as OFA's "sort,
// then keep the first k".
//
// Thread-safety: functions of their arguments; the modules must not be used meanwhile.
#ifndef PEAKNAS_WORKER_INHERIT_H_
#define PEAKNAS_WORKER_INHERIT_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "search/architecture.h"
#include "search/inheritance.h"
#include "worker/unet.h"

namespace peaknas::worker {

enum class Importance {
  kL1,       // L1 of the producing filters (the default)
  kGroupL1,  // plus L1 of the consuming weight columns
};

// "l1", "group-l1".
std::string_view Name(Importance importance);
StatusOr<Importance> ParseImportance(std::string_view name, std::string_view field);

// Parameters by search::ParameterName ("l1_enc0.weight"), as CPU float32 tensors.
using NamedTensors = std::map<std::string, torch::Tensor>;

// A trained net's parameters (copies, detached).
NamedTensors ParametersOf(UNet& net);

// A model written by ExportTorchScript (worker/export.h): its architecture and parameters.
struct LoadedModel {
  search::Architecture arch;
  NamedTensors parameters;
};
// NOT_FOUND when the file is missing; INVALID_ARGUMENT naming the file when it is not a
// peaknas U-Net (no architecture attribute, a parameter missing or of the wrong shape).
StatusOr<LoadedModel> LoadModel(const std::string& path);

// A kept "index" that is a new channel of a wider child, not one of the parent's.
inline constexpr std::int64_t kNew = -1;

// For each group of `plan`, the child's channels as parent indices (size child_width): the
// kept ones ascending, then kNew for each channel a wider child adds. Precondition: `parent`
// holds every parameter of plan.parent.
std::vector<std::vector<std::int64_t>> SelectChannels(const search::InheritancePlan& plan,
                                                      const NamedTensors& parent,
                                                      Importance importance);

// Every parameter of plan.child: the parent's tensor with each grouped dimension gathered to
// the kept channels (`kept` as SelectChannels returns); at a new channel, the output filters
// come from `fresh` (the child's own initialization, same names and shapes as the child's)
// and the input columns are zero; identity blocks are Dirac kernels with zero biases.
NamedTensors SliceParameters(const search::InheritancePlan& plan, const NamedTensors& parent,
                             const std::vector<std::vector<std::int64_t>>& kept,
                             const NamedTensors& fresh);

// Copies `parameters` into `net` (same names and shapes); INTERNAL naming the parameter when
// one is missing or misshapen.
Status AssignParameters(const NamedTensors& parameters, UNet& net);

// The whole inheritance: plan, select, slice, assign. INVALID_ARGUMENT when `child` cannot
// inherit from the model's architecture (search::PlanInheritance's message, prefixed with
// `field`).
Status InheritWeights(const LoadedModel& parent, Importance importance, UNet& child,
                      std::string_view field = "parent");

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_INHERIT_H_
