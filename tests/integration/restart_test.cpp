// Start-first restarts (`port: auto`) and replicas (`instances: N`): restarts through the API, the
// CLI and a reload under load are not noticed; a new version that never gets healthy leaves the
// previous one serving; requests and tunnels in flight finish on the process they started on; a
// kill -9 of one instance of two is not noticed. Real kinfra, real kinfra-test-service processes.
#include <gtest/gtest.h>

#include <signal.h>

#include <set>
#include <thread>

#include "http_test.hpp"
#include "steady_load.hpp"

namespace {

using namespace std::chrono_literals;

const std::string listen_header = "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n";

/** A `port: auto` service "api" (started 300 ms late: a restart that stops first would show). */
std::string auto_routes(const std::string& extra = "", const std::vector<std::string>& args = {"--listen-after", "300"}) {
  return "routes:\n  - { path: /, service: api }\nservices:\n" +
         kt::test_service_entry("api", args, std::nullopt,
                                "    port: auto\n"
                                "    health: { http: /health, interval: 100ms, start_period: 3s }\n" + extra);
}

nlohmann::json api_status(const kt::kinfra_process& k) { return kt::get_status(k.port())["services"]["api"]; }

pid_t pid_of(const kt::kinfra_process& k) {
  std::string pid = api_status(k).value("pid", "-");
  return pid == "-" ? 0 : static_cast<pid_t>(std::stoi(pid));
}

/** last_restart.result, "" when there was none. */
std::string restart_result(const nlohmann::json& svc) {
  const auto& r = svc["last_restart"];
  return r.is_object() ? r.value("result", "") : "";
}

std::string restart_id(const kt::kinfra_process& k) {
  const auto r = api_status(k)["last_restart"];
  return r.is_object() ? r["id"].dump() : "";
}

/** Every pid of the service's processes now. */
std::set<pid_t> pids_of(const kt::kinfra_process& k) {
  std::set<pid_t> out;
  const auto svc = api_status(k);  // (kept: a range-for does not extend a temporary's member)
  for (const auto& i : svc["instances"])
    if (i.value("pid", "-") != "-") out.insert(static_cast<pid_t>(std::stoi(i.value("pid", "0"))));
  return out;
}

/** Waits for a start-first restart after the one numbered `before` to end; its result. */
std::string wait_for_restart(const kt::kinfra_process& k, const std::string& before, kt::ms timeout = 15s) {
  std::string result;
  kt::wait_until(
      [&] {
        auto svc = api_status(k);
        const auto& r = svc["last_restart"];
        if (!r.is_object() || r["id"].dump() == before) return false;
        result = r.value("result", "");
        return result == "done" || result == "failed";
      },
      timeout);
  return result;
}

/** An upgraded connection through kinfra to the service's echo tunnel; null unless it reached `pid`. */
std::unique_ptr<kt::socket_conn> open_tunnel(const kt::kinfra_process& k, pid_t pid) {
  auto tunnel = kt::connect_to(k.port());
  tunnel->send("GET /echo-tunnel HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
  kt::response up;
  if (!tunnel->read_response(up, true) || up.status != 101 || up.headers.get("X-Pid") != std::to_string(pid))
    return nullptr;
  return tunnel;
}

}  // namespace

TEST(StartFirst, FiveRestartsThroughTheApiTheCliAndAReloadAreNotNoticedUnderLoad) {
  kt::kinfra_process k(auto_routes());
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  kt::steady_load load(k.port(), 4, /*posts=*/true);
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > 50; })) << load.failures();
  std::set<pid_t> seen;
  const std::string admin = "http://127.0.0.1:" + std::to_string(k.admin_port());
  for (int round = 0; round < 5; ++round) {
    const pid_t before = pid_of(k);
    ASSERT_GT(before, 0);
    seen.insert(before);
    const std::string at = restart_id(k);
    if (round < 2) {
      ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/restart/api").status, 200);
      ASSERT_EQ(wait_for_restart(k, at), "done") << k.log();
    } else if (round < 4) {
      auto r = kt::run_kinfra({"restart", "api", "--url", admin});
      ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
      EXPECT_NE(r.out.find("restarted start-first"), std::string::npos) << r.out;
    } else {
      // A changed env restarts it start-first too.
      k.dir().write("routes.yaml", listen_header + auto_routes("    env: { RELEASE: \"2\" }\n"));
      auto res = kt::http_request(k.port(), "POST", "/__action__/reload");
      ASSERT_EQ(res.status, 200) << res.body;
      ASSERT_EQ(wait_for_restart(k, at), "done") << k.log();
    }
    EXPECT_NE(pid_of(k), before);
    EXPECT_FALSE(kt::process_alive(before)) << "the previous process is stopped";
    const int ok = load.ok();
    ASSERT_TRUE(kt::wait_until([&] { return load.ok() > ok + 20; })) << load.failures();
  }
  load.stop();
  EXPECT_EQ(load.failures(), "") << "every request is answered by a service process; ok: " << load.ok();
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(api_status(k)["restarts"], 5);
  EXPECT_EQ(pids_of(k).size(), 1u) << "one process after the restarts: " << api_status(k).dump();
  // Each step is in the service's log, for the dashboard.
  auto logs = kt::get_json(k.port(), "/__logs__/api?format=json&tail=500").dump();
  for (const char* step : {"restart started", "switched to the new process", "previous process", "restart done"})
    EXPECT_NE(logs.find(step), std::string::npos) << step;
}

