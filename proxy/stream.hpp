#pragma once
/**
 * @file A connection that is plain TCP or TLS over TCP, decided at run time, or one HTTP/2 stream
 * (an h2_channel, see there).
 *
 * The session and the relays are written once against this type. It is an Asio AsyncStream
 * (read_some/write_some with any completion token), so `net::async_write` and Beast's
 * serializer work on it unchanged; each operation is one branch on whether TLS was started.
 */

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <memory>
#include <utility>

#include "proxy/h2_channel.hpp"
#include "proxy/tls_stream.hpp"

namespace kinfra::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class stream {
 public:
  using executor_type = tcp::socket::executor_type;

  explicit stream(tcp::socket socket) : socket_(std::move(socket)) {}
  explicit stream(const executor_type& ex) : socket_(ex) {}
  /** One HTTP/2 stream's request and response, as if they were a connection. */
  explicit stream(std::shared_ptr<h2_channel> channel)
      : socket_(channel->executor()), channel_(std::move(channel)) {}
  // The TLS layer refers to the socket member: the object stays where it was made.
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& socket() { return socket_; }
  bool is_open() const { return channel_ ? !channel_->closed() : socket_.is_open(); }
  /** An HTTP/2 stream rather than a connection of its own. */
  bool is_h2_stream() const { return channel_ != nullptr; }
  h2_channel* channel() { return channel_.get(); }
  /** Serves another HTTP/2 stream (or none, with null): a session kept for reuse moves on. */
  void rebind(std::shared_ptr<h2_channel> channel) {
    channel_ = std::move(channel);
    bytes_in = bytes_out = 0;
  }
  /** Reached over TLS (its own, or its HTTP/2 connection's). */
  bool secure() const { return tls_ != nullptr || (channel_ && channel_->secure); }
  /** The address the client connected to. */
  tcp::endpoint local_endpoint(boost::system::error_code& ec) const {
    if (channel_) return channel_->local_endpoint;
    return socket_.local_endpoint(ec);
  }
  /** The client's socket (-1 for an HTTP/2 stream, which shares its connection's). */
  int native_fd() { return channel_ ? -1 : socket_.native_handle(); }

  /** From now on, bytes go through TLS with `ctx` (the handshake is the caller's next step). */
  void start_tls(net::ssl::context& ctx) { tls_ = std::make_unique<tls_stream>(socket_, ctx); }
  bool is_tls() const { return tls_ != nullptr; }
  /** Its TLS state, to be held while the connection is dormant (nothing outstanding). */
  std::unique_ptr<tls_stream> release_tls() { return std::move(tls_); }
  /** Goes on with the TLS state a dormant connection kept (null: plain). */
  void adopt_tls(std::unique_ptr<tls_stream> tls) {
    tls_ = std::move(tls);
    if (tls_) tls_->rebind(socket_);
  }

  /** Bytes read and written so far (kept by the callers of read/write, for logs and metrics). */
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  tls_stream& tls() { return *tls_; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (channel_) {
      return net::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
          [](auto handler, h2_channel* ch, net::mutable_buffer b) { ch->read(b, std::move(handler)); }, token,
          channel_.get(), first_buffer(buffers));
    }
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (channel_) {
      return net::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
          [](auto handler, h2_channel* ch, const ConstBuffers& b) { ch->write(b, std::move(handler)); }, token,
          channel_.get(), buffers);
    }
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

  /**
   * Writes what the socket takes at once, without waiting: how many bytes (usually all). Plain
   * TCP only; 0 on TLS and on an HTTP/2 stream, whose caller writes the rest asynchronously as
   * before. A write that completes here costs no suspension of the coroutine and no trip through
   * the reactor and the scheduler. `ec` is set only for a real error (not for a full socket).
   */
  template <class ConstBuffers>
  std::size_t write_now(const ConstBuffers& buffers, boost::system::error_code& ec) {
    if (channel_ || tls_) return 0;
    if (!socket_.non_blocking()) {
      socket_.non_blocking(true, ec);
      if (ec) return 0;
    }
    std::size_t n = socket_.write_some(buffers, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) ec = {};
    return n;
  }

  /** Ends pending operations (they complete with operation_aborted). */
  void cancel() {
    if (channel_) return channel_->cancel();
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }
  void close() {
    if (channel_) return channel_->close();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  /**
   * No more bytes will be sent: a TCP half-close. (On TLS this is not a close_notify, which
   * would need a round trip; the peer sees the end of the stream.)
   */
  void shutdown_send() {
    if (channel_) return channel_->shutdown_send();
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }

 private:
  template <class MutableBuffers>
  static net::mutable_buffer first_buffer(const MutableBuffers& buffers) {
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it)
      if (net::mutable_buffer b(*it); b.size() > 0) return b;
    return {};
  }

  tcp::socket socket_;
  std::unique_ptr<tls_stream> tls_;
  std::shared_ptr<h2_channel> channel_;
};

}  // namespace kinfra::proxy
