// The fallback module's handler, called directly: no sockets, no processes.
#include "fallback/fallback_responder.hpp"

#include <map>
#include <regex>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/config_loader.hpp"

namespace {

using json = nlohmann::json;
using kinfra::control_result;
using kinfra::local_request;
using kinfra::local_response;

/** Records what the dashboard asked for; answers like the supervisor would. */
struct fake_control : kinfra::service_control {
  std::vector<std::string> calls;
  control_result answer(std::string_view verb, std::string_view s) {
    calls.push_back(std::string(verb) + " " + std::string(s));
    if (s == "db") return control_result::not_managed;
    if (s != "api" && s != "web") return control_result::unknown_service;
    return control_result::accepted;
  }
  control_result start(std::string_view s) override { return answer("start", s); }
  control_result stop(std::string_view s) override { return answer("stop", s); }
  control_result restart(std::string_view s, std::string_view) override { return answer("restart", s); }
};

class Fallback : public ::testing::Test {
 protected:
  void load(const std::string& extra = "") {
    auto r = kinfra::load_config_string(extra + R"(
routes:
  - { path: /api, service: api, json: true }
  - { path: /, service: web }
services:
  api:
    command: ./api
    port: 8000
    fallback: { message: "Back in a minute", refresh: 7s }
  web: { command: ./web, port: 8001 }
  db: { url: "tcp://127.0.0.1:5432" }
)",
                                        "/tmp/routes.yaml");
    ASSERT_TRUE(r.ok()) << r.errors.at(0).message;
    cfg = r.cfg;
    board = std::make_unique<kinfra::status_board>(*cfg);
    responder = std::make_unique<kinfra::fallback::fallback_responder>(cfg, board.get(), &control);
  }
  void SetUp() override { load(); }

  local_response call(std::string_view method, std::string target, bool loopback = true,
                      std::string_view auth = {}, std::string_view origin = {}, std::string_view body = {}) {
    storage = std::move(target);
    local_request req;
    req.method = method;
    req.target = storage;
    auto q = storage.find('?');
    req.path = std::string_view(storage).substr(0, q);
    if (q != std::string::npos) req.query = std::string_view(storage).substr(q + 1);
    req.client_is_loopback = loopback;
    req.client_ip = loopback ? "127.0.0.1" : "203.0.113.9";
    req.host_header = "127.0.0.1:9100";
    req.authorization = auth;
    req.origin = origin;
    req.body = body;
    req.host_header = host;
    req.fetch_site = fetch_site;
    // As the proxy does: the quick answer on the worker, else the full one off it.
    auto quick = responder->handle_quick(req);
    local_response res = quick ? std::move(*quick) : responder->handle(req);
    if (res.shared_body) res.body = *res.shared_body;
    return res;
  }

  local_response unavailable(std::size_t service, bool loopback = true, bool wants_json = false, bool json_route = false) {
    local_request req;
    req.method = "GET";
    req.path = "/";
    req.client_is_loopback = loopback;
    req.host_header = host;
    req.wants_json = wants_json;
    const std::string name = svc(service);
    req.service = name;
    return responder->unavailable_page(req, json_route);
  }

  /** The name of the service at `i` on the board. */
  std::string svc(std::size_t i) const { return board->snapshot()->services.at(i).name; }

  static std::string header(const local_response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return {};
  }

  void run(std::size_t i, const std::string& message = "Service is running") {
    board->modify(svc(i), [&](kinfra::service_status& s) {
      s.state = kinfra::service_state::running;
      s.status_message = message;
      s.pid = 4242;
      s.started_at = std::chrono::system_clock::now() - std::chrono::seconds(332);
      s.health = "Healthy";
    });
  }

  std::shared_ptr<const kinfra::config> cfg;
  std::unique_ptr<kinfra::status_board> board;
  fake_control control;
  std::unique_ptr<kinfra::fallback::fallback_responder> responder;
  std::string storage;
  std::string host = "127.0.0.1:9100";  ///< the Host of the next call
  std::string fetch_site;                ///< Sec-Fetch-Site of the next call
};

}  // namespace

