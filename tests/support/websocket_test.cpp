#include "websocket_test.hpp"

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/asio/ssl.hpp>

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

/** Connects `ws` (whose lowest layer is a TCP socket), runs `setup` (e.g. TLS), then the exchange. */
template <class WebSocket, class Setup>
std::vector<std::string> roundtrip(net::io_context& ioc, WebSocket& ws, std::uint16_t port, const std::string& path,
                                   const std::vector<std::string>& messages, ms timeout, Setup setup,
                                   const std::function<void(std::size_t)>& after_echo = {}) {
  std::vector<std::string> echoes;
  auto run = [&](auto&& start) {
    bool done = false;
    beast::error_code result;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    ioc.run_for(timeout);
    return done && !result;
  };
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
  if (!run([&](auto h) { beast::get_lowest_layer(ws).async_connect(ep, h); })) return echoes;
  if (!setup(run)) return echoes;
  if (!run([&](auto h) { ws.async_handshake("127.0.0.1:" + std::to_string(port), path, h); })) return echoes;
  for (const auto& m : messages) {
    if (!run([&](auto h) { ws.async_write(net::buffer(m), h); })) return echoes;
    beast::flat_buffer buf;
    if (!run([&](auto h) { ws.async_read(buf, h); })) return echoes;
    echoes.push_back(beast::buffers_to_string(buf.data()));
    if (after_echo) after_echo(echoes.size() - 1);
  }
  run([&](auto h) { ws.async_close(websocket::close_code::normal, h); });
  return echoes;
}

}  // namespace

std::vector<std::string> websocket_roundtrip(std::uint16_t port, const std::string& path,
                                             const std::vector<std::string>& messages, ms timeout,
                                             const std::function<void(std::size_t)>& after_echo) {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws(ioc);
  return roundtrip(ioc, ws, port, path, messages, timeout, [](auto&) { return true; }, after_echo);
}

std::vector<std::string> websocket_roundtrip_tls(std::uint16_t port, const std::string& path,
                                                 const std::vector<std::string>& messages, ms timeout) {
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_verify_mode(net::ssl::verify_none);
  websocket::stream<net::ssl::stream<beast::tcp_stream>> ws(ioc, ctx);
  return roundtrip(ioc, ws, port, path, messages, timeout, [&](auto& run) {
    return run([&](auto h) { ws.next_layer().async_handshake(net::ssl::stream_base::client, h); });
  });
}

}  // namespace kt
