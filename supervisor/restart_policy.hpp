#pragma once
/** @file When to start a service again after its process ended: a pure function of the policy. */

#include <chrono>

#include "common/config.hpp"

namespace kinfra::supervisor {

/** How a process ended, as far as the restart policy cares. */
struct exit_info {
  bool requested = false;  ///< kinfra (or someone through the dashboard) asked it to stop
  bool clean = false;      ///< exit code 0, no signal
};

struct restart_decision {
  bool restart = false;
  std::chrono::milliseconds delay{0};  ///< wait this long first
  bool gave_up = false;                ///< it would restart, but the attempts are used up
};

/**
 * Decides about a restart. `attempts` counts the restarts already made since the service was
 * last healthy for `reset_after` (the caller resets it). The delay doubles from `backoff` with
 * each attempt, up to `max_backoff`. `max_attempts` 0 means no limit.
 */
restart_decision decide_restart(const restart_config& policy, const exit_info& exit, unsigned attempts);

}  // namespace kinfra::supervisor
