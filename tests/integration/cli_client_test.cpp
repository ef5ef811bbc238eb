// `kinfra status | restart | stop | start | logs | reload` against a running kinfra, and against none.
#include <gtest/gtest.h>

#include <regex>

#include <thread>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;

std::string service(const std::string& name, std::uint16_t port, const std::vector<std::string>& args = {}) {
  return kt::test_service_entry(name, args, port,
                                "    health: { http: /health, interval: 100ms }\n    restart: { backoff: 100ms }\n");
}

std::string two_services(std::uint16_t api, std::uint16_t web) {
  return "routes:\n  - { path: /api, service: api }\n  - { path: /, service: web }\nservices:\n" +
         service("api", api, {"--print", "api says hello"}) + service("web", web);
}

bool running(std::uint16_t port, const std::string& svc) { return kt::state_of(port, svc) == "running"; }

std::string url(std::uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

std::string pid_of(std::uint16_t port, const std::string& svc) {
  return kt::get_status(port)["services"][svc]["pid"].get<std::string>();
}

}  // namespace

TEST(CliClient, StatusPrintsATableOfEveryService) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "api") && running(k.port(), "web"); }));
  auto r = kt::run_kinfra({"status", "--url", url(k.admin_port())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string head, api, web;
  std::getline(lines, head);
  std::getline(lines, api);
  std::getline(lines, web);
  EXPECT_EQ(head.rfind("NAME", 0), 0u) << r.out;
  for (const char* column : {"STATE", "HEALTH", "PID", "UPTIME", "RESTARTS", "PORT", "REQ/S", "ERRORS", "MESSAGE"})
    EXPECT_NE(head.find(column), std::string::npos) << column;
  // routes.yaml's order, one row each, with the real pid.
  EXPECT_EQ(api.rfind("api ", 0), 0u) << r.out;
  EXPECT_NE(api.find("running"), std::string::npos);
  EXPECT_NE(api.find(pid_of(k.port(), "api")), std::string::npos) << r.out;
  EXPECT_EQ(web.rfind("web ", 0), 0u) << r.out;
  // The columns line up: STATE starts at the same place in every row.
  EXPECT_EQ(head.find("STATE"), api.find("running"));
  EXPECT_EQ(head.find("STATE"), web.find("running"));

  auto j = kt::run_kinfra({"status", "--json", "--url", url(k.port())});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(nlohmann::json::parse(j.out)["services"].size(), 2u);
}

TEST(CliClient, RoutesPrintsTheRoutesListenersAndCertificates) {
  kt::temp_dir state;
  kt::kinfra_process k("listen:\n  - 127.0.0.1:0\n  - address: 127.0.0.1:0\n    tls: { self_signed: true }\n"
                       "admin_listen: 127.0.0.1:0\nstate_dir: " + state.path() + "\n"
                       "routes:\n  - { path: /api, service: api, strip_prefix: true }\n"
                       "  - { host: docs.example, path: /, service: web }\nservices:\n" +
                           service("api", kt::free_port()) + service("web", kt::free_port()),
                       false);
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "api") && running(k.port(), "web"); }));
  auto r = kt::run_kinfra({"routes", "--url", url(k.admin_port())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_GE(lines.size(), 12u) << r.out;
  EXPECT_EQ(lines[0].rfind("ROUTES", 0), 0u) << r.out;
  EXPECT_EQ(lines[1].rfind("HOST", 0), 0u) << r.out;
  // One row per route, in routes.yaml order: host (* for any), path, strip, service, state.
  EXPECT_TRUE(std::regex_search(lines[2], std::regex(R"(^\*\s+/api\s+yes\s+api\s+running)"))) << lines[2];
  EXPECT_TRUE(std::regex_search(lines[3], std::regex(R"(^docs\.example\s+/\s+no\s+web\s+running)"))) << lines[3];
  const auto at = [&](const std::string& needle) { return r.out.find(needle) != std::string::npos; };
  EXPECT_TRUE(at("127.0.0.1:" + std::to_string(k.port(0)) + "  http ")) << r.out;
  EXPECT_TRUE(at("127.0.0.1:" + std::to_string(k.port(1)) + "  https")) << r.out;
  EXPECT_TRUE(at("127.0.0.1:" + std::to_string(k.admin_port()) + "  admin")) << r.out;
  EXPECT_TRUE(at("localhost, 127.0.0.1, ::1")) << r.out;
  EXPECT_TRUE(at("kinfra local CA")) << r.out;

  auto j = kt::run_kinfra({"routes", "--json", "--url", url(k.port())});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["routes"].size(), 2u);
  EXPECT_EQ(doc["listeners"].size(), 3u);
  EXPECT_EQ(doc["certificates"].size(), 1u);
  EXPECT_FALSE(doc.contains("services")) << "only the routes, listeners and certificates";
}

