// HttpApi: the coordinator over HTTP, as plain requests and responses (no sockets here: the
// server is http_server.h). JobService mirrored under /v1/ through protobuf's JSON mapping —
// the handlers are the gRPC service's own methods, so the JSON is the gRPC answer — plus the
// probes and metrics operators expect:
//
//   GET  /                             the dashboard (server/dashboard/), its files under /assets/
//   GET  /livez                        200 "ok": the process serves
//   GET  /readyz                       200 "ready" once the database answers, 503 otherwise
//   GET  /metrics                      Prometheus text format 0.0.4 (server/metrics.h, and the
//                                      per-RPC series of server/rpc_metrics.h)
//   GET  /v1/jobs                      ListJobs; ?page_size=N&page_token=T
//   POST /v1/jobs                      SubmitJob; the body is a SubmitJobRequest ({"spec": ...})
//   GET  /v1/workers                   ListWorkers; ?all=true for offline ones too
//   GET  /v1/calibrations              ListCalibrations; ?device_profile=P&framework=F
//   GET  /v1/jobs/{id}                 GetJob
//   POST /v1/jobs/{id}:cancel          CancelJob
//   GET  /v1/jobs/{id}/frontier        GetFrontier
//   GET  /v1/jobs/{id}/trials          ListTrials; ?page_size, page_token, states=SUCCEEDED,...,
//                                      on_frontier=true
//   GET  /v1/jobs/{id}/hypervolume     the frontier's hypervolume at each version, with the
//                                      trials finished by then (from the event log), and the
//                                      log's last sequence (where a live page resumes)
//   GET  /v1/jobs/{id}/trials/{t}/model  the trained model (GetArtifact): TorchScript bytes,
//                                      as an attachment named t-N.pt, its SHA-256 in
//                                      X-Checksum-SHA256
//   GET  /v1/jobs/{id}/events          WatchJob as Server-Sent Events: "id: SEQ" and "data:
//                                      JobEvent JSON" per event; resumes after the request's
//                                      Last-Event-ID header (or ?after=SEQ); ends after
//                                      jobFinished. The stream waits in ParkedCalls: no thread.
//
// JSON as grpc-gateway writes it: lowerCamelCase names, zero values included. Errors are
// {"code": N, "message": "...", "status": "NOT_FOUND"} with grpc-gateway's HTTP status for
// the gRPC code (404, 400, 409, 503, ...); an unknown path is 404, a known one with the wrong
// method 405.
//
// Thread-safety: Handle may be called from several threads at once.
#ifndef PEAKNAS_SERVER_HTTP_API_H_
#define PEAKNAS_SERVER_HTTP_API_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/coordinator.h"
#include "server/service.h"

namespace peaknas::server {

struct HttpRequest {
  std::string method;  // "GET", "POST"
  std::string target;  // path and query: "/v1/jobs?page_size=10"
  std::string body;
  std::string last_event_id;  // the Last-Event-ID header (an SSE client resuming)
  std::string authorization;  // the Authorization header ("Bearer TOKEN"; server/auth.h)
};

// A response that stays open: text the server writes as it comes (Server-Sent Events).
class EventStream {
 public:
  // `text` to write; `end`: the stream is over once it is written.
  using Send = std::function<void(std::string text, bool end)>;
  virtual ~EventStream() = default;
  // Produces the next text, now or later, on any thread, by calling `send` exactly once. The
  // server calls Next again once that text is written, unless it was the end.
  virtual void Next(Send send) = 0;
  // The client left: a pending Next may end at once (its `send` is then ignored).
  virtual void Cancel() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::shared_ptr<EventStream> stream;  // set: the body is this stream, not `body`
  std::vector<std::pair<std::string, std::string>> headers = {};  // more header fields
};

// grpc-gateway's HTTP status for a gRPC code (OK 200, NOT_FOUND 404, INVALID_ARGUMENT 400, ...).
int HttpStatusOf(grpc::StatusCode code);

class EventTextCache;
std::shared_ptr<EventTextCache> NewEventTextCache();

class HttpApi {
 public:
  // `parked` serves the event streams and counts the waiting calls for the metrics.
  // `rpc` (may be null) adds the gRPC server's per-RPC series to /metrics.
  HttpApi(Coordinator& coordinator, JobServiceImpl& jobs, ParkedCalls& parked,
          const RpcMetrics* rpc = nullptr)
      : coordinator_(coordinator),
        jobs_(jobs),
        parked_(parked),
        rpc_(rpc),
        event_texts_(NewEventTextCache()) {}

  HttpResponse Handle(const HttpRequest& request);

 private:
  HttpResponse Metrics();
  HttpResponse HypervolumeHistory(const std::string& job_id);

  Coordinator& coordinator_;
  JobServiceImpl& jobs_;
  ParkedCalls& parked_;
  const RpcMetrics* rpc_;
  // The SSE texts of recent events, made once for all of this API's streams (they may outlive
  // the call that opened them, hence shared).
  const std::shared_ptr<EventTextCache> event_texts_;
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_HTTP_API_H_
