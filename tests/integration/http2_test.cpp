// HTTP/2 from clients: ALPN h2 on a TLS listener and prior-knowledge h2c on a plain one, through
// the real executable, with curl, nghttp and a raw client (tests/helper/h2_client.py, python3-h2)
// that also plays the known attacks. Each stream is served by the HTTP/1.1 pipeline and forwarded
// over HTTP/1.1: the upstream here is the plain test_upstream.

#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;

bool have(const char* program) { return kt::run_shell(std::string("command -v ") + program + " >/dev/null") == 0; }

bool have_python_h2() { return kt::run_shell("/usr/bin/python3 -c 'import h2, hpack, hyperframe' 2>/dev/null") == 0; }

#define NEED(cond, what) \
  if (!(cond)) GTEST_SKIP() << what << " is needed (scripts/install-deps.sh --test)"

/** routes.yaml with an HTTPS listener (port 0) and an h2c one (port 1), everything to `url`. */
std::string h2_routes(const std::string& url, const std::string& extra = "") {
  return "listen:\n  - address: 127.0.0.1:0\n    tls: { self_signed: true }\n"
         "  - address: 127.0.0.1:0\n    h2c: true\nstate_dir: state\n" +
         kt::one_service(url, extra);
}

/** Runs the raw client; its JSON (null when it printed none). */
nlohmann::json h2_client(std::uint16_t port, const std::vector<std::string>& args, bool h2c = false) {
  std::string cmd = std::string("/usr/bin/python3 ") + KINFRA_SOURCE_DIR + "/tests/helper/h2_client.py " +
                    (h2c ? "--h2c " : "") + std::to_string(port);
  for (const auto& a : args) cmd += " '" + a + "'";
  std::string out;
  kt::run_shell(cmd, &out);
  auto nl = out.rfind('\n', out.size() - 2);
  auto doc = nlohmann::json::parse(nl == std::string::npos ? out : out.substr(nl + 1), nullptr, false);
  if (doc.is_discarded()) ADD_FAILURE() << "h2_client printed no JSON:\n" << out;
  return doc.is_discarded() ? nlohmann::json() : doc;
}

std::string status_of(const nlohmann::json& response) {
  for (const auto& h : response["headers"])
    if (h[0] == ":status") return h[1];
  return "";
}

/** curl over HTTP/2 (TLS, certificate not checked); "VERSION STATUS" then the body. */
std::string curl(const std::string& args) {
  std::string out;
  kt::run_shell("curl -sk --max-time 20 -w '\\n%{http_version} %{http_code}' " + args, &out);
  return out;
}

/** An upstream that holds /slow until `answer` (answering "answer for PATH"); `seen` once it has it. */
struct held_upstream {
  std::atomic<bool> seen{false};
  std::atomic<bool> answer{false};
  kt::test_upstream up{[this](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request(r)) {
      if (r.target == "/slow") {
        seen = true;
        kt::wait_until([&] { return answer.load(); }, 10s);
      }
      const std::string body = "answer for " + r.target;
      c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  }};
};

/** Waits until 127.0.0.1:port refuses connections (a listener that closed). */
void wait_until_refused(std::uint16_t port) {
  kt::wait_until([&] {
    try {
      kt::connect_to(port);
      return false;
    } catch (...) {
      return true;
    }
  });
}

/**
 * nghttp fetches `url` (a /slow of `held`); once the upstream holds it, `close` runs (a stop, a
 * reload), and once `port` refuses connections the upstream answers. @return nghttp's exit code
 */
int fetch_across_close(held_upstream& held, const std::string& url, std::uint16_t port,
                       const std::function<void()>& close, std::string& out) {
  std::thread closer([&] {
    kt::wait_until([&] { return held.seen.load(); }, 10s);
    close();
    wait_until_refused(port);
    held.answer = true;
  });
  const int code = kt::run_shell("nghttp -v " + url, &out);
  closer.join();
  return code;
}

constexpr int enhance_your_calm = 0xb;
constexpr int protocol_error = 0x1;

