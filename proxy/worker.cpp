#include "proxy/worker.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "proxy/client_session.hpp"

namespace kinfra::proxy {
namespace {

constexpr auto tok = net::as_tuple(net::use_awaitable);
// How often deadlines are checked: the granularity of every timeout.
constexpr std::chrono::milliseconds sweep_interval{100};

}  // namespace

worker::worker(std::shared_ptr<const config> cfg, std::shared_ptr<const router> routes,
               const resolved_targets& targets, const local_responder* responder, status_board* board)
    : cfg_(std::move(cfg)),
      routes_(std::move(routes)),
      responder_(responder),
      board_(board),
      targets_(targets.targets.size()),
      services_(targets.services),
      sweeper_(ioc_) {
  for (std::size_t i = 0; i < targets.targets.size(); ++i) {
    const auto& src = targets.targets[i];
    auto& dst = targets_[i];
    dst.endpoint = src.endpoint;
    dst.resolved = src.resolved;
    dst.name = src.name;
    dst.authority = src.authority;
    dst.tls = src.tls;
    dst.tls_name = src.tls_name;
    dst.tls_verify = src.tls_verify;
  }
}

worker::~worker() {
  stop();
  join();
}

void worker::add_listener(int fd, listener_info info) {
  listeners_.push_back(std::move(info));
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  acceptors_.emplace_back(ioc_, ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);
}

void worker::replace_certificates(std::size_t i, std::shared_ptr<tls::server_contexts> tls) {
  net::post(ioc_, [this, i, tls = std::move(tls)]() mutable { listeners_.at(i).tls = std::move(tls); });
}

void worker::start() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i) accept_loop(i);
  sweep();
  thread_ = std::thread([this] {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      spdlog::critical("proxy worker stopped: {}", e.what());
    }
  });
}

void worker::stop() {
  net::post(ioc_, [this] {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ignored;
    for (auto& a : acceptors_) a.close(ignored);
    sweeper_.cancel();
    for (auto& t : timed_) t.close_now();
    for (auto& t : targets_) t.idle.clear();
  });
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

void worker::accept_loop(std::size_t listener) {
  auto loop = [this, listener]() -> net::awaitable<void> {
    auto& acceptor = acceptors_[listener];
    net::steady_timer backoff(ioc_);
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(tok);
      if (stopping_) co_return;
      if (ec) {
        if (ec == net::error::operation_aborted) co_return;
        // Out of descriptors or memory: pause instead of spinning; the backlog waits.
        spdlog::warn("accept failed: {}", ec.message());
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(tok);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto session = std::make_unique<client_session>(*this, std::move(socket), listeners_[listener]);
      auto* raw = session.get();
      net::co_spawn(ioc_, raw->run(), [owner = std::move(session)](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("connection ended by an internal error: {}", ex.what());
        }
      });
    }
  };
  net::co_spawn(ioc_, loop, [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::critical("listener stopped: {}", ex.what());
    }
  });
}

void worker::sweep() {
  sweeper_.expires_after(sweep_interval);
  sweeper_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    const std::int64_t now = now_ms();
    for (auto& t : timed_) {
      if (t.deadline != 0 && t.deadline <= now) {
        t.deadline = 0;
        t.on_deadline();
      }
    }
    const std::int64_t idle_limit = now - cfg_->upstream.idle_timeout.count();
    for (auto& target : targets_) {
      // Oldest first: they sit at the front of the pool.
      std::size_t expired = 0;
      while (expired < target.idle.size() && target.idle[expired]->idle_since <= idle_limit) ++expired;
      if (expired) target.idle.erase(target.idle.begin(), target.idle.begin() + static_cast<long>(expired));
    }
    sweep();
  });
}

std::unique_ptr<upstream_connection> worker::take_idle(std::size_t target) {
  auto& pool = targets_[target].idle;
  if (pool.empty()) return nullptr;
  auto conn = std::move(pool.back());
  pool.pop_back();
  return conn;
}

void worker::put_idle(std::unique_ptr<upstream_connection> conn) {
  auto& pool = targets_[conn->target].idle;
  if (stopping_ || pool.size() >= cfg_->upstream.max_idle_per_target) return;  // closed by its destructor
  conn->idle_since = now_ms();
  pool.push_back(std::move(conn));
}

}  // namespace kinfra::proxy
