// Forwarding, header handling, keep-alive, pipelining, pooling, round-robin, routing.
#include <gtest/gtest.h>

#include "http_test.hpp"

#include <atomic>
#include <map>

namespace {

std::string get_raw(std::uint16_t port, const std::string& target, const std::string& more = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" + more + "\r\n";
}

}  // namespace

TEST(ProxyBasic, ForwardsAGetAndRelaysTheAnswer) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto res = kt::http_get(k.port(), "/hello?x=1");
  ASSERT_EQ(res.status, 200) << k.log();
  auto echo = kt::parse_echo(res.body);
  EXPECT_EQ(echo.method, "GET");
  EXPECT_EQ(echo.target, "/hello?x=1");
  EXPECT_EQ(res.headers.get("X-Upstream-Port"), std::to_string(up.port()));
}

TEST(ProxyBasic, SetsForwardedHeadersAndPreservesHost) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  kt::header_list h;
  h.add("Host", "shop.example.com:9100");
  h.add("X-Forwarded-For", "203.0.113.7");
  h.add("X-Forwarded-Proto", "https");
  auto res = kt::http_get(k.port(), "/", h);
  ASSERT_EQ(res.status, 200);
  auto echo = kt::parse_echo(res.body);
  EXPECT_EQ(echo.headers.get("Host"), "shop.example.com:9100");
  EXPECT_EQ(echo.headers.get("X-Forwarded-For"), "203.0.113.7, 127.0.0.1");
  EXPECT_EQ(echo.headers.count("X-Forwarded-For"), 1);
  EXPECT_EQ(echo.headers.get("X-Forwarded-Proto"), "http") << "a client cannot claim https";
  EXPECT_EQ(echo.headers.get("X-Forwarded-Host"), "shop.example.com:9100");
  EXPECT_EQ(echo.headers.get("Via"), "1.1 kinfra");
}

TEST(ProxyBasic, RemovesHopByHopHeadersOnTheWayUp) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  kt::header_list h;
  h.add("Connection", "keep-alive, X-Drop-Me");
  h.add("X-Drop-Me", "secret");
  h.add("Keep-Alive", "timeout=5");
  h.add("Proxy-Connection", "keep-alive");
  h.add("TE", "trailers");
  h.add("Trailer", "X-Foo");
  h.add("Upgrade", "h2c");
  h.add("X-Keep", "yes");
  auto c = kt::connect_to(k.port());
  std::string raw = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (auto& [n, v] : h.fields) raw += n + ": " + v + "\r\n";
  c->send(raw + "\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  auto echo = kt::parse_echo(res.body);
  for (auto name : {"Connection", "X-Drop-Me", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"})
    EXPECT_FALSE(echo.headers.has(name)) << name << " reached the upstream";
  EXPECT_EQ(echo.headers.get("X-Keep"), "yes");
}

TEST(ProxyBasic, RemovesHopByHopHeadersOnTheWayDown) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    while (c.read_request(req)) {
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Internal\r\nX-Internal: 1\r\n"
             "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTrailer: X-T\r\nUpgrade: h2c\r\n"
             "X-Public: 1\r\n\r\nok");
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send(get_raw(k.port(), "/"));
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.body, "ok");
  for (auto name : {"X-Internal", "Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade", "Connection"})
    EXPECT_FALSE(res.headers.has(name)) << name << " reached the client";
  EXPECT_EQ(res.headers.get("X-Public"), "1");
}

TEST(ProxyBasic, KeepsTheClientConnectionAliveAcrossRequests) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c->send(get_raw(k.port(), "/r" + std::to_string(i))));
    kt::response res;
    ASSERT_TRUE(c->read_response(res)) << "request " << i;
    EXPECT_EQ(kt::parse_echo(res.body).target, "/r" + std::to_string(i));
    EXPECT_FALSE(res.headers.has("Connection"));
  }
}

