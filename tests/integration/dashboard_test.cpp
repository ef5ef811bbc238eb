// The fallback module through real sockets: the proxy's port and the direct admin listener,
// actions that reach real processes, fallback pages in place of services that cannot answer.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

/** A test service checked over HTTP every 200 ms and restarted quickly. */
std::string service(const std::string& name, const std::vector<std::string>& args, std::uint16_t port,
                    const std::string& extra = "") {
  return kt::test_service_entry(name, args, port,
                                "    health: { http: /health, interval: 200ms }\n    restart: { backoff: 200ms }\n" + extra);
}

std::string two_services(std::uint16_t api, std::uint16_t web, const std::string& extra = "") {
  return extra + "routes:\n  - { path: /api, service: api, json: true }\n  - { path: /, service: web }\nservices:\n" +
         service("api", {}, api) + service("web", {}, web);
}

bool running(std::uint16_t port, const std::string& svc) { return kt::state_of(port, svc) == "running"; }

kt::response post(std::uint16_t port, const std::string& target, const kt::header_list& h = {},
                  std::string_view body = {}) {
  return kt::http_request(port, "POST", target, h, body);
}

/** This machine's first non-loopback IPv4 address, or "" when it has none. */
std::string external_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string out;
  for (auto* a = list; a && out.empty(); a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    out = buf;
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

TEST(Dashboard, ServedOnTheProxyPortAndOnTheAdminListener) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "api") && running(k.port(), "web"); }));
  for (auto port : {k.port(), k.admin_port()}) {
    auto res = kt::http_get(port, "/kinfra");
    EXPECT_EQ(res.status, 200) << port;
    EXPECT_NE(res.body.find("KInfra Dashboard"), std::string::npos);
    EXPECT_NE(res.body.find("data-service=\"api\""), std::string::npos);
    EXPECT_NE(res.body.find("data-service=\"web\""), std::string::npos);
    EXPECT_EQ(kt::get_status(port)["services"].size(), 2u);
  }
  // The admin listener answers nothing but kinfra's own pages.
  auto root = kt::http_get(k.admin_port(), "/");
  EXPECT_EQ(root.status, 302);
  EXPECT_EQ(root.headers.get("Location"), "/kinfra");
  EXPECT_EQ(kt::http_get(k.admin_port(), "/api/items").status, 404);
  EXPECT_EQ(kt::http_get(k.port(), "/api/items").status, 200) << "while the proxy routes it";
}

TEST(Dashboard, KinfraPathsAreNeverRoutedToAService) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "web"); }));
  EXPECT_EQ(kt::http_get(k.port(), "/kinfra").body.find("hello from web"), std::string::npos);
  EXPECT_EQ(kt::http_get(k.port(), "/__anything__").status, 404);
  EXPECT_NE(kt::http_get(k.port(), "/kinfraX").body.find("hello from web"), std::string::npos)
      << "/kinfraX is not /kinfra";
}

TEST(Dashboard, RestartAndStopAndStartReachTheProcesses) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "api"); }));
  std::string before = kt::get_status(k.port(), "api")["pid"];
  auto res = post(k.port(), "/__action__/restart/api");
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(json::parse(res.body), (json{{"action", "restart"}, {"service", "api"}, {"success", true}}));
  ASSERT_TRUE(kt::wait_until([&] {
    auto s = kt::get_status(k.port(), "api");
    return s["state"] == "running" && s["pid"] != before;
  }));
  EXPECT_FALSE(kt::process_alive(std::stoi(before)));
  EXPECT_EQ(kt::get_status(k.port(), "api")["restarts"], 1);

  ASSERT_EQ(post(k.port(), "/__action__/stop/web").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "web") == "stopped"; }));
  EXPECT_EQ(kt::get_status(k.port(), "web")["pid"], "-");
  ASSERT_EQ(post(k.admin_port(), "/__action__/start/web").status, 200) << "on the admin listener too";
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "web"); }));
}

TEST(Dashboard, AStoppedServicesRouteShowsTheLoadingPageAndComesBack) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "web"); }));
  ASSERT_EQ(post(k.port(), "/__action__/stop/web").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "web") == "stopped"; }));
  kt::header_list browser;
  browser.add("Accept", "text/html,application/xhtml+xml");
  auto page = kt::http_get(k.port(), "/some/page", browser);
  EXPECT_EQ(page.status, 503);
  EXPECT_EQ(page.headers.get("Retry-After"), "5");
  EXPECT_EQ(page.headers.get("Cache-Control"), "no-store");
  EXPECT_NE(page.headers.get("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("web"), std::string::npos);
  EXPECT_NE(page.body.find("/__status__?service="), std::string::npos) << "it polls and comes back by itself";
  EXPECT_NE(page.body.find("will not start by itself"), std::string::npos) << "and promises nothing";
  EXPECT_NE(page.body.find("id=\"countdown\" hidden"), std::string::npos);
  EXPECT_EQ(kt::get_status(k.port(), "web")["health_detail"], "") << "no stale check result on a stopped card";
  kt::header_list api;
  api.add("Accept", "application/json");
  auto j = kt::http_get(k.port(), "/some/page", api);
  EXPECT_EQ(j.status, 503);
  EXPECT_EQ(json::parse(j.body)["state"], "stopped");
  ASSERT_EQ(post(k.port(), "/__action__/start/web").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::http_get(k.port(), "/some/page").status == 200; }));
}

