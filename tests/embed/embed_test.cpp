// kinfra::service_manager, the public API, used the way a host program uses it, checked through
// real HTTP on 127.0.0.1 and real processes.
#include <gtest/gtest.h>

#include <kinfra/kinfra.hpp>

#include <signal.h>

#include <atomic>
#include <thread>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;

/** Options for a test: ephemeral ports, one worker, no signal handling (gtest owns the process). */
kinfra::options test_options() {
  kinfra::options o;
  o.listen = {"127.0.0.1:0"};
  o.admin_listen = "127.0.0.1:0";
  o.workers = 1;
  o.handle_signals = false;
  return o;
}

std::uint16_t port_of(const std::string& address) {
  return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

kinfra::service test_service(const std::string& name, std::uint16_t port, bool autostart = true) {
  return {.name = name,
          .command = {kt::test_service_binary(), "--name", name},
          .port = port,
          .health_path = "/health",
          .autostart = autostart};
}

std::optional<kinfra::service_info> info(const kinfra::service_manager& m, const std::string& name) {
  for (auto& s : m.status())
    if (s.name == name) return s;
  return std::nullopt;
}

bool in_state(const kinfra::service_manager& m, const std::string& name, kinfra::state st) {
  auto i = info(m, name);
  return i && i->state == st;
}

}  // namespace

TEST(Embed, TheDashboardIsThereWithNoConfiguration) {
  kinfra::service_manager m(test_options());
  m.start();
  ASSERT_EQ(m.listen_addresses().size(), 1u);
  ASSERT_EQ(m.admin_addresses().size(), 1u);
  for (const auto& a : {m.listen_addresses()[0], m.admin_addresses()[0]}) {
    auto page = kt::http_get(port_of(a), "/kinfra");
    EXPECT_EQ(page.status, 200) << a;
    EXPECT_NE(page.body.find("KInfra Dashboard"), std::string::npos);
  }
  auto status = kt::get_status(port_of(m.listen_addresses()[0]));
  EXPECT_TRUE(status["services"].empty()) << status.dump();
  EXPECT_EQ(kt::http_get(port_of(m.listen_addresses()[0]), "/anything").status, 404);
  m.shutdown();
  EXPECT_FALSE(m.running());
}

TEST(Embed, PushedStatusShowsInStatusAndOnTheLoadingPage) {
  kinfra::service_manager m(test_options());
  auto svc = test_service("builder", kt::free_port(), /*autostart=*/false);
  svc.path_prefix = "/app";
  m.add_service(svc);
  m.start();
  const auto port = port_of(m.listen_addresses()[0]);
  EXPECT_FALSE(m.update_service_status("nope", {.status_message = "x"}));
  ASSERT_TRUE(m.update_service_status(
      "builder", {.status_message = "Installing dependencies...",
                  .state = kinfra::state::starting,
                  .steps = {{"Port allocation", kinfra::step::completed}, {"Installing packages", kinfra::step::active}},
                  .logs = {{"15:00:01", "info", "Started"}, {"15:00:02", "warn", "Rate limit approaching"}}}));
  auto st = kt::get_status(port, "builder");
  EXPECT_EQ(st["status_message"], "Installing dependencies...");
  EXPECT_EQ(st["state"], "starting");
  const auto& s = st["services"]["builder"];
  ASSERT_EQ(s["steps"].size(), 2u);
  EXPECT_EQ(s["steps"][1]["text"], "Installing packages");
  EXPECT_EQ(s["steps"][1]["status"], "active");
  ASSERT_GE(s["logs"].size(), 2u);
  EXPECT_EQ(s["logs"][1]["timestamp"], "15:00:02");
  EXPECT_EQ(s["logs"][1]["level"], "warn");
  // A visitor of its route gets the loading page with the same progress.
  auto page = kt::http_get(port, "/app/index.html");
  EXPECT_EQ(page.status, 503);
  EXPECT_NE(page.body.find("Installing dependencies..."), std::string::npos);
  EXPECT_NE(page.body.find("Installing packages"), std::string::npos);
  // The typed view says the same.
  auto i = info(m, "builder");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->state, kinfra::state::starting);
  ASSERT_EQ(i->steps.size(), 2u);
  EXPECT_EQ(i->steps[0].status, kinfra::step::completed);
  EXPECT_NE(m.status_json("builder").find("\"Installing dependencies...\""), std::string::npos);

  // Then it is started through the API, and the route reaches it.
  ASSERT_TRUE(m.start("builder"));
  ASSERT_TRUE(kt::wait_until([&] { return in_state(m, "builder", kinfra::state::running); }, 15s));
  EXPECT_EQ(kt::http_get(port, "/app/hello").status, 200);
}

