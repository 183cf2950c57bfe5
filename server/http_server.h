// HttpServer: HTTP/1.1 on Boost.Beast/Asio, serving an HttpApi-style handler (http_api.h).
//
// One thread runs the sockets (accept, read, write: asynchronous, so open connections cost no
// thread); the handler runs on a small pool, since it may wait for the coordinator's commit.
// Keep-alive is honoured; request bodies are limited to 16 MiB; a connection idle for 60 s is
// closed. With a certificate it serves HTTPS (the TLS handshake first, then the same). This is
// the only translation unit that includes Beast.
//
// Thread-safety: Start and Stop from one thread; the handler is called from the pool's threads
// concurrently.
#ifndef PEAKNAS_SERVER_HTTP_SERVER_H_
#define PEAKNAS_SERVER_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "server/http_api.h"

namespace peaknas::server {

// HTTPS: the certificate chain and its key (PEM files); empty: plaintext HTTP.
struct HttpTlsFiles {
  std::string cert_file;
  std::string key_file;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds `address` ("HOST:PORT"; port 0 picks a free one) and serves, over TLS (1.2 or later)
  // with `tls`. UNAVAILABLE if it cannot bind, INVALID_ARGUMENT for a malformed address or
  // certificate.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address, Handler handler,
                                                     int handler_threads = 2,
                                                     const HttpTlsFiles& tls = {});
  // Stops accepting, closes every connection and waits for the threads.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // "HOST:PORT" with the port actually bound.
  const std::string& address() const;
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_HTTP_SERVER_H_
