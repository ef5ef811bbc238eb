#include "http_test.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kt {

namespace http = boost::beast::http;
namespace fs = std::filesystem;

// ---- header_list ---------------------------------------------------------------------------

std::string header_list::get(std::string_view name) const {
  for (const auto& [k, v] : fields)
    if (boost::beast::iequals(k, name)) return v;
  return {};
}

bool header_list::has(std::string_view name) const { return count(name) > 0; }

int header_list::count(std::string_view name) const {
  int n = 0;
  for (const auto& [k, v] : fields) n += boost::beast::iequals(k, name);
  return n;
}

// ---- socket_conn ---------------------------------------------------------------------------

namespace {

long remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now()).count();
  return std::max<long>(0, left);
}

bool wait_fd(int fd, short events, long timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do r = ::poll(&p, 1, static_cast<int>(timeout_ms));
  while (r < 0 && errno == EINTR);
  return r > 0;
}

template <class Parser>
bool parse_message(socket_conn& c, Parser& parser, ms timeout, bool header_only = false) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto& buf = c.buffered();
  parser.eager(!header_only);
  for (;;) {
    if (!buf.empty()) {
      boost::system::error_code ec;
      std::size_t used = parser.put(boost::asio::buffer(buf.data(), buf.size()), ec);
      buf.erase(0, used);
      if (!ec && (header_only ? parser.is_header_done() : parser.is_done())) return true;
      if (ec && ec != http::error::need_more) return false;
      if (!ec && used > 0 && !buf.empty()) continue;
    }
    char tmp[65536];
    long n = c.recv_some(tmp, sizeof tmp, ms(remaining_ms(deadline)));
    if (n == 0) {
      // EOF ends a body delimited by the connection close.
      if (!parser.got_some()) return false;
      boost::system::error_code ec;
      parser.put_eof(ec);
      return !ec && parser.is_done();
    }
    if (n < 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
}

template <class Fields>
void copy_fields(const Fields& in, header_list& out) {
  for (const auto& f : in) out.add(std::string(f.name_string()), std::string(f.value()));
}

template <class Message>
void copy_request_head(const Message& m, request& out) {
  out.method = std::string(m.method_string());
  out.target = std::string(m.target());
  out.version = m.version();
  out.headers = {};
  copy_fields(m, out.headers);
}

}  // namespace

socket_conn::~socket_conn() { close(); }

