// TorchScript export: the scripted module must compute what the C++ UNet computes, for every
// kind of skip, upsampling, downsampling and activation at 1 to 4 levels, after a round trip
// through the file — in LibTorch (torch::jit::load) and in PyTorch (torch.jit.load under
// Debian's /usr/bin/python3, by tests/worker/load_torchscript.py).
#include "worker/export.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "search/architecture.h"
#include "search/cost_model.h"
#include "worker/data/test_util.h"
#include "worker/unet.h"

#ifndef PEAKNAS_SOURCE_DIR
#error "PEAKNAS_SOURCE_DIR must name the repository root (for tests/worker/load_torchscript.py)"
#endif
#ifndef PEAKNAS_TORCH_PYTHON
#define PEAKNAS_TORCH_PYTHON "/usr/bin/python3"
#endif

namespace peaknas::worker {
namespace {

namespace fs = std::filesystem;
using data::testing::ScopedTempDir;
using search::ActivationKind;
using search::Architecture;
using search::DownsampleKind;
using search::SkipKind;
using search::UpsampleKind;

Architecture Arch(std::vector<int> widths, std::vector<int> enc, std::vector<int> dec,
                  SkipKind skip, UpsampleKind up, DownsampleKind down, ActivationKind act) {
  auto a = search::MakeArchitecture(widths, enc, dec, skip, up, down, act);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(search::Validate(*a).ok()) << search::Validate(*a).ToString();
  return *a;
}

// Every skip, upsample, downsample and activation kind appears, at 1, 2, 3 and 4 levels.
std::vector<Architecture> Architectures() {
  return {
      Arch({8}, {1}, {}, SkipKind::kConcat, UpsampleKind::kTransposed, DownsampleKind::kStrided,
           ActivationKind::kRelu),
      Arch({8, 16}, {1, 2}, {1}, SkipKind::kAdd, UpsampleKind::kBilinear, DownsampleKind::kMaxPool,
           ActivationKind::kLeakyRelu),
      Arch({8, 16}, {1, 1}, {2}, SkipKind::kConcat, UpsampleKind::kTransposed,
           DownsampleKind::kStrided, ActivationKind::kRelu),
      Arch({8, 16, 24}, {1, 1, 2}, {2, 1}, SkipKind::kConcat, UpsampleKind::kPixelShuffle,
           DownsampleKind::kStrided, ActivationKind::kRelu),
      Arch({16, 16, 32}, {2, 1, 1}, {1, 1}, SkipKind::kConcat, UpsampleKind::kBilinear,
           DownsampleKind::kMaxPool, ActivationKind::kLeakyRelu),
      Arch({8, 16, 16, 32}, {1, 1, 1, 1}, {1, 1, 1}, SkipKind::kAdd, UpsampleKind::kTransposed,
           DownsampleKind::kMaxPool, ActivationKind::kLeakyRelu),
      Arch({8, 8, 16, 16}, {1, 1, 1, 1}, {1, 2, 1}, SkipKind::kAdd, UpsampleKind::kPixelShuffle,
           DownsampleKind::kStrided, ActivationKind::kRelu),
  };
}

// Random weights (LibTorch's default initialization) and a head that is not the identity.
UNet RandomNet(const Architecture& arch, std::uint64_t seed) {
  torch::manual_seed(seed);
  UNet net(arch);
  net->eval();
  return net;
}

torch::Tensor Forward(UNet& net, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return net->forward(x);
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(TorchScriptExport, LibTorchLoadsAndMatchesTheModuleForEveryKind) {
  ScopedTempDir dir;
  int index = 0;
  for (const Architecture& arch : Architectures()) {
    SCOPED_TRACE(search::ToCanonicalJson(arch));
    UNet net = RandomNet(arch, 100 + index);
    const std::string path = dir.Sub("unet" + std::to_string(index++) + ".pt");
    const Status status = ExportTorchScript(net, path);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_FALSE(fs::exists(path + ".partial"));

    torch::jit::Module loaded = torch::jit::load(path);
    loaded.eval();
    EXPECT_EQ(loaded.attr(kArchitectureAttribute).toStringRef(), search::ToCanonicalJson(arch));
    std::int64_t exported_params = 0;
    for (const torch::Tensor& p : loaded.parameters()) exported_params += p.numel();
    EXPECT_EQ(exported_params, search::Parameters(arch));

    // Non-square, batch 2, and a range beyond [0, 1] so that no activation is trivially idle.
    const torch::Tensor x = torch::rand({2, 3, 16, 24}) * 1.5 - 0.25;
    const torch::Tensor want = Forward(net, x);
    torch::NoGradGuard no_grad;
    const torch::Tensor got = loaded.forward({x}).toTensor();
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT(MaxAbsDiff(got, want), 1e-5);
    // The script is not the identity: the residual's input differs from the output.
    EXPECT_GT(MaxAbsDiff(got, x), 1e-3);
  }
}

TEST(TorchScriptExport, ExportsTheCurrentWeightsNotTheInitialOnes) {
  const Architecture arch = Architectures()[3];
  UNet net = RandomNet(arch, 7);
  torch::jit::Module before = ToTorchScript(net);
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : net->parameters()) p.mul_(0.5).add_(0.01);
  }
  torch::jit::Module after = ToTorchScript(net);
  const torch::Tensor x = torch::rand({1, 3, 8, 8});
  torch::NoGradGuard no_grad;
  const torch::Tensor want = net->forward(x);
  EXPECT_LT(MaxAbsDiff(after.forward({x}).toTensor(), want), 1e-5);
  EXPECT_GT(MaxAbsDiff(before.forward({x}).toTensor(), want), 1e-3);
}

TEST(TorchScriptExport, SourceFollowsTheSchedule) {
  const Architecture arch = Architectures()[4];  // concat, bilinear, maxpool, lrelu, 3 levels
  const std::string src = TorchScriptSource(arch);
  EXPECT_NE(src.find("torch.leaky_relu_(h, 0.2)"), std::string::npos) << src;
  EXPECT_EQ(src.find("torch.relu_"), std::string::npos) << src;
  EXPECT_NE(src.find("torch.max_pool2d"), std::string::npos) << src;
  EXPECT_NE(src.find("torch.upsample_bilinear2d"), std::string::npos) << src;
  EXPECT_NE(src.find("torch.cat([u, s1], 1)"), std::string::npos) << src;
  EXPECT_NE(src.find("torch.cat([u, s0], 1)"), std::string::npos) << src;
  EXPECT_NE(src.find("return y.add_(x)"), std::string::npos) << src;
  // Decoder of level 1 runs before level 0's.
  EXPECT_LT(src.find("l1_dec0"), src.find("l0_dec0")) << src;
}

TEST(TorchScriptExport, UnwritablePathIsAnErrorNamingIt) {
  ScopedTempDir dir;
  UNet net = RandomNet(Architectures()[0], 1);
  const std::string missing = dir.Sub("no/such/dir/unet.pt");
  Status status = ExportTorchScript(net, missing);
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_NE(status.message().find(missing), std::string::npos) << status.message();

  status = ExportTorchScript(net, dir.path().string());  // a directory
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(dir.path().string()), std::string::npos) << status.message();

