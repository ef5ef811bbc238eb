// The request counters behind /metrics and the dashboard's rates.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <thread>

#include "common/config_loader.hpp"
#include "common/metrics.hpp"
#include "common/status_board.hpp"

namespace {

using namespace std::chrono_literals;
using kinfra::metrics_registry;

/** The samples of a Prometheus text exposition: "name{labels}" → value. Comments are checked. */
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      EXPECT_TRUE(line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) << line;
      continue;
    }
    auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

TEST(Metrics, SameLabelsGiveTheSameSeries) {
  metrics_registry m(2);
  auto& a = m.route("/api", "api");
  EXPECT_EQ(&a, &m.route("/api", "api"));
  EXPECT_NE(&a, &m.route("/api", "other"));
  EXPECT_EQ(&m.service("api"), &m.service("api"));
}

TEST(Metrics, CountsByClassDurationAndBytesAcrossWorkers) {
  metrics_registry m(2);
  auto& r = m.route("/api", "api");
  r.record(0, 200, 3ms, 100, 1000);
  r.record(1, 204, 30ms, 50, 10);
  r.record(1, 503, 2s, 10, 5);
  r.record(0, 0, 20s, 7, 0);  // the client left before an answer
  auto t = r.sum();
  EXPECT_EQ(t.requests(), 4u);
  EXPECT_EQ(t.by_class[2], 2u);
  EXPECT_EQ(t.by_class[5], 1u);
  EXPECT_EQ(t.by_class[0], 1u);
  EXPECT_EQ(t.bytes_received, 167u);
  EXPECT_EQ(t.bytes_sent, 1015u);
  EXPECT_EQ(t.duration_us, 3000u + 30000u + 2000000u + 20000000u);

  auto s = parse(m.render(nullptr));
  const std::string l = "route=\"/api\",service=\"api\"";
  EXPECT_EQ(s["kinfra_http_requests_total{" + l + ",code=\"2xx\"}"], 2);
  EXPECT_EQ(s["kinfra_http_requests_total{" + l + ",code=\"5xx\"}"], 1);
  EXPECT_EQ(s["kinfra_http_requests_total{" + l + ",code=\"other\"}"], 1);
  EXPECT_EQ(s.count("kinfra_http_requests_total{" + l + ",code=\"3xx\"}"), 0u) << "classes never seen are left out";
  // Cumulative buckets: 3 ms ≤ 0.005, 30 ms ≤ 0.05, 2 s ≤ 2.5, 20 s only in +Inf.
  EXPECT_EQ(s["kinfra_http_request_duration_seconds_bucket{" + l + ",le=\"0.005\"}"], 1);
  EXPECT_EQ(s["kinfra_http_request_duration_seconds_bucket{" + l + ",le=\"0.025\"}"], 1);
  EXPECT_EQ(s["kinfra_http_request_duration_seconds_bucket{" + l + ",le=\"0.05\"}"], 2);
  EXPECT_EQ(s["kinfra_http_request_duration_seconds_bucket{" + l + ",le=\"2.5\"}"], 3);
  EXPECT_EQ(s["kinfra_http_request_duration_seconds_bucket{" + l + ",le=\"10\"}"], 3);
  EXPECT_EQ(s["kinfra_http_request_duration_seconds_bucket{" + l + ",le=\"+Inf\"}"], 4);
  EXPECT_EQ(s["kinfra_http_request_duration_seconds_count{" + l + "}"], 4);
  EXPECT_DOUBLE_EQ(s["kinfra_http_request_duration_seconds_sum{" + l + "}"], 22.033);
  EXPECT_EQ(s["kinfra_http_received_bytes_total{" + l + "}"], 167);
  EXPECT_EQ(s["kinfra_http_sent_bytes_total{" + l + "}"], 1015);
}

TEST(Metrics, ConnectionsAndConnectErrors) {
  metrics_registry m(2);
  m.connections(0).opened.add(5);
  m.connections(1).opened.add(3);
  m.connections(0).closed.add(4);
  m.service("api").connect_error(1);
  m.service("api").connect_error(0);
  auto s = parse(m.render(nullptr));
  EXPECT_EQ(s["kinfra_connections_total"], 8);
  EXPECT_EQ(s["kinfra_connections_active"], 4);
  EXPECT_EQ(s["kinfra_upstream_connect_errors_total{service=\"api\"}"], 2);
}

