// Training steps per second and inference latency of the C++ worker (worker::UNet trained by
// worker::Trainer::Step, timed by worker::MeasureLatency) against the same U-Net trained and
// timed by plain PyTorch in Python (bench/unet_peer.py on Debian's python3-torch, the same
// LibTorch 1.13), measured side by side in one run.
//
// For each architecture the benchmark starts the peer as a child process (`--serve`: it builds
// the net, then answers one command per line), and:
//   1. checks that both sides compute the same thing: the C++ net's initial parameters (by
//      name), an input, its eval-mode output, the losses of three training steps and the
//      parameters after them go to the peer (torch::pickle_save, read by torch.load), which
//      loads the parameters into its own net, repeats the work and reports the largest
//      differences; the run fails if they disagree beyond rounding (in practice they agree
//      bit for bit: same kernels, same data, same thread count);
//   2. warms both sides up, then times training in alternating rounds (C++ then PyTorch, then
//      PyTorch then C++, ...), each round the same number of steps on the same batch shape,
//      sized from the warm-up to last about --round-seconds; the figure is the median round;
//   3. times inference the same way: per round, the median of --latency-runs forward passes of
//      one tile batch (worker::MeasureLatency on the C++ side, eval mode and no-grad timing on
//      the peer), alternating; the figure is the median round.
// Alternating keeps the drift of a shared, noisy machine on both sides alike. Both sides use
// the same intra-op thread count (--threads, by default LibTorch's own default). The C++ side
// runs as peaknas-worker does, with the counting CPU allocator (worker/counting_allocator.h)
// installed before any tensor exists.
//
// Both sides run the same ATen kernels, so what can differ is the work around them: the
// interpreter, and how the process's allocator hands memory back and forth with the kernel.
// The per-round line therefore also gives minor page faults per training step and per
// inference pass on each side. The C++ side keeps freed heap memory as peaknas-worker does
// (worker/malloc_tuning.h); --glibc-default-heap leaves that out to show what it is worth.
//
// The target (the issue's): the C++ worker trains at least 1.0x as fast as PyTorch. The table
// gives, per architecture, steps/s on both sides and their ratio, and inference ms per
// megapixel on both sides and the speed ratio (PyTorch ms / C++ ms, so > 1 means C++ is
// faster); a summary line gives the geometric means (the figure held against the target) and
// the worst architecture. The exit status is non-zero when the peer fails or disagrees, not
// when the target is missed. docs/benchmarks.md has the command and the figures.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/subprocess.h"
#include "search/architecture.h"
#include "search/cost_model.h"
#include "worker/counting_allocator.h"
#include "worker/malloc_tuning.h"
#include "worker/measure.h"
#include "worker/trainer.h"
#include "worker/unet.h"

extern char** environ;

namespace peaknas::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr double kTargetRatio = 1.0;  // C++ training steps/s ÷ PyTorch's
// The check's tolerances: the two sides run the same ATen kernels on the same data, so they
// agree to rounding (in practice exactly).
constexpr double kForwardTolerance = 1e-4;  // max |y_C++ − y_PyTorch|
constexpr double kLossTolerance = 1e-5;     // max |loss_C++ − loss_PyTorch| over the steps
constexpr double kWeightTolerance = 1e-4;   // max |w_C++ − w_PyTorch| after them (lr is 1e-3)

#ifndef PEAKNAS_SOURCE_DIR
#define PEAKNAS_SOURCE_DIR "."
#endif

struct BenchOptions {
  std::vector<std::string> archs;  // files or inline JSON; empty: the default set
  int batch = 8;                   // training batch (DESIGN.md default)
  int patch = 64;                  // training patch side (DESIGN.md default)
  int tile = 256;                  // inference tile side (DESIGN.md default)
  int tile_batch = 1;              // inference batch (DESIGN.md default)
  int threads = 0;                 // intra-op threads on both sides; 0: LibTorch's default
  int rounds = 9;                  // timed rounds per side, for training and for inference
  double round_seconds = 1.0;      // target length of one training round
  int warmup = 3;                  // untimed training steps per side before the first round
  int latency_runs = 3;            // timed forward passes per inference round
  int latency_warmup = 2;          // untimed passes per side before the first inference round
  int schedule_steps = 1000;       // length of the cosine learning-rate schedule (k wraps)
  std::uint64_t seed = 0;
  bool no_check = false;      // skip comparing outputs and losses before timing
  bool default_heap = false;  // C++ side: glibc's default heap, not the worker's settings
  bool no_counter = false;    // leave out the counting CPU allocator that peaknas-worker installs
  bool quick = false;
  std::string python = "/usr/bin/python3";
  std::string peer = PEAKNAS_SOURCE_DIR "/bench/unet_peer.py";
};

