// The supervisor through the real kinfra executable: services are kinfra-test-service processes,
// observed through /__status__, /__logs__, the routes, /proc and files they write.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;

std::string service(const std::string& name, const std::vector<std::string>& args, std::optional<std::uint16_t> port,
                    const std::string& extra = "") {
  return kt::test_service_entry(name, args, port, extra);
}

std::string routes_to(const std::string& svc) { return "routes:\n  - { path: /, service: " + svc + " }\n"; }

/** Waits for `service` to reach `state`; prints the status document when it does not. */
::testing::AssertionResult reaches(std::uint16_t port, const std::string& svc, const std::string& state,
                                   kt::ms timeout = 10s) {
  if (kt::wait_until([&] { return kt::state_of(port, svc) == state; }, timeout))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << svc << " never became " << state << "; status: " << kt::get_status(port).dump(2);
}

pid_t pid_of(std::uint16_t port, const std::string& svc) {
  auto s = kt::get_status(port);
  std::string pid = s["services"][svc].value("pid", "-");
  return pid == "-" ? 0 : static_cast<pid_t>(std::stoi(pid));
}

std::size_t count(const std::vector<std::string>& lines, const std::string& needle) {
  return static_cast<std::size_t>(
      std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; }));
}

}  // namespace

TEST(Supervisor, StartsAServiceInItsOwnGroupWithPortAndRoutesToItOnceHealthy) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("app") + "services:\n" +
                       service("app", {"--print-env", "PORT", "--print-env", "GREETING", "--print-cwd"}, port,
                               "    env: { GREETING: hello }\n    health: { http: /health }\n"));
  ASSERT_TRUE(reaches(k.port(), "app", "running")) << k.log();
  auto res = kt::http_get(k.port(), "/");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "hello from app\n");
  pid_t pid = pid_of(k.port(), "app");
  ASSERT_GT(pid, 0);
  EXPECT_EQ(getpgid(pid), pid) << "the service leads its own process group";
  auto status = kt::get_status(k.port());
  EXPECT_EQ(status["services"]["app"]["health_status"], "Healthy");
  EXPECT_EQ(status["services"]["app"]["port"], std::to_string(port));
  auto logs = kt::http_get(k.port(), "/__logs__/app?format=text").body;
  EXPECT_NE(logs.find("PORT=" + std::to_string(port)), std::string::npos) << logs;
  EXPECT_NE(logs.find("GREETING=hello"), std::string::npos) << logs;
  EXPECT_NE(logs.find("cwd=" + k.dir().path()), std::string::npos) << logs;
}

TEST(Supervisor, AServiceInheritsNoneOfKinfrasConnections) {
  // A client connection open while a service starts: if the service process held a copy of it,
  // kinfra closing it (here at the idle timeout) would not reach the client.
  auto port = kt::free_port();
  kt::kinfra_process k("timeouts: { idle: 2s }\n" + routes_to("app") + "services:\n" +
                       service("app", {}, port, "    health: { http: /health, interval: 200ms }\n"));
  ASSERT_TRUE(reaches(k.port(), "app", "running")) << k.log();
  auto c = kt::connect_to(k.port());
  ASSERT_TRUE(c->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  ASSERT_EQ(res.status, 200);
  const pid_t before = pid_of(k.port(), "app");
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/restart/app").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return pid_of(k.port(), "app") != before && pid_of(k.port(), "app") != 0; }));
  ASSERT_TRUE(reaches(k.port(), "app", "running"));
  EXPECT_TRUE(c->wait_closed(10s)) << "the idle connection's close reached the client";
}

TEST(Supervisor, AServiceThatIsStillStartingGets503WithRetryAfter) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("slow") + "services:\n" +
                       service("slow", {"--listen-after", "1500"}, port, "    health: { http: /health }\n    hold: off\n"));
  ASSERT_TRUE(reaches(k.port(), "slow", "starting", 3s));
  auto status = kt::get_status(k.port(), "slow");
  EXPECT_EQ(status["status_message"], "Starting server process...");
  EXPECT_EQ(status["service_name"], "slow");
  auto res = kt::http_get(k.port(), "/");
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.headers.get("Retry-After"), "5");
  ASSERT_TRUE(reaches(k.port(), "slow", "running"));
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 200);
}

