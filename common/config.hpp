#pragma once
/**
 * @file The typed, validated model of routes.yaml.
 *
 * A `config` is built once by `load_config` (see config_loader.hpp), then never changes: every
 * thread may read it without locks. A reload builds a new one.
 */

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/address.hpp"
#include "common/admin_hosts.hpp"
#include "common/units.hpp"

namespace kinfra {

using namespace std::chrono_literals;

/** A position in routes.yaml, 1-based; 0 when unknown. */
struct source_mark {
  int line = 0;
  int column = 0;
};

/** Client- and upstream-side timeouts of the proxy. */
struct timeouts_config {
  std::chrono::milliseconds connect = 5s;             ///< connecting to an upstream target
  std::chrono::milliseconds header = 10s;             ///< a client sending a complete request header
  std::chrono::milliseconds idle = 60s;               ///< a keep-alive client between requests
  std::chrono::milliseconds upstream_response = 60s;  ///< an upstream sending its response header
  std::chrono::milliseconds body = 60s;               ///< no progress while relaying a body, either way
  std::chrono::milliseconds tunnel_idle = 3600s;      ///< no traffic on an upgraded (WebSocket) tunnel
  std::chrono::milliseconds shutdown = 10s;  ///< SIGTERM: requests in flight get this long to finish
};

/** Size limits on what clients send. */
struct limits_config {
  std::uint64_t max_header_bytes = 32 * 1024;  ///< request line + header fields → 431 beyond
  std::uint64_t max_uri_bytes = 8 * 1024;      ///< request target → 414 beyond
  std::uint64_t max_body_bytes = unlimited_bytes;  ///< request body → 413 beyond
  std::uint32_t max_concurrent_streams = 128;  ///< HTTP/2 streams open at once per connection
};

/** The keep-alive pool each worker keeps per upstream target. */
struct upstream_pool_config {
  std::size_t max_idle_per_target = 1024;
  std::chrono::milliseconds idle_timeout = 30s;
};

/** How the supervisor decides that a service can take traffic. */
struct health_config {
  enum class kind {
    automatic,  ///< nothing configured: TCP connect to the port, or "alive" without a port
    tcp,        ///< a TCP connect succeeds
    http,       ///< GET `http_path` answers 2xx or 3xx
    none,       ///< `health: off`: never checked, always considered healthy while alive
  };
  kind probe = kind::automatic;
  std::string http_path = "/";
  std::chrono::milliseconds interval = 2s;
  std::chrono::milliseconds timeout = 1s;
  unsigned rise = 1;  ///< consecutive successes to become healthy
  unsigned fall = 3;  ///< consecutive failures to become unhealthy
  std::chrono::milliseconds start_period = 30s;  ///< failures while starting do not count
};

/** When the supervisor starts a service again after its process ended. */
struct restart_config {
  enum class policy { always, on_failure, never };
  policy when = policy::on_failure;
  unsigned max_attempts = 5;                  ///< quick failures in a row before giving up
  std::chrono::milliseconds backoff = 1s;     ///< first delay, doubled each attempt
  std::chrono::milliseconds max_backoff = 30s;
  std::chrono::milliseconds reset_after = 30s;  ///< healthy this long: the attempt count starts over
};

/** How a service is stopped. */
struct stop_config {
  int signal = 15;  ///< sent to the process group (SIGTERM)
  std::chrono::milliseconds timeout = 10s;  ///< then SIGKILL
  /**
   * Start-first restarts: how long the previous instance keeps the requests (and WebSocket
   * tunnels) it has in flight after the new one took over, before it gets its stop signal.
   */
  std::chrono::milliseconds drain = 10s;
};

/**
 * `hold:` of a service: while it is not accepting but expected back (starting, restarting,
 * backing off after a crash, failing its checks while alive), a request waits for it instead of
 * getting the fallback page at once — before its body is read, so any method can wait.
 */
struct hold_config {
  bool enabled = true;                        ///< `hold: off` turns it off
  std::chrono::milliseconds timeout = 5s;     ///< then the fallback page
  unsigned max_requests = 1000;               ///< waiting at once (all workers); more get the page at once
};

/** A `depends_on` entry. */
struct dependency {
  std::string service;
  enum class condition { started, healthy } until = condition::healthy;
};

/** What a visitor sees on a route whose service cannot answer (`fallback:` of a service). */
struct fallback_config {
  enum class page {
    automatic,    ///< loading while it starts, the 503 page when it failed, maintenance when set
    loading,      ///< always the loading page
    error,        ///< always the 503 page
    maintenance,  ///< always the maintenance page
  };
  page kind = page::automatic;
  std::string message;                       ///< shown on the page, under the status
  std::chrono::milliseconds refresh = 5s;    ///< the page's countdown, and Retry-After
};

/** A certificate chain and its private key (PEM files), as written under a listener's `tls:`. */
struct tls_certificate_config {
  std::string cert;  ///< absolute path: the leaf first, then the intermediates
  std::string key;   ///< absolute path
  source_mark mark;
};

/** `tls: { acme: … }`: certificates obtained (and renewed) from an ACME CA (RFC 8555). */
struct acme_config {
  static constexpr const char* lets_encrypt = "https://acme-v02.api.letsencrypt.org/directory";
  static constexpr const char* lets_encrypt_staging = "https://acme-staging-v02.api.letsencrypt.org/directory";
  std::string email;               ///< the account's contact (optional; CAs use it for expiry notices)
  std::vector<std::string> names;  ///< DNS names of the certificate (lower case; no wildcards)
  std::string directory = lets_encrypt;  ///< the CA's directory URL (`staging`: Let's Encrypt's staging)
  std::string ca_file;             ///< PEM to verify the directory's own TLS certificate; empty: system store
  enum class key { ecdsa_p256, rsa2048 } key_type = key::ecdsa_p256;  ///< of the certificates
  /**
   * How the CA checks that kinfra answers for the names. `automatic`: HTTP-01 when kinfra has a
   * plain HTTP listener, TLS-ALPN-01 otherwise, and the other one after a failed attempt.
   */
  enum class challenge { automatic, http01, tls_alpn01 } challenge_type = challenge::automatic;
  std::string eab_kid;             ///< External Account Binding (both or neither)
  std::string eab_hmac;            ///< base64url, as the CA gives it
  source_mark mark;

