#include "server/auth.h"

#include <spdlog/spdlog.h>

#include "base/enum_names.h"

namespace peaknas::server {
namespace {

bool Allows(std::string_view role, Permission permission) {
  if (role == "admin") return true;
  switch (permission) {
    case Permission::kRead:
      return role == "reader" || role == "submitter";
    case Permission::kSubmit:
      return role == "submitter";
    case Permission::kWork:
      return role == "worker";
  }
  return false;
}

constexpr EnumNames<Permission, 3> kWhat{{{{Permission::kRead, "read jobs"},
                                           {Permission::kSubmit, "submit or cancel jobs"},
                                           {Permission::kWork, "act as a worker"}}}};

std::string_view What(Permission permission) { return kWhat.Name(permission, "do that"); }

}  // namespace

StatusOr<bool> Authenticator::Configured() const {
  if (tokens_ == nullptr) return false;
  if (configured_.load(std::memory_order_relaxed)) return true;
  PEAKNAS_ASSIGN_OR_RETURN(const bool configured, tokens_->Configured());
  if (configured) configured_.store(true, std::memory_order_relaxed);
  return configured;
}

bool Authenticator::required() const {
  const StatusOr<bool> configured = Configured();
  return !configured.ok() || *configured;  // unreadable: closed, not open
}

StatusOr<Caller> Authenticator::Check(std::string_view authorization, Permission permission) const {
  PEAKNAS_ASSIGN_OR_RETURN(const bool configured, Configured());
  if (!configured) return Caller{.name = "", .role = "admin", .tenant = "", .open = true};

  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    return Status(StatusCode::kUnauthenticated,
                  "this coordinator needs a bearer token (peaknas --token-file FILE or "
                  "$PEAKNAS_TOKEN; \"authorization: Bearer TOKEN\")");
  }
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    return Status(StatusCode::kUnauthenticated,
                  "authorization: not a bearer token (\"Bearer TOKEN\")");
  }
  PEAKNAS_ASSIGN_OR_RETURN(const std::optional<storage::TokenInfo> token,
                           tokens_->Find(authorization.substr(kBearer.size())));
  if (!token) {
    return Status(StatusCode::kUnauthenticated, "the bearer token is unknown or revoked");
  }
  Caller caller{.name = token->name, .role = token->role, .tenant = token->tenant};
  if (!Allows(caller.role, permission)) {
    spdlog::info("token {} ({}) refused: may not {}", caller.name, caller.role, What(permission));
    return Status(StatusCode::kPermissionDenied, "token \"" + caller.name + "\" (role " +
                                                     caller.role + ") may not " +
                                                     std::string(What(permission)));
  }
  return caller;
}

StatusOr<Caller> Authenticator::Check(const grpc::ServerContextBase* context,
                                      Permission permission) const {
  std::string_view authorization;
  if (context != nullptr) {
    const auto& metadata = context->client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      authorization = std::string_view(it->second.data(), it->second.size());
    }
  }
  return Check(authorization, permission);
}

}  // namespace peaknas::server
