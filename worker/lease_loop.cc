#include "worker/lease_loop.h"

#include <ATen/Parallel.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "base/proc.h"
#include "base/sha256.h"
#include "base/subprocess.h"
#include "peaknas/v1/peaknas.grpc.pb.h"
#include "proto/channel.h"
#include "proto/convert.h"
#include "search/units.h"
#include "worker/measure.h"
#include "worker/once_command.h"
#include "worker/precision.h"
#include "worker/trial.h"
#include "worker/trial_process.h"

namespace peaknas::worker {
namespace {

namespace v1 = peaknas::v1;
using Clock = std::chrono::steady_clock;

constexpr double kBackoffMin = 0.5;
constexpr double kBackoffMax = 10.0;
constexpr double kHeartbeatMax = 2.0;
constexpr double kReportRetrySeconds = 120.0;
constexpr double kCallSeconds = 10.0;  // deadline of every unary call but the long poll
constexpr std::size_t kUploadChunkBytes = 1 << 20;
constexpr double kUploadSeconds = 300.0;      // deadline of one UploadArtifact stream
constexpr std::size_t kParentCacheFiles = 8;  // parents' models kept for later children
constexpr double kPackedPollSeconds = 2.0;    // the long poll's wait while trials run

// PEAKNAS_FAULT_HOLD_BYTES=TRIAL_ID:BYTES (lease_loop.h): the trial and the bytes; none when
// unset or malformed.
std::pair<std::string, std::int64_t> FaultHoldBytes() {
  const char* value = std::getenv("PEAKNAS_FAULT_HOLD_BYTES");
  if (value == nullptr) return {};
  const std::string text(value);
  const std::size_t colon = text.find(':');
  if (colon == std::string::npos) return {};
  return {text.substr(0, colon), std::atoll(text.c_str() + colon + 1)};
}

// Log lines from several threads, one at a time.
class Logger {
 public:
  explicit Logger(std::ostream& out) : out_(out) {}
  void operator()(const std::string& line) {
    std::lock_guard lock(mu_);
    out_ << "peaknas-worker serve: " << line << std::endl;
  }

 private:
  std::mutex mu_;
  std::ostream& out_;
};

// SIGTERM / SIGINT, taken by a base::SignalThread (the signals are blocked in every thread, so
// no handler runs in an arbitrary context).
class Shutdown {
 public:
  explicit Shutdown(Logger& log) : log_(log) {}

  // Blocks the signals in the calling thread (and so in every thread it starts later) and
  // starts the thread that takes them. Call before any other thread exists.
  void Start() {
    signals_.emplace(std::initializer_list<int>{SIGTERM, SIGINT}, [this](int signo) {
      if (requested_.exchange(true)) {
        log_("second signal " + std::to_string(signo) + ": exiting now");
        std::_Exit(128 + signo);
      }
      log_("signal " + std::to_string(signo) +
           ": finishing the current trial, then exiting (again to exit now)");
      std::lock_guard lock(mu_);
      if (poll_ != nullptr) poll_->TryCancel();
      cv_.notify_all();
    });
  }

  bool requested() const { return requested_.load(); }

  // The long poll in flight, cancelled by the first signal. Returns false (and registers
  // nothing) when a signal has already come.
  bool SetPoll(grpc::ClientContext* context) {
    std::lock_guard lock(mu_);
    if (context != nullptr && requested_.load()) return false;
    poll_ = context;
    return true;
  }

  // Sleeps `seconds`, or less when a signal comes and `interruptible`.
  void Sleep(double seconds, bool interruptible = true) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                 [&] { return interruptible && requested_.load(); });
  }

 private:
  Logger& log_;
  std::atomic<bool> requested_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* poll_ = nullptr;
  std::optional<base::SignalThread> signals_;  // last: stopped before the members it uses
};

class Backoff {
 public:
  double Next() {
    const double d = delay_;
    delay_ = std::min(delay_ * 2, kBackoffMax);
    return d;
  }
  void Reset() { delay_ = kBackoffMin; }

 private:
  double delay_ = kBackoffMin;
};

std::unique_ptr<grpc::ClientContext> CallContext(double seconds = kCallSeconds) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000)));
  return context;
}

// Whether a failed call is worth repeating: the coordinator away or restarting, a deadline,
// or a commit that failed on its side (INTERNAL "not committed").
bool Transient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::INTERNAL;
}

std::string Describe(const grpc::Status& s) {
  return std::to_string(static_cast<int>(s.error_code())) + " " + s.error_message();
}

std::string Seconds(double s) {
  std::ostringstream out;
  out << s << " s";
  return out.str();
}

std::string DefaultName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    std::snprintf(host, sizeof host, "worker");
  return std::string(host) + "-" + std::to_string(getpid());
}

// This executable's path, to run trials as its `once` subcommand.
std::string OwnProgram() {
  std::error_code ec;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("/proc/self/exe") : path.string();
}

