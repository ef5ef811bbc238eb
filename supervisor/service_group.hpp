#pragma once
/**
 * @file A service as the supervisor runs it: its `instances: N` processes, each one a
 * service_runner (a process and its restarts), and start-first restarts for `port: auto`
 * services — a new process on a new port takes over once healthy, the one it replaces finishes
 * its requests in flight (`stop.drain`) and stops. Control thread only, like the runners.
 */

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/status_board.hpp"
#include "supervisor/service_runner.hpp"

namespace kinfra::supervisor {

class service_group {
 public:
  /** `hooks` as for a runner (`modify` and `log_tag` are the group's own). */
  service_group(net::io_context& ioc, const service_config& cfg, status_board& board, runner_hooks hooks);
  service_group(const service_group&) = delete;
  service_group& operator=(const service_group&) = delete;
  ~service_group();

  /** Wants every instance running. */
  void start();
  /** Stops every process (a restart in progress ends); `done` once all have stopped. */
  void stop(std::function<void()> done = {});
  void stop_now() { stop(); }
  void kill_now();
  /** Its service left routes.yaml: what it still does (stopping) no longer shows on the board. */
  void retire() { *retired_ = true; }
  /**
   * `port: auto` with an instance running: start-first, one instance at a time. Otherwise each
   * instance stops and starts again (requests wait meanwhile, see `hold`). `by` says who asked
   * ("dashboard", "CLI", "API", "reload"), for the `restarted` events.
   */
  void restart(std::string by);
  /** A reloaded entry: a changed process restarts (start-first when it can), the rest applies in place. */
  void reconfigure(const service_config& next);
  /** A reaped exit: handled by the instance that had `pid`; false when none had it. */
  bool on_exit(pid_t pid, int wait_status);
  /** The proxy could not connect to `port` (0: to the service). */
  void on_refused(std::uint16_t port);
  void dependencies_changed();

  /** The service's state as its serving instances make it (any running: running). */
  service_state state() const;
  /** Some process of it exists now. */
  bool has_process() const;
  bool managed() const { return cfg_.managed(); }
  const std::string& name() const { return cfg_.name; }
  bool autostart() const { return cfg_.autostart || !cfg_.managed(); }

 private:
  struct member {
    std::unique_ptr<service_runner> runner;
    std::uint64_t uid = 0;
    unsigned index = 0;
    instance_status::role part = instance_status::role::serving;
    std::shared_ptr<std::atomic<int>> in_flight = std::make_shared<std::atomic<int>>(0);
  };
  /** Where a start-first restart is. */
  enum class rollout_phase {
    idle,
    starting_new,  ///< the new process of instance `roll_index_` is starting
    draining_old,  ///< it took over; the previous one finishes its requests in flight, then stops
  };

  member& add_member(unsigned index, instance_status::role part, const service_config& cfg);
  member* find(std::uint64_t uid);
  member* serving(unsigned index);
  void remove_member(std::uint64_t uid);
  service_config instance_config(const service_config& base, unsigned index) const;
  /** Gives a runner the service's entry when its process differs (before a start or stop-first restart). */
  void refresh(member& m);
  void member_changed(std::uint64_t uid);
  /** The service's fields from its serving instances; `lifecycle`: also state, message and health. */
  void aggregate(service_status& st, bool lifecycle = true) const;
  void rebuild_members();
  /** Marks members serving / draining on the board, in one change (the proxy sees it at once). */
  void publish_parts();
  /**
   * Takes `uid` out of the traffic (already draining), waits until its requests and tunnels in
   * flight are done (at most stop.drain), stops it and removes it; then `after(its description)`.
   */
  void drain_then_stop(std::uint64_t uid, std::function<void(const std::string&)> after);
  void poll_drain(std::uint64_t uid, std::chrono::steady_clock::time_point deadline,
                  std::function<void(const std::string&)> after);
  /** Another shape (instances with another port kind, run ↔ watch): all stop, then start anew. */
  void begin_reshape(const service_config& next);
  void finish_reshape();
  /** The new process of a restart failed after it took over: the previous one serves again. */
  void take_back(const std::string& reason);

  /** `instances:` changed alone: starts the missing instances, stops those beyond `to`. */
  void scale(unsigned to);
  void roll_one();
  void switch_over();
  void wait_for_drain();
  void fail_rollout(const std::string& reason);
  void finish_rollout();
  void event(log_level level, const std::string& message);
  /** Records a `restarted` event (`by`: "crash", "reload", or who asked) with the service's restart count. */
  void restarted_event(const std::string& by);
  void report(restart_report::result r, std::string message, std::vector<std::string> lines = {});

  net::io_context& ioc_;
  service_config cfg_;
  status_board& board_;
  runner_hooks hooks_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<member> members_;
  unsigned restarts_before_ = 0;  ///< restarts of processes no longer here (start-first ones count too)
  std::shared_ptr<bool> retired_ = std::make_shared<bool>(false);
  bool scale_pending_ = false;  ///< `instances` changed during a restart: applied once it is over
  /** Draining members' timers, by uid (a stop cancels them). */
  std::map<std::uint64_t, std::shared_ptr<net::steady_timer>> drains_;

  /** A reshape in progress: the entry it goes to (later reloads replace it), and start it after? */
  std::optional<service_config> reshape_to_;
  bool reshape_start_ = false;
  bool reshape_restart_ = false;  ///< what it starts again is a restart (a managed process was wanted)
  std::string reshape_by_;        ///< who the restart is for: "reload", or who asked meanwhile

  rollout_phase phase_ = rollout_phase::idle;
  unsigned roll_index_ = 0;
  std::uint64_t new_uid_ = 0, old_uid_ = 0;
  std::uint64_t rollout_id_ = 0;  ///< the current (or last) start-first restart's number
  std::uint64_t config_generation_ = 0;   ///< counts reloads that changed the process
  std::uint64_t rollout_generation_ = 0;  ///< the one the current restart deploys
  bool roll_again_ = false;  ///< asked again (or reconfigured) meanwhile: one more once it is done
  std::string restart_by_;   ///< who asked for the restart under way (or the last one)
  std::string again_by_;     ///< who asked for the one after it (roll_again_)
  net::steady_timer roll_timer_;
};

}  // namespace kinfra::supervisor