TEST(Http2, CurlGetsAndPostsOverTlsAndH2cThroughTheHttp11Pipeline) {
  NEED(have("curl"), "curl");
  kt::test_upstream up;
  kt::kinfra_process k(h2_routes(up.url(), "access_log: access.log\n"), false);
  const std::string https = "https://127.0.0.1:" + std::to_string(k.port(0));
  const std::string h2c = "http://127.0.0.1:" + std::to_string(k.port(1));

  std::string out = curl("--http2 '" + https + "/a/b?c=d' -H 'X-Test: 1' -b 'a=1' -b 'b=2'");
  EXPECT_TRUE(out.ends_with("\n2 200")) << out;
  auto echo = kt::parse_echo(out.substr(0, out.rfind('\n')));
  EXPECT_EQ(echo.method, "GET");
  EXPECT_EQ(echo.target, "/a/b?c=d");
  EXPECT_EQ(echo.headers.get("host"), "127.0.0.1:" + std::to_string(k.port(0)));
  EXPECT_EQ(echo.headers.get("x-test"), "1");
  EXPECT_EQ(echo.headers.get("x-forwarded-proto"), "https");
  // Each field once (the request line and framing are parsed, the rest recorded as they came).
  EXPECT_EQ(echo.headers.count("host"), 1);
  EXPECT_EQ(echo.headers.count("x-test"), 1);
  EXPECT_EQ(echo.headers.get("cookie"), "a=1;b=2");  // (curl sends one cookie field)
  EXPECT_EQ(echo.headers.count("cookie"), 1);

  out = curl("--http2 -d hello '" + https + "/small'");
  EXPECT_TRUE(out.ends_with("\n2 200")) << out;
  echo = kt::parse_echo(out.substr(0, out.rfind('\n')));
  EXPECT_EQ(echo.method, "POST");
  EXPECT_EQ(echo.headers.get("content-length"), "5");
  EXPECT_EQ(echo.headers.count("content-length"), 1);
  EXPECT_FALSE(echo.headers.has("transfer-encoding"));
  EXPECT_EQ(echo.body, "hello");

  out = curl("--http2-prior-knowledge '" + h2c + "/plain'");
  EXPECT_TRUE(out.ends_with("\n2 200")) << out;
  EXPECT_EQ(kt::parse_echo(out.substr(0, out.rfind('\n'))).target, "/plain");

  // A 5 MB upload, sent and echoed back whole (flow control both ways).
  const std::string file = k.dir().path() + "/upload.bin";
  kt::run_shell("head -c 5000000 /dev/urandom > " + file);
  out = curl("--http2 -o " + k.dir().path() + "/echoed.bin --data-binary @" + file + " '" + https + "/upload'");
  EXPECT_TRUE(out.ends_with("2 200")) << out;
  std::string tail_cmp;
  EXPECT_EQ(kt::run_shell("tail -c 5000000 " + k.dir().path() + "/echoed.bin | cmp - " + file, &tail_cmp), 0)
      << tail_cmp;

  // kinfra's own pages and errors over HTTP/2 too.
  out = curl("--http2 '" + https + "/kinfra'");
  EXPECT_TRUE(out.ends_with("\n2 200")) << out.substr(out.size() - 50);

  // The access log says HTTP/2.0.
  EXPECT_TRUE(kt::wait_until([&] {
    std::ifstream log(k.dir().path() + "/access.log");
    std::string all((std::istreambuf_iterator<char>(log)), {});
    return all.find("\"GET /a/b?c=d HTTP/2.0\" 200") != std::string::npos;
  }));
}