struct NamedArch {
  std::string label;
  search::Architecture arch;
};

// The default set: small to DESIGN.md's example, covering every skip, upsample, downsample and
// activation kind.
const std::vector<std::pair<std::string, std::string>>& DefaultArchs() {
  static const std::vector<std::pair<std::string, std::string>> archs = {
      {"s3-concat-transposed-strided",
       R"({"levels":3,"widths":[16,32,64],"enc_blocks":[1,1,1],"dec_blocks":[1,1],)"
       R"("skip":"concat","upsample":"transposed","downsample":"strided","activation":"relu"})"},
      {"m4-add-bilinear-maxpool",
       R"({"levels":4,"widths":[16,32,64,128],"enc_blocks":[1,1,2,2],"dec_blocks":[1,1,1],)"
       R"("skip":"add","upsample":"bilinear","downsample":"maxpool","activation":"lrelu"})"},
      {"s3-concat-pixelshuffle-maxpool",
       R"({"levels":3,"widths":[32,64,128],"enc_blocks":[1,2,2],"dec_blocks":[1,1],)"
       R"("skip":"concat","upsample":"pixelshuffle","downsample":"maxpool","activation":"lrelu"})"},
      {"examples/unet4.json", PEAKNAS_SOURCE_DIR "/examples/unet4.json"},
  };
  return archs;
}

StatusOr<NamedArch> LoadArch(const std::string& label, const std::string& source) {
  std::string text = source;
  if (source.find('{') == std::string::npos) {
    std::ifstream in(source);
    if (!in) return Status::NotFound("--arch: cannot read '" + source + "'");
    std::stringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  StatusOr<search::Architecture> arch = search::ParseArchitecture(text);
  if (!arch.ok())
    return Status::InvalidArgument("--arch " + label + ": " + arch.status().message());
  return NamedArch{label, *arch};
}

std::string Format(const char* format, auto... args) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, format, args...);
  return buffer;
}

// Page faults of this process so far that needed no I/O: mostly fresh pages that the kernel
// zeroes because the allocator returned memory to it and asked for it again.
std::int64_t MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Wall clock, CPU time of the whole process and minor page faults, read together.
struct Usage {
  Clock::time_point wall;
  double cpu_seconds = 0;
  std::int64_t minor_faults = 0;

  static Usage Now() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return t.tv_sec + 1e-6 * t.tv_usec; };
    return {Clock::now(), seconds(usage.ru_utime) + seconds(usage.ru_stime), usage.ru_minflt};
  }
};

// One timed round of training steps, as both sides report it.
struct Round {
  double steps_per_s = 0;      // steps ÷ wall seconds
  double steps_per_cpu_s = 0;  // steps ÷ CPU seconds of the process (blind to time-sharing)
  double faults_per_step = 0;

  static Round Of(const Usage& a, const Usage& b, int steps) {
    const double wall = std::chrono::duration<double>(b.wall - a.wall).count();
    return {steps / std::max(wall, 1e-9), steps / std::max(b.cpu_seconds - a.cpu_seconds, 1e-9),
            static_cast<double>(b.minor_faults - a.minor_faults) / std::max(steps, 1)};
  }
  static Round FromPeer(const json& reply) {
    return {reply["steps_per_s"].get<double>(), reply["steps_per_cpu_s"].get<double>(),
            reply["faults_per_step"].get<double>()};
  }
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double GeometricMean(const std::vector<double>& v) {
  double log_sum = 0;
  for (double x : v) log_sum += std::log(x);
  return std::exp(log_sum / static_cast<double>(v.size()));
}

// The Python peer as a child process: commands on its stdin, one JSON line back per command on
// its stdout; its stderr is ours, so a traceback shows.
class PeerProcess {
 public:
  PeerProcess() = default;
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;
  ~PeerProcess() { Stop(); }