  /** Where the certificate for these names is kept: its key, then the chain, in one PEM file (0600). */
  std::string cert_file(const std::string& state_dir) const { return state_dir + "/acme/certificates/" + names.front() + ".pem"; }
  std::string key_file(const std::string& state_dir) const { return cert_file(state_dir); }
};

/** `tls:` on a listener: terminate HTTPS there. */
struct listener_tls_config {
  /** Chosen by SNI from the names inside each certificate; the first is the default. */
  std::vector<tls_certificate_config> certificates;
  bool self_signed = false;        ///< development: kinfra makes (once) and reuses a certificate
  std::vector<std::string> names;  ///< names of the self-signed certificate (default: localhost)
  std::optional<acme_config> acme;  ///< certificates from an ACME CA (instead of files)
  source_mark mark;
};

/** One `listen:` entry. */
struct listener_config {
  host_port address;
  std::optional<listener_tls_config> tls;  ///< HTTPS when set
  /** Plain HTTP that answers every request with 308 to https://, same host and path. */
  bool redirect_to_https = false;
  std::optional<std::uint16_t> https_port;  ///< where redirects go (default: the first TLS listener)
  /** Path prefixes a redirecting listener still serves over plain HTTP (e.g. /__status__). */
  std::vector<std::string> plain_paths;
  /** HTTP/2 by ALPN on a TLS listener (`h2`, then `http/1.1`). */
  bool http2 = true;
  /** Plain listener: HTTP/2 with prior knowledge (a connection that starts with the h2 preface). */
  bool h2c = false;
  source_mark mark;
};

/** How kinfra connects to a service's `https://` targets. */
struct upstream_tls_config {
  std::string ca_file;              ///< PEM bundle to verify against; empty: the system's store
  std::string server_name;          ///< SNI and the name checked; empty: the URL's host
  bool insecure_skip_verify = false;  ///< no verification at all (logged as a warning)
  source_mark mark;
};

/** How kinfra speaks to a service: HTTP/1.1 (the default), or HTTP/2 (gRPC) over TLS or plain. */
enum class upstream_protocol : std::uint8_t { http1, h2, h2c };

/** One `services:` entry. */
struct service_config {
  std::string name;
  std::vector<upstream_url> targets;     ///< where the proxy forwards; round-robin when several
  upstream_tls_config tls;               ///< for the https:// targets
  std::optional<host_port> monitor;      ///< `url: tcp://…`: checked and shown, not routable
  std::vector<std::string> command;      ///< argv; empty when kinfra does not run the service
  bool command_is_shell = false;         ///< command given as one string, run by /bin/sh -c
  std::string cwd;                       ///< absolute; defaults to the folder of routes.yaml
  std::map<std::string, std::string> env;  ///< ${VAR} already expanded from kinfra's environment
  std::optional<std::uint16_t> port;     ///< passed as PORT; implies target http://127.0.0.1:PORT
  /**
   * `port: auto`: kinfra picks a free port for each process it starts and passes it as PORT;
   * restarts are start-first (the new process on a new port takes over once healthy).
   */
  bool port_auto = false;
  unsigned instances = 1;                ///< `instances: N`: processes run at once (INSTANCE=0..N-1)
  /** `protocol: h2|h2c`: requests go as HTTP/2 streams (gRPC), only from HTTP/2 clients. */
  upstream_protocol protocol = upstream_protocol::http1;
  health_config health;
  restart_config restart;
  stop_config stop;
  hold_config hold;
  std::vector<dependency> depends_on;
  std::size_t log_lines = 1000;          ///< lines kept in the service's log ring
  bool autostart = true;                 ///< false: started only when asked (dashboard, CLI, API)
  fallback_config fallback;
  source_mark mark;

