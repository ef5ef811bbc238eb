// /__history__: what the dashboard's charts draw (issue 19), from the real executable: known
// traffic becomes known points, latency quantiles come with it, and the admin read rules apply.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

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
  // The route's own series (by its label, as the status document's routes name it).
  const auto label = kt::get_status(k.port())["routes"][0]["label"].get<std::string>();
  EXPECT_EQ(total(k.port(), "route=" + label, "requests"), 23u);
  EXPECT_EQ(total(k.port(), "route=" + label, "errors"), 3u);
  EXPECT_EQ(kt::http_get(k.port(), "/__history__?route=/nope").status, 404);
  // Merged into 5 s steps: the same sums, in fewer points.
  auto merged = json::parse(kt::http_get(k.port(), "/__history__?service=app&step=5").body);
  EXPECT_EQ(merged["step_seconds"], 5);
  std::uint64_t sum = 0;
  for (const auto& p : merged["points"]) {
    EXPECT_EQ(p["t"].get<std::int64_t>() % 5, 0);
    sum += p["requests"].get<std::uint64_t>();
  }
  EXPECT_EQ(sum, 23u);
  EXPECT_EQ(kt::http_get(k.port(), "/__history__?step=7&range=1h").status, 400) << "a multiple of 60 s for hours";
  // Everything at once, in columns: the sparklines' one request.
  auto all = json::parse(kt::http_get(k.port(), "/__history__?all=1&step=5").body);
  double rps = 0;
  const auto& app = all["services"]["app"];
  ASSERT_EQ(app["t"].size(), app["requests_per_s"].size());
  for (const auto& v : app["requests_per_s"]) rps = std::max(rps, v.get<double>());
  EXPECT_GT(rps, 0);
  EXPECT_TRUE(all["routes"].contains(label)) << all.dump().substr(0, 400);
  EXPECT_TRUE(all["kinfra"]["p99_ms"].is_array());
  // Everything at once stays small: at least 3 s (15m), 1 min (1h), 5 min (24h) a point.
  EXPECT_EQ(json::parse(kt::http_get(k.port(), "/__history__?all=1&step=1").body)["step_seconds"], 3);
  EXPECT_EQ(json::parse(kt::http_get(k.port(), "/__history__?all=1&range=24h").body)["step_seconds"], 300);
  // The admin read rules: a foreign Host (DNS rebinding) gets nothing.
  kt::header_list foreign;
  foreign.add("Host", "attacker.example");
  auto res = kt::http_get(k.port(), "/__history__?service=app", foreign);
  EXPECT_EQ(res.status, 421);
  EXPECT_EQ(res.body.find("\"points\""), std::string::npos);
}

TEST(HistoryApi, AServicesRequestsInFlightAreItsConnections) {
  std::atomic<bool> release{false};
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request r;
    while (c.read_request(r)) {
      if (r.target == "/slow") kt::wait_until([&] { return release.load(); }, 20s);
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  kt::kinfra_process k(kt::one_service(up.url()));
  const std::string gauge = "kinfra_service_requests_in_flight{service=\"app\"}";
  EXPECT_EQ(kt::http_get(k.port(), "/ok").status, 200);
  EXPECT_EQ(kt::metric_value(k.port(), gauge), 0) << "a request that ended is not in flight";
  std::vector<std::thread> slow;
  for (int i = 0; i < 2; ++i) slow.emplace_back([&] { EXPECT_EQ(kt::http_get(k.port(), "/slow").status, 200); });
  ASSERT_TRUE(kt::wait_until([&] { return kt::metric_value(k.port(), gauge) == 2; }, 10s));
  // The next 1 s point holds them.
  auto last_connections = [&] {
    auto doc = json::parse(kt::http_get(k.port(), "/__history__?service=app").body);
    return doc["points"].empty() ? -1 : doc["points"].back()["connections"].get<int>();
  };
  EXPECT_TRUE(kt::wait_until([&] { return last_connections() == 2; }, 10s));
  release = true;
  for (auto& t : slow) t.join();
  EXPECT_TRUE(kt::wait_until([&] { return kt::metric_value(k.port(), gauge) == 0 && last_connections() == 0; }, 10s));
}

}  // namespace
