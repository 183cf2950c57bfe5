#include "server/service.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "base/sha256.h"
#ifdef PEAKNAS_HAVE_GRPC_REFLECTION
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#endif

namespace peaknas::server {
namespace {

using google::protobuf::util::TimeUtil;

constexpr std::size_t kChunkBytes = 1 << 20;  // GetArtifact's chunks

// Paging over an already materialized list: the token is the offset of the next item.
template <typename T, typename Add>
grpc::Status Page(const std::vector<T>& items, int page_size, int default_size, int max_size,
                  const std::string& token, Add add, std::string* next_token) {
  if (page_size < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size: must be >= 0");
  }
  const std::size_t size =
      static_cast<std::size_t>(page_size == 0 ? default_size : std::min(page_size, max_size));
  std::size_t offset = 0;
  if (!token.empty()) {
    try {
      offset = std::stoul(token);
    } catch (const std::exception&) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "page_token: \"" + token + "\" is not a token from a previous response");
    }
  }
  for (std::size_t i = offset; i < items.size() && i < offset + size; ++i) add(items[i]);
  if (offset + size < items.size()) *next_token = std::to_string(offset + size);
  return grpc::Status::OK;
}

// OK with the call's result stored in `*out`, or the call's error.
template <typename T>
grpc::Status Answer(StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = std::move(result).value();
  return grpc::Status::OK;
}

// A stream that is finished before it starts (a request refused by its arguments).
template <typename T>
class FinishedWriteReactor final : public grpc::ServerWriteReactor<T> {
 public:
  void OnDone() override { delete this; }
};

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(status.code())),
                      status.message());
}

// --- JobService ---

// The caller of a gRPC call, or the status that refuses it.
#define PEAKNAS_CALLER(caller, context, permission)                 \
  auto caller##_or = auth_.Check(context, permission);              \
  if (!caller##_or.ok()) return ToGrpcStatus(caller##_or.status()); \
  [[maybe_unused]] const Caller& caller = *caller##_or

Status JobServiceImpl::Visible(const Caller& caller, const std::string& job_id) {
  if (caller.admin() || caller.tenant == "*") return Status::Ok();
  PEAKNAS_ASSIGN_OR_RETURN(const v1::Job job, coordinator_.GetJob(job_id));
  if (!caller.Sees(job.owner())) return Coordinator::UnknownJob(job_id);
  return Status::Ok();
}

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* context,
                                       const v1::SubmitJobRequest* request,
                                       v1::SubmitJobResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kSubmit);
  return SubmitJob(caller, *request, response);
}

grpc::Status JobServiceImpl::SubmitJob(const Caller& caller, const v1::SubmitJobRequest& request,
                                       v1::SubmitJobResponse* response) {
  return Answer(coordinator_.SubmitJob(request.spec(), caller.tenant), response->mutable_job());
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                    v1::GetJobResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kRead);
  return GetJob(caller, *request, response);
}

grpc::Status JobServiceImpl::GetJob(const Caller& caller, const v1::GetJobRequest& request,
                                    v1::GetJobResponse* response) {
  auto job = coordinator_.GetJob(request.job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  if (!caller.Sees(job->owner())) return ToGrpcStatus(Coordinator::UnknownJob(request.job_id()));
  *response->mutable_job() = std::move(job).value();
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* context,
                                      const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kRead);
  return ListJobs(caller, *request, response);
}

grpc::Status JobServiceImpl::ListJobs(const Caller& caller, const v1::ListJobsRequest& request,
                                      v1::ListJobsResponse* response) {
  auto jobs = coordinator_.ListJobs();
  if (!jobs.ok()) return ToGrpcStatus(jobs.status());
  std::erase_if(*jobs, [&](const v1::Job& job) { return !caller.Sees(job.owner()); });
  return Page(
      *jobs, request.page_size(), 100, 1000, request.page_token(),
      [&](const v1::Job& job) { *response->add_jobs() = job; },
      response->mutable_next_page_token());
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* context,
                                       const v1::CancelJobRequest* request,
                                       v1::CancelJobResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kSubmit);
  return CancelJob(caller, *request, response);
}

