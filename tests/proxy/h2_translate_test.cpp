// The HTTP/2 → HTTP/1.1 translation rules (RFC 9113 §8.2, §8.3): what a stream's header fields
// become, and what is refused before anything is forwarded.

#include "proxy/h2_translate.hpp"

#include <gtest/gtest.h>

namespace kinfra::proxy {
namespace {

h2_request_head with(std::initializer_list<std::pair<std::string_view, std::string_view>> fields,
                     std::size_t limit = 32 * 1024) {
  h2_request_head h(limit);
  for (const auto& [n, v] : fields) h.add(n, v);
  return h;
}

TEST(H2Translate, ARequestBecomesOneHttp11Head) {
  auto h = with({{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/a?b"},
                 {"accept", "*/*"}, {"cookie", "a=1"}, {"cookie", "b=2"}});
  EXPECT_EQ(h.finish(false),
            "GET /a?b HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n");
  EXPECT_EQ(h.status(), 0u);
  EXPECT_FALSE(h.chunked());
}

TEST(H2Translate, ABodyWithoutContentLengthGoesChunked) {
  auto h = with({{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}});
  EXPECT_NE(h.finish(true).find("transfer-encoding: chunked\r\n"), std::string::npos);
  EXPECT_TRUE(h.chunked());
  auto sized = with({{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
                     {"content-length", "5"}});
  EXPECT_EQ(sized.finish(true).find("transfer-encoding"), std::string::npos);
  EXPECT_FALSE(sized.chunked());
}

TEST(H2Translate, TheSplitHeadKeepsTheFramingForTheParser) {
  auto h = with({{":method", "POST"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/p"},
                 {"content-length", "12"}, {"x-a", "1"}, {"cookie", "c=1"}});
  std::string line, fields;
  ASSERT_TRUE(h.finish(true, line, fields));
  EXPECT_EQ(line, "POST /p HTTP/1.1\r\ncontent-length: 12\r\n\r\n");
  EXPECT_EQ(fields, "host: a.test\r\nx-a: 1\r\ncookie: c=1\r\n");
  EXPECT_EQ(h.fields(), "x-a: 1\r\n");
  EXPECT_EQ(h.content_length(), "12");
  // The one-piece head has the same fields, framing last.
  EXPECT_EQ(h.finish(true), "POST /p HTTP/1.1\r\nhost: a.test\r\nx-a: 1\r\ncookie: c=1\r\ncontent-length: 12\r\n\r\n");
  auto chunked = with({{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}});
  ASSERT_TRUE(chunked.finish(true, line, fields));
  EXPECT_EQ(line, "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
  auto refused = with({{":method", "GET"}, {":scheme", "https"}, {":path", "/ x"}});
  EXPECT_FALSE(refused.finish(false, line, fields));
  EXPECT_EQ(refused.status(), 400u);
}

TEST(H2Translate, HostAndAuthorityMustAgree) {
  auto h = with({{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/"},
                 {"host", "b.test"}});
  EXPECT_EQ(h.finish(false), "");
  EXPECT_EQ(h.status(), 400u);
  auto same = with({{":method", "GET"}, {":scheme", "https"}, {":authority", "A.test"}, {":path", "/"},
                    {"host", "a.test"}});
  EXPECT_EQ(same.finish(false), "GET / HTTP/1.1\r\nhost: A.test\r\n\r\n");
  auto host_only = with({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"host", "h.test"}});
  EXPECT_EQ(host_only.finish(false), "GET / HTTP/1.1\r\nhost: h.test\r\n\r\n");
}

TEST(H2Translate, NothingThatCouldSplitTheHttp11TextGetsThrough) {
  for (auto [name, value] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {"x-a", "1\r\nx-injected: 1"}, {"x-a", std::string_view("a\0b", 3)}, {"x-a\r\nx-b", "1"},
           {"connection", "close"}, {"transfer-encoding", "chunked"}, {"upgrade", "h2c"},
           {"keep-alive", "1"}, {"proxy-connection", "x"}, {":protocol", "websocket"}}) {
    auto h = with({{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}, {name, value}});
    EXPECT_EQ(h.finish(false), "") << name;
    EXPECT_EQ(h.status(), 400u) << name;
  }
  for (auto [name, value] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {":path", "/a b"}, {":path", "/a\tb"}, {":method", "GE T"}, {":authority", "a b"}, {":path", ""}}) {
    auto h = with({{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}});
    // (the later value wins, as nghttp2 would have refused a repeat)
    h.add(name, value);
    EXPECT_EQ(h.finish(false), "") << name << "=" << value;
  }
}

TEST(H2Translate, TheHeaderListLimitCountsLikeSettings) {
  auto h = with({{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
                 {"x-big", std::string(2000, 'a')}},
                1024);
  EXPECT_EQ(h.finish(false), "");
  EXPECT_EQ(h.status(), 431u);
}

TEST(H2Translate, ResponseFieldsAreLowerCaseWithoutConnectionSpecificOnes) {
  response_head head;
  head.status = 204;
  head.fields = "Content-Type: text/plain\r\nX-Thing:  v\r\nContent-Length: 0\r\nKeep-Alive: 5\r\n";
  h2_response_fields f;
  f.assign(head);
  EXPECT_EQ(f.status, "204");
  ASSERT_EQ(f.fields.size(), 2u);
  EXPECT_EQ(f.fields[0].first, "content-type");
  EXPECT_EQ(f.fields[0].second, "text/plain");
  EXPECT_EQ(f.fields[1].first, "x-thing");
  EXPECT_EQ(f.fields[1].second, "v");
  head.status = 200;
  f.assign(head);
  EXPECT_EQ(f.fields.size(), 3u);
  EXPECT_EQ(f.fields[2].first, "content-length");
}

TEST(H2Translate, ResponseFieldsSurviveOddLinesAndReuse) {
  h2_response_fields f;
  // A last line without CRLF, a line without a colon, a value with inner spaces, an upper-case
  // connection-specific name: the same rules as for well-formed heads.
  f.assign(200, "X-A: one two\r\nnot a field\r\nTRANSFER-ENCODING: chunked\r\nx-b:\tlast");
  ASSERT_EQ(f.fields.size(), 2u);
  EXPECT_EQ(f.fields[0].first, "x-a");
  EXPECT_EQ(f.fields[0].second, "one two");
  EXPECT_EQ(f.fields[1].first, "x-b");
  EXPECT_EQ(f.fields[1].second, "last");
  // Reused for the next stream: nothing of the first response is left.
  f.assign(404, "Content-Length: 9\r\n");
  EXPECT_EQ(f.status, "404");
  ASSERT_EQ(f.fields.size(), 1u);
  EXPECT_EQ(f.fields[0].first, "content-length");
  EXPECT_EQ(f.fields[0].second, "9");
  f.assign(200, "");
  EXPECT_TRUE(f.fields.empty());
}

TEST(H2Translate, AResetHeadForgetsTheRequestBefore) {
  auto h = with({{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/x"},
                 {"cookie", "secret=1"}, {"te", "trailers"}, {"x-old", "1"}}, 200);
  EXPECT_EQ(h.status(), 431u);
  h.reset(32 * 1024);
  for (auto [n, v] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {":method", "GET"}, {":scheme", "https"}, {":authority", "b"}, {":path", "/y"}})
    EXPECT_TRUE(h.add(n, v));
  EXPECT_EQ(h.finish(false), "GET /y HTTP/1.1\r\nhost: b\r\n\r\n");
  EXPECT_EQ(h.status(), 0u);
  EXPECT_FALSE(h.te_trailers());
  EXPECT_TRUE(h.cookie().empty());
}

}  // namespace
}  // namespace kinfra::proxy
