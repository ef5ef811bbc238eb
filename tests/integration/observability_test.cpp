// /metrics and the access log through the real executable: known traffic in, exact numbers out.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <regex>
#include <sstream>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

/** "name{labels}" → value, from a Prometheus text exposition. */
std::map<std::string, double> scrape(std::uint16_t port) {
  auto res = kt::http_get(port, "/metrics");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  std::map<std::string, double> out;
  std::istringstream in(res.body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

/** An upstream that answers every request with 500. */
void answer_500(kt::socket_conn& c) {
  kt::request r;
  while (c.read_request(r)) {
    if (!c.send("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom")) return;
  }
}

std::string three_routes(const kt::test_upstream& ok, const kt::test_upstream& bad, const std::string& extra = "") {
  return extra + "workers: 2\nroutes:\n  - { path: /ok, service: okay }\n  - { path: /fail, service: bad }\n"
         "  - { path: /gone, service: gone }\nservices:\n"
         "  okay: { url: " + ok.url() + ", health: off }\n"
         "  bad: { url: " + bad.url() + ", health: off }\n"
         "  gone: { url: \"http://127.0.0.1:1\", health: off }\n";
}

std::vector<std::string> wait_for_lines(const std::string& path, std::size_t n) {
  std::vector<std::string> lines;
  kt::wait_until([&] {
    lines = kt::read_lines(path);
    return lines.size() >= n;
  }, 10s);
  return lines;
}

kt::header_list headers(std::vector<std::pair<std::string, std::string>> fields) {
  kt::header_list h;
  h.fields = std::move(fields);
  return h;
}

}  // namespace

TEST(Metrics, CountKnownTrafficByRouteServiceAndClass) {
  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  kt::kinfra_process k(three_routes(ok, bad, "access_log: off\n"));
  std::uint64_t body_bytes = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = kt::http_get(k.port(), "/ok/item" + std::to_string(i));
    ASSERT_EQ(r.status, 200);
    body_bytes += r.body.size();
  }
  const std::string upload(1000, 'u');
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/ok/upload", {}, upload).status, 200);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(kt::http_get(k.port(), "/fail").status, 500);
  for (int i = 0; i < 2; ++i) EXPECT_GE(kt::http_get(k.port(), "/gone").status, 500);
  ASSERT_EQ(kt::http_get(k.port(), "/nowhere").status, 404);

  // A request is counted right after its last byte is written: give the workers that moment.
  const std::string okl = "route=\"/ok\",service=\"okay\"";
  std::map<std::string, double> m;
  EXPECT_TRUE(kt::wait_until([&] {
    m = scrape(k.port());
    return m["kinfra_http_request_duration_seconds_count{" + okl + "}"] == 7 &&
           m["kinfra_http_requests_total{route=\"(none)\",service=\"\",code=\"4xx\"}"] == 1 &&
           m["kinfra_http_requests_total{route=\"/gone\",service=\"gone\",code=\"5xx\"}"] == 2 &&
           m["kinfra_http_requests_total{route=\"/fail\",service=\"bad\",code=\"5xx\"}"] == 3;
  }, 5s));
  EXPECT_EQ(m["kinfra_http_requests_total{" + okl + ",code=\"2xx\"}"], 7);
  EXPECT_EQ(m["kinfra_http_requests_total{" + okl + ",code=\"5xx\"}"], 0);
  EXPECT_EQ(m["kinfra_http_requests_total{route=\"/fail\",service=\"bad\",code=\"5xx\"}"], 3);
  EXPECT_EQ(m["kinfra_http_requests_total{route=\"/gone\",service=\"gone\",code=\"5xx\"}"], 2);
  EXPECT_EQ(m["kinfra_http_requests_total{route=\"(none)\",service=\"\",code=\"4xx\"}"], 1);
  // The histogram: cumulative, ending with every request.
  double previous = 0;
  for (const char* le : {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}) {
    double v = m["kinfra_http_request_duration_seconds_bucket{" + okl + ",le=\"" + le + "\"}"];
    EXPECT_GE(v, previous) << le;
    previous = v;
  }
  EXPECT_EQ(previous, 7);
  EXPECT_EQ(m["kinfra_http_request_duration_seconds_count{" + okl + "}"], 7);
  EXPECT_GT(m["kinfra_http_request_duration_seconds_sum{" + okl + "}"], 0);
  // Bytes: at least the upload and the bodies the clients got, heads included.
  EXPECT_GE(m["kinfra_http_received_bytes_total{" + okl + "}"], 1000 + 7 * 30);
  EXPECT_GE(m["kinfra_http_sent_bytes_total{" + okl + "}"], static_cast<double>(body_bytes) + 7 * 40);
  EXPECT_GE(m["kinfra_upstream_connect_errors_total{service=\"gone\"}"], 1);
  EXPECT_EQ(m["kinfra_upstream_connect_errors_total{service=\"okay\"}"], 0);
  EXPECT_GE(m["kinfra_connections_total"], 13);
  EXPECT_GE(m["kinfra_connections_active"], 1) << "the scrape's own connection";
  EXPECT_EQ(m["kinfra_service_up{service=\"okay\"}"], 1);
  EXPECT_EQ(m.count("kinfra_build_info{version=\"" + std::string("0.1.0") + "\"}") +
                m.count("kinfra_start_time_seconds"),
            2u);

  // The scrape itself is counted as kinfra's own page by the next one.
  EXPECT_TRUE(kt::wait_until([&] {
    return scrape(k.port())["kinfra_http_requests_total{route=\"(kinfra)\",service=\"\",code=\"2xx\"}"] >= 1;
  }, 5s));
  // The direct admin listener serves the same counters.
  EXPECT_EQ(kt::http_get(k.admin_port(), "/metrics").status, 200);
}