TEST(Http2, ManyStreamsOnOneConnectionAndASlowOneBlocksNoOther) {
  NEED(have_python_h2(), "python3-h2");
  kt::temp_dir flags;
  const std::string flag = flags.path() + "/fast-arrived";
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request(r)) {
      if (r.target == "/slow")
        kt::wait_until([&] { return std::filesystem::exists(flag); }, 10s);
      const std::string body = "answer for " + r.target;
      // X-Path: the path the client sent in its own x-stream field, when it sent exactly one.
      const std::string sent = r.headers.count("x-stream") == 1 ? r.headers.get("x-stream") : "?";
      c.send("HTTP/1.1 200 OK\r\nX-Path: " + sent + "\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n\r\n" + body);
    }
  });
  kt::kinfra_process k(h2_routes(up.url()), false);
  auto doc = h2_client(k.port(0), {"slow-and-fast", flag});
  ASSERT_EQ(doc["order"].size(), 2u) << doc.dump();
  EXPECT_EQ(doc["order"][0], 3) << "the fast stream ends first: " << doc.dump();
  EXPECT_EQ(doc["responses"]["1"]["body"], "answer for /slow");
  EXPECT_EQ(doc["responses"]["3"]["body"], "answer for /fast");

  doc = h2_client(k.port(0), {"many", "100", "3"});
  EXPECT_EQ(doc["ok"], 300) << doc.dump();
  EXPECT_EQ(doc["matched"], 300) << doc.dump();
  doc = h2_client(k.port(1), {"many", "50"}, true);
  EXPECT_EQ(doc["ok"], 50) << doc.dump();
  EXPECT_EQ(doc["matched"], 50) << doc.dump();
}

TEST(Http2, InterimResponsesHeadAnd204EndTheirStreamsCleanly) {
  NEED(have("curl") && have_python_h2(), "curl and python3-h2");
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request(r)) {
      if (r.target == "/none") c.send("HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n");
      else if (r.method == "HEAD") c.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Kind: head\r\n\r\n");
      else c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" + r.body);
    }
  });
  kt::kinfra_process k(h2_routes(up.url()), false);
  const std::string https = "https://127.0.0.1:" + std::to_string(k.port(0));
  // No body: END_STREAM with the HEADERS (curl fails on a stream that is reset or never ends).
  std::string out = curl("--http2 -D - -o /dev/null '" + https + "/none'");
  EXPECT_TRUE(out.ends_with("\n2 204")) << out;
  EXPECT_NE(out.find("x-kind: none"), std::string::npos) << out;
  out = curl("--http2 -I '" + https + "/head'");
  EXPECT_TRUE(out.ends_with("\n2 200")) << out;
  EXPECT_NE(out.find("content-length: 10"), std::string::npos) << out;
  EXPECT_NE(out.find("x-kind: head"), std::string::npos) << out;
  // Expect: 100-continue: kinfra's interim 100 as interim HEADERS, then the final answer.
  auto doc = h2_client(k.port(0), {"expect", "/upload", "hello"});
  const auto& r = doc["responses"]["1"];
  EXPECT_EQ(doc["body_sent_after"], "interim") << doc.dump();
  ASSERT_EQ(r["interim"].size(), 1u) << doc.dump();
  EXPECT_EQ(r["interim"][0][0][1], "100") << doc.dump();
  EXPECT_EQ(status_of(r), "200") << doc.dump();
  EXPECT_EQ(r["body"], "hello") << doc.dump();
  EXPECT_TRUE(r["ended"].get<bool>()) << doc.dump();
}

TEST(Http2, AdminChecksHoldForEveryStreamOfAConnection) {
  NEED(have_python_h2(), "python3-h2");
  kt::test_upstream up;
  kt::kinfra_process k(h2_routes(up.url()), false);
  const std::string own = "127.0.0.1:" + std::to_string(k.port(0));
  // One stream after the other on one connection, so that later streams are served by the
  // sessions of earlier ones: kinfra's own name, a foreign one (DNS rebinding), a proxied
  // request, kinfra's own name again.
  auto doc = h2_client(k.port(0), {"seq", "/__status__@" + own, "/__status__@attacker.example", "/app@app.example",
                                   "/__status__@" + own});
  ASSERT_EQ(doc["sequence"].size(), 4u) << doc.dump().substr(0, 300);
  const auto& seq = doc["sequence"];
  auto response = [&](int i) -> const nlohmann::json& { return doc["responses"][seq[i].get<std::string>()]; };
  EXPECT_EQ(status_of(response(0)), "200");
  EXPECT_NE(response(0)["body"].get<std::string>().find("\"services\""), std::string::npos);
  EXPECT_EQ(status_of(response(1)), "421") << response(1).dump().substr(0, 300);
  EXPECT_EQ(response(1)["body"].get<std::string>().find("\"services\""), std::string::npos);
  EXPECT_EQ(status_of(response(2)), "200");
  EXPECT_EQ(kt::parse_echo(response(2)["body"]).headers.get("host"), "app.example");
  EXPECT_EQ(status_of(response(3)), "200");
  EXPECT_NE(response(3)["body"].get<std::string>().find("\"services\""), std::string::npos);
}