TEST_F(Fallback, DashboardHasTheSpecsParts) {
  run(0);
  board->append_log(svc(0), {std::chrono::system_clock::now(), "15:00:01", kinfra::log_level::warn, "Rate limit approaching", 0});
  auto res = call("GET", "/kinfra");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header(res, "Cache-Control"), "no-store");
  for (auto text : {"KInfra Dashboard", "Live • Updates every 2s", "Refresh All", "Total", "Running", "Starting", "Errors",
                    "data-service=\"api\"", "data-service=\"web\"", "data-service=\"db\"", "🟢", "Service is running",
                    "5m 32s", "4242", "- (stopped)", "Rate limit approaching", "level-warn", "🔄 Restart", "📄 View Logs",
                    "⏹ Stop", "▶ Start", "href=\"/__logs__/api\"", "target=\"_blank\""})
    EXPECT_NE(res.body.find(text), std::string::npos) << text;
  EXPECT_EQ(call("GET", "/kinfra/").status, 200u);
  EXPECT_EQ(call("POST", "/kinfra").status, 405u);
}

TEST_F(Fallback, DashboardEscapesEverythingAServicePrinted) {
  board->append_log(svc(1), {std::chrono::system_clock::now(), {}, kinfra::log_level::error, "<script>alert(1)</script>", 0});
  board->modify(svc(1), [](kinfra::service_status& s) { s.status_message = "<img src=x onerror=alert(2)>"; });
  auto body = call("GET", "/kinfra").body;
  EXPECT_EQ(body.find("<script>alert(1)"), std::string::npos);
  EXPECT_EQ(body.find("<img src=x"), std::string::npos);
  EXPECT_NE(body.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(body.find("</script>alert"), std::string::npos);
  EXPECT_NE(body.find("\\u003cscript\\u003ealert(1)"), std::string::npos) << "in the embedded JSON, too";
}

TEST_F(Fallback, WatchedOnlyServicesAndDisabledActionsSayNotAvailable) {
  auto body = call("GET", "/kinfra").body;
  auto db = body.find("data-service=\"db\"");
  ASSERT_NE(db, std::string::npos);
  EXPECT_NE(body.find("Not available", db), std::string::npos);
  load("actions: false\n");
  body = call("GET", "/kinfra").body;
  EXPECT_EQ(body.find("class=\"restart\">🔄 Restart"), std::string::npos);
  EXPECT_NE(body.find("Not available"), std::string::npos);
  EXPECT_NE(body.find("data-actions=\"false\""), std::string::npos);
}

TEST_F(Fallback, StatusIsTheSpecDocument) {
  run(0);
  board->append_log(svc(0), {std::chrono::system_clock::now(), "15:00:01", kinfra::log_level::info, "Server started", 0});
  auto res = call("GET", "/__status__");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.content_type, "application/json");
  auto j = json::parse(res.body);
  EXPECT_EQ(j["service_name"], "api");
  EXPECT_EQ(j["status_message"], "Service is running");
  EXPECT_EQ(j["port"], "8000");
  EXPECT_EQ(j["pid"], "4242");
  EXPECT_EQ(j["uptime"], "5m 32s");
  EXPECT_EQ(j["health_status"], "Healthy");
  EXPECT_EQ(j["state"], "running");
  EXPECT_TRUE(j["timestamp"].is_string());
  EXPECT_EQ(j["services"]["api"]["logs"][0], (json{{"timestamp", "15:00:01"}, {"level", "info"}, {"message", "Server started"}}));
  EXPECT_EQ(j["services"]["web"]["pid"], "-");
  EXPECT_EQ(j["services"]["db"]["state"], "starting");
  EXPECT_EQ(json::parse(call("GET", "/__status__?service=web").body)["service_name"], "web");
  EXPECT_EQ(call("POST", "/__status__").status, 405u);
}

TEST_F(Fallback, RemoteClientsGetOnlyThePublicPartOfOneService) {
  run(0);
  EXPECT_EQ(call("GET", "/__status__", false).status, 403u);
  EXPECT_EQ(call("GET", "/kinfra", false).status, 403u);
  EXPECT_EQ(call("GET", "/__logs__/api?format=json", false).status, 403u);
  auto pub = call("GET", "/__status__?service=api", false);
  EXPECT_EQ(pub.status, 200u);
  auto j = json::parse(pub.body);
  EXPECT_EQ(j["state"], "running");
  EXPECT_FALSE(j.contains("pid"));
  EXPECT_FALSE(j.contains("logs"));
  EXPECT_FALSE(j.contains("services"));
  EXPECT_EQ(call("GET", "/__status__?service=nope", false).status, 404u);
}

