// The history rings behind the dashboard's charts: rates and latency quantiles from cumulative
// counters, 1 s points rolled up into 1 min points, and fixed bounds.

#include "common/history.hpp"

#include <gtest/gtest.h>

#include "common/config_loader.hpp"

namespace kinfra {
namespace {

/** Counters after `requests` requests (all in the 10–25 ms bucket), `errors` of them 5xx. */
history_counters after(std::uint64_t requests, std::uint64_t errors = 0, std::uint64_t restarts = 0) {
  history_counters c;
  c.requests = requests;
  c.errors = errors;
  c.buckets[2] = requests;  // (0.01, 0.025] s
  c.restarts = restarts;
  return c;
}

TEST(History, QuantilesComeFromTheHistogram) {
  std::array<std::uint64_t, duration_buckets.size() + 1> b{};
  EXPECT_FALSE(bucket_quantile(b, 0.5));
  b[0] = 50;  // ≤ 5 ms
  b[3] = 50;  // (25, 50] ms
  EXPECT_NEAR(*bucket_quantile(b, 0.5), 5.0, 1e-9);   // the 50th request is the last of the first bucket
  EXPECT_NEAR(*bucket_quantile(b, 0.75), 37.5, 1e-9);  // halfway through (25, 50]
  EXPECT_NEAR(*bucket_quantile(b, 1.0), 50.0, 1e-9);
  b = {};
  b.back() = 3;  // all above the last bound (10 s): reported as 10 s
  EXPECT_NEAR(*bucket_quantile(b, 0.99), 10000.0, 1e-9);
}

TEST(History, KnownTrafficMakesKnownSecondPoints) {
  history h;
  h.sample(1000, after(0));
  h.sample(1001, after(10, 2));
  h.sample(1003, after(30, 2, 1));  // two seconds later: one point for both
  auto pts = h.points(history::span::minutes_15);
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[0].at, 1000);
  EXPECT_DOUBLE_EQ(pts[0].requests_per_s, 10);
  EXPECT_DOUBLE_EQ(pts[0].errors_per_s, 2);
  ASSERT_TRUE(pts[0].p99_ms);
  EXPECT_GT(*pts[0].p99_ms, 10.0);
  EXPECT_LE(*pts[0].p99_ms, 25.0);
  EXPECT_EQ(pts[0].restarts, 0u);
  EXPECT_EQ(pts[1].at, 1001);
  EXPECT_DOUBLE_EQ(pts[1].requests_per_s, 10);  // 20 requests over 2 s
  EXPECT_DOUBLE_EQ(pts[1].errors_per_s, 0);
  EXPECT_EQ(pts[1].restarts, 1u);
  // No request in a second: no latency for it.
  h.sample(1004, after(30, 2, 1));
  EXPECT_FALSE(h.points(history::span::minutes_15).back().p50_ms);
  // The same second again changes nothing.
  h.sample(1004, after(99));
  EXPECT_EQ(h.points(history::span::minutes_15).size(), 3u);
  // The clock set back an hour: a new baseline, and points again from the next second.
  h.sample(1004 - 3600, after(40));
  h.sample(1005 - 3600, after(45));
  auto pts2 = h.points(history::span::minutes_15);
  ASSERT_EQ(pts2.size(), 4u);
  EXPECT_EQ(pts2.back().at, 1004 - 3600);
  EXPECT_DOUBLE_EQ(pts2.back().requests_per_s, 5);
}

TEST(History, SecondsRollUpIntoMinutes) {
  history h;
  // From 12:00:00 (a multiple of 60) for three minutes: 60 requests a second in the first
  // minute, 30 in the second, none in the third. A sample at t reports the second before it.
  const std::int64_t t0 = 1'700'000'040;  // a multiple of 60
  std::uint64_t total = 0;
  h.sample(t0, after(0));
  for (std::int64_t t = t0 + 1; t <= t0 + 180; ++t) {  // (the last closes the third minute)
    const std::int64_t minute = (t - 1 - t0) / 60;
    total += minute == 0 ? 60 : minute == 1 ? 30 : 0;
    h.sample(t, after(total));
  }
  auto minutes = h.points(history::span::hours_24);
  ASSERT_GE(minutes.size(), 3u);
  minutes.erase(minutes.begin(), minutes.end() - 3);
  EXPECT_EQ(minutes[0].at, t0);
  EXPECT_DOUBLE_EQ(minutes[0].requests_per_s, 60);
  EXPECT_EQ(minutes[1].at, t0 + 60);
  EXPECT_DOUBLE_EQ(minutes[1].requests_per_s, 30);
  EXPECT_EQ(minutes[2].at, t0 + 120);
  EXPECT_DOUBLE_EQ(minutes[2].requests_per_s, 0);
  EXPECT_FALSE(minutes[2].p50_ms);
  // A minute holds exactly the 1 s points labelled with its seconds.
  for (const auto& m : minutes) {
    std::uint64_t in_seconds = 0;
    for (const auto& s : h.points(history::span::minutes_15))
      if (s.at >= m.at && s.at < m.at + 60) in_seconds += s.requests;
    EXPECT_EQ(in_seconds, m.requests) << "minute " << m.at;
    EXPECT_EQ(m.seconds, 60u);
  }
  EXPECT_EQ(h.points(history::span::hour_1).size(), h.points(history::span::hours_24).size());  // (under an hour)
}

TEST(History, TheRingsAreBounded) {
  history h;
  const std::int64_t t0 = 1'700'000'040;
  // 25 hours of one sample a second.
  for (std::int64_t t = t0; t <= t0 + 25 * 3600; ++t) h.sample(t, after(static_cast<std::uint64_t>(t - t0)));
  auto seconds = h.points(history::span::minutes_15);
  ASSERT_EQ(seconds.size(), history::second_points);
  EXPECT_EQ(seconds.back().at, t0 + 25 * 3600 - 1);
  EXPECT_EQ(seconds.front().at, seconds.back().at - static_cast<std::int64_t>(history::second_points) + 1);
  auto day = h.points(history::span::hours_24);
  ASSERT_EQ(day.size(), history::minute_points);
  EXPECT_EQ(day.back().at - day.front().at, static_cast<std::int64_t>(history::minute_points - 1) * 60);
  EXPECT_DOUBLE_EQ(day.back().requests_per_s, 1);
  EXPECT_EQ(h.points(history::span::hour_1).size(), 60u);
  EXPECT_EQ(h.points(history::span::hour_1).back().at, day.back().at);
}

}  // namespace
}  // namespace kinfra

