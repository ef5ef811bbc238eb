#include "websocket_test.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

// Synchronous Beast calls only, on two stream types: the asynchronous operations of three stream
// types made this the slowest file of the build (nearly three minutes under ASan). A watchdog
// thread bounds the exchange by shutting the socket down when the time is up.

namespace kt {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

void websocket_echo(socket_conn& c) {
  net::io_context ioc;
  tcp::socket sock(ioc, tcp::v4(), ::dup(c.fd()));
  websocket::stream<tcp::socket> ws(std::move(sock));
  beast::error_code ec;
  ws.accept(ec);
  if (ec) return;
  for (;;) {
    beast::flat_buffer buf;
    ws.read(buf, ec);
    if (ec) return;
    ws.text(ws.got_text());
    ws.write(buf.data(), ec);
    if (ec) return;
  }
}

namespace {

/**
 * Shuts the socket of `fd` down (waking any blocked read or write) unless disarmed before
 * `timeout` passes. It works on a duplicate of `fd`: the socket's own descriptor may be closed
 * (and its number reused elsewhere) before the watchdog is disarmed.
 */
class watchdog {
 public:
  watchdog(int fd, ms timeout)
      : fd_(::dup(fd)), thread_([this, timeout] {
          std::unique_lock lock(mutex_);
          if (!cv_.wait_for(lock, timeout, [this] { return disarmed_; }) && fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
        }) {}
  ~watchdog() {
    {
      std::lock_guard lock(mutex_);
      disarmed_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

/** Handshakes `ws` (already connected), sends each message and collects the echoes. */
template <class WebSocket>
std::vector<std::string> exchange(WebSocket& ws, std::uint16_t port, const std::string& path,
                                  const std::vector<std::string>& messages,
                                  const std::function<void(std::size_t)>& after_echo) {
  std::vector<std::string> echoes;
  beast::error_code ec;
  ws.handshake("127.0.0.1:" + std::to_string(port), path, ec);
  if (ec) return echoes;
  for (const auto& m : messages) {
    ws.write(net::buffer(m), ec);
    beast::flat_buffer buf;
    if (!ec) ws.read(buf, ec);
    if (ec) return echoes;
    echoes.push_back(beast::buffers_to_string(buf.data()));
    if (after_echo) after_echo(echoes.size() - 1);
  }
  ws.close(websocket::close_code::normal, ec);
  return echoes;
}

tcp::endpoint loopback(std::uint16_t port) { return {net::ip::make_address("127.0.0.1"), port}; }

}  // namespace

std::vector<std::string> websocket_roundtrip(std::uint16_t port, const std::string& path,
                                             const std::vector<std::string>& messages, ms timeout,
                                             const std::function<void(std::size_t)>& after_echo) {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  beast::error_code ec;
  ws.next_layer().open(tcp::v4(), ec);
  if (ec) return {};
  watchdog guard(ws.next_layer().native_handle(), timeout);
  ws.next_layer().connect(loopback(port), ec);
  if (ec) return {};
  return exchange(ws, port, path, messages, after_echo);
}

std::vector<std::string> websocket_roundtrip_tls(std::uint16_t port, const std::string& path,
                                                 const std::vector<std::string>& messages, ms timeout) {
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_verify_mode(net::ssl::verify_none);
  websocket::stream<net::ssl::stream<tcp::socket>> ws(ioc, ctx);
  auto& sock = beast::get_lowest_layer(ws);
  beast::error_code ec;
  sock.open(tcp::v4(), ec);
  if (ec) return {};
  watchdog guard(sock.native_handle(), timeout);
  sock.connect(loopback(port), ec);
  if (!ec) ws.next_layer().handshake(net::ssl::stream_base::client, ec);
  if (ec) return {};
  return exchange(ws, port, path, messages, {});
}

}  // namespace kt