TEST(StartFirst, ANewVersionThatNeverGetsHealthyLeavesThePreviousOneServing) {
  kt::kinfra_process k(auto_routes("", {}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  const pid_t serving = pid_of(k);
  // The new version's health check fails: it never takes over.
  const std::string broken = "routes:\n  - { path: /, service: api }\nservices:\n" +
                             kt::test_service_entry("api", {"--health-status", "500", "--print", "booting v2"},
                                                    std::nullopt,
                                                    "    port: auto\n"
                                                    "    health: { http: /health, interval: 100ms, start_period: 1s }\n");
  const std::string at = restart_id(k);
  kt::steady_load load(k.port(), 2);
  k.dir().write("routes.yaml", listen_header + broken);
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  std::set<pid_t> tried;
  kt::wait_until([&] {
    for (pid_t p : pids_of(k))
      if (p != serving) tried.insert(p);
    return !tried.empty();
  });
  ASSERT_EQ(wait_for_restart(k, at), "failed") << k.log();
  auto svc = api_status(k);
  EXPECT_NE(svc["last_restart"]["message"].get<std::string>().find("restart failed, previous instance kept"),
            std::string::npos) << svc.dump();
  EXPECT_NE(svc["last_restart"]["lines"].dump().find("booting v2"), std::string::npos) << svc.dump();
  EXPECT_EQ(pid_of(k), serving);
  EXPECT_EQ(svc["state"], "running");
  ASSERT_FALSE(tried.empty());
  ASSERT_TRUE(kt::wait_until([&] { return !kt::process_alive(*tried.begin()); })) << "the failed process is stopped";
  // The CLI says so too, with the new process's last lines, and fails.
  auto r = kt::run_kinfra({"restart", "api", "--url", "http://127.0.0.1:" + std::to_string(k.admin_port())});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("restart failed, previous instance kept"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("booting v2"), std::string::npos) << r.err;
  EXPECT_EQ(pid_of(k), serving);
  auto table = kt::run_kinfra({"status", "--url", "http://127.0.0.1:" + std::to_string(k.admin_port())});
  EXPECT_NE(table.out.find("restart failed, previous instance kept"), std::string::npos) << table.out;
  // A later reload that does not touch the process leaves the kept one serving.
  const std::string failed_id = restart_id(k);
  const auto reloads = kt::get_status(k.port())["config"]["reloads"].get<unsigned>();
  std::string tuned = broken;
  tuned.replace(tuned.find("interval: 100ms"), 15, "interval: 150ms");
  k.dir().write("routes.yaml", listen_header + tuned);
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::get_status(k.port())["config"]["reloads"].get<unsigned>() > reloads; }));
  EXPECT_FALSE(kt::wait_until([&] { return pid_of(k) != serving; }, 1s)) << k.log();
  EXPECT_EQ(restart_id(k), failed_id);
  load.stop();
  EXPECT_EQ(load.failures(), "");
  EXPECT_GT(load.ok(), 0);
}