TEST_F(Fallback, ActionsAnswerAsTheSpecSays) {
  auto res = call("POST", "/__action__/restart/api");
  EXPECT_EQ(res.status, 200u);
  auto j = json::parse(res.body);
  EXPECT_EQ(j["success"], true);
  EXPECT_EQ(j["service"], "api");
  EXPECT_EQ(call("POST", "/__action__/stop/web").status, 200u);
  EXPECT_EQ(call("POST", "/__action__/start/web").status, 200u);
  EXPECT_EQ(control.calls, (std::vector<std::string>{"restart api", "stop web", "start web"}));

  auto unknown = call("POST", "/__action__/restart/ghost");
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(json::parse(unknown.body)["success"], false);
  EXPECT_TRUE(json::parse(unknown.body)["error"].is_string());
  auto watched = call("POST", "/__action__/stop/db");
  EXPECT_EQ(watched.status, 409u);
  EXPECT_EQ(json::parse(watched.body)["success"], false);
  EXPECT_EQ(call("POST", "/__action__/explode/api").status, 404u);
  auto get = call("GET", "/__action__/restart/api");
  EXPECT_EQ(get.status, 405u);
  EXPECT_EQ(header(get, "Allow"), "POST");
  EXPECT_EQ(control.calls.size(), 4u) << "GET did nothing";
}

TEST_F(Fallback, ActionsAreRefusedFromElsewhere) {
  EXPECT_EQ(call("POST", "/__action__/restart/api", false).status, 403u);
  auto cross = call("POST", "/__action__/restart/api", true, {}, "http://evil.example");
  EXPECT_EQ(cross.status, 403u);
  EXPECT_EQ(json::parse(cross.body)["success"], false);
  EXPECT_EQ(call("POST", "/__action__/restart/api", true, {}, "http://127.0.0.1:9100").status, 200u);
  load("actions: false\n");
  EXPECT_EQ(call("POST", "/__action__/restart/api").status, 403u);
}

TEST_F(Fallback, ATokenIsCheckedOnActions) {
  load("admin_token: correct-horse-battery\n");
  EXPECT_EQ(call("POST", "/__action__/restart/api").status, 401u);
  EXPECT_EQ(call("POST", "/__action__/restart/api", true, "Bearer wrong-horse").status, 401u);
  EXPECT_EQ(call("POST", "/__action__/restart/api", true, "Bearer correct-horse-battery").status, 200u);
  EXPECT_EQ(call("GET", "/kinfra").status, 200u) << "reading on loopback needs no token";
  auto dash = call("GET", "/kinfra").body;
  EXPECT_EQ(dash.find("correct-horse-battery"), std::string::npos) << "the token never appears in a page";
  EXPECT_NE(dash.find("data-token-required=\"true\""), std::string::npos);
}

TEST_F(Fallback, TheTokenlessDashboardShellShowsNothingOfTheConfiguration) {
  load("admin_token: correct-horse-battery\n");
  board->set_config_status([](kinfra::config_status& c) {
    c.errors = {"routes.yaml:3:5: URL \"http://user:hunter2@db:5432\" contains user info"};
  });
  auto shell = call("GET", "/kinfra");
  EXPECT_EQ(shell.status, 200u);
  EXPECT_EQ(shell.body.find("hunter2"), std::string::npos) << "reload errors may hold secrets";
  EXPECT_EQ(shell.body.find("routes.yaml:3:5"), std::string::npos);
  auto full = call("GET", "/kinfra", true, "Bearer correct-horse-battery");
  EXPECT_NE(full.body.find("routes.yaml:3:5"), std::string::npos) << "with the token the banner is there";
  auto refused = call("GET", "/__status__");
  EXPECT_EQ(refused.status, 401u);
  EXPECT_EQ(header(refused, "WWW-Authenticate"), "Bearer realm=\"kinfra\"");
}

TEST_F(Fallback, AReloadAskedWhileAnotherRunsIs409AndDoesNotWait) {
  struct busy_reloader : kinfra::config_control {
    std::vector<bool> waits;
    kinfra::reload_result reload(const std::string&, bool wait) override {
      waits.push_back(wait);
      kinfra::reload_result r;
      r.busy = true;
      r.errors.push_back("another reload of routes.yaml is in progress; try again in a moment");
      return r;
    }
  } reloader;
  responder->set_config_control(&reloader);
  auto res = call("POST", "/__action__/reload");
  EXPECT_EQ(res.status, 409u);
  EXPECT_NE(res.body.find("in progress"), std::string::npos);
  ASSERT_EQ(reloader.waits.size(), 1u);
  EXPECT_FALSE(reloader.waits[0]) << "the dashboard's reload never waits behind another";
}

