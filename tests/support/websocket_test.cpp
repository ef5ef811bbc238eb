#include "websocket_test.hpp"

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

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

std::vector<std::string> websocket_roundtrip(std::uint16_t port, const std::string& path,
                                             const std::vector<std::string>& messages, ms timeout) {
  std::vector<std::string> echoes;
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws(ioc);
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
  if (!run([&](auto h) { ws.async_handshake("127.0.0.1:" + std::to_string(port), path, h); })) return echoes;
  for (const auto& m : messages) {
    if (!run([&](auto h) { ws.async_write(net::buffer(m), h); })) return echoes;
    beast::flat_buffer buf;
    if (!run([&](auto h) { ws.async_read(buf, h); })) return echoes;
    echoes.push_back(beast::buffers_to_string(buf.data()));
  }
  run([&](auto h) { ws.async_close(websocket::close_code::normal, h); });
  return echoes;
}

}  // namespace kt