TEST(StartFirst, RequestsAndTunnelsInFlightFinishOnThePreviousProcess) {
  kt::kinfra_process k(auto_routes("    stop: { drain: 20s }\n", {}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  const pid_t old = pid_of(k);
  auto tunnel = open_tunnel(k, old);
  ASSERT_TRUE(tunnel);
  // A slow request in flight when the restart switches over.
  kt::response slow;
  std::thread slow_client([&] { slow = kt::http_get(k.port(), "/slow/1500"); });
  ASSERT_TRUE(kt::wait_until([&] { return api_status(k)["instances"][0].value("in_flight", 0) >= 2; }))
      << api_status(k).dump();
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/restart/api").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return pid_of(k) != old; })) << k.log();
  EXPECT_EQ(kt::http_get(k.port(), "/whoami").body.find("pid " + std::to_string(old)), std::string::npos)
      << "new requests go to the new process";
  slow_client.join();
  EXPECT_EQ(slow.status, 200) << slow.body;
  // The tunnel still reaches the previous process, which waits for it.
  ASSERT_TRUE(tunnel->send("ping"));
  char buf[16];
  ASSERT_EQ(tunnel->recv_some(buf, sizeof buf, 5s), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  EXPECT_TRUE(kt::process_alive(old));
  EXPECT_EQ(restart_result(api_status(k)), "in progress");
  tunnel->close();
  ASSERT_TRUE(kt::wait_until([&] { return restart_result(api_status(k)) == "done"; })) << k.log();
  EXPECT_FALSE(kt::process_alive(old));
}

TEST(StartFirst, ATunnelOpenLongerThanTheDrainEndsWithItsProcess) {
  kt::kinfra_process k(auto_routes("    stop: { drain: 500ms }\n", {}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  const pid_t old = pid_of(k);
  auto tunnel = open_tunnel(k, old);
  ASSERT_TRUE(tunnel);
  const std::string at = restart_id(k);
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/restart/api").status, 200);
  ASSERT_EQ(wait_for_restart(k, at), "done") << k.log();
  EXPECT_FALSE(kt::process_alive(old));
  EXPECT_TRUE(tunnel->wait_closed(5s)) << "the tunnel closes with the process it reached";
  EXPECT_NE(kt::get_json(k.port(), "/__logs__/api?format=json&tail=100").dump().find("still open"), std::string::npos);
}

TEST(Instances, KillMinus9OfOneOfTwoUnderLoadIsNotNoticed) {
  kt::kinfra_process k(auto_routes("    instances: 2\n    restart: { policy: always, backoff: 100ms }\n", {}));
  ASSERT_TRUE(kt::wait_until([&] {
    auto svc = api_status(k);
    return svc["instances"].size() == 2 && svc["instances"][0]["state"] == "running" &&
           svc["instances"][1]["state"] == "running";
  })) << k.log();
  kt::steady_load load(k.port(), 4);
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > 50; })) << load.failures();
  for (int round = 0; round < 3; ++round) {
    const auto victim = std::stoi(api_status(k)["instances"][round % 2]["pid"].get<std::string>());
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    ASSERT_TRUE(kt::wait_until([&] {
      auto i = api_status(k)["instances"][round % 2];
      return i["pid"] != "-" && i["pid"] != std::to_string(victim) && i["state"] == "running";
    })) << k.log();
    const int ok = load.ok();
    ASSERT_TRUE(kt::wait_until([&] { return load.ok() > ok + 50; })) << load.failures();
  }
  load.stop();
  EXPECT_EQ(load.failures(), "") << "ok: " << load.ok();
}

TEST(Instances, EachGetsItsOwnPortAndInstanceAndShowsInStatusCliAndMetrics) {
  // (One worker: its round-robin among equally idle instances visits each in turn.)
  kt::kinfra_process k("workers: 1\n" + auto_routes("    instances: 3\n", {}));
  ASSERT_TRUE(kt::wait_until([&] { return api_status(k)["status_message"] == "Service is running (3 instances)"; }))
      << api_status(k).dump();
  std::set<std::string> ports, answers;
  const auto svc = api_status(k);
  for (const auto& i : svc["instances"]) ports.insert(i["port"].get<std::string>());
  EXPECT_EQ(ports.size(), 3u);
  for (int i = 0; i < 12; ++i) {
    auto body = kt::http_get(k.port(), "/whoami").body;
    answers.insert(body.substr(body.find("instance")));
  }
  EXPECT_EQ(answers, (std::set<std::string>{"instance 0\n", "instance 1\n", "instance 2\n"}));
  auto table = kt::run_kinfra({"status", "--url", "http://127.0.0.1:" + std::to_string(k.admin_port())});
  for (const char* row : {"api/0", "api/1", "api/2"}) EXPECT_NE(table.out.find(row), std::string::npos) << table.out;
  auto metrics = kt::http_get(k.port(), "/metrics").body;
  EXPECT_NE(metrics.find("kinfra_instance_up{service=\"api\",instance=\"2\"} 1"), std::string::npos) << metrics;
  // A restart rolls them one at a time, start-first: three new processes.
  const auto before = pids_of(k);
  const std::string at = restart_id(k);
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/restart/api").status, 200);
  ASSERT_EQ(wait_for_restart(k, at), "done") << k.log();
  const auto after = pids_of(k);
  EXPECT_EQ(after.size(), 3u);
  for (pid_t p : before) {
    EXPECT_EQ(after.count(p), 0u);
    EXPECT_FALSE(kt::process_alive(p));
  }
  EXPECT_EQ(k.stop(), 0);
  for (pid_t p : after) EXPECT_FALSE(kt::process_alive(p)) << "no process left behind";
}

TEST(Instances, AReloadThatChangesOnlyTheirNumberKeepsTheOthersRunning) {
  kt::kinfra_process k(auto_routes("", {}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  const pid_t first = pid_of(k);
  kt::steady_load load(k.port(), 4);
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > 20; })) << load.failures();
  auto running = [&](std::size_t n) {
    auto svc = api_status(k);
    std::size_t up = 0;
    for (const auto& i : svc["instances"]) up += i["state"] == "running" && i["role"] == "serving";
    return svc["instances"].size() == n && up == n;
  };
  k.dir().write("routes.yaml", listen_header + auto_routes("    instances: 3\n", {}));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return running(3); })) << api_status(k).dump();
  EXPECT_EQ(pid_of(k), first);
  const auto three = pids_of(k);
  // Three slow requests, one on each instance (the fewest in flight first): the one on the
  // instance that goes finishes first.
  std::vector<kt::response> slow(3);
  std::vector<std::thread> clients;
  for (auto& r : slow) clients.emplace_back([&k, &r] { r = kt::http_get(k.port(), "/slow/1000"); });
  ASSERT_TRUE(kt::wait_until([&] {
    int busy = 0;
    const auto svc = api_status(k);
    for (const auto& i : svc["instances"]) busy += i.value("in_flight", 0) > 0;
    return busy == 3;
  })) << api_status(k).dump();
  k.dir().write("routes.yaml", listen_header + auto_routes("    instances: 2\n", {}));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return running(2); })) << api_status(k).dump();
  for (auto& c : clients) c.join();
  for (const auto& r : slow) EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(pid_of(k), first);
  for (pid_t p : three)
    if (!pids_of(k).count(p)) {
      EXPECT_TRUE(kt::wait_until([&] { return !kt::process_alive(p); }));
    }
  const int ok = load.ok();
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > ok + 20; })) << load.failures();
  load.stop();
  EXPECT_EQ(load.failures(), "");
}