TEST_F(Fallback, AStoppedServicesPageMakesNoPromise) {
  // Nothing started the services yet: they are stopped, and nothing will start them by itself.
  auto page = unavailable(1);
  EXPECT_EQ(page.status, 503u);
  EXPECT_NE(page.body.find("is stopped"), std::string::npos);
  EXPECT_NE(page.body.find("will not start by itself"), std::string::npos);
  EXPECT_NE(page.body.find("once someone starts it again"), std::string::npos);
  EXPECT_NE(page.body.find("<span class=\"spinner\" hidden>"), std::string::npos) << "no spinner";
  EXPECT_NE(page.body.find("id=\"countdown\" hidden"), std::string::npos) << "no countdown";
  EXPECT_NE(page.body.find("data-stopped=\"true\""), std::string::npos);
  EXPECT_FALSE(page.service_fault) << "kinfra's 503 for a stopped service is not the service's error";
  board->modify(svc(1), [](kinfra::service_status& st) { st.state = kinfra::service_state::starting; });
  auto starting = unavailable(1);
  EXPECT_NE(starting.body.find("is on its way"), std::string::npos);
  EXPECT_NE(starting.body.find("Trying again in"), std::string::npos);
  EXPECT_EQ(starting.body.find("id=\"countdown\" hidden"), std::string::npos);
  EXPECT_TRUE(starting.service_fault);
  board->modify(svc(1), [](kinfra::service_status& st) { st.maintenance.on = true; });
  EXPECT_FALSE(unavailable(1).service_fault) << "maintenance is on purpose too";
}

TEST_F(Fallback, RemoteAccessNeedsTheToken) {
  load("admin_token: correct-horse-battery\nallow_remote: true\nadmin_hosts: [kinfra.example.com]\n");
  EXPECT_EQ(call("GET", "/__status__", false).status, 401u);
  EXPECT_EQ(call("GET", "/__status__", false, "Bearer correct-horse-battery").status, 200u);
  auto shell = call("GET", "/kinfra", false);
  EXPECT_EQ(shell.status, 200u) << "the page itself, without data, so it can ask for the token";
  EXPECT_EQ(shell.body.find("data-service=\"api\""), std::string::npos);
  EXPECT_EQ(call("POST", "/__action__/restart/api", false, "Bearer correct-horse-battery").status, 200u);
}

TEST_F(Fallback, MaintenanceIsSetByAnAction) {
  run(1);
  EXPECT_TRUE(board->accepting_flag(svc(1))->load());
  auto res = call("POST", "/__action__/maintenance/web", true, {}, {},
                  R"({"on": true, "message": "Upgrading <db>", "expected": "30m"})");
  EXPECT_EQ(res.status, 200u);
  EXPECT_FALSE(board->accepting_flag(svc(1))->load()) << "no traffic while in maintenance";
  auto page = unavailable(1, false);
  EXPECT_EQ(page.status, 503u);
  EXPECT_NE(page.body.find("maintenance"), std::string::npos);
  EXPECT_NE(page.body.find("Upgrading &lt;db&gt;"), std::string::npos);
  EXPECT_NE(page.body.find("Expected duration: 30m"), std::string::npos);
  EXPECT_EQ(call("POST", "/__action__/maintenance/web?on=0").status, 200u);
  EXPECT_TRUE(board->accepting_flag(svc(1))->load());
  EXPECT_EQ(call("POST", "/__action__/maintenance/web", true, {}, {}, "not json").status, 400u);
}