// The assignment as a TrialSpec; NOT_FOUND for a dataset this worker has no path for.
StatusOr<TrialSpec> SpecOf(const v1::TrialAssignment& a, const LeaseLoopOptions& options,
                           torch::Device device) {
  TrialSpec spec;
  PEAKNAS_ASSIGN_OR_RETURN(spec.arch,
                           proto::FromProto(a.architecture(), "assignment.architecture"));
  const auto data = options.data.find(a.dataset());
  if (data == options.data.end()) {
    std::string known;
    for (const auto& [name, path] : options.data) known += (known.empty() ? "" : ", ") + name;
    return Status::NotFound("dataset \"" + a.dataset() +
                            "\": this worker has no --data for it (it has: " + known + ")");
  }
  spec.data_dir = data->second;
  spec.train_shape =
      search::Shape{.batch = a.fidelity().train_batch(), .size = a.fidelity().patch()};
  spec.tile = search::Shape{.batch = a.batch(), .size = a.tile()};
  spec.steps = a.fidelity().steps();
  if (a.fidelity().learning_rate() > 0) spec.learning_rate = a.fidelity().learning_rate();
  // An assignment without a dtype (from an older coordinator) trains at fp32.
  if (a.dtype() != v1::DTYPE_UNSPECIFIED) {
    PEAKNAS_ASSIGN_OR_RETURN(spec.precision, proto::FromProto(a.dtype(), "assignment.dtype"));
  }
  spec.device = device;
  spec.seed = a.seed();
  spec.progress_every = std::max(1, std::min(10, spec.steps));
  spec.latency_runs = options.latency_runs;
  spec.latency_tile = options.time_latency_100mp ? a.latency_tile() : 0;
  PEAKNAS_RETURN_IF_ERROR(ValidateTrialSpec(spec));
  return spec;
}

// The coordinator as the worker sees it: WorkerService, and JobService.GetArtifact for
// parents' models, on one channel; every call has a deadline, and transport errors are retried
// with backoff (Retry).
class LeaseClient {
 public:
  LeaseClient(const std::string& address, const proto::ClientSecurity& security, Logger& log,
              Shutdown& shutdown)
      : log_(log),
        shutdown_(shutdown),
        channel_(Channel(address, security)),
        stub_(v1::WorkerService::NewStub(channel_)),
        jobs_(v1::JobService::NewStub(channel_)) {}

  // RegisterWorker until it succeeds (the worker id) or a signal comes (nullopt). Every error
  // is retried: a coordinator that refuses now may be one that is still starting.
  std::optional<std::string> Register(const v1::RegisterWorkerRequest& request,
                                      const std::string& coordinator) {
    if (shutdown_.requested()) return std::nullopt;
    v1::RegisterWorkerResponse response;
    const grpc::Status status =
        Retry("cannot register with " + coordinator,
              {.give_up_s = std::numeric_limits<double>::infinity(), .any_error = true}, [&] {
                auto context = CallContext();
                return stub_->RegisterWorker(context.get(), request, &response);
              });
    if (!status.ok()) return std::nullopt;
    return response.worker_id();
  }

