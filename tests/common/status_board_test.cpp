#include "common/status_board.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "common/config_loader.hpp"

namespace {

std::shared_ptr<const kinfra::config> two_services() {
  auto r = kinfra::load_config_string(R"(
services:
  api: { command: "sleep 1", port: 8000, log_lines: 20 }
  db: { url: "tcp://127.0.0.1:5432" }
)",
                                      "/tmp/routes.yaml");
  if (!r.ok()) throw std::runtime_error(r.errors.at(0).message);
  return r.cfg;
}

kinfra::log_entry line(std::string msg, kinfra::log_level level = kinfra::log_level::info) {
  return {std::chrono::system_clock::now(), {}, level, std::move(msg), 0};
}

}  // namespace

TEST(StatusBoard, StartsWithOneEntryPerServiceInFileOrder) {
  auto cfg = two_services();
  kinfra::status_board board(*cfg);
  auto snap = board.snapshot();
  ASSERT_EQ(snap->services.size(), 2u);
  EXPECT_EQ(snap->services[0].name, "api");
  EXPECT_TRUE(snap->services[0].managed);
  EXPECT_EQ(snap->services[0].state, kinfra::service_state::stopped);
  EXPECT_EQ(snap->services[0].port, 8000);
  EXPECT_FALSE(snap->services[1].managed);
  EXPECT_EQ(snap->services[1].state, kinfra::service_state::starting) << "a watched service is being checked";
  EXPECT_EQ(snap->services[1].port, 5432);
  EXPECT_FALSE(board.accepting_flag("api")->load());
  EXPECT_EQ(board.index_of("db"), 1);
  EXPECT_EQ(board.index_of("nope"), -1);
}

TEST(StatusBoard, AcceptsTrafficOnlyWhileRunning) {
  auto cfg = two_services();
  kinfra::status_board board(*cfg);
  board.modify("api", [](kinfra::service_status& s) { s.state = kinfra::service_state::running; });
  EXPECT_TRUE(board.accepting_flag("api")->load());
  for (auto st : {kinfra::service_state::starting, kinfra::service_state::unhealthy, kinfra::service_state::error,
                  kinfra::service_state::stopping, kinfra::service_state::stopped}) {
    board.modify("api", [st](kinfra::service_status& s) { s.state = st; });
    EXPECT_FALSE(board.accepting_flag("api")->load()) << to_string(st);
  }
}

TEST(StatusBoard, SnapshotsNeverChangeOnceTaken) {
  auto cfg = two_services();
  kinfra::status_board board(*cfg);
  auto before = board.snapshot();
  board.modify("api", [](kinfra::service_status& s) { s.status_message = "changed"; });
  EXPECT_EQ(before->services[0].status_message, "Not started");
  EXPECT_EQ(board.snapshot()->services[0].status_message, "changed");
  EXPECT_GT(board.snapshot()->version, before->version);
}

TEST(StatusBoard, KeepsABoundedRingOfLogLines) {
  auto cfg = two_services();
  kinfra::status_board board(*cfg);
  for (int i = 0; i < 50; ++i) board.append_log("api", line("line " + std::to_string(i)));
  auto all = board.logs("api", SIZE_MAX);
  ASSERT_EQ(all.size(), 20u) << "log_lines: 20";
  EXPECT_EQ(all.front().message, "line 30");
  EXPECT_EQ(all.back().message, "line 49");
  EXPECT_EQ(all.back().seq, 50u);
  auto last3 = board.logs("api", 3);
  ASSERT_EQ(last3.size(), 3u);
  EXPECT_EQ(last3[0].message, "line 47");
  auto after = board.logs("api", SIZE_MAX, 48);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].message, "line 48");
  EXPECT_TRUE(board.logs("db", 10).empty());
}

TEST(StatusBoard, UpdateServiceStatusIsThePublicApi) {
  auto cfg = two_services();
  kinfra::status_board board(*cfg);
  kinfra::service_update u;
  u.status_message = "Installing dependencies...";
  u.state = kinfra::service_state::starting;
  u.steps = std::vector<kinfra::step_entry>{{"Port allocation", kinfra::step_status::completed},
                                               {"Installing packages", kinfra::step_status::active},
                                               {"Starting server", kinfra::step_status::pending}};
  u.logs = {{{}, "15:00:01", kinfra::log_level::info, "npm install", 0},
            {{}, "15:00:02", kinfra::log_level::warn, "Rate limit approaching", 0}};
  ASSERT_TRUE(board.update_service_status("api", u));
  auto s = board.snapshot()->services[0];
  EXPECT_EQ(s.status_message, "Installing dependencies...");
  EXPECT_EQ(s.state, kinfra::service_state::starting);
  ASSERT_EQ(s.steps.size(), 3u);
  EXPECT_EQ(s.steps[1].status, kinfra::step_status::active);
  auto logs = board.logs("api", 10);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[1].timestamp, "15:00:02");
  EXPECT_EQ(logs[1].level, kinfra::log_level::warn);
  EXPECT_FALSE(board.update_service_status("ghost", u));
  // Only what is given changes.
  kinfra::service_update only_message;
  only_message.status_message = "Still installing";
  board.update_service_status("api", only_message);
  EXPECT_EQ(board.snapshot()->services[0].steps.size(), 3u);
}

TEST(StatusBoard, ReportsRefusedConnectionsToTheSupervisor) {
  auto cfg = two_services();
  kinfra::status_board board(*cfg);
  std::string reported;
  board.on_refused([&](const std::string& name, std::uint16_t) { reported = name; });
  board.report_refused("db");
  EXPECT_EQ(reported, "db");
  board.on_refused(nullptr);
  board.report_refused("api");  // no handler: nothing happens, nothing crashes
}

TEST(StatusBoard, ReadersAndWritersOnManyThreads) {
  auto cfg = two_services();
  kinfra::status_board board(*cfg);
  std::atomic<bool> stop{false}, reading{false};
  std::thread writer([&] {
    while (!reading) std::this_thread::yield();  // overlap with the reader for sure
    for (int i = 0; i < 2000; ++i) {
      board.modify("api", [i](kinfra::service_status& s) {
        s.state = i % 2 ? kinfra::service_state::running : kinfra::service_state::unhealthy;
        s.status_message = "m" + std::to_string(i);
      });
      board.append_log("api", line("l" + std::to_string(i)));
    }
    stop = true;
  });
  std::size_t reads = 0;
  do {
    auto snap = board.snapshot();
    EXPECT_EQ(snap->services.size(), 2u);
    EXPECT_LE(board.logs("api", 5).size(), 5u);
    (void)board.accepting_flag("api")->load();
    ++reads;
    reading = true;
  } while (!stop);
  writer.join();
  EXPECT_EQ(board.snapshot()->services[0].status_message, "m1999");
}

TEST(StatusBoard, StatesAndLevelsHaveStableNames) {
  EXPECT_EQ(kinfra::to_string(kinfra::service_state::unhealthy), "unhealthy");
  EXPECT_EQ(kinfra::parse_service_state("stopping"), kinfra::service_state::stopping);
  EXPECT_EQ(kinfra::parse_log_level("WARNING"), kinfra::log_level::warn);
  EXPECT_EQ(kinfra::parse_step_status("completed"), kinfra::step_status::completed);
  EXPECT_FALSE(kinfra::parse_log_level("loud"));
}
