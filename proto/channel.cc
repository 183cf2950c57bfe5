#include "proto/channel.h"

#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>
#include <fstream>
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
  if (token.empty()) {
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  std::vector<std::unique_ptr<exp::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerFactory>(token));
  return exp::CreateCustomChannelWithInterceptors(address, grpc::InsecureChannelCredentials(), args,
                                                  std::move(interceptors));
}

}  // namespace peaknas::proto
