#include "server/service.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "base/sha256.h"
#ifdef PEAKNAS_HAVE_GRPC_REFLECTION
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#endif

namespace peaknas::server {
namespace {

// WatchJob: events per read of the log, and how long one read waits for new ones (the stream
// notices a cancelled client or a shutdown at least this often).
constexpr int kWatchBatch = 256;
constexpr std::chrono::milliseconds kWatchWait{500};

using google::protobuf::util::TimeUtil;

constexpr std::size_t kChunkBytes = 1 << 20;                       // GetArtifact's chunks
constexpr std::int64_t kMaxArtifactBytes = std::int64_t{4} << 30;  // UploadArtifact's limit

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

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(status.code())),
                      status.message());
}

// --- JobService ---

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                                       v1::SubmitJobResponse* response) {
  auto job = coordinator_.SubmitJob(request->spec());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response->mutable_job() = std::move(job).value();
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                    v1::GetJobResponse* response) {
  auto job = coordinator_.GetJob(request->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response->mutable_job() = std::move(job).value();
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  auto jobs = coordinator_.ListJobs();
  if (!jobs.ok()) return ToGrpcStatus(jobs.status());
  return Page(
      *jobs, request->page_size(), 100, 1000, request->page_token(),
      [&](const v1::Job& job) { *response->add_jobs() = job; },
      response->mutable_next_page_token());
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                                       v1::CancelJobResponse* response) {
  auto job = coordinator_.CancelJob(request->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response->mutable_job() = std::move(job).value();
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::GetFrontier(grpc::ServerContext*,
                                         const v1::GetFrontierRequest* request,
                                         v1::GetFrontierResponse* response) {
  auto frontier = coordinator_.GetFrontier(request->job_id());
  if (!frontier.ok()) return ToGrpcStatus(frontier.status());
  *response->mutable_frontier() = std::move(frontier).value();
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListTrials(grpc::ServerContext*, const v1::ListTrialsRequest* request,
                                        v1::ListTrialsResponse* response) {
  std::vector<v1::TrialState> states;
  for (int s : request->states()) states.push_back(static_cast<v1::TrialState>(s));
  auto trials = coordinator_.ListTrials(request->job_id(), states);
  if (!trials.ok()) return ToGrpcStatus(trials.status());
  return Page(
      *trials, request->page_size(), 1000, 10000, request->page_token(),
      [&](const v1::Trial& trial) { *response->add_trials() = trial; },
      response->mutable_next_page_token());
}

// Simplified: polls the coordinator every 200 ms and turns what changed into events. Sequence
// numbers count this stream's events (after_sequence skips that many); intermediate states
// between two polls are not seen.
// Replays the job's event log after request->after_sequence, then follows it: the coordinator
// wakes this stream when a commit adds events, so nothing is polled and nothing is missed. The
// stream ends after job_finished, or when the job has ended and its log has nothing more.
grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* context,
                                      const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  if (request->after_sequence() < 0) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "after_sequence: must be >= 0, got " + std::to_string(request->after_sequence()));
  }
  std::int64_t after = request->after_sequence();
  bool ended = false;  // the job was seen finished: one more read, then the stream ends
  while (!context->IsCancelled() && !shutdown_) {
    auto events = coordinator_.WatchEvents(request->job_id(), after, kWatchBatch,
                                           ended ? std::chrono::milliseconds(0) : kWatchWait);
    if (!events.ok()) return ToGrpcStatus(events.status());
    for (const v1::JobEvent& event : *events) {
      if (!writer->Write(event)) return grpc::Status::OK;  // the client left
      after = event.sequence();
      if (event.has_job_finished()) return grpc::Status::OK;
    }
    if (!events->empty()) continue;
    if (ended) return grpc::Status::OK;  // finished, and its log has nothing more
    // Nothing new for a while: has the job ended? Its job_finished event is committed with the
    // state, so it may have arrived since the read above; the next read (at once) sends it.
    auto job = coordinator_.GetJob(request->job_id());
    if (!job.ok()) return ToGrpcStatus(job.status());
    const auto state = job->state();
    ended = state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
            state == v1::JOB_STATE_CANCELLED;
  }
  return grpc::Status::OK;
}

// Streams the file in 1 MiB chunks; the first carries size, hash and name. The bytes sent are
// hashed again: a file changed on disk ends the stream with DATA_LOSS.
grpc::Status JobServiceImpl::GetArtifact(grpc::ServerContext* context,
                                         const v1::GetArtifactRequest* request,
                                         grpc::ServerWriter<v1::ArtifactChunk>* writer) {
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

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext*,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerResponse* response) {
  auto id = coordinator_.RegisterWorker(*request);
  if (!id.ok()) return ToGrpcStatus(id.status());
  response->set_worker_id(std::move(id).value());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::LeaseTrial(grpc::ServerContext* context,
                                           const v1::LeaseTrialRequest* request,
                                           v1::LeaseTrialResponse* response) {
  if (!(request->wait_seconds() >= 0)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wait_seconds: must be >= 0");
  }
  auto wait = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::min(request->wait_seconds(), 3600.0) * 1000));
  // Never wait past the client's own deadline (minus a margin to answer in time).
  const auto client_left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context->deadline() - std::chrono::system_clock::now());
  wait = std::min(wait, client_left - std::chrono::milliseconds(100));
  auto assignment = coordinator_.LeaseTrial(request->worker_id(), wait);
  if (!assignment.ok()) return ToGrpcStatus(assignment.status());
  if (*assignment) *response->mutable_assignment() = std::move(**assignment);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  auto answer = coordinator_.Heartbeat(*request);
  if (!answer.ok()) return ToGrpcStatus(answer.status());
  *response = std::move(answer).value();
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::ReportResult(grpc::ServerContext*,
                                             const v1::ReportResultRequest* request,
                                             v1::ReportResultResponse* response) {
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
  v1::UploadArtifactRequest message;
  if (!reader->Read(&message)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "upload: no message");
  }
  auto upload = coordinator_.BeginArtifactUpload(message.lease_id(), message.fencing_token());
  if (!upload.ok()) return ToGrpcStatus(upload.status());
  const std::string claimed =
      !message.sha256().empty() ? message.sha256() : message.chunk().sha256();
  ArtifactWriter out(*upload, kMaxArtifactBytes);
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
  auto stored = coordinator_.CommitArtifactUpload(*upload, size, out.HexDigest(), claimed);
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = std::move(stored).value();
  return grpc::Status::OK;
}

// --- GrpcServer ---

StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(Coordinator& coordinator,
                                                        const std::string& address) {
  grpc::EnableDefaultHealthCheckService(true);
#ifdef PEAKNAS_HAVE_GRPC_REFLECTION
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
#endif
  std::unique_ptr<GrpcServer> server(new GrpcServer(coordinator));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(&server->jobs_);
  builder.RegisterService(&server->workers_);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return Status(StatusCode::kUnavailable, "listen: cannot bind \"" + address + "\"");
  }
  const auto colon = address.rfind(':');
  server->address_ = address.substr(0, colon) + ":" + std::to_string(server->port_);
  return server;
}

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  jobs_.Shutdown();
  coordinator_.Shutdown();  // long polls return now
  server_->Shutdown(std::chrono::system_clock::now() + grace);
}

GrpcServer::~GrpcServer() {
  if (server_) Shutdown();
}

}  // namespace peaknas::server