TEST(Metrics, ServiceRestartsHealthChecksAndReloads) {
  const auto port = kt::free_port();
  const std::string body =
      "routes:\n  - { path: /, service: web }\nservices:\n" +
      kt::test_service_entry("web", {"--crash-after", "400"}, port,
                             "    health: { http: /health, interval: 100ms }\n    restart: { policy: always, backoff: 100ms }\n");
  kt::kinfra_process k("access_log: off\n" + body);
  ASSERT_TRUE(kt::wait_until([&] { return kt::get_status(k.port())["services"]["web"]["restarts"].get<int>() >= 1; },
                             15s));
  ASSERT_TRUE(kt::wait_until([&] {
    auto m = scrape(k.port());
    return m["kinfra_service_restarts_total{service=\"web\"}"] >= 1 &&
           m["kinfra_service_health_checks_total{service=\"web\",result=\"success\"}"] >= 1;
  }, 15s));

  // A broken save, then a good one: each reload is counted by result.
  auto reload = [&] { return kt::http_request(k.port(), "POST", "/__action__/reload").status; };
  k.dir().write("routes.yaml", "listen: 127.0.0.1:" + std::to_string(k.port()) + "\nadmin_listen: 127.0.0.1:" +
                                   std::to_string(k.admin_port()) + "\naccess_log: off\nroutes: [\n");
  EXPECT_EQ(reload(), 422);
  auto broken = scrape(k.port());
  EXPECT_EQ(broken["kinfra_config_reloads_total{result=\"failure\"}"], 1);
  EXPECT_GE(broken["kinfra_config_errors"], 1);
  k.dir().write("routes.yaml", "listen: 127.0.0.1:" + std::to_string(k.port()) + "\nadmin_listen: 127.0.0.1:" +
                                   std::to_string(k.admin_port()) + "\naccess_log: off\n" + body);
  EXPECT_EQ(reload(), 200);
  auto fixed = scrape(k.port());
  EXPECT_EQ(fixed["kinfra_config_reloads_total{result=\"success\"}"], 1);
  EXPECT_EQ(fixed["kinfra_config_errors"], 0);
}

TEST(Metrics, CountersSurviveAReloadThatKeepsTheRoute) {
  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  kt::kinfra_process k(three_routes(ok, bad, "access_log: off\n"));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(kt::http_get(k.port(), "/ok").status, 200);
  k.dir().write("routes.yaml", "listen: 127.0.0.1:" + std::to_string(k.port()) + "\nadmin_listen: 127.0.0.1:" +
                                   std::to_string(k.admin_port()) + "\n" +
                                   three_routes(ok, bad, "access_log: off\ntimeouts: { connect: 2s }\n"));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_EQ(kt::http_get(k.port(), "/ok").status, 200);
  const std::string key = "kinfra_http_requests_total{route=\"/ok\",service=\"okay\",code=\"2xx\"}";
  EXPECT_TRUE(kt::wait_until([&] { return scrape(k.port())[key] >= 5; }, 5s));
  EXPECT_EQ(scrape(k.port())[key], 5);
}