TEST(StartFirst, ANewProcessThatFailsRightAfterTakingOverHandsBackToThePreviousOne) {
  kt::kinfra_process k(auto_routes("    stop: { drain: 20s }\n", {}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  const pid_t old = pid_of(k);
  // A tunnel keeps the previous process draining while the new one runs.
  auto tunnel = open_tunnel(k, old);
  ASSERT_TRUE(tunnel);
  // The new version is healthy at first, then crashes.
  const std::string at = restart_id(k);
  k.dir().write("routes.yaml", listen_header + auto_routes("    stop: { drain: 20s }\n", {"--crash-after", "1500"}));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return pid_of(k) != old && pid_of(k) != 0; })) << k.log();
  ASSERT_EQ(wait_for_restart(k, at), "failed") << k.log();
  auto svc = api_status(k);
  EXPECT_NE(svc["last_restart"]["message"].get<std::string>().find("right after it took over"), std::string::npos)
      << svc.dump();
  EXPECT_EQ(pid_of(k), old) << "the previous process serves again";
  EXPECT_EQ(svc["state"], "running");
  EXPECT_NE(kt::http_get(k.port(), "/whoami").body.find("pid " + std::to_string(old)), std::string::npos);
  ASSERT_TRUE(tunnel->send("ping"));
  char buf[8];
  EXPECT_EQ(tunnel->recv_some(buf, sizeof buf, 5s), 4);
  EXPECT_EQ(pids_of(k).size(), 1u) << svc.dump();
}

