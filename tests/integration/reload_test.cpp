// Live reload of routes.yaml and graceful shutdown, through the real executable: reloads under
// load, tunnels and uploads across a reload, broken edits, service reconciliation, SIGTERM.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "http_test.hpp"
#include "websocket_test.hpp"

namespace {

using namespace std::chrono_literals;

const std::string listen_header = "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n";

/** Saves a new routes.yaml for `k` (the same listeners as at start), in place or by rename. */
void save(const kt::kinfra_process& k, const std::string& body, bool by_rename = false) {
  if (!by_rename) {
    k.dir().write("routes.yaml", listen_header + body);
    return;
  }
  std::string tmp = k.dir().write("routes.yaml.swp", listen_header + body);
  std::rename(tmp.c_str(), (k.dir().path() + "/routes.yaml").c_str());
}

nlohmann::json config_status(const kt::kinfra_process& k) { return kt::get_status(k.port())["config"]; }

unsigned reloads(const kt::kinfra_process& k) {
  auto c = config_status(k);
  return c.is_object() ? c["reloads"].get<unsigned>() : 0;
}

/** POST /__action__/reload; the parsed answer. */
nlohmann::json reload_now(const kt::kinfra_process& k) {
  auto res = kt::http_request(k.port(), "POST", "/__action__/reload");
  return nlohmann::json::parse(res.body, nullptr, false);
}

std::string service_entry(const std::string& name, const std::string& url) {
  return "  " + name + ": { url: \"" + url + "\", health: off }\n";
}

TEST(Reload, UnderLoadNotOneRequestFails) {
  kt::test_upstream a, b;
  const std::string one = "routes:\n  - { path: /, service: a }\nservices:\n" + service_entry("a", a.url());
  const std::string two = "timeouts: { idle: 30s }\nroutes:\n  - { path: /, service: a }\n  - { path: /b, service: b }\n"
                          "services:\n" + service_entry("a", a.url()) + service_entry("b", b.url());
  kt::kinfra_process k(one);
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_failure;
  std::mutex failure_mutex;
  auto client = [&](bool keep_alive) {
    std::unique_ptr<kt::socket_conn> c;
    for (int i = 0; !done; ++i) {
      if (!c || !keep_alive) c = kt::connect_to(k.port());
      const std::string target = i % 2 ? "/b/item" : "/page";
      c->send("GET " + target + " HTTP/1.1\r\nHost: site.test\r\n\r\n");
      kt::response res;
      if (c->read_response(res, false, 5s) && res.status == 200) {
        ++ok;
        continue;
      }
      ++failed;
      std::lock_guard lock(failure_mutex);
      if (first_failure.empty()) first_failure = target + " → " + std::to_string(res.status) + " " + res.body;
      c.reset();
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(client, i % 2 == 0);
  for (int i = 0; i < 50; ++i) {
    save(k, i % 2 ? one : two, i % 3 == 0);
    if (i % 10 == 0) {
      // Noticed by the file watcher.
      unsigned before = reloads(k);
      ASSERT_TRUE(kt::wait_until([&] { return reloads(k) > before; }, 5s)) << k.log();
    } else {
      auto r = reload_now(k);
      ASSERT_TRUE(r.is_object() && r["success"] == true) << r.dump();
    }
  }
  done = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_GT(ok.load(), 200);
  EXPECT_GE(reloads(k), 50u);
  EXPECT_GT(b.request_count(), 0u) << "the /b route of the second file was used";
}

TEST(Reload, AnOpenWebSocketSurvivesAReload) {
  kt::test_upstream ws(kt::websocket_echo);
  kt::test_upstream other;
  kt::kinfra_process k("routes:\n  - { path: /, service: ws }\nservices:\n" + service_entry("ws", ws.url()));
  auto echoes = kt::websocket_roundtrip(k.port(), "/chat", {"before", "after", "still"}, 10s, [&](std::size_t i) {
    if (i != 0) return;
    // The route and service the tunnel came through are gone from the new file.
    save(k, "routes:\n  - { path: /, service: other }\nservices:\n" + service_entry("other", other.url()));
    auto r = reload_now(k);
    EXPECT_EQ(r["applied"], true) << r.dump();
  });
  ASSERT_EQ(echoes.size(), 3u);
  EXPECT_EQ(echoes[1], "after");
  EXPECT_EQ(echoes[2], "still");
  // New requests follow the new file.
  EXPECT_EQ(kt::http_get(k.port(), "/x").status, 200);
  EXPECT_EQ(other.request_count(), 1u);
}

TEST(Reload, AnUploadInFlightCompletes) {
  kt::test_upstream up;
  kt::test_upstream other;
  kt::kinfra_process k("routes:\n  - { path: /, service: up }\nservices:\n" + service_entry("up", up.url()));
  auto c = kt::connect_to(k.port());
  const std::string half(64 * 1024, 'a');
  c->send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(2 * half.size()) + "\r\n\r\n" + half);
  std::this_thread::sleep_for(200ms);
  save(k, "timeouts: { body: 5s }\nroutes:\n  - { path: /, service: other }\nservices:\n" +
              service_entry("other", other.url()));
  ASSERT_EQ(reload_now(k)["applied"], true);
  c->send(std::string(half.size(), 'b'));
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 200);
  EXPECT_NE(res.body.find(half + std::string(half.size(), 'b')), std::string::npos) << "the whole body arrived";
  ASSERT_EQ(up.request_count(), 1u);
  // The next request on the same connection follows the new file.
  c->send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(other.request_count(), 1u);
}

TEST(Reload, ListenAddressesComeAndGoWithoutCuttingConnections) {
  kt::test_upstream up;
  const std::string body = "routes:\n  - { path: /, service: up }\nservices:\n" + service_entry("up", up.url());
  kt::kinfra_process k(body);
  const auto extra = kt::free_port();
  const std::string with_extra = "listen: [127.0.0.1:0, 127.0.0.1:" + std::to_string(extra) +
                                 "]\nadmin_listen: 127.0.0.1:0\n" + body;
  k.dir().write("routes.yaml", with_extra);
  ASSERT_EQ(reload_now(k)["applied"], true);
  auto on_extra = kt::connect_to(extra);  // the new address accepts
  on_extra->send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(on_extra->read_response(res));
  EXPECT_EQ(res.status, 200);
  // The original listener (port 0 at start) kept its port.
  EXPECT_EQ(kt::http_get(k.port(), "/main").status, 200);

  save(k, body);  // the extra address is gone again
  ASSERT_EQ(reload_now(k)["applied"], true);
  EXPECT_THROW(kt::connect_to(extra), std::runtime_error) << "a removed address stops accepting";
  on_extra->send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(on_extra->read_response(res)) << "an established connection on it goes on";
  EXPECT_EQ(res.status, 200);

  // An address that cannot be bound makes the whole reload fail, and nothing changes.
  kt::test_upstream squatter;  // holds a port
  k.dir().write("routes.yaml", "listen: [127.0.0.1:0, 127.0.0.1:" + std::to_string(squatter.port()) +
                                   "]\nadmin_listen: 127.0.0.1:0\nroutes:\n  - { path: /, service: other }\nservices:\n" +
                                   service_entry("other", squatter.url()));
  auto r = reload_now(k);
  EXPECT_EQ(r["success"], false) << r.dump();
  EXPECT_NE(r["errors"].dump().find("cannot listen on 127.0.0.1:" + std::to_string(squatter.port())), std::string::npos)
      << r.dump();
  EXPECT_EQ(kt::http_get(k.port(), "/after").status, 200);
  EXPECT_EQ(squatter.request_count(), 0u) << "the routes of the refused file were not used";
}

TEST(Reload, ABrokenEditKeepsTheSiteUpAndIsReported) {
  kt::test_upstream up;
  const std::string good = "routes:\n  - { path: /, service: up }\nservices:\n" + service_entry("up", up.url());
  kt::kinfra_process k(good);
  save(k, "routes:\n  - { path: /, service: up }\nservices:\n  up: { url: \"" + up.url() + "\", bogus: 1 }\n");
  ASSERT_TRUE(kt::wait_until([&] { return config_status(k)["errors"].size() > 0; }, 5s)) << k.log();
  auto c = config_status(k);
  // Line 6 of the saved file (after the two listen lines), column of the key.
  EXPECT_NE(c["errors"][0].get<std::string>().find("routes.yaml:6:"), std::string::npos) << c.dump();
  EXPECT_NE(c["errors"][0].get<std::string>().find("unknown key 'bogus'"), std::string::npos) << c.dump();
  EXPECT_TRUE(c.contains("failed_at"));
  EXPECT_NE(k.log().find("routes.yaml:6:"), std::string::npos);
  EXPECT_EQ(kt::http_get(k.port(), "/still").status, 200) << "the old configuration keeps serving";
  // The dashboard shows the banner with the error.
  auto page = kt::http_get(k.port(), "/kinfra");
  EXPECT_NE(page.body.find("unknown key &#39;bogus&#39;"), std::string::npos);
  // The dashboard's reload action answers with the errors too.
  auto r = reload_now(k);
  EXPECT_EQ(r["success"], false);
  EXPECT_NE(r["errors"].dump().find("bogus"), std::string::npos);
  // A YAML syntax error, saved by rename as editors do.
  save(k, "routes: [\n", true);
  ASSERT_TRUE(kt::wait_until(
      [&] { return config_status(k)["errors"].dump().find("YAML syntax error") != std::string::npos; }, 5s));
  EXPECT_EQ(kt::http_get(k.port(), "/still").status, 200);
  // Fixed: the banner goes, the reload counts.
  save(k, good);
  ASSERT_TRUE(kt::wait_until([&] { return config_status(k)["errors"].empty(); }, 5s)) << k.log();
  EXPECT_EQ(config_status(k)["loaded_by"], "file change");
  EXPECT_EQ(kt::get_status(k.port()).dump().find("bogus"), std::string::npos);
}

TEST(Reload, ServicesAreReconciled) {
  const auto ka = kt::free_port(), kb = kt::free_port(), kc = kt::free_port(), kd = kt::free_port();
  auto svc = [](const std::string& name, std::uint16_t port, const std::string& extra = "") {
    return kt::test_service_entry(name, {}, port, "    health: { tcp: true, interval: 100ms }\n" + extra);
  };
  const std::string routes = "routes:\n  - { path: /, service: keep }\n";
  kt::kinfra_process k(routes + "services:\n" + svc("keep", ka) + svc("change", kb, "    env: { MODE: one }\n") +
                       svc("drop", kc));
  auto pid_of = [&](const std::string& name) -> int {
    auto s = kt::get_status(k.port(), name);
    auto p = s["pid"];
    return p.is_string() && p != "-" ? std::stoi(p.get<std::string>()) : 0;
  };
  for (auto name : {"keep", "change", "drop"})
    ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), name) == "running"; }, 10s)) << name;
  const int keep_pid = pid_of("keep"), change_pid = pid_of("change"), drop_pid = pid_of("drop");

  save(k, routes + "services:\n" + svc("keep", ka) + svc("change", kb, "    env: { MODE: two }\n") + svc("add", kd));
  ASSERT_EQ(reload_now(k)["applied"], true);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "add") == "running"; }, 10s)) << k.log();
  ASSERT_TRUE(kt::wait_until(
      [&] { return kt::state_of(k.port(), "change") == "running" && pid_of("change") != change_pid; }, 10s));
  EXPECT_EQ(pid_of("keep"), keep_pid) << "an unchanged service keeps running";
  EXPECT_TRUE(kt::process_alive(keep_pid));
  EXPECT_FALSE(kt::process_alive(change_pid)) << "a changed service was restarted";
  EXPECT_TRUE(kt::wait_until([&] { return !kt::process_alive(drop_pid); }, 10s)) << "a removed service is stopped";
  auto status = kt::get_status(k.port());
  EXPECT_FALSE(status["services"].contains("drop"));
  EXPECT_TRUE(status["services"].contains("add"));
  const int add_pid = pid_of("add"), changed_pid = pid_of("change");
  EXPECT_EQ(k.stop(), 0);
  for (int pid : {keep_pid, changed_pid, add_pid}) EXPECT_FALSE(kt::process_alive(pid)) << pid;
}

