#include "storage/token_store.h"

#include <sqlite3.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "base/sha256.h"

namespace peaknas::storage {
namespace {

constexpr std::string_view kSecretPrefix = "pnk_";

Status SqliteError(sqlite3* db, std::string_view what) {
  return Status::Internal("tokens: " + std::string(what) + ": " + sqlite3_errmsg(db));
}

// 32 bytes from the kernel's generator, as unpadded base64url (43 characters).
StatusOr<std::string> NewSecret() {
  unsigned char bytes[32];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Internal(std::string("tokens: getrandom: ") + std::strerror(errno));
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out(kSecretPrefix);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return stmt_ != nullptr; }
  Stmt& Bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(stmt_); }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

TokenInfo Row(const Stmt& s) {
  return {.name = s.Text(0),
          .role = s.Text(1),
          .tenant = s.Text(2),
          .created_ms = s.Int(3),
          .revoked_ms = s.Int(4)};
}

}  // namespace

Status ValidateTokenName(std::string_view name, std::string_view field) {
  const bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
      });
  if (ok) return Status::Ok();
  return Status::InvalidArgument(std::string(field) + ": \"" + std::string(name.substr(0, 80)) +
                                 "\" is not 1-64 characters of letters, digits, '.', '_', '-'");
}

struct TokenStore::Impl {
  sqlite3* db = nullptr;
  std::mutex mu;
  ~Impl() { sqlite3_close(db); }
};

TokenStore::TokenStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenStore::~TokenStore() = default;

StatusOr<std::unique_ptr<TokenStore>> TokenStore::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status::Unavailable("tokens: cannot open \"" + path + "\": " + sqlite3_errmsg(impl->db));
  }
  sqlite3_busy_timeout(impl->db, 5000);
  Stmt probe(impl->db, "SELECT 1 FROM tokens LIMIT 1");
  if (!probe.ok()) {
    return Status::FailedPrecondition("tokens: \"" + path +
                                      "\" has no tokens table (open it with the server first)");
  }
  return std::unique_ptr<TokenStore>(new TokenStore(std::move(impl)));
}

StatusOr<std::string> TokenStore::Create(std::string_view name, std::string_view role,
                                         std::string_view tenant, std::int64_t now_ms) {
  PEAKNAS_RETURN_IF_ERROR(ValidateTokenName(name, "name"));
  if (std::find(std::begin(kTokenRoles), std::end(kTokenRoles), role) == std::end(kTokenRoles)) {
    return Status::InvalidArgument("role: \"" + std::string(role) +
                                   "\" is not one of reader, submitter, worker, admin");
  }
  if (tenant == "*") {
    if (role != "reader") {
      return Status::InvalidArgument("tenant: \"*\" (every tenant) is for readers only");
    }
  } else {
    PEAKNAS_RETURN_IF_ERROR(ValidateTokenName(tenant, "tenant"));
  }
  PEAKNAS_ASSIGN_OR_RETURN(std::string secret, NewSecret());
  std::lock_guard lock(impl_->mu);
  Stmt insert(impl_->db,
              "INSERT INTO tokens (name, role, tenant, sha256, created_ms) VALUES (?, ?, ?, ?, ?)");
  if (!insert.ok()) return SqliteError(impl_->db, "prepare");
  insert.Bind(1, name)
      .Bind(2, role)
      .Bind(3, tenant)
      .Bind(4, base::Sha256Hex(secret))
      .Bind(5, now_ms);
  const int rc = insert.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return Status(StatusCode::kAlreadyExists,
                  "name: a token named \"" + std::string(name) + "\" exists (revoked or not)");
  }
  if (rc != SQLITE_DONE) return SqliteError(impl_->db, "insert");
  return secret;
}

StatusOr<std::vector<TokenInfo>> TokenStore::List() {
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db,
         "SELECT name, role, tenant, created_ms, coalesce(revoked_ms, 0) FROM tokens ORDER BY "
         "name");
  if (!s.ok()) return SqliteError(impl_->db, "prepare");
  std::vector<TokenInfo> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(Row(s));
  if (rc != SQLITE_DONE) return SqliteError(impl_->db, "list");
  return out;
}

Status TokenStore::Revoke(std::string_view name, std::int64_t now_ms) {
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db,
         "UPDATE tokens SET revoked_ms = coalesce(revoked_ms, ?) WHERE name = ? RETURNING id");
  if (!s.ok()) return SqliteError(impl_->db, "prepare");
  s.Bind(1, now_ms).Bind(2, name);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) {
    return Status::NotFound("name: no token named \"" + std::string(name) + "\"");
  }
  if (rc != SQLITE_ROW) return SqliteError(impl_->db, "revoke");
  while (s.Step() == SQLITE_ROW) {
  }
  return Status::Ok();
}

StatusOr<std::optional<TokenInfo>> TokenStore::Find(std::string_view secret) {
  if (secret.substr(0, kSecretPrefix.size()) != kSecretPrefix || secret.size() > 128) {
    return std::optional<TokenInfo>();
  }
  const std::string hash = base::Sha256Hex(secret);
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db,
         "SELECT name, role, tenant, created_ms, 0 FROM tokens WHERE sha256 = ? AND revoked_ms "
         "IS NULL");
  if (!s.ok()) return SqliteError(impl_->db, "prepare");
  s.Bind(1, hash);
  const int rc = s.Step();
  if (rc == SQLITE_ROW) return std::optional<TokenInfo>(Row(s));
  if (rc != SQLITE_DONE) return SqliteError(impl_->db, "find");
  return std::optional<TokenInfo>();
}

StatusOr<bool> TokenStore::Configured() {
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db, "SELECT EXISTS (SELECT 1 FROM tokens)");
  if (!s.ok()) return SqliteError(impl_->db, "prepare");
  if (s.Step() != SQLITE_ROW) return SqliteError(impl_->db, "configured");
  return s.Int(0) != 0;
}

}  // namespace peaknas::storage