TEST(Dashboard, ACrashedServiceShowsThe503PageAndAnApiRouteAnswersJson) {
  auto api_port = kt::free_port();
  kt::kinfra_process k("routes:\n  - { path: /api, service: api, json: true }\nservices:\n" +
                       service("api", {"--crash-after", "300", "--exit-code", "4"}, api_port,
                               "    fallback: { message: \"We are on it\", refresh: 3s }\n    hold: off\n") +
                       "");
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "error"; }, 5s));
  auto res = kt::http_get(k.port(), "/api/items");  // no Accept: JSON because the route says so
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.headers.get("Retry-After"), "3");
  auto j = json::parse(res.body);
  EXPECT_EQ(j["service"], "api");
  EXPECT_EQ(j["page"], "error");
  EXPECT_EQ(j["status_message"], "Process exited with code 4");
  EXPECT_EQ(j["message"], "We are on it");
}

TEST(Dashboard, MaintenanceModeTakesAServiceOutOfTraffic) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "web"); }));
  kt::header_list h;
  h.add("Content-Type", "application/json");
  ASSERT_EQ(post(k.port(), "/__action__/maintenance/web", h, R"({"on": true, "message": "Database upgrade", "expected": "20m"})").status, 200);
  auto page = kt::http_get(k.port(), "/");
  EXPECT_EQ(page.status, 503);
  EXPECT_NE(page.body.find("Database upgrade"), std::string::npos);
  EXPECT_NE(page.body.find("20m"), std::string::npos);
  EXPECT_EQ(kt::get_status(k.port(), "web")["maintenance"]["on"], true);
  ASSERT_EQ(post(k.port(), "/__action__/maintenance/web", h, R"({"on": false})").status, 200);
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 200);
}

TEST(Dashboard, ActionsNeedTheTokenWhenOneIsSet) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port(), "admin_token: test-token-123\n"));
  EXPECT_EQ(post(k.port(), "/__action__/restart/api").status, 401);
  kt::header_list wrong;
  wrong.add("Authorization", "Bearer nope-nope-nope");
  EXPECT_EQ(post(k.port(), "/__action__/restart/api", wrong).status, 401);
  kt::header_list right;
  right.add("Authorization", "Bearer test-token-123");
  EXPECT_EQ(post(k.port(), "/__action__/restart/api", right).status, 200);
  kt::header_list evil = right;
  evil.add("Origin", "http://evil.example");
  EXPECT_EQ(post(k.port(), "/__action__/restart/api", evil).status, 403);
  for (auto target : {"/kinfra", "/__status__", "/__logs__/api", "/__logs__/api?format=json"})
    EXPECT_EQ(kt::http_get(k.port(), target).body.find("test-token-123"), std::string::npos) << target;
}

TEST(Dashboard, ActionsFalseDisablesThem) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port(), "actions: false\n"));
  EXPECT_EQ(post(k.port(), "/__action__/restart/api").status, 403);
  EXPECT_NE(kt::http_get(k.port(), "/kinfra").body.find("Not available"), std::string::npos);
}

TEST(Dashboard, AllowRemoteWithoutATokenIsRefusedAtStart) {
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "allow_remote: true\nservices: {}\n");
  auto r = kt::run_kinfra({"check", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("allow_remote: true needs admin_token"), std::string::npos) << r.err;
}

TEST(Dashboard, NonLoopbackClientsAreRefusedByDefault) {
  std::string ip = external_address();
  if (ip.empty()) GTEST_SKIP() << "this machine has no non-loopback IPv4 address to connect from";
  auto web = kt::free_port();
  kt::kinfra_process k("listen: 0.0.0.0:0\nadmin_listen: off\nroutes:\n  - { path: /, service: web }\nservices:\n" +
                           service("web", {}, web),
                       /*add_listen=*/false);
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "web"); }));
  // Connect to the machine's own external address: the source is not loopback either.
  auto ask = [&](const std::string& method, const std::string& target, const std::string& host = "localhost") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(k.port());
    inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return kt::response{};
    }
    kt::socket_conn c(fd);
    c.send(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    kt::response res;
    c.read_response(res);
    return res;
  };
  EXPECT_EQ(ask("GET", "/kinfra").status, 403);
  EXPECT_EQ(ask("GET", "/__status__").status, 403);
  EXPECT_EQ(ask("GET", "/__logs__/web?format=json").status, 403);
  EXPECT_EQ(ask("POST", "/__action__/stop/web").status, 403);
  // By its address the Host is not one of kinfra's own names: refused before anything else.
  EXPECT_EQ(ask("GET", "/kinfra", ip).status, 421);
  EXPECT_EQ(ask("GET", "/__status__", ip).status, 421);
  EXPECT_EQ(ask("GET", "/", ip).status, 200) << "the services themselves are public";
  auto pub = ask("GET", "/__status__?service=web", ip);
  EXPECT_EQ(pub.status, 200);
  EXPECT_FALSE(json::parse(pub.body).contains("pid"));
  EXPECT_TRUE(running(k.port(), "web")) << "the refused stop did nothing";
}