TEST(Reload, ChangingAServiceInAnyStateIsSafe) {
  // A service backing off after a crash (no process) whose command changes, and a service that
  // goes from run by kinfra to only watched: kinfra keeps going, the old process is stopped.
  kt::test_upstream external;
  const auto run_port = kt::free_port();
  const std::string routes = "routes:\n  - { path: /, service: runs }\n";
  auto crashing = [](const std::string& extra) {
    return kt::test_service_entry("crashy", {"--exit-code", "1"}, std::nullopt,
                                  "    restart: { backoff: 2s }\n" + extra);
  };
  kt::kinfra_process k(routes + "services:\n" + crashing("") +
                       kt::test_service_entry("runs", {}, run_port, "    health: { tcp: true, interval: 100ms }\n"));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "runs") == "running"; }, 10s));
  ASSERT_TRUE(kt::wait_until([&] { return kt::get_status(k.port(), "crashy")["restarts"] >= 0 &&
                                          kt::get_status(k.port(), "crashy")["pid"] == "-"; }, 10s));
  const int runs_pid = std::stoi(kt::get_status(k.port(), "runs")["pid"].get<std::string>());
  save(k, routes + "services:\n" + crashing("    env: { CHANGED: yes }\n") +
              "  runs: { url: \"" + external.url() + "\", health: off }\n");
  auto r = reload_now(k);
  ASSERT_EQ(r["applied"], true) << r.dump();
  EXPECT_TRUE(kt::wait_until([&] { return !kt::process_alive(runs_pid); }, 10s))
      << "the process of a service that is now only watched was stopped";
  EXPECT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "runs") == "running"; }, 10s));
  EXPECT_EQ(kt::http_get(k.port(), "/x").status, 200);
  EXPECT_EQ(external.request_count(), 1u);
  EXPECT_TRUE(kt::process_alive(k.pid()));
  EXPECT_EQ(k.stop(), 0);
}