  // One LeaseTrial long poll; a signal cancels it at once (CANCELLED, also when the signal
  // came before the call).
  grpc::Status Lease(const v1::LeaseTrialRequest& request, v1::LeaseTrialResponse* response) {
    auto context = CallContext(request.wait_seconds() + kCallSeconds);
    if (!shutdown_.SetPoll(context.get())) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "shutting down");
    }
    const grpc::Status status = stub_->LeaseTrial(context.get(), request, response);
    shutdown_.SetPoll(nullptr);
    return status;
  }

  // One Heartbeat (the next one is the retry).
  grpc::Status Heartbeat(const v1::HeartbeatRequest& request, v1::HeartbeatResponse* response) {
    auto context = CallContext();
    return stub_->Heartbeat(context.get(), request, response);
  }

  // GetArtifact of a trial's model into `path` (written as `path`.partial, renamed when whole),
  // checked against the SHA-256 the coordinator sends. UNAVAILABLE (retryable) when the
  // coordinator cannot be reached or the bytes do not match; the coordinator's code otherwise
  // (NOT_FOUND: the trial has no model).
  Status Download(const std::string& job_id, const std::string& trial_id,
                  const std::filesystem::path& path) {
    const std::string partial = path.string() + ".partial";
    v1::GetArtifactRequest request;
    request.set_job_id(job_id);
    request.set_trial_id(trial_id);
    std::string expected, got;
    bool written = false;
    const grpc::Status status = Retry("GetArtifact failed", {}, [&] {
      auto context = CallContext(kUploadSeconds);
      base::Sha256 hash;
      std::ofstream out(partial, std::ios::binary | std::ios::trunc);
      auto reader = jobs_->GetArtifact(context.get(), request);
      v1::ArtifactChunk chunk;
      while (reader->Read(&chunk)) {
        if (!chunk.sha256().empty()) expected = chunk.sha256();
        hash.Update(chunk.data());
        out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      }
      grpc::Status finished = reader->Finish();
      out.close();
      written = static_cast<bool>(out);
      got = hash.HexDigest();
      return finished;
    });
    std::error_code ec;
    if (!status.ok()) {
      std::filesystem::remove(partial, ec);
      const grpc::StatusCode code = status.error_code();
      const StatusCode ours = Transient(code) ? StatusCode::kUnavailable
                                              : static_cast<StatusCode>(static_cast<int>(code));
      return Status(ours, "GetArtifact: " + status.error_message());
    }
    if (!written) {
      std::filesystem::remove(partial, ec);
      return Status::Internal("cannot write " + partial);
    }
    if (got != expected) {
      std::filesystem::remove(partial, ec);
      return Status(StatusCode::kUnavailable,
                    "sha256 " + got + " does not match the coordinator's " + expected);
    }
    std::filesystem::rename(partial, path, ec);
    if (ec) return Status::Internal(path.string() + ": " + ec.message());
    return Status::Ok();
  }

  // UploadArtifact of the file at `path` in 1 MiB chunks with the lease and the file's
  // SHA-256; transport errors are retried with backoff (the whole stream again) for up to
  // kReportRetrySeconds, even after a signal. FAILED_PRECONDITION: the lease is lost. Other
  // refusals: an error naming the code.
  Status Upload(const v1::TrialAssignment& a, const std::string& path) {
    const auto sha256 = base::Sha256OfFile(path);
    if (!sha256) return Status::Internal("export: cannot read " + path);
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return Status::Internal("export: " + path + ": " + ec.message());
    v1::UploadArtifactResponse response;
    const grpc::Status status = Retry("UploadArtifact failed", {.interruptible = false}, [&] {
      auto context = CallContext(kUploadSeconds);
      auto writer = stub_->UploadArtifact(context.get(), &response);
      std::ifstream in(path, std::ios::binary);
      std::string buffer(kUploadChunkBytes, '\0');
      std::int64_t offset = 0;
      bool first = true;
      while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        const auto got = static_cast<std::size_t>(in.gcount());
        if (got == 0 && !first) break;
        v1::UploadArtifactRequest message;
        if (first) {
          message.set_lease_id(a.lease_id());
          message.set_fencing_token(a.fencing_token());
          message.set_sha256(*sha256);
          message.mutable_chunk()->set_total_size(static_cast<std::int64_t>(size));
          message.mutable_chunk()->set_sha256(*sha256);
          message.mutable_chunk()->set_filename(a.trial_id() + ".pt");
          first = false;
        }
        message.mutable_chunk()->set_data(buffer.data(), got);
        message.mutable_chunk()->set_offset(offset);
        offset += static_cast<std::int64_t>(got);
        message.mutable_chunk()->set_last(offset >= static_cast<std::int64_t>(size));
        if (!writer->Write(message)) break;  // the server ended the call: see Finish
      }
      writer->WritesDone();
      return writer->Finish();
    });
    if (status.ok()) {
      log_("uploaded the model of trial " + a.trial_id() + " (" + std::to_string(response.size()) +
           " B, sha256 " + response.sha256() + ")");
      return Status::Ok();
    }
    const grpc::StatusCode code = status.error_code();
    if (code == grpc::StatusCode::FAILED_PRECONDITION || code == grpc::StatusCode::NOT_FOUND) {
      log_("model of trial " + a.trial_id() + " refused (" + Describe(status) +
           "): the lease is lost");
      return Status::FailedPrecondition(status.error_message());
    }
    log_("model of trial " + a.trial_id() + " refused or undeliverable (" + Describe(status) + ")");
    return Status(static_cast<StatusCode>(static_cast<int>(code)),
                  "UploadArtifact: " + status.error_message());
  }

  // ReportResult, retried with backoff for transport errors (even after a signal: the point of
  // finishing the trial is to report it); a refusal is logged and the result dropped.
  void Report(const v1::TrialAssignment& a, const v1::ReportResultRequest& report) {
    v1::ReportResultResponse response;
    const grpc::Status status = Retry("ReportResult failed", {.interruptible = false}, [&] {
      auto context = CallContext();
      return stub_->ReportResult(context.get(), report, &response);
    });
    if (status.ok()) {
      log_("reported trial " + a.trial_id() + (response.accepted() ? "" : " (duplicate)"));
    } else {
      log_("result of trial " + a.trial_id() + " refused or undeliverable (" + Describe(status) +
           "); dropping it");
    }
  }

  // gRPC's own reconnection backoff (default up to 120 s) capped like ours, so that a
  // coordinator that comes back is found within about kBackoffMax.
  static std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                                const proto::ClientSecurity& security) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(kBackoffMin * 1000));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(kBackoffMin * 1000));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kBackoffMax * 1000));
    return proto::CoordinatorChannel(address, security, args);
  }

 private:
  // When Retry gives up.
  struct RetryPolicy {
    double give_up_s = kReportRetrySeconds;  // since the first attempt; infinity: never
    bool interruptible = true;               // a signal ends the waiting
    bool any_error = false;                  // retry every error, not only transient ones
  };

  // Calls `attempt` (one RPC; its status) until it succeeds, fails with an error the policy
  // does not retry, the policy's time is up, or (interruptible) a signal has come; between
  // attempts waits with exponential backoff (kBackoffMin doubling to kBackoffMax), logging
  // "<what> (code message); retrying in N s". Returns the last attempt's status.
  grpc::Status Retry(std::string_view what, const RetryPolicy& policy,
                     const std::function<grpc::Status()>& attempt) {
    Backoff backoff;
    const bool forever = !std::isfinite(policy.give_up_s);
    const auto give_up =
        Clock::now() + std::chrono::duration<double>(forever ? 0.0 : policy.give_up_s);
    for (;;) {
      const grpc::Status status = attempt();
      if (status.ok()) return status;
      if (!(policy.any_error || Transient(status.error_code())) ||
          (!forever && Clock::now() > give_up) || (policy.interruptible && shutdown_.requested())) {
        return status;
      }
      const double wait = backoff.Next();
      log_(std::string(what) + " (" + Describe(status) + "); retrying in " + Seconds(wait));
      shutdown_.Sleep(wait, policy.interruptible);
    }
  }

  Logger& log_;
  Shutdown& shutdown_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::unique_ptr<v1::JobService::Stub> jobs_;  // GetArtifact, for parents' models
};