TEST(CliClient, RestartStopAndStartReachTheProcessAndWait) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "api"); }));
  const std::string before = pid_of(k.port(), "api");
  auto restart = kt::run_kinfra({"restart", "api", "--url", url(k.port())});
  ASSERT_EQ(restart.exit_code, 0) << restart.err;
  const std::string after = pid_of(k.port(), "api");
  EXPECT_NE(after, before);
  EXPECT_EQ(restart.out, "api: running (pid " + after + ")\n");
  EXPECT_EQ(kt::state_of(k.port(), "api"), "running") << "it waited until the new process was healthy";

  auto stop = kt::run_kinfra({"stop", "api", "--url", url(k.port())});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(stop.out, "api: stopped\n");
  EXPECT_EQ(kt::state_of(k.port(), "api"), "stopped");
  EXPECT_FALSE(kt::process_alive(std::stoi(after)));

  auto start = kt::run_kinfra({"start", "api", "--url", url(k.port())});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(kt::state_of(k.port(), "api"), "running");

  auto quick = kt::run_kinfra({"restart", "web", "--no-wait", "--url", url(k.port())});
  EXPECT_EQ(quick.exit_code, 0) << quick.err;
  EXPECT_EQ(quick.out, "web: restart requested\n");
}

TEST(CliClient, ErrorsAreClearWithExitCodes) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  auto unknown = kt::run_kinfra({"restart", "nope", "--url", url(k.port())});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("restart nope: unknown service"), std::string::npos) << unknown.err;
  auto bad_url = kt::run_kinfra({"status", "--url", "ftp://x"});
  EXPECT_EQ(bad_url.exit_code, 3);
  EXPECT_NE(bad_url.err.find("--url must look like http://"), std::string::npos) << bad_url.err;
  auto usage = kt::run_kinfra({"restart"});
  EXPECT_EQ(usage.exit_code, 3);
  EXPECT_NE(usage.err.find("service"), std::string::npos) << usage.err;
}

TEST(CliClient, SaysKinfraIsNotRunningWhenNothingAnswers) {
  const auto port = kt::free_port();
  for (const char* cmd : {"status", "logs", "restart", "reload"}) {
    std::vector<std::string> args{cmd};
    if (std::string(cmd) == "logs" || std::string(cmd) == "restart") args.push_back("api");
    args.insert(args.end(), {"--url", url(port)});
    auto r = kt::run_kinfra(args);
    EXPECT_EQ(r.exit_code, 2) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("kinfra is not running"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(port) + ": Connection refused"), std::string::npos) << r.err;
  }
  // Through a routes.yaml: every address it names was tried.
  kt::temp_dir dir;
  const auto admin = kt::free_port(), main = kt::free_port();
  auto path = dir.write("routes.yaml", "listen: 0.0.0.0:" + std::to_string(main) + "\nadmin_listen: 127.0.0.1:" +
                                           std::to_string(admin) + "\nroutes: []\nservices: {}\n");
  auto r = kt::run_kinfra({"status", "-c", path});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(admin)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(main)), std::string::npos) << r.err;
}

TEST(CliClient, FindsKinfraAndItsTokenThroughRoutesYaml) {
  const auto main = kt::free_port(), admin = kt::free_port();
  const std::string yaml = "listen: 127.0.0.1:" + std::to_string(main) + "\nadmin_listen: 127.0.0.1:" +
                           std::to_string(admin) + "\nadmin_token: correct-horse-battery\n" +
                           two_services(kt::free_port(), kt::free_port());
  kt::kinfra_process k(yaml, /*add_listen=*/false);
  const std::string config = k.dir().path() + "/routes.yaml";
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api", "correct-horse-battery") == "running"; }));
  auto status = kt::run_kinfra({"status", "-c", config});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("api "), std::string::npos);
  // The token comes from routes.yaml; without it the action is refused, and the message says how.
  auto with_file = kt::run_kinfra({"restart", "web", "--no-wait", "-c", config});
  EXPECT_EQ(with_file.exit_code, 0) << with_file.err;
  auto without = kt::run_kinfra({"restart", "web", "--no-wait", "-c", "/nonexistent.yaml", "--url", url(admin)});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_NE(without.err.find("--token"), std::string::npos) << without.err;
  auto with_flag = kt::run_kinfra(
      {"restart", "web", "--no-wait", "-c", "/nonexistent.yaml", "--url", url(admin), "--token", "correct-horse-battery"});
  EXPECT_EQ(with_flag.exit_code, 0) << with_flag.err;
}