TEST(Dashboard, HostileServiceOutputIsShownAsText) {
  auto port = kt::free_port();
  kt::kinfra_process k("services:\n" + service("evil", {"--print-hostile"}, port));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "evil"); }));
  auto page = kt::http_get(k.port(), "/kinfra").body;
  EXPECT_EQ(page.find("<script>alert(1)</script>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
}

TEST(Dashboard, PathTricksOnTheAdminSurfaceMeanOnlyTheirCanonicalPath) {
  // Paths are normalised before anything looks at them, so a trick is only ever its canonical
  // path: dot segments resolve (and cannot climb above the root), an encoded slash is not a
  // separator, and a service name is one segment.
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port(), "admin_token: test-token-123\n"));
  kt::header_list token;
  token.add("Authorization", "Bearer test-token-123");
  struct trick {
    const char* target;
    int status;
  };
  for (auto t : std::vector<trick>{{"/__logs__/../../etc/passwd", 400},
                                   {"/__logs__/%2e%2e/%2e%2e/etc/passwd", 400},
                                   {"/__logs__/api%2F..%2Fweb", 400},
                                   {"/__logs__/api%2f..%2f..%2fkinfra", 400},
                                   {"/__logs__/api/extra", 404},
                                   {"/__logs__/nope", 404},
                                   {"/__logs__/..%2Fapi", 400},
                                   {"/__logs__/../kinfra", 200}}) {  // that is /kinfra itself
    auto res = kt::http_get(k.port(), t.target);
    EXPECT_EQ(res.status, t.status) << t.target;
    EXPECT_EQ(res.body.find("root:"), std::string::npos) << t.target;
  }
  for (auto t : std::vector<trick>{{"/__action__/restart/%2e%2e", 404},
                                   {"/__action__/restart/", 404},
                                   {"/__action__/restart", 404},
                                   {"/__action__/shutdown/api", 404},
                                   {"/__action__/restart/api%00", 400},
                                   {"/__action__/restart/api%2F..%2Fweb", 400},
                                   {"/__action__/../../../x", 400},
                                   {"/__action__/restart/api/../web", 200}}) {  // that is restart/web
    auto res = post(k.port(), t.target, token);
    EXPECT_EQ(res.status, t.status) << t.target;
  }
  // Only the canonical restart/web happened.
  EXPECT_TRUE(kt::wait_until([&] { return kt::get_status(k.port(), "web", "test-token-123")["restarts"] == 1; }, 5s));
  EXPECT_EQ(kt::get_status(k.port(), "api", "test-token-123")["restarts"], 0);
}

TEST(Dashboard, KillingAServiceUnderLoadNeverShowsAConnectionError) {
  const auto web = kt::free_port();
  kt::kinfra_process k(two_services(kt::free_port(), web));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "web"); }, 10s));
  const auto pid = std::stoi(kt::get_status(k.port(), "web")["pid"].get<std::string>());
  std::atomic<bool> done{false};
  std::atomic<int> answers{0}, pages{0}, broken{0};
  std::mutex m;
  std::string first_broken;
  auto client = [&](bool keep_alive) {
    std::unique_ptr<kt::socket_conn> c;
    while (!done) {
      if (!c || !keep_alive) c = kt::connect_to(k.port());
      c->send("GET /page HTTP/1.1\r\nHost: x\r\n\r\n");
      kt::response res;
      bool got = c->read_response(res, false, 15s);
      if (got && res.status == 200) ++answers;
      else if (got && (res.status == 503 || res.status == 502)) ++pages;  // kinfra's page about the service
      else {
        ++broken;
        std::lock_guard lock(m);
        if (first_broken.empty()) first_broken = got ? std::to_string(res.status) : "no response (reset or hang)";
      }
      if (!got || res.headers.get("Connection") == "close") c.reset();
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(client, i % 2 == 0);
  std::this_thread::sleep_for(300ms);
  ::kill(pid, SIGKILL);
  // It comes back by itself (restart policy) and serves again.
  EXPECT_TRUE(kt::wait_until(
      [&] {
        auto s = kt::get_status(k.port(), "web");
        return s["state"] == "running" && s["pid"] != std::to_string(pid);
      },
      15s));
  int answers_before = answers;
  EXPECT_TRUE(kt::wait_until([&] { return answers > answers_before + 20; }, 5s));
  done = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(broken.load(), 0) << first_broken;
  // (Held while it came back: a delay, not kinfra's page; without hold they would get the page.)
  EXPECT_EQ(pages.load(), 0) << "requests during the outage were held until it was back";
  EXPECT_GT(answers.load(), 100);
}