// The lease loop (lease_loop.h): registers, long-polls for assignments and runs each one —
// parent model fetched, trial run with heartbeats beside it, model uploaded, result reported —
// through a LeaseClient.
class Worker {
 public:
  // A running trial, by lease id.
  struct Slot {
    std::string dataset;
    std::int64_t reserved = 0;  // TrialAssignment.reserved_bytes; 0: it runs alone
    std::int64_t data = -1;     // the data bytes its child reported; -1: not yet
    std::int64_t resident = 0;  // the largest resident peak its watch read
  };

  Worker(const LeaseLoopOptions& options, torch::Device device, Logger& log, Shutdown& shutdown)
      : options_(options),
        device_(device),
        log_(log),
        shutdown_(shutdown),
        client_(options.coordinator,
                {.token = options.token,
                 .ca_pem = options.tls_ca_pem,
                 .cert_pem = options.tls_cert_pem,
                 .key_pem = options.tls_key_pem},
                log, shutdown),
        program_(OwnProgram()),
        memory_bytes_(options.memory_bytes > 0 ? options.memory_bytes : DeviceMemoryBytes(device)),
        fault_(FaultHoldBytes()) {}
  ~Worker() {
    std::error_code ignored;
    if (!parents_dir_.empty()) std::filesystem::remove_all(parents_dir_, ignored);
    if (!temp_dir_.empty()) std::filesystem::remove(temp_dir_, ignored);  // only if empty
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Run() {
    Backoff backoff;
    while (!shutdown_.requested()) {
      ReapThreads();
      if (worker_id_.empty() && !Register()) continue;
      // A free slot, and (packing) room for one more trial.
      std::int64_t free_bytes = 0;
      bool idle = false;
      {
        std::unique_lock lock(mu_);
        while (!shutdown_.requested() && !RoomLocked(&free_bytes)) {
          ended_.wait_for(lock, std::chrono::milliseconds(250));
        }
        idle = running_.empty();
      }
      if (shutdown_.requested()) break;
      v1::LeaseTrialRequest request;
      request.set_worker_id(worker_id_);
      request.set_wait_seconds(idle ? options_.lease_wait_seconds
                                    : std::min(options_.lease_wait_seconds, kPackedPollSeconds));
      request.set_free_bytes(free_bytes);
      v1::LeaseTrialResponse response;
      const grpc::Status status = client_.Lease(request, &response);
      if (shutdown_.requested() && !response.has_assignment()) break;
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
        log_("coordinator does not know worker " + worker_id_ + ": registering again");
        worker_id_.clear();
        continue;
      }
      if (!status.ok()) {
        const double wait = backoff.Next();
        log_("LeaseTrial failed (" + Describe(status) + "); retrying in " + Seconds(wait));
        shutdown_.Sleep(wait);
        continue;
      }
      backoff.Reset();
      if (response.has_assignment()) Start(response.assignment());
    }
    // The running trials finish and are reported.
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, thread] : threads_) threads.push_back(std::move(thread));
      threads_.clear();
    }
    for (std::thread& t : threads) t.join();
    log_("stopped");
  }

 private:
  // RegisterWorker with backoff until it succeeds (true) or a signal comes (false).
  bool Register() {
    v1::RegisterWorkerRequest request;
    request.set_name(options_.name.empty() ? DefaultName() : options_.name);
    request.set_device(device_.str());
    request.set_memory_bytes(memory_bytes_);
    for (const auto& [name, path] : options_.data) request.add_datasets(name);
    request.add_dtypes(v1::DTYPE_FP32);
    if (CheckPrecision(search::DType::kBf16, device_).ok()) request.add_dtypes(v1::DTYPE_BF16);
    if (CheckPrecision(search::DType::kFp16, device_).ok()) request.add_dtypes(v1::DTYPE_FP16);
    request.set_threads(at::get_num_threads());
    request.set_version("peaknas-worker " __DATE__);
    std::optional<std::string> id = client_.Register(request, options_.coordinator);
    if (!id) return false;
    worker_id_ = *id;
    log_("registered as " + worker_id_ + " (" + request.name() + ", " + request.device() +
         ") with " + options_.coordinator);
    return true;
  }

  // Whether one more trial may be leased now and, packing, the bytes free for its model.
  bool RoomLocked(std::int64_t* free_bytes) {
    *free_bytes = 0;
    if (static_cast<int>(running_.size()) >= options_.max_concurrent) return false;
    if (options_.max_concurrent == 1) return true;
    const bool data_on_device = device_.is_cpu();
    std::int64_t committed = 0, may_grow = 0;
    for (const auto& [lease, slot] : running_) {
      if (slot.reserved == 0) return false;               // runs alone
      if (data_on_device && slot.data < 0) return false;  // its data is not known yet
      const std::int64_t holds =
          ReservationLimitBytes(slot.reserved) + (data_on_device ? slot.data : 0);
      committed += holds;
      may_grow += std::max<std::int64_t>(0, holds - slot.resident);
    }
    // The next trial's data: the largest any trial reported (a dataset none has run on yet is
    // counted once its trial reports, before anything else is leased).
    std::int64_t allowance = 0;
    if (data_on_device) {
      for (const auto& [name, bytes] : data_bytes_) allowance = std::max(allowance, bytes);
    }
    std::int64_t free = memory_bytes_ - options_.memory_reserve_bytes - committed - allowance;
    if (device_.is_cpu()) {
      const std::int64_t available = base::ProcKibField("/proc/meminfo", "MemAvailable");
      if (available >= 0) {
        free = std::min(free, available - options_.memory_reserve_bytes - may_grow - allowance);
      }
    }
    // The largest reservation whose slack fits too.
    free = static_cast<std::int64_t>(static_cast<double>(free - kReservationSlackBytes) /
                                     (1 + kReservationSlackFraction));
    if (free <= 0 && !running_.empty()) return false;
    *free_bytes = std::max<std::int64_t>(free, 1);  // alone, at least an uncalibrated trial
    return true;
  }

  // Runs the assignment in a thread of its own.
  void Start(const v1::TrialAssignment& a) {
    std::lock_guard lock(mu_);
    running_[a.lease_id()] = Slot{.dataset = a.dataset(), .reserved = a.reserved_bytes()};
    const std::uint64_t id = next_thread_++;
    threads_.emplace(id, std::thread([this, a, id] {
                       RunAssignment(a);
                       std::lock_guard lock(mu_);
                       running_.erase(a.lease_id());
                       finished_.push_back(id);
                       ended_.notify_all();
                     }));
  }

  // Joins the threads of the trials that have ended.
  void ReapThreads() {
    std::vector<std::thread> done;
    {
      std::lock_guard lock(mu_);
      for (const std::uint64_t id : finished_) {
        done.push_back(std::move(threads_.at(id)));
        threads_.erase(id);
      }
      finished_.clear();
    }
    for (std::thread& t : done) t.join();
  }

  // The resident bytes a packed trial's child may reach: its reservation plus its data (on
  // cpu); 0 (no limit) when it runs alone, on cuda, or while its data is not known.
  std::int64_t LimitOf(const std::string& lease_id) {
    std::lock_guard lock(mu_);
    const auto it = running_.find(lease_id);
    if (it == running_.end() || it->second.reserved == 0 || !device_.is_cpu()) return 0;
    std::int64_t data = it->second.data;
    if (data < 0) {
      const auto known = data_bytes_.find(it->second.dataset);
      if (known == data_bytes_.end()) return 0;
      data = known->second;
    }
    return ReservationLimitBytes(it->second.reserved) + data;
  }

  // A running trial's slot as it is now, its data counted only where it is on the device (cpu;
  // 0 until reported); an empty slot once the trial has ended.
  Slot SlotOf(const std::string& lease_id) {
    std::lock_guard lock(mu_);
    const auto it = running_.find(lease_id);
    if (it == running_.end()) return Slot{};
    Slot slot = it->second;
    slot.data = device_.is_cpu() ? std::max<std::int64_t>(slot.data, 0) : 0;
    return slot;
  }

  void RunAssignment(const v1::TrialAssignment& a) {
    log_("leased trial " + a.trial_id() + " of job " + a.job_id() + " (lease " + a.lease_id() +
         ", token " + std::to_string(a.fencing_token()) + ")");
    v1::ReportResultRequest report;
    report.set_lease_id(a.lease_id());
    report.set_fencing_token(a.fencing_token());

    StatusOr<TrialSpec> spec = SpecOf(a, options_, device_);
    if (!spec.ok()) {
      Fail(spec.status(), report);
      client_.Report(a, report);
      return;
    }
    if (fault_.first == a.trial_id()) spec->fault_hold_bytes = fault_.second;
    if (!a.parent_trial_id().empty()) {
      StatusOr<std::string> parent = FetchParent(a);
      if (!parent.ok()) {
        Fail(parent.status(), report);
        client_.Report(a, report);
        return;
      }
      spec->parent_model = *parent;
      spec->importance =
          a.importance() == v1::IMPORTANCE_GROUP_L1 ? Importance::kGroupL1 : Importance::kL1;
    }
    if (a.export_model()) {
      auto dir = ExportDir();
      if (!dir.ok()) {
        Fail(dir.status(), report);
        client_.Report(a, report);
        return;
      }
      spec->export_path = (std::filesystem::path(*dir) /
                           (a.trial_id() + "." + std::to_string(a.fencing_token()) + ".pt"))
                              .string();
    }
    // The exported file is ours to remove, whatever happens.
    struct RemoveFile {
      std::string path;
      ~RemoveFile() {
        std::error_code ignored;
        if (!path.empty()) std::filesystem::remove(path, ignored);
      }
    } remove_export{spec->export_path};

    // Progress shared with the heartbeat thread.
    struct Progress {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      std::string stage = "data";
      int step = 0;
      int steps = 0;
      double loss = 0;
      std::stop_source stop;  // a cancelled job or a lost lease: the trial process is killed
    } progress;
    progress.steps = spec->steps;
    const double interval = a.heartbeat_interval_s() > 0
                                ? std::min(a.heartbeat_interval_s(), kHeartbeatMax)
                                : kHeartbeatMax;
    std::thread heartbeat([&] {
      std::unique_lock lock(progress.mu);
      while (!progress.cv.wait_for(lock, std::chrono::duration<double>(interval),
                                   [&] { return progress.done; })) {
        v1::HeartbeatRequest request;
        request.set_lease_id(a.lease_id());
        request.set_fencing_token(a.fencing_token());
        request.set_step(progress.step);
        request.set_steps(progress.steps);
        request.set_loss(progress.loss);
        request.set_stage(progress.stage);
        lock.unlock();
        v1::HeartbeatResponse response;
        const grpc::Status status = client_.Heartbeat(request, &response);
        lock.lock();
        if (status.ok() && response.action() == v1::HEARTBEAT_ACTION_CANCEL) {
          log_("trial " + a.trial_id() + " cancelled by the coordinator: stopping it");
          progress.stop.request_stop();
        } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
                   status.error_code() == grpc::StatusCode::NOT_FOUND) {
          log_("lease of trial " + a.trial_id() + " lost (" + Describe(status) + "): stopping it");
          progress.stop.request_stop();
        } else if (!status.ok()) {
          log_("Heartbeat failed (" + Describe(status) + "); the trial goes on");
        }
      }
    });

    TrialProcessEvents events;
    events.stage = [&](std::string_view stage, std::string_view detail) {
      std::lock_guard lock(progress.mu);
      progress.stage = std::string(stage);
      log_("trial " + a.trial_id() + ": " + std::string(stage) + " " + std::string(detail));
    };
    events.progress = [&](int step, int steps, double loss) {
      std::lock_guard lock(progress.mu);
      progress.step = step;
      progress.steps = steps;
      progress.loss = loss;
    };
    events.data_bytes = [&](std::int64_t bytes) {
      std::lock_guard lock(mu_);
      if (auto it = running_.find(a.lease_id()); it != running_.end()) it->second.data = bytes;
      std::int64_t& known = data_bytes_[a.dataset()];
      known = std::max(known, bytes);
    };
    TrialProcessWatch watch;
    watch.limit = [&] { return LimitOf(a.lease_id()); };
    watch.resident = [&](std::int64_t bytes) {
      std::lock_guard lock(mu_);
      if (auto it = running_.find(a.lease_id()); it != running_.end()) {
        it->second.resident = std::max(it->second.resident, bytes);
      }
    };

    // The trial runs in a child process (worker/trial_process.h), its log beside the models.
    StatusOr<TrialProcessOutcome> result = Status::Internal("no trial process");
    std::string log_path;
    if (auto dir = ExportDir(); !dir.ok()) {
      result = dir.status();
    } else {
      log_path = (std::filesystem::path(*dir) /
                  (a.trial_id() + "." + std::to_string(a.fencing_token()) + ".log"))
                     .string();
      // The coordinator may ask for fewer threads: at the worker's own, the trial's peak
      // would not fit the job's budget (TrialAssignment.threads).
      const int threads =
          a.threads() > 0 ? std::min(a.threads(), at::get_num_threads()) : options_.threads;
      if (a.threads() > 0 && a.threads() < at::get_num_threads()) {
        log_("trial " + a.trial_id() + " runs at " + std::to_string(threads) +
             " threads: only then does its peak fit the job's budget");
      }
      result = RunTrialProcess(OnceCommandLine(program_, *spec, threads, 3), log_path,
                               progress.stop.get_token(), events, watch);
    }
    if (result.ok()) {
      // The calibration's "trial" figure: on cpu the whole process less its data; on cuda the
      // larger pass figure (the caching allocator's reserved peak), the data being on the host.
      std::int64_t trial_peak = std::max(result->metrics.process_inference_peak_bytes(),
                                         result->metrics.process_train_peak_bytes());
      if (device_.is_cpu()) {
        trial_peak = std::max<std::int64_t>(result->peak_rss_bytes - SlotOf(a.lease_id()).data, 0);
      }
      result->metrics.set_process_peak_bytes(trial_peak);
      log_("trial " + a.trial_id() + " process peak " +
           std::to_string(result->peak_rss_bytes >> 20) + " MiB (resident-set high-water mark)" +
           (a.reserved_bytes() > 0
                ? ", reserved " + std::to_string(LimitOf(a.lease_id()) >> 20) + " MiB"
                : std::string()));
    }
    // The model goes up before the result, while the heartbeats keep the lease alive. A model
    // that cannot be stored fails the trial (a frontier point must be downloadable), unless the
    // lease is gone, in which case nothing is reported.
    if (result.ok() && !progress.stop.stop_requested() && a.export_model()) {
      if (result->export_path.empty()) {
        result = Status::Internal("export: the trial produced no model file");
      } else {
        const Status uploaded = client_.Upload(a, result->export_path);
        if (uploaded.code() == StatusCode::kFailedPrecondition) {
          progress.stop.request_stop();
        } else if (!uploaded.ok()) {
          result = uploaded;
        }
      }
    }
    {
      std::lock_guard lock(progress.mu);
      progress.done = true;
    }
    progress.cv.notify_all();
    heartbeat.join();
    if (progress.stop.stop_requested()) {
      log_("trial " + a.trial_id() + " stopped; nothing reported");
      return;
    }
    if (result.ok()) {
      *report.mutable_metrics() = result->metrics;
      log_("trial " + a.trial_id() + " done: psnr " + std::to_string(result->metrics.psnr()) +
           " dB, measured inference peak " +
           std::to_string(result->metrics.measured_inference_peak_bytes()) + " B (predicted " +
           std::to_string(result->metrics.predicted_inference_peak_bytes()) + ")");
      std::error_code ignored;
      std::filesystem::remove(log_path, ignored);
    } else {
      Fail(result.status(), report);
      if (a.reserved_bytes() > 0 && result.status().code() == StatusCode::kResourceExhausted) {
        // Over its reservation (the watch), or out of memory in the child's allocator: worth
        // another lease with more headroom.
        const Slot slot = SlotOf(a.lease_id());
        report.mutable_failure()->set_retryable(true);
        report.mutable_failure()->set_over_reservation_bytes(
            std::max(slot.resident - slot.data, a.reserved_bytes()));
      }
      if (!log_path.empty()) log_("trial " + a.trial_id() + " log kept: " + log_path);
    }
    client_.Report(a, report);
  }

  // The directory exported models are written to: --work-dir, or a private temporary
  // directory of this process (created on first use).
  StatusOr<std::string> ExportDir() {
    std::lock_guard lock(files_mu_);
    return ExportDirLocked();
  }
  StatusOr<std::string> ExportDirLocked() {
    if (!options_.work_dir.empty()) return options_.work_dir;
    if (temp_dir_.empty()) {
      std::error_code ec;
      const auto dir = std::filesystem::temp_directory_path(ec) /
                       ("peaknas-worker-" + std::to_string(::getpid()));
      if (!ec) std::filesystem::create_directories(dir, ec);
      if (ec)
        return Status::Internal("export: cannot create " + dir.string() + ": " + ec.message());
      temp_dir_ = dir.string();
    }
    return temp_dir_;
  }

  // The parent's model of an inheriting trial, downloaded once and kept in a small cache: a
  // pruning round's children share their parent. UNAVAILABLE (retryable) when the coordinator
  // cannot be reached or the download is corrupt; NOT_FOUND, from the coordinator, when the
  // parent has no model.
  StatusOr<std::string> FetchParent(const v1::TrialAssignment& a) {
    std::lock_guard lock(files_mu_);  // one download at a time: children share parents
    if (parents_dir_.empty()) {
      PEAKNAS_ASSIGN_OR_RETURN(const std::string dir, ExportDirLocked());
      parents_dir_ = (std::filesystem::path(dir) / "parents").string();
    }
    std::error_code ec;
    std::filesystem::create_directories(parents_dir_, ec);
    if (ec) return Status::Internal("parent: cannot create " + parents_dir_ + ": " + ec.message());
    const std::filesystem::path path =
        std::filesystem::path(parents_dir_) / (a.job_id() + "." + a.parent_trial_id() + ".pt");
    if (std::filesystem::is_regular_file(path, ec)) {
      std::filesystem::last_write_time(path, std::filesystem::file_time_type::clock::now(), ec);
      return path.string();
    }
    EvictParents();
    if (Status s = client_.Download(a.job_id(), a.parent_trial_id(), path); !s.ok()) {
      return Status(s.code(), "parent " + a.parent_trial_id() + ": " + s.message());
    }
    log_("fetched the model of parent trial " + a.parent_trial_id() + " for trial " + a.trial_id());
    return path.string();
  }

  // Keeps the parent cache under kParentCacheFiles files, dropping the least recently used.
  void EvictParents() {
    std::error_code ec;
    std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> files;
    for (const auto& entry : std::filesystem::directory_iterator(parents_dir_, ec)) {
      if (entry.is_regular_file(ec)) files.emplace_back(entry.last_write_time(ec), entry.path());
    }
    if (files.size() < kParentCacheFiles) return;
    std::sort(files.begin(), files.end());
    for (std::size_t i = 0; i + kParentCacheFiles <= files.size(); ++i) {
      std::filesystem::remove(files[i].second, ec);
    }
  }

  void Fail(const Status& status, v1::ReportResultRequest& report) {
    v1::TrialFailure* failure = report.mutable_failure();
    failure->set_code(static_cast<int>(status.code()));
    std::string message = status.message();
    std::replace(message.begin(), message.end(), '\n', ' ');
    failure->set_message(message);
    failure->set_retryable(status.code() == StatusCode::kNotFound ||
                           status.code() == StatusCode::kUnavailable);
    log_("trial failed: " + std::string(StatusCodeName(status.code())) + ": " + message);
  }

  const LeaseLoopOptions& options_;
  torch::Device device_;
  Logger& log_;
  Shutdown& shutdown_;
  LeaseClient client_;
  std::mutex files_mu_;      // guards the two below
  std::string parents_dir_;  // the parent cache; created on first use
  std::string temp_dir_;     // ExportDir's private directory when there is no --work-dir
  std::string worker_id_;    // the leasing thread's
  std::string program_;      // this executable: each trial runs as its `once` (trial_process.h)
  const std::int64_t memory_bytes_;                   // options' or the device's
  const std::pair<std::string, std::int64_t> fault_;  // PEAKNAS_FAULT_HOLD_BYTES

  std::mutex mu_;  // guards the members below
  std::condition_variable ended_;
  std::map<std::string, Slot> running_;
  std::map<std::string, std::int64_t> data_bytes_;  // per dataset: the largest reported
  std::map<std::uint64_t, std::thread> threads_;    // one per running trial
  std::vector<std::uint64_t> finished_;             // threads that have ended, to join
  std::uint64_t next_thread_ = 0;
};

}  // namespace

