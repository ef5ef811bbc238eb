#pragma once
/**
 * @file `kinfra status | restart | stop | start | logs | events | reload`: the command line for a running
 * kinfra, through its admin API (/__status__, /__action__/…, /__logs__/…, /__events__).
 *
 * Where kinfra is: `--url`, else routes.yaml's admin listener, then its plain listen addresses
 * (0.0.0.0 is asked as 127.0.0.1). The token: `--token`, else routes.yaml's `admin_token`, else
 * $KINFRA_ADMIN_TOKEN; it is sent only after kinfra answered 401 to a request and proved it knows
 * the same token (common/admin_proof.hpp), never to another program on one of those addresses. Exit codes: 0 done, 1 kinfra answered
 * with an error, 2 kinfra is not running (nothing answered), 3 bad usage.
 */

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace kinfra::cli {

struct client_options {
  std::string config = "routes.yaml";  ///< read for the addresses and token, when it exists
  std::string url;                     ///< http://host:port of kinfra; overrides routes.yaml
  std::string token;                   ///< overrides routes.yaml and $KINFRA_ADMIN_TOKEN
  std::chrono::milliseconds timeout{5000};  ///< per request
};

/** Exit codes of the client commands. */
inline constexpr int exit_ok = 0, exit_failed = 1, exit_not_running = 2, exit_usage = 3;

/** A table of every service, like `docker ps`; `json`: the raw /__status__ document instead. */
int status_command(const client_options& o, bool json);

/**
 * restart, stop or start a service. With `wait`, returns once the service is running (or stopped,
 * for stop), failing when it ends in error or `wait_for` passes.
 */
int action_command(const client_options& o, const std::string& verb, const std::string& name, bool wait,
                   std::chrono::milliseconds wait_for);

/** The last `lines` log lines of a service (0: all kept); with `follow`, then new ones as they come. */
int logs_command(const client_options& o, const std::string& name, std::size_t lines, bool follow);

/**
 * What happened (/__events__): the last `count` events, of `service` only when given; with
 * `follow`, then new ones as they come.
 */
int events_command(const client_options& o, const std::string& service, std::size_t count, bool follow);

/** Reloads routes.yaml in the running kinfra; prints the errors when it is refused. */
int reload_command(const client_options& o);

/** The routes, listeners and certificates in force (`json`: that part of /__status__ as JSON). */
int routes_command(const client_options& o, bool json);

}  // namespace kinfra::cli