TEST(Metrics, DashboardShowsEachServicesRequestAndErrorRate) {
  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  kt::kinfra_process k(three_routes(ok, bad, "access_log: off\n"));
  (void)kt::get_status(k.port());  // the first sample
  for (int i = 0; i < 20; ++i) ASSERT_EQ(kt::http_get(k.port(), "/ok").status, 200);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(kt::http_get(k.port(), "/fail").status, 500);
  std::this_thread::sleep_for(1100ms);
  auto status = kt::get_status(k.port());
  const auto& okay = status["services"]["okay"];
  EXPECT_EQ(okay["requests_total"], 20);
  EXPECT_EQ(okay["errors_total"], 0);
  ASSERT_TRUE(okay["requests_per_second"].is_number()) << okay.dump();
  EXPECT_GT(okay["requests_per_second"].get<double>(), 1.0);
  EXPECT_EQ(okay["error_rate"].get<double>(), 0.0);
  const auto& failing = status["services"]["bad"];
  EXPECT_EQ(failing["errors_total"], 5);
  EXPECT_EQ(failing["error_rate"].get<double>(), 1.0);
  // The card, as rendered with the page.
  auto page = kt::http_get(k.port(), "/kinfra").body;
  EXPECT_NE(page.find("class=\"card state-running failing\" data-service=\"bad\""), std::string::npos);
  EXPECT_NE(page.find("<dd class=\"errors\">100.0%</dd>"), std::string::npos);
}

TEST(AccessLog, CombinedLinesForKnownRequestsInAFile) {
  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  kt::kinfra_process k(three_routes(ok, bad, "access_log: logs/access.log\n"));
  const std::string log = k.dir().path() + "/logs/access.log";
  ASSERT_EQ(kt::http_get(k.port(), "/ok/a?b=c", headers({{"User-Agent", "tester/1.0"}, {"Referer", "http://from/"}})).status, 200);
  ASSERT_EQ(kt::http_request(k.port(), "HEAD", "/fail").status, 500);
  ASSERT_EQ(kt::http_get(k.port(), "/nowhere").status, 404);
  auto lines = wait_for_lines(log, 3);
  ASSERT_EQ(lines.size(), 3u) << k.log();
  // Two workers: lines come in the order the requests ended; put them in the order sent.
  auto rank = [](const std::string& l) {
    return l.find("\"GET /ok/") != std::string::npos ? 0 : l.find("\"HEAD ") != std::string::npos ? 1 : 2;
  };
  std::sort(lines.begin(), lines.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  const std::regex combined(
      R"re(^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "([A-Z]+) (\S+) HTTP/1\.1" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$)re");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, combined)) << lines[0];
  EXPECT_EQ(m[1], "GET");
  EXPECT_EQ(m[2], "/ok/a?b=c");
  EXPECT_EQ(m[3], "200");
  EXPECT_GT(std::stoi(m[4]), 0);
  EXPECT_EQ(m[5], "http://from/");
  EXPECT_EQ(m[6], "tester/1.0");
  ASSERT_TRUE(std::regex_match(lines[1], m, combined)) << lines[1];
  EXPECT_EQ(m[1], "HEAD");
  EXPECT_EQ(m[3], "500");
  EXPECT_EQ(m[4], "0") << "HEAD: no body was sent";
  ASSERT_TRUE(std::regex_match(lines[2], m, combined)) << lines[2];
  EXPECT_EQ(m[3], "404");
  EXPECT_EQ(k.log().find("/ok/a?b=c"), std::string::npos) << "a file log does not go to stdout too";
}

TEST(AccessLog, IsOffUnlessAskedFor) {
  // The console carries kinfra's log and the services' lines; a request is not echoed a second time.
  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  kt::kinfra_process k(three_routes(ok, bad, ""));
  ASSERT_EQ(kt::http_get(k.port(), "/ok/only-once?x=1").status, 200);
  ASSERT_EQ(kt::http_get(k.port(), "/kinfra").status, 200);  // a page kinfra answers itself
  kt::kinfra_process with(three_routes(ok, bad, "access_log: stdout\n"));
  ASSERT_EQ(kt::http_get(with.port(), "/ok/only-once?x=1").status, 200);
  auto lines = wait_for_lines(with.dir().path() + "/stdout.log", 1);
  ASSERT_EQ(lines.size(), 1u) << with.log();
  EXPECT_NE(lines[0].find("/ok/only-once?x=1"), std::string::npos);
  // Stopped, the first has written all it ever will (a stop flushes the access log): none.
  EXPECT_EQ(k.stop(), 0);
  EXPECT_EQ(k.log().find("only-once"), std::string::npos) << k.log();
  EXPECT_EQ(k.log().find("GET /kinfra"), std::string::npos) << k.log();
}

