#pragma once
/**
 * @file The proxy as the executable sees it: bind the listeners, run the workers, stop.
 * Kept free of Asio and Beast headers so that including it costs nothing.
 */

#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/config_loader.hpp"
#include "common/local_responder.hpp"
#include "common/metrics.hpp"
#include "common/status_board.hpp"

namespace kinfra::proxy::tls {
class ocsp_staples;
}

namespace kinfra::proxy {

/**
 * Checks the TLS files `cfg` names (listener certificates and keys, CA files of https://
 * services) without changing anything: problems go to `errors` and `warnings`, each at the
 * position of its entry in routes.yaml. Self-signed certificates are made by `run`, not here.
 */
void check_tls(const config& cfg, std::vector<config_error>& errors, std::vector<config_error>& warnings);

/** A reload the proxy has prepared (addresses bound, certificates loaded) and not applied yet. */
class reload_plan {
 public:
  reload_plan();
  ~reload_plan();  ///< closes what was opened for it, when it was not applied
  reload_plan(reload_plan&&) noexcept;
  reload_plan& operator=(reload_plan&&) noexcept;

 private:
  friend class proxy_server;
  struct data;
  std::unique_ptr<data> d_;
};

class proxy_server {
 public:
  /**
   * Resolves the upstream targets, loads the certificates of HTTPS listeners and binds every
   * listen address once per worker (SO_REUSEPORT). Throws std::runtime_error naming the address
   * when a bind fails, or the file and the problem when a certificate cannot be used. The admin
   * listener (`admin_listen`) is optional: when it cannot be bound, that is logged and the
   * dashboard stays available on the main listener.
   * @param responder renders kinfra's own pages; must outlive the server (may be null)
   * @param board says which services may get traffic; must outlive the server (may be null:
   *        then every service is assumed healthy)
   * @param metrics counts requests for /metrics; must outlive the server, with a cell for every
   *        worker (may be null: nothing is counted)
   */
  proxy_server(std::shared_ptr<const config> cfg, const local_responder* responder, status_board* board = nullptr,
               metrics_registry* metrics = nullptr);
  proxy_server(const proxy_server&) = delete;
  proxy_server& operator=(const proxy_server&) = delete;
  ~proxy_server();

  /** Starts the worker threads. */
  void start();
  /**
   * Graceful shutdown: stops accepting, closes idle connections, and lets requests in flight
   * finish (each response closes its connection). Returns at once; see connections().
   */
  void drain();
  /** Client connections still open. */
  std::size_t connections() const;
  /** Closes the listeners and all connections, and waits for the workers to end. */
  void stop();

  /** The addresses actually bound (port 0 in routes.yaml becomes the port the system chose). */
  std::vector<host_port> bound_addresses() const;
  /**
   * First half of a reload: everything that can fail. Resolves targets, reads every certificate
   * again, binds new listen addresses. Throws std::runtime_error, having changed nothing, when an
   * address cannot be bound or a TLS file is unusable.
   */
  reload_plan prepare(std::shared_ptr<const config> next);
  /**
   * Second half: new requests use the new routes, targets and timeouts; requests and tunnels in
   * flight finish on the old ones. Listeners that stay keep their sockets (and connections); new
   * ones start accepting, removed ones stop (their connections go on). The number of workers is
   * fixed at start.
   */
  void commit(reload_plan plan);
  /**
   * Opens the access log file again by its name (SIGUSR1, after logrotate moved it). False with
   * `error` when it cannot: the old file stays in use. Thread-safe.
   */
  bool reopen_logs(std::string& error);
  /** Asks the access log's writer to write out what is queued. */
  void flush_logs();
  /** The direct admin listener's address, when it is configured and could be bound. */
  std::vector<host_port> admin_addresses() const;
  /** The OCSP responses stapled to the listeners' handshakes (filled by app/ocsp_stapler). */
  tls::ocsp_staples& ocsp_staples();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kinfra::proxy