TEST(Supervisor, KillMinus9IsAnErrorAndTheServiceComesBackByItself) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("api") + "services:\n" +
                       service("api", {}, port,
                               "    health: { http: /health, interval: 200ms }\n"
                               "    restart: { policy: on-failure, backoff: 1s }\n    hold: off\n"));
  ASSERT_TRUE(reaches(k.port(), "api", "running"));
  pid_t first = pid_of(k.port(), "api");
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(reaches(k.port(), "api", "error", 2s));
  auto status = kt::get_status(k.port(), "api");
  EXPECT_EQ(status["status_message"], "Killed by signal 9");
  EXPECT_EQ(status["pid"], "-");
  EXPECT_EQ(status["last_signal"], 9);
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 503) << "no connection error while it is down";
  ASSERT_TRUE(reaches(k.port(), "api", "running"));
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 200);
  EXPECT_NE(pid_of(k.port(), "api"), first);
  EXPECT_EQ(kt::get_status(k.port(), "api")["restarts"], 1);
}

TEST(Supervisor, RestartsWithExponentialBackoffAndGivesUpAfterMaxAttempts) {
  kt::temp_dir files;
  std::string record = files.path() + "/starts";
  kt::kinfra_process k("services:\n" +
                       service("crashy", {"--crash-after", "50", "--exit-code", "3", "--record", record}, std::nullopt,
                               "    restart: { policy: on-failure, max_attempts: 3, backoff: 200ms, max_backoff: 1s }\n"));
  // 1 start + 3 restarts, with delays of 200, 400 and 800 ms between them.
  ASSERT_TRUE(kt::wait_until([&] { return count(kt::read_lines(record), "start") == 4; }, 8s)) << k.log();
  ASSERT_TRUE(kt::wait_until([&] {
    auto s = kt::get_status(k.port(), "crashy");
    return s["state"] == "error" && s["health_detail"].get<std::string>().find("gave up") != std::string::npos;
  }, 3s)) << kt::get_status(k.port()).dump(2);
  auto s = kt::get_status(k.port(), "crashy");
  EXPECT_EQ(s["status_message"], "Process exited with code 3");
  EXPECT_EQ(s["last_exit_code"], 3);
  EXPECT_EQ(s["restarts"], 3);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(count(kt::read_lines(record), "start"), 4u) << "it stays in error after giving up";
}

TEST(Supervisor, BackoffDelaysGrowBetweenAttempts) {
  kt::temp_dir files;
  std::string record = files.path() + "/starts";
  kt::kinfra_process k("services:\n" +
                       service("crashy", {"--exit-code", "1", "--record", record}, std::nullopt,
                               "    restart: { policy: always, max_attempts: 4, backoff: 150ms, max_backoff: 10s }\n"));
  std::vector<std::chrono::steady_clock::time_point> seen;
  std::size_t last = 0;
  auto deadline = std::chrono::steady_clock::now() + 8s;
  while (seen.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    auto n = count(kt::read_lines(record), "start");
    for (; last < n; ++last) seen.push_back(std::chrono::steady_clock::now());
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(seen.size(), 5u) << k.log();
  std::vector<long> gaps;
  for (std::size_t i = 1; i < seen.size(); ++i)
    gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(seen[i] - seen[i - 1]).count());
  // Expected 150, 300, 600, 1200 ms (plus process start-up): each at least the backoff, and growing.
  EXPECT_GE(gaps[0], 140);
  EXPECT_GE(gaps[1], 290);
  EXPECT_GE(gaps[2], 590);
  EXPECT_GE(gaps[3], 1190);
  EXPECT_LT(gaps[0], 600);
}

TEST(Supervisor, OnFailureLeavesACleanExitStopped) {
  kt::temp_dir files;
  std::string record = files.path() + "/starts";
  kt::kinfra_process k("services:\n" + service("batch", {"--exit-code", "0", "--record", record}, std::nullopt));
  ASSERT_TRUE(reaches(k.port(), "batch", "stopped"));
  EXPECT_EQ(kt::get_status(k.port(), "batch")["status_message"], "Process exited with code 0");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(count(kt::read_lines(record), "start"), 1u);
}