TEST(StartFirst, RestartsUnderLoadWithKeepAliveUpstreamConnections) {
  // The service keeps its connections open: pooled connections to a replaced process are not
  // reused for new requests, and a request on one it closes goes again (GET) on a fresh one.
  kt::kinfra_process k(auto_routes("    instances: 2\n", {"--keep-alive"}));
  ASSERT_TRUE(kt::wait_until([&] { return api_status(k)["status_message"] == "Service is running (2 instances)"; }))
      << k.log();
  kt::steady_load load(k.port(), 4, /*posts=*/true);
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > 50; })) << load.failures();
  for (int round = 0; round < 3; ++round) {
    const auto before = pids_of(k);
    const std::string at = restart_id(k);
    ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/restart/api").status, 200);
    ASSERT_EQ(wait_for_restart(k, at), "done") << k.log();
    for (pid_t p : before) EXPECT_FALSE(kt::process_alive(p));
    const int ok = load.ok();
    ASSERT_TRUE(kt::wait_until([&] { return load.ok() > ok + 50; })) << load.failures();
  }
  load.stop();
  EXPECT_EQ(load.failures(), "") << "ok: " << load.ok();
}

TEST(StartFirst, AReloadDuringARestartAppliesWithoutStoppingAnything) {
  kt::kinfra_process k(auto_routes("", {}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  const pid_t old = pid_of(k);
  kt::steady_load load(k.port(), 4, /*posts=*/true);
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > 20; })) << load.failures();
  const std::string at = restart_id(k);
  // A new version that takes 1.5 s to start, then, while it starts, a change of its checks only.
  const std::string v2 = auto_routes("    env: { RELEASE: \"2\" }\n", {"--listen-after", "1500"});
  k.dir().write("routes.yaml", listen_header + v2);
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return pids_of(k).size() == 2; })) << api_status(k).dump();
  std::string tuned = v2;
  tuned.replace(tuned.find("interval: 100ms"), 15, "interval: 120ms");
  k.dir().write("routes.yaml", listen_header + tuned);
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  EXPECT_TRUE(kt::process_alive(old));
  ASSERT_EQ(wait_for_restart(k, at), "done") << k.log();
  EXPECT_NE(pid_of(k), old);
  EXPECT_EQ(api_status(k)["restarts"], 1) << "one restart, start-first";
  const int ok = load.ok();
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > ok + 20; })) << load.failures();
  load.stop();
  EXPECT_EQ(load.failures(), "");
}