void socket_conn::close() {
  ssl_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {

SSL* ssl_of(const std::shared_ptr<void>& p) { return static_cast<SSL*>(p.get()); }

/** Waits for what SSL asked for after `rc`; returns false when it is an error (or the time is up). */
bool ssl_wait(SSL* ssl, int fd, int rc, std::chrono::steady_clock::time_point deadline) {
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ: return wait_fd(fd, POLLIN, remaining_ms(deadline));
    case SSL_ERROR_WANT_WRITE: return wait_fd(fd, POLLOUT, remaining_ms(deadline));
    default: return false;
  }
}

std::string last_ssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "handshake failed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

tls_info socket_conn::start_tls(const tls_options& o, ms timeout) {
  tls_info info;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (o.min_version) SSL_CTX_set_min_proto_version(ctx.get(), o.min_version);
  if (o.max_version) {
    // Old versions are only allowed at security level 0 in OpenSSL 3.
    if (o.max_version < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx.get(), 0);
    SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
  }
  if (!o.ciphers.empty()) SSL_CTX_set_cipher_list(ctx.get(), o.ciphers.c_str());
  if (!o.ciphersuites.empty()) SSL_CTX_set_ciphersuites(ctx.get(), o.ciphersuites.c_str());
  if (!o.ca_file.empty()) {
    SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  if (!o.alpn.empty()) {
    std::string wire;
    std::stringstream ss(o.alpn);
    for (std::string p; std::getline(ss, p, ',');) wire += static_cast<char>(p.size()) + p;
    SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
  SSL* ssl = SSL_new(ctx.get());
  ssl_ = std::shared_ptr<void>(ssl, [](void* p) { SSL_free(static_cast<SSL*>(p)); });
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_fd(ssl, fd_);
  if (!o.sni.empty()) SSL_set_tlsext_host_name(ssl, o.sni.c_str());
  if (!o.ca_file.empty() && !o.sni.empty()) SSL_set1_host(ssl, o.sni.c_str());
  if (o.session) SSL_set_session(ssl, static_cast<SSL_SESSION*>(o.session.get()));
  int flags = ::fcntl(fd_, F_GETFL);
  ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  for (;;) {
    int rc = SSL_connect(ssl);
    if (rc == 1) break;
    if (!ssl_wait(ssl, fd_, rc, deadline)) {
      info.error = last_ssl_error();
      long v = SSL_get_verify_result(ssl);
      if (v != X509_V_OK) info.error += std::string(" (") + X509_verify_cert_error_string(v) + ")";
      ssl_.reset();
      return info;
    }
  }
  info.ok = true;
  info.version = SSL_get_version(ssl);
  info.cipher = SSL_get_cipher_name(ssl);
  info.resumed = SSL_session_reused(ssl) == 1;
  const unsigned char* proto = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  if (proto) info.alpn.assign(reinterpret_cast<const char*>(proto), len);
  if (X509* cert = SSL_get1_peer_certificate(ssl)) {
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    info.subject_cn = cn;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    X509_digest(cert, EVP_sha256(), md, &n);
    static constexpr char hex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < n; ++i) {
      if (i) info.fingerprint += ':';
      info.fingerprint += hex[md[i] >> 4];
      info.fingerprint += hex[md[i] & 15];
    }
    X509_free(cert);
  }
  return info;
}

std::shared_ptr<void> socket_conn::tls_session() const {
  if (!ssl_) return nullptr;
  SSL_SESSION* session = SSL_get1_session(ssl_of(ssl_));
  if (!session) return nullptr;
  return std::shared_ptr<void>(session, [](void* p) { SSL_SESSION_free(static_cast<SSL_SESSION*>(p)); });
}

std::unique_ptr<socket_conn> connect_tls(std::uint16_t port, const tls_options& options, tls_info& info) {
  auto c = connect_to(port);
  info = c->start_tls(options);
  return c;
}

/** Reads and counts exactly `n` body bytes that follow a parsed header on `c`. */
std::uint64_t drain(socket_conn& c, std::uint64_t n) {
  std::uint64_t got = std::min<std::uint64_t>(c.buffered().size(), n);
  c.buffered().erase(0, got);
  std::vector<char> buf(1 << 20);
  while (got < n) {
    long r = c.recv_some(buf.data(), std::min<std::uint64_t>(buf.size(), n - got), std::chrono::seconds(20));
    if (r <= 0) break;
    got += static_cast<std::uint64_t>(r);
  }
  return got;
}

/** Sends `n` bytes of a repeating pattern. */
bool pour(socket_conn& c, std::uint64_t n) {
  std::string block(1 << 20, 'x');
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>('a' + i % 26);
  while (n > 0) {
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, block.size()));
    if (!c.send(std::string_view(block.data(), take), std::chrono::seconds(20))) return false;
    n -= take;
  }
  return true;
}

int run_shell(const std::string& command, std::string* output) {
  std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    if (output) output->append(buf, n);
  }
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void socket_conn::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

std::string socket_conn::seal(std::string_view plain) {
  if (!ssl_) return std::string(plain);
  SSL* ssl = ssl_of(ssl_);
  BIO* socket_bio = SSL_get_wbio(ssl);
  BIO_up_ref(socket_bio);  // SSL_set0_wbio below lets go of one reference
  BIO* memory = BIO_new(BIO_s_mem());
  SSL_set0_wbio(ssl, memory);
  std::string out;
  if (SSL_write(ssl, plain.data(), static_cast<int>(plain.size())) == static_cast<int>(plain.size())) {
    char* bytes = nullptr;
    const long n = BIO_get_mem_data(memory, &bytes);
    out.assign(bytes, static_cast<std::size_t>(n));
  }
  SSL_set0_wbio(ssl, socket_bio);  // frees the memory BIO
  return out;
}

bool socket_conn::send_raw(std::string_view data, ms timeout) {
  auto keep = std::move(ssl_);
  const bool ok = send(data, timeout);
  ssl_ = std::move(keep);
  return ok;
}

bool socket_conn::send(std::string_view data, ms timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (ssl_) {
    SSL* ssl = ssl_of(ssl_);
    while (!data.empty()) {
      int rc = SSL_write(ssl, data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20)));
      if (rc > 0) {
        data.remove_prefix(static_cast<std::size_t>(rc));
        continue;
      }
      if (!ssl_wait(ssl, fd_, rc, deadline)) return false;
    }
    return true;
  }
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_fd(fd_, POLLOUT, remaining_ms(deadline))) return false;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

