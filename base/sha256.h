// SHA-256 digests for artifact checksums, computed by OpenSSL's libcrypto (EVP), which gRPC
// already depends on. Library `peaknas_sha256`: no SQLite, so both the coordinator (server/) and
// the worker (worker/) link it without linking peaknas_storage; OpenSSL stays out of this header.
//
//   Sha256 h; h.Update(bytes); ...; std::string hex = h.HexDigest();  // 64 lower-case digits
//
// Thread-safety: a Sha256 object is not thread-safe; distinct objects are independent.
#ifndef PEAKNAS_BASE_SHA256_H_
#define PEAKNAS_BASE_SHA256_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace peaknas::base {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Feeds more bytes. Not to be called after HexDigest.
  void Update(const void* data, std::size_t size);
  void Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }

  // Finishes the hash: 64 lower-case hex digits. Call once.
  std::string HexDigest();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

// The hex digest of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// The hex digest of the file at `path`; nullopt if it cannot be read.
std::optional<std::string> Sha256OfFile(const std::string& path);

}  // namespace peaknas::base

#endif  // PEAKNAS_BASE_SHA256_H_
