#include "worker/export.h"

#include <c10/util/Exception.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace peaknas::worker {
namespace {

namespace fs = std::filesystem;
using search::ActivationKind;
using search::Architecture;
using search::DownsampleKind;
using search::SkipKind;
using search::UpsampleKind;

// Builds the body of `forward`, one statement per line, indented for the method.
class SourceWriter {
 public:
  void Line(const std::string& statement) { source_ += "    " + statement + "\n"; }
  std::string Take() { return std::move(source_); }

 private:
  std::string source_;
};

// `torch.conv2d(INPUT, self.M_weight, self.M_bias, [S, S], [P, P], [1, 1], 1)`: the call that
// torch::nn::Conv2d's forward makes (zero padding mode).
std::string Conv(const std::string& input, const std::string& module, int stride, int padding) {
  const std::string s = std::to_string(stride), p = std::to_string(padding);
  return "torch.conv2d(" + input + ", self." + module + "_weight, self." + module + "_bias, [" + s +
         ", " + s + "], [" + p + ", " + p + "], [1, 1], 1)";
}

// In place, as UNetImpl::Activate: relu_ or leaky_relu_ with slope 0.2.
std::string Activate(const Architecture& arch, const std::string& h) {
  return arch.activation == ActivationKind::kRelu ? h + " = torch.relu_(" + h + ")"
                                                  : h + " = torch.leaky_relu_(" + h + ", 0.2)";
}

// A one-letter prefix and a number, "l1_" / "s0". (Appended, not "l" + std::to_string(i): GCC 12
// warns about that form with a false -Wrestrict.)
std::string Numbered(char prefix, int i, std::string_view suffix = "") {
  std::string s(1, prefix);
  s += std::to_string(i);
  s += suffix;
  return s;
}

std::string Level(int i) { return Numbered('l', i, "_"); }
std::string Skip(int i) { return Numbered('s', i); }

// The first line of a c10::Error's message, without the C++ backtrace.
std::string FirstLine(const std::string& message) {
  const std::size_t end = message.find('\n');
  return end == std::string::npos ? message : message.substr(0, end);
}

}  // namespace

std::string TorchScriptSource(const Architecture& arch) {
  const int L = arch.levels;
  SourceWriter w;
  w.Line("h = " + Conv("x", "stem", 1, 1));
  w.Line(Activate(arch, "h"));
  for (int i = 0; i < L; ++i) {
    const std::string p = Level(i);
    for (int b = 0; b < arch.enc_blocks[i]; ++b) {
      w.Line("h = " + Conv("h", p + "enc" + std::to_string(b), 1, 1));
      w.Line(Activate(arch, "h"));
    }
    if (i == L - 1) break;
    w.Line(Skip(i) + " = h");
    if (arch.downsample == DownsampleKind::kStrided) {
      w.Line("h = " + Conv("h", p + "down", 2, 0));
    } else {
      w.Line("h = " +
             Conv("torch.max_pool2d(h, [2, 2], [2, 2], [0, 0], [1, 1], False)", p + "down", 1, 0));
    }
  }
  for (int i = L - 2; i >= 0; --i) {
    const std::string p = Level(i);
    const std::string skip = Skip(i);
    switch (arch.upsample) {
      case UpsampleKind::kTransposed:
        // torch::nn::ConvTranspose2d's call, output_padding 0.
        w.Line("u = torch.conv_transpose2d(h, self." + p + "up_weight, self." + p +
               "up_bias, [2, 2], [0, 0], [0, 0], 1, [1, 1])");
        break;
      case UpsampleKind::kBilinear:
        // F::interpolate(scale 2, bilinear, align_corners false) calls exactly this.
        w.Line("b = torch.upsample_bilinear2d(h, [h.size(2) * 2, h.size(3) * 2], False, 2.0, 2.0)");
        w.Line("u = " + Conv("b", p + "up", 1, 0));
        break;
      case UpsampleKind::kPixelShuffle:
        w.Line("u = torch.pixel_shuffle(" + Conv("h", p + "up", 1, 0) + ", 2)");
        break;
    }
    if (arch.skip == SkipKind::kConcat) {
      w.Line("h = torch.cat([u, " + skip + "], 1)");
    } else {
      w.Line("h = u.add_(" + skip + ")");
    }
    for (int b = 0; b < arch.dec_blocks[i]; ++b) {
      w.Line("h = " + Conv("h", p + "dec" + std::to_string(b), 1, 1));
      w.Line(Activate(arch, "h"));
    }
  }
  w.Line("y = " + Conv("h", "head", 1, 1));
  w.Line("return y.add_(x)");
  return "def forward(self, x: Tensor) -> Tensor:\n" + w.Take();
}

torch::jit::Module ToTorchScript(UNet& net) {
  torch::NoGradGuard no_grad;
  torch::jit::Module module{c10::QualifiedName(kTorchScriptClassName)};
  for (const auto& item : net->named_parameters()) {
    std::string name = item.key();
    for (char& c : name) {
      if (c == '.') c = '_';
    }
    torch::Tensor value = item.value().detach().to(torch::kCPU, torch::kFloat32).clone();
    module.register_parameter(name, value, /*is_buffer=*/false);
  }
  module.register_attribute(kArchitectureAttribute, c10::StringType::get(),
                            search::ToCanonicalJson(net->architecture()));
  module.define(TorchScriptSource(net->architecture()));
  module.eval();
  return module;
}

Status ExportTorchScript(UNet& net, const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("export: empty path");
  const fs::path target(path);
  std::error_code ec;
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec)) {
    return Status::Internal(path + ": cannot write: directory " + parent.string() +
                            " does not exist");
  }
  if (fs::is_directory(target, ec)) {
    return Status::Internal(path + ": cannot write: is a directory");
  }
  const torch::jit::Module module = ToTorchScript(net);
  const fs::path partial = target.string() + ".partial";
  try {
    module.save(partial.string());
  } catch (const c10::Error& e) {
    fs::remove(partial, ec);
    return Status::Internal(path + ": cannot write: " + FirstLine(e.what_without_backtrace()));
  }
  fs::rename(partial, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(partial, ignored);
    return Status::Internal(path + ": cannot write: " + ec.message());
  }
  return Status::Ok();
}

}  // namespace peaknas::worker
