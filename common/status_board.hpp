#pragma once
/**
 * @file The single source of truth about services: state, pid, port, uptime, health, status
 * message, progress steps, last exit, and a bounded ring of log lines per service.
 *
 * Writers: the supervisor, and anyone through `update_service_status` (the spec's public API).
 * Readers: the proxy (one atomic load per request: `accepting`) and the fallback module
 * (immutable snapshots). Writers take a mutex that guards only the copy-and-swap of the snapshot
 * pointer; readers never wait for a writer doing I/O.
 */

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/events.hpp"

namespace kinfra {

/** The life of a service as the dashboard shows it. */
enum class service_state {
  stopped,    ///< not running (never started, stopped on request, or exited cleanly)
  starting,   ///< spawned (or waiting for dependencies), not yet healthy
  running,    ///< healthy: the proxy sends it traffic
  unhealthy,  ///< alive but failing its health check
  stopping,   ///< asked to stop, waiting for it to exit
  error,      ///< exited unexpectedly or failed to start
};
std::string_view to_string(service_state s);
std::optional<service_state> parse_service_state(std::string_view s);

/** Log levels, as detected in a service's output or given by `update_service_status`. */
enum class log_level { debug, info, warn, error };
std::string_view to_string(log_level l);
std::optional<log_level> parse_log_level(std::string_view s);

/** One log line. */
struct log_entry {
  std::chrono::system_clock::time_point time;
  std::string timestamp;  ///< shown as is when given (e.g. "15:00:01"); else formatted from `time`
  log_level level = log_level::info;
  std::string message;
  std::uint64_t seq = 0;  ///< increasing per service; lets a reader ask for "lines after N"
};

/** A step of a progress list on the loading page. */
enum class step_status { pending, active, completed };
std::string_view to_string(step_status s);
std::optional<step_status> parse_step_status(std::string_view s);
struct step_entry {
  std::string text;
  step_status status = step_status::pending;
};

/** An operator's "down for maintenance" switch on a service. */
struct maintenance_info {
  bool on = false;
  std::string message;   ///< for visitors
  std::string expected;  ///< expected duration, as the operator wrote it ("30m", "until 15:00")
  std::optional<std::chrono::system_clock::time_point> since;
};

/** One process of a service (`instances: N`, or the new one of a start-first restart). */
struct instance_status {
  std::uint64_t uid = 0;  ///< unique for kinfra's life: this process slot, never reused
  unsigned index = 0;     ///< INSTANCE, 0…N-1
  /** serving: one of the N; starting: the new one of a start-first restart; draining: the one it replaced. */
  enum class role { serving, starting, draining } part = role::serving;
  service_state state = service_state::stopped;
  std::string status_message;
  std::optional<std::uint16_t> port;
  std::optional<pid_t> pid;
  std::optional<std::chrono::system_clock::time_point> started_at;
  std::string health = "Stopped";
  std::string health_detail;
  unsigned restarts = 0;
  std::optional<int> last_exit_code;
  std::optional<int> last_signal;
  bool expected_back = false;
  /** Requests (and tunnels) the proxy has in flight to it, all workers together (`port: auto` only). */
  std::shared_ptr<std::atomic<int>> in_flight;
};
std::string_view to_string(instance_status::role r);

/** How the last start-first restart of a service went (for the dashboard, CLI and API). */
struct restart_report {
  enum class result { in_progress, done, failed } outcome = result::in_progress;
  std::uint64_t id = 0;            ///< counts the service's start-first restarts (1, 2, …)
  std::string message;             ///< "restart failed, previous instance kept: …"
  std::vector<std::string> lines;  ///< the failed process's last log lines
  std::chrono::system_clock::time_point at;
};
std::string_view to_string(restart_report::result r);

/** One service at one moment. */
struct service_status {
  std::string name;
  bool managed = false;  ///< kinfra runs it (it has a command)
  service_state state = service_state::stopped;
  std::string status_message;
  std::optional<std::uint16_t> port;
  std::optional<pid_t> pid;
  std::optional<std::chrono::system_clock::time_point> started_at;  ///< uptime counts from here
  std::string health = "Unknown";  ///< "Healthy", "Unhealthy", "Starting", "Stopped", "Not checked"
  std::string health_detail;       ///< the last check's result, e.g. "HTTP 503", "connection refused"
  unsigned restarts = 0;
  std::optional<int> last_exit_code;
  std::optional<int> last_signal;
  std::vector<step_entry> steps;
  maintenance_info maintenance;  ///< while on, visitors get the maintenance page and no traffic flows
  /**
   * Not accepting now, but kinfra expects it back on its own (starting, restarting, a restart
   * scheduled after a crash, failing its checks while wanted): requests may wait for it (hold).
   * Never for a service stopped on purpose, given up on, or in maintenance.
   */
  bool expected_back = false;
  std::chrono::system_clock::time_point changed_at;
  /** Its processes, by instance then age (empty until first started; one for a plain service). */
  std::vector<instance_status> instances;
  /** `port: auto`: the proxy sends traffic to the healthy serving instances, at their ports. */
  bool routes_to_instances = false;
  std::optional<restart_report> last_restart;
};

/** Where the proxy may send a `port: auto` service's requests: one healthy serving instance. */
struct instance_endpoint {
  std::uint64_t uid = 0;
  std::uint16_t port = 0;
  unsigned index = 0;
  std::shared_ptr<std::atomic<int>> in_flight;
};

/**
 * What the proxy reads about a service on every request, without a lock: may it get traffic now,
 * may a request wait for it, and how many wait (all workers together).
 */
struct traffic_flags {
  std::atomic<bool> accepting{false};
  std::atomic<bool> holdable{false};
  /** Expected back, after steps it reports (a build…): longer than a hold, a browser gets the loading page. */
  std::atomic<bool> long_start{false};
  std::atomic<int> held{0};
  /** Counts the times `accepting` turned true: "accepting again", after a refused connection. */
  std::atomic<std::uint32_t> epoch{0};

