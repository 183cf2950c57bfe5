#include "proto/channel.h"

#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

namespace peaknas::proto {
namespace {

namespace exp = grpc::experimental;

// Adds "authorization: Bearer TOKEN" to each call's initial metadata.
class BearerInterceptor final : public exp::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* value) : value_(value) {}
  void Intercept(exp::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            exp::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *value_});
    }
    methods->Proceed();
  }

 private:
  const std::string* value_;
};

class BearerFactory final : public exp::ClientInterceptorFactoryInterface {
 public:
  explicit BearerFactory(std::string token) : value_("Bearer " + std::move(token)) {}
  exp::Interceptor* CreateClientInterceptor(exp::ClientRpcInfo*) override {
    return new BearerInterceptor(&value_);
  }

 private:
  const std::string value_;  // the factory lives as long as the channel
};

std::string Trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

StatusOr<std::string> ReadToken(const std::string& token_file, const std::string& field) {
  if (token_file.empty()) {
    const char* env = std::getenv(kTokenEnv);
    return env == nullptr ? std::string() : Trim(env);
  }
  std::ifstream in(token_file);
  if (!in) return Status::NotFound(field + ": cannot read \"" + token_file + "\"");
  std::string line;
  std::getline(in, line);
  line = Trim(line);
  if (line.empty()) {
    return Status::InvalidArgument(field + ": \"" + token_file +
                                   "\" is empty (it should hold the token `peaknas-server "
                                   "token create` printed)");
  }
  return line;
}

std::shared_ptr<grpc::Channel> CoordinatorChannel(const std::string& address,
                                                  const std::string& token,
                                                  const grpc::ChannelArguments& args) {
  return CoordinatorChannel(address, ClientSecurity{.token = token}, args);
}

std::shared_ptr<grpc::Channel> CoordinatorChannel(const std::string& address,
                                                  const ClientSecurity& security,
                                                  const grpc::ChannelArguments& args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!security.ca_pem.empty()) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = security.ca_pem;
    tls.pem_cert_chain = security.cert_pem;
    tls.pem_private_key = security.key_pem;
    credentials = grpc::SslCredentials(tls);
  }
  if (security.token.empty()) return grpc::CreateCustomChannel(address, credentials, args);
  std::vector<std::unique_ptr<exp::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerFactory>(security.token));
  return exp::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                  std::move(interceptors));
}

namespace {

// The file's bytes; `path` empty: $env's file, or "" when that is unset too.
StatusOr<std::string> ReadPem(std::string path, const char* env, const std::string& field) {
  if (path.empty()) {
    const char* from_env = std::getenv(env);
    if (from_env == nullptr || *from_env == '\0') return std::string();
    path = from_env;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(field + ": cannot read \"" + path + "\"");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos) {
    return Status::InvalidArgument(field + ": \"" + path + "\" holds no PEM block");
  }
  return text;
}

}  // namespace

StatusOr<ClientSecurity> ReadClientSecurity(const ClientSecurityFiles& files) {
  ClientSecurity out;
  PEAKNAS_ASSIGN_OR_RETURN(out.token, ReadToken(files.token_file));
  PEAKNAS_ASSIGN_OR_RETURN(out.ca_pem, ReadPem(files.tls_ca, kTlsCaEnv, "--tls-ca"));
  PEAKNAS_ASSIGN_OR_RETURN(out.cert_pem, ReadPem(files.tls_cert, kTlsCertEnv, "--tls-cert"));
  PEAKNAS_ASSIGN_OR_RETURN(out.key_pem, ReadPem(files.tls_key, kTlsKeyEnv, "--tls-key"));
  if (out.cert_pem.empty() != out.key_pem.empty()) {
    return Status::InvalidArgument(out.cert_pem.empty() ? "--tls-key: given without --tls-cert"
                                                        : "--tls-cert: given without --tls-key");
  }
  if (!out.cert_pem.empty() && out.ca_pem.empty()) {
    return Status::InvalidArgument(
        "--tls-cert: a client certificate needs TLS; give the server's CA with --tls-ca");
  }
  return out;
}

}  // namespace peaknas::proto