  // Starts `argv[0]` with `argv` and waits for its {"ready": ...} line, returned.
  StatusOr<json> Start(const std::vector<std::string>& argv) {
    int to_child[2];
    int from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
      return Status::Internal("pipe failed");
    }
    base::SpawnOptions options;
    options.stdin_fd = to_child[0];
    options.stdout_fd = from_child[1];
    const StatusOr<pid_t> pid = base::Spawn(argv, options);
    close(to_child[0]);
    close(from_child[1]);
    if (!pid.ok()) {
      close(to_child[1]);
      close(from_child[0]);
      pid_ = -1;
      return pid.status();
    }
    pid_ = *pid;
    in_ = fdopen(to_child[1], "w");
    out_ = fdopen(from_child[0], "r");
    PEAKNAS_ASSIGN_OR_RETURN(json ready, ReadReply("start"));
    if (!ready.contains("ready"))
      return Status::Internal("peer: unexpected first line " + ready.dump());
    return ready["ready"];
  }

  // Sends one command line and returns the peer's JSON reply. A reply with "error" is an error.
  StatusOr<json> Call(const std::string& command) {
    if (in_ == nullptr) return Status::FailedPrecondition("peer is not running");
    if (std::fprintf(in_, "%s\n", command.c_str()) < 0 || std::fflush(in_) != 0) {
      return Status::Internal("peer: cannot send '" + command + "'" + ExitDescription());
    }
    PEAKNAS_ASSIGN_OR_RETURN(json reply, ReadReply(command));
    if (reply.contains("error")) {
      return Status::Internal("peer: " + command + ": " + reply["error"].get<std::string>());
    }
    return reply;
  }

  void Stop() {
    if (in_ != nullptr) {
      std::fprintf(in_, "quit\n");
      std::fclose(in_);
      in_ = nullptr;
    }
    if (out_ != nullptr) {
      std::fclose(out_);
      out_ = nullptr;
    }
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

 private:
  StatusOr<json> ReadReply(const std::string& command) {
    char* line = nullptr;
    std::size_t capacity = 0;
    const ssize_t n = getline(&line, &capacity, out_);
    std::string text = n > 0 ? std::string(line, static_cast<std::size_t>(n)) : std::string();
    std::free(line);
    if (n <= 0) return Status::Internal("peer: no reply to '" + command + "'" + ExitDescription());
    try {
      return json::parse(text);
    } catch (const json::exception& e) {
      return Status::Internal("peer: reply to '" + command + "' is not JSON: " + text);
    }
  }

  // ", it exited with status N" once the peer is gone; empty while it runs.
  std::string ExitDescription() {
    if (pid_ <= 0) return "";
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return "";
    pid_ = -1;
    if (WIFEXITED(status)) return ", it exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return ", it was killed by signal " + std::to_string(WTERMSIG(status));
    return "";
  }

  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

// The C++ side of one architecture: the worker's net and trainer, and fixed random batches.
class WorkerSide {
 public:
  WorkerSide(const search::Architecture& arch, const BenchOptions& o)
      : options_(o), trainer_(worker::UNet(arch), TrainOptionsFor(o), torch::kCPU) {
    noisy_ = torch::rand({o.batch, 3, o.patch, o.patch});
    clean_ = torch::rand({o.batch, 3, o.patch, o.patch});
  }

  static worker::TrainOptions TrainOptionsFor(const BenchOptions& o) {
    worker::TrainOptions t;
    t.steps = o.schedule_steps;
    return t;
  }

  std::int64_t Params() {
    std::int64_t n = 0;
    for (const torch::Tensor& p : trainer_.net()->parameters()) n += p.numel();
    return n;
  }

  // `n` training steps.
  Round Train(int n) {
    const Usage before = Usage::Now();
    for (int i = 0; i < n; ++i) {
      trainer_.Step(noisy_, clean_, k_);
      k_ = (k_ + 1) % options_.schedule_steps;
    }
    return Round::Of(before, Usage::Now(), n);
  }

  // MeasureLatency, and the page faults per pass of the whole call (warm-up included: they
  // cannot be told apart from outside; the peer counts the timed passes only).
  std::pair<worker::LatencyMeasurement, double> Infer(int warmup, int runs) {
    const std::int64_t faults = MinorFaults();
    const worker::LatencyMeasurement m = worker::MeasureLatency(
        trainer_.net(), {.batch = options_.tile_batch, .size = options_.tile}, torch::kCPU, warmup,
        runs);
    return {m, static_cast<double>(MinorFaults() - faults) / (warmup + runs)};
  }

 private:
  const BenchOptions& options_;
  worker::Trainer trainer_;
  torch::Tensor noisy_;
  torch::Tensor clean_;
  int k_ = 0;
};

// Step 1 of the header: writes what the peer needs to repeat the C++ net's work to `path`.
Status WriteCheck(const search::Architecture& arch, const std::filesystem::path& path) {
  constexpr int kSteps = 3;
  worker::UNet net(arch);
  c10::Dict<std::string, at::Tensor> initial;
  for (const auto& item : net->named_parameters()) initial.insert(item.key(), item.value().clone());
  // A small batch keeps the check cheap; any valid shape exercises every layer.
  const int size = std::max(16, 2 * search::SpatialMultiple(arch));
  const torch::Tensor x = torch::rand({2, 3, size, size});
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    net->eval();
    y = net->forward(x);
  }
  const torch::Tensor noisy = torch::rand({2, 3, size, size});
  const torch::Tensor clean = torch::rand({2, 3, size, size});
  worker::TrainOptions train;
  train.steps = kSteps;
  worker::Trainer trainer(net, train, torch::kCPU);
  std::vector<double> losses;
  for (int k = 0; k < kSteps; ++k) losses.push_back(trainer.Step(noisy, clean, k));
  c10::Dict<std::string, at::Tensor> trained;
  for (const auto& item : net->named_parameters()) trained.insert(item.key(), item.value().clone());

  c10::impl::GenericDict data(c10::StringType::get(), c10::AnyType::get());
  data.insert("params", initial);
  data.insert("x", x);
  data.insert("y", y);
  data.insert("noisy", noisy);
  data.insert("clean", clean);
  data.insert("losses", torch::tensor(losses, torch::kFloat64));
  data.insert("schedule_steps", torch::tensor(int64_t{kSteps}));
  data.insert("trained", trained);
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(data));
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return Status::Internal("cannot write " + path.string());
  return Status::Ok();
}

