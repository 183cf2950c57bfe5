// Who is calling, and whether it may: bearer tokens (storage/token_store.h) mapped to roles
// and tenants, for the gRPC services and the HTTP API alike.
//
//   role       may                                                    sees
//   reader     read jobs, trials, frontiers, workers, calibrations,   its tenant's jobs
//              models                                                 ("*": every tenant's)
//   submitter  what a reader may, and submit and cancel jobs          its tenant's jobs
//   worker     register, lease, heartbeat, report, upload (its own    no jobs
//              leases only), nothing else
//   admin      everything                                             every job
//
// A call without a valid token is UNAUTHENTICATED; a valid token whose role does not allow
// the call is PERMISSION_DENIED. A job of another tenant is NOT_FOUND, with the message an
// unknown id gets: its existence is not told. While no token was ever created (TokenStore::
// Configured), every call is the open caller, an admin named "" whose jobs have tenant "": a
// loopback `peaknas run` needs no set-up. The secret is never logged or echoed.
//
// Thread-safety: Check may be called from several threads at once.
#ifndef PEAKNAS_SERVER_AUTH_H_
#define PEAKNAS_SERVER_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <string>
#include <string_view>

#include "base/status.h"
#include "storage/token_store.h"

namespace peaknas::server {

enum class Permission { kRead, kSubmit, kWork };

struct Caller {
  std::string name;    // the token's name; "" for the open caller
  std::string role;    // reader, submitter, worker, admin
  std::string tenant;  // its jobs' tenant; "*" for a reader of every tenant
  bool open = false;   // no token was ever created: everyone is this admin

  bool admin() const { return role == "admin"; }
  // Whether it sees the jobs of tenant `owner`.
  bool Sees(std::string_view owner) const { return admin() || tenant == "*" || tenant == owner; }
};

class Authenticator {
 public:
  // `tokens` may be null: every call is the open caller.
  explicit Authenticator(storage::TokenStore* tokens) : tokens_(tokens) {}
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // `authorization` is the header's value ("Bearer pnk_..."; empty when absent).
  StatusOr<Caller> Check(std::string_view authorization, Permission permission) const;
  // Reads the call's "authorization" metadata.
  StatusOr<Caller> Check(const grpc::ServerContextBase* context, Permission permission) const;

  // Whether calls need a token (some token was ever created).
  bool required() const;

 private:
  // Whether tokens are needed; once true it stays true (revoked tokens count), so it is read
  // from the store only until then, not on every call.
  StatusOr<bool> Configured() const;

  storage::TokenStore* tokens_;
  mutable std::atomic<bool> configured_{false};
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_AUTH_H_
