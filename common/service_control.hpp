#pragma once
/**
 * @file Starting, stopping and restarting services, as the dashboard's actions ask for it.
 * Declared here so that the fallback module can call the supervisor without depending on it.
 */

#include <string>
#include <string_view>
#include <vector>

namespace kinfra {

/** What became of a control request. */
enum class control_result {
  accepted,         ///< the supervisor will carry it out (asynchronously)
  unknown_service,  ///< no service has that name
  not_managed,      ///< kinfra does not run that service (no command): it can only be watched
};

/** Implemented by the supervisor; safe to call from any thread. */
class service_control {
 public:
  virtual ~service_control() = default;
  virtual control_result start(std::string_view service) = 0;
  virtual control_result stop(std::string_view service) = 0;
  /** `by`: who asked ("dashboard", "CLI", "API"), for the `restarted` event. */
  virtual control_result restart(std::string_view service, std::string_view by) = 0;
};

/** What a reload of routes.yaml did. */
struct reload_result {
  bool applied = false;
  bool unchanged = false;            ///< the file is the one in force: nothing to do
  bool busy = false;                 ///< not tried: another reload was running (`wait` false)
  std::vector<std::string> errors;   ///< `routes.yaml:LINE:COL: message` when not applied
};

/** Reloading routes.yaml on request (the dashboard's reload action); safe from any thread. */
class config_control {
 public:
  virtual ~config_control() = default;
  /**
   * Loads, validates and applies routes.yaml; `by` says who asked ("dashboard", "SIGHUP", …).
   * Reloads run one at a time: with `wait` false, a reload that finds another one running returns
   * at once with `busy` (so that a reload stuck on a slow DNS name holds one thread, not many).
   */
  virtual reload_result reload(const std::string& by, bool wait = true) = 0;
};

}  // namespace kinfra
