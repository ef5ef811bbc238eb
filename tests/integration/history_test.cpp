// /__history__: what the dashboard's charts draw (issue 19), from the real executable: known
// traffic becomes known points, latency quantiles come with it, and the admin read rules apply.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http_test.hpp"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

/** The sum of `field` over the points of /__history__?QUERY. */
std::uint64_t total(std::uint16_t port, const std::string& query, const char* field) {
  auto res = kt::http_get(port, "/__history__?" + query);
  if (res.status != 200) return 0;
  const json doc = json::parse(res.body);
  std::uint64_t n = 0;
  for (const auto& p : doc["points"]) n += p[field].get<std::uint64_t>();
  return n;
}

TEST(HistoryApi, KnownTrafficBecomesKnownPoints) {
  kt::test_upstream up([](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request(r)) {
      if (r.target == "/fail") c.send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
      else c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(kt::http_get(k.port(), "/ok").status, 200);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(kt::http_get(k.port(), "/fail").status, 503);
  // Sampled once a second: every request shows up in a 1 s point within a few seconds.
  ASSERT_TRUE(kt::wait_until([&] { return total(k.port(), "service=app", "requests") == 23; }, 10s))
      << kt::http_get(k.port(), "/__history__?service=app").body.substr(0, 300);
  EXPECT_EQ(total(k.port(), "service=app", "errors"), 3u);
  auto doc = json::parse(kt::http_get(k.port(), "/__history__?service=app&range=15m").body);
  EXPECT_EQ(doc["service"], "app");
  EXPECT_EQ(doc["step_seconds"], 1);
  bool latency = false;
  for (const auto& p : doc["points"]) {
    EXPECT_EQ(p["state"], "running") << p.dump();
    if (p["requests"].get<int>() > 0) {
      latency = true;
      EXPECT_TRUE(p["p99_ms"].is_number()) << p.dump();
      EXPECT_DOUBLE_EQ(p["requests_per_s"].get<double>(), p["requests"].get<double>() / p["seconds"].get<double>());
    } else {
      EXPECT_TRUE(p["p50_ms"].is_null()) << p.dump();
    }
  }
  EXPECT_TRUE(latency);
  // kinfra as a whole counts them too (and its own pages not).
  EXPECT_GE(total(k.port(), "", "requests"), 23u);
  // Hours: 1 min points, none closed yet in a fresh process but a valid answer.
  auto hour = kt::http_get(k.port(), "/__history__?service=app&range=1h");
  EXPECT_EQ(hour.status, 200);
  EXPECT_EQ(json::parse(hour.body)["step_seconds"], 60);
  EXPECT_EQ(kt::http_get(k.port(), "/__history__?service=app&range=2d").status, 400);
  EXPECT_EQ(kt::http_get(k.port(), "/__history__?service=nope").status, 404);
  // The admin read rules: a foreign Host (DNS rebinding) gets nothing.
  kt::header_list foreign;
  foreign.add("Host", "attacker.example");
  auto res = kt::http_get(k.port(), "/__history__?service=app", foreign);
  EXPECT_EQ(res.status, 421);
  EXPECT_EQ(res.body.find("\"points\""), std::string::npos);
}

}  // namespace