TEST(Embed, RestartStopAndStartReachTheProcesses) {
  kinfra::service_manager m(test_options());
  m.add_service(test_service("api", kt::free_port()));
  m.start();
  ASSERT_TRUE(kt::wait_until([&] { return in_state(m, "api", kinfra::state::running); }, 15s));
  const int pid = *info(m, "api")->pid;
  EXPECT_TRUE(kt::process_alive(pid));
  ASSERT_TRUE(m.restart("api"));
  ASSERT_TRUE(kt::wait_until([&] {
    auto i = info(m, "api");
    return i && i->state == kinfra::state::running && i->pid && *i->pid != pid;
  }, 15s));
  EXPECT_FALSE(kt::process_alive(pid));
  EXPECT_EQ(info(m, "api")->restarts, 1u);
  const int second = *info(m, "api")->pid;
  ASSERT_TRUE(m.stop("api"));
  ASSERT_TRUE(kt::wait_until([&] { return in_state(m, "api", kinfra::state::stopped); }, 15s));
  EXPECT_TRUE(kt::wait_until([&] { return !kt::process_alive(second); }, 5s));
  ASSERT_TRUE(m.start("api"));
  ASSERT_TRUE(kt::wait_until([&] { return in_state(m, "api", kinfra::state::running); }, 15s));
  EXPECT_FALSE(m.restart("nope"));
  const int last = *info(m, "api")->pid;
  m.shutdown();
  EXPECT_FALSE(kt::process_alive(last)) << "shutdown stops the services";
}

TEST(Embed, RestartOfAPortAutoServiceIsStartFirstAndRollsItsInstances) {
  kinfra::service_manager m(test_options());
  m.add_service({.name = "api",
                 .command = {kt::test_service_binary(), "--name", "api"},
                 .path_prefix = "/",
                 .health_path = "/health",
                 .port_auto = true,
                 .instances = 2});
  m.start();
  auto both_running = [&] {
    auto i = info(m, "api");
    return i && i->instances.size() == 2 && i->instances[0].state == kinfra::state::running &&
           i->instances[1].state == kinfra::state::running;
  };
  ASSERT_TRUE(kt::wait_until(both_running, 15s));
  const auto before = info(m, "api")->instances;
  ASSERT_TRUE(before[0].port && before[1].port);
  EXPECT_NE(*before[0].port, *before[1].port);
  ASSERT_TRUE(m.restart("api"));
  ASSERT_TRUE(kt::wait_until([&] { return info(m, "api")->last_restart == "done"; }, 15s))
      << info(m, "api")->last_restart_message;
  ASSERT_TRUE(both_running());
  const auto after = info(m, "api")->instances;
  for (std::size_t n = 0; n < 2; ++n) {
    EXPECT_NE(after[n].pid, before[n].pid);
    EXPECT_FALSE(kt::process_alive(*before[n].pid));
  }
  EXPECT_EQ(kt::http_get(port_of(m.listen_addresses().at(0)), "/").status, 200);
  m.shutdown();
}

