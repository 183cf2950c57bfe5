#include "server/http_server.h"

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace peaknas::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::uint64_t kMaxBody = std::uint64_t{16} << 20;
constexpr auto kIdle = std::chrono::seconds(60);

// Whether the server's sockets may still be used from outside its thread: an event stream's
// text arrives on another thread (ParkedCalls'), and must not reach a stopped io_context.
struct Gate {
  std::mutex mu;
  bool open = true;  // guarded by mu
};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: read a request, have the pool answer it, write the answer, repeat while the
// client keeps the connection alive. `Stream` is beast::tcp_stream (plaintext) or TlsStream,
// whose handshake comes first.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... StreamArgs>
  Session(asio::thread_pool& pool, const HttpServer::Handler& handler, std::shared_ptr<Gate> gate,
          StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...),
        pool_(pool),
        handler_(handler),
        gate_(std::move(gate)) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, TlsStream>) {
        beast::get_lowest_layer(self->stream_).expires_after(kIdle);
        self->stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return self->EndEvents();  // not TLS, or refused
          self->Read();
        });
      } else {
        self->Read();
      }
    });
  }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;
  using std::enable_shared_from_this<Session<Stream>>::weak_from_this;

  auto& Socket() { return beast::get_lowest_layer(stream_).socket(); }

  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxBody);
    beast::get_lowest_layer(stream_).expires_after(kIdle);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close();  // the client left, timed out or sent garbage
    auto request = std::make_shared<http::request<http::string_body>>(parser_->release());
    asio::post(pool_, [self = shared_from_this(), request] {
      HttpRequest in{.method = std::string(request->method_string()),
                     .target = std::string(request->target()),
                     .body = std::move(request->body()),
                     .last_event_id = std::string((*request)["Last-Event-ID"]),
                     .authorization = std::string((*request)[http::field::authorization])};
      HttpResponse out = self->handler_(in);
      if (out.stream) {
        auto stream = std::move(out.stream);
        return asio::dispatch(self->stream_.get_executor(), [self, stream, request] {
          self->StartEvents(stream, request->version());
        });
      }
      auto response = std::make_shared<http::response<http::string_body>>(
          static_cast<http::status>(out.status), request->version());
      response->set(http::field::server, "peaknas-server");
      response->set(http::field::content_type, out.content_type);
      for (const auto& [name, value] : out.headers) response->set(name, value);
      response->keep_alive(request->keep_alive());
      if (request->method() != http::verb::head) response->body() = std::move(out.body);
      response->prepare_payload();
      asio::dispatch(self->stream_.get_executor(), [self, response] { self->Write(response); });
    });
  }

  void Write(std::shared_ptr<http::response<http::string_body>> response) {
    beast::get_lowest_layer(stream_).expires_after(kIdle);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
                        if (ec || !response->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  // An event stream: the header (no length; the connection closes at the end), then each text
  // the stream produces, written as it comes. A read that completes means the client left.
  void StartEvents(std::shared_ptr<EventStream> events, unsigned version) {
    events_ = std::move(events);
    auto header = std::make_shared<http::response<http::empty_body>>(http::status::ok, version);
    header->set(http::field::server, "peaknas-server");
    header->set(http::field::content_type, "text/event-stream");
    header->set(http::field::cache_control, "no-cache");
    header->keep_alive(false);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*header);
    beast::get_lowest_layer(stream_).expires_never();
    http::async_write_header(
        stream_, *serializer,
        [self = shared_from_this(), header, serializer](beast::error_code ec, std::size_t) {
          if (ec) return self->EndEvents();
          self->WatchForLeaving();
          self->NextEvents();
        });
  }

  // The stream's callback holds the session weakly: the session belongs to the io_context's
  // handlers, so it is destroyed on that thread (or with the io_context), never by the thread
  // that produced the text; and nothing reaches a stopped server (the gate).
  void NextEvents() {
    events_->Next([weak = weak_from_this(), gate = gate_](std::string text, bool end) {
      std::lock_guard lock(gate->mu);
      if (!gate->open) return;
      auto self = weak.lock();
      if (!self) return;
      auto executor = self->stream_.get_executor();
      asio::dispatch(executor, [self = std::move(self), text = std::move(text), end]() mutable {
        self->WriteEvents(std::move(text), end);
      });
    });
  }

  void WriteEvents(std::string text, bool end) {
    if (left_) return EndEvents();
    auto data = std::make_shared<std::string>(std::move(text));
    asio::async_write(stream_, asio::buffer(*data),
                      [self = shared_from_this(), data, end](beast::error_code ec, std::size_t) {
                        if (ec || end) return self->EndEvents();
                        self->NextEvents();
                      });
  }

  void WatchForLeaving() {
    stream_.async_read_some(asio::buffer(leaving_byte_),
                            [self = shared_from_this()](beast::error_code, std::size_t) {
                              self->left_ = true;
                              if (self->events_) self->events_->Cancel();
                            });
  }

  void EndEvents() {
    if (events_) events_->Cancel();
    beast::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
  }

  void Close() {
    beast::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::thread_pool& pool_;
  const HttpServer::Handler& handler_;
  const std::shared_ptr<Gate> gate_;
  std::shared_ptr<EventStream> events_;  // an event stream being served
  std::array<char, 1> leaving_byte_{};
  bool left_ = false;  // the event stream's client closed the connection
};

}  // namespace