TEST(AccessLog, JsonLinesOnStdoutCarryRouteServiceUpstreamAndTiming) {
  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  kt::kinfra_process k(three_routes(ok, bad, "access_log: stdout\nlog_format: json\n"));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/ok/x", headers({{"User-Agent", "caf\xc3\xa9"}}), "12345").status, 200);
  ASSERT_GE(kt::http_get(k.port(), "/gone").status, 500);
  const std::string out = k.dir().path() + "/stdout.log";
  auto lines = wait_for_lines(out, 2);
  ASSERT_GE(lines.size(), 2u) << k.log();
  // Two workers: the lines come in the order the requests ended, which may not be the order sent.
  json first, second;
  for (const auto& l : lines) {
    auto j = json::parse(l);
    if (j["method"] == "POST") first = j;
    else if (j["target"] == "/gone") second = j;
  }
  ASSERT_TRUE(first.is_object() && second.is_object()) << lines[0] << "\n" << lines[1];
  EXPECT_EQ(first["method"], "POST");
  EXPECT_EQ(first["target"], "/ok/x");
  EXPECT_EQ(first["status"], 200);
  EXPECT_EQ(first["route"], "/ok");
  EXPECT_EQ(first["service"], "okay");
  EXPECT_EQ(first["upstream"], ok.url());
  EXPECT_EQ(first["user_agent"], "caf\xc3\xa9");
  EXPECT_GE(first["bytes_received"].get<int>(), 5 + 30);
  EXPECT_GT(first["body_bytes_sent"].get<int>(), 0);
  EXPECT_GT(first["bytes_sent"].get<int>(), first["body_bytes_sent"].get<int>());
  EXPECT_GE(first["duration_ms"].get<double>(), 0.0);
  EXPECT_EQ(first["client"], "127.0.0.1");
  EXPECT_EQ(second["service"], "gone");
  EXPECT_GE(second["status"].get<int>(), 500);
}

TEST(AccessLog, OffWritesNothingAndSigusr1ReopensARotatedFile) {
  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  {
    kt::kinfra_process quiet(three_routes(ok, bad, "access_log: off\n"));
    ASSERT_EQ(kt::http_get(quiet.port(), "/ok/silent").status, 200);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(quiet.log().find("/ok/silent"), std::string::npos) << quiet.log();
  }
  kt::kinfra_process k(three_routes(ok, bad, "access_log: access.log\n"));
  const std::string log = k.dir().path() + "/access.log";
  ASSERT_EQ(kt::http_get(k.port(), "/ok/before").status, 200);
  ASSERT_EQ(wait_for_lines(log, 1).size(), 1u);
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ::kill(k.pid(), SIGUSR1);
  ASSERT_TRUE(kt::wait_until([&] { return k.log().find("access log reopened") != std::string::npos; }));
  ASSERT_EQ(kt::http_get(k.port(), "/ok/after").status, 200);
  auto fresh = wait_for_lines(log, 1);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_NE(fresh[0].find("/ok/after"), std::string::npos);
  auto old = kt::read_lines(log + ".1");
  ASSERT_EQ(old.size(), 1u);
  EXPECT_NE(old[0].find("/ok/before"), std::string::npos);
}

