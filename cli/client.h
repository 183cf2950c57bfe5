// The `peaknas` CLI's side of the protocol (DESIGN.md, "Protocol"): a JobService stub on an
// insecure channel to the coordinator, the `--coordinator ADDR` option every service
// subcommand shares, and the one function that turns a gRPC status into a search::Status with
// a one-line message fit for "peaknas CMD: <message>".
//
// Status mapping (ToStatus):
//   INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...  the server's message as it is (it
//                      starts with the request's field path, e.g. "spec.parallelism: ...",
//                      or names the unknown job);
//   UNAVAILABLE       "the coordinator at ADDR is not reachable (<gRPC message>)";
//   DEADLINE_EXCEEDED "the coordinator at ADDR did not answer within N s";
//   UNIMPLEMENTED     "the coordinator at ADDR does not implement <what> yet (<message>)".
//
// Thread-safety: the stub is gRPC's and thread-safe; the functions are pure.
#ifndef PEAKNAS_CLI_CLIENT_H_
#define PEAKNAS_CLI_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "peaknas/v1/peaknas.grpc.pb.h"
#include "proto/channel.h"

namespace CLI {
class App;
}  // namespace CLI

namespace peaknas::cli {

inline constexpr const char* kDefaultCoordinator = proto::kDefaultCoordinator;
inline constexpr const char* kCoordinatorEnv = proto::kCoordinatorEnv;
// Deadline of every unary call.
inline constexpr int kCallTimeoutSeconds = 30;

// Adds `--coordinator ADDR` to `command`, bound to `address` (default kDefaultCoordinator, or
// $PEAKNAS_COORDINATOR when set; the flag wins over both), and the files of `security`:
// `--token-file`, `--tls-ca`, `--tls-cert`, `--tls-key` (proto::ReadClientSecurity reads them,
// each falling back to its environment variable).
void AddCoordinatorOption(CLI::App& command, std::string& address,
                          proto::ClientSecurityFiles& security);

// A JobService stub talking to `address` ("HOST:PORT") with `security` (proto/channel.h:
// plaintext without a CA, no token without one). Never fails: an unreachable coordinator shows
// up as UNAVAILABLE on the first call.
std::unique_ptr<v1::JobService::Stub> NewJobServiceStub(const std::string& address,
                                                        const proto::ClientSecurity& security = {});

// A context for a unary call: deadline kCallTimeoutSeconds from now.
void SetUnaryDeadline(grpc::ClientContext& context);

// The mapping above. `what` names the RPC for UNIMPLEMENTED ("model downloads").
Status ToStatus(const grpc::Status& status, std::string_view address, std::string_view what);

}  // namespace peaknas::cli

#endif  // PEAKNAS_CLI_CLIENT_H_
