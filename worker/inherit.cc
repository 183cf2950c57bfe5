#include "worker/inherit.h"

#include <c10/util/Exception.h>
#include <torch/script.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <string>
#include <system_error>
#include <utility>

#include "worker/export.h"

namespace peaknas::worker {
namespace {

std::string FirstLine(const std::string& message) {
  const std::size_t end = message.find('\n');
  return end == std::string::npos ? message : message.substr(0, end);
}

// Sum of |t| over every dimension but `dim`: one value per index along `dim`.
torch::Tensor L1Along(const torch::Tensor& t, int dim) {
  std::vector<std::int64_t> others;
  for (std::int64_t d = 0; d < t.dim(); ++d) {
    if (d != dim) others.push_back(d);
  }
  torch::Tensor a = t.abs().to(torch::kFloat64);
  return others.empty() ? a : a.sum(others);
}

// The parent indices of one group's member along its dim, for the kept channels (kNew for a
// new one).
void AppendIndices(const search::GroupMember& m, const std::vector<std::int64_t>& kept,
                   std::vector<std::int64_t>& out) {
  for (std::int64_t c : kept) {
    for (int k = 0; k < m.block; ++k) out.push_back(c == kNew ? kNew : m.offset + m.block * c + k);
  }
}

// A conv that starts as the identity on `width` channels: weight[c][c] is a centred Dirac
// kernel, the bias is zero.
void SetIdentity(const std::string& name, std::int64_t width, NamedTensors& out) {
  torch::Tensor w = torch::zeros({width, width, 3, 3}, torch::kFloat32);
  torch::nn::init::dirac_(w);
  out[name + ".weight"] = w;
  out[name + ".bias"] = torch::zeros({width}, torch::kFloat32);
}

}  // namespace

std::string_view Name(Importance importance) {
  return importance == Importance::kL1 ? "l1" : "group-l1";
}

StatusOr<Importance> ParseImportance(std::string_view name, std::string_view field) {
  if (name == "l1") return Importance::kL1;
  if (name == "group-l1") return Importance::kGroupL1;
  return Status::InvalidArgument(std::string(field) + ": \"" + std::string(name) +
                                 "\" is not one of l1, group-l1");
}

NamedTensors ParametersOf(UNet& net) {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  for (const auto& item : net->named_parameters()) {
    out[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat32).clone();
  }
  return out;
}

StatusOr<LoadedModel> LoadModel(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound(path + ": no such model file");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(
        path + ": not a TorchScript model: " + FirstLine(e.what_without_backtrace()));
  }
  if (!module.hasattr(kArchitectureAttribute)) {
    return Status::InvalidArgument(path + ": not a peaknas U-Net (no \"" +
                                   std::string(kArchitectureAttribute) + "\" attribute)");
  }
  const c10::IValue attr = module.attr(kArchitectureAttribute);
  if (!attr.isString()) {
    return Status::InvalidArgument(path + ": its \"architecture\" attribute is not a string");
  }
  StatusOr<search::Architecture> arch = search::ParseArchitecture(attr.toStringRef());
  if (!arch.ok()) {
    return Status::InvalidArgument(path + ": its architecture: " + arch.status().message());
  }
  std::map<std::string, torch::Tensor> scripted;
  for (const auto& p : module.named_parameters(/*recurse=*/false)) scripted[p.name] = p.value;
  LoadedModel model;
  model.arch = *arch;
  for (const search::ParameterShape& p : search::ParameterShapes(*arch)) {
    const std::string scripted_name = search::ModuleName(p.conv) + (p.bias ? "_bias" : "_weight");
    const auto it = scripted.find(scripted_name);
    if (it == scripted.end()) {
      return Status::InvalidArgument(path + ": parameter " + scripted_name + " is missing");
    }
    if (it->second.sizes() != c10::IntArrayRef(p.shape)) {
      return Status::InvalidArgument(path + ": parameter " + scripted_name + " has shape " +
                                     c10::str(it->second.sizes()) + ", its architecture says " +
                                     c10::str(p.shape));
    }
    model.parameters[p.name] = it->second.detach().to(torch::kFloat32).clone();
  }
  return model;
}