TEST(ProxyBasic, AnswersPipelinedRequestsInOrder) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += get_raw(k.port(), "/p" + std::to_string(i));
  batch += "POST /p10 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  batch += get_raw(k.port(), "/p11");
  ASSERT_TRUE(c->send(batch));
  for (int i = 0; i < 12; ++i) {
    kt::response res;
    ASSERT_TRUE(c->read_response(res)) << "response " << i;
    auto echo = kt::parse_echo(res.body);
    EXPECT_EQ(echo.target, "/p" + std::to_string(i));
    if (i == 10) {
      EXPECT_EQ(echo.body, "hello");
    }
  }
}

TEST(ProxyBasic, ReusesUpstreamConnectionsFromThePool) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  for (int i = 0; i < 30; ++i) {
    auto res = kt::http_get(k.port(), "/");  // a new client connection each time
    ASSERT_EQ(res.status, 200);
  }
  EXPECT_EQ(up.connections(), 1) << "one worker, sequential requests: one pooled upstream connection";
}

TEST(ProxyBasic, BoundsIdleUpstreamConnectionsAndClosesThemAfterTheIdleTimeout) {
  std::atomic<int> closed{0};
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request req;
    while (c.read_request(req, std::chrono::seconds(30))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    ++closed;  // kinfra closed its end
  });
  kt::kinfra_process k(kt::one_service(up.url(), "upstream: { max_idle_per_target: 2, idle_timeout: 1s }\n"));
  // Five concurrent requests need five upstream connections; only two may stay idle afterwards.
  std::vector<std::unique_ptr<kt::socket_conn>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(kt::connect_to(k.port()));
    clients.back()->send(get_raw(k.port(), "/"));
  }
  for (auto& c : clients) {
    kt::response res;
    ASSERT_TRUE(c->read_response(res));
  }
  EXPECT_EQ(up.connections(), 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(closed.load(), 3) << "the pool keeps at most max_idle_per_target connections";
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(closed.load(), 5) << "idle connections outlived upstream.idle_timeout";
}

TEST(ProxyBasic, RetriesAnIdempotentRequestWhenAPooledConnectionWentStale) {
  // The upstream answers one request per connection and then closes it without saying so.
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request(req)) return;
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  for (int i = 0; i < 5; ++i) {
    auto res = kt::http_get(k.port(), "/");
    EXPECT_EQ(res.status, 200) << "request " << i << "\n" << k.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(up.connections(), 5);
}

TEST(ProxyBasic, DoesNotSendANonIdempotentRequestOnAConnectionKnownToBeClosed) {
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request(req)) return;
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  ASSERT_EQ(kt::http_get(k.port(), "/").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto res = kt::http_request(k.port(), "POST", "/", {}, "data");
  EXPECT_EQ(res.status, 200) << k.log();
}

TEST(ProxyBasic, BalancesRoundRobinOverTargets) {
  kt::test_upstream a, b, c;
  kt::kinfra_process k("workers: 1\nroutes:\n  - { path: /, service: app }\nservices:\n  app:\n    targets: [" +
                       a.url() + ", " + b.url() + ", " + c.url() + "]\n    health: off\n");
  std::map<std::string, int> seen;
  for (int i = 0; i < 30; ++i) seen[kt::http_get(k.port(), "/").headers.get("X-Upstream-Port")]++;
  ASSERT_EQ(seen.size(), 3u);
  for (auto& [port, n] : seen) EXPECT_EQ(n, 10) << port;
}

TEST(ProxyBasic, RetriesARefusedTargetOnTheNextOne) {
  kt::test_upstream live;
  std::uint16_t dead_port;
  { kt::test_upstream gone; dead_port = gone.port(); }  // closed: connections are refused
  kt::kinfra_process k("workers: 1\nroutes:\n  - { path: /, service: app }\nservices:\n  app:\n    targets: "
                       "[http://127.0.0.1:" + std::to_string(dead_port) + ", " + live.url() + "]\n    health: off\n");
  for (int i = 0; i < 6; ++i) {
    auto res = kt::http_request(k.port(), i % 2 ? "POST" : "GET", "/", {}, i % 2 ? "body" : "");
    EXPECT_EQ(res.status, 200) << "request " << i << "\n" << k.log();
  }
}