long socket_conn::recv_some(char* buf, std::size_t size, ms timeout) {
  if (ssl_) {
    SSL* ssl = ssl_of(ssl_);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int rc = SSL_read(ssl, buf, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
      if (rc > 0) return rc;
      int err = SSL_get_error(ssl, rc);
      ERR_clear_error();
      if (err == SSL_ERROR_ZERO_RETURN) return 0;
      // A peer that closes without close_notify (or resets) ends the stream too.
      if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL) return 0;
      if (!ssl_wait(ssl, fd_, rc, deadline)) return -1;
    }
  }
  if (!wait_fd(fd_, POLLIN, timeout.count())) return -1;
  ssize_t n;
  do n = ::recv(fd_, buf, size, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno == ECONNRESET ? 0 : -1;
  return n;
}

std::string socket_conn::recv_all(ms timeout, bool* eof) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(buffer_);
  buffer_.clear();
  char tmp[65536];
  for (;;) {
    long n = recv_some(tmp, sizeof tmp, ms(remaining_ms(deadline)));
    if (n == 0) {
      if (eof) *eof = true;
      return out;
    }
    if (n < 0) {
      if (eof) *eof = false;
      return out;
    }
    out.append(tmp, static_cast<std::size_t>(n));
  }
}

bool socket_conn::wait_closed(ms timeout) {
  bool eof = false;
  recv_all(timeout, &eof);
  return eof;
}

bool socket_conn::read_response(response& out, bool head, ms timeout) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (head) parser.skip(true);
  bool ok = parse_message(*this, parser, timeout);
  if (parser.is_header_done()) {
    const auto& m = parser.get();
    out.status = m.result_int();
    out.version = m.version();
    out.headers = {};
    copy_fields(m, out.headers);
    out.body = m.body();
  }
  return ok;
}

bool socket_conn::read_request(request& out, ms timeout) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  parser.header_limit(1024 * 1024);
  if (!parse_message(*this, parser, timeout)) return false;
  copy_request_head(parser.get(), out);
  out.body = parser.get().body();
  return true;
}

bool socket_conn::read_request_header(request& out, ms timeout) {
  http::request_parser<http::empty_body> parser;
  parser.header_limit(1024 * 1024);
  parser.body_limit(boost::none);
  if (!parse_message(*this, parser, timeout, /*header_only=*/true)) return false;
  copy_request_head(parser.get(), out);
  return true;
}

std::unique_ptr<socket_conn> connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(err));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return std::make_unique<socket_conn>(fd);
}

response http_request(std::uint16_t port, std::string_view method, std::string_view target,
                      const header_list& headers, std::string_view body, ms timeout) {
  auto c = connect_to(port);
  std::string raw = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
  if (!headers.has("Host")) raw += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& [k, v] : headers.fields) raw += k + ": " + v + "\r\n";
  if (!body.empty() && !headers.has("Content-Length") && !headers.has("Transfer-Encoding"))
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  raw += "Connection: close\r\n\r\n";
  raw += body;
  response res;
  c->send(raw, timeout);
  c->read_response(res, method == "HEAD", timeout);
  return res;
}

// ---- test_upstream -------------------------------------------------------------------------

test_upstream::test_upstream() : test_upstream(nullptr) {}

test_upstream::test_upstream(handler h) : handler_(std::move(h)) {
  if (!handler_) handler_ = [this](socket_conn& c) { echo(c); };
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 512) != 0)
    throw std::runtime_error("test_upstream: cannot listen");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

test_upstream::~test_upstream() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    for (int fd : conn_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
}

void test_upstream::accept_loop() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++connections_;
    std::lock_guard lock(mutex_);
    conn_fds_.push_back(fd);
    threads_.emplace_back([this, fd] {
      socket_conn c(fd);
      try {
        handler_(c);
      } catch (...) {
      }
      std::lock_guard lock(mutex_);
      conn_fds_.erase(std::remove(conn_fds_.begin(), conn_fds_.end(), fd), conn_fds_.end());
      // socket_conn closes fd when it goes out of scope, after it left conn_fds_
    });
  }
}

void test_upstream::record(const request& r) {
  std::lock_guard lock(mutex_);
  requests_.push_back(r);
}