std::vector<std::vector<std::int64_t>> SelectChannels(const search::InheritancePlan& plan,
                                                      const NamedTensors& parent,
                                                      Importance importance) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<std::int64_t>> kept;
  kept.reserve(plan.groups.size());
  for (const search::ChannelGroup& g : plan.groups) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(g.parent_width));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    if (g.child_width > g.parent_width) {
      order.resize(static_cast<std::size_t>(g.child_width), kNew);
    } else if (g.child_width < g.parent_width) {
      torch::Tensor score = torch::zeros({g.parent_width}, torch::kFloat64);
      const auto add = [&](const search::GroupMember& m) {
        const torch::Tensor per_index = L1Along(parent.at(m.tensor), m.dim);
        score += per_index.narrow(0, m.offset, static_cast<std::int64_t>(m.block) * g.parent_width)
                     .reshape({g.parent_width, m.block})
                     .sum(1);
      };
      for (const search::GroupMember& m : g.producers) {
        if (parent.at(m.tensor).dim() > 1) add(m);  // filters, not biases (Li et al.)
      }
      if (importance == Importance::kGroupL1) {
        for (const search::GroupMember& m : g.consumers) add(m);
      }
      const auto s = score.accessor<double, 1>();
      std::stable_sort(order.begin(), order.end(),
                       [&](std::int64_t a, std::int64_t b) { return s[a] > s[b]; });
      order.resize(static_cast<std::size_t>(g.child_width));
      std::sort(order.begin(), order.end());
    }
    kept.push_back(std::move(order));
  }
  return kept;
}

NamedTensors SliceParameters(const search::InheritancePlan& plan, const NamedTensors& parent,
                             const std::vector<std::vector<std::int64_t>>& kept,
                             const NamedTensors& fresh) {
  torch::NoGradGuard no_grad;
  // (tensor, dim) -> its members with the group each belongs to, in offset order.
  struct Use {
    const search::GroupMember* member;
    std::size_t group;
    bool producer;
  };
  std::map<std::pair<std::string, int>, std::vector<Use>> uses;
  NamedTensors out;
  for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const search::ChannelGroup& g = plan.groups[gi];
    for (const search::GroupMember& m : g.producers) {
      uses[{m.tensor, m.dim}].push_back({&m, gi, true});
    }
    for (const search::GroupMember& m : g.consumers) {
      uses[{m.tensor, m.dim}].push_back({&m, gi, false});
    }
    for (const std::string& block : g.identity_blocks) SetIdentity(block, g.child_width, out);
  }
  for (const search::ParameterShape& p : search::ParameterShapes(plan.child)) {
    if (out.contains(p.name)) continue;  // an identity block
    torch::Tensor t = parent.at(p.name);
    // New channels: fresh filters where the tensor produces them, zero columns where it reads
    // them (filled after the gathers, producers first; a gather returns a tensor of its own, so
    // the parent's is never written).
    std::vector<std::pair<int, torch::Tensor>> fill_fresh, fill_zero;
    for (int dim = 0; dim < t.dim(); ++dim) {
      auto it = uses.find({p.name, dim});
      if (it == uses.end()) continue;
      std::vector<Use>& list = it->second;
      std::sort(list.begin(), list.end(),
                [](const Use& a, const Use& b) { return a.member->offset < b.member->offset; });
      std::vector<std::int64_t> index;
      for (const Use& u : list) AppendIndices(*u.member, kept[u.group], index);
      std::vector<std::int64_t> fresh_at;
      for (std::size_t k = 0; k < index.size(); ++k) {
        if (index[k] != kNew) continue;
        fresh_at.push_back(static_cast<std::int64_t>(k));
        index[k] = 0;
      }
      t = t.index_select(dim, torch::tensor(index, torch::kInt64));
      if (fresh_at.empty()) continue;
      (list.front().producer ? fill_fresh : fill_zero)
          .emplace_back(dim, torch::tensor(fresh_at, torch::kInt64));
    }
    for (const auto& [dim, at] : fill_fresh) {
      t.index_copy_(dim, at, fresh.at(p.name).index_select(dim, at));
    }
    for (const auto& [dim, at] : fill_zero) t.index_fill_(dim, at, 0.0);
    out[p.name] = t.contiguous();
  }
  return out;
}

Status AssignParameters(const NamedTensors& parameters, UNet& net) {
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_parameters()) {
    const auto it = parameters.find(item.key());
    if (it == parameters.end()) {
      return Status::Internal("inheritance: no value for parameter " + item.key());
    }
    if (it->second.sizes() != item.value().sizes()) {
      return Status::Internal("inheritance: parameter " + item.key() + " is " +
                              c10::str(it->second.sizes()) + ", the net needs " +
                              c10::str(item.value().sizes()));
    }
    item.value().copy_(it->second);
  }
  return Status::Ok();
}

Status InheritWeights(const LoadedModel& parent, Importance importance, UNet& child,
                      std::string_view field) {
  StatusOr<search::InheritancePlan> plan =
      search::PlanInheritance(parent.arch, child->architecture());
  if (!plan.ok()) {
    return Status::InvalidArgument(std::string(field) + ": cannot inherit from " +
                                   search::ToCanonicalJson(parent.arch) + ": " +
                                   plan.status().message());
  }
  const auto kept = SelectChannels(*plan, parent.parameters, importance);
  return AssignParameters(SliceParameters(*plan, parent.parameters, kept, ParametersOf(child)),
                          child);
}

}  // namespace peaknas::worker
