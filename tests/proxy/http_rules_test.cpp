#include "proxy/http_rules.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>

#include "proxy/message_parser.hpp"

namespace http = boost::beast::http;
using kinfra::proxy::body_framing;
using kinfra::proxy::request_head;
using kinfra::proxy::response_head;

namespace {

/** Parses a request head with Beast, as the proxy does; returns Beast's error if any. */
boost::system::error_code parse(std::string_view raw, request_head& head) {
  kinfra::proxy::request_parser p(head);
  p.body_limit(boost::none);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  if (!ec && !p.is_header_done()) ec = http::error::need_more;
  return ec;
}

/** The status the proxy gives a request head: Beast's verdict first, then the framing rules. */
unsigned verdict(std::string_view raw) {
  request_head head;
  kinfra::proxy::request_parser p(head);
  p.body_limit(boost::none);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  if (ec && ec != http::error::need_more) return 400;
  if (!p.is_header_done()) return 0;
  auto cl = p.content_length();
  return kinfra::proxy::check_request_framing(head, cl ? std::optional<std::uint64_t>(*cl) : std::nullopt).status();
}

response_head parse_response(std::string_view raw) {
  response_head head;
  kinfra::proxy::response_parser p(head);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  EXPECT_TRUE(p.is_header_done()) << ec.message();
  return head;
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
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n"), 400u);
  EXPECT_EQ(verdict("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400u);
}

TEST(HttpRules, UnknownCodingBeforeChunkedIsNotImplemented) {
  EXPECT_EQ(verdict("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501u);
}

TEST(HttpRules, ReportsTheFraming) {
  request_head h;
  ASSERT_FALSE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", h));
  EXPECT_EQ(kinfra::proxy::check_request_framing(h, 0).framing, body_framing::none);
  EXPECT_EQ(kinfra::proxy::check_request_framing(h, 9).framing, body_framing::length);
  ASSERT_FALSE(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", h));
  EXPECT_EQ(kinfra::proxy::check_request_framing(h, std::nullopt).framing, body_framing::chunked);
}

TEST(HttpRules, HostMustBeSingleAndValid) {
  auto host_of = [](std::string_view raw) -> std::string {
    request_head h;
    parse(raw, h);
    std::string host;
    return kinfra::proxy::check_host(h, host) ? host : "<bad>";
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
  // Issue 20: a trailing dot names the same host; a name longer than DNS allows is none.
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: API.example.com.:9100\r\n\r\n"), "api.example.com");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: " + std::string(256, 'a') + "\r\n\r\n"), "<bad>");
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: .\r\n\r\n"), ".");
  // The character table: every reg-name character passes (lower cased), anything else does not.
  EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: A-b.C_d~E!$&'()*+,;=%41\r\n\r\n"), "a-b.c_d~e!$&'()*+,;=%41");
  {
    request_head h;
    parse("GET / HTTP/1.1\r\nHost: Abc#d\r\n\r\n", h);
    std::string host = "stale";
    EXPECT_FALSE(kinfra::proxy::check_host(h, host));
    EXPECT_EQ(host, "") << "nothing of a refused Host is kept";
  }
  for (std::string bad : {"a#b", "a?b", "a\\b", "a\"b", "a<b", "a\x80b", "a\x7f", "a`b", "a{b", "a|b"})
    EXPECT_EQ(host_of("GET / HTTP/1.1\r\nHost: " + bad + "\r\n\r\n"), "<bad>") << bad;
}

TEST(HttpRules, FieldsAreForwardedInOneFormWhateverTheirSpacing) {
  // "Name: value" as it arrived is copied as one piece; any other spacing is rewritten to it.
  request_head h;
  ASSERT_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nX-A:1\r\nX-B:   two  \r\nX-C: three\r\nX-D: \r\n"
                     "X-E:\tfive\t\r\nX-F: six\r\n\r\n",
                     h));
  EXPECT_EQ(h.fields, "Host: h\r\nX-A: 1\r\nX-B: two\r\nX-C: three\r\nX-D: \r\nX-E: five\r\nX-F: six\r\n");
}

TEST(HttpRules, ForwardedRequestDropsHopByHopAndAddsForwardedFields) {
  request_head h;
  ASSERT_FALSE(parse("GET /old HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret, host\r\n"
                     "Keep-Alive: 5\r\nProxy-Connection: close\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\n"
                     "X-Secret: 1\r\nX-Kept: 2\r\nExpect: 100-continue\r\nX-Forwarded-For: 1.1.1.1\r\n"
                     "x-forwarded-for: 2.2.2.2\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n",
                     h));
  kinfra::proxy::forward_info f;
  f.client_ip = "10.0.0.9";
  std::string line, tail;
  kinfra::proxy::write_request_line(h, "/new?q=1", line);
  kinfra::proxy::write_request_tail(h, f, tail);
  EXPECT_EQ(line + h.fields + tail,
            "GET /new?q=1 HTTP/1.1\r\n"
            "Host: shop.example\r\n"
            "X-Kept: 2\r\n"
            "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: shop.example\r\n"
            "Via: 1.1 kinfra\r\n"
            "\r\n");
}

TEST(HttpRules, ForwardedRequestGetsHostFramingAndUpgrade) {
  request_head h;
  ASSERT_FALSE(parse("POST /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\n", h));
  kinfra::proxy::forward_info f;
  f.client_ip = "::1";
  f.fallback_host = "127.0.0.1:8000";
  f.upgrade = true;
  std::string line, tail;
  kinfra::proxy::write_request_line(h, "/ws", line);
  kinfra::proxy::write_request_tail(h, f, tail);
  EXPECT_EQ(line + h.fields + tail,
            "POST /ws HTTP/1.1\r\nContent-Length: 3\r\nHost: 127.0.0.1:8000\r\nX-Forwarded-For: ::1\r\n"
            "X-Forwarded-Proto: http\r\nVia: 1.1 kinfra\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
  request_head c;
  ASSERT_FALSE(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", c));
  f.upgrade = false;
  f.chunked = true;
  kinfra::proxy::write_request_tail(c, f, tail);
  std::string all = c.fields + tail;
  EXPECT_NE(all.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(all.find("Transfer-Encoding"), all.rfind("Transfer-Encoding")) << "written once";
}

TEST(HttpRules, RelayedResponseDropsHopByHopAndSetsFraming) {
  auto h = parse_response(
      "HTTP/1.0 200 Fine\r\nConnection: keep-alive, X-Internal\r\nX-Internal: 1\r\nKeep-Alive: 5\r\n"
      "Transfer-Encoding: chunked\r\nX-Public: 2\r\n\r\n");
  EXPECT_EQ(h.status, 200u);
  std::string tail;
  kinfra::proxy::response_head_info info;
  info.chunked = true;
  info.close = true;
  kinfra::proxy::write_response_tail(h, info, tail);
  EXPECT_EQ(h.status_line + h.fields + tail,
            "HTTP/1.1 200 Fine\r\nX-Public: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  info = {};
  info.keep_alive_10 = true;
  kinfra::proxy::write_response_tail(h, info, tail);
  EXPECT_EQ(h.status_line + h.fields + tail, "HTTP/1.1 200 Fine\r\nX-Public: 2\r\nConnection: keep-alive\r\n\r\n");
}

TEST(HttpRules, RelayedResponseKeepsUpgradeFor101) {
  auto h = parse_response("HTTP/1.1 101 \r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n");
  std::string tail;
  kinfra::proxy::response_head_info info;
  info.upgrade = true;
  kinfra::proxy::write_response_tail(h, info, tail);
  EXPECT_EQ(h.status_line + h.fields + tail,
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\nConnection: upgrade\r\n"
            "Upgrade: websocket\r\n\r\n");
}

TEST(HttpRules, ExpectAcceptAndIdempotence) {
  request_head h;
  ASSERT_FALSE(parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nAccept: application/json, text/html\r\n\r\n", h));
  bool bad = true;
  EXPECT_TRUE(kinfra::proxy::expects_continue(h, bad));
  EXPECT_FALSE(bad);
  EXPECT_TRUE(h.accept_json);
  request_head q;
  ASSERT_FALSE(parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nAccept: text/html,application/json\r\n\r\n", q));
  EXPECT_FALSE(kinfra::proxy::expects_continue(q, bad));
  EXPECT_TRUE(bad);
  EXPECT_FALSE(q.accept_json);
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

TEST(HttpRules, ResponseOfAnotherHttpVersionIsRefused) {
  response_head head;
  kinfra::proxy::response_parser p(head);
  boost::system::error_code ec;
  std::string_view raw = "HTTP/2.0 200 OK\r\n\r\n";
  p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  EXPECT_TRUE(ec);
}

TEST(HttpRules, EveryProxyErrorHasItsOneStatus) {
  using kinfra::proxy::proxy_error;
  using kinfra::proxy::status_of;
  const std::pair<proxy_error, unsigned> expected[] = {
      {proxy_error::malformed, 400},          {proxy_error::no_route, 404},
      {proxy_error::method_not_allowed, 405}, {proxy_error::request_timeout, 408},
      {proxy_error::length_required, 411},    {proxy_error::too_large, 413},
      {proxy_error::uri_too_long, 414},       {proxy_error::expectation_failed, 417},
      {proxy_error::header_too_large, 431},   {proxy_error::not_implemented, 501},
      {proxy_error::bad_gateway, 502},        {proxy_error::unavailable, 503},
      {proxy_error::gateway_timeout, 504},    {proxy_error::version_not_supported, 505},
  };
  for (const auto& [e, status] : expected) EXPECT_EQ(status_of(e), status) << static_cast<int>(e);
  // Framing verdicts carry the error, and the status follows from it.
  request_head h;
  ASSERT_FALSE(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", h));
  h.version = 10;  // (Transfer-Encoding in an HTTP/1.0 request)
  auto v = kinfra::proxy::check_request_framing(h, std::nullopt);
  ASSERT_TRUE(v.error);
  EXPECT_EQ(*v.error, proxy_error::malformed);
  EXPECT_EQ(v.status(), 400u);
  EXPECT_FALSE(kinfra::proxy::check_request_framing(request_head{}, std::nullopt).error);
}
