#pragma once
/**
 * @file TLS over a TCP socket the way nginx does it: OpenSSL reads and writes the socket itself
 * (a BIO over its descriptor), and an operation that cannot go on waits for readiness.
 *
 * Asio's `ssl::stream` instead moves every byte through a BIO pair and two 17 KiB buffers of its
 * own, allocated and zero-filled for each connection, and copied through for each record. Here a
 * connection costs its SSL object and OpenSSL's record buffers, which SSL_MODE_RELEASE_BUFFERS
 * gives back while it is idle.
 *
 * It is an Asio AsyncStream (async_read_some / async_write_some with any completion token), with
 * the handshake and shutdown of `ssl::stream`. One read and one write may be outstanding at once.
 * An operation that finishes at once completes through the executor, never inside its initiation.
 * A write that failed or was cancelled may have sent part of a record: the connection can no
 * longer be written to (every caller closes it then; OpenSSL would refuse other bytes anyway).
 */

#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>

#include <cstddef>
#include <string>
#include <type_traits>

namespace kinfra::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class tls_stream {
 public:
  using executor_type = tcp::socket::executor_type;
  using handshake_type = net::ssl::stream_base::handshake_type;
  static constexpr std::size_t join_limit = 8192;

  /** A TLS connection over `socket` (which must outlive it) with `ctx`'s settings. Throws on no memory. */
  tls_stream(tcp::socket& socket, net::ssl::context& ctx);
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  SSL* native_handle() const { return ssl_; }
  executor_type get_executor() { return socket_->get_executor(); }
  /**
   * From now on over `socket` (the same connection, taken over by another session after it was
   * held dormant: the TLS state goes on). No operation may be outstanding.
   */
  void rebind(tcp::socket& socket);

  /** What one step of an operation came to. */
  enum class step { done, want_read, want_write };

  /** One attempt of each operation, without waiting (`ec` set when it failed: then `done`). */
  step try_handshake(boost::system::error_code& ec);
  step try_read(net::mutable_buffer into, std::size_t& n, boost::system::error_code& ec);
  step try_write(net::const_buffer from, std::size_t& n, boost::system::error_code& ec);
  step try_shutdown(boost::system::error_code& ec);

  /** Completes with (error_code). */
  template <class Token>
  auto async_handshake(handshake_type type, Token&& token) {
    set_role(type);
    return run<false>([this](std::size_t&, boost::system::error_code& ec) { return try_handshake(ec); },
                      std::forward<Token>(token));
  }
  /** A server handshake whose first bytes were read already; completes with (error_code, bytes used: all). */
  template <class ConstBuffer, class Token>
  auto async_handshake(handshake_type type, const ConstBuffer& already_read, Token&& token) {
    set_role(type);
    const auto b = net::const_buffer(already_read);
    prefix_.assign(static_cast<const char*>(b.data()), b.size());
    prefix_at_ = 0;
    return run<true>(
        [this, size = b.size()](std::size_t& n, boost::system::error_code& ec) {
          n = size;
          return try_handshake(ec);
        },
        std::forward<Token>(token));
  }
  /** Completes with (error_code, bytes): into the first non-empty buffer. */
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    const net::mutable_buffer b = first(buffers);
    return run<true>([this, b](std::size_t& n, boost::system::error_code& ec) { return try_read(b, n, ec); },
                     std::forward<Token>(token));
  }
  /**
   * Completes with (error_code, bytes). Small buffers are joined (up to 8 KiB) into one record, as
   * Asio's ssl::stream does: a response head and a short body go out in one record and one send.
   */
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return run<true>(
        [this, buffers](std::size_t& n, boost::system::error_code& ec) {
          const net::const_buffer b = first(buffers);
          if (b.size() >= join_limit || net::buffer_size(buffers) == b.size()) return try_write(b, n, ec);
          // (Joined again on a retry: the same bytes, which is all OpenSSL asks of a retried write.)
          char joined[join_limit];
          const std::size_t size = net::buffer_copy(net::buffer(joined), buffers);
          return try_write(net::const_buffer(joined, size), n, ec);
        },
        std::forward<Token>(token));
  }
  /** Sends close_notify and waits for the peer's; completes with (error_code). */
  template <class Token>
  auto async_shutdown(Token&& token) {
    return run<false>([this](std::size_t&, boost::system::error_code& ec) { return try_shutdown(ec); },
                      std::forward<Token>(token));
  }

  /** Bytes read before TLS started, for the BIO (see tls_stream.cpp). */
  std::size_t take_prefix(char* out, std::size_t len);

 private:
  void set_role(handshake_type type);

  template <class Buffers>
  static auto first(const Buffers& buffers) {
    using buffer = std::conditional_t<net::is_mutable_buffer_sequence<Buffers>::value, net::mutable_buffer,
                                      net::const_buffer>;
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it)
      if (buffer b(*it); b.size() > 0) return b;
    return buffer();
  }

  /** Tries `attempt` until it is done, waiting for readiness in between. */
  template <class Attempt, bool WithSize>
  struct op {
    tls_stream& s;
    Attempt attempt;
    bool started = false;
    boost::system::error_code ec{};
    std::size_t n = 0;
    bool finished = false;

    template <class Self>
    void operator()(Self& self, boost::system::error_code wait_ec = {}) {
      if (finished) return complete(self);  // (posted: it finished within its initiation)
      if (wait_ec) {
        ec = wait_ec;
        return complete(self);
      }
      const bool inline_start = !started;
      started = true;
      switch (attempt(n, ec)) {
        case step::want_read: return s.socket_->async_wait(tcp::socket::wait_read, std::move(self));
        case step::want_write: return s.socket_->async_wait(tcp::socket::wait_write, std::move(self));
        case step::done: break;
      }
      if (inline_start) {
        finished = true;
        return net::post(s.get_executor(), std::move(self));
      }
      complete(self);
    }
    template <class Self>
    void complete(Self& self) {
      if constexpr (WithSize) self.complete(ec, n);
      else self.complete(ec);
    }
  };

  template <bool WithSize, class Attempt, class Token>
  auto run(Attempt attempt, Token&& token) {
    using signature = std::conditional_t<WithSize, void(boost::system::error_code, std::size_t),
                                         void(boost::system::error_code)>;
    return net::async_compose<Token, signature>(op<Attempt, WithSize>{*this, std::move(attempt)}, token, *socket_);
  }

  tcp::socket* socket_;
  SSL* ssl_ = nullptr;
  std::string prefix_;
  std::size_t prefix_at_ = 0;
};

}  // namespace kinfra::proxy
