// A small HTTP/1.1 client for tests that talk to a real server on 127.0.0.1: one request per
// connection (Connection: close), or several written on one connection to check keep-alive.
// POSIX sockets only, so a test needs no HTTP library to check the server's.
//
// Header-only; for test executables only.
#ifndef PEAKNAS_TESTS_SUPPORT_HTTP_CLIENT_H_
#define PEAKNAS_TESTS_SUPPORT_HTTP_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace peaknas::testing {

struct HttpReply {
  int status = 0;                              // 0: no answer (connection refused, closed early)
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

// A connected socket to "HOST:PORT" (an IPv4 address), or -1.
inline int ConnectTo(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<unsigned short>(std::atoi(address.c_str() + colon + 1)));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) return -1;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline std::string RequestText(const std::string& method, const std::string& target,
                               const std::string& body, bool keep_alive,
                               const std::string& authorization = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: test\r\n";
  if (!keep_alive) r += "Connection: close\r\n";
  if (!authorization.empty()) r += "Authorization: " + authorization + "\r\n";
  if (!body.empty() || method == "POST") {
    r +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return r + "\r\n" + body;
}

// Parses every response in `raw` (responses with Content-Length, as the server sends them).
inline std::vector<HttpReply> ParseReplies(const std::string& raw) {
  std::vector<HttpReply> out;
  std::size_t at = 0;
  while (at < raw.size()) {
    const auto end = raw.find("\r\n\r\n", at);
    if (end == std::string::npos) break;
    HttpReply reply;
    const std::string head = raw.substr(at, end - at);
    reply.status = std::atoi(head.c_str() + head.find(' ') + 1);
    std::size_t line = head.find("\r\n");
    while (line != std::string::npos) {
      const std::size_t next = head.find("\r\n", line + 2);
      const std::string h =
          head.substr(line + 2, next == std::string::npos ? std::string::npos : next - line - 2);
      const auto colon = h.find(':');
      if (colon != std::string::npos) {
        std::string name = h.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        reply.headers[name] = h.substr(h.find_first_not_of(' ', colon + 1));
      }
      line = next;
    }
    const std::size_t length =
        std::stoul(reply.headers.count("content-length") != 0 ? reply.headers["content-length"]
                                                              : std::string("0"));
    reply.body = raw.substr(end + 4, length);
    at = end + 4 + length;
    out.push_back(std::move(reply));
  }
  return out;
}

// Writes `requests` on one connection (the last one with Connection: close) and reads until
// the server closes it.
inline std::vector<HttpReply> HttpExchange(const std::string& address,
                                           const std::vector<std::string>& requests) {
  const int fd = ConnectTo(address);
  if (fd < 0) return {};
  std::string all;
  for (const std::string& r : requests) all += r;
  for (std::size_t sent = 0; sent < all.size();) {
    const ssize_t n = write(fd, all.data() + sent, all.size() - sent);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buffer[65536];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) raw.append(buffer, static_cast<std::size_t>(n));
  close(fd);
  return ParseReplies(raw);
}

// `authorization`: the Authorization header's value; none when empty.
inline HttpReply Http(const std::string& address, const std::string& method,
                      const std::string& target, const std::string& body = "",
                      const std::string& authorization = "") {
  const auto replies =
      HttpExchange(address, {RequestText(method, target, body, false, authorization)});
  return replies.empty() ? HttpReply{} : replies[0];
}

}  // namespace peaknas::testing

#endif  // PEAKNAS_TESTS_SUPPORT_HTTP_CLIENT_H_