std::vector<double> Field(const std::vector<Round>& rounds, double Round::*field) {
  std::vector<double> v;
  for (const Round& r : rounds) v.push_back(r.*field);
  return v;
}

// Per architecture: every round of both sides, in order (round r of C++ ran next to round r of
// PyTorch).
struct Row {
  std::string label;
  std::int64_t params = 0;
  int steps_per_round = 0;
  std::vector<Round> cpp_train, py_train;
  std::vector<double> cpp_ms_per_mp, py_ms_per_mp;  // inference, per round
  std::vector<double> cpp_faults_per_pass, py_faults_per_pass;

  // Medians over the rounds of each side.
  double CppStepsPerS() const { return Median(Field(cpp_train, &Round::steps_per_s)); }
  double PyStepsPerS() const { return Median(Field(py_train, &Round::steps_per_s)); }
  // Medians over the rounds of the ratio of the two sides' rounds run next to each other: drift
  // slower than a pair of rounds cancels.
  double TrainRatio() const { return PairedRatio(&Round::steps_per_s); }
  double TrainCpuRatio() const { return PairedRatio(&Round::steps_per_cpu_s); }
  double InferSpeedRatio() const {  // PyTorch ms ÷ C++ ms
    std::vector<double> r;
    for (std::size_t i = 0; i < cpp_ms_per_mp.size(); ++i) {
      r.push_back(py_ms_per_mp[i] / cpp_ms_per_mp[i]);
    }
    return Median(r);
  }

 private:
  double PairedRatio(double Round::*field) const {
    std::vector<double> r;
    for (std::size_t i = 0; i < cpp_train.size(); ++i) {
      r.push_back(cpp_train[i].*field / py_train[i].*field);
    }
    return Median(r);
  }
};

