#include "common/events.hpp"

#include <gtest/gtest.h>

#include <csignal>

#include "common/config_loader.hpp"
#include "common/status_board.hpp"

namespace {

using kinfra::event_kind;
using kinfra::service_state;

std::shared_ptr<const kinfra::config> load(const char* yaml) {
  auto r = kinfra::load_config_string(yaml, "/tmp/routes.yaml");
  if (!r.ok()) throw std::runtime_error(r.errors.at(0).message);
  return r.cfg;
}

std::shared_ptr<const kinfra::config> one_service() { return load("services:\n  api: { command: \"sleep 1\", port: 8000 }\n"); }

std::vector<kinfra::event> all(const kinfra::status_board& board, std::string_view service = {}) {
  return board.events().since(0, 1000, service);
}

std::vector<event_kind> kinds(const std::vector<kinfra::event>& events) {
  std::vector<event_kind> out;
  for (const auto& e : events) out.push_back(e.kind);
  return out;
}

kinfra::event ev(std::string service, std::string message) {
  kinfra::event e;
  e.service = std::move(service);
  e.message = std::move(message);
  return e;
}

}  // namespace

TEST(EventLog, KeepsTheLastEventsInOrderWithIncreasingSeq) {
  kinfra::event_log log(3);
  for (int i = 1; i <= 5; ++i) log.record(ev("api", "e" + std::to_string(i)));
  EXPECT_EQ(log.last_seq(), 5u);
  EXPECT_EQ(log.first_seq(), 3u) << "the two oldest were dropped";
  auto events = log.since(0, 100);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].message, "e3");
  EXPECT_EQ(events[2].message, "e5");
  EXPECT_EQ(events[2].seq, 5u);
  EXPECT_NE(events[0].at.time_since_epoch().count(), 0) << "the time is set when not given";
  auto after = log.since(4, 100);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].message, "e5");
  auto latest = log.since(0, 2);
  ASSERT_EQ(latest.size(), 2u) << "at most `max`, the latest ones";
  EXPECT_EQ(latest[0].message, "e4");
}

TEST(EventLog, FiltersByService) {
  kinfra::event_log log;
  log.record(ev("api", "a"));
  log.record(ev("web", "w"));
  log.record(ev("", "kinfra"));
  auto events = log.since(0, 10, "web");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].message, "w");
}

TEST(EventLog, ACrashBecomesExitStateRestartAndStartInOrder) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  const auto base = board.events().last_seq();
  board.modify("api", [](kinfra::service_status& s) {
    s.state = service_state::starting;
    s.pid = 100;
  });
  board.modify("api", [](kinfra::service_status& s) {
    s.state = service_state::running;
    s.health = "Healthy";
  });
  board.modify("api", [](kinfra::service_status& s) {
    s.pid.reset();
    s.last_exit_code = 3;
    s.state = service_state::error;
    s.status_message = "exited with code 3";
  });
  board.modify("api", [](kinfra::service_status& s) {
    s.restarts = 1;
    s.pid = 101;
    s.state = service_state::starting;
  });
  auto events = board.events().since(base, 100, "api");
  ASSERT_EQ(kinds(events), (std::vector<event_kind>{event_kind::started, event_kind::state, event_kind::state,
                                                    event_kind::exited, event_kind::state, event_kind::started,
                                                    event_kind::state}));
  EXPECT_EQ(events[0].message, "process started (pid 100)");
  EXPECT_EQ(events[2].message, "starting → running") << "health changed with the state: one event, the state's";
  EXPECT_EQ(events[4].message, "running → error");
  EXPECT_EQ(events[3].message, "process 100 exited with code 3");
  EXPECT_EQ(events[3].level, kinfra::event_level::error);
  EXPECT_EQ(events[4].detail, "exited with code 3");
  // (A restart and its cause are recorded by the supervisor, which knows who asked: see EventsApi.)
}

TEST(EventLog, AStopBySignalIsNotAFailureButAKillIsNamed) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  board.modify("api", [](kinfra::service_status& s) {
    s.state = service_state::stopping;
    s.pid = 7;
  });
  const auto base = board.events().last_seq();
  board.modify("api", [](kinfra::service_status& s) {
    s.pid.reset();
    s.last_signal = SIGTERM;
    s.state = service_state::stopped;
  });
  auto events = board.events().since(base, 100);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].kind, event_kind::exited);
  EXPECT_EQ(events[0].message, "process 7 killed by SIGTERM");
  EXPECT_EQ(events[0].level, kinfra::event_level::info) << "it was asked to stop";
}

