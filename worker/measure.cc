#include "worker/measure.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "base/proc.h"
#include "worker/counting_allocator.h"
#include "worker/malloc_tuning.h"

#if PEAKNAS_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <ATen/Parallel.h>

namespace peaknas::worker {
namespace {

// Allocator counters of one device: bytes live now, the peak since the last reset, and (CUDA)
// the peak of reserved bytes.
struct Counters {
  std::int64_t live = 0;
  std::int64_t peak = 0;
  std::int64_t reserved_peak = 0;
};

void Synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

void ResetPeak(torch::Device device) {
  Synchronize(device);
  if (device.is_cpu()) {
    CpuAllocationCounter::Install();
    CpuAllocationCounter::ResetPeak();
    return;
  }
#if PEAKNAS_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#endif
}

Counters Read(torch::Device device) {
  Synchronize(device);
  if (device.is_cpu()) {
    return {CpuAllocationCounter::LiveBytes(), CpuAllocationCounter::PeakBytes(), 0};
  }
#if PEAKNAS_WITH_CUDA
  using c10::cuda::CUDACachingAllocator::StatType;
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
  const auto& allocated = stats.allocated_bytes[static_cast<std::size_t>(StatType::AGGREGATE)];
  const auto& reserved = stats.reserved_bytes[static_cast<std::size_t>(StatType::AGGREGATE)];
  return {allocated.current, allocated.peak, reserved.peak};
#else
  return {};
#endif
}

// Runs `pass` and returns its peak as `resident` + growth over what was live before it. The
// process figure starts from a reset high-water mark (see PeakMeasurement).
template <typename Pass>
PeakMeasurement MeasurePass(torch::Device device, std::int64_t resident, Pass&& pass) {
  const bool process_peak_reset = device.is_cpu() && ResetProcessPeakRss();
  ResetPeak(device);
  const Counters before = Read(device);
  pass();
  const Counters after = Read(device);
  PeakMeasurement m;
  m.allocator_peak_bytes = resident + (after.peak - before.live);
  if (device.is_cpu()) {
    m.process_peak_bytes = process_peak_reset ? ProcessPeakRssBytes() : 0;
  } else {
    m.process_peak_bytes = after.reserved_peak;
  }
  return m;
}

// A uniform random input of `shape` in `layout` (torch::rand takes no memory format).
torch::Tensor RandomInput(c10::IntArrayRef shape, torch::Device device,
                          torch::MemoryFormat layout) {
  return torch::empty(shape, torch::TensorOptions().device(device).memory_format(layout))
      .uniform_();
}

}  // namespace

search::DeviceProfile DeviceProfileFor(torch::Device device) {
  if (device.is_cpu()) {
    search::DeviceProfile p = search::DefaultDeviceProfile();
    p.cpu_conv.intra_op_threads = at::get_num_threads();
    return p;
  }
  const search::DeviceProfile* first_cuda = nullptr;
  std::string name;
#if PEAKNAS_WITH_CUDA
  name = at::cuda::getDeviceProperties(device.has_index() ? device.index() : 0)->name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
#endif
  for (const search::DeviceProfile& p : search::DeviceProfiles()) {
    if (p.kind != search::DeviceKind::kCuda) continue;
    if (first_cuda == nullptr) first_cuda = &p;
    if (!name.empty() && name.find(p.name) != std::string::npos) return p;
  }
  return first_cuda != nullptr ? *first_cuda : search::DefaultDeviceProfile();
}

std::int64_t TensorBytes(const std::vector<torch::Tensor>& tensors) {
  std::int64_t bytes = 0;
  for (const torch::Tensor& t : tensors) {
    if (t.defined()) bytes += t.numel() * static_cast<std::int64_t>(t.element_size());
  }
  return bytes;
}

bool ResetProcessPeakRss() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return clear_refs.good();
}

std::int64_t ProcessPeakRssBytes() {
  return std::max<std::int64_t>(base::ProcKibField("/proc/self/status", "VmHWM"), 0);
}

torch::MemoryFormat InferenceLayout(const search::Architecture& arch, torch::Device device) {
  return device.is_cpu() && arch.upsample != search::UpsampleKind::kTransposed
             ? torch::MemoryFormat::ChannelsLast
             : torch::MemoryFormat::Contiguous;
}