TEST(Supervisor, NeverPolicyLeavesACrashInError) {
  kt::temp_dir files;
  std::string record = files.path() + "/starts";
  kt::kinfra_process k("services:\n" + service("once", {"--exit-code", "7", "--record", record}, std::nullopt,
                                               "    restart: never\n"));
  ASSERT_TRUE(reaches(k.port(), "once", "error"));
  EXPECT_EQ(kt::get_status(k.port(), "once")["status_message"], "Process exited with code 7");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(count(kt::read_lines(record), "start"), 1u);
}

TEST(Supervisor, ACommandThatCannotStartSaysWhy) {
  kt::kinfra_process k("services:\n  ghost:\n    command: [\"/nonexistent/binary\"]\n    restart: never\n");
  ASSERT_TRUE(reaches(k.port(), "ghost", "error"));
  auto msg = kt::get_status(k.port(), "ghost")["status_message"].get<std::string>();
  EXPECT_EQ(msg.rfind("Failed to start: No such file", 0), 0u) << msg;
}

TEST(Supervisor, StartsInDependencyOrderAndStopsInReverse) {
  kt::temp_dir files;
  std::string record = files.path() + "/events";
  auto db_port = kt::free_port(), api_port = kt::free_port();
  kt::kinfra_process k(routes_to("api") + "services:\n" +
                       service("api", {"--record", record}, api_port, "    depends_on: { db: healthy }\n") +
                       service("db", {"--listen-after", "800", "--record", record}, db_port,
                               "    health: { tcp: true, interval: 100ms }\n") +
                       service("worker", {"--record", record}, std::nullopt, "    depends_on: { api: started }\n"));
  ASSERT_TRUE(reaches(k.port(), "api", "starting", 3s));
  EXPECT_EQ(kt::get_status(k.port(), "api")["status_message"], "Waiting for db to be healthy");
  EXPECT_EQ(kt::get_status(k.port(), "api")["pid"], "-");
  ASSERT_TRUE(reaches(k.port(), "api", "running"));
  ASSERT_TRUE(reaches(k.port(), "worker", "running"));
  // "running" comes with the spawn; the process writes its line a moment later.
  std::vector<std::string> lines;
  ASSERT_TRUE(kt::wait_until([&] { return (lines = kt::read_lines(record)).size() >= 3; }, 5s));
  EXPECT_EQ(lines[0].rfind("db start", 0), 0u) << "api waits for db to be healthy, worker for api to start";
  // api and worker start moments apart (worker only needs api started); either may write first.
  std::vector<std::string> next{lines[1].substr(0, lines[1].find(' ')), lines[2].substr(0, lines[2].find(' '))};
  std::sort(next.begin(), next.end());
  EXPECT_EQ(next, (std::vector<std::string>{"api", "worker"}));
  EXPECT_EQ(k.stop(), 0);
  lines = kt::read_lines(record);
  std::vector<std::string> terms;
  for (auto& l : lines)
    if (l.find(" term ") != std::string::npos) terms.push_back(l.substr(0, l.find(' ')));
  EXPECT_EQ(terms, (std::vector<std::string>{"worker", "api", "db"}));
}

TEST(Supervisor, StopReachesTheWholeGroupAndKillsAStubbornService) {
  kt::temp_dir files;
  std::string child = files.path() + "/child.pid";
  kt::kinfra_process k("services:\n" + service("stubborn", {"--ignore-term", "--grandchild", child}, std::nullopt,
                                               "    stop: { signal: TERM, timeout: 700ms }\n"));
  ASSERT_TRUE(reaches(k.port(), "stubborn", "running"));
  pid_t leader = pid_of(k.port(), "stubborn");
  ASSERT_TRUE(kt::wait_until([&] { return !kt::read_lines(child).empty(); }, 3s));
  pid_t grandchild = std::stoi(kt::read_lines(child).at(0));
  ASSERT_TRUE(kt::process_alive(grandchild));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(k.stop(), 0);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 600ms) << "the stop timeout was honoured before SIGKILL";
  EXPECT_LT(took, 5s);
  EXPECT_FALSE(kt::process_alive(leader));
  EXPECT_FALSE(kt::process_alive(grandchild));
}