  /** True when kinfra runs this service (it has a command). */
  bool managed() const { return !command.empty(); }
  /** Its processes get their ports from kinfra (`port: auto`): the proxy follows them. */
  bool dynamic_port() const { return port_auto && managed(); }
  /** The address health checks go to, if any: the port, the monitor URL, or the first target. */
  std::optional<host_port> probe_address() const;
};

/** One `routes:` entry. */
struct route_config {
  std::string host;     ///< "" (any host), "example.com" or "*.example.com"; lower case
  std::string path;     ///< normalised prefix: starts with '/', no trailing '/' unless it is "/"
  std::string service;  ///< name of a service in `services`
  bool strip_prefix = false;
  std::optional<std::uint64_t> max_body_bytes;  ///< overrides limits.max_body_bytes
  bool json = false;  ///< an API route: kinfra's own answers on it are JSON, whatever Accept says
  source_mark mark;

  /** Its name in /metrics, the access log and the dashboard: the path, after the host if any. */
  std::string label() const { return host.empty() ? path : host + path; }
};

/** kinfra's own pages: the dashboard, the status/action/logs API and who may use them. */
struct admin_config {
  std::optional<host_port> listen = host_port{"127.0.0.1", 9000};  ///< direct listener; none: off
  std::string token;          ///< `admin_token` or $KINFRA_ADMIN_TOKEN; empty: actions need none
  bool allow_remote = false;  ///< serve non-loopback clients too (needs a token and `hosts`)
  /**
   * `admin_hosts:` names an admin request's Host may carry besides loopback literals and
   * `localhost` (anything else is refused: DNS rebinding). Required with allow_remote.
   */
  std::vector<admin_host> hosts;
  bool actions = true;        ///< restart/stop/start/maintenance from the dashboard
  std::string templates_dir;  ///< overrides of the embedded pages (default ~/.kinfra/templates)
  std::map<std::string, std::string> variables;  ///< extra {{variables}} for templates
  bool public_details = false;  ///< fallback pages also show pid, port, uptime and recent logs
  /** Where Prometheus metrics are served besides /__metrics__ (`metrics_path:`); empty: only there. */
  std::string metrics_path = "/metrics";
};

/** `access_log:` and `log_format:`: one line per request. */
struct access_log_config {
  enum class format { combined, json };
  std::string to = "off";  ///< "off" (the default, as Caddy), "stdout", "stderr", or an absolute file path
  format fmt = format::combined;
  source_mark mark;

  bool off() const { return to == "off"; }
  bool same_output(const access_log_config& o) const { return to == o.to && fmt == o.fmt; }
};

/** The whole of routes.yaml. */
struct config {
  std::string source_path;              ///< the file it was read from
  std::vector<listener_config> listen;  ///< at least one
  std::string state_dir;                ///< where kinfra keeps what it makes (self-signed certificates)
  unsigned workers = 1;                 ///< resolved: `auto` becomes the number of cores
  timeouts_config timeouts;
  limits_config limits;
  upstream_pool_config upstream;
  admin_config admin;
  access_log_config access_log;
  std::vector<route_config> routes;
  std::vector<service_config> services;  ///< in file order

  /** The service named `name`, or nullptr. */
  const service_config* find_service(const std::string& name) const;
  /** True when some listener terminates TLS. */
  bool has_tls_listener() const;
  /** Index of the service named `name` in `services`, or -1. */
  int service_index(const std::string& name) const;
  /**
   * Services grouped by start order: every service comes after those it depends on; services in
   * the same group do not depend on each other. (Cycles are refused when loading.)
   */
  std::vector<std::vector<std::size_t>> start_levels() const;
};

}  // namespace kinfra
