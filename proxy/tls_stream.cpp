#include "proxy/tls_stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/ssl/error.hpp>

#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

namespace kinfra::proxy {
namespace {

/** What the BIO of a connection knows: its stream (for the socket and the bytes read before TLS). */
struct bio_target {
  tls_stream* stream;
  tcp::socket* socket;
  int last_errno = 0;  ///< of the last failed recv/send (OpenSSL may change errno after)
};

int bio_read(BIO* b, char* out, int len) {
  auto* t = static_cast<bio_target*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  if (std::size_t n = t->stream->take_prefix(out, static_cast<std::size_t>(len))) return static_cast<int>(n);
  const ssize_t n = ::recv(t->socket->native_handle(), out, static_cast<std::size_t>(len), MSG_DONTWAIT);
  if (n >= 0) return static_cast<int>(n);
  t->last_errno = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
  return -1;
}

int bio_write(BIO* b, const char* in, int len) {
  auto* t = static_cast<bio_target*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  const ssize_t n = ::send(t->socket->native_handle(), in, static_cast<std::size_t>(len), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  t->last_errno = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
  return -1;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // (nothing is buffered here)
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int bio_destroy(BIO* b) {
  delete static_cast<bio_target*>(BIO_get_data(b));
  BIO_set_data(b, nullptr);
  return 1;
}

/** The BIO kind over a socket's descriptor, made once (thread-safe static). */
const BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* const method = [] {
    const int index = BIO_get_new_index();
    BIO_METHOD* m = index > 0 ? BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "kinfra socket") : nullptr;
    if (!m) return m;
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
  }();
  return method;
}

}  // namespace

tls_stream::tls_stream(tcp::socket& socket, net::ssl::context& ctx) : socket_(&socket) {
  auto target = std::make_unique<bio_target>(bio_target{this, socket_});
  const BIO_METHOD* method = socket_bio_method();
  ssl_ = method ? SSL_new(ctx.native_handle()) : nullptr;
  BIO* bio = ssl_ ? BIO_new(method) : nullptr;
  if (!bio) {
    if (ssl_) SSL_free(ssl_);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, target.release());
  SSL_set_bio(ssl_, bio, bio);  // (one BIO both ways; the SSL owns it)
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
}

tls_stream::~tls_stream() { SSL_free(ssl_); }

void tls_stream::rebind(tcp::socket& socket) {
  socket_ = &socket;
  static_cast<bio_target*>(BIO_get_data(SSL_get_rbio(ssl_)))->socket = &socket;
}

void tls_stream::set_role(handshake_type type) {
  if (type == net::ssl::stream_base::server) SSL_set_accept_state(ssl_);
  else SSL_set_connect_state(ssl_);
}

std::size_t tls_stream::take_prefix(char* out, std::size_t len) {
  const std::size_t n = std::min(len, prefix_.size() - prefix_at_);
  if (n == 0) return 0;
  std::memcpy(out, prefix_.data() + prefix_at_, n);
  prefix_at_ += n;
  if (prefix_at_ == prefix_.size()) {
    prefix_.clear();
    prefix_.shrink_to_fit();
    prefix_at_ = 0;
  }
  return n;
}

namespace {

/** The step an OpenSSL call that returned `r` comes to; `ec` when it failed. */
tls_stream::step outcome(SSL* ssl, int r, boost::system::error_code& ec) {
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: return tls_stream::step::want_read;
    case SSL_ERROR_WANT_WRITE: return tls_stream::step::want_write;
    case SSL_ERROR_ZERO_RETURN: ec = net::error::eof; break;  // the peer's close_notify
    case SSL_ERROR_SYSCALL: {
      const unsigned long e = ERR_get_error();
      const int sys = static_cast<bio_target*>(BIO_get_data(SSL_get_rbio(ssl)))->last_errno;
      if (e) ec = boost::system::error_code(static_cast<int>(e), net::error::get_ssl_category());
      else if (sys) ec = boost::system::error_code(sys, boost::system::system_category());
      else ec = net::ssl::error::stream_truncated;  // the connection ended without a close_notify
      break;
    }
    default: {
      const unsigned long e = ERR_get_error();
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ec = net::ssl::error::stream_truncated;
      else if (e) ec = boost::system::error_code(static_cast<int>(e), net::error::get_ssl_category());
      else ec = net::error::operation_not_supported;  // a retry kinfra never asks for (X509 lookup, async, …)
      break;
    }
  }
  ERR_clear_error();
  return tls_stream::step::done;
}

void clear_errors(SSL* ssl) {
  ERR_clear_error();
  static_cast<bio_target*>(BIO_get_data(SSL_get_rbio(ssl)))->last_errno = 0;
}

}  // namespace

tls_stream::step tls_stream::try_handshake(boost::system::error_code& ec) {
  clear_errors(ssl_);
  const int r = SSL_do_handshake(ssl_);
  return r == 1 ? step::done : outcome(ssl_, r, ec);
}

tls_stream::step tls_stream::try_read(net::mutable_buffer into, std::size_t& n, boost::system::error_code& ec) {
  n = 0;
  if (into.size() == 0) return step::done;
  clear_errors(ssl_);
  const int r = SSL_read_ex(ssl_, into.data(), into.size(), &n);
  return r == 1 ? step::done : outcome(ssl_, r, ec);
}

tls_stream::step tls_stream::try_write(net::const_buffer from, std::size_t& n, boost::system::error_code& ec) {
  n = 0;
  if (from.size() == 0) return step::done;
  clear_errors(ssl_);
  const int r = SSL_write_ex(ssl_, from.data(), from.size(), &n);
  return r == 1 ? step::done : outcome(ssl_, r, ec);
}

tls_stream::step tls_stream::try_shutdown(boost::system::error_code& ec) {
  clear_errors(ssl_);
  int r = SSL_shutdown(ssl_);
  if (r == 0) r = SSL_shutdown(ssl_);  // ours went; now the peer's
  return r == 1 ? step::done : outcome(ssl_, r, ec);
}

}  // namespace kinfra::proxy
