#pragma once
/**
 * @file Keep-alive client connections that have been idle a while, held without a session.
 *
 * A session waiting for the next request keeps its coroutine frames, its read buffer, the
 * capacity its strings grew to, and Asio's per-socket reactor state and pending read: several
 * KiB. When an HTTP/1.1 connection has been idle for `worker::rest_after`, its session ends
 * and the worker's dormant_set takes the bare descriptor: it leaves Asio's reactor for an epoll
 * set of the worker's own, and what stays in memory is an entry of 72 bytes (descriptor,
 * listener, idle deadline) and, over TLS, its OpenSSL state (whose record buffers OpenSSL gives
 * back while it is idle). When the client sends its next request, the descriptor goes back to
 * Asio and a new session serves it (worker::wake); when the idle timeout passes, or kinfra drains
 * or stops, it closes. The set is woken through one Asio wait on its epoll descriptor.
 */

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <memory>

namespace kinfra::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class worker;
class tls_stream;
struct listener_info;

class dormant_set {
 public:
  explicit dormant_set(worker& w);
  dormant_set(const dormant_set&) = delete;
  dormant_set& operator=(const dormant_set&) = delete;
  /** (The worker's stop closed its connections first, through their close_now.) */
  ~dormant_set();

  /**
   * Holds `socket` (an idle keep-alive connection, nothing unread in the session) and, for HTTPS,
   * its TLS state until it is readable or `idle_deadline` (steady ms) passes. Worker thread.
   */
  void rest(tcp::socket socket, std::shared_ptr<const listener_info> listener, std::int64_t idle_deadline,
            std::unique_ptr<tls_stream> tls);
  /** Stops waiting for good (the worker stops); the entries close through the worker's close_now. */
  void shutdown();

 private:
  struct entry;
  void arm();
  void on_ready();
  /** Readable: a request (a session takes over), the client's close, or nothing after all. */
  void on_readable(entry& e);
  /** Closes `e`'s connection and frees it. */
  void end(entry& e);

  worker& w_;
  int epoll_fd_ = -1;
  net::posix::stream_descriptor ready_;  ///< the epoll descriptor, to wait on in Asio's loop
  bool armed_ = false;
  bool stopped_ = false;  ///< shutdown(): a wait that completes anyway is not armed again
};

}  // namespace kinfra::proxy
