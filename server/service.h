// The gRPC face of the coordinator: JobService and WorkerService (proto/peaknas/v1) as thin
// handlers over server::Coordinator, plus the server's assembly (health checking, reflection).
//
// Each handler converts the request, calls the core and converts the Status with ToGrpcStatus
// (one mapping, since search::StatusCode uses gRPC's canonical codes). The unary calls and the
// artifact streams use the synchronous API: each is short, or busy moving bytes. The two calls
// that mostly wait, a long-polling LeaseTrial and a WatchJob stream, use the callback API
// (reactors, as gRPC's route_guide_callback_server): they park in ParkedCalls and hold no
// thread while they wait; its threads do the coordinator calls, so no reaction blocks.
//
// Artifacts: UploadArtifact writes the stream to the coordinator's partial file while hashing
// it, then lets the coordinator check and commit it (Coordinator::CommitArtifactUpload);
// GetArtifact streams the recorded file in 1 MiB chunks. WatchJob streams the job's event log
// (Coordinator::WatchEvents): a replay from after_sequence, then every event as it commits.
//
// Every call is checked first (server/auth.h): its bearer token, its role's permission, and
// for a job's calls the job's tenant. The JobService methods that take a Caller are the same
// calls for the HTTP API (server/http_api.h), which checks its own header.
//
// Thread-safety: the services are called concurrently by gRPC; they hold no state of their
// own besides the Coordinator, ParkedCalls and the Authenticator (all thread-safe).
#ifndef PEAKNAS_SERVER_SERVICE_H_
#define PEAKNAS_SERVER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"
#include "peaknas/v1/peaknas.grpc.pb.h"
#include "server/auth.h"
#include "server/coordinator.h"
#include "server/parked_calls.h"
#include "server/rpc_metrics.h"

namespace peaknas::server {

// The one Status -> grpc::Status conversion.
grpc::Status ToGrpcStatus(const Status& status);

// A stream's or long poll's pending read from ParkedCalls, which its client may cancel at any
// time: Park starts the next read unless the call was cancelled; Cancel marks it cancelled and
// cancels the read in flight. Thread-safe.
class ParkedRead {
 public:
  explicit ParkedRead(ParkedCalls& parked) : parked_(parked) {}
  ParkedRead(const ParkedRead&) = delete;
  ParkedRead& operator=(const ParkedRead&) = delete;

  // Calls `park` (a ParkedCalls call, returning its ticket) unless cancelled; false if it was.
  // `park` runs under the lock, so a concurrent Cancel cancels the read it starts.
  template <typename Call>
  bool Park(Call park) {
    std::lock_guard lock(mu_);
    if (cancelled_) return false;
    ticket_ = park(parked_);
    return true;
  }

  void Cancel() {
    std::uint64_t ticket;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      ticket = ticket_;
    }
    parked_.Cancel(ticket);
  }

 private:
  ParkedCalls& parked_;
  std::mutex mu_;
  bool cancelled_ = false;    // guarded by mu_
  std::uint64_t ticket_ = 0;  // guarded by mu_: the read in flight
};

class JobServiceImpl final
    : public v1::JobService::WithCallbackMethod_WatchJob<v1::JobService::Service> {
 public:
  JobServiceImpl(Coordinator& coordinator, ParkedCalls& parked, const Authenticator& auth)
      : coordinator_(coordinator), parked_(parked), auth_(auth) {}

  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest*,
                         v1::SubmitJobResponse*) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::GetJobResponse*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                        v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest*,
                         v1::CancelJobResponse*) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext*,
                                                   const v1::WatchJobRequest*) override;
  grpc::Status GetFrontier(grpc::ServerContext*, const v1::GetFrontierRequest*,
                           v1::GetFrontierResponse*) override;
  grpc::Status ListTrials(grpc::ServerContext*, const v1::ListTrialsRequest*,
                          v1::ListTrialsResponse*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse*) override;
  grpc::Status ListCalibrations(grpc::ServerContext*, const v1::ListCalibrationsRequest*,
                                v1::ListCalibrationsResponse*) override;
  grpc::Status GetArtifact(grpc::ServerContext*, const v1::GetArtifactRequest*,
                           grpc::ServerWriter<v1::ArtifactChunk>*) override;

  // The calls for a caller already authenticated and allowed (Authenticator::Check with the
  // permission each needs: kSubmit for SubmitJob and CancelJob, kRead for the others); they
  // apply its tenant.
  grpc::Status SubmitJob(const Caller&, const v1::SubmitJobRequest&, v1::SubmitJobResponse*);
  grpc::Status GetJob(const Caller&, const v1::GetJobRequest&, v1::GetJobResponse*);
  grpc::Status ListJobs(const Caller&, const v1::ListJobsRequest&, v1::ListJobsResponse*);
  grpc::Status CancelJob(const Caller&, const v1::CancelJobRequest&, v1::CancelJobResponse*);
  grpc::Status GetFrontier(const Caller&, const v1::GetFrontierRequest&, v1::GetFrontierResponse*);
  grpc::Status ListTrials(const Caller&, const v1::ListTrialsRequest&, v1::ListTrialsResponse*);
  grpc::Status ListWorkers(const Caller&, const v1::ListWorkersRequest&, v1::ListWorkersResponse*);
  grpc::Status ListCalibrations(const Caller&, const v1::ListCalibrationsRequest&,
                                v1::ListCalibrationsResponse*);
  // OK when the caller may see the job; the NOT_FOUND of an unknown id otherwise.
  Status Visible(const Caller& caller, const std::string& job_id);
  const Authenticator& auth() const { return auth_; }

 private:
  Coordinator& coordinator_;
  ParkedCalls& parked_;
  const Authenticator& auth_;
};