TEST(Http2, NghttpAndLargeBodiesBothWays) {
  NEED(have("nghttp"), "nghttp2-client");
  NEED(have_python_h2(), "python3-h2");
  kt::test_upstream up;
  kt::kinfra_process k(h2_routes(up.url()), false);
  std::string out;
  EXPECT_EQ(kt::run_shell("nghttp -ns -m 20 https://127.0.0.1:" + std::to_string(k.port(0)) + "/nghttp", &out), 0)
      << out;
  // 20 requests on one connection, all answered.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n') >= 20, true) << out;
  auto doc = h2_client(k.port(0), {"post", "/big", "3000000"});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "200") << doc.dump().substr(0, 500);
  EXPECT_TRUE(doc["responses"]["1"]["body_ok"].get<bool>());
  // A body without Content-Length reaches the service chunked, whole.
  ASSERT_GE(up.request_count(), 1u);
  const auto last = up.requests().back();
  EXPECT_EQ(last.body.size(), 3000000u);
  EXPECT_EQ(last.headers.get("transfer-encoding"), "chunked");
}

TEST(Http2, OneGibUpAndDownOnOneConnectionWithBoundedMemory) {
  NEED(have("curl"), "curl");
  constexpr std::uint64_t quarter = 256ull << 20;
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request_header(r)) {
      if (r.target.starts_with("/down")) {
        c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(quarter) + "\r\n\r\n");
        if (!kt::pour(c, quarter)) return;
        continue;
      }
      const auto got = kt::drain(c, std::stoull(r.headers.get("content-length")));
      const std::string body = std::to_string(got);
      c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  });
  kt::kinfra_process k(h2_routes(up.url()), false);
  const long before = k.rss_kib();
  const std::string file = k.dir().path() + "/quarter.bin";
  kt::run_shell("truncate -s " + std::to_string(quarter) + " " + file);
  const std::string base = "https://127.0.0.1:" + std::to_string(k.port(0));
  // Four streams at once on one connection: two 256 MiB downloads, two 256 MiB uploads.
  std::string out;
  const int code = kt::run_shell("curl -sk --no-progress-meter --http2 --parallel --parallel-immediate --max-time 120 "
                                 "-w '%{http_version} %{http_code} %{size_download} %{size_upload}\\n' "
                                 "-T " + file + " -T " + file + " -o /dev/null -o /dev/null -o /dev/null -o /dev/null " +
                                     base + "/up1 " + base + "/up2 " + base + "/down1 " + base + "/down2",
                                 &out);
  EXPECT_EQ(code, 0) << out.substr(out.size() > 300 ? out.size() - 300 : 0) << k.log();
  std::size_t answered = 0;
  for (auto at = out.find("2 200 "); at != std::string::npos; at = out.find("2 200 ", at + 1)) ++answered;
  EXPECT_EQ(answered, 4u) << out;
  EXPECT_NE(out.find("2 200 " + std::to_string(quarter) + " 0"), std::string::npos) << out;
  EXPECT_NE(out.find("2 200 " + std::to_string(std::to_string(quarter).size()) + " " + std::to_string(quarter)),
            std::string::npos) << out;
  const long growth = k.peak_rss_kib() - before;
  // (Not under sanitizers: ASan's quarantine keeps up to 256 MiB of freed frames, which nghttp2
  // allocates per DATA frame; the bound is for a normal build, where the growth is about 2 MiB.)
  if (kt::memory_slack == 1) {
    EXPECT_LT(growth, 24 * 1024) << "RSS grew by " << growth << " KiB for 1 GiB over four streams";
  }
  RecordProperty("rss_growth_kib", static_cast<int>(growth));
}

