#pragma once
/**
 * @file Test support: real sockets on 127.0.0.1 with timeouts, Beast's parser for what comes back,
 * a scriptable upstream server, and the kinfra executable run as a child process.
 *
 * Every blocking call here has a timeout, so a broken proxy fails a test instead of hanging it.
 * The header stays free of Asio and Beast so that test files compile quickly.
 */

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kt {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

/** Header fields in arrival order, looked up case-insensitively. */
struct header_list {
  std::vector<std::pair<std::string, std::string>> fields;

  /** The first value of `name`, or "" */
  std::string get(std::string_view name) const;
  bool has(std::string_view name) const;
  int count(std::string_view name) const;
  void add(std::string name, std::string value) { fields.emplace_back(std::move(name), std::move(value)); }
};

struct request {
  std::string method;
  std::string target;
  int version = 11;
  header_list headers;
  std::string body;
};

struct response {
  int status = 0;
  int version = 11;
  header_list headers;
  std::string body;
};

/** How a test client opens TLS (socket_conn::start_tls). */
struct tls_options {
  std::string sni;          ///< server name sent; empty: none
  std::string ca_file;      ///< verify the server against this CA (and `sni` as its name); empty: no checks
  std::string alpn = "http/1.1";  ///< comma-separated offer; empty: no ALPN
  int min_version = 0;      ///< e.g. 0x0303 (TLS1_2_VERSION); 0: library default
  int max_version = 0;
  std::string ciphers;      ///< TLS 1.2 cipher list; empty: default
  std::string ciphersuites; ///< TLS 1.3 suites in the client's order; empty: default
  std::shared_ptr<void> session;  ///< resume this session (from tls_info::session)
};

/** What a TLS handshake gave. */
struct tls_info {
  bool ok = false;
  std::string error;        ///< why it failed
  std::string subject_cn;   ///< of the server's certificate
  std::string fingerprint;  ///< SHA-256 of the server's certificate, "AB:CD:…"
  std::string alpn;         ///< the protocol the server chose, or ""
  std::string version;      ///< "TLSv1.3", …
  std::string cipher;       ///< "TLS_AES_128_GCM_SHA256", …
  bool resumed = false;
};

/** A blocking TCP connection with per-call timeouts (plain, or TLS after start_tls). */
class socket_conn {
 public:
  explicit socket_conn(int fd) : fd_(fd) {}
  socket_conn(const socket_conn&) = delete;
  socket_conn& operator=(const socket_conn&) = delete;
  ~socket_conn();

  int fd() const { return fd_; }
  /** Writes everything; false when the peer is gone or `timeout` passes. */
  bool send(std::string_view data, ms timeout = 10s);
  /** Reads what is available (waiting up to `timeout`); 0 on EOF, -1 on error or timeout. */
  long recv_some(char* buf, std::size_t size, ms timeout = 10s);
  /** Reads until EOF or `timeout`; `eof` tells which. */
  std::string recv_all(ms timeout, bool* eof = nullptr);
  /** True when the peer closed (EOF or reset) within `timeout`, discarding data until then. */
  bool wait_closed(ms timeout);
  void shutdown_write();
  void close();

  /** Runs a TLS client handshake; from then on send and receive go through TLS. */
  tls_info start_tls(const tls_options& options, ms timeout = 10s);
  /** The TLS session, to resume on another connection (read a response first for TLS 1.3). */
  std::shared_ptr<void> tls_session() const;
  /** The TLS records that send(plain) would write, without writing them (send them with send_raw). */
  std::string seal(std::string_view plain);
  /** Writes bytes on the socket as they are, past TLS. */
  bool send_raw(std::string_view bytes, ms timeout = 10s);

  /**
   * Reads one HTTP response with Beast's parser, starting with bytes already buffered.
   * @param head the request was HEAD (no body follows)
   * @return false on timeout, EOF or a parse error before the response was complete
   */
  bool read_response(response& out, bool head = false, ms timeout = 10s);
  /** Reads one HTTP request (server side). */
  bool read_request(request& out, ms timeout = 10s);
  /** Reads just a request header, leaving the body in the socket / buffer (for streaming tests). */
  bool read_request_header(request& out, ms timeout = 10s);
  /** Bytes read from the socket but not yet consumed by a parse. */
  std::string& buffered() { return buffer_; }

 private:
  int fd_;
  std::string buffer_;
  std::shared_ptr<void> ssl_;  ///< SSL*, when TLS was started
};

/** Connects to 127.0.0.1:port (throws on failure). */
std::unique_ptr<socket_conn> connect_to(std::uint16_t port);

/** Connects to 127.0.0.1:port and runs a TLS handshake; `info` says how it went. */
std::unique_ptr<socket_conn> connect_tls(std::uint16_t port, const tls_options& options, tls_info& info);

/** Reads and counts exactly `n` body bytes that follow a parsed header on `c` (20 s per read at most). */
std::uint64_t drain(socket_conn& c, std::uint64_t n);

/** Sends `n` bytes of a repeating pattern on `c`; false when the peer stopped taking them. */
bool pour(socket_conn& c, std::uint64_t n);

/** Runs a command with /bin/sh; returns its exit status and (with `output`) stdout + stderr. */
int run_shell(const std::string& command, std::string* output = nullptr);

/** One request on a new connection; returns the response (status 0 when none arrived). */
response http_request(std::uint16_t port, std::string_view method, std::string_view target,
                      const header_list& headers = {}, std::string_view body = {}, ms timeout = 10s);
inline response http_get(std::uint16_t port, std::string_view target, const header_list& headers = {}) {
  return http_request(port, "GET", target, headers);
}

/**
 * An HTTP server on 127.0.0.1 (ephemeral port) for the proxy to forward to. Each connection runs
 * `handler` on its own thread. The default handler answers every request with an echo: status
 * 200 and a body `METHOD TARGET\n` + one `name: value` line per header + `\n` + the request body.
 */
class test_upstream {
 public:
  using handler = std::function<void(socket_conn&)>;
  test_upstream();
  explicit test_upstream(handler h);
  test_upstream(const test_upstream&) = delete;
  ~test_upstream();

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  /** Requests the echo handler has seen, in order. */
  std::vector<request> requests() const;
  std::size_t request_count() const;
  void record(const request& r);

  /** The default behaviour, callable from custom handlers. */
  void echo(socket_conn& c);

 private:
  void accept_loop();

  handler handler_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::vector<int> conn_fds_;
  std::vector<request> requests_;
};

/** Formats an echo body the way test_upstream::echo does, parsed back by `parse_echo`. */
struct echo_view {
  std::string method, target;
  header_list headers;
  std::string body;
};
echo_view parse_echo(const std::string& body);

/**
 * A local port whose connections hang in SYN-SENT, like a host that drops packets: a listener
 * with a full accept queue, so the kernel drops further SYNs.
 */
class blackhole {
 public:
  blackhole();
  ~blackhole();
  std::uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::vector<int> fillers_;
  std::uint16_t port_ = 0;
};

/** The result of running the kinfra executable to completion. */
struct run_result {
  int exit_code = -1;
  std::string out, err;
};
run_result run_kinfra(const std::vector<std::string>& args, ms timeout = 30s);

/** A temporary folder, removed with its contents at the end of the test. */
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

/**
 * kinfra running as a child process with a generated routes.yaml, listening on an ephemeral
 * port. `routes` is the YAML without `listen:` (the fixture adds `listen: 127.0.0.1:0` and
 * `admin_listen: 127.0.0.1:0`).
 */
class kinfra_process {
 public:
  explicit kinfra_process(const std::string& routes, bool add_listen = true);
  ~kinfra_process();

  std::uint16_t port(std::size_t i = 0) const { return ports_.at(i); }
  /** The direct admin listener's port (admin_listen), when it is on. */
  std::uint16_t admin_port() const { return admin_ports_.at(0); }
  pid_t pid() const { return pid_; }
  /** Resident memory now / at its peak, from /proc (KiB). */
  long rss_kib() const;
  long peak_rss_kib() const;
  /** What kinfra wrote to stdout and stderr so far. */
  std::string log() const;
  /** SIGTERM, then waits; returns the exit code (or 128+signal). */
  int stop(ms timeout = 10s);
  /**
   * Waits for it to exit by itself (after a signal the test sent); the exit code, or -2 when it
   * had to be killed after `timeout`.
   */
  int wait_for_exit(ms timeout);
  const temp_dir& dir() const { return dir_; }

 private:
  temp_dir dir_;
  pid_t pid_ = -1;
  std::vector<std::uint16_t> ports_;
  std::vector<std::uint16_t> admin_ports_;
};

/**
 * routes.yaml (without `listen:`) sending every path to one service at `url`, with one worker and
 * no health check (`health: off`), for tests of the data path itself.
 */
std::string one_service(const std::string& url, const std::string& extra = "");

/**
 * Memory bounds in tests hold for a normal build only: sanitizers keep shadow memory and
 * quarantines (scripts/hardening.sh builds the suite with them). The factor to allow for.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr long memory_slack = 8;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr long memory_slack = 8;
#else
inline constexpr long memory_slack = 1;
#endif
#else
inline constexpr long memory_slack = 1;
#endif

/** Path of the kinfra executable under test. */
std::string kinfra_binary();

/** Path of kinfra-test-service, the program supervisor tests run as a service. */
std::string test_service_binary();

/**
 * One `services:` entry (indented for routes.yaml) that runs kinfra-test-service as `name` with
 * `args`, on `port` when given, followed by `extra` (more indented keys).
 */
std::string test_service_entry(const std::string& name, const std::vector<std::string>& args,
                               std::optional<std::uint16_t> port, const std::string& extra = "");

/** An unlabelled sample of GET /metrics on 127.0.0.1:port, e.g. kinfra_connections_active (-1: none). */
long metric_value(std::uint16_t port, const std::string& name);

/**
 * A TCP port for a service (which needs one in routes.yaml): free now, outside the ephemeral range,
 * and reserved against every other test process until this one exits.
 */
std::uint16_t free_port();

/** A helper program a test runs (pebble, …), found on PATH: SIGTERM and waited for when it goes. */
class child_process {
 public:
  /** `env`: NAME=VALUE pairs added to the test's environment; stdout and stderr go to `log_path`. */
  child_process(const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string log_path);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  std::string log() const;
  bool running() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

/** GET /__status__ (optionally ?service=NAME, with the admin token) through kinfra; null JSON when it fails. */
nlohmann::json get_status(std::uint16_t port, const std::string& service = "", const std::string& token = "");

/** GET a JSON document; null when it fails or is not JSON. */
nlohmann::json get_json(std::uint16_t port, const std::string& target, const std::string& token = "");

/** Polls `condition` every 20 ms until it holds or `timeout` passes. */
bool wait_until(const std::function<bool()>& condition, ms timeout = 10s);

/** The `state` of a service in /__status__, or "" */
std::string state_of(std::uint16_t port, const std::string& service, const std::string& token = "");

/** True when a process with this pid exists (and is not a zombie). */
bool process_alive(pid_t pid);

/** The lines of a text file (empty when it does not exist). */
std::vector<std::string> read_lines(const std::string& path);

}  // namespace kt