StatusOr<Row> Measure(const NamedArch& named, const BenchOptions& o) {
  Row row;
  row.label = named.label;
  torch::manual_seed(o.seed);

  PeerProcess peer;
  std::vector<std::string> argv = {o.python,
                                   o.peer,
                                   "--serve",
                                   "--arch",
                                   search::ToCanonicalJson(named.arch),
                                   "--seed",
                                   std::to_string(o.seed)};
  for (const auto& [flag, value] : {std::pair{"--batch", o.batch},
                                    {"--patch", o.patch},
                                    {"--tile", o.tile},
                                    {"--tile-batch", o.tile_batch},
                                    {"--threads", o.threads},
                                    {"--schedule-steps", o.schedule_steps}}) {
    argv.push_back(flag);
    argv.push_back(std::to_string(value));
  }
  PEAKNAS_ASSIGN_OR_RETURN(json ready, peer.Start(argv));

  WorkerSide cpp(named.arch, o);
  row.params = cpp.Params();
  if (ready["params"].get<std::int64_t>() != row.params) {
    return Status::Internal(named.label + ": the peer's net has " + ready["params"].dump() +
                            " parameters, the worker's " + std::to_string(row.params));
  }
  if (ready["threads"].get<int>() != o.threads) {
    return Status::Internal(named.label + ": the peer runs " + ready["threads"].dump() +
                            " threads, not " + std::to_string(o.threads));
  }

  if (!o.no_check) {
    const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                       ("peaknas_peer_check_" + std::to_string(getpid()) + ".pt");
    PEAKNAS_RETURN_IF_ERROR(WriteCheck(named.arch, path));
    StatusOr<json> check = peer.Call("check " + path.string());
    std::filesystem::remove(path);
    if (!check.ok()) return check.status();
    const double forward = (*check)["forward_max_abs_diff"].get<double>();
    const double loss = (*check)["loss_max_abs_diff"].get<double>();
    const double weights = (*check)["trained_weight_max_abs_diff"].get<double>();
    std::cout << Format(
                     "  check: forward max |diff| %.3g, loss max |diff| %.3g, weights after "
                     "3 steps max |diff| %.3g\n",
                     forward, loss, weights)
              << std::flush;
    if (!(forward <= kForwardTolerance) || !(loss <= kLossTolerance) ||
        !(weights <= kWeightTolerance)) {
      return Status::Internal(named.label + ": the peer computes something else (forward " +
                              std::to_string(forward) + ", loss " + std::to_string(loss) +
                              ", weights " + std::to_string(weights) + ")");
    }
  }

  // Warm-up; its C++ timing sizes the rounds.
  const Round warm = cpp.Train(o.warmup);
  PEAKNAS_RETURN_IF_ERROR(peer.Call("train " + std::to_string(o.warmup)).status());
  row.steps_per_round =
      std::clamp(static_cast<int>(std::lround(o.round_seconds * warm.steps_per_s)), 1, 10000);
  const std::string train_command = "train " + std::to_string(row.steps_per_round);

  // Even rounds run C++ first, odd rounds PyTorch first.
  for (int r = 0; r < o.rounds; ++r) {
    for (int side = 0; side < 2; ++side) {
      if ((side == 0) == (r % 2 == 0)) {
        row.cpp_train.push_back(cpp.Train(row.steps_per_round));
      } else {
        PEAKNAS_ASSIGN_OR_RETURN(json reply, peer.Call(train_command));
        row.py_train.push_back(Round::FromPeer(reply));
      }
    }
  }

  for (int r = 0; r < o.rounds; ++r) {
    const int warmup = r == 0 ? o.latency_warmup : 1;
    for (int side = 0; side < 2; ++side) {
      if ((side == 0) == (r % 2 == 0)) {
        const auto [m, faults] = cpp.Infer(warmup, o.latency_runs);
        row.cpp_ms_per_mp.push_back(m.ms_per_megapixel);
        row.cpp_faults_per_pass.push_back(faults);
      } else {
        PEAKNAS_ASSIGN_OR_RETURN(json reply, peer.Call("infer " + std::to_string(o.latency_runs) +
                                                       " " + std::to_string(warmup)));
        row.py_ms_per_mp.push_back(reply["ms_per_megapixel"].get<double>());
        row.py_faults_per_pass.push_back(reply["faults_per_pass"].get<double>());
      }
    }
  }
  peer.Stop();
  return row;
}

