#include "proxy/http_rules.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/parser.hpp>

namespace http = boost::beast::http;
using kinfra::proxy::body_framing;

namespace {

/** Parses a request header with Beast, as the proxy does; returns the Beast error if any. */
boost::system::error_code parse(std::string_view raw, http::request_parser<http::empty_body>& p) {
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  return ec;
}

/** The status the proxy gives a request header: Beast's verdict first, then ours. */
unsigned verdict(std::string_view raw) {
  http::request_parser<http::empty_body> p;
  p.body_limit(boost::none);
  auto ec = parse(raw, p);
  if (ec && ec != http::error::need_more) return 400;
  if (!p.is_header_done()) return 0;
  return kinfra::proxy::check_request_framing(p.get()).status;
}

}  // namespace

TEST(HttpRules, AcceptsPlainFraming) {
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), 0u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), 0u);
}

TEST(HttpRules, RejectsAmbiguousFraming) {
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400u);
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400u);
}

TEST(HttpRules, UnknownCodingBeforeChunkedIsNotImplemented) {
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501u);
}

TEST(HttpRules, ReportsTheFraming) {
  http::request_parser<http::empty_body> p;
  parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", p);
  EXPECT_EQ(kinfra::proxy::check_request_framing(p.get()).framing, body_framing::none);
  http::request_parser<http::empty_body> q;
  parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", q);
  EXPECT_EQ(kinfra::proxy::check_request_framing(q.get()).framing, body_framing::chunked);
}

TEST(HttpRules, HostMustBeSingleAndValid) {
  auto host_of = [](std::string_view raw) -> std::string {
    http::request_parser<http::empty_body> p;
    parse(raw, p);
    std::string host;
    return kinfra::proxy::check_host(p.get(), host) ? host : "<bad>";
  };
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n"), "example.com");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: [::1]:9100\r\n\r\n"), "[::1]");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\n\r\n"), "<bad>");
  EXPECT_EQ(host_of("GET / HTTP/1.0\r\n\r\n"), "");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), "<bad>");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), "<bad>");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), "<bad>");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: a:port\r\n\r\n"), "<bad>");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), "<bad>");
}

TEST(HttpRules, RemovesHopByHopFieldsAndThoseConnectionNames) {
  http::request_parser<http::empty_body> p;
  parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, host\r\nKeep-Alive: 5\r\n"
        "Proxy-Connection: close\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\nX-Secret: 1\r\nX-Kept: 2\r\n\r\n",
        p);
  auto& m = p.get();
  kinfra::proxy::remove_hop_by_hop(m);
  for (auto name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade", "X-Secret"})
    EXPECT_EQ(m.count(name), 0u) << name;
  EXPECT_EQ(m.count("X-Kept"), 1u);
  EXPECT_EQ(m.count("Host"), 1u) << "Connection must not be able to strip Host";
}

TEST(HttpRules, ExpectAndAcceptAndIdempotence) {
  http::request_parser<http::empty_body> p;
  parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nAccept: application/json, text/html\r\n\r\n", p);
  bool bad = true;
  EXPECT_TRUE(kinfra::proxy::expects_continue(p.get(), bad));
  EXPECT_FALSE(bad);
  EXPECT_TRUE(kinfra::proxy::prefers_json(p.get()));
  http::request_parser<http::empty_body> q;
  parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nAccept: text/html,application/json\r\n\r\n", q);
  EXPECT_FALSE(kinfra::proxy::expects_continue(q.get(), bad));
  EXPECT_TRUE(bad);
  EXPECT_FALSE(kinfra::proxy::prefers_json(q.get()));
  EXPECT_TRUE(kinfra::proxy::is_idempotent(http::verb::get));
  EXPECT_TRUE(kinfra::proxy::is_idempotent(http::verb::put));
  EXPECT_FALSE(kinfra::proxy::is_idempotent(http::verb::post));
  EXPECT_FALSE(kinfra::proxy::is_idempotent(http::verb::patch));
}

// What Beast's parser itself rejects, relied on by the proxy (a Beast upgrade must keep these).
TEST(HttpRules, BeastRejectsMalformedSyntax) {
  EXPECT_EQ(verdict("GET / HTTP/1.1\nHost: a\n\n"), 400u) << "bare LF";
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400u) << "space before colon";
  EXPECT_EQ(verdict("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"), 400u) << "invalid field name";
  EXPECT_EQ(verdict("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400u) << "space in target";
  EXPECT_EQ(verdict("GET / HTTX/1.1\r\nHost: a\r\n\r\n"), 400u);
  EXPECT_EQ(verdict("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400u);
}