grpc::Status JobServiceImpl::CancelJob(const Caller& caller, const v1::CancelJobRequest& request,
                                       v1::CancelJobResponse* response) {
  if (Status visible = Visible(caller, request.job_id()); !visible.ok()) {
    return ToGrpcStatus(visible);
  }
  return Answer(coordinator_.CancelJob(request.job_id()), response->mutable_job());
}

grpc::Status JobServiceImpl::GetFrontier(grpc::ServerContext* context,
                                         const v1::GetFrontierRequest* request,
                                         v1::GetFrontierResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kRead);
  return GetFrontier(caller, *request, response);
}

grpc::Status JobServiceImpl::GetFrontier(const Caller& caller,
                                         const v1::GetFrontierRequest& request,
                                         v1::GetFrontierResponse* response) {
  if (Status visible = Visible(caller, request.job_id()); !visible.ok()) {
    return ToGrpcStatus(visible);
  }
  return Answer(coordinator_.GetFrontier(request.job_id()), response->mutable_frontier());
}

grpc::Status JobServiceImpl::ListTrials(grpc::ServerContext* context,
                                        const v1::ListTrialsRequest* request,
                                        v1::ListTrialsResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kRead);
  return ListTrials(caller, *request, response);
}

grpc::Status JobServiceImpl::ListTrials(const Caller& caller, const v1::ListTrialsRequest& request,
                                        v1::ListTrialsResponse* response) {
  if (Status visible = Visible(caller, request.job_id()); !visible.ok()) {
    return ToGrpcStatus(visible);
  }
  std::vector<v1::TrialState> states;
  for (int s : request.states()) states.push_back(static_cast<v1::TrialState>(s));
  auto trials = coordinator_.ListTrials(request.job_id(), states);
  if (!trials.ok()) return ToGrpcStatus(trials.status());
  if (request.on_frontier()) {
    auto frontier = coordinator_.GetFrontier(request.job_id());
    if (!frontier.ok()) return ToGrpcStatus(frontier.status());
    std::set<std::string> on;
    for (const v1::FrontierPoint& p : frontier->points()) on.insert(p.trial_id());
    std::erase_if(*trials, [&](const v1::Trial& t) { return !on.contains(t.id()); });
  }
  return Page(
      *trials, request.page_size(), 1000, 10000, request.page_token(),
      [&](const v1::Trial& trial) { *response->add_trials() = trial; },
      response->mutable_next_page_token());
}

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext* context,
                                         const v1::ListWorkersRequest* request,
                                         v1::ListWorkersResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kRead);
  return ListWorkers(caller, *request, response);
}

grpc::Status JobServiceImpl::ListWorkers(const Caller&, const v1::ListWorkersRequest& request,
                                         v1::ListWorkersResponse* response) {
  auto workers = coordinator_.ListWorkers(request.all());
  if (!workers.ok()) return ToGrpcStatus(workers.status());
  for (v1::Worker& w : *workers) *response->add_workers() = std::move(w);
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListCalibrations(grpc::ServerContext* context,
                                              const v1::ListCalibrationsRequest* request,
                                              v1::ListCalibrationsResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kRead);
  return ListCalibrations(caller, *request, response);
}

grpc::Status JobServiceImpl::ListCalibrations(const Caller&,
                                              const v1::ListCalibrationsRequest& request,
                                              v1::ListCalibrationsResponse* response) {
  auto calibrations = coordinator_.ListCalibrations(request.device_profile(), request.framework());
  if (!calibrations.ok()) return ToGrpcStatus(calibrations.status());
  for (v1::Calibration& c : *calibrations) *response->add_calibrations() = std::move(c);
  return grpc::Status::OK;
}

