// Upgrade (WebSocket) requests are tunnelled byte for byte after the upstream's 101.
#include <gtest/gtest.h>

#include "http_test.hpp"
#include "websocket_test.hpp"

TEST(ProxyUpgrade, TunnelsAWebSocketConversation) {
  kt::test_upstream up([](kt::socket_conn& c) { kt::websocket_echo(c); });
  kt::kinfra_process k(kt::one_service(up.url()));
  std::vector<std::string> messages{"hello", std::string(100000, 'w'), "", "bye"};
  EXPECT_EQ(kt::websocket_roundtrip(k.port(), "/ws", messages), messages) << k.log();
}

TEST(ProxyUpgrade, TunnelsBytesExactlyAndPassesUpgradeHeaders) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request_header(req)) return;
    if (req.headers.get("Upgrade") != "x-echo" || req.headers.get("Connection") != "upgrade") {
      c.send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    c.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-echo\r\nConnection: Upgrade\r\n\r\nserver-first|");
    std::string early = std::move(c.buffered());
    if (!early.empty()) c.send(early);
    char buf[4096];
    for (;;) {
      long n = c.recv_some(buf, sizeof buf, std::chrono::seconds(10));
      if (n <= 0) return;
      c.send(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  // The first tunnel bytes ride in the same packet as the request.
  c->send("GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\n\x01\x02 raw\xff");
  std::string got;
  char buf[4096];
  while (got.find("\xff") == std::string::npos) {
    long n = c->recv_some(buf, sizeof buf, std::chrono::seconds(5));
    ASSERT_GT(n, 0) << got << "\n" << k.log();
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 101", 0), 0u) << got;
  EXPECT_NE(got.find("Upgrade: x-echo"), std::string::npos);
  EXPECT_NE(got.find("\r\n\r\nserver-first|\x01\x02 raw\xff"), std::string::npos) << got;
  std::string binary("\x00\x10\r\n\r\nGET / HTTP/1.1\r\n", 19);
  c->send(binary);
  std::string echo;
  while (echo.size() < binary.size()) {
    long n = c->recv_some(buf, sizeof buf, std::chrono::seconds(5));
    ASSERT_GT(n, 0);
    echo.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(echo, binary) << "tunnel bytes are not HTTP any more";
}

TEST(ProxyUpgrade, ADeclinedUpgradeIsAnOrdinaryResponse) {
  kt::test_upstream up;  // the echo upstream ignores Upgrade and answers 200
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 200);
  c->send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(kt::parse_echo(res.body).target, "/again");
}

TEST(ProxyUpgrade, ClosingOneSideEndsTheTunnel) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request_header(req)) return;
    c.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nbye");
  });  // and closes
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n");
  bool eof = false;
  std::string all = c->recv_all(std::chrono::seconds(5), &eof);
  EXPECT_TRUE(eof);
  EXPECT_NE(all.find("\r\n\r\nbye"), std::string::npos);
}

TEST(ProxyUpgrade, IdleTunnelIsClosedAfterTunnelIdle) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request_header(req)) return;
    c.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
    c.recv_all(std::chrono::seconds(10));
  });
  kt::kinfra_process k(kt::one_service(up.url(), "timeouts: { tunnel_idle: 1s }\n"));
  auto c = kt::connect_to(k.port());
  c->send("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n");
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c->wait_closed(std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2500));
}

TEST(ProxyUpgrade, AnH2cUpgradeIsNeverPassedOn) {
  // h2c smuggling: an upstream that accepted the upgrade would take HTTP/2 past the proxy. The
  // request is served as plain HTTP/1.1, without Upgrade: h2c or HTTP2-Settings, on the same
  // connection (whether or not Connection names HTTP2-Settings).
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  for (const char* connection : {"Upgrade, HTTP2-Settings", "Upgrade"}) {
    c->send(std::string("GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: ") + connection +
            "\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
    kt::response res;
    ASSERT_TRUE(c->read_response(res));
    EXPECT_EQ(res.status, 200);
    auto seen = kt::parse_echo(res.body);
    EXPECT_EQ(seen.target, "/h2c");
    EXPECT_FALSE(seen.headers.has("Upgrade")) << res.body;
    EXPECT_FALSE(seen.headers.has("HTTP2-Settings")) << res.body;
    EXPECT_EQ(seen.headers.get("Connection").find("pgrade"), std::string::npos) << res.body;
  }
  // Another protocol listed beside h2c is still asked for.
  c->send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(kt::parse_echo(res.body).headers.get("Upgrade"), "websocket") << res.body;
}