TEST(Http2, MalformedRequestsAreRefusedAndNeverForwarded) {
  NEED(have_python_h2(), "python3-h2");
  kt::test_upstream up;
  kt::kinfra_process k(h2_routes(up.url(), "limits: { max_header_bytes: 4KiB }\n"), false);
  const auto p = k.port(0);
  // Connection-specific fields, an unknown pseudo-header, upper case, a field with a line break.
  for (const auto& bad : {std::string("connection=keep-alive"), std::string("transfer-encoding=chunked"),
                          std::string(":foo=bar"), std::string("X-Upper=1"), std::string("upgrade=h2c"),
                          std::string("te=gzip")}) {
    auto doc = h2_client(p, {"get", "/bad", bad});
    EXPECT_EQ(doc["resets"]["1"], protocol_error) << bad << ": " << doc.dump();
  }
  // :authority and Host disagree: 400 from kinfra.
  auto doc = h2_client(p, {"get", "/conflict", ":authority=a.test", "host=b.test"});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "400") << doc.dump();
  // The same host in both is fine.
  doc = h2_client(p, {"get", "/same", ":authority=a.test", "host=a.test"});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "200") << doc.dump();
  // A header list over the limit: 431.
  doc = h2_client(p, {"get", "/big-header", "x-big=" + std::string(6000, 'a')});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "431") << doc.dump().substr(0, 300);
  for (const auto& r : up.requests()) {
    EXPECT_TRUE(r.target == "/same") << "forwarded: " << r.target;
  }
  // And the connection-level service goes on for everyone else.
  doc = h2_client(p, {"get", "/after"});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "200");
}

TEST(Http2, FloodsEndTheConnectionWithEnhanceYourCalmAndOthersAreServed) {
  NEED(have_python_h2(), "python3-h2");
  kt::test_upstream up;
  kt::kinfra_process k(h2_routes(up.url()), false);
  const auto p = k.port(0);
  for (const auto& attack : {std::vector<std::string>{"rapid-reset", "2000"}, {"ping-flood", "5000"},
                             {"settings-flood", "5000"}, {"empty-data-flood", "5000"}}) {
    auto doc = h2_client(p, attack);
    EXPECT_EQ(doc["goaway"], enhance_your_calm) << attack[0] << ": " << doc.dump().substr(0, 300);
  }
  {
    // Complete requests (END_STREAM) cancelled in the same read are never served, over idle
    // pooled connections to the service that would carry them at once. (h2c: the pairs go 50 to
    // a write, so only a pair split between two reads could get through.)
    EXPECT_EQ(h2_client(k.port(1), {"many", "20"}, true)["ok"], 20);
    const std::size_t before = up.request_count();
    auto doc = h2_client(k.port(1), {"rapid-reset", "2000", "end"}, true);
    EXPECT_EQ(doc["goaway"], enhance_your_calm) << doc.dump().substr(0, 300);
    EXPECT_LT(up.request_count() - before, 10u) << "requests forwarded for streams reset with their HEADERS";
  }
  // CONTINUATION flood (CVE-2024-27316): the connection ends (nghttp2 counts them).
  auto doc = h2_client(p, {"continuation-flood", "1000"});
  EXPECT_TRUE(!doc["goaway"].is_null() || doc["closed"].get<bool>()) << doc.dump().substr(0, 300);
  EXPECT_TRUE(doc["responses"].empty());
  // kinfra keeps serving.
  doc = h2_client(p, {"get", "/still-here"});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "200");
  EXPECT_LT(k.rss_kib(), 60 * 1024 * kt::memory_slack);
}