TEST_F(Fallback, LoadingPageWhileStartingWithStepsAndNoSecretsForVisitors) {
  kinfra::service_update u;
  u.state = kinfra::service_state::starting;
  u.status_message = "Installing dependencies...";
  u.steps = std::vector<kinfra::step_entry>{{"Port allocation", kinfra::step_status::completed},
                                               {"Installing <packages>", kinfra::step_status::active}};
  board->update_service_status("web", u);
  board->modify(svc(1), [](kinfra::service_status& s) { s.pid = 777; });
  auto page = unavailable(1, /*loopback=*/false);
  EXPECT_EQ(page.status, 503u);
  EXPECT_EQ(header(page, "Retry-After"), "5");
  EXPECT_EQ(header(page, "Cache-Control"), "no-store");
  for (auto text : {"is on its way", "Installing dependencies...", "Port allocation", "Installing &lt;packages&gt;",
                    "class=\"completed\"", "class=\"active\"", "Trying again in 5s", "/__status__?service="})
    EXPECT_NE(page.body.find(text), std::string::npos) << text;
  EXPECT_EQ(page.body.find("777"), std::string::npos) << "no pid for visitors";
  EXPECT_NE(unavailable(1, /*loopback=*/true).body.find("777"), std::string::npos) << "admins see it";
}

TEST_F(Fallback, ErrorPageWhenItCrashedWithTheLastLogLinesForAdmins) {
  board->modify(svc(0), [](kinfra::service_status& s) {
    s.state = kinfra::service_state::error;
    s.status_message = "Process exited with code 1";
  });
  board->append_log(svc(0), {std::chrono::system_clock::now(), {}, kinfra::log_level::error, "EADDRINUSE", 0});
  auto admin = unavailable(0, true);
  EXPECT_EQ(admin.status, 503u);
  EXPECT_EQ(header(admin, "Retry-After"), "7") << "fallback.refresh";
  for (auto text : {"503", "Process exited with code 1", "EADDRINUSE", "Back in a minute", "Trying again in 7s"})
    EXPECT_NE(admin.body.find(text), std::string::npos) << text;
  EXPECT_EQ(unavailable(0, false).body.find("EADDRINUSE"), std::string::npos) << "no logs for visitors";
}

TEST_F(Fallback, ApiClientsGetJson) {
  auto j1 = unavailable(1, false, /*wants_json=*/true);
  EXPECT_EQ(j1.content_type, "application/json");
  auto j = json::parse(j1.body);
  EXPECT_EQ(j["service"], "web");
  EXPECT_EQ(j["state"], "stopped");
  EXPECT_EQ(j["retry_after"], 5);
  auto j2 = unavailable(0, false, false, /*json_route=*/true);
  EXPECT_EQ(j2.content_type, "application/json") << "a route marked json: true";
  EXPECT_EQ(json::parse(j2.body)["message"], "Back in a minute");
}

TEST_F(Fallback, LogsInThreeForms) {
  for (int i = 0; i < 3; ++i)
    board->append_log(svc(0), {std::chrono::system_clock::now(), {}, kinfra::log_level::info, "line " + std::to_string(i), 0});
  auto html = call("GET", "/__logs__/api");
  EXPECT_EQ(html.status, 200u);
  EXPECT_NE(html.body.find("Logs"), std::string::npos);
  EXPECT_NE(html.body.find("?format=json&after="), std::string::npos) << "follows new lines";
  auto text = call("GET", "/__logs__/api?format=text");
  EXPECT_NE(text.body.find(" INFO line 2\n"), std::string::npos);
  auto j = json::parse(call("GET", "/__logs__/api?format=json").body);
  EXPECT_EQ(j["lines"].size(), 3u);
  auto after = json::parse(call("GET", "/__logs__/api?format=json&after=2").body);
  ASSERT_EQ(after["lines"].size(), 1u);
  EXPECT_EQ(after["lines"][0]["message"], "line 2");
  EXPECT_EQ(call("GET", "/__logs__/ghost").status, 404u);
  EXPECT_EQ(call("GET", "/__logs__/../etc/passwd").status, 404u);
  EXPECT_EQ(call("GET", "/__logs__/api?format=xml").status, 400u);
}

TEST_F(Fallback, UnknownAdminPathsAre404) {
  EXPECT_EQ(call("GET", "/__nothing__").status, 404u);
  EXPECT_EQ(call("GET", "/kinfra/extra").status, 404u);
}

