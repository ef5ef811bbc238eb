// Requests held while a service comes back (hold): a kill -9 or a restart under load is a delay,
// not an error; a service that takes longer gets the fallback page after the hold timeout; a full
// queue gets it at once; a client that leaves is dropped; a service stopped on purpose is never
// waited for. Real kinfra, real kinfra-test-service processes, keep-alive clients on 127.0.0.1.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "http_test.hpp"
#include "steady_load.hpp"

namespace {

using namespace std::chrono_literals;

std::string api_routes(std::uint16_t port, const std::string& hold, const std::vector<std::string>& args = {}) {
  return "routes:\n  - { path: /, service: api }\nservices:\n" +
         kt::test_service_entry("api", args, port,
                                "    health: { http: /health, interval: 100ms }\n"
                                "    restart: { policy: always, backoff: 100ms }\n" + hold);
}

pid_t pid_of(std::uint16_t port) {
  std::string pid = kt::get_status(port)["services"]["api"].value("pid", "-");
  return pid == "-" ? 0 : static_cast<pid_t>(std::stoi(pid));
}

using kt::steady_load;

}  // namespace

namespace {

/**
 * Runs `disrupt` (given the service's pid) three times under a steady load of 4 keep-alive
 * clients, waiting each time for a new process and for 50 more answers; every answer must come
 * from the service.
 */
void expect_unnoticed(const kt::kinfra_process& k, const std::function<void(pid_t)>& disrupt) {
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  steady_load load(k.port(), 4);
  ASSERT_TRUE(kt::wait_until([&] { return load.ok() > 50; }));
  for (int round = 0; round < 3; ++round) {
    const pid_t before = pid_of(k.port());
    ASSERT_GT(before, 0);
    disrupt(before);
    ASSERT_TRUE(kt::wait_until([&] { return pid_of(k.port()) != before && pid_of(k.port()) != 0; }, 10s)) << k.log();
    const int seen = load.ok();
    ASSERT_TRUE(kt::wait_until([&] { return load.ok() > seen + 50; }, 10s)) << load.failures();
  }
  load.stop();
  EXPECT_EQ(load.failures(), "") << "every request is answered by the service; ok: " << load.ok();
}

}  // namespace

TEST(Hold, AKillMinus9UnderLoadIsADelayNotAnError) {
  kt::kinfra_process k(api_routes(kt::free_port(), ""));
  expect_unnoticed(k, [](pid_t pid) { ASSERT_EQ(::kill(pid, SIGKILL), 0); });
}

TEST(Hold, ARestartThroughTheApiUnderLoadIsADelayNotAnError) {
  kt::kinfra_process k(api_routes(kt::free_port(), ""));
  expect_unnoticed(k, [&](pid_t) {
    auto r = kt::run_kinfra({"restart", "api", "--url", "http://127.0.0.1:" + std::to_string(k.admin_port())});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  });
}

TEST(Hold, AServiceSlowerThanTheHoldGetsTheFallbackPageAfterTheTimeout) {
  const auto port = kt::free_port();
  // Listens 3 s after each start; requests wait 300 ms.
  kt::kinfra_process k(api_routes(port, "    hold: { timeout: 300ms }\n", {"--listen-after", "3000"}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "starting"; })) << k.log();
  const auto start = std::chrono::steady_clock::now();
  auto res = kt::http_get(k.port(), "/");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(res.status, 503);
  EXPECT_GE(took, 300ms) << "it was held first";
  EXPECT_EQ(res.headers.get("Retry-After"), "5");
}

TEST(Hold, AFullQueueGetsThePageAtOnceAndAClientThatLeavesIsDropped) {
  const auto port = kt::free_port();
  kt::kinfra_process k(api_routes(port, "    hold: { timeout: 20s, max_requests: 1 }\n", {"--listen-after", "30000"}) +
                       "workers: 1\n");
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "starting"; })) << k.log();
  auto held_requests = [&] { return kt::get_status(k.port())["services"]["api"].value("held_requests", -1); };
  // The first request waits (the only place in the queue)…
  auto first = kt::connect_to(k.port());
  first->send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(kt::wait_until([&] { return held_requests() == 1; })) << kt::get_status(k.port()).dump();
  // …so the next one gets the page at once.
  auto second = kt::http_get(k.port(), "/");
  EXPECT_EQ(second.status, 503);
  // The first client leaves: its place is free again.
  first->close();
  ASSERT_TRUE(kt::wait_until([&] { return held_requests() == 0; })) << "the client that left is still held";
  auto third = kt::connect_to(k.port());
  third->send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_TRUE(kt::wait_until([&] { return held_requests() == 1; }));
}