TEST(Supervisor, LeavesNothingRunningEvenAProcessThatLeftItsGroup) {
  kt::temp_dir files;
  std::string escaped = files.path() + "/escaped.pid";
  std::string child = files.path() + "/child.pid";
  kt::kinfra_process k("services:\n" + service("sneaky", {"--escape", escaped, "--grandchild", child}, std::nullopt));
  ASSERT_TRUE(kt::wait_until([&] { return !kt::read_lines(escaped).empty() && !kt::read_lines(child).empty(); }, 5s));
  pid_t e = std::stoi(kt::read_lines(escaped).at(0));
  pid_t c = std::stoi(kt::read_lines(child).at(0));
  ASSERT_TRUE(kt::process_alive(e));
  // The helper writes its pid, then calls setsid: wait for the second step.
  EXPECT_TRUE(kt::wait_until([&] { return getpgid(e) != getpgid(c); }, 5s))
      << "the escaped child is in a session of its own";
  EXPECT_EQ(k.stop(), 0);
  EXPECT_TRUE(kt::wait_until([&] { return !kt::process_alive(e) && !kt::process_alive(c); }, 3s));
}

TEST(Supervisor, ACrashTakesTheServicesChildrenWithIt) {
  kt::temp_dir files;
  std::string child = files.path() + "/child.pid";
  kt::kinfra_process k("services:\n" + service("parent", {"--grandchild", child, "--crash-after", "400"}, std::nullopt,
                                               "    restart: never\n"));
  ASSERT_TRUE(kt::wait_until([&] { return !kt::read_lines(child).empty(); }, 3s));
  pid_t c = std::stoi(kt::read_lines(child).at(0));
  ASSERT_TRUE(reaches(k.port(), "parent", "error"));
  EXPECT_TRUE(kt::wait_until([&] { return !kt::process_alive(c); }, 2s)) << "orphaned child still running";
}

TEST(Supervisor, CapturesOutputWithLevels) {
  kt::kinfra_process k("services:\n" + service("talker", {"--print-levels"}, std::nullopt));
  ASSERT_TRUE(kt::wait_until([&] {
    auto j = kt::get_json(k.port(), "/__logs__/talker?format=json");
    return j.is_object() && j["lines"].size() >= 9;
  }));
  auto lines = kt::get_json(k.port(), "/__logs__/talker?format=json")["lines"];
  std::map<std::string, std::string> level_of;
  for (auto& l : lines) level_of[l["message"]] = l["level"];
  // (A leading level word is shown as the level, not repeated in the message.)
  EXPECT_EQ(level_of["something failed"], "error");
  EXPECT_EQ(level_of["2024-01-01 12:00:00 [warn] disk almost full"], "warn");
  EXPECT_EQ(level_of["level=info msg=\"listening\""], "info");
  EXPECT_EQ(level_of["{\"level\":\"debug\",\"msg\":\"cache miss\"}"], "debug");
  EXPECT_EQ(level_of["deprecated option"], "warn");
  EXPECT_EQ(level_of["upstream timed out"], "error");
  EXPECT_EQ(level_of["{\"level\":50,\"msg\":\"pino error\"}"], "error");
  EXPECT_EQ(level_of["a plain line"], "info");
  // /__status__ carries the last 10 lines with the spec's fields.
  auto status_logs = kt::get_status(k.port())["services"]["talker"]["logs"];
  ASSERT_FALSE(status_logs.empty());
  EXPECT_TRUE(status_logs.back().contains("timestamp"));
  EXPECT_EQ(status_logs.back()["timestamp"].get<std::string>().size(), 8u) << "HH:MM:SS";
  EXPECT_LE(status_logs.size(), 10u);
}

TEST(Supervisor, MakesHostileOutputSafe) {
  kt::kinfra_process k("services:\n" + service("hostile", {"--print-hostile", "--long-line", "10000", "--stderr",
                                                           "--print", "to stderr"},
                                                std::nullopt));
  nlohmann::json lines;
  std::vector<std::string> messages;
  auto has = [&](const std::string& m) { return std::find(messages.begin(), messages.end(), m) != messages.end(); };
  // Wait for the last lines of both streams: stdout and stderr arrive in any order.
  kt::wait_until([&] {
    lines = kt::get_json(k.port(), "/__logs__/hostile?format=json")["lines"];
    messages.clear();
    if (lines.is_array())
      for (auto& l : lines) messages.push_back(l["message"]);
    return has("to stderr") && std::any_of(messages.begin(), messages.end(),
                                           [](const std::string& m) { return m.rfind("LLLL", 0) == 0; });
  });
  EXPECT_TRUE(has("<script>alert(1)</script>")) << "kept as text; escaping is the page's job";
  EXPECT_TRUE(has("bad \xEF\xBF\xBD\xEF\xBF\xBD utf8 \xEF\xBF\xBD( end"));
  EXPECT_TRUE(has("coloured green")) << "ANSI colour codes stripped (and the ERROR shown as the level)";
  EXPECT_TRUE(has("to stderr")) << "stderr is captured too";
  bool cut = false;
  for (auto& m : messages)
    if (m.rfind("LLLL", 0) == 0) cut = m.size() < 4200 && m.find("[line cut]") != std::string::npos;
  EXPECT_TRUE(cut) << "a 10000-byte line is cut";
  for (auto& l : lines)
    if (l["message"] == "coloured green") {
      EXPECT_EQ(l["level"], "error");
    }
}