TEST_F(Fallback, TemplatesDirOverridesPagesWithVariables) {
  auto dir = std::filesystem::temp_directory_path() / ("kinfra-tpl-r-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "dashboard.html") << "<h1>{{company}}</h1>{{{stats}}}<p>{{title}}</p>";
  load("templates_dir: " + dir.string() + "\ntemplate_variables: { company: \"ACME <Ops>\" }\n");
  auto body = call("GET", "/kinfra").body;
  EXPECT_NE(body.find("<h1>ACME &lt;Ops&gt;</h1>"), std::string::npos) << body;
  EXPECT_NE(body.find("class=\"stat total\""), std::string::npos);
  EXPECT_NE(unavailable(0).body.find("is stopped"), std::string::npos) << "other pages stay embedded";
  std::filesystem::remove_all(dir);
}

TEST_F(Fallback, StatusCanBePushedOverHttpLikeUpdateServiceStatus) {
  auto res = call("POST", "/__action__/status/web", true, {}, {}, R"({
    "status_message": "Building dependencies...", "state": "starting",
    "steps": [{"text": "Port allocation", "status": "completed"}, {"text": "npm install", "status": "active"}],
    "logs": [{"timestamp": "15:00:01", "level": "warn", "message": "Rate limit approaching"}]})");
  EXPECT_EQ(res.status, 200u) << res.body;
  auto j = json::parse(call("GET", "/__status__?service=web").body);
  EXPECT_EQ(j["status_message"], "Building dependencies...");
  EXPECT_EQ(j["state"], "starting");
  EXPECT_EQ(j["steps"][1]["status"], "active");
  EXPECT_EQ(j["services"]["web"]["logs"].back()["level"], "warn");
  EXPECT_NE(unavailable(1, false).body.find("npm install"), std::string::npos) << "and on the loading page";
  EXPECT_EQ(call("POST", "/__action__/status/web", true, {}, {}, R"({"state": "dancing"})").status, 400u);
  EXPECT_EQ(call("POST", "/__action__/status/web", true, {}, {}, R"({"steps": [{"status": "active"}]})").status, 400u);
  EXPECT_EQ(call("POST", "/__action__/status/web", false, {}, {}, "{}").status, 403u) << "an action like the others";
}

TEST_F(Fallback, MetricsFollowTheAdminReadRules) {
  kinfra::metrics_registry metrics(1);
  metrics.route("/api", "api").record(0, 200, std::chrono::milliseconds(3), 10, 20);
  EXPECT_EQ(call("GET", "/metrics").status, 404u) << "no registry: nothing is collected";
  responder->set_metrics(&metrics);
  auto ok = call("GET", "/metrics");
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(ok.body.find("kinfra_http_requests_total{route=\"/api\",service=\"api\",code=\"2xx\"} 1\n"),
            std::string::npos) << ok.body;
  EXPECT_NE(ok.body.find("kinfra_service_state{service=\"web\""), std::string::npos) << "services come from the board";
  EXPECT_EQ(call("GET", "/__metrics__").status, 200u);
  EXPECT_EQ(call("POST", "/metrics").status, 405u);
  EXPECT_EQ(call("GET", "/metrics", false).status, 403u) << "remote clients are refused by default";

  load("admin_token: correct-horse-battery\nallow_remote: true\nadmin_hosts: [kinfra.example.com]\n");
  responder->set_metrics(&metrics);
  EXPECT_EQ(call("GET", "/metrics", false).status, 401u);
  EXPECT_EQ(call("GET", "/metrics", false, "Bearer wrong-horse").status, 401u);
  EXPECT_EQ(call("GET", "/metrics", false, "Bearer correct-horse-battery").status, 200u);
}

TEST_F(Fallback, StatusCarriesEachServicesTrafficWhenMetricsAreOn) {
  kinfra::metrics_registry metrics(1);
  responder->set_metrics(&metrics);
  auto& api = metrics.route("/api", "api");
  for (int i = 0; i < 3; ++i) api.record(0, 200, std::chrono::milliseconds(1), 0, 0);
  api.record(0, 503, std::chrono::milliseconds(1), 0, 0);
  auto doc = json::parse(call("GET", "/__status__").body);
  EXPECT_EQ(doc["services"]["api"]["requests_total"], 4);
  EXPECT_EQ(doc["services"]["api"]["errors_total"], 1);
  EXPECT_TRUE(doc["services"]["api"]["requests_per_second"].is_null()) << "one sample: no rate yet";
  EXPECT_EQ(doc["services"]["web"]["requests_total"], 0);
  auto page = call("GET", "/kinfra").body;
  EXPECT_NE(page.find("<dt>Requests</dt>"), std::string::npos);
  EXPECT_NE(page.find("<dt>Errors</dt>"), std::string::npos);
}

