#pragma once
/**
 * @file The access log: one line per request, in nginx's `combined` format or as JSON.
 *
 * A worker formats its line (a few hundred bytes, into a reused buffer) and hands it to spdlog's
 * asynchronous queue; one background thread writes. When that thread falls behind (a slow disk, a
 * blocked stdout pipe), the oldest queued lines are dropped and counted, and requests never wait.
 */

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/config.hpp"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace kinfra {

/** What is logged about one request. Views are valid only during `access_log::write`. */
struct access_entry {
  std::chrono::system_clock::time_point time;  ///< when the request started
  std::string_view client_ip;
  std::string_view method;     ///< empty when the request line could not be read
  std::string_view target;
  unsigned version = 11;       ///< 10, 11 or 20 (HTTP/2)
  std::string_view host;       ///< the Host header as sent
  std::string_view referer;
  std::string_view user_agent;
  std::string_view route;      ///< the route label (as in /metrics), or empty
  std::string_view service;    ///< the routed service, or empty
  std::string_view upstream;   ///< the target the request went to, or empty
  unsigned status = 0;         ///< 0: no response was sent (the client left first; logged as 499)
  std::uint64_t body_bytes_sent = 0;  ///< response body bytes (nginx's $body_bytes_sent)
  std::uint64_t bytes_sent = 0;       ///< everything sent, head included
  std::uint64_t bytes_received = 0;
  std::chrono::microseconds duration{0};
  bool tls = false;
};

/** Appends `e` as one combined-format line (no newline) to `out`. */
void format_combined(const access_entry& e, std::string& out);
/** Appends `e` as one JSON object (no newline) to `out`. */
void format_json(const access_entry& e, std::string& out);

class access_log {
 public:
  /**
   * Opens the log `cfg` describes (stdout, stderr or a file, created with its folder when
   * missing). Throws std::runtime_error naming the file when it cannot be opened.
   */
  explicit access_log(const access_log_config& cfg);
  ~access_log();
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;

  const access_log_config& settings() const { return cfg_; }

  /** Formats and queues one line; any thread, never blocks on I/O. */
  void write(const access_entry& e);
  /** Makes sure what was queued is written (for shutdown). */
  void flush();
  /**
   * Opens the file again by its name (after logrotate moved it); nothing for stdout/stderr.
   * False with `error` when the new file cannot be opened: the old one stays in use.
   */
  bool reopen(std::string& error);

  /** Lines dropped by every access log of this process because the writer fell behind. */
  static std::uint64_t dropped();

 private:
  access_log_config cfg_;
  std::shared_ptr<spdlog::details::thread_pool> pool_;  ///< the writer thread, kept while this lives
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<void> sink_;  ///< the file sink, for reopen()
};

}  // namespace kinfra