TEST(Supervisor, AFloodOfOutputKeepsABoundedRingAndTheServiceRuns) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("flood") + "services:\n" +
                       service("flood", {"--flood", "200000"}, port, "    log_lines: 100\n"));
  ASSERT_TRUE(reaches(k.port(), "flood", "running", 20s));
  ASSERT_TRUE(kt::wait_until([&] {
    auto j = kt::get_json(k.port(), "/__logs__/flood?format=json")["lines"];
    return j.is_array() && !j.empty() && j.back()["message"] == "flood listening on port " + std::to_string(port);
  }, 20s));
  auto lines = kt::get_json(k.port(), "/__logs__/flood?format=json")["lines"];
  EXPECT_EQ(lines.size(), 100u);
  EXPECT_EQ(lines[0]["message"], "flood line 199901");
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 200);
  EXPECT_LT(k.rss_kib(), 64 * 1024 * kt::memory_slack) << "kinfra's memory stays bounded";
}

TEST(Supervisor, FailingHealthChecksMakeItUnhealthyAndStopTraffic) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("sick") + "services:\n" +
                       service("sick", {"--unhealthy-after", "800"}, port,
                               "    health: { http: /health, interval: 100ms, fall: 2, rise: 1 }\n"));
  ASSERT_TRUE(reaches(k.port(), "sick", "running"));
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 200);
  ASSERT_TRUE(reaches(k.port(), "sick", "unhealthy", 3s));
  auto s = kt::get_status(k.port(), "sick");
  EXPECT_EQ(s["health_status"], "Unhealthy");
  EXPECT_EQ(s["status_message"], "Health check failed: HTTP 503");
  EXPECT_NE(s["pid"], "-") << "unhealthy means alive but failing";
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 503);
}

TEST(Supervisor, ARefusedConnectionMarksTheServiceDownAtOnce) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("api") + "services:\n" +
                       service("api", {"--close-on-usr1"}, port, "    health: { tcp: true, interval: 60s, fall: 3 }\n"));
  ASSERT_TRUE(reaches(k.port(), "api", "running"));
  ASSERT_EQ(::kill(pid_of(k.port(), "api"), SIGUSR1), 0);  // stops listening, keeps running
  std::this_thread::sleep_for(200ms);
  auto first = kt::http_get(k.port(), "/");
  EXPECT_EQ(first.status, 502) << "the proxy found out first";
  // No probe is due for a minute: the passive check alone takes it out of traffic.
  ASSERT_TRUE(reaches(k.port(), "api", "unhealthy", 2s));
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 503);
}

TEST(Supervisor, WatchesAServiceItDoesNotRun) {
  auto upstream = std::make_unique<kt::test_upstream>();
  auto port = upstream->port();
  kt::kinfra_process k("services:\n  db:\n    url: tcp://127.0.0.1:" + std::to_string(port) +
                       "\n    health: { tcp: true, interval: 100ms, fall: 2 }\n"
                       "  web:\n    url: " + upstream->url() + "\n    health: { interval: 100ms }\n" +
                       routes_to("web"));
  ASSERT_TRUE(reaches(k.port(), "db", "running"));
  ASSERT_TRUE(reaches(k.port(), "web", "running"));
  EXPECT_EQ(kt::get_status(k.port(), "db")["pid"], "-");
  EXPECT_EQ(kt::get_status(k.port(), "db")["managed"], false);
  upstream.reset();
  ASSERT_TRUE(reaches(k.port(), "db", "unhealthy", 3s));
  ASSERT_TRUE(reaches(k.port(), "web", "unhealthy", 3s));
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 503);
}

