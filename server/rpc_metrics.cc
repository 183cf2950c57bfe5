#include "server/rpc_metrics.h"

#include <cstdio>
#include <string_view>

namespace peaknas::server {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

std::string TypeName(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unary";
}

// The names go-grpc-prometheus uses for gRPC codes.
std::string_view CodeName(grpc::StatusCode code) {
  static constexpr std::array<std::string_view, 17> kNames = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  const auto i = static_cast<std::size_t>(code);
  return i < kNames.size() ? kNames[i] : "Unknown";
}

// "/peaknas.v1.JobService/GetJob" -> {"peaknas.v1.JobService", "GetJob"}.
std::pair<std::string, std::string> Split(const std::string& full) {
  const auto slash = full.rfind('/');
  if (full.empty() || slash == std::string::npos || slash == 0) return {"", full};
  return {full.substr(1, slash - 1), full.substr(slash + 1)};
}

class Interceptor final : public grpc::experimental::Interceptor {
 public:
  Interceptor(RpcMetrics& metrics, ServerRpcInfo* info)
      : metrics_(metrics),
        method_(info->method()),
        type_(info->type()),
        start_(std::chrono::steady_clock::now()) {
    metrics_.Started(method_, type_);
  }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      metrics_.Handled(method_, type_, methods->GetSendStatus().error_code(), seconds);
    }
    methods->Proceed();
  }

 private:
  RpcMetrics& metrics_;
  const std::string method_;
  const ServerRpcInfo::Type type_;
  const std::chrono::steady_clock::time_point start_;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(RpcMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    if (info->method() == nullptr) return nullptr;
    return new Interceptor(metrics_, info);
  }

 private:
  RpcMetrics& metrics_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
RpcMetrics::Interceptors() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<Factory>(*this));
  return out;
}

void RpcMetrics::Started(const std::string& full_method, ServerRpcInfo::Type type) {
  std::lock_guard lock(mu_);
  Method& m = methods_[full_method];
  m.type = TypeName(type);
  ++m.started;
}

void RpcMetrics::Handled(const std::string& full_method, ServerRpcInfo::Type type,
                         grpc::StatusCode code, double seconds) {
  std::lock_guard lock(mu_);
  Method& m = methods_[full_method];
  m.type = TypeName(type);
  ++m.handled[code];
  std::size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  ++m.buckets[b];
  m.seconds += seconds;
}

std::string RpcMetrics::Text() const {
  std::lock_guard lock(mu_);
  std::string started, handled, histogram;
  for (const auto& [full, m] : methods_) {
    const auto [service, method] = Split(full);
    const std::string labels = "grpc_method=\"" + method + "\",grpc_service=\"" + service +
                               "\",grpc_type=\"" + m.type + "\"";
    started += "grpc_server_started_total{" + labels + "} " + std::to_string(m.started) + "\n";
    for (const auto& [code, n] : m.handled) {
      handled += "grpc_server_handled_total{grpc_code=\"" + std::string(CodeName(code)) + "\"," +
                 labels + "} " + std::to_string(n) + "\n";
    }
    std::int64_t cumulative = 0;
    for (std::size_t b = 0; b <= kBuckets.size(); ++b) {
      cumulative += m.buckets[b];
      char le[32];
      if (b < kBuckets.size()) {
        std::snprintf(le, sizeof le, "%g", kBuckets[b]);
      } else {
        std::snprintf(le, sizeof le, "+Inf");
      }
      histogram += "grpc_server_handling_seconds_bucket{" + labels + ",le=\"" + le + "\"} " +
                   std::to_string(cumulative) + "\n";
    }
    char sum[32];
    std::snprintf(sum, sizeof sum, "%.9g", m.seconds);
    histogram += "grpc_server_handling_seconds_sum{" + labels + "} " + sum + "\n";
    histogram +=
        "grpc_server_handling_seconds_count{" + labels + "} " + std::to_string(cumulative) + "\n";
  }
  return "# HELP grpc_server_started_total Total number of RPCs started on the server.\n"
         "# TYPE grpc_server_started_total counter\n" +
         started +
         "# HELP grpc_server_handled_total Total number of RPCs completed on the server, "
         "regardless of success or failure.\n"
         "# TYPE grpc_server_handled_total counter\n" +
         handled +
         "# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC "
         "that had been application-level handled by the server.\n"
         "# TYPE grpc_server_handling_seconds histogram\n" +
         histogram;
}

}  // namespace peaknas::server