  /** Changes whenever `routable()` does; the proxy compares it once per request. */
  std::atomic<std::uint64_t> instances_version{0};
  /** The instances a `port: auto` service's requests may go to now (a copy, taken under a short lock). */
  std::shared_ptr<const std::vector<instance_endpoint>> routable() const {
    std::lock_guard lock(instances_mutex);
    return instances;
  }
  /** Replaces the routable instances (the board, when a service's instances change). */
  void set_routable(std::shared_ptr<const std::vector<instance_endpoint>> next) {
    {
      std::lock_guard lock(instances_mutex);
      instances = std::move(next);
    }
    instances_version.fetch_add(1, std::memory_order_acq_rel);
  }

 private:
  mutable std::mutex instances_mutex;
  std::shared_ptr<const std::vector<instance_endpoint>> instances;
};

/** An address kinfra listens on, as the proxy opened it. */
struct listener_status {
  std::string address;  ///< as bound ("127.0.0.1:9100"; port 0 in routes.yaml shows the chosen one)
  enum class kind { http, https, redirect, admin } role = kind::http;
  std::uint16_t https_port = 0;          ///< redirect: where to
  std::vector<std::string> plain_paths;  ///< redirect: what is still served over plain HTTP
  std::vector<std::string> protocols;    ///< "http/1.1", …
};
std::string_view to_string(listener_status::kind k);

/** A certificate an HTTPS listener serves. */
struct certificate_status {
  std::string listener;            ///< its listener's address
  std::vector<std::string> names;  ///< DNS names and IP addresses it is valid for
  std::string issuer;              ///< the issuer's name (its CN, else the whole name)
  std::chrono::system_clock::time_point not_after;
  std::string file;                ///< the certificate file
  enum class origin { file, self_signed, local_ca, acme, temporary } source = origin::file;
  std::string fingerprint;         ///< SHA-256, "AB:CD:…"
  std::string ocsp_url;            ///< the OCSP responder it names ("" when none)
};
std::string_view to_string(certificate_status::origin o);

/** How the OCSP response stapled for one certificate stands (set by the OCSP fetcher). */
struct ocsp_status {
  std::string status;  ///< of the response stapled: "good", "revoked", "unknown"; "" when none yet
  std::optional<std::chrono::system_clock::time_point> this_update, next_update;
  std::optional<std::chrono::system_clock::time_point> next_fetch;
  std::string last_error;  ///< of the last fetch; empty when it worked
  unsigned failures = 0;   ///< fetches in a row that failed
};

/** How the ACME certificate of one set of names stands. */
struct acme_status {
  std::vector<std::string> names;
  std::string directory;
  std::optional<std::chrono::system_clock::time_point> next_renewal;
  /** The CA's suggested renewal window (ACME Renewal Information), when it offers one. */
  std::optional<std::chrono::system_clock::time_point> window_start, window_end;
  std::optional<std::chrono::system_clock::time_point> last_success;
  std::string last_error;  ///< of the last attempt; empty when it worked
  /** When a failed attempt is tried again (after the backoff, or the CA's Retry-After). */
  std::optional<std::chrono::system_clock::time_point> next_attempt;
  unsigned failures = 0;   ///< attempts in a row that failed
  std::uint64_t obtained_total = 0;  ///< certificates obtained since start-up
  std::uint64_t failed_total = 0;    ///< attempts that failed since start-up
};

/** Which routes.yaml is in force, and how the last attempt to load one went. */
struct config_status {
  std::string path;
  std::chrono::system_clock::time_point loaded_at;  ///< when the configuration in force was loaded
  std::string loaded_by;  ///< "start-up", "file change", "SIGHUP", "dashboard"
  /** Errors of the last attempt, as `routes.yaml:LINE:COL: message`; empty when it worked. */
  std::vector<std::string> errors;
  std::optional<std::chrono::system_clock::time_point> failed_at;
  unsigned reloads = 0;  ///< successful reloads since start-up
  unsigned failures = 0;  ///< refused reloads since start-up
  /** The routes in force, in routes.yaml order (shared: a snapshot is copied on every change). */
  std::shared_ptr<const std::vector<route_config>> routes;
  std::vector<listener_status> listeners;  ///< set by the proxy when it (re)opens its listeners
  std::vector<certificate_status> certificates;
  std::map<std::string, acme_status> acme;  ///< by the first of the names (set by the ACME client)
  std::map<std::string, ocsp_status> ocsp;  ///< by certificate fingerprint (set by the OCSP fetcher)
};

/** All services, in routes.yaml order, at one moment. */
struct board_snapshot {
  std::uint64_t version = 0;
  std::vector<service_status> services;
  config_status config;

