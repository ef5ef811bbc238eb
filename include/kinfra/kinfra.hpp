#pragma once
/**
 * @file kinfra as a library: a reverse proxy with a process supervisor, fallback pages and the
 * /kinfra dashboard, inside your program.
 *
 * ```cpp
 * #include <kinfra/kinfra.hpp>
 *
 * kinfra::service_manager manager{kinfra::options{}};  // proxy on :9100, dashboard also on :9000
 * manager.add_service({.name = "api", .command = {"./api"}, .port = 8000, .path_prefix = "/api"});
 * manager.add_service({.name = "frontend", .command = {"./web"}, .port = 8001});
 * manager.add_route({.path = "/", .service = "frontend"});
 * manager.start();                                     // returns once listening
 * manager.update_service_status("api", {.status_message = "Installing dependencies...",
 *     .state = kinfra::state::starting,
 *     .steps = {{"Port allocation", kinfra::step::completed}, {"Installing packages", kinfra::step::active}},
 *     .logs = {{"15:00:01", "info", "Started"}}});
 * manager.restart("api");
 * std::string json = manager.status_json();            // the same document as GET /__status__
 * manager.run();                                       // until SIGINT/SIGTERM or shutdown()
 * ```
 *
 * This header needs only the C++20 standard library: Asio, Beast, yaml-cpp, spdlog and OpenSSL stay
 * inside the library. Every member function may be called from any thread of the host program;
 * kinfra calls nothing back.
 */

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kinfra {

/** A service's state, as the dashboard shows it. */
enum class state { stopped, starting, running, unhealthy, stopping, error };

/** A step of the progress list shown on the loading page and the dashboard card. */
enum class step { pending, active, completed };

struct progress_step {
  std::string text{};
  step status = step::pending;
};

/** A log line pushed from the host program; `level` is info, warn, error or debug. */
struct log_line {
  std::string timestamp{};  ///< shown as is ("15:00:01"); empty: now
  std::string level = "info";
  std::string message{};
};

/**
 * What `update_service_status` changes: only what is set. The supervisor's own later transitions
 * (the process started, became healthy, crashed) override the state and message set here.
 */
struct status_update {
  std::optional<std::string> status_message{};
  std::optional<kinfra::state> state{};
  std::vector<progress_step> steps{};  ///< replaces the progress list when not empty
  std::vector<log_line> logs{};        ///< appended to the service's log
  bool clear_steps = false;          ///< removes the progress list
};

/** A service, as one entry of routes.yaml's `services:`. */
struct service {
  std::string name{};
  std::vector<std::string> command{};  ///< argv; empty: kinfra does not run it (give `url` or `port`)
  std::optional<std::uint16_t> port{};  ///< passed as PORT; traffic goes to http://127.0.0.1:PORT
  std::string url{};                    ///< where a service kinfra does not run is reached
  std::string path_prefix{};            ///< when set, also a route: this prefix → this service
  std::string cwd{};                    ///< default: the current folder
  std::map<std::string, std::string> env{};
  std::string health_path{};            ///< an HTTP path that answers 2xx when ready; empty: TCP check
  bool autostart = true;              ///< false: stays stopped until start(name)
  /** kinfra picks a free port for each process (PORT) instead of `port`; restarts are start-first. */
  bool port_auto = false;
  unsigned instances = 1;             ///< processes run at once (INSTANCE=0…N-1); more than 1 needs port_auto
  /** "" (HTTP/1.1), or "h2c" / "h2": it speaks only HTTP/2 (gRPC), plain or over TLS (docs/http2.md). */
  std::string protocol{};
};

/** One process of a service (several with `instances`, or during a start-first restart). */
struct instance_info {
  unsigned index = 0;         ///< its INSTANCE
  std::string role{};         ///< "serving", "starting" (a restart's new process), "draining" (the one it replaces)
  kinfra::state state = kinfra::state::stopped;
  std::optional<int> pid{};
  std::optional<std::uint16_t> port{};
};

/** A route, as one entry of routes.yaml's `routes:`. */
struct route {
  std::string path{};  ///< prefix, segment-aware: /api matches /api and /api/x, not /apix
  std::string service{};
  std::string host{};  ///< optional: exact host or *.domain
  bool strip_prefix = false;
  bool json = false;  ///< an API route: kinfra's own answers on it are JSON
};

/** How the manager listens and who may act. Defaults: the spec's (dashboard on, no token). */
struct options {
  std::vector<std::string> listen{"0.0.0.0:9100"};  ///< "127.0.0.1:0": a port the system picks
  std::string admin_listen = "127.0.0.1:9000";      ///< the dashboard's own listener; "" for none
  std::string admin_token{};     ///< when set, required for every admin read and action
  bool allow_remote = false;   ///< serve the dashboard to non-loopback clients (needs a token and admin_hosts)
  /**
   * Host names the admin surface answers to besides 127.0.0.1, [::1] and localhost
   * ("kinfra.example.com", "10.0.0.5:9000", "*.corp.example"); any other Host is refused (DNS
   * rebinding). Required with allow_remote.
   */
  std::vector<std::string> admin_hosts{};
  bool actions = true;         ///< false: restart/stop/start buttons read "Not available"
  std::string templates_dir{};   ///< overrides of the embedded pages
  unsigned workers = 0;        ///< proxy threads; 0: one per core
  std::string access_log = "off";  ///< "off", "stdout", "stderr" or a file
  bool json_access_log = false;
  /** SIGINT/SIGTERM end run() (a graceful stop), SIGHUP reloads, SIGUSR1 reopens the access log. */
  bool handle_signals = true;

  /**
   * Everything from a routes.yaml (listeners, routes, services, timeouts, TLS, …); the file is
   * then watched and reloaded like `kinfra run` does. Services and routes added through the
   * manager come on top of the file's. Throws kinfra::error listing every problem.
   */
  static options from_file(const std::string& path);

  /** Set by from_file: the routes.yaml this configuration comes from. */
  std::string config_file{};
};

/** A configuration kinfra refused, with every problem as `source:LINE:COL: message`. */
class error : public std::runtime_error {
 public:
  explicit error(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

/** One service at one moment (what /__status__ says about it). */
struct service_info {
  std::string name{};
  kinfra::state state = kinfra::state::stopped;
  std::string status_message{};
  std::optional<std::uint16_t> port{};
  std::optional<int> pid{};
  std::string health{};  ///< "Healthy", "Unhealthy", "Starting", "Stopped", "Not checked"
  unsigned restarts = 0;
  std::vector<progress_step> steps{};
  std::vector<instance_info> instances{};
  /** The last start-first restart: "" (none), "in progress", "done" or "failed", and what it said. */
  std::string last_restart{};
  std::string last_restart_message{};
};

class service_manager {
 public:
  explicit service_manager(options opts = {});
  ~service_manager();  ///< shutdown(), if it is running
  service_manager(const service_manager&) = delete;
  service_manager& operator=(const service_manager&) = delete;

  /**
   * Adds a service (and its route, with `path_prefix`). Before start() this only records it;
   * after, the running kinfra takes it at once (like a reload of routes.yaml). Throws
   * kinfra::error when the result is not a valid configuration (nothing changes then).
   */
  void add_service(const service& s);
  /** Adds a route; same rules as add_service. */
  void add_route(const route& r);

  /**
   * Validates, binds the listeners and starts the services; returns once requests are served.
   * Throws kinfra::error (a bad configuration) or std::runtime_error (an address in use).
   */
  void start();
  /** start() if needed, then waits: until shutdown() from another thread, or SIGINT/SIGTERM. */
  void run();
  /**
   * Graceful stop: stop accepting, let requests in flight finish (timeouts.shutdown), stop the
   * services in reverse dependency order. Idempotent; run() returns.
   */
  void shutdown();
  bool running() const;

  /** The spec's update_service_status: false when no service has that name. */
  bool update_service_status(const std::string& name, const status_update& update);
  /** The dashboard's actions; false when there is no such service (or kinfra does not run it). */
  bool restart(const std::string& name);
  bool stop(const std::string& name);
  bool start(const std::string& name);

  /** Every service now, in configuration order. */
  std::vector<service_info> status() const;
  /** The /__status__ document (JSON), for `service` (or the first) with every service listed. */
  std::string status_json(const std::string& service = "") const;
  /** Where the proxy listens ("127.0.0.1:40123"), once started. */
  std::vector<std::string> listen_addresses() const;
  /** Where the dashboard's own listener is, once started (empty when off or not bound). */
  std::vector<std::string> admin_addresses() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kinfra