TEST(CliClient, LogsPrintsTheLastLinesAndFollowsNewOnes) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "api"); }));
  ASSERT_TRUE(kt::wait_until([&] {
    return kt::run_kinfra({"logs", "api", "-n", "0", "--url", url(k.port())}).out.find("api says hello") !=
           std::string::npos;
  }));
  auto all = kt::run_kinfra({"logs", "api", "-n", "0", "--url", url(k.port())});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  auto last = kt::run_kinfra({"logs", "api", "-n", "1", "--url", url(k.port())});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  EXPECT_EQ(std::count(last.out.begin(), last.out.end(), '\n'), 1) << last.out;
  EXPECT_EQ(all.out.substr(all.out.rfind('\n', all.out.size() - 2) + 1), last.out) << "the last line of all";

  // -f: a restart's new output appears while it runs.
  const std::string out = k.dir().path() + "/follow.txt";
  std::thread restarter([&] {
    std::this_thread::sleep_for(700ms);
    kt::http_request(k.port(), "POST", "/__action__/restart/api");
  });
  int code = kt::run_shell("timeout 3 " + kt::kinfra_binary() + " logs api -f -n 0 --url " + url(k.port()) + " > " + out);
  restarter.join();
  EXPECT_EQ(code, 124) << "-f runs until interrupted";
  auto lines = kt::read_lines(out);
  EXPECT_GE(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) { return l.find("api says hello") != std::string::npos; }),
            2)
      << "the line from before and the one from the restarted process";

  auto unknown = kt::run_kinfra({"logs", "nope", "--url", url(k.port())});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("nope"), std::string::npos) << unknown.err;
}

TEST(CliClient, EventsFollowsNewOnesPrintsThemSafelyAndEndsWithKinfra) {
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  ASSERT_TRUE(kt::wait_until([&] { return running(k.port(), "api"); }));
  const std::string out = k.dir().path() + "/events.txt";
  int code = -1;
  std::thread follower([&] {
    code = kt::run_shell("timeout 20 " + kt::kinfra_binary() + " events -f --url " + url(k.port()) + " > " + out + " 2>&1");
  });
  auto has = [&](const std::string& text) {
    for (const auto& l : kt::read_lines(out))
      if (l.find(text) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(kt::wait_until([&] { return has("configuration loaded"); }, 10s)) << "the events so far";
  // A new event shows while it follows; a control sequence in it is shown, not obeyed.
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/maintenance/api?on=true", {},
                             R"({"message": "back soon \u001b]0;owned\u0007"})").status, 200);
  EXPECT_TRUE(kt::wait_until([&] { return has("maintenance on"); }, 10s));
  EXPECT_TRUE(kt::wait_until([&] { return has("back soon \\x1b]0;owned\\x07"); }, 5s));
  std::string text;
  for (const auto& l : kt::read_lines(out)) text += l + "\n";
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  // kinfra stops: the follower says so and ends with an error.
  EXPECT_EQ(k.stop(), 0);
  follower.join();
  EXPECT_EQ(code, 1) << text;
  EXPECT_TRUE(has("connection to kinfra was lost"));
}

TEST(CliClient, ReloadAppliesOrPrintsTheErrors) {
  kt::kinfra_process k("routes:\n  - { path: /, service: a }\nservices:\n  a: { url: http://127.0.0.1:1, health: off }\n");
  const std::string head = "listen: 127.0.0.1:" + std::to_string(k.port()) + "\nadmin_listen: 127.0.0.1:" +
                           std::to_string(k.admin_port()) + "\n";
  k.dir().write("routes.yaml", head + "routes:\n  - { path: /, service: ghost }\nservices: {}\n");
  auto bad = kt::run_kinfra({"reload", "--url", url(k.port())});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("routes.yaml:4:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("ghost"), std::string::npos) << bad.err;
  k.dir().write("routes.yaml", head + "routes:\n  - { path: /b, service: b }\nservices:\n  b: { url: http://127.0.0.1:1, health: off }\n");
  auto good = kt::run_kinfra({"reload", "--url", url(k.port())});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_TRUE(good.out == "routes.yaml reloaded\n" || good.out == "routes.yaml unchanged\n") << good.out;
  // (The file watcher may have applied the save first: then the CLI's reload finds it unchanged.)
  auto status = kt::get_status(k.port());
  EXPECT_TRUE(status["config"]["loaded_by"] == "CLI" || status["config"]["loaded_by"] == "file change")
      << status["config"];
  EXPECT_EQ(kt::run_kinfra({"reload", "--url", url(k.port())}).exit_code, 0);
  EXPECT_EQ(kt::get_status(k.port())["config"]["loaded_by"], "CLI") << "the dashboard's label is for the dashboard";
}

TEST(CliClient, SkipsAnAddressWhereSomethingElseAnswers) {
  kt::test_upstream other;  // not kinfra: no `Server: kinfra`
  kt::kinfra_process k(two_services(kt::free_port(), kt::free_port()));
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "listen: 127.0.0.1:" + std::to_string(k.port()) + "\nadmin_listen: 127.0.0.1:" +
                                           std::to_string(other.port()) + "\nroutes: []\nservices: {}\n");
  auto r = kt::run_kinfra({"status", "-c", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("api "), std::string::npos) << r.out;
  auto only_other = kt::run_kinfra({"status", "--url", url(other.port())});
  EXPECT_EQ(only_other.exit_code, 2);
  EXPECT_NE(only_other.err.find("it is not kinfra"), std::string::npos) << only_other.err;
}