class WorkerServiceImpl final
    : public v1::WorkerService::WithCallbackMethod_LeaseTrial<v1::WorkerService::Service> {
 public:
  WorkerServiceImpl(Coordinator& coordinator, ParkedCalls& parked, const Authenticator& auth)
      : coordinator_(coordinator), parked_(parked), auth_(auth) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*,
                              v1::RegisterWorkerResponse*) override;
  grpc::ServerUnaryReactor* LeaseTrial(grpc::CallbackServerContext*, const v1::LeaseTrialRequest*,
                                       v1::LeaseTrialResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse*) override;
  grpc::Status ReportResult(grpc::ServerContext*, const v1::ReportResultRequest*,
                            v1::ReportResultResponse*) override;
  grpc::Status UploadArtifact(grpc::ServerContext*, grpc::ServerReader<v1::UploadArtifactRequest>*,
                              v1::UploadArtifactResponse*) override;

 private:
  // The worker's own: OK for the token it registered with (or an admin, or without tokens).
  // A worker's token never changes, so it is read from the store once and then remembered:
  // a long poll's reactor is made without waiting for the store.
  Status OwnWorker(const Caller& caller, const std::string& worker_id);
  Status OwnLease(const Caller& caller, const std::string& lease_id);

  Coordinator& coordinator_;
  ParkedCalls& parked_;
  const Authenticator& auth_;
  std::mutex principals_mu_;
  std::map<std::string, std::string> principals_;  // worker id -> token name; by principals_mu_
};

// The largest request message the server reads (gRPC's RESOURCE_EXHAUSTED beyond).
inline constexpr int kMaxMessageBytes = 4 << 20;

// A running gRPC server with both services, health checking and (when built with it)
// reflection. Shutdown (or the destructor) stops it: WatchJob streams end, long polls return.
class GrpcServer {
 public:
  // Binds `address` ("HOST:PORT"; port 0 picks a free port). UNAVAILABLE if it cannot bind.
  // `auth` checks every call; it must outlive the server. By default there are no tokens.
  // `credentials`: the listener's (TLS: grpc::SslServerCredentials); null: plaintext.
  static StatusOr<std::unique_ptr<GrpcServer>> Start(
      Coordinator& coordinator, const std::string& address, const Authenticator& auth = NoTokens(),
      std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);
  // An Authenticator without a token store: every call is the open caller.
  static const Authenticator& NoTokens();
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // "HOST:PORT" with the port actually bound.
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // Stops accepting calls; calls still running after `grace` are cancelled.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));
  void Wait() { server_->Wait(); }
  // Long polls and watch streams waiting now.
  std::size_t parked_calls() const { return parked_.size(); }
  // The services themselves, for the HTTP API (server/http_api.h), which answers with them.
  JobServiceImpl& jobs() { return jobs_; }
  // Per-RPC counts and latencies (go-grpc-prometheus names), for /metrics.
  const RpcMetrics& rpc_metrics() const { return rpc_metrics_; }
  ParkedCalls& parked() { return parked_; }

 private:
  GrpcServer(Coordinator& coordinator, const Authenticator& auth)
      : parked_(coordinator),
        jobs_(coordinator, parked_, auth),
        workers_(coordinator, parked_, auth),
        coordinator_(coordinator) {}
  // Declared first, destroyed last: the server's reactors and interceptors hold on to them
  // until they finish.
  RpcMetrics rpc_metrics_;
  ParkedCalls parked_;
  JobServiceImpl jobs_;
  WorkerServiceImpl workers_;
  Coordinator& coordinator_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_SERVICE_H_