std::vector<request> test_upstream::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t test_upstream::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

void test_upstream::echo(socket_conn& c) {
  for (;;) {
    request req;
    if (!c.read_request(req, 30s)) return;
    record(req);
    std::string body = req.method + " " + req.target + "\n";
    for (const auto& [k, v] : req.headers.fields) body += k + ": " + v + "\n";
    body += "\n" + req.body;
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nX-Upstream-Port: " + std::to_string(port_) + "\r\n\r\n";
    if (!c.send(head + (req.method == "HEAD" ? std::string() : body))) return;
    if (boost::beast::iequals(req.headers.get("Connection"), "close")) return;
  }
}

echo_view parse_echo(const std::string& body) {
  echo_view v;
  std::istringstream in(body);
  std::string line;
  std::getline(in, line);
  auto sp = line.find(' ');
  v.method = line.substr(0, sp);
  v.target = sp == std::string::npos ? "" : line.substr(sp + 1);
  while (std::getline(in, line) && !line.empty()) {
    auto colon = line.find(": ");
    v.headers.add(line.substr(0, colon), colon == std::string::npos ? "" : line.substr(colon + 2));
  }
  auto blank = body.find("\n\n");
  if (blank != std::string::npos) v.body = body.substr(blank + 2);
  return v;
}

// ---- blackhole ----------------------------------------------------------------------------

blackhole::blackhole() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 0);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  // Fill the accept queue (never accepted); later SYNs are dropped and connects hang.
  for (int i = 0; i < 4; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers_.push_back(fd);
  }
  std::this_thread::sleep_for(50ms);
}

blackhole::~blackhole() {
  for (int fd : fillers_) ::close(fd);
  ::close(listen_fd_);
}

// ---- processes -----------------------------------------------------------------------------

std::string one_service(const std::string& url, const std::string& extra) {
  return "workers: 1\n" + extra + "routes:\n  - { path: /, service: app }\nservices:\n  app: { url: \"" + url +
         "\", health: off }\n";
}

std::string test_service_binary() { return KINFRA_TEST_SERVICE_PATH; }

std::string test_service_entry(const std::string& name, const std::vector<std::string>& args,
                               std::optional<std::uint16_t> port, const std::string& extra) {
  std::string cmd = "[\"" + test_service_binary() + "\", \"--name\", \"" + name + "\"";
  for (const auto& a : args) cmd += ", \"" + a + "\"";
  std::string out = "  " + name + ":\n    command: " + cmd + "]\n";
  if (port) out += "    port: " + std::to_string(*port) + "\n";
  return out + extra;
}

namespace {

/** Whether nothing listens on (or is bound to) 127.0.0.1:port right now. */
bool can_bind(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::uint16_t free_port() {
  // A port from bind(0) can be handed to another test process (or taken by an outgoing
  // connection) before the service that was meant to get it binds it. So ports come from below
  // the kernel's ephemeral range (and below 20000, where kinfra picks `port: auto` ports), and
  // each is reserved for the life of this test process by a lock file that every test process on
  // the machine honours (the lock goes when the process does, however it ends).
  static std::mutex mutex;
  static std::uint32_t next = 0;
  constexpr std::uint32_t first = 10000, count = 10000;  // 10000..19999
  std::lock_guard lock(mutex);
  const std::string dir = "/tmp/kinfra-test-ports";
  if (::mkdir(dir.c_str(), 01777) == 0) ::chmod(dir.c_str(), 01777);  // (any user's tests, whatever the umask)
  if (next == 0) next = static_cast<std::uint32_t>(::getpid()) * 7919u;
  for (std::uint32_t tries = 0; tries < count; ++tries) {
    auto port = static_cast<std::uint16_t>(first + next++ % count);
    int fd = ::open((dir + "/" + std::to_string(port)).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) continue;
    ::fchmod(fd, 0666);  // (fails harmlessly on another user's file, which is already so)
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && can_bind(port)) return port;  // fd stays open: the lock is held
    ::close(fd);
  }
  throw std::runtime_error("no free test port in 10000-19999 (see /tmp/kinfra-test-ports)");
}

long metric_value(std::uint16_t port, const std::string& name) {
  auto res = http_get(port, "/metrics");
  const std::string line = "\n" + name + " ";
  auto at = res.body.find(line);
  return res.status == 200 && at != std::string::npos ? std::atol(res.body.c_str() + at + line.size()) : -1;
}

nlohmann::json get_json(std::uint16_t port, const std::string& target, const std::string& token) {
  header_list h;
  if (!token.empty()) h.add("Authorization", "Bearer " + token);
  auto res = http_get(port, target, h);
  if (res.status == 0) return nullptr;
  return nlohmann::json::parse(res.body, nullptr, false);
}

nlohmann::json get_status(std::uint16_t port, const std::string& service, const std::string& token) {
  return get_json(port, service.empty() ? "/__status__" : "/__status__?service=" + service, token);
}

bool wait_until(const std::function<bool()>& condition, ms timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

std::string state_of(std::uint16_t port, const std::string& service, const std::string& token) {
  auto s = get_status(port, "", token);
  if (!s.is_object() || !s.contains("services") || !s["services"].contains(service)) return "";
  return s["services"][service].value("state", "");
}

bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::string kinfra_binary() {
  if (const char* env = std::getenv("KINFRA_BINARY")) return env;
  return KINFRA_BINARY_PATH;
}

namespace {

/** Spawns `argv` with stdout/stderr to files; returns the pid. */
pid_t spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path,
            const std::string& cwd = {}) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    // If the test process dies (a crash, a failed assertion that aborts), kinfra goes with it.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int wait_exit(pid_t pid, ms timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -2;
    }
    std::this_thread::sleep_for(5ms);
  }
}