TEST(Hold, AServiceStoppedOnPurposeOrHoldOffIsNotWaitedFor) {
  const auto port = kt::free_port();
  kt::kinfra_process k(api_routes(port, "    hold: { timeout: 30s }\n"));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  auto r = kt::run_kinfra({"stop", "api", "--url", "http://127.0.0.1:" + std::to_string(k.admin_port())});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 503);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "a stopped service is not waited for";

  const auto port2 = kt::free_port();
  kt::kinfra_process off(api_routes(port2, "    hold: off\n", {"--listen-after", "30000"}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(off.port(), "api") == "starting"; })) << off.log();
  const auto start2 = std::chrono::steady_clock::now();
  EXPECT_EQ(kt::http_get(off.port(), "/").status, 503);
  EXPECT_LT(std::chrono::steady_clock::now() - start2, 4s) << "hold: off";
}

TEST(Hold, ABrowserSeesTheLoadingPageAtOnceWhenTheServiceReportsStartUpSteps) {
  const auto port = kt::free_port();
  kt::kinfra_process k(api_routes(port, "    hold: { timeout: 30s }\n", {"--listen-after", "30000"}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "starting"; })) << k.log();
  // It says what it is doing (a build): longer than a hold.
  auto pushed = kt::http_request(k.port(), "POST", "/__action__/status/api", {},
                                 R"({"steps": [{"text": "npm run build", "status": "active"}]})");
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  kt::header_list browser;
  browser.add("Accept", "text/html,application/xhtml+xml");
  browser.add("Sec-Fetch-Mode", "navigate");
  const auto start = std::chrono::steady_clock::now();
  auto page = kt::http_get(k.port(), "/", browser);
  EXPECT_EQ(page.status, 503);
  EXPECT_NE(page.body.find("npm run build"), std::string::npos) << "the loading page with its steps";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "not held";
  // A script's request still waits for it.
  auto script = kt::connect_to(k.port());
  script->send("GET /api/items HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\n\r\n");
  EXPECT_TRUE(kt::wait_until([&] { return kt::get_status(k.port())["services"]["api"].value("held_requests", -1) == 1; }));
}

TEST(Hold, AHeldRequestGetsThePageAtOnceWhenTheServiceIsStoppedOrKinfraStops) {
  const auto port = kt::free_port();
  kt::kinfra_process k(api_routes(port, "    hold: { timeout: 60s }\n", {"--listen-after", "60000"}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "starting"; })) << k.log();
  auto held = [&] { return kt::get_status(k.port())["services"]["api"].value("held_requests", -1); };
  // Stopped on purpose while a request waits: it gets the page now, not after 60 s.
  auto waiting = kt::connect_to(k.port());
  waiting->send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(kt::wait_until([&] { return held() == 1; }));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/stop/api").status, 200);
  kt::response res;
  ASSERT_TRUE(waiting->read_response(res, false, 10s)) << "no answer when the service was stopped";
  EXPECT_EQ(res.status, 503);
  // kinfra stops (SIGTERM) while a request waits: the page, then the connection closes. (A start
  // asked for while it is still stopping happens once it has stopped.)
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/start/api").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "starting"; }));
  auto during_stop = kt::connect_to(k.port());
  during_stop->send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(kt::wait_until([&] { return held() == 1; }));
  ::kill(k.pid(), SIGTERM);
  kt::response last;
  ASSERT_TRUE(during_stop->read_response(last, false, 10s)) << "no answer when kinfra stopped";
  EXPECT_EQ(last.status, 503);
  EXPECT_EQ(last.headers.get("Connection"), "close");
}

TEST(Hold, ARequestWithABodyThatTheServiceDropsIsNotSentAgainWithoutItsBody) {
  // A service that takes the first request and closes without answering (alive: its own doing),
  // and answers the next ones.
  std::atomic<int> seen{0};
  kt::test_upstream up([&](kt::socket_conn& c) {
    kt::request r;
    if (!c.read_request(r)) return;
    if (seen++ == 0) return;  // closes
    c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" + r.body);
  });
  kt::kinfra_process k("routes:\n  - { path: /, service: api }\nservices:\n  api: { url: \"" + up.url() + "\" }\n");
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; })) << k.log();
  auto c = kt::connect_to(k.port());
  c->send("PUT /die HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
          "GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
  kt::response first, second;
  ASSERT_TRUE(c->read_response(first, false, 10s));
  EXPECT_EQ(first.status, 502) << "not sent again (its body is gone)";
  ASSERT_TRUE(c->read_response(second, false, 10s));
  EXPECT_EQ(second.status, 200) << "the pipelined request is its own request";
  EXPECT_EQ(second.body, "");
}

TEST(Hold, AServiceKinfraOnlyWatchesIsNotWaitedForWhenItRefuses) {
  kt::kinfra_process k("routes:\n  - { path: /, service: ext }\nservices:\n  ext: { url: \"http://127.0.0.1:" +
                       std::to_string(kt::free_port()) + "\", health: off }\n");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 502);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "nothing brings it back: no hold";
}