TEST(Http2, StreamsPastTheLimitAreRefusedAndAZeroWindowTimesOut) {
  NEED(have_python_h2(), "python3-h2");
  std::atomic<bool> release{false};
  std::atomic<int> held{0};
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request(r)) {
      if (r.target == "/hold") ++held;
      if (r.target == "/hold") kt::wait_until([&] { return release.load(); }, 10s);
      std::string body(r.target == "/large" ? 1000000 : 10, 'x');
      c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  });
  kt::kinfra_process k(h2_routes(up.url(), "limits: { max_concurrent_streams: 8 }\ntimeouts: { body: 1s }\n"),
                       false);
  const auto p = k.port(0);
  // Past the limit the SETTINGS announced (and the client acknowledged): a protocol error
  // (nghttp2 ends the connection); none of the streams past it reaches the service.
  auto doc = h2_client(p, {"too-many-streams", "12", "8"});
  EXPECT_EQ(doc["remote_settings"]["3"], 8) << doc.dump();
  EXPECT_TRUE(doc["goaway"] == protocol_error || doc["resets"].size() >= 4u) << doc.dump();
  release = true;
  EXPECT_LE(held.load(), 8);

  // A client that never opens its window: the stream is reset after timeouts.body.
  doc = h2_client(p, {"zero-window", "/large"});
  EXPECT_FALSE(doc["resets"]["1"].is_null()) << doc.dump().substr(0, 300);
  doc = h2_client(p, {"get", "/after"});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "200");
}

TEST(Http2, AResetStreamEndsItsUpstreamRequestAndAHalfSentHeadTimesOut) {
  NEED(have_python_h2(), "python3-h2");
  std::atomic<int> closed_early{0};
  std::atomic<int> seen{0};
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request(r)) {
      ++seen;
      // kinfra closes this connection when the client resets its stream (not after 10 s).
      if (r.target == "/slow") {
        const auto start = std::chrono::steady_clock::now();
        if (c.wait_closed(10s) && std::chrono::steady_clock::now() - start < 5s) ++closed_early;
        return;
      }
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  kt::kinfra_process k(h2_routes(up.url(), "timeouts: { header: 1s, idle: 2s }\n"), false);
  auto doc = h2_client(k.port(0), {"reset-after", "/slow", "500"});
  EXPECT_TRUE(kt::wait_until([&] { return closed_early.load() == 1; }, 8s)) << "seen " << seen.load();

  // A header block that never ends: the stream (or the connection) goes after timeouts.header.
  doc = h2_client(k.port(0), {"incomplete-headers", "8"});
  EXPECT_TRUE(!doc["reset"].is_null() || !doc["goaway"].is_null() || doc["closed"].get<bool>()) << doc.dump();
  EXPECT_LT(doc["seconds"].get<double>(), 5.0) << doc.dump();
  doc = h2_client(k.port(0), {"get", "/after"});
  EXPECT_EQ(status_of(doc["responses"]["1"]), "200");
}

TEST(Http2, AListenerRemovedByAReloadSendsGoawayAndItsStreamFinishes) {
  NEED(have("nghttp"), "nghttp2-client");
  held_upstream held;
  auto& up = held.up;
  const std::string body = kt::one_service(up.url());
  kt::kinfra_process k(body);
  const auto extra = kt::free_port();
  const std::string with_extra = "listen:\n  - 127.0.0.1:0\n  - address: 127.0.0.1:" + std::to_string(extra) +
                                 "\n    h2c: true\nadmin_listen: 127.0.0.1:0\n" + body;
  auto reload = [&](const std::string& yaml) {
    k.dir().write("routes.yaml", yaml);
    auto res = kt::http_request(k.port(), "POST", "/__action__/reload");
    return nlohmann::json::parse(res.body, nullptr, false)["applied"] == true;
  };
  ASSERT_TRUE(reload(with_extra));
  std::string out;
  const int code = fetch_across_close(held, "http://127.0.0.1:" + std::to_string(extra) + "/slow", extra,
                                      [&] { reload("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n" + body); }, out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("answer for /slow"), std::string::npos) << out;
  EXPECT_NE(out.find("recv GOAWAY frame"), std::string::npos) << out;
  EXPECT_EQ(kt::http_get(k.port(), "/still").status, 200);
}

