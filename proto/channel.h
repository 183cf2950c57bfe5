// The clients' channel to the coordinator (the `peaknas` CLI, `peaknas-worker serve`, tests):
// gRPC, over TLS when the client has a CA bundle for the server's certificate (and with its own
// certificate when the server requires one), with the caller's bearer token, when it has one,
// in every call's "authorization" metadata (server/auth.h).
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

// Where a client finds the coordinator unless told (--coordinator, else this variable).
inline constexpr const char* kDefaultCoordinator = "127.0.0.1:50051";
inline constexpr const char* kCoordinatorEnv = "PEAKNAS_COORDINATOR";
inline constexpr const char* kTokenEnv = "PEAKNAS_TOKEN";
inline constexpr const char* kTlsCaEnv = "PEAKNAS_TLS_CA";
inline constexpr const char* kTlsCertEnv = "PEAKNAS_TLS_CERT";
inline constexpr const char* kTlsKeyEnv = "PEAKNAS_TLS_KEY";

// What a client presents: PEM text and the token itself.
struct ClientSecurity {
  std::string token;     // bearer token; empty: none
  std::string ca_pem;    // not empty: TLS, the server's certificate must chain to these CAs
  std::string cert_pem;  // the client's certificate chain (mutual TLS), with key_pem
  std::string key_pem;
};

// Where it comes from: the flags' files (each falls back to its environment variable above
// when empty).
struct ClientSecurityFiles {
  std::string token_file;  // --token-file
  std::string tls_ca;      // --tls-ca
  std::string tls_cert;    // --tls-cert
  std::string tls_key;     // --tls-key
};

// Reads the files. NOT_FOUND / INVALID_ARGUMENT naming the flag for a file that cannot be
// read or is empty, or a certificate without its key (or the reverse), or either without a CA.
StatusOr<ClientSecurity> ReadClientSecurity(const ClientSecurityFiles& files);

// The bearer token: the first line of `token_file` (blanks trimmed) when it is not empty,
// else $PEAKNAS_TOKEN, else "" (no token). NOT_FOUND / INVALID_ARGUMENT naming `field` for
// a file that cannot be read or holds no token.
StatusOr<std::string> ReadToken(const std::string& token_file,
                                const std::string& field = "--token-file");

// A channel to `address` that sends `token` (when not empty) with every call; plaintext.
std::shared_ptr<grpc::Channel> CoordinatorChannel(
    const std::string& address, const std::string& token,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());
// The same with `security`: TLS when it has a CA bundle.
std::shared_ptr<grpc::Channel> CoordinatorChannel(
    const std::string& address, const ClientSecurity& security,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

}  // namespace peaknas::proto

#endif  // PEAKNAS_PROTO_CHANNEL_H_