// Replays the job's event log after request->after_sequence, then follows it: ParkedCalls
// completes the stream's next read when a commit adds events, so nothing is polled, nothing is
// missed and a waiting stream holds no thread. The stream ends after job_finished, or when the
// job has ended and its log has nothing more. One write is in flight at a time.
class WatchJobReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchJobReactor(ParkedCalls& parked, std::string job_id, std::int64_t after)
      : read_(parked), job_id_(std::move(job_id)), after_(after) {
    ReadMore();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // the client left
    const v1::JobEvent& sent = (*events_)[next_++];
    after_ = sent.sequence();
    if (sent.has_job_finished()) return Finish(grpc::Status::OK);
    if (next_ < events_->size()) return StartWrite(&(*events_)[next_]);
    ReadMore();
  }

  void OnCancel() override { read_.Cancel(); }

  void OnDone() override { delete this; }

 private:
  void ReadMore() {
    const bool parked = read_.Park([this](ParkedCalls& calls) {
      return calls.Events(job_id_, after_, [this](StatusOr<ParkedCalls::EventBatch> batch) {
        if (!batch.ok()) return Finish(ToGrpcStatus(batch.status()));
        if (batch->events->empty()) return Finish(grpc::Status::OK);  // ended
        events_ = std::move(batch->events);
        next_ = 0;
        StartWrite(&(*events_)[0]);
      });
    });
    if (!parked) Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client left"));
  }

  ParkedRead read_;
  const std::string job_id_;
  std::int64_t after_;
  std::shared_ptr<const std::vector<v1::JobEvent>> events_;  // the batch being written
  std::size_t next_ = 0;                                     // its event in flight
};

grpc::ServerWriteReactor<v1::JobEvent>* JobServiceImpl::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  const auto refuse = [](grpc::Status status) {
    auto* reactor = new FinishedWriteReactor<v1::JobEvent>;
    reactor->Finish(std::move(status));
    return reactor;
  };
  auto caller = auth_.Check(context, Permission::kRead);
  if (!caller.ok()) return refuse(ToGrpcStatus(caller.status()));
  if (Status visible = Visible(*caller, request->job_id()); !visible.ok()) {
    return refuse(ToGrpcStatus(visible));
  }
  if (request->after_sequence() < 0) {
    return refuse(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "after_sequence: must be >= 0, got " + std::to_string(request->after_sequence())));
  }
  return new WatchJobReactor(parked_, request->job_id(), request->after_sequence());
}

// Streams the file in 1 MiB chunks; the first carries size, hash and name. The bytes sent are
// hashed again: a file changed on disk ends the stream with DATA_LOSS.
grpc::Status JobServiceImpl::GetArtifact(grpc::ServerContext* context,
                                         const v1::GetArtifactRequest* request,
                                         grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  // Readers of the job's tenant; and a worker for a job it runs a trial of (the parents'
  // models of the trials it runs).
  Status allowed = [&]() -> Status {
    auto caller = auth_.Check(context, Permission::kRead);
    if (caller.ok()) return Visible(*caller, request->job_id());
    if (caller.status().code() != StatusCode::kPermissionDenied) return caller.status();
    PEAKNAS_ASSIGN_OR_RETURN(const Caller worker, auth_.Check(context, Permission::kWork));
    PEAKNAS_ASSIGN_OR_RETURN(const bool holds,
                             coordinator_.HoldsLeaseInJob(worker.name, request->job_id()));
    return holds ? Status::Ok() : Coordinator::UnknownJob(request->job_id());
  }();
  if (!allowed.ok()) return ToGrpcStatus(allowed);
  auto file = coordinator_.GetArtifact(request->job_id(), request->trial_id());
  if (!file.ok()) return ToGrpcStatus(file.status());
  bool cancelled = false;
  const Status sent = ArtifactStore::Stream(
      *file, kChunkBytes, [&](std::string_view data, std::int64_t offset, bool last) {
        if (context->IsCancelled()) {
          cancelled = true;
          return false;
        }
        v1::ArtifactChunk chunk;
        chunk.set_data(data.data(), data.size());
        chunk.set_offset(offset);
        if (offset == 0) {
          chunk.set_total_size(file->size_bytes);
          chunk.set_sha256(file->sha256);
          chunk.set_filename(file->filename);
        }
        chunk.set_last(last);
        return writer->Write(chunk);  // false: the client left
      });
  if (cancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "client left");
  return ToGrpcStatus(sent);
}