TEST(ProxyBasic, RoutesByLongestPrefixAndHost) {
  kt::test_upstream api, web, admin;
  kt::kinfra_process k("workers: 1\nroutes:\n"
                       "  - { path: /, service: web }\n"
                       "  - { path: /api, service: api }\n"
                       "  - { path: /, service: admin, host: \"*.admin.test\" }\n"
                       "services:\n  api: { url: " + api.url() + ", health: off }\n  web: { url: " + web.url() +
                       " }\n  admin: { url: " + admin.url() + ", health: off }\n");
  auto port_of = [&](const std::string& target, const std::string& host = "") {
    kt::header_list h;
    if (!host.empty()) h.add("Host", host);
    return kt::http_get(k.port(), target, h).headers.get("X-Upstream-Port");
  };
  EXPECT_EQ(port_of("/api/x"), std::to_string(api.port()));
  EXPECT_EQ(port_of("/api"), std::to_string(api.port()));
  EXPECT_EQ(port_of("/apix"), std::to_string(web.port()));
  EXPECT_EQ(port_of("/"), std::to_string(web.port()));
  EXPECT_EQ(port_of("/api/x", "eu.admin.test:9100"), std::to_string(admin.port()));
  EXPECT_EQ(port_of("/api/x", "EU.ADMIN.TEST"), std::to_string(admin.port()));
}

TEST(ProxyBasic, NormalisesThePathBeforeRoutingAndForwarding) {
  kt::test_upstream api, web;
  kt::kinfra_process k("workers: 1\nroutes:\n  - { path: /, service: web }\n  - { path: /api, service: api }\n"
                       "services:\n  api: { url: " + api.url() + ", health: off }\n  web: { url: " + web.url() + ", health: off }\n");
  auto c = kt::connect_to(k.port());
  auto ask = [&](const std::string& target) {
    c->send(get_raw(k.port(), target));
    kt::response res;
    c->read_response(res);
    return res;
  };
  auto r1 = ask("/api/../admin");
  EXPECT_EQ(r1.headers.get("X-Upstream-Port"), std::to_string(web.port()));
  EXPECT_EQ(kt::parse_echo(r1.body).target, "/admin");
  auto r2 = ask("/static/%2e%2e/api//items?q=%2e%2e");
  EXPECT_EQ(r2.headers.get("X-Upstream-Port"), std::to_string(api.port()));
  EXPECT_EQ(kt::parse_echo(r2.body).target, "/api/items?q=%2e%2e");
  auto r3 = ask("/web%2Fpage");
  EXPECT_EQ(r3.headers.get("X-Upstream-Port"), std::to_string(web.port())) << "%2F is not a separator";
  EXPECT_EQ(kt::parse_echo(r3.body).target, "/web%2Fpage");
  auto r4 = ask("/../etc/passwd");
  EXPECT_EQ(r4.status, 400);
  c = kt::connect_to(k.port());  // (a 400 closes the connection)
  auto r5 = ask("/api%2F..%2Fadmin");
  EXPECT_EQ(r5.status, 400) << "a dot segment behind an encoded slash is refused (issue 20)";
  c = kt::connect_to(k.port());
  auto r6 = ask("/api%2Fadmin");
  EXPECT_EQ(r6.status, 400) << "read as /api/admin by a lenient upstream, it would leave /api's service for /'s";
  EXPECT_EQ(api.request_count() + web.request_count(), 3u);
}

