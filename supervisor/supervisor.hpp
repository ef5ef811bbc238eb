#pragma once
/**
 * @file Runs the services of routes.yaml and watches them, on a control thread of its own so
 * that a stuck child never stalls traffic. Implements `service_control` for the dashboard.
 */

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "common/config.hpp"
#include "common/service_control.hpp"
#include "common/status_board.hpp"

namespace kinfra::supervisor {

class service_group;

class supervisor final : public service_control {
 public:
  /** `board` must outlive the supervisor and hold the same services as `cfg`. */
  supervisor(std::shared_ptr<const config> cfg, status_board& board);
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;
  /** Stops every service (as `shutdown`) if that has not happened yet. */
  ~supervisor() override;

  /** Starts the control thread, then every service in dependency order. Returns at once. */
  void start();

  /**
   * Takes a reloaded configuration (the board must already have been reconfigured with it):
   * services added are started, removed ones stopped, changed ones restarted when their process
   * changed (command, cwd, env, port) and otherwise updated in place, keeping their PID.
   * Blocks until applied (not until processes have stopped or started).
   */
  void reconfigure(std::shared_ptr<const config> next);

  /**
   * Stops every service, dependents before what they depend on (each group in parallel, each
   * service by its stop policy), kills whatever they left behind, and ends the control thread.
   * Blocks until done.
   */
  void shutdown();
  /** The first half of shutdown(), without waiting: see services_stopped(). */
  void begin_shutdown();
  /** True once every service stopped after begin_shutdown(). */
  bool services_stopped() const;
  /** Impatient shutdown (a second signal): SIGKILL to every service's process group now. */
  void kill_all();

  // service_control
  control_result start(std::string_view service) override;
  control_result stop(std::string_view service) override;
  control_result restart(std::string_view service, std::string_view by) override;

 private:
  control_result act(std::string_view service, std::function<void(service_group&)> action);
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kinfra::supervisor