  fs::create_directory(dir.Sub("ro"));
  fs::permissions(dir.Sub("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  const std::string read_only = dir.Sub("ro/unet.pt");
  status = ExportTorchScript(net, read_only);
  // root ignores permissions; everyone else must get the error.
  if (::geteuid() != 0) {
    EXPECT_EQ(status.code(), StatusCode::kInternal);
    EXPECT_NE(status.message().find(read_only), std::string::npos) << status.message();
  }
  fs::permissions(dir.Sub("ro"), fs::perms::owner_all);

  EXPECT_EQ(ExportTorchScript(net, "").code(), StatusCode::kInvalidArgument);
}

// Runs `command`, returning its exit status and stdout.
int RunCommand(const std::string& command, std::string* out) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out->append(buffer, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void WriteFloats(const fs::path& path, const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(c.data_ptr<float>()),
            static_cast<std::streamsize>(c.numel() * sizeof(float)));
}

torch::Tensor ReadFloats(const fs::path& path, std::vector<std::int64_t> shape) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  if (static_cast<std::int64_t>(bytes.size()) != t.numel() * 4) {
    ADD_FAILURE() << path << ": " << bytes.size() << " bytes, expected " << t.numel() * 4;
    return t;
  }
  std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
  return t;
}

TEST(TorchScriptExport, PyTorchLoadsAndMatchesTheModule) {
  const std::string python = PEAKNAS_TORCH_PYTHON;
  const std::string script = std::string(PEAKNAS_SOURCE_DIR) + "/tests/worker/load_torchscript.py";
  std::string probe;
  ASSERT_EQ(RunCommand(python + " -c 'import torch' 2>&1", &probe), 0)
      << python << " cannot import torch (install Debian's python3-torch; scripts/bootstrap "
      << "does): " << probe;

  ScopedTempDir dir;
  const std::vector<Architecture> archs = {Architectures()[1], Architectures()[3],
                                           Architectures()[5]};
  int index = 0;
  for (const Architecture& arch : archs) {
    SCOPED_TRACE(search::ToCanonicalJson(arch));
    UNet net = RandomNet(arch, 200 + index);
    const std::string n = std::to_string(index);
    const fs::path model = dir.path() / ("unet" + n + ".pt");
    const fs::path input = dir.path() / ("x" + n + ".f32");
    const fs::path output = dir.path() / ("y" + n + ".f32");
    ++index;
    ASSERT_TRUE(ExportTorchScript(net, model.string()).ok());
    const torch::Tensor x = torch::rand({2, 3, 16, 24});
    WriteFloats(input, x);

    std::string out;
    const std::string command = python + " " + script + " " + model.string() + " " +
                                input.string() + " " + output.string() + " 2 16 24 2>&1";
    ASSERT_EQ(RunCommand(command, &out), 0) << command << "\n" << out;
    const nlohmann::json report = nlohmann::json::parse(out);
    EXPECT_EQ(report["architecture"], search::ToCanonicalJson(arch));
    EXPECT_EQ(report["shape"], nlohmann::json({2, 3, 16, 24}));
    EXPECT_EQ(report["parameters"], search::Parameters(arch));

    const torch::Tensor got = ReadFloats(output, {2, 3, 16, 24});
    EXPECT_LT(MaxAbsDiff(got, Forward(net, x)), 1e-5);
  }
}

}  // namespace
}  // namespace peaknas::worker
