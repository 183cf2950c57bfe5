#include "cli/client.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <string>

#include "base/app.h"
#include "proto/channel.h"

namespace peaknas::cli {

void AddCoordinatorOption(CLI::App& command, std::string& address,
                          proto::ClientSecurityFiles& security) {
  if (address.empty()) address = kDefaultCoordinator;
  command
      .add_option("--coordinator", address,
                  "Address of peaknas-server, HOST:PORT (also from $PEAKNAS_COORDINATOR)")
      ->envname(kCoordinatorEnv)
      ->type_name("ADDR")
      ->capture_default_str();
  const struct {
    const char* flag;
    std::string* file;
    const char* help;
  } files[] = {
      {"--token-file", &security.token_file,
       "A file holding the bearer token `peaknas-server token create` printed, for a coordinator "
       "that checks callers (else $PEAKNAS_TOKEN; else none)"},
      {"--tls-ca", &security.tls_ca,
       "Talk TLS: the CA bundle (PEM) the coordinator's certificate must chain to (else "
       "$PEAKNAS_TLS_CA; else plaintext)"},
      {"--tls-cert", &security.tls_cert,
       "A client certificate (PEM), for a coordinator that requires one (else $PEAKNAS_TLS_CERT)"},
      {"--tls-key", &security.tls_key,
       "The client certificate's private key (PEM; else $PEAKNAS_TLS_KEY)"},
  };
  for (const auto& [flag, file, help] : files) {
    command.add_option(flag, *file, help)->type_name("FILE");
  }
}

std::unique_ptr<v1::JobService::Stub> NewJobServiceStub(const std::string& address,
                                                        const proto::ClientSecurity& security) {
  return v1::JobService::NewStub(proto::CoordinatorChannel(address, security));
}

void SetUnaryDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(kCallTimeoutSeconds));
}

Status ToStatus(const grpc::Status& status, std::string_view address, std::string_view what) {
  const std::string message = base::OneLine(status.error_message());
  const std::string at = "the coordinator at " + std::string(address);
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return Status::Ok();
    case grpc::StatusCode::UNAVAILABLE:
      return Status(StatusCode::kUnavailable, at + " is not reachable (" + message + ")");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status(StatusCode::kDeadlineExceeded,
                    at + " did not answer within " + std::to_string(kCallTimeoutSeconds) + " s");
    case grpc::StatusCode::UNIMPLEMENTED:
      return Status(StatusCode::kUnimplemented, at + " does not implement " + std::string(what) +
                                                    " yet (UNIMPLEMENTED: " + message + ")");
    default:
      return Status(static_cast<StatusCode>(status.error_code()), message);
  }
}

}  // namespace peaknas::cli
