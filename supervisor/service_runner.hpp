#pragma once
/**
 * @file One service's life on the supervisor's control thread: spawn, capture output, check
 * health, react to its exit (restart by policy), stop it. Everything here runs on one
 * io_context thread, so no member needs a lock; the StatusBoard is how others see it.
 */

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/status_board.hpp"
#include "supervisor/log_line.hpp"

namespace kinfra::supervisor {

namespace net = boost::asio;

/** What the runner needs from the supervisor around it. */
struct runner_hooks {
  /** Is the dependency `name` in a state that satisfies `until`? */
  std::function<bool(const std::string& name, dependency::condition until)> dependency_met;
  /** A process was spawned / reaped: the supervisor routes exits by pid. */
  std::function<void(pid_t)> spawned;
  /** This service's state changed (others may be waiting for it). */
  std::function<void()> state_changed;
  /** It was started again: `by` says why ("crash", "reload", or who asked: "dashboard", "CLI", "API"). */
  std::function<void(const std::string& by)> restarted;
  /** Writes this process's entry on the board (its instance of the service). */
  std::function<void(const std::function<void(instance_status&)>&)> modify;
  /** Put before each output line ("[1] " when a service runs several instances). */
  std::string log_tag;
  /** Set when its service left routes.yaml: its log lines and checks no longer go to the board. */
  std::shared_ptr<const bool> retired;
};

class service_runner {
 public:
  /** Keeps its own copy of `cfg`; writes to `board` under the service's name. */
  service_runner(net::io_context& ioc, const service_config& cfg, status_board& board, runner_hooks hooks);
  service_runner(const service_runner&) = delete;
  service_runner& operator=(const service_runner&) = delete;
  ~service_runner();

  /** Wants it running: spawns it once its dependencies allow (managed) or starts checking it. */
  void start();
  /** Wants it stopped: stop signal to its group, SIGKILL after the stop timeout. */
  void stop(std::function<void()> done = {});
  /** stop() without cancelling a pending continuation (restart, reconfigure). */
  void stop_then(std::function<void()> done);
  /** `stop()` without a completion, for the dashboard's Stop. */
  void stop_now() { stop(); }
  /** SIGKILL to its process group now (an impatient shutdown); the exit is handled as usual. */
  void kill_now();
  /**
   * Stops, then starts again; the restart count goes up, the attempt count starts over. `by`
   * says who asked (the `restarted` hook gets it).
   */
  void restart(std::string by);
  /**
   * Takes the service's entry from a reloaded routes.yaml. A changed command, cwd, env or port
   * restarts it; anything else (checks, restart and stop policies, dependencies) applies in
   * place and a running process keeps its PID.
   */
  void reconfigure(const service_config& next);
  /** True when `a` and `b` describe the same process (what `reconfigure` restarts for). */
  static bool same_process(const service_config& a, const service_config& b);
  /** Its process ended with this wait status (from the supervisor's reaper). */
  void on_exit(int wait_status);
  /** The proxy could not connect: mark it unhealthy now and check again at once. */
  void on_refused();
  /** Something it may depend on changed state. */
  void dependencies_changed();

  service_state state() const { return state_; }
  pid_t pid() const { return pid_; }
  /** Times it was started again (by its restart policy or on request). */
  unsigned restarts() const { return restarts_; }
  bool managed() const { return cfg_.managed(); }
  const std::string& name() const { return cfg_.name; }
  const service_config& config() const { return cfg_; }
  /** Wants it running (started, not stopped since). */
  bool wanted() const { return want_running_; }
  /** Its last output lines, oldest first. */
  const std::deque<std::string>& tail() const { return tail_; }
  /** Started with kinfra (or when added by a reload); false for `autostart: false`. */
  bool autostart() const { return cfg_.autostart || !cfg_.managed(); }

 private:
  void spawn();
  void set_state(service_state s, std::string message, std::optional<std::string> health = std::nullopt);
  bool dependencies_met(std::string* waiting_for) const;
  void schedule_probe(std::chrono::milliseconds delay);
  void run_probe_now();
  void on_probe(bool ok, const std::string& detail);
  void mark_healthy();
  void finish_stop();
  void wait_group_then_finish();
  void read_output(net::posix::stream_descriptor& pipe, line_splitter& splitter, std::array<char, 8192>& buf,
                   bool is_stderr);
  void take_line(std::string_view raw, bool is_stderr);
  bool probing() const;
  bool retired() const { return hooks_.retired && *hooks_.retired; }
  std::chrono::milliseconds probe_interval() const;

  net::io_context& ioc_;
  service_config cfg_;
  status_board& board_;
  runner_hooks hooks_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  ///< guards callbacks after destruction

  service_state state_ = service_state::stopped;
  std::string message_;  ///< the status message last set
  std::deque<std::string> tail_;  ///< its last output lines
  bool want_running_ = false;
  bool restarting_ = false;  ///< restart(): stopping now, to start again (requests wait)
  bool waiting_for_dependencies_ = false;
  bool stopping_ = false;
  pid_t pid_ = 0;
  pid_t group_ = 0;  ///< the process group of the last spawn (its leader's pid)
  std::chrono::steady_clock::time_point spawned_at_{};
  std::optional<std::chrono::steady_clock::time_point> healthy_since_;
  unsigned attempts_ = 0;  ///< restarts since last healthy for restart.reset_after
  unsigned restarts_ = 0;
  unsigned probe_ok_ = 0, probe_fail_ = 0;
  bool probe_in_flight_ = false;
  std::uint64_t probe_generation_ = 0;  ///< results of probes from an earlier life are ignored
  std::chrono::steady_clock::time_point stop_deadline_{};
  std::vector<std::function<void()>> stop_waiters_;
  std::uint64_t continuation_ = 0;  ///< a stop's "then start" runs only if no later stop came

  net::steady_timer probe_timer_;
  net::steady_timer restart_timer_;
  net::steady_timer stop_timer_;
  net::posix::stream_descriptor out_, err_;
  line_splitter out_lines_, err_lines_;
  std::array<char, 8192> out_buf_{}, err_buf_{};
};

}  // namespace kinfra::supervisor