void PrintTable(const std::vector<Row>& rows, const BenchOptions& o) {
  std::cout << Format(
      "\nTraining: batch %d, patch %d, fp32, Adam, %d alternating rounds per side.\n"
      "Inference: batch %d, tile %d, fp32, %d alternating rounds per side, each the median of %d "
      "passes.\n",
      o.batch, o.patch, o.rounds, o.tile_batch, o.tile, o.rounds, o.latency_runs);
  std::cout << Format("\n%-30s %8s %5s | %8s %8s %7s %7s | %9s %9s %7s\n", "architecture", "params",
                      "steps", "C++ st/s", "PyT st/s", "C++/PyT", "CPU", "C++ ms/MP", "PyT ms/MP",
                      "speed");
  for (const Row& r : rows) {
    std::cout << Format("%-30s %8lld %5d | %8.3f %8.3f %6.3fx %6.3fx | %9.1f %9.1f %6.3fx\n",
                        r.label.c_str(), static_cast<long long>(r.params), r.steps_per_round,
                        r.CppStepsPerS(), r.PyStepsPerS(), r.TrainRatio(), r.TrainCpuRatio(),
                        Median(r.cpp_ms_per_mp), Median(r.py_ms_per_mp), r.InferSpeedRatio());
  }
  std::cout
      << "\nsteps: training steps per round. st/s and ms/MP: medians over each side's rounds.\n"
         "C++/PyT: median over rounds of C++ steps/s ÷ PyTorch steps/s in the round run next to "
         "it;\nCPU: the same with steps per CPU-second of each process (blind to time-sharing "
         "with other\nprocesses); speed: the same for inference, PyTorch ms ÷ C++ ms (> 1: C++ is "
         "faster).\n\nPer round, C++ | PyTorch: steps/s lowest–highest; minor page faults per "
         "training step and per\ninference pass (medians):\n";
  for (const Row& r : rows) {
    const auto spread = [](const std::vector<double>& v) {
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      return Format("%.3g–%.3g", *lo, *hi);
    };
    std::cout << Format(
        "  %-30s %11s | %-11s  faults/step %6.0f | %-6.0f  faults/pass %5.0f | %.0f\n",
        r.label.c_str(), spread(Field(r.cpp_train, &Round::steps_per_s)).c_str(),
        spread(Field(r.py_train, &Round::steps_per_s)).c_str(),
        Median(Field(r.cpp_train, &Round::faults_per_step)),
        Median(Field(r.py_train, &Round::faults_per_step)), Median(r.cpp_faults_per_pass),
        Median(r.py_faults_per_pass));
  }
  std::vector<double> train, cpu, infer;
  for (const Row& r : rows) {
    train.push_back(r.TrainRatio());
    cpu.push_back(r.TrainCpuRatio());
    infer.push_back(r.InferSpeedRatio());
  }
  const double train_ratio = GeometricMean(train);
  std::cout << Format(
                   "\nTraining speed C++/PyTorch: geometric mean %.3fx (architectures %.3fx to "
                   "%.3fx; by CPU time %.3fx); target >= %.1fx: %s\n",
                   train_ratio, *std::min_element(train.begin(), train.end()),
                   *std::max_element(train.begin(), train.end()), GeometricMean(cpu), kTargetRatio,
                   train_ratio >= kTargetRatio ? "meets it" : "BELOW target")
            << Format("Inference speed C++/PyTorch: geometric mean %.3fx\n", GeometricMean(infer));
}