const char* LayoutName(torch::MemoryFormat layout) {
  return layout == torch::MemoryFormat::ChannelsLast ? "channels-last" : "contiguous";
}

PeakMeasurement MeasureInferencePeak(UNet& net, const search::Shape& tile, torch::Device device,
                                     torch::MemoryFormat layout) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  const std::int64_t weights = TensorBytes(net->parameters());
  const auto pass = [&] {
    torch::Tensor x = RandomInput({tile.batch, 3, tile.size, tile.size}, device, layout);
    torch::Tensor y = net->forward(x);
  };
  std::optional<MappedLargeBlocks> mapped;
  if (device.is_cpu()) mapped.emplace();
  pass();  // warm-up
  const PeakMeasurement m = MeasurePass(device, weights, pass);
  net->train(was_training);
  return m;
}

PeakMeasurement MeasureTrainStepPeak(Trainer& trainer, const search::Shape& patch,
                                     torch::Device device, int warmup) {
  const auto options = torch::TensorOptions().device(device);
  const std::vector<std::int64_t> shape = {patch.batch, 3, patch.size, patch.size};
  std::optional<MappedLargeBlocks> mapped;
  if (device.is_cpu()) mapped.emplace();
  for (int k = 0; k < warmup; ++k) {
    trainer.Step(torch::rand(shape, options), torch::rand(shape, options), k);
  }
  // Resident between steps: weights, their gradients and Adam's state, read off the tensors.
  std::vector<torch::Tensor> resident = trainer.net()->parameters();
  for (const torch::Tensor& p : trainer.net()->parameters()) resident.push_back(p.grad());
  for (const auto& [key, state] : trainer.optimizer().state()) {
    const auto& adam = static_cast<const torch::optim::AdamParamState&>(*state);
    resident.push_back(adam.exp_avg());
    resident.push_back(adam.exp_avg_sq());
    resident.push_back(adam.max_exp_avg_sq());
  }
  return MeasurePass(device, TensorBytes(resident), [&] {
    torch::Tensor noisy = torch::rand(shape, options);
    torch::Tensor clean = torch::rand(shape, options);
    trainer.Step(noisy, clean, warmup);
  });
}

LatencyMeasurement MeasureLatency(UNet& net, const search::Shape& tile, torch::Device device,
                                  int warmup, int runs, torch::MemoryFormat layout) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  const torch::Tensor x = RandomInput({tile.batch, 3, tile.size, tile.size}, device, layout);
  for (int k = 0; k < warmup; ++k) {
    net->forward(x);
    Synchronize(device);
  }
  std::vector<double> ms;
  ms.reserve(runs);
  for (int k = 0; k < std::max(runs, 1); ++k) {
    const auto start = std::chrono::steady_clock::now();
    net->forward(x);
    Synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  net->train(was_training);
  std::sort(ms.begin(), ms.end());
  const std::size_t n = ms.size();
  LatencyMeasurement m;
  m.runs = static_cast<int>(n);
  m.ms_per_tile = n % 2 == 1 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  const double megapixels = static_cast<double>(tile.batch) * tile.size * tile.size / 1e6;
  m.ms_per_megapixel = m.ms_per_tile / megapixels;
  return m;
}

TiledPassMeasurement MeasureTiledPass(UNet& net, const search::TilePlan& plan, torch::Device device,
                                      torch::MemoryFormat layout) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  TiledPassMeasurement m;
  for (const search::WindowShape& w : plan.windows) {
    const torch::Tensor x = RandomInput({1, 3, w.height, w.width}, device, layout);
    if (w.count > 1) {
      net->forward(x);
      Synchronize(device);
    }
    const auto start = std::chrono::steady_clock::now();
    net->forward(x);
    Synchronize(device);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    m.seconds += seconds * static_cast<double>(w.count);
    ++m.shapes_timed;
  }
  net->train(was_training);
  return m;
}

std::int64_t DeviceMemoryBytes(torch::Device device) {
  if (device.is_cpu()) {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<std::int64_t>(pages) * page : 0;
  }
#if PEAKNAS_WITH_CUDA
  if (device.is_cuda()) {
    const auto* properties = at::cuda::getDeviceProperties(device.has_index() ? device.index() : 0);
    return static_cast<std::int64_t>(properties->totalGlobalMem);
  }
#endif
  return 0;
}

}  // namespace peaknas::worker