TEST(ProxyBasic, StripsTheRoutePrefixWhenAsked) {
  kt::test_upstream up;
  kt::kinfra_process k("workers: 1\nroutes:\n  - { path: /api, service: app, strip_prefix: true }\n"
                       "services:\n  app: { url: " + up.url() + ", health: off }\n");
  EXPECT_EQ(kt::parse_echo(kt::http_get(k.port(), "/api/users?id=3").body).target, "/users?id=3");
  EXPECT_EQ(kt::parse_echo(kt::http_get(k.port(), "/api").body).target, "/");
  EXPECT_EQ(kt::parse_echo(kt::http_get(k.port(), "/api?x").body).target, "/?x");
}

TEST(ProxyBasic, AnswersHttp10ClientsWithoutChunkingAndClosesUnlessKeepAlive) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    while (c.read_request(req)) {
      c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("GET / HTTP/1.0\r\n\r\n");
  bool eof = false;
  std::string raw = c->recv_all(std::chrono::seconds(5), &eof);
  EXPECT_TRUE(eof) << "an HTTP/1.0 response without length ends with the connection";
  EXPECT_EQ(raw.find("chunked"), std::string::npos) << raw;
  EXPECT_NE(raw.find("\r\n\r\nhello world"), std::string::npos) << raw;
  EXPECT_EQ(up.connections(), 1);
}

TEST(ProxyBasic, KeepsHttp10KeepAliveWhenTheLengthIsKnown) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  for (int i = 0; i < 3; ++i) {
    c->send("GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    kt::response res;
    ASSERT_TRUE(c->read_response(res)) << i;
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.headers.get("Connection"), "keep-alive");
    EXPECT_TRUE(res.headers.has("Content-Length"));
    EXPECT_FALSE(kt::parse_echo(res.body).headers.get("Host").empty()) << "a Host is supplied upstream";
  }
  c->send("GET /last HTTP/1.0\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_TRUE(c->wait_closed(std::chrono::seconds(5)));
}

TEST(ProxyBasic, HonoursConnectionClose) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send(get_raw(k.port(), "/", "Connection: close\r\n"));
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.headers.get("Connection"), "close");
  EXPECT_TRUE(c->wait_closed(std::chrono::seconds(5)));
}

TEST(ProxyBasic, HeadAnd204And304CarryNoBody) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    while (c.read_request(req)) {
      if (req.target == "/204") c.send("HTTP/1.1 204 No Content\r\n\r\n");
      else if (req.target == "/304") c.send("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
      else c.send("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n" + std::string(req.method == "HEAD" ? "" : "hello world"));
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res, /*head=*/true));
  EXPECT_EQ(res.headers.get("Content-Length"), "11");
  c->send(get_raw(k.port(), "/204"));
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 204);
  c->send(get_raw(k.port(), "/304"));
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 304);
  // Nothing stray may follow: the next response must parse cleanly on the same connection.
  c->send(get_raw(k.port(), "/after"));
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.body, "hello world");
  EXPECT_TRUE(c->buffered().empty());
}

TEST(ProxyBasic, ChunksABodyDelimitedByCloseForHttp11Clients) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request(req)) return;
    c.send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send(get_raw(k.port(), "/"));
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.body, "until the end");
  EXPECT_EQ(res.headers.get("Transfer-Encoding"), "chunked");
  // and the client connection is still usable
  c->send(get_raw(k.port(), "/"));
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.body, "until the end");
}

TEST(ProxyBasic, DropsInterim1xxResponsesFromTheUpstream) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    while (c.read_request(req))
      c.send("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto res = kt::http_get(k.port(), "/");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "ok");
}

TEST(ProxyBasic, ServesFromSeveralWorkersAtOnce) {
  kt::test_upstream up;
  kt::kinfra_process k("workers: 4\nroutes:\n  - { path: /, service: app }\nservices:\n  app: { url: " + up.url() + ", health: off }\n");
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto c = kt::connect_to(k.port());
      for (int i = 0; i < 50; ++i) {
        std::string target = "/w" + std::to_string(t) + "-" + std::to_string(i);
        c->send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
        kt::response res;
        if (c->read_response(res) && res.status == 200 && kt::parse_echo(res.body).target == target) ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 400);
}
