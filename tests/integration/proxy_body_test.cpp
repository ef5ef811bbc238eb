// Request and response bodies: chunked both ways, streaming with bounded memory, 100-continue,
// full duplex, limits.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

#include "http_test.hpp"

namespace {

constexpr std::uint64_t GiB = 1024ull * 1024 * 1024;
constexpr long rss_budget_kib = 20 * 1024;

using kt::drain;
using kt::pour;

}  // namespace

TEST(ProxyBody, ForwardsAChunkedRequestBodyRechunked) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  ASSERT_EQ(res.status, 200) << k.log();
  auto echo = kt::parse_echo(res.body);
  EXPECT_EQ(echo.body, "hello world");
  EXPECT_EQ(echo.headers.get("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(echo.headers.has("Content-Length"));
  // The connection stays usable after a chunked request.
  c->send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(kt::parse_echo(res.body).target, "/next");
}

TEST(ProxyBody, RelaysAChunkedResponseInPieces) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    while (c.read_request(req)) {
      c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        c.send("3\r\nab" + std::to_string(i) + "\r\n");
      }
      c.send("0\r\n\r\n");
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  for (int round = 0; round < 2; ++round) {
    c->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    kt::response res;
    ASSERT_TRUE(c->read_response(res));
    EXPECT_EQ(res.body, "ab0ab1ab2ab3ab4");
    EXPECT_EQ(res.headers.get("Transfer-Encoding"), "chunked");
  }
}

TEST(ProxyBody, StreamsAOneGibUploadWithBoundedMemory) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request_header(req)) return;
    std::uint64_t want = std::stoull(req.headers.get("Content-Length"));
    std::uint64_t got = drain(c, want);
    std::string body = std::to_string(got);
    c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  long before = k.rss_kib();
  auto c = kt::connect_to(k.port());
  ASSERT_TRUE(c->send("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(GiB) + "\r\n\r\n"));
  ASSERT_TRUE(pour(*c, GiB)) << k.log();
  kt::response res;
  ASSERT_TRUE(c->read_response(res, false, std::chrono::seconds(30)));
  EXPECT_EQ(res.body, std::to_string(GiB));
  long growth = k.peak_rss_kib() - before;
  EXPECT_LT(growth, rss_budget_kib) << "RSS grew by " << growth << " KiB while relaying 1 GiB up";
  RecordProperty("rss_growth_kib", static_cast<int>(growth));
}

TEST(ProxyBody, StreamsAOneGibDownloadWithBoundedMemory) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request(req)) return;
    c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(GiB) + "\r\n\r\n");
    pour(c, GiB);
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  long before = k.rss_kib();
  auto c = kt::connect_to(k.port());
  c->send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  kt::request dummy;  // reuse the header parser for a response: read raw instead
  std::string head;
  char ch[65536];
  while (head.find("\r\n\r\n") == std::string::npos) {
    long n = c->recv_some(ch, 1, std::chrono::seconds(10));
    ASSERT_GT(n, 0);
    head.append(ch, static_cast<std::size_t>(n));
  }
  EXPECT_NE(head.find("Content-Length: " + std::to_string(GiB)), std::string::npos) << head;
  EXPECT_EQ(drain(*c, GiB), GiB);
  long growth = k.peak_rss_kib() - before;
  EXPECT_LT(growth, rss_budget_kib) << "RSS grew by " << growth << " KiB while relaying 1 GiB down";
}

