#pragma once
/**
 * @file Runs the services of routes.yaml that have a `command`.
 *
 * This first version starts each service once with PORT set and stops every process group when
 * kinfra stops. Health checks, restarts and log capture build on it.
 */

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace kinfra::supervisor {

class supervisor {
 public:
  explicit supervisor(std::shared_ptr<const config> cfg);
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;
  ~supervisor();

  /** Starts every service that has a command; failures are logged and the others still start. */
  void start_all();

  /** Stops every running service (TERM, then KILL after `grace`), in reverse start order. */
  void stop_all(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  struct running {
    std::string name;
    pid_t pid;
  };
  std::shared_ptr<const config> cfg_;
  std::mutex mutex_;
  std::vector<running> running_;
};

}  // namespace kinfra::supervisor
