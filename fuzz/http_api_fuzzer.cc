// The coordinator's HTTP API (server/http_api.h), the part of the service a browser or a
// stranger on the network reaches: any method, target and body is answered, never crashes the
// coordinator, with a status grpc-gateway would give (never 500, an internal error), and a JSON
// answer is well-formed JSON. One coordinator (a real SQLite file in a temporary directory, and
// its gRPC service, which the API's handlers are) serves every input of the process.
//
// Input: the first byte picks the method (even: GET, odd: POST); the rest is the target up to
// the first newline, then the body.
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/coordinator.h"
#include "server/http_api.h"
#include "server/service.h"
#include "storage/sqlite_store.h"

namespace {

using peaknas::server::HttpApi;
using peaknas::server::HttpRequest;
using peaknas::server::HttpResponse;

struct Service {
  std::filesystem::path dir;
  std::unique_ptr<peaknas::server::Coordinator> coordinator;
  std::unique_ptr<peaknas::server::GrpcServer> grpc;
  std::unique_ptr<HttpApi> api;
};

Service& TheService() {
  static Service* service = [] {
    spdlog::set_level(spdlog::level::off);
    auto* s = new Service;
    s->dir =
        std::filesystem::temp_directory_path() / ("peaknas-fuzz-http-" + std::to_string(getpid()));
    std::filesystem::create_directories(s->dir);
    auto store = peaknas::storage::SqliteStore::Open((s->dir / "db.sqlite").string(), {});
    if (!store.ok()) std::abort();
    auto coordinator = peaknas::server::Coordinator::Open(
        std::unique_ptr<peaknas::storage::Store>(std::move(store).value()),
        (s->dir / "art").string());
    if (!coordinator.ok()) std::abort();
    s->coordinator = std::move(coordinator).value();
    auto grpc = peaknas::server::GrpcServer::Start(*s->coordinator, "127.0.0.1:0");
    if (!grpc.ok()) std::abort();
    s->grpc = std::move(grpc).value();
    s->api = std::make_unique<HttpApi>(*s->coordinator, s->grpc->jobs(), s->grpc->parked(),
                                       &s->grpc->rpc_metrics());
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(TheService().dir, ec);
    });
    return s;
  }();
  return *service;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  HttpRequest request;
  request.method = data[0] % 2 == 0 ? "GET" : "POST";
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t newline = rest.find('\n');
  request.target = std::string(rest.substr(0, newline));
  if (newline != std::string_view::npos) request.body = std::string(rest.substr(newline + 1));
  const HttpResponse response = TheService().api->Handle(request);
  if (response.stream) response.stream->Cancel();
  if (response.status < 200 || response.status >= 600 || response.status == 500) {
    std::fprintf(stderr, "%s %s: status %d: %s\n", request.method.c_str(), request.target.c_str(),
                 response.status, response.body.c_str());
    std::abort();
  }
  if (!response.stream && response.content_type == "application/json" &&
      !nlohmann::json::accept(response.body)) {
    std::fprintf(stderr, "%s %s: not JSON: %s\n", request.method.c_str(), request.target.c_str(),
                 response.body.c_str());
    std::abort();
  }
  return 0;
}