  const service_status* find(std::string_view name) const;
};

/** A change pushed from outside the supervisor (the spec's update_service_status). */
struct service_update {
  std::optional<std::string> status_message;
  std::optional<service_state> state;
  std::optional<std::vector<step_entry>> steps;
  std::vector<log_entry> logs;  ///< appended; `seq` is assigned by the board
};

/**
 * Services are addressed by name: a reload may add, remove and reorder them, and whoever holds a
 * name (a runner, a request in flight) keeps meaning the same service.
 */
class status_board {
 public:
  /** One entry per service of `cfg`, in the same order. */
  explicit status_board(const config& cfg);
  status_board(const status_board&) = delete;
  status_board& operator=(const status_board&) = delete;

  /**
   * Takes the services of a new configuration: those that stay keep their status, logs,
   * maintenance and accepting flag; new ones start fresh; removed ones are dropped (their
   * writers' later changes are ignored). The order becomes `cfg`'s.
   */
  void reconfigure(const config& cfg);

  std::size_t size() const;
  /** Index of the service named `name` in the current snapshot, or -1. */
  int index_of(std::string_view name) const;

  /** The current state of every service; never changes once returned. */
  std::shared_ptr<const board_snapshot> snapshot() const;

  /**
   * Changes one service and publishes a new snapshot; nothing when no service has that name.
   * `fn` runs under the writer lock: keep it short.
   */
  void modify(std::string_view name, const std::function<void(service_status&)>& fn);