TEST(EventLog, HealthMaintenanceAndConfigurationChanges) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  board.modify("api", [](kinfra::service_status& s) {
    s.state = service_state::running;
    s.health = "Healthy";
  });
  const auto base = board.events().last_seq();
  board.modify("api", [](kinfra::service_status& s) {
    s.health = "Unhealthy";
    s.health_detail = "HTTP 503";
  });
  kinfra::maintenance_info on;
  on.on = true;
  on.message = "upgrading";
  on.expected = "30m";
  board.set_maintenance("api", on);
  board.set_maintenance("api", {});
  board.set_config_status([](kinfra::config_status& c) {
    c.loaded_at = std::chrono::system_clock::now();
    c.loaded_by = "dashboard";
    c.reloads = 1;
  });
  board.set_config_status([](kinfra::config_status& c) {
    c.failed_at = std::chrono::system_clock::now();
    c.errors = {"routes.yaml:3:5: unknown key", "routes.yaml:9:1: bad port"};
  });
  auto events = board.events().since(base, 100);
  ASSERT_EQ(kinds(events), (std::vector<event_kind>{event_kind::health, event_kind::maintenance,
                                                    event_kind::maintenance, event_kind::config_loaded,
                                                    event_kind::config_refused}));
  EXPECT_EQ(events[0].message, "health: Healthy → Unhealthy");
  EXPECT_EQ(events[0].detail, "HTTP 503");
  EXPECT_EQ(events[1].message, "maintenance on (expected: 30m)");
  EXPECT_EQ(events[1].detail, "upgrading");
  EXPECT_EQ(events[2].message, "maintenance off");
  EXPECT_EQ(events[3].message, "configuration reloaded (dashboard)");
  EXPECT_EQ(events[3].service, "") << "kinfra's own";
  EXPECT_EQ(events[4].detail, "routes.yaml:3:5: unknown key\nroutes.yaml:9:1: bad port");
  EXPECT_EQ(events[4].level, kinfra::event_level::error);
}

TEST(EventLog, ServicesAddedAndRemovedByAReload) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  board.reconfigure(*load("services:\n  web: { command: \"sleep 1\", port: 8001 }\n"));
  auto events = all(board);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].message, "kinfra started: configuration loaded (start-up)");
  events.erase(events.begin());
  ASSERT_EQ(kinds(events), (std::vector<event_kind>{event_kind::service_added, event_kind::service_removed}));
  EXPECT_EQ(events[0].service, "web");
  EXPECT_EQ(events[1].service, "api");
}

TEST(EventLog, InstancesOfOneServiceAreNamed) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  board.modify("api", [](kinfra::service_status& s) {
    s.instances.resize(2);
    s.instances[0].uid = 1;
    s.instances[1].uid = 2;
    s.instances[1].index = 1;
    s.instances[0].pid = 10;
    s.instances[1].pid = 11;
  });
  const auto base = board.events().last_seq();
  board.modify("api", [](kinfra::service_status& s) {
    s.instances[1].pid.reset();
    s.instances[1].last_signal = SIGKILL;
  });
  auto events = board.events().since(base, 100);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].message, "instance 1: process 11 killed by SIGKILL");
  EXPECT_EQ(events[0].level, kinfra::event_level::error);
}

TEST(EventLog, CertificatesLoadedReplacedAndObtained) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  const auto base = board.events().last_seq();
  kinfra::certificate_status c;
  c.listener = "127.0.0.1:9443";
  c.names = {"localhost", "127.0.0.1"};
  c.issuer = "kinfra local CA";
  c.fingerprint = "AA";
  c.not_after = std::chrono::system_clock::from_time_t(1893456000);  // 2030-01-01
  board.set_config_status([&](kinfra::config_status& s) { s.certificates = {c}; });
  board.set_config_status([&](kinfra::config_status& s) { s.certificates = {c}; });  // (no change: no event)
  c.fingerprint = "BB";
  board.set_config_status([&](kinfra::config_status& s) {
    s.certificates = {c};
    s.acme["example.com"].obtained_total = 1;
  });
  auto events = board.events().since(base, 100);
  ASSERT_EQ(kinds(events), (std::vector<event_kind>{event_kind::certificate, event_kind::certificate,
                                                    event_kind::certificate}));
  EXPECT_EQ(events[0].message, "certificate loaded on 127.0.0.1:9443: localhost, 127.0.0.1");
  EXPECT_EQ(events[0].detail, "issuer kinfra local CA, valid until 2030-01-01, file");
  EXPECT_EQ(events[1].message, "certificate replaced on 127.0.0.1:9443: localhost, 127.0.0.1");
  EXPECT_EQ(events[2].message, "certificate obtained from the ACME CA for example.com");
}