TEST(ProxyBody, StreamsALargeChunkedDownloadWithBoundedMemory) {
  constexpr std::uint64_t total = 256ull * 1024 * 1024;
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request(req)) return;
    c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::string chunk = "100000\r\n" + std::string(0x100000, 'z') + "\r\n";
    for (std::uint64_t sent = 0; sent < total; sent += 0x100000)
      if (!c.send(chunk, std::chrono::seconds(20))) return;
    c.send("0\r\n\r\n");
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  long before = k.rss_kib();
  auto c = kt::connect_to(k.port());
  c->send("GET / HTTP/1.0\r\n\r\n");  // HTTP/1.0: kinfra de-chunks and closes
  bool eof = false;
  std::uint64_t got = 0;
  char buf[1 << 16];
  std::string head;
  for (;;) {
    long n = c->recv_some(buf, sizeof buf, std::chrono::seconds(20));
    if (n <= 0) {
      eof = n == 0;
      break;
    }
    if (head.size() < 4096 && head.find("\r\n\r\n") == std::string::npos) {
      head.append(buf, static_cast<std::size_t>(n));
      auto end = head.find("\r\n\r\n");
      if (end != std::string::npos) got += head.size() - end - 4;
      continue;
    }
    got += static_cast<std::uint64_t>(n);
  }
  EXPECT_TRUE(eof);
  EXPECT_EQ(got, total);
  EXPECT_EQ(head.find("chunked"), std::string::npos);
  long growth = k.peak_rss_kib() - before;
  EXPECT_LT(growth, rss_budget_kib) << "RSS grew by " << growth << " KiB";
}

TEST(ProxyBody, AnswersExpectContinueItselfAndForwardsTheBody) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n");
  char buf[256];
  long n = c->recv_some(buf, sizeof buf, std::chrono::seconds(3));
  ASSERT_GT(n, 0) << "no 100 Continue: the client would wait for nothing";
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  c->send("payload");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  auto echo = kt::parse_echo(res.body);
  EXPECT_EQ(echo.body, "payload");
  EXPECT_FALSE(echo.headers.has("Expect"));
}

TEST(ProxyBody, RefusesAnOversizedBodyBeforeReadingIt) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url(), "limits: { max_body_bytes: 1KiB }\n"));
  auto c = kt::connect_to(k.port());
  c->send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 413);
  EXPECT_EQ(res.headers.get("Connection"), "close");
  EXPECT_TRUE(c->wait_closed(std::chrono::seconds(5)));
  EXPECT_EQ(up.request_count(), 0u);
}

TEST(ProxyBody, RefusesAChunkedBodyThatGrowsPastTheLimit) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request_header(req)) return;
    c.recv_all(std::chrono::seconds(5));
  });
  kt::kinfra_process k("workers: 1\nroutes:\n  - { path: /, service: app, max_body_bytes: 100 }\n"
                       "services:\n  app: { url: " + up.url() + ", health: off }\n");
  auto c = kt::connect_to(k.port());
  c->send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'a') +
          "\r\n40\r\n" + std::string(64, 'b') + "\r\n0\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 413) << k.log();
}

TEST(ProxyBody, RelaysAnEarlyAnswerWhileTheClientStillUploads) {
  // The upstream refuses the upload after its header, without reading the body.
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request_header(req)) return;
    c.send("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope");
    c.shutdown_write();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
  std::atomic<bool> stop{false};
  std::thread uploader([&] {
    std::string block(65536, 'u');
    while (!stop && c->send(block, std::chrono::milliseconds(200))) {}
  });
  kt::response res;
  bool ok = c->read_response(res, false, std::chrono::seconds(10));
  stop = true;
  uploader.join();
  ASSERT_TRUE(ok) << k.log();
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(res.body, "nope");
}

TEST(ProxyBody, StreamsFullDuplexWhenTheUpstreamEchoesAsItReads) {
  constexpr std::uint64_t total = 64ull * 1024 * 1024;
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request req;
    if (!c.read_request_header(req)) return;
    c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n");
    std::uint64_t moved = 0;
    std::string first = std::move(c.buffered());
    c.buffered().clear();
    if (!first.empty()) {
      c.send(first);
      moved += first.size();
    }
    std::vector<char> buf(1 << 16);
    while (moved < total) {
      long n = c.recv_some(buf.data(), buf.size(), std::chrono::seconds(10));
      if (n <= 0) return;
      if (!c.send(std::string_view(buf.data(), static_cast<std::size_t>(n)))) return;
      moved += static_cast<std::uint64_t>(n);
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  auto c = kt::connect_to(k.port());
  c->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n");
  std::thread writer([&] { pour(*c, total); });
  std::string head;
  char ch;
  while (head.find("\r\n\r\n") == std::string::npos) {
    ASSERT_EQ(c->recv_some(&ch, 1, std::chrono::seconds(10)), 1) << "no response while uploading: " << k.log();
    head += ch;
  }
  EXPECT_EQ(drain(*c, total), total);
  writer.join();
}