TEST(Http2, AListenerWithoutH2cOrWithHttp2OffSpeaksHttp11) {
  NEED(have("curl"), "curl");
  kt::test_upstream up;
  kt::kinfra_process k("listen:\n  - address: 127.0.0.1:0\n    tls: { self_signed: true }\n    http2: false\n"
                       "  - 127.0.0.1:0\n" + kt::one_service(up.url()), false);
  std::string out = curl("--http2 'https://127.0.0.1:" + std::to_string(k.port(0)) + "/x'");
  EXPECT_TRUE(out.ends_with("\n1.1 200")) << out;
  // The h2 preface to a plain listener without h2c: an HTTP/1.1 error, never forwarded.
  out = curl("--http2-prior-knowledge 'http://127.0.0.1:" + std::to_string(k.port(1)) + "/x'");
  EXPECT_FALSE(out.ends_with(" 200")) << out;
  EXPECT_EQ(up.request_count(), 1u);
}

TEST(Http2, ShutdownSendsGoawayAndLetsAStreamInFlightFinish) {
  NEED(have("nghttp"), "nghttp2-client");
  held_upstream held;
  auto& up = held.up;
  kt::kinfra_process k(h2_routes(up.url()), false);
  const auto port = k.port(0);
  // Once the upstream holds /slow, kinfra is told to stop; once it no longer accepts connections,
  // the upstream answers: the stream in flight still completes, over the same connection.
  std::string out;
  const int code = fetch_across_close(held, "https://127.0.0.1:" + std::to_string(port) + "/slow", port,
                                      [&] { ::kill(k.pid(), SIGTERM); }, out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("answer for /slow"), std::string::npos) << out;
  EXPECT_NE(out.find("recv GOAWAY frame"), std::string::npos) << out;
  EXPECT_EQ(k.wait_for_exit(15s), 0);
}

}  // namespace

