#pragma once
/**
 * @file A multiplexed HTTP/2 connection to a service with `protocol: h2` (TLS, ALPN h2) or `h2c`
 * (plain, prior knowledge): the client side of nghttp2. Each worker keeps a small pool of them per
 * target (target_state::h2); many relayed streams share one connection, up to the service's
 * SETTINGS_MAX_CONCURRENT_STREAMS. A connection without streams closes after the pool's
 * `upstream.idle_timeout`.
 */

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/h2_relay.hpp"
#include "proxy/stream.hpp"

struct nghttp2_session;

namespace kinfra::proxy {

struct target_state;

class h2_upstream : public std::enable_shared_from_this<h2_upstream> {
 public:
  explicit h2_upstream(const net::any_io_executor& ex);
  ~h2_upstream();
  h2_upstream(const h2_upstream&) = delete;
  h2_upstream& operator=(const h2_upstream&) = delete;

  /** Connects to `t` within `timeout` (TLS with ALPN h2 for an https:// target); "" when it worked. */
  net::awaitable<std::string> connect(const target_state& t, std::chrono::milliseconds timeout);
  /**
   * Serves the connection until it ends, stays without streams for `idle_timeout`, or a write
   * makes no progress for `stall_timeout` (a service that stopped reading).
   */
  net::awaitable<void> run(std::chrono::milliseconds idle_timeout, std::chrono::milliseconds stall_timeout);

  net::any_io_executor get_executor() { return io_.get_executor(); }
  /** Open, not going away, and below the service's stream limit. */
  bool usable() const;
  /** Opens a stream for `r` (its request fields are set); false when the connection refuses. */
  bool submit(const std::shared_ptr<h2_relay>& r);
  /** More request bytes (or its end) for stream `id`. */
  void resume(std::int32_t id);
  /** The client's stream is gone: reset ours. */
  void reset(std::int32_t id, std::uint32_t code);
  /** The client took `n` response bytes of stream `id`: our window opens by as much. */
  void consumed(std::int32_t id, std::size_t n);
  void close();

  struct callbacks;

 private:
  net::awaitable<void> read_loop();
  net::awaitable<void> write_loop(std::chrono::milliseconds idle_timeout, std::chrono::milliseconds stall_timeout);
  void wake();
  h2_relay* find(std::int32_t id);

  stream io_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::shared_ptr<h2_relay>> relays_;
  boost::beast::flat_buffer in_;
  std::vector<std::uint8_t> out_;
  net::steady_timer wake_;
  bool waiting_ = false;
  bool wake_pending_ = false;
  bool done_ = false;
  bool connected_ = false;
};

}  // namespace kinfra::proxy