Status ValidateLeaseLoopOptions(const LeaseLoopOptions& options) {
  if (options.coordinator.empty()) {
    return Status::InvalidArgument("coordinator: required (HOST:PORT)");
  }
  if (options.data.empty()) {
    return Status::InvalidArgument("data: at least one NAME=PATH is required");
  }
  std::error_code ec;
  for (const auto& [name, path] : options.data) {
    if (name.empty() || path.empty()) {
      return Status::InvalidArgument("data: \"" + name + "=" + path + "\" is not NAME=PATH");
    }
    if (!std::filesystem::is_directory(path, ec)) {
      return Status::NotFound("data " + name + "=\"" + path + "\": no such directory");
    }
  }
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("latency-runs", options.latency_runs, 1, 1000));
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("threads", options.threads, 0, "0: LibTorch's default"));
  if (!options.work_dir.empty() && !std::filesystem::is_directory(options.work_dir, ec)) {
    return Status::NotFound("work-dir \"" + options.work_dir + "\": no such directory");
  }
  if (options.name.size() > 200) return Status::InvalidArgument("name: longer than 200 characters");
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("max-concurrent", options.max_concurrent, 1, 64));
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("memory", options.memory_bytes, 0, "0: the device's"));
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("memory-reserve", options.memory_reserve_bytes, 0));
  if (options.memory_bytes > 0 && options.memory_reserve_bytes >= options.memory_bytes) {
    return Status::InvalidArgument(
        "memory-reserve: " + search::FormatBytes(options.memory_reserve_bytes) +
        " leaves nothing of --memory " + search::FormatBytes(options.memory_bytes));
  }
  PEAKNAS_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(options.device, "device"));
  (void)device;
  return Status::Ok();
}

Status RunLeaseLoop(const LeaseLoopOptions& options, std::ostream& out) {
  PEAKNAS_RETURN_IF_ERROR(ValidateLeaseLoopOptions(options));
  PEAKNAS_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(options.device, "device"));
  Logger log(out);
  Shutdown shutdown(log);
  shutdown.Start();  // before gRPC or LibTorch start threads
  if (options.threads > 0) at::set_num_threads(options.threads);
  Worker worker(options, device, log, shutdown);
  worker.Run();
  return Status::Ok();
}

}  // namespace peaknas::worker
