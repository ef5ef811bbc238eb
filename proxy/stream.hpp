#pragma once
/**
 * @file A connection that is plain TCP or TLS over TCP, decided at run time.
 *
 * The session and the relays are written once against this type. It is an Asio AsyncStream
 * (read_some/write_some with any completion token), so `net::async_write` and Beast's
 * serializer work on it unchanged; each operation is one branch on whether TLS was started.
 */

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <cstdint>
#include <memory>
#include <utility>

namespace kinfra::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class stream {
 public:
  using executor_type = tcp::socket::executor_type;
  using tls_stream = net::ssl::stream<tcp::socket&>;

  explicit stream(tcp::socket socket) : socket_(std::move(socket)) {}
  explicit stream(const executor_type& ex) : socket_(ex) {}
  // The TLS layer refers to the socket member: the object stays where it was made.
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& socket() { return socket_; }
  bool is_open() const { return socket_.is_open(); }

  /** From now on, bytes go through TLS with `ctx` (the handshake is the caller's next step). */
  void start_tls(net::ssl::context& ctx) { tls_ = std::make_unique<tls_stream>(socket_, ctx); }
  bool is_tls() const { return tls_ != nullptr; }

  /** Bytes read and written so far (kept by the callers of read/write, for logs and metrics). */
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  tls_stream& tls() { return *tls_; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

  /** Ends pending operations (they complete with operation_aborted). */
  void cancel() {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  /**
   * No more bytes will be sent: a TCP half-close. (On TLS this is not a close_notify, which
   * would need a round trip; the peer sees the end of the stream.)
   */
  void shutdown_send() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }

 private:
  tcp::socket socket_;
  std::unique_ptr<tls_stream> tls_;
};

}  // namespace kinfra::proxy
