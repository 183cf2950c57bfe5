// RpcMetrics: per-RPC counts and latencies of the gRPC server, under go-grpc-prometheus's names
// so that existing Grafana boards work: grpc_server_started_total and grpc_server_handled_total
// (labels grpc_type, grpc_service, grpc_method and, for handled, grpc_code), and the
// grpc_server_handling_seconds histogram. Recorded by a server interceptor (Interceptors()),
// rendered into /metrics (Text()). Ids never appear in labels: only the method and the code.
//
// Thread-safety: every method is thread-safe.
#ifndef PEAKNAS_SERVER_RPC_METRICS_H_
#define PEAKNAS_SERVER_RPC_METRICS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace peaknas::server {

class RpcMetrics {
 public:
  // The interceptor factories to give ServerBuilder::experimental().SetInterceptorCreators.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  Interceptors();

  // The Prometheus text of every series so far.
  std::string Text() const;

  // What the interceptor records.
  void Started(const std::string& full_method, grpc::experimental::ServerRpcInfo::Type type);
  void Handled(const std::string& full_method, grpc::experimental::ServerRpcInfo::Type type,
               grpc::StatusCode code, double seconds);

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    5};
  struct Method {
    std::string type;  // "unary", "server_stream", "client_stream", "bidi_stream"
    std::int64_t started = 0;
    std::map<grpc::StatusCode, std::int64_t> handled;
    std::array<std::int64_t, kBuckets.size() + 1> buckets{};  // the last is +Inf
    double seconds = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Method> methods_;  // by full name "/peaknas.v1.JobService/GetJob"
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_RPC_METRICS_H_