TEST(Supervisor, StatusDocumentHasTheSpecShape) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("api") + "services:\n" + service("api", {}, port) +
                       service("other", {}, std::nullopt));
  ASSERT_TRUE(reaches(k.port(), "api", "running"));
  auto s = kt::get_status(k.port());
  for (auto key : {"service_name", "status_message", "port", "pid", "uptime", "health_status", "state", "timestamp"})
    EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(s["service_name"], "api") << "the first service in routes.yaml by default";
  for (auto key : {"status_message", "port", "pid", "uptime", "health_status", "state"}) {
    EXPECT_TRUE(s["services"]["api"][key].is_string()) << key;
  }
  EXPECT_TRUE(s["services"]["api"]["logs"].is_array());
  EXPECT_EQ(kt::get_status(k.port(), "other")["service_name"], "other");
  // 2026-11-27T15:00:00
  EXPECT_EQ(s["timestamp"].get<std::string>().size(), 19u);
}

TEST(Supervisor, KinfraStopsEveryServiceOnSigterm) {
  auto port = kt::free_port();
  kt::kinfra_process k("services:\n" + service("a", {}, port) + service("b", {}, std::nullopt));
  ASSERT_TRUE(reaches(k.port(), "a", "running"));
  ASSERT_TRUE(reaches(k.port(), "b", "running"));
  pid_t a = pid_of(k.port(), "a"), b = pid_of(k.port(), "b");
  EXPECT_EQ(k.stop(), 0);
  EXPECT_FALSE(kt::process_alive(a));
  EXPECT_FALSE(kt::process_alive(b));
}

TEST(Supervisor, AttemptsStartOverAfterTheServiceWasHealthyForAWhile) {
  kt::temp_dir files;
  std::string record = files.path() + "/starts";
  // Healthy (alive, nothing to check) for 500 ms each time, then a crash: with reset_after 300ms
  // each crash is a first failure again, so max_attempts 2 is never used up.
  kt::kinfra_process k("services:\n" +
                       service("flaky", {"--crash-after", "500", "--record", record}, std::nullopt,
                               "    restart: { policy: on-failure, max_attempts: 2, backoff: 100ms, reset_after: 300ms }\n"));
  EXPECT_TRUE(kt::wait_until([&] { return count(kt::read_lines(record), "start") >= 5; }, 8s))
      << count(kt::read_lines(record), "start") << " starts; " << kt::get_status(k.port(), "flaky").dump();
}

TEST(Supervisor, LogsAStopAsStoppedAndACrashAsAWarning) {
  auto port = kt::free_port();
  kt::kinfra_process k(routes_to("web") + "services:\n" +
                       service("web", {}, port, "    health: { http: /health, interval: 200ms }\n    restart: { backoff: 200ms }\n"));
  ASSERT_TRUE(reaches(k.port(), "web", "running"));
  const int pid = std::stoi(kt::get_status(k.port(), "web")["pid"].get<std::string>());
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(kt::wait_until([&] { return k.log().find("ended unexpectedly") != std::string::npos; }));
  ASSERT_TRUE(reaches(k.port(), "web", "running"));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/stop/web").status, 200);
  ASSERT_TRUE(reaches(k.port(), "web", "stopped"));
  ASSERT_TRUE(kt::wait_until([&] { return k.log().find("service web: stopped (pid") != std::string::npos; }));
  const std::string log = k.log();
  auto line_with = [&](const std::string& text) {
    auto at = log.find(text);
    if (at == std::string::npos) return std::string();
    auto start = log.rfind('\n', at);
    return log.substr(start == std::string::npos ? 0 : start + 1, log.find('\n', at) - (start == std::string::npos ? 0 : start + 1));
  };
  EXPECT_NE(line_with("ended unexpectedly").find(" warning "), std::string::npos) << line_with("ended unexpectedly");
  EXPECT_NE(line_with("ended unexpectedly").find("Killed by signal 9"), std::string::npos);
  EXPECT_NE(line_with("service web: stopped (pid").find(" info "), std::string::npos);
  EXPECT_EQ(log.find("Killed by signal 15"), std::string::npos) << "a stop kinfra asked for is not a kill";
}
