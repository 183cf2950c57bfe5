// The clients' channel to the coordinator (the `peaknas` CLI, `peaknas-worker serve`, tests):
// plaintext gRPC with the caller's bearer token, when it has one, in every call's
// "authorization" metadata (server/auth.h).
//
// Thread-safety: the channel is gRPC's and thread-safe; ReadToken is a pure function of the
// file and the environment.
#ifndef PEAKNAS_PROTO_CHANNEL_H_
#define PEAKNAS_PROTO_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "base/status.h"

namespace peaknas::proto {

inline constexpr const char* kTokenEnv = "PEAKNAS_TOKEN";

// The bearer token: the first line of `token_file` (blanks trimmed) when it is not empty,
// else $PEAKNAS_TOKEN, else "" (no token). NOT_FOUND / INVALID_ARGUMENT naming `field` for
// a file that cannot be read or holds no token.
StatusOr<std::string> ReadToken(const std::string& token_file,
                                const std::string& field = "--token-file");

// A channel to `address` that sends `token` (when not empty) with every call.
std::shared_ptr<grpc::Channel> CoordinatorChannel(
    const std::string& address, const std::string& token,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

}  // namespace peaknas::proto

#endif  // PEAKNAS_PROTO_CHANNEL_H_