struct HttpServer::Impl {
  Impl(Handler h, int threads) : handler(std::move(h)), pool(threads) {}

  void Accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // stopped
      if (tls) {
        std::make_shared<Session<TlsStream>>(pool, handler, gate, std::move(socket), *tls)->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(pool, handler, gate, std::move(socket))
            ->Start();
      }
      Accept();
    });
  }

  Handler handler;
  std::optional<asio::ssl::context> tls;  // set: HTTPS
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::thread_pool pool;
  std::thread runner;
  std::string address;
  bool stopped = false;
};

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address, Handler handler,
                                                        int handler_threads,
                                                        const HttpTlsFiles& tls) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("http-listen: \"" + address + "\" is not HOST:PORT");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1 || port < 0 || port > 65535) throw std::out_of_range("");
  } catch (const std::exception&) {
    return Status::InvalidArgument("http-listen: \"" + address +
                                   "\": the port is not in [0, 65535]");
  }
  auto impl = std::make_unique<Impl>(std::move(handler), handler_threads);
  beast::error_code ec;
  if (!tls.cert_file.empty()) {
    impl->tls.emplace(asio::ssl::context::tls_server);
    impl->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                               asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                               asio::ssl::context::no_tlsv1_1,
                           ec);
    if (!ec) impl->tls->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) {
      return Status::InvalidArgument("tls-cert: \"" + tls.cert_file + "\": " + ec.message());
    }
    impl->tls->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec) return Status::InvalidArgument("tls-key: \"" + tls.key_file + "\": " + ec.message());
  }
  const auto ip = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Status::InvalidArgument("http-listen: \"" + host + "\" is not an IP address");
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(StatusCode::kUnavailable,
                  "http-listen: cannot bind \"" + address + "\": " + ec.message());
  }
  const auto bound = impl->acceptor.local_endpoint();
  const std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                    : bound.address().to_string();
  impl->address = shown + ":" + std::to_string(bound.port());
  impl->Accept();
  impl->runner = std::thread([io = &impl->io] { io->run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

const std::string& HttpServer::address() const { return impl_->address; }

void HttpServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->io, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  {
    std::lock_guard lock(impl_->gate->mu);
    impl_->gate->open = false;  // event streams' texts are dropped from here on
  }
  impl_->io.stop();  // no read completes any more, so nothing new reaches the pool
  impl_->runner.join();
  impl_->pool.join();  // answers being computed finish (their writes are dropped)
}

}  // namespace peaknas::server