TEST_F(Fallback, TheDashboardHasNoDuplicateElementIds) {
  run(0);
  run(1);
  auto page = call("GET", "/kinfra").body;
  std::map<std::string, int> ids;
  static const std::regex id_attr(R"re( id="([^"]+)")re");
  for (auto it = std::sregex_iterator(page.begin(), page.end(), id_attr); it != std::sregex_iterator(); ++it)
    ++ids[(*it)[1].str()];
  EXPECT_GT(ids.size(), 5u);
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << "id=\"" << id << "\" appears " << n << " times";
  for (auto id : {"routes-table", "listeners-table", "certificates-table"}) EXPECT_EQ(ids[id], 1) << id;
}

TEST_F(Fallback, StatusListsTheRoutesWithTheirOwnTrafficAndTheListenersAndCertificates) {
  kinfra::metrics_registry metrics(1);
  responder->set_metrics(&metrics);
  run(0);
  auto& api = metrics.route("/api", "api");
  for (int i = 0; i < 3; ++i) api.record(0, 200, std::chrono::milliseconds(1), 0, 0);
  api.record(0, 502, std::chrono::milliseconds(1), 0, 0);
  // kinfra's own 503 for a stopped web: the route's traffic, not the service's error.
  metrics.route(kinfra::metrics_registry::fallback_route, "web").record(0, 503, std::chrono::milliseconds(1), 0, 0);
  board->set_config_status([](kinfra::config_status& c) {
    c.listeners = {{"127.0.0.1:9100", kinfra::listener_status::kind::http, 0, {}, {"http/1.1"}},
                   {"127.0.0.1:9080", kinfra::listener_status::kind::redirect, 9443, {"/__status__"}, {"http/1.1"}}};
    kinfra::certificate_status cert;
    cert.listener = "127.0.0.1:9443";
    cert.names = {"localhost", "127.0.0.1"};
    cert.issuer = "kinfra local CA (test)";
    cert.not_after = std::chrono::system_clock::now() + std::chrono::hours(24 * 30 + 1);
    cert.source = kinfra::certificate_status::origin::local_ca;
    c.certificates = {cert};
  });
  auto doc = json::parse(call("GET", "/__status__").body);
  ASSERT_EQ(doc["routes"].size(), 2u) << doc.dump(1);
  EXPECT_EQ(doc["routes"][0]["path"], "/api");
  EXPECT_EQ(doc["routes"][0]["host"], "");
  EXPECT_EQ(doc["routes"][0]["service"], "api");
  EXPECT_EQ(doc["routes"][0]["state"], "running");
  EXPECT_EQ(doc["routes"][0]["strip_prefix"], false);
  EXPECT_EQ(doc["routes"][0]["requests_total"], 4);
  EXPECT_EQ(doc["routes"][0]["errors_total"], 1);
  EXPECT_EQ(doc["routes"][1]["path"], "/");
  EXPECT_EQ(doc["routes"][1]["state"], "stopped");
  EXPECT_EQ(doc["routes"][1]["requests_total"], 0) << "the stopped page is not the route's traffic";
  EXPECT_EQ(doc["services"]["web"]["errors_total"], 0) << "nor the service's error";
  ASSERT_EQ(doc["listeners"].size(), 2u);
  EXPECT_EQ(doc["listeners"][1]["kind"], "redirect");
  EXPECT_EQ(doc["listeners"][1]["https_port"], 9443);
  EXPECT_EQ(doc["listeners"][1]["plain_paths"][0], "/__status__");
  ASSERT_EQ(doc["certificates"].size(), 1u);
  EXPECT_EQ(doc["certificates"][0]["source"], "local CA");
  EXPECT_EQ(doc["certificates"][0]["days_left"], 30);
  EXPECT_EQ(doc["certificates"][0]["names"][1], "127.0.0.1");
}

TEST(DashboardFormat, RatesAreShortAndUnknownIsADash) {
  EXPECT_EQ(kinfra::fallback::format_request_rate(std::nullopt), "–");
  EXPECT_EQ(kinfra::fallback::format_request_rate(2.46), "2.5 req/s");
  EXPECT_EQ(kinfra::fallback::format_request_rate(123.6), "124 req/s");
  EXPECT_EQ(kinfra::fallback::format_error_rate(std::nullopt), "–");
  EXPECT_EQ(kinfra::fallback::format_error_rate(0.005), "0.5%");
  EXPECT_EQ(kinfra::fallback::format_error_rate(0.0), "0.0%");
}
