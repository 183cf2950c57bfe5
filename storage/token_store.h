// Bearer tokens of the coordinator's callers, in the coordinator's SQLite file (schema 7's
// `tokens` table).
//
// A token is "pnk_" and 43 base64url characters (32 random bytes from getrandom). Only its
// SHA-256 is stored; the secret is shown once, by Create. Each token has a unique name, a role
// (reader, submitter, worker, admin) and a tenant: the jobs its submissions belong to and, for
// a reader or submitter, the jobs it may see ("*" lets a reader see every tenant's).
//
// Revoke keeps the row with revoked_ms set, so that Configured stays true: once a token has
// been created, a server never goes back to accepting calls without one. Find reads the table
// on every call, so a revocation by another process (`peaknas-server token revoke` while the
// server runs) takes effect on the next call.
//
// The store has its own connection to the file; open it after SqliteStore::Open has brought
// the schema to version 7 or later.
//
// Thread-safety: every method may be called from several threads at once (one connection,
// behind a mutex).
#ifndef PEAKNAS_STORAGE_TOKEN_STORE_H_
#define PEAKNAS_STORAGE_TOKEN_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace peaknas::storage {

struct TokenInfo {
  std::string name;
  std::string role;    // reader, submitter, worker, admin
  std::string tenant;  // "*" (a reader of every tenant) or a tenant name
  std::int64_t created_ms = 0;
  std::int64_t revoked_ms = 0;  // 0 while valid
};

// The roles, least to most privileged.
inline constexpr std::string_view kTokenRoles[] = {"reader", "submitter", "worker", "admin"};

// INVALID_ARGUMENT naming `field` unless `name` is 1-64 characters of [A-Za-z0-9._-].
Status ValidateTokenName(std::string_view name, std::string_view field);

class TokenStore {
 public:
  // FAILED_PRECONDITION if the file has no tokens table (schema older than 7).
  static StatusOr<std::unique_ptr<TokenStore>> Open(const std::string& path);
  ~TokenStore();
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // A new token; returns its secret (the only time it is seen). INVALID_ARGUMENT for a bad
  // name, role or tenant (tenant "*" only for a reader); ALREADY_EXISTS for a name in use.
  StatusOr<std::string> Create(std::string_view name, std::string_view role,
                               std::string_view tenant, std::int64_t now_ms);
  // Every token, valid and revoked, by name.
  StatusOr<std::vector<TokenInfo>> List();
  // NOT_FOUND for an unknown name; revoking a revoked token changes nothing.
  Status Revoke(std::string_view name, std::int64_t now_ms);
  // The valid (not revoked) token whose secret this is; nullopt for any other string.
  StatusOr<std::optional<TokenInfo>> Find(std::string_view secret);
  // Whether any token was ever created (revoked ones count).
  StatusOr<bool> Configured();

 private:
  struct Impl;
  explicit TokenStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peaknas::storage

#endif  // PEAKNAS_STORAGE_TOKEN_STORE_H_