TEST(Metrics, ServiceStateRestartsHealthChecksAndConfigFromTheBoard) {
  auto loaded = kinfra::load_config_string(
      "routes:\n  - { path: /, service: api }\nservices:\n  api: { url: http://127.0.0.1:1 }\n  db: { url: tcp://127.0.0.1:2 }\n",
      "routes.yaml");
  ASSERT_TRUE(loaded.ok());
  kinfra::status_board board(*loaded.cfg);
  board.modify("api", [](kinfra::service_status& st) {
    st.state = kinfra::service_state::running;
    st.restarts = 3;
  });
  board.modify("db", [](kinfra::service_status& st) { st.state = kinfra::service_state::error; });
  board.record_health_check("api", true);
  board.record_health_check("api", true);
  board.record_health_check("api", false);
  board.set_config_status([](kinfra::config_status& c) {
    c.reloads = 2;
    c.failures = 1;
    c.errors = {"routes.yaml:1:1: bad"};
  });
  metrics_registry m(1);
  auto s = parse(m.render(&board));
  EXPECT_EQ(s["kinfra_service_state{service=\"api\",state=\"running\"}"], 1);
  EXPECT_EQ(s["kinfra_service_state{service=\"api\",state=\"stopped\"}"], 0);
  EXPECT_EQ(s["kinfra_service_state{service=\"db\",state=\"error\"}"], 1);
  EXPECT_EQ(s["kinfra_service_state{service=\"db\",state=\"running\"}"], 0);
  EXPECT_EQ(s["kinfra_service_up{service=\"api\"}"], 1);
  EXPECT_EQ(s["kinfra_service_up{service=\"db\"}"], 0);
  EXPECT_EQ(s["kinfra_service_restarts_total{service=\"api\"}"], 3);
  EXPECT_EQ(s["kinfra_service_health_checks_total{service=\"api\",result=\"success\"}"], 2);
  EXPECT_EQ(s["kinfra_service_health_checks_total{service=\"api\",result=\"failure\"}"], 1);
  EXPECT_EQ(s["kinfra_config_reloads_total{result=\"success\"}"], 2);
  EXPECT_EQ(s["kinfra_config_reloads_total{result=\"failure\"}"], 1);
  EXPECT_EQ(s["kinfra_config_errors"], 1);
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(kinfra::escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  metrics_registry m(1);
  m.route("weird\"host/x", "s").record(0, 200, 1ms, 0, 0);
  auto text = m.render(nullptr);
  EXPECT_NE(text.find("route=\"weird\\\"host/x\""), std::string::npos) << text;
}

TEST(Metrics, RatesNeedTwoSamplesASecondApart) {
  metrics_registry m(1);
  auto& api = m.route("/api", "api");
  auto t0 = std::chrono::steady_clock::now();
  auto first = m.rates(t0);
  EXPECT_FALSE(first["api"].requests_per_second.has_value());
  for (int i = 0; i < 8; ++i) api.record(0, 200, 1ms, 0, 0);
  for (int i = 0; i < 2; ++i) api.record(0, 502, 1ms, 0, 0);
  EXPECT_FALSE(m.rates(t0 + 500ms)["api"].requests_per_second.has_value()) << "half a second is too short";
  auto r = m.rates(t0 + 2s)["api"];
  ASSERT_TRUE(r.requests_per_second.has_value());
  EXPECT_DOUBLE_EQ(*r.requests_per_second, 5.0);
  ASSERT_TRUE(r.error_rate.has_value());
  EXPECT_DOUBLE_EQ(*r.error_rate, 0.2);
  EXPECT_EQ(r.requests, 10u);
  EXPECT_EQ(r.errors, 2u);
  // Nothing more for a while: the rate falls to zero over the window, the error rate is unknown.
  auto later = m.rates(t0 + 30s)["api"];
  ASSERT_TRUE(later.requests_per_second.has_value());
  EXPECT_DOUBLE_EQ(*later.requests_per_second, 0.0);
  EXPECT_FALSE(later.error_rate.has_value());
}

TEST(Metrics, ConcurrentWritersAndScrapesAgree) {
  metrics_registry m(2);
  auto& r = m.route("/", "web");
  constexpr int per_worker = 100000;
  std::thread a([&] { for (int i = 0; i < per_worker; ++i) r.record(0, 200, 1ms, 1, 2); });
  std::thread b([&] { for (int i = 0; i < per_worker; ++i) r.record(1, 500, 1ms, 1, 2); });
  for (int i = 0; i < 20; ++i) (void)m.render(nullptr);  // scrapes while counting
  a.join();
  b.join();
  auto t = r.sum();
  EXPECT_EQ(t.by_class[2], static_cast<std::uint64_t>(per_worker));
  EXPECT_EQ(t.by_class[5], static_cast<std::uint64_t>(per_worker));
  EXPECT_EQ(t.bytes_sent, 4u * per_worker);
}

}  // namespace