long proc_status_kib(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
  }
  return -1;
}

}  // namespace

temp_dir::temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "kinfra-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string temp_dir::write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p) << content;
  return p;
}

run_result run_kinfra(const std::vector<std::string>& args, ms timeout) {
  temp_dir dir;
  std::vector<std::string> argv{kinfra_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = spawn(argv, dir.path() + "/out", dir.path() + "/err");
  run_result r;
  r.exit_code = wait_exit(pid, timeout);
  r.out = slurp(dir.path() + "/out");
  r.err = slurp(dir.path() + "/err");
  return r;
}

kinfra_process::kinfra_process(const std::string& routes, bool add_listen) {
  // Ephemeral ports for the proxy and the admin listener, so that tests can run side by side.
  std::string yaml = add_listen ? "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n" + routes : routes;
  std::string config = dir_.write("routes.yaml", yaml);
  std::string ready = dir_.path() + "/ready.json";
  pid_ = spawn({kinfra_binary(), "run", config, "--ready-file", ready}, dir_.path() + "/stdout.log",
               dir_.path() + "/stderr.log", dir_.path());
  auto port_of = [](const std::string& address) {
    return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  };
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string content = slurp(ready);
    if (!content.empty()) {
      auto doc = nlohmann::json::parse(content, nullptr, false);
      if (doc.is_object()) {
        for (const auto& a : doc["listen"]) ports_.push_back(port_of(a.get<std::string>()));
        for (const auto& a : doc["admin"]) admin_ports_.push_back(port_of(a.get<std::string>()));
        if (!ports_.empty()) return;
      }
    }
    int st;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("kinfra exited during start-up:\n" + log());
    }
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("kinfra did not become ready:\n" + log());
}

kinfra_process::~kinfra_process() {
  if (pid_ > 0) stop(5s);
}

int kinfra_process::stop(ms timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int code = wait_exit(pid_, timeout);
  pid_ = -1;
  return code;
}

int kinfra_process::wait_for_exit(ms timeout) {
  if (pid_ <= 0) return -1;
  int code = wait_exit(pid_, timeout);
  pid_ = -1;
  return code;
}

long kinfra_process::rss_kib() const { return proc_status_kib(pid_, "VmRSS:"); }
long kinfra_process::peak_rss_kib() const { return proc_status_kib(pid_, "VmHWM:"); }

std::string kinfra_process::log() const {
  return slurp(dir_.path() + "/stdout.log") + slurp(dir_.path() + "/stderr.log");
}

child_process::child_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                             std::string log_path)
    : log_path_(std::move(log_path)) {
  std::vector<std::string> copy = argv;
  std::vector<char*> args;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    int out = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
}

child_process::~child_process() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  wait_exit(pid_, 5s);
}

std::string child_process::log() const { return slurp(log_path_); }

bool child_process::running() const {
  int st = 0;
  return pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == 0;
}

}  // namespace kt