TEST(AccessLog, AnUnwritableFileStopsStartAndAReloadKeepsTheOldLog) {
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "listen: 127.0.0.1:0\naccess_log: /proc/kinfra-no/access.log\n"
                                       "routes:\n  - { path: /, service: a }\nservices:\n  a: { url: http://127.0.0.1:1 }\n");
  auto r = kt::run_kinfra({"run", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("access_log: cannot open /proc/kinfra-no/access.log"), std::string::npos) << r.err;

  kt::test_upstream ok;
  kt::test_upstream bad(answer_500);
  kt::kinfra_process k(three_routes(ok, bad, "access_log: good.log\n"));
  k.dir().write("routes.yaml", "listen: 127.0.0.1:" + std::to_string(k.port()) + "\nadmin_listen: 127.0.0.1:" +
                                   std::to_string(k.admin_port()) + "\n" +
                                   three_routes(ok, bad, "access_log: /proc/kinfra-no/access.log\n"));
  auto res = kt::http_request(k.port(), "POST", "/__action__/reload");
  EXPECT_EQ(res.status, 422);
  EXPECT_NE(res.body.find("/proc/kinfra-no/access.log"), std::string::npos) << res.body;
  ASSERT_EQ(kt::http_get(k.port(), "/ok/still-logged").status, 200);
  auto lines = wait_for_lines(k.dir().path() + "/good.log", 2);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("/ok/still-logged"), std::string::npos);
}

TEST(Metrics, MetricsPathOffGivesMetricsBackToTheRoutes) {
  kt::test_upstream app;
  kt::kinfra_process k("access_log: off\nmetrics_path: off\nroutes:\n  - { path: /, service: app }\nservices:\n"
                       "  app: { url: " + app.url() + ", health: off }\n");
  auto own = kt::http_get(k.port(), "/metrics");
  EXPECT_EQ(own.status, 200);
  EXPECT_EQ(kt::parse_echo(own.body).target, "/metrics") << "the app's own /metrics";
  auto kinfras = kt::http_get(k.port(), "/__metrics__");
  EXPECT_EQ(kinfras.status, 200);
  EXPECT_NE(kinfras.body.find("kinfra_http_requests_total"), std::string::npos);

  kt::kinfra_process moved("access_log: off\nmetrics_path: /internal/stats\nroutes:\n  - { path: /, service: app }\n"
                           "services:\n  app: { url: " + app.url() + ", health: off }\n");
  EXPECT_NE(kt::http_get(moved.port(), "/internal/stats").body.find("kinfra_build_info"), std::string::npos);
  EXPECT_EQ(kt::parse_echo(kt::http_get(moved.port(), "/metrics").body).target, "/metrics");
}

TEST(Metrics, KinfrasPagesForAStoppedServiceAreNotItsErrors) {
  // A service stopped on purpose (or in maintenance) is not failing: its visitors get kinfra's 503
  // page, counted under route="(stopped)" in /metrics, and its card shows no errors.
  kt::kinfra_process k("access_log: off\nroutes:\n  - { path: /, service: web }\nservices:\n" +
                       kt::test_service_entry("web", {}, kt::free_port(), "    health: { http: /health, interval: 200ms }\n"));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "web") == "running"; }));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/stop/web").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "web") == "stopped"; }));
  (void)kt::get_status(k.port());  // a sample before the visits
  for (int i = 0; i < 5; ++i) ASSERT_EQ(kt::http_get(k.port(), "/").status, 503);
  // (A request is counted just after its answer is written: the last one may be a moment late.)
  decltype(scrape(k.port())) metrics;
  EXPECT_TRUE(kt::wait_until([&] {
    metrics = scrape(k.port());
    return metrics["kinfra_http_requests_total{route=\"(stopped)\",service=\"web\",code=\"5xx\"}"] == 5;
  }, 2s));
  EXPECT_EQ(metrics["kinfra_http_requests_total{route=\"(stopped)\",service=\"web\",code=\"5xx\"}"], 5);
  EXPECT_EQ(metrics["kinfra_http_requests_total{route=\"/\",service=\"web\",code=\"5xx\"}"], 0);
  ASSERT_TRUE(kt::wait_until([&] { return kt::get_status(k.port())["services"]["web"]["requests_per_second"].is_number(); }));
  auto web = kt::get_status(k.port())["services"]["web"];
  EXPECT_EQ(web["errors_total"], 0);
  EXPECT_EQ(web["requests_total"], 5);
  // A crash is the service's own failure: its 503s count.
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/start/web").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "web") == "running"; }));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/status/web", {}, "{\"state\": \"error\"}").status, 200);
  ASSERT_EQ(kt::http_get(k.port(), "/").status, 503);
  // (The status document is rendered again within a second: a counter alone does not change it.)
  EXPECT_TRUE(kt::wait_until([&] { return kt::get_status(k.port())["services"]["web"]["errors_total"] == 1; }, 5s))
      << kt::get_status(k.port())["services"]["web"].dump();
}