TEST(Embed, ServicesAndRoutesAddedWhileRunningAreUsedAtOnce) {
  kt::test_upstream upstream;
  kinfra::service_manager m(test_options());
  m.start();
  const auto port = port_of(m.listen_addresses()[0]);
  EXPECT_EQ(kt::http_get(port, "/ext/x").status, 404);
  m.add_service({.name = "ext", .url = upstream.url(), .path_prefix = "/ext"});
  // Known at once (its loading page), routed to once its first check passes.
  ASSERT_TRUE(kt::wait_until([&] { return in_state(m, "ext", kinfra::state::running); }, 10s));
  auto res = kt::http_get(port, "/ext/x");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(kt::parse_echo(res.body).target, "/ext/x");
  m.add_route({.path = "/other", .service = "ext", .strip_prefix = true});
  EXPECT_EQ(kt::parse_echo(kt::http_get(port, "/other/y").body).target, "/y");

  // A bad addition is refused with the reason, and what runs stays as it was.
  try {
    m.add_route({.path = "/ghost", .service = "ghost"});
    FAIL() << "expected kinfra::error";
  } catch (const kinfra::error& e) {
    ASSERT_FALSE(e.problems().empty());
    EXPECT_NE(e.problems()[0].find("unknown service 'ghost'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(m.add_service({.name = "ext", .url = upstream.url()}), kinfra::error) << "a second 'ext'";
  EXPECT_EQ(kt::http_get(port, "/ext/x").status, 200);
  EXPECT_EQ(kt::http_get(port, "/ghost").status, 404);
  EXPECT_TRUE(kt::get_status(port)["config"]["errors"].empty()) << "a refused addition is not a broken config";
}

TEST(Embed, ABadConfigurationIsRefusedAtStartWithEveryProblem) {
  kinfra::service_manager m(test_options());
  m.add_route({.path = "nope", .service = "a"});
  try {
    m.start();
    FAIL() << "expected kinfra::error";
  } catch (const kinfra::error& e) {
    EXPECT_GE(e.problems().size(), 2u) << e.what();  // a bad path and an unknown service
  }
  EXPECT_FALSE(m.running());
}

TEST(Embed, AServiceProtocolReachesTheConfiguration) {
  kinfra::service_manager m(test_options());
  // HTTP/2-only with an HTTP/1.1 health check, and an unknown protocol: both refused, by name.
  m.add_service({.name = "grpc", .url = "http://127.0.0.1:1", .health_path = "/health", .protocol = "h2c"});
  m.add_service({.name = "odd", .url = "http://127.0.0.1:2", .protocol = "spdy"});
  try {
    m.start();
    FAIL() << "expected kinfra::error";
  } catch (const kinfra::error& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("speaks HTTP/2 only"), std::string::npos) << all;
    EXPECT_NE(all.find("protocol must be"), std::string::npos) << all;
  }
}

TEST(Embed, ActionsCanBeTurnedOffAndATokenSet) {
  auto o = test_options();
  o.actions = false;
  kinfra::service_manager off(o);
  off.add_service(test_service("api", kt::free_port()));
  off.start();
  const auto port = port_of(off.listen_addresses()[0]);
  EXPECT_NE(kt::http_get(port, "/kinfra").body.find("Not available"), std::string::npos);
  EXPECT_EQ(kt::http_request(port, "POST", "/__action__/restart/api").status, 403);
  off.shutdown();

  auto t = test_options();
  t.admin_token = "correct-horse-battery";
  kinfra::service_manager guarded(t);
  guarded.add_service(test_service("api", kt::free_port()));
  guarded.start();
  const auto gp = port_of(guarded.listen_addresses()[0]);
  EXPECT_EQ(kt::http_request(gp, "POST", "/__action__/restart/api").status, 401);
  kt::header_list h;
  h.add("Authorization", "Bearer correct-horse-battery");
  EXPECT_EQ(kt::http_request(gp, "POST", "/__action__/restart/api", h).status, 200);
}

TEST(Embed, FromFileLoadsRoutesYamlAndTakesAdditions) {
  kt::test_upstream upstream;
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "listen: 127.0.0.1:0\nadmin_listen: off\nworkers: 1\naccess_log: off\n"
                                       "routes:\n  - { path: /a, service: a }\nservices:\n  a: { url: " +
                                           upstream.url() + ", health: off }\n");
  auto o = kinfra::options::from_file(path);
  o.handle_signals = false;
  kinfra::service_manager m(o);
  m.add_route({.path = "/b", .service = "a", .strip_prefix = true});
  m.start();
  EXPECT_TRUE(m.admin_addresses().empty());
  const auto port = port_of(m.listen_addresses()[0]);
  EXPECT_EQ(kt::parse_echo(kt::http_get(port, "/a/1").body).target, "/a/1");
  EXPECT_EQ(kt::parse_echo(kt::http_get(port, "/b/2").body).target, "/2");

  auto bad = dir.write("bad.yaml", "routes:\n  - { path: /, service: ghost }\n");
  try {
    (void)kinfra::options::from_file(bad);
    FAIL() << "expected kinfra::error";
  } catch (const kinfra::error& e) {
    EXPECT_NE(e.problems().at(0).find(bad + ":2:"), std::string::npos) << e.what();
  }
}

TEST(Embed, EveryCallIsSafeFromManyThreads) {
  kt::test_upstream upstream;
  kinfra::service_manager m(test_options());
  m.add_service({.name = "ext", .url = upstream.url(), .path_prefix = "/", .health_path = ""});
  m.add_service(test_service("api", kt::free_port()));
  m.start();
  const auto port = port_of(m.listen_addresses()[0]);
  ASSERT_TRUE(kt::wait_until([&] { return in_state(m, "ext", kinfra::state::running); }, 10s));
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int i = 0; !done; ++i)
      m.update_service_status("ext", {.status_message = "tick " + std::to_string(i), .logs = {{"", "info", "tick"}}});
  });
  threads.emplace_back([&] {
    while (!done) {
      (void)m.status();
      (void)m.status_json();
    }
  });
  threads.emplace_back([&] {
    while (!done)
      if (kt::http_get(port, "/x").status != 200) ++failures;
  });
  threads.emplace_back([&] {
    for (int i = 0; i < 3; ++i) {
      m.add_route({.path = "/r" + std::to_string(i), .service = "ext"});
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(800ms);
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(kt::http_get(port, "/r2/z").status, 200);
}

TEST(Embed, RunReturnsWhenShutdownIsCalledFromAnotherThread) {
  kinfra::service_manager m(test_options());
  m.add_service(test_service("api", kt::free_port()));
  std::thread runner([&] { m.run(); });
  ASSERT_TRUE(kt::wait_until([&] { return in_state(m, "api", kinfra::state::running); }, 15s));
  const int pid = *info(m, "api")->pid;
  m.shutdown();
  runner.join();
  EXPECT_FALSE(kt::process_alive(pid));
  EXPECT_FALSE(m.running());
  m.shutdown();  // idempotent
}

TEST(Embed, TemplatesComeFromTheTemplatesDirectory) {
  kt::temp_dir dir;
  dir.write("loading.html", "<!doctype html><title>custom</title><p>Our own page for {{service}}</p>\n");
  auto o = test_options();
  o.templates_dir = dir.path();
  kinfra::service_manager m(o);
  auto svc = test_service("builder", kt::free_port(), /*autostart=*/false);
  svc.path_prefix = "/app";
  m.add_service(svc);
  m.start();
  auto page = kt::http_get(port_of(m.listen_addresses()[0]), "/app");
  EXPECT_EQ(page.status, 503);
  EXPECT_NE(page.body.find("Our own page for builder"), std::string::npos) << page.body.substr(0, 300);
}

TEST(Embed, AdminHostsAndAllowRemoteComeFromTheOptions) {
  auto o = test_options();
  o.allow_remote = true;
  o.admin_token = "correct-horse-battery";
  EXPECT_THROW(kinfra::service_manager(o).start(), kinfra::error) << "allow_remote needs admin_hosts";
  o.admin_hosts = {"kinfra.test"};
  kinfra::service_manager m(o);
  m.add_service(test_service("api", kt::free_port()));
  m.start();
  const auto port = port_of(m.listen_addresses()[0]);
  kt::header_list named;
  named.add("Host", "kinfra.test");
  named.add("Authorization", "Bearer correct-horse-battery");
  EXPECT_EQ(kt::http_get(port, "/__status__", named).status, 200);
  kt::header_list foreign;
  foreign.add("Host", "attacker.example");
  foreign.add("Authorization", "Bearer correct-horse-battery");
  EXPECT_EQ(kt::http_get(port, "/__status__", foreign).status, 421) << "not even with the token";
  m.shutdown();
}