  /** Records which configuration is in force / why the last reload failed (for the dashboard). */
  void set_config_status(const std::function<void(config_status&)>& fn);

  /**
   * The public API: sets the status message, state and progress steps that are given, and
   * appends log lines. The supervisor's own later transitions override what was set here.
   * @return false when no service has that name
   */
  bool update_service_status(std::string_view name, const service_update& update);

  /** Appends a log line (the ring drops the oldest beyond the service's `log_lines`). */
  void append_log(std::string_view name, log_entry entry);

  /** The last `max` lines with seq > `after`, oldest first. */
  std::vector<log_entry> logs(std::string_view name, std::size_t max, std::uint64_t after = 0) const;
  /**
   * The first `max` lines with seq > `after`, oldest first (a page of the log); `more` is set to
   * whether later lines remain.
   */
  std::vector<log_entry> logs_after(std::string_view name, std::uint64_t after, std::size_t max, bool& more) const;

  /**
   * The flag that says whether the proxy may send `name` traffic now: the proxy keeps it and
   * reads it with one atomic load per request. It stays valid (and updated while the service
   * exists) across reconfigurations; for an unknown name, a flag that is always false.
   */
  std::shared_ptr<const std::atomic<bool>> accepting_flag(std::string_view name) const;
  /** All of a service's traffic flags (accepting, holdable, held), kept like accepting_flag. */
  std::shared_ptr<traffic_flags> traffic(std::string_view name) const;

  /**
   * The proxy could not connect to any target of this service (passive check): the supervisor is
   * told at once, marks it unhealthy (so traffic stops) and checks it again right away.
   */
  void report_refused(const std::string& name, std::uint16_t port = 0);

  /** Called (from a proxy thread) on each `report_refused` (port 0: any); set once by the supervisor. */
  void on_refused(std::function<void(const std::string&, std::uint16_t)> handler);

  /** Counts one health check of `name` (for /metrics). */
  void record_health_check(std::string_view name, bool ok);
  /** Health checks of `name` so far: (passed, failed). */
  std::pair<std::uint64_t, std::uint64_t> health_checks(std::string_view name) const;

  /** Turns maintenance on or off for a service (the dashboard's maintenance action). */
  bool set_maintenance(std::string_view name, maintenance_info info);

  /** Increases with every change; readers can poll it cheaply. */
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }
  /** Increases with every log line appended to any service; cheap. */
  std::uint64_t log_version() const { return log_version_.load(std::memory_order_acquire); }

  /** What happened, in order: derived from each change published, plus what callers record. */
  event_log& events() { return events_; }
  const event_log& events() const { return events_; }

 private:
  struct ring {
    std::deque<log_entry> lines;
    std::size_t capacity = 1000;
    std::uint64_t next_seq = 1;
  };

  void publish_locked(std::shared_ptr<board_snapshot> next);
  int index_locked(std::string_view name) const;
  static service_status fresh_status(const service_config& svc);
  /** Publishes the routable instances of a `port: auto` service when they changed (under mutex_). */
  static void publish_routable(const service_status& st, traffic_flags& f);

  mutable std::mutex mutex_;  // guards current_ (copy and swap), flags_ and writers
  std::shared_ptr<const board_snapshot> current_;
  /** By name; a flag outlives its service in the generations that still hold it. */
  std::map<std::string, std::shared_ptr<traffic_flags>, std::less<>> flags_;
  std::shared_ptr<traffic_flags> never_;  ///< for unknown names
  std::atomic<std::uint64_t> version_{0};
  std::atomic<std::uint64_t> log_version_{0};
  event_log events_;
  mutable std::mutex logs_mutex_;
  std::map<std::string, ring, std::less<>> rings_;
  /** Health checks (passed, failed) by name; kept across reloads like the logs. */
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>, std::less<>> checks_;
  std::mutex handler_mutex_;
  std::function<void(const std::string&, std::uint16_t)> refused_handler_;
};

/** Whether a service in this state lets the proxy send it traffic. */
inline bool accepts_traffic(const service_status& s) { return s.state == service_state::running && !s.maintenance.on; }

}  // namespace kinfra