// --- WorkerService ---

Status WorkerServiceImpl::OwnWorker(const Caller& caller, const std::string& worker_id) {
  if (caller.admin()) return Status::Ok();
  std::string principal;
  {
    std::lock_guard lock(principals_mu_);
    if (auto it = principals_.find(worker_id); it != principals_.end()) principal = it->second;
  }
  if (principal.empty()) {
    PEAKNAS_ASSIGN_OR_RETURN(principal, coordinator_.WorkerPrincipal(worker_id));
    std::lock_guard lock(principals_mu_);
    principals_.emplace(worker_id, principal);
  }
  if (principal == caller.name) return Status::Ok();
  return Status(StatusCode::kPermissionDenied,
                "worker_id: worker \"" + worker_id + "\" registered with another token");
}

Status WorkerServiceImpl::OwnLease(const Caller& caller, const std::string& lease_id) {
  if (caller.admin()) return Status::Ok();
  PEAKNAS_ASSIGN_OR_RETURN(const std::optional<std::string> holder,
                           coordinator_.LeaseHolder(lease_id));
  if (!holder || *holder == caller.name) return Status::Ok();
  return Status(StatusCode::kPermissionDenied,
                "lease_id: lease \"" + lease_id + "\" is held by a worker of another token");
}

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext* context,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kWork);
  return Answer(coordinator_.RegisterWorker(*request, caller.name), response->mutable_worker_id());
}

// Parks the call in ParkedCalls until a trial is leased to the worker or the wait ends; the
// reactor finishes from ParkedCalls' thread, so a waiting poll holds no thread.
class LeaseTrialReactor final : public grpc::ServerUnaryReactor {
 public:
  LeaseTrialReactor(ParkedCalls& parked, Coordinator::LeaseAsk ask,
                    ParkedCalls::Clock::time_point deadline, v1::LeaseTrialResponse* response)
      : read_(parked), response_(response) {
    read_.Park([&](ParkedCalls& calls) {
      return calls.Lease(std::move(ask), deadline,
                         [this](StatusOr<std::optional<v1::TrialAssignment>> assignment) {
                           if (!assignment.ok()) return Finish(ToGrpcStatus(assignment.status()));
                           if (*assignment)
                             *response_->mutable_assignment() = std::move(**assignment);
                           Finish(grpc::Status::OK);
                         });
    });
  }

  void OnCancel() override { read_.Cancel(); }

  void OnDone() override { delete this; }

 private:
  ParkedRead read_;
  v1::LeaseTrialResponse* const response_;
};

grpc::ServerUnaryReactor* WorkerServiceImpl::LeaseTrial(grpc::CallbackServerContext* context,
                                                        const v1::LeaseTrialRequest* request,
                                                        v1::LeaseTrialResponse* response) {
  Status allowed = [&]() -> Status {
    PEAKNAS_ASSIGN_OR_RETURN(const Caller caller, auth_.Check(context, Permission::kWork));
    return OwnWorker(caller, request->worker_id());
  }();
  if (!allowed.ok()) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(allowed));
    return reactor;
  }
  if (!(request->wait_seconds() >= 0)) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wait_seconds: must be >= 0"));
    return reactor;
  }
  auto wait = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::min(request->wait_seconds(), 3600.0) * 1000));
  // Never wait past the client's own deadline (minus a margin to answer in time).
  const auto client_left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context->deadline() - std::chrono::system_clock::now());
  wait = std::max(std::chrono::milliseconds(0),
                  std::min({wait, client_left - std::chrono::milliseconds(100),
                            coordinator_.max_lease_wait()}));
  return new LeaseTrialReactor(
      parked_, {.worker_id = request->worker_id(), .free_bytes = request->free_bytes()},
      ParkedCalls::Clock::now() + wait, response);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* context,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kWork);
  if (Status own = OwnLease(caller, request->lease_id()); !own.ok()) return ToGrpcStatus(own);
  return Answer(coordinator_.Heartbeat(*request), response);
}