TEST(Shutdown, FinishesRequestsInFlightThenStopsServices) {
  // The upstream answers after 800 ms.
  kt::test_upstream slow([](kt::socket_conn& c) {
    kt::request req;
    while (c.read_request(req)) {
      std::this_thread::sleep_for(800ms);
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
    }
  });
  const auto port = kt::free_port();
  kt::kinfra_process k("timeouts: { shutdown: 5s }\nroutes:\n  - { path: /, service: slow }\nservices:\n" +
                       service_entry("slow", slow.url()) +
                       kt::test_service_entry("worker", {}, port, "    health: { tcp: true, interval: 100ms }\n"));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "worker") == "running"; }, 10s));
  auto worker_pid = std::stoi(kt::get_status(k.port(), "worker")["pid"].get<std::string>());
  auto idle = kt::connect_to(k.port());  // keep-alive, between requests
  idle->send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(idle->read_response(res));
  auto busy = kt::connect_to(k.port());
  busy->send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(200ms);
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(k.pid(), SIGTERM);
  EXPECT_TRUE(idle->wait_closed(2s)) << "an idle keep-alive connection is closed at once";
  ASSERT_TRUE(busy->read_response(res, false, 5s));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "done");
  EXPECT_EQ(res.headers.get("Connection"), "close");
  EXPECT_THROW(
      {
        auto late = kt::connect_to(k.port());
        late->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        kt::response r2;
        if (!late->read_response(r2, false, 2s)) throw std::runtime_error("refused");
      },
      std::runtime_error)
      << "no new connections are served while draining";
  EXPECT_EQ(k.wait_for_exit(10s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_FALSE(kt::process_alive(worker_pid));
}

TEST(Shutdown, ASecondSignalHurries) {
  const auto port = kt::free_port();
  kt::kinfra_process k("services:\n" +
                       kt::test_service_entry("stubborn", {"--ignore-term"}, port,
                                              "    health: { tcp: true, interval: 100ms }\n    stop: { timeout: 60s }\n"));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "stubborn") == "running"; }, 10s));
  auto pid = std::stoi(kt::get_status(k.port(), "stubborn")["pid"].get<std::string>());
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(k.pid(), SIGTERM);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(kt::process_alive(pid)) << "it ignores SIGTERM and has 60 s";
  ::kill(k.pid(), SIGTERM);
  EXPECT_EQ(k.wait_for_exit(5s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  EXPECT_FALSE(kt::process_alive(pid)) << "no service is left running";
}

}  // namespace
