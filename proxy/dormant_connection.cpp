#include "proxy/dormant_connection.hpp"
#include "proxy/tls_stream.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <cerrno>
#include <stdexcept>

#include "proxy/worker.hpp"

namespace kinfra::proxy {

/** One dormant connection: its descriptor and what a session needs to take it over. */
struct dormant_set::entry final : timed {
  entry(dormant_set& s, int f, bool ipv6, std::shared_ptr<const listener_info> l)
      : set(s), fd(f), v6(ipv6), listener(std::move(l)) {}
  void on_deadline() override { set.end(*this); }
  void close_now() override { set.end(*this); }
  void on_drain() override { set.end(*this); }

  dormant_set& set;
  int fd;
  bool v6;
  std::shared_ptr<const listener_info> listener;
  std::unique_ptr<tls_stream> tls;  ///< HTTPS: its TLS state, which goes on
};

dormant_set::dormant_set(worker& w) : w_(w), ready_(w.context()) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::runtime_error("epoll_create1 failed for the dormant connections");
  ready_.assign(epoll_fd_);
}

dormant_set::~dormant_set() {
  // (the worker closed the entries through close_now; ready_ closes the epoll descriptor)
  boost::system::error_code ignored;
  ready_.close(ignored);
}

void dormant_set::shutdown() {
  // (A completion already queued still runs: stopped_ keeps it from waiting again, which would
  // keep the worker's loop from ever running out of work.)
  stopped_ = true;
  boost::system::error_code ignored;
  ready_.cancel(ignored);
}

void dormant_set::rest(tcp::socket socket, std::shared_ptr<const listener_info> listener, std::int64_t idle_deadline,
                       std::unique_ptr<tls_stream> tls) {
  boost::system::error_code ec;
  const bool v6 = socket.local_endpoint(ec).address().is_v6();
  std::unique_ptr<entry> owned;
  try {
    owned = std::make_unique<entry>(*this, -1, v6, std::move(listener));  // (before the socket lets go)
  } catch (const std::exception&) {
    w_.connection_closed();  // (no memory: the socket closes as it goes)
    return;
  }
  // Out of Asio's reactor (its per-socket state goes back to Asio's pool), into this set.
  const int fd = socket.release(ec);
  if (ec || fd < 0) {
    w_.connection_closed();
    return;
  }
  auto* e = owned.release();
  e->fd = fd;
  e->tls = std::move(tls);
  e->deadline = idle_deadline;
  w_.track(*e);
  w_.dormant_changed(+1);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;  // level-triggered: it stays ready until taken out
  ev.data.ptr = e;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return end(*e);
  arm();
}

void dormant_set::arm() {
  if (armed_ || stopped_) return;
  armed_ = true;
  ready_.async_wait(net::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    armed_ = false;
    if (!ec) on_ready();
  });
}

void dormant_set::on_ready() {
  // Every ready entry is taken out (woken or closed) before the next epoll_wait, so this ends
  // when the set has nothing ready; the wait is armed again before Asio polls, so a connection
  // that becomes ready from then on wakes it.
  std::array<epoll_event, 256> events;
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) on_readable(*static_cast<entry*>(events[static_cast<std::size_t>(i)].data.ptr));
    if (n < static_cast<int>(events.size())) break;
  }
  arm();
}

void dormant_set::on_readable(entry& e) {
  char c;
  const ssize_t r = ::recv(e.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;  // still dormant
  if (r <= 0 || w_.draining()) return end(e);  // the client closed (or reset), or kinfra is draining
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e.fd, nullptr);
  boost::system::error_code ec;
  tcp::socket socket(w_.context());
  socket.assign(e.v6 ? tcp::v6() : tcp::v4(), e.fd, ec);
  if (ec) return end(e);
  auto listener = std::move(e.listener);
  auto tls = std::move(e.tls);
  const std::int64_t idle_until = e.deadline;  // (a wake without a request does not start it again)
  w_.dormant_changed(-1);
  delete &e;  // (the connection stays counted as open: the session takes it over)
  try {
    w_.wake(std::move(socket), std::move(listener), std::move(tls), idle_until);  // (counts the close if it fails)
  } catch (const std::exception&) {
  }
}

void dormant_set::end(entry& e) {
  // Out of the set first: closing takes it out only when no other descriptor (a child's copy
  // between fork and exec) refers to the socket, and an event must never name a freed entry.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e.fd, nullptr);
  ::close(e.fd);
  w_.dormant_changed(-1);
  w_.connection_closed();
  delete &e;
}

}  // namespace kinfra::proxy