int Main(int argc, char** argv) {
  BenchOptions o;
  const int default_threads = at::get_num_threads();
  CLI::App app(
      "Training steps/s and inference latency of the C++ worker against plain PyTorch "
      "(bench/unet_peer.py), measured side by side in alternating rounds.",
      "worker_train_bench");
  app.add_option("--arch", o.archs,
                 "architecture JSON file or inline JSON (repeatable); default: a set of four "
                 "ending with examples/unet4.json");
  app.add_option("--batch", o.batch, "training batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--patch", o.patch, "training patch side")
      ->capture_default_str()
      ->check(CLI::Range(8, 1024));
  app.add_option("--tile", o.tile, "inference tile side")
      ->capture_default_str()
      ->check(CLI::Range(8, 4096));
  app.add_option("--tile-batch", o.tile_batch, "inference batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--threads", o.threads,
                 "intra-op threads on both sides (default: LibTorch's default here, " +
                     std::to_string(default_threads) + ")")
      ->check(CLI::Range(1, 1024));
  app.add_option("--rounds", o.rounds, "timed rounds per side")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--round-seconds", o.round_seconds, "target length of one training round")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--warmup", o.warmup, "untimed training steps per side first")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--latency-runs", o.latency_runs, "timed forward passes per inference round")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--seed", o.seed, "seed of weights and inputs")->capture_default_str();
  app.add_flag("--no-check", o.no_check, "skip the check that both sides compute the same");
  app.add_flag("--glibc-default-heap", o.default_heap,
               "C++ side: leave glibc's heap settings as they are instead of keeping freed heap "
               "memory as peaknas-worker does (worker/malloc_tuning.h), to see what the "
               "settings are worth");
  app.add_flag("--no-counting-allocator", o.no_counter,
               "C++ side: do not install the counting CPU allocator that peaknas-worker installs "
               "at startup (to see what counting costs)");
  app.add_flag("--quick", o.quick, "a short run: 3 rounds of about 0.5 s, 2 warm-up steps");
  app.add_option("--python", o.python, "the interpreter with torch")->capture_default_str();
  app.add_option("--peer", o.peer, "path of unet_peer.py")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.quick) {
    o.rounds = std::min(o.rounds, 3);
    o.round_seconds = std::min(o.round_seconds, 0.5);
    o.warmup = std::min(o.warmup, 2);
  }
  // As peaknas-worker's main() does, before any tensor exists: the worker trains with every CPU
  // allocation counted.
  if (!o.no_counter) worker::CpuAllocationCounter::Install();
  // A peer that dies makes writes to its pipe fail with EPIPE (reported), not kill this process.
  signal(SIGPIPE, SIG_IGN);
  if (o.threads == 0) o.threads = default_threads;
  at::set_num_threads(o.threads);
  if (!o.default_heap) {
    if (Status s = worker::KeepFreedHeapMemory(); !s.ok()) {
      std::cerr << "worker_train_bench: " << s.message() << '\n';
      return 1;
    }
  }
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) < o.threads) {
    std::cerr << "worker_train_bench: warning: " << o.threads << " threads on " << CPU_COUNT(&cpus)
              << " CPU(s) allowed; the figures will mostly measure waiting\n";
  }

  std::vector<NamedArch> archs;
  if (o.archs.empty()) {
    for (const auto& [label, source] : DefaultArchs()) {
      StatusOr<NamedArch> a = LoadArch(label, source);
      if (!a.ok()) {
        std::cerr << "worker_train_bench: " << a.status().message() << '\n';
        return 1;
      }
      archs.push_back(*a);
    }
  } else {
    for (std::size_t i = 0; i < o.archs.size(); ++i) {
      const std::string& source = o.archs[i];
      const std::string label = source.find('{') == std::string::npos
                                    ? std::filesystem::path(source).filename().string()
                                    : "arch" + std::to_string(i + 1);
      StatusOr<NamedArch> a = LoadArch(label, source);
      if (!a.ok()) {
        std::cerr << "worker_train_bench: " << a.status().message() << '\n';
        return 1;
      }
      archs.push_back(*a);
    }
  }
  for (const NamedArch& a : archs) {
    const int m = search::SpatialMultiple(a.arch);
    if (o.patch % m != 0 || o.tile % m != 0) {
      std::cerr << "worker_train_bench: " << a.label << ": patch and tile must be multiples of "
                << m << '\n';
      return 1;
    }
  }

  std::cout << "LibTorch " << TORCH_VERSION << ", " << o.threads << " intra-op thread(s) on both"
            << " sides; peer: " << o.python << ' ' << o.peer << '\n';
  if (o.default_heap) std::cout << "--glibc-default-heap: the C++ side returns freed heap memory\n";
  if (o.no_counter) std::cout << "--no-counting-allocator: C++ allocations are not counted\n";
  std::vector<Row> rows;
  for (const NamedArch& a : archs) {
    std::cout << a.label << ": " << search::ToCanonicalJson(a.arch) << '\n' << std::flush;
    StatusOr<Row> row = Measure(a, o);
    if (!row.ok()) {
      std::cerr << "worker_train_bench: " << row.status().message() << '\n';
      return 1;
    }
    std::cout << Format(
                     "  train: C++ %.3f steps/s, PyTorch %.3f steps/s (%d steps a round), ratio "
                     "%.3fx\n  infer: C++ %.1f ms/MP, PyTorch %.1f ms/MP, speed ratio %.3fx\n",
                     row->CppStepsPerS(), row->PyStepsPerS(), row->steps_per_round,
                     row->TrainRatio(), Median(row->cpp_ms_per_mp), Median(row->py_ms_per_mp),
                     row->InferSpeedRatio())
              << std::flush;
    rows.push_back(*row);
  }
  PrintTable(rows, o);
  return 0;
}

}  // namespace
}  // namespace peaknas::bench

int main(int argc, char** argv) {
  try {
    return peaknas::bench::Main(argc, argv);
  } catch (const std::exception& e) {  // c10::Error included: a bug, not bad input
    std::cerr << "worker_train_bench: internal error: " << e.what() << '\n';
    return 1;
  }
}
