#include "supervisor/restart_policy.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using kinfra::restart_config;
using kinfra::supervisor::decide_restart;
using kinfra::supervisor::exit_info;

namespace {
restart_config policy(restart_config::policy when, unsigned max_attempts = 5) {
  restart_config p;
  p.when = when;
  p.max_attempts = max_attempts;
  p.backoff = 1s;
  p.max_backoff = 30s;
  return p;
}
const exit_info crash{false, false};
const exit_info clean_exit{false, true};
const exit_info requested{true, false};
}  // namespace

TEST(RestartPolicy, BacksOffExponentiallyUpToTheCap) {
  auto p = policy(restart_config::policy::always, 0);
  std::vector<std::chrono::milliseconds> delays;
  for (unsigned a = 0; a < 8; ++a) delays.push_back(decide_restart(p, crash, a).delay);
  EXPECT_EQ(delays, (std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s}));
  EXPECT_EQ(decide_restart(p, crash, 1000).delay, 30s) << "no overflow with many attempts";
}

TEST(RestartPolicy, GivesUpAfterMaxAttempts) {
  auto p = policy(restart_config::policy::on_failure, 3);
  EXPECT_TRUE(decide_restart(p, crash, 2).restart);
  auto d = decide_restart(p, crash, 3);
  EXPECT_FALSE(d.restart);
  EXPECT_TRUE(d.gave_up);
}

TEST(RestartPolicy, OnFailureIgnoresACleanExit) {
  auto p = policy(restart_config::policy::on_failure);
  EXPECT_TRUE(decide_restart(p, crash, 0).restart);
  auto d = decide_restart(p, clean_exit, 0);
  EXPECT_FALSE(d.restart);
  EXPECT_FALSE(d.gave_up);
}

TEST(RestartPolicy, AlwaysRestartsEvenACleanExit) {
  EXPECT_TRUE(decide_restart(policy(restart_config::policy::always), clean_exit, 0).restart);
}

TEST(RestartPolicy, NeverRestarts) {
  EXPECT_FALSE(decide_restart(policy(restart_config::policy::never), crash, 0).restart);
}

TEST(RestartPolicy, ARequestedStopIsNeverRestarted) {
  EXPECT_FALSE(decide_restart(policy(restart_config::policy::always), requested, 0).restart);
}