namespace kinfra {
namespace {

TEST(History, TheRegistrySumsAServicesRoutesFromZero) {
  metrics_registry metrics(2);
  using namespace std::chrono_literals;
  auto& api = metrics.route("/api", "app");
  auto& web = metrics.route("/", "app");
  auto& stopped = metrics.route(metrics_registry::fallback_route, "app");
  api.record(0, 200, 3ms, 0, 0);   // counted before the first sample: still in the first point
  history_registry h;
  h.sample(2000, metrics, nullptr);
  web.record(1, 502, 40ms, 0, 0);
  api.record(1, 200, 3ms, 0, 0);
  stopped.record(0, 503, 1ms, 0, 0);  // kinfra's own page for a service stopped on purpose
  h.sample(2001, metrics, nullptr);
  auto pts = h.points("app", history::span::minutes_15);
  ASSERT_TRUE(pts);
  ASSERT_EQ(pts->size(), 2u);
  EXPECT_EQ((*pts)[0].requests, 1u);
  EXPECT_EQ((*pts)[1].requests, 3u);
  EXPECT_EQ((*pts)[1].errors, 1u) << "the 502, not kinfra's page for a stopped service";
  ASSERT_TRUE((*pts)[1].p99_ms);
  EXPECT_GT(*(*pts)[1].p99_ms, 25.0);
  auto whole = h.points("", history::span::minutes_15);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->back().requests, 3u);
  EXPECT_FALSE(h.points("nope", history::span::minutes_15));
}

TEST(History, ARemovedServiceOrRouteLosesItsHistoryAndStartsAnewWhenBack) {
  auto load = [](const std::string& yaml) {
    auto r = load_config_string(yaml, "/tmp/routes.yaml");
    EXPECT_TRUE(r.ok());
    return r.cfg;
  };
  const std::string a = "services:\n  a: { url: \"http://127.0.0.1:1\" }\nroutes:\n  - { path: /a, service: a }\n";
  const std::string b = "services:\n  b: { url: \"http://127.0.0.1:1\" }\nroutes:\n  - { path: /b, service: b }\n";
  auto with_a = load(a), with_b = load(b), with_a_again = load(a);
  metrics_registry metrics(1);
  using namespace std::chrono_literals;
  auto& ra = metrics.route("/a", "a");
  auto& rb = metrics.route("/b", "b");
  for (int i = 0; i < 5; ++i) ra.record(0, 200, 1ms, 0, 0);
  // Requests in flight to a service: its connections.
  metrics.service("a").began(0);
  metrics.service("a").began(0);
  metrics.service("a").ended(0);
  history_registry h;
  h.sample(3000, metrics, nullptr, with_a);
  ASSERT_TRUE(h.points("a", history::span::minutes_15));
  EXPECT_EQ(h.points("a", history::span::minutes_15)->back().connections, 1u);
  EXPECT_EQ(h.route_points("/a", history::span::minutes_15)->back().requests, 5u);
  EXPECT_FALSE(h.points("b", history::span::minutes_15)) << "not in the configuration yet";
  // A reload: a and its route go, b and its route come.
  rb.record(0, 200, 1ms, 0, 0);
  h.sample(3001, metrics, nullptr, with_b);
  EXPECT_FALSE(h.points("a", history::span::minutes_15));
  EXPECT_FALSE(h.route_points("/a", history::span::minutes_15));
  EXPECT_EQ(h.service_names(), std::vector<std::string>{"b"});
  EXPECT_EQ(h.route_labels(), std::vector<std::string>{"/b"});
  EXPECT_EQ(h.points("b", history::span::minutes_15)->back().requests, 1u);
  // a comes back: its counters did not start from zero, so its history starts from them.
  ra.record(0, 200, 1ms, 0, 0);
  h.sample(3002, metrics, nullptr, with_a_again);
  h.sample(3003, metrics, nullptr, with_a_again);
  auto pts = h.points("a", history::span::minutes_15);
  ASSERT_TRUE(pts);
  std::uint64_t sum = 0;
  for (const auto& p : *pts) sum += p.requests;
  EXPECT_EQ(sum, 0u) << "the 6 counted before it came back are not a burst in its first second";
  ra.record(0, 200, 1ms, 0, 0);
  h.sample(3004, metrics, nullptr, with_a_again);
  EXPECT_EQ(h.points("a", history::span::minutes_15)->back().requests, 1u);
}

}  // namespace
}  // namespace kinfra
