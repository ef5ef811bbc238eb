// stream::write_now, the synchronous first attempt of the proxy's head writes, on real sockets:
// all of it when the socket has room, the part that fits (and no error) when it has not, the rest
// through async_write from where it stopped, and a real error when the peer is gone.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include <array>
#include <string>

#include "proxy/stream.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

/** A connected pair on 127.0.0.1: `client` (to write on, as a proxy stream) and `server`. */
struct socket_pair {
  net::io_context ioc;
  tcp::socket server{ioc};
  kinfra::proxy::stream client{tcp::socket(ioc)};
  socket_pair() {
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    client.socket().connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

}  // namespace

TEST(StreamWrite, AllAtOnceWhenTheSocketHasRoom) {
  socket_pair p;
  const std::string a = "GET / HTTP/1.1\r\n", b = "Host: x\r\n", c = "\r\n";
  std::array<net::const_buffer, 3> parts{net::buffer(a), net::buffer(b), net::buffer(c)};
  boost::system::error_code ec;
  EXPECT_EQ(p.client.write_now(parts, ec), a.size() + b.size() + c.size());
  EXPECT_FALSE(ec);
  std::string got(a.size() + b.size() + c.size(), '\0');
  net::read(p.server, net::buffer(got));
  EXPECT_EQ(got, a + b + c);
}

TEST(StreamWrite, APartWhenTheSocketIsFullAndTheRestAsynchronouslyInOrder) {
  socket_pair p;
  // A small send buffer, and nobody reading yet: the write cannot complete at once.
  p.client.socket().set_option(net::socket_base::send_buffer_size(4096));
  std::string head = "HTTP/1.1 200 OK\r\n", body(1 << 20, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  std::array<net::const_buffer, 2> parts{net::buffer(head), net::buffer(body)};
  const std::size_t total = head.size() + body.size();
  boost::system::error_code ec;
  const std::size_t first = p.client.write_now(parts, ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_LT(first, total);
  // (Room again for the rest, so that it does not crawl through a 4 KiB buffer.)
  p.client.socket().set_option(net::socket_base::send_buffer_size(1 << 20));
  // The rest, from where write_now stopped, as the session writes it.
  std::size_t rest_sent = 0;
  net::co_spawn(
      p.ioc,
      [&]() -> net::awaitable<void> {
        boost::beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(parts);
        rest.consume(first);
        auto [wec, n] = co_await net::async_write(p.client, rest, net::as_tuple(net::use_awaitable));
        EXPECT_FALSE(wec) << wec.message();
        rest_sent = n;
      },
      net::detached);
  std::string got(total, '\0');
  std::size_t have = 0;
  net::co_spawn(
      p.ioc,
      [&]() -> net::awaitable<void> {
        auto [rec, n] = co_await net::async_read(p.server, net::buffer(got), net::as_tuple(net::use_awaitable));
        EXPECT_FALSE(rec) << rec.message();
        have = n;
      },
      net::detached);
  p.ioc.run();
  EXPECT_EQ(first + rest_sent, total);
  ASSERT_EQ(have, total);
  EXPECT_TRUE(got == head + body) << "the bytes arrive whole and in order";
}

TEST(StreamWrite, AnErrorWhenThePeerIsGone) {
  socket_pair p;
  p.server.close();
  const std::string data(64 * 1024, 'x');
  boost::system::error_code ec;
  // The first write may still be taken by the kernel; the peer's reset fails a later one.
  for (int i = 0; i < 100 && !ec; ++i) p.client.write_now(net::buffer(data), ec);
  EXPECT_TRUE(ec == net::error::broken_pipe || ec == net::error::connection_reset) << ec.message();
}

TEST(StreamWrite, NothingOnTlsWhichIsWrittenAsynchronously) {
  socket_pair p;
  net::ssl::context ctx(net::ssl::context::tls_client);
  p.client.start_tls(ctx);
  boost::system::error_code ec;
  EXPECT_EQ(p.client.write_now(net::buffer(std::string("x")), ec), 0u);
  EXPECT_FALSE(ec);
}