namespace {

bool have_grpc() { return kt::run_shell("/usr/bin/python3 -c 'import grpc' 2>/dev/null") == 0; }

/** Runs tests/helper/grpc_peer.py client/unary through kinfra; its JSON. */
nlohmann::json grpc_client(const std::string& mode, const std::string& target, const std::string& ca = "") {
  std::string out;
  kt::run_shell(std::string("timeout 60 /usr/bin/python3 ") + KINFRA_SOURCE_DIR + "/tests/helper/grpc_peer.py " + mode +
                    " " + target + (ca.empty() ? "" : " " + ca),
                &out);
  auto nl = out.rfind('\n', out.size() - 2);
  auto doc = nlohmann::json::parse(nl == std::string::npos ? out : out.substr(nl + 1), nullptr, false);
  if (doc.is_discarded()) ADD_FAILURE() << "grpc_peer printed no JSON:\n" << out;
  return doc.is_discarded() ? nlohmann::json() : doc;
}

TEST(Grpc, UnaryStreamingBidiAndStatusThroughKinfraThenUnavailableWhileTheServiceIsDown) {
  NEED(have_grpc(), "python3-grpcio");
  kt::temp_dir work;
  const std::string port_file = work.path() + "/port";
  auto server = std::make_unique<kt::child_process>(
      std::vector<std::string>{"/usr/bin/python3", std::string(KINFRA_SOURCE_DIR) + "/tests/helper/grpc_peer.py",
                               "server", port_file},
      std::vector<std::string>{}, work.path() + "/server.log");
  ASSERT_TRUE(kt::wait_until([&] { return std::filesystem::exists(port_file); }, 15s)) << server->log();
  std::string port;
  std::ifstream(port_file) >> port;
  kt::kinfra_process k("listen:\n  - address: 127.0.0.1:0\n    tls: { self_signed: true }\n"
                       "  - address: 127.0.0.1:0\n    h2c: true\nstate_dir: " + work.path() + "/state\n"
                       "workers: 1\nroutes:\n  - { path: /, service: grpc }\n"
                       "  - { path: /limited, service: grpc, strip_prefix: true, max_body_bytes: 1MiB }\n"
                       "services:\n  grpc: { url: \"http://127.0.0.1:" + port + "\", protocol: h2c, "
                       "health: { interval: 100ms } }\n",
                       false);
  const std::string tls_target = "127.0.0.1:" + std::to_string(k.port(0));
  const std::string ca = work.path() + "/state/ca/kinfra-local-ca.crt";
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(1), "grpc") == "running"; }, 15s));

  // gRPC client → kinfra (h2 over TLS, verified with kinfra's local CA) → gRPC server (h2c).
  auto doc = grpc_client("client", tls_target, ca);
  EXPECT_EQ(doc["unary"]["value"], "echo:hello") << doc.dump().substr(0, 500);
  EXPECT_FALSE(doc["unary"]["trailers"]["x-pid"].is_null()) << "trailers from the service reach the client";
  ASSERT_EQ(doc["server_stream"].size(), 100u);
  EXPECT_EQ(doc["server_stream"][99], "message 99");
  ASSERT_EQ(doc["bidi"].size(), 20u) << doc["bidi"].dump();
  EXPECT_EQ(doc["bidi"][19], "bidi:m19");
  EXPECT_TRUE(doc["big"]["ok"].get<bool>()) << doc["big"].dump();
  EXPECT_EQ(doc["fail"]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(doc["fail"]["details"], "bad argument: x");
  EXPECT_EQ(doc["fail"]["trailers"]["x-reason"], "on purpose");
  // And over h2c (prior knowledge) too.
  doc = grpc_client("unary", "127.0.0.1:" + std::to_string(k.port(1)));
  EXPECT_EQ(doc["unary"]["value"], "echo:hello") << doc.dump();

  // A route's max_body_bytes holds for a relayed stream: RESOURCE_EXHAUSTED (8) past it.
  doc = grpc_client("limited", tls_target, ca);
  EXPECT_EQ(doc["small"]["value"], "echo:hi") << doc.dump();
  EXPECT_EQ(doc["big"]["code"], "RESOURCE_EXHAUSTED") << doc.dump();

  // A call held open is in flight to the service (the dashboard's history, /metrics) until it ends.
  const std::string gauge = "kinfra_service_requests_in_flight{service=\"grpc\"}";
  EXPECT_EQ(kt::metric_value(k.port(1), gauge), 0);
  const std::string release = work.path() + "/release";
  std::string held;
  std::thread holder([&] {
    kt::run_shell(std::string("timeout 60 /usr/bin/python3 ") + KINFRA_SOURCE_DIR + "/tests/helper/grpc_peer.py hold 127.0.0.1:" +
                      std::to_string(k.port(1)) + " " + release,
                  &held);
  });
  EXPECT_TRUE(kt::wait_until([&] { return kt::metric_value(k.port(1), gauge) == 1; }, 15s));
  std::ofstream(release) << "go";
  holder.join();
  EXPECT_NE(held.find("held"), std::string::npos) << held;
  EXPECT_TRUE(kt::wait_until([&] { return kt::metric_value(k.port(1), gauge) == 0; }, 10s));

  // An HTTP/1.1 client on a gRPC route: 505, nothing forwarded.
  std::string out;
  kt::run_shell("curl -sk --http1.1 -o /dev/null -w '%{http_code}' https://" + tls_target + "/test.Echo/Unary", &out);
  EXPECT_EQ(out, "505");

  // The service goes away: UNAVAILABLE (14) with kinfra's message, not an HTML page.
  server.reset();
  doc = grpc_client("unary", tls_target, ca);
  EXPECT_EQ(doc["unary"]["code"], "UNAVAILABLE") << doc.dump();
  EXPECT_NE(doc["unary"]["details"].get<std::string>().find("service"), std::string::npos) << doc.dump();
}

}  // namespace