grpc::Status WorkerServiceImpl::ReportResult(grpc::ServerContext* context,
                                             const v1::ReportResultRequest* request,
                                             v1::ReportResultResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kWork);
  if (Status own = OwnLease(caller, request->lease_id()); !own.ok()) return ToGrpcStatus(own);
  auto accepted = coordinator_.ReportResult(*request);
  if (!accepted.ok()) return ToGrpcStatus(accepted.status());
  response->set_accepted(*accepted);
  return grpc::Status::OK;
}

// The first message must carry lease_id, fencing_token and sha256 (or chunk.sha256); chunks
// must come in order (offset = bytes so far). The bytes go to the coordinator's partial file,
// which the coordinator checks and renames, or removes.
grpc::Status WorkerServiceImpl::UploadArtifact(
    grpc::ServerContext* context, grpc::ServerReader<v1::UploadArtifactRequest>* reader,
    v1::UploadArtifactResponse* response) {
  PEAKNAS_CALLER(caller, context, Permission::kWork);
  v1::UploadArtifactRequest message;
  if (!reader->Read(&message)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "upload: no message");
  }
  if (Status own = OwnLease(caller, message.lease_id()); !own.ok()) return ToGrpcStatus(own);
  auto upload = coordinator_.BeginArtifactUpload(message.lease_id(), message.fencing_token());
  if (!upload.ok()) return ToGrpcStatus(upload.status());
  const std::string claimed =
      !message.sha256().empty() ? message.sha256() : message.chunk().sha256();
  ArtifactWriter out(*upload, upload->max_bytes);
  const auto abandon = [&](const Status& why) {
    ArtifactStore::Discard(*upload);
    return ToGrpcStatus(why);
  };
  do {
    const Status appended = out.Append(message.chunk().data(), message.chunk().offset());
    if (!appended.ok()) return abandon(appended);
  } while (reader->Read(&message));
  if (Status closed = out.Close(); !closed.ok()) return abandon(closed);
  if (context->IsCancelled()) return abandon(Status(StatusCode::kCancelled, "upload cancelled"));
  const std::int64_t size = out.size();
  return Answer(coordinator_.CommitArtifactUpload(*upload, size, out.HexDigest(), claimed),
                response);
}

// --- GrpcServer ---

StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    Coordinator& coordinator, const std::string& address, const Authenticator& auth,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  grpc::EnableDefaultHealthCheckService(true);
#ifdef PEAKNAS_HAVE_GRPC_REFLECTION
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
#endif
  std::unique_ptr<GrpcServer> server(new GrpcServer(coordinator, auth));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address,
                           credentials != nullptr ? credentials : grpc::InsecureServerCredentials(),
                           &server->port_);
  // Every message is bounded (upload chunks are 1 MiB); a larger one is RESOURCE_EXHAUSTED.
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.RegisterService(&server->jobs_);
  builder.RegisterService(&server->workers_);
  builder.experimental().SetInterceptorCreators(server->rpc_metrics_.Interceptors());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return Status(StatusCode::kUnavailable, "listen: cannot bind \"" + address + "\"");
  }
  const auto colon = address.rfind(':');
  server->address_ = address.substr(0, colon) + ":" + std::to_string(server->port_);
  // Health checking answers for the whole server ("") and for each service by its full name.
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    for (const char* service :
         {v1::JobService::service_full_name(), v1::WorkerService::service_full_name()}) {
      health->SetServingStatus(service, true);
    }
  }
  return server;
}

const Authenticator& GrpcServer::NoTokens() {
  static const Authenticator open(nullptr);
  return open;
}

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  // Probes see the server going before its calls end.
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  parked_.Shutdown();       // parked long polls and watches finish now
  coordinator_.Shutdown();  // and blocking ones too
  server_->Shutdown(std::chrono::system_clock::now() + grace);
}

GrpcServer::~GrpcServer() {
  if (server_) Shutdown();
}

}  // namespace peaknas::server
