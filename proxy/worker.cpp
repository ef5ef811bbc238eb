#include "proxy/worker.hpp"

#include <algorithm>

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "proxy/client_session.hpp"
#include "proxy/dormant_connection.hpp"
#include "proxy/h2_upstream.hpp"

namespace kinfra::proxy {
namespace {

constexpr auto tok = net::as_tuple(net::use_awaitable);
// How often deadlines are checked: the granularity of every timeout.
constexpr std::chrono::milliseconds sweep_interval{100};

}  // namespace

worker::worker(std::shared_ptr<const config> cfg, std::shared_ptr<const router> routes,
               const resolved_targets& targets, const local_responder* responder, status_board* board,
               unsigned index, metrics_registry* metrics)
    : responder_(responder),
      board_(board),
      index_(index),
      metrics_(metrics),
      conn_stats_(metrics ? &metrics->connections(index) : nullptr),
      sweeper_(ioc_),
      dormant_set_(std::make_unique<dormant_set>(*this)) {
  gen_ = make_generation(std::move(cfg), std::move(routes), targets);
}

worker::~worker() {
  stop();
  join();
}

std::shared_ptr<generation> worker::make_generation(std::shared_ptr<const config> cfg,
                                                    std::shared_ptr<const router> routes,
                                                    const resolved_targets& targets) const {
  auto gen = std::make_shared<generation>();
  gen->cfg = std::move(cfg);
  gen->routes = std::move(routes);
  gen->targets.resize(targets.targets.size());
  for (std::size_t i = 0; i < targets.targets.size(); ++i) {
    const auto& src = targets.targets[i];
    auto& dst = gen->targets[i];
    dst.endpoint = src.endpoint;
    dst.resolved = src.resolved;
    dst.name = src.name;
    dst.authority = src.authority;
    dst.tls = src.tls;
    dst.tls_name = src.tls_name;
    dst.tls_verify = src.tls_verify;
  }
  gen->services = targets.services;
  gen->log = targets.log;
  gen->any_h2_service = std::any_of(gen->services.begin(), gen->services.end(),
                                    [](const service_state& s) { return s.protocol != upstream_protocol::http1; });
  for (auto& svc : gen->services) {
    if (board_) {
      svc.accepting = board_->accepting_flag(svc.name);
      svc.traffic = board_->traffic(svc.name);
    }
  }
  return gen;
}

std::size_t worker::add_listener(int fd, listener_info info) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  const auto protocol = ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
  const std::size_t id = listener_count_++;
  info.id = id;
  auto add = [this, fd, protocol, info = std::make_shared<const listener_info>(std::move(info))]() mutable {
    listeners_.push_back(std::unique_ptr<listener_slot>(new listener_slot{tcp::acceptor(ioc_, protocol, fd), info}));
    if (started_ && !stopping_) accept_loop(*listeners_.back());
  };
  if (!started_) add();
  else net::post(ioc_, std::move(add));
  return id;
}

void worker::update_listener(std::size_t id, listener_info info) {
  info.id = id;
  net::post(ioc_, [this, id, info = std::make_shared<const listener_info>(std::move(info))]() mutable {
    if (id < listeners_.size()) listeners_[id]->info = std::move(info);
  });
}

void worker::close_listener(std::size_t id) {
  net::post(ioc_, [this, id] {
    boost::system::error_code ignored;
    if (id < listeners_.size()) listeners_[id]->acceptor.close(ignored);
    // (on_listener_closed may end a connection, which unlinks it from the list: walk a copy.)
    std::vector<timed*> all;
    for (auto& t : timed_) all.push_back(&t);
    for (auto* t : all) t->on_listener_closed(id);
  });
}

void worker::reconfigure(std::shared_ptr<const config> cfg, std::shared_ptr<const router> routes,
                         const resolved_targets& targets) {
  auto next = make_generation(std::move(cfg), std::move(routes), targets);
  net::post(ioc_, [this, next = std::move(next)]() mutable {
    // Idle connections to a plain-HTTP target that stays (same URL) move to the new pools;
    // the rest close with the old generation. (TLS connections were verified with the old
    // settings, so they are not carried over.)
    // Old and new targets are paired one to one (two services may share a URL).
    std::vector<bool> taken(gen_->targets.size(), false);
    for (std::size_t j = 0; j < next->targets.size(); ++j) {
      auto& target = next->targets[j];
      if (target.tls || !target.resolved) continue;  // (`port: auto` slots fill themselves)
      for (std::size_t i = 0; i < gen_->targets.size(); ++i) {
        auto& old = gen_->targets[i];
        if (taken[i] || old.name != target.name || old.tls || old.endpoint != target.endpoint) continue;
        taken[i] = true;
        target.idle = std::move(old.idle);
        old.idle.clear();
        for (auto& conn : target.idle) conn->target = j;
        target.down_until = old.down_until;
        break;
      }
    }
    // What was not carried over closes now rather than when the last session using the old
    // generation lets go of it.
    for (auto& old : gen_->targets) old.idle.clear();
    gen_ = std::move(next);
  });
}

void worker::start() {
  started_ = true;
  for (auto& l : listeners_) accept_loop(*l);
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
    for (auto& l : listeners_) l->acceptor.close(ignored);
    sweeper_.cancel();
    dormant_set_->shutdown();
    // (close_now may free the entry: a dormant connection does)
    for (auto it = timed_.begin(); it != timed_.end();) (it++)->close_now();
    held_.end_all(hold_queue::waiter::outcome::gone);
    for (auto& t : gen_->targets) t.idle.clear();
    // HTTP/2 connections to services, of every generation (they would keep the loop busy).
    for (auto& weak : h2_upstreams_)
      if (auto c = weak.lock()) c->close();
    h2_upstreams_.clear();
    spare_sessions_.clear();
  });
}

std::unique_ptr<client_session> worker::take_spare_session() {
  if (spare_sessions_.empty()) return nullptr;
  auto s = std::move(spare_sessions_.back());
  spare_sessions_.pop_back();
  return s;
}

void worker::keep_spare_session(std::unique_ptr<client_session> s) {
  // Enough for the streams of a few busy connections; the rest are freed.
  constexpr std::size_t max_spare = 64;
  if (stopping_ || spare_sessions_.size() >= max_spare) return;
  s->park();
  spare_sessions_.push_back(std::move(s));
}

void worker::adopt_h2(const std::shared_ptr<h2_upstream>& c) {
  std::erase_if(h2_upstreams_, [](const auto& weak) { return weak.expired(); });
  h2_upstreams_.push_back(c);
}

void worker::drain() {
  net::post(ioc_, [this] {
    if (draining_ || stopping_) return;
    draining_ = true;
    boost::system::error_code ignored;
    for (auto& l : listeners_) l->acceptor.close(ignored);
    // on_drain may close a session, which unlinks it from the list: walk a copy.
    std::vector<timed*> all;
    for (auto& t : timed_) all.push_back(&t);
    for (auto* t : all) t->on_drain();
    // Held requests get the fallback page now (and their connection closes), not at shutdown.
    held_.end_all(hold_queue::waiter::outcome::waiting);
  });
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

void worker::accept_loop(listener_slot& slot) {
  auto loop = [this, &slot]() -> net::awaitable<void> {
    auto& acceptor = slot.acceptor;
    net::steady_timer backoff(ioc_);
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(tok);
      if (stopping_ || draining_) co_return;
      if (ec) {
        if (ec == net::error::operation_aborted) co_return;
        // Out of descriptors or memory: pause instead of spinning; the backlog waits. (EINVAL:
        // a reload stopped this socket listening; the close follows on this thread.)
        if (ec != net::error::invalid_argument) spdlog::warn("accept failed: {}", ec.message());
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(tok);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      spawn(std::make_unique<client_session>(*this, std::move(socket), slot.info));
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

void worker::spawn(std::unique_ptr<client_session> session) {
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

void worker::rest(tcp::socket socket, std::shared_ptr<const listener_info> listener, std::int64_t idle_deadline,
                  std::unique_ptr<tls_stream> tls) {
  dormant_set_->rest(std::move(socket), std::move(listener), idle_deadline, std::move(tls));
}

void worker::wake(tcp::socket socket, std::shared_ptr<const listener_info> listener, std::unique_ptr<tls_stream> tls,
                  std::int64_t idle_until) {
  std::unique_ptr<client_session> session;
  try {
    session = std::make_unique<client_session>(*this, std::move(socket), std::move(listener), client_session::resumed,
                                               std::move(tls), idle_until);
  } catch (...) {
    connection_closed();  // (no session took it over: the socket closed with the attempt)
    throw;
  }
  spawn(std::move(session));  // (if this throws, the session's destructor counts the close)
}

void worker::dormant_changed(int delta) {
  dormant_.fetch_add(static_cast<std::size_t>(delta), std::memory_order_relaxed);
  if (conn_stats_) (delta > 0 ? conn_stats_->dormant_in : conn_stats_->dormant_out).add(1);
}

void worker::sweep() {
  sweeper_.expires_after(sweep_interval);
  sweeper_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    const std::int64_t now = now_ms();
    for (auto it = timed_.begin(); it != timed_.end();) {
      auto& t = *it++;  // (on_deadline may free t: a dormant connection does)
      if (t.deadline != 0 && t.deadline <= now) {
        t.deadline = 0;
        t.on_deadline();
      }
    }
    // Idle connections to a replaced `port: auto` process close now, not after idle_timeout.
    for (auto& svc : gen_->services)
      if (svc.dynamic && svc.traffic) follow_instances(*gen_, svc);
    const std::int64_t idle_limit = now - gen_->cfg->upstream.idle_timeout.count();
    for (auto& target : gen_->targets) {
      // Oldest first: they sit at the front of the pool.
      std::size_t expired = 0;
      while (expired < target.idle.size() && target.idle[expired]->idle_since <= idle_limit) ++expired;
      if (expired) target.idle.erase(target.idle.begin(), target.idle.begin() + static_cast<long>(expired));
    }
    sweep();
  });
}

std::unique_ptr<upstream_connection> worker::take_idle(generation& gen, std::size_t target) {
  auto& pool = gen.targets[target].idle;
  if (pool.empty()) return nullptr;
  auto conn = std::move(pool.back());
  pool.pop_back();
  return conn;
}

void worker::put_idle(generation& gen, std::unique_ptr<upstream_connection> conn) {
  if (&gen != gen_.get()) return;  // a reload happened meanwhile: closed by its destructor
  auto& t = gen.targets[conn->target];
  auto& pool = t.idle;
  if (stopping_ || pool.size() >= gen.cfg->upstream.max_idle_per_target || conn->instance != t.instance) return;
  conn->idle_since = now_ms();
  pool.push_back(std::move(conn));
}

namespace {
// Room for "http://127.0.0.1:65535" and more: a `port: auto` slot's texts never reallocate.
constexpr std::size_t slot_text_capacity = 48;
}  // namespace

void worker::follow_instances(generation& gen, service_state& svc) {
  const auto version = svc.traffic->instances_version.load(std::memory_order_acquire);
  if (version == svc.seen) return;
  svc.seen = version;
  auto routable = svc.traffic->routable();
  static const std::vector<instance_endpoint> none;
  const auto& list = routable ? *routable : none;
  auto listed = [&](const target_state& t) {
    return std::any_of(list.begin(), list.end(), [&](const instance_endpoint& e) {
      return e.uid == t.instance && t.endpoint.port() == e.port;
    });
  };
  // Slots of instances that left are emptied (their idle connections close)...
  for (std::size_t ti : svc.targets) {
    auto& t = gen.targets[ti];
    if (t.instance && !listed(t)) {
      t.instance = 0;
      t.resolved = false;
      t.idle.clear();
      for (auto& c : t.h2) c->close();
      t.h2.clear();
      t.in_flight.reset();
      t.down_until = 0;
    }
  }
  // ...and the new ones take free slots.
  for (const auto& e : list) {
    bool placed = false;
    for (std::size_t ti : svc.targets) placed = placed || (gen.targets[ti].instance == e.uid);
    for (std::size_t ti : svc.targets) {
      auto& t = gen.targets[ti];
      if (placed || t.instance) continue;
      t.instance = e.uid;
      t.in_flight = e.in_flight;
      t.endpoint = tcp::endpoint(net::ip::address_v4::loopback(), e.port);
      t.resolved = true;
      // Written in place, never reallocated once reserved: a request that ended on this slot's
      // previous instance may still hold a view of the name (for its access log line).
      t.authority.reserve(slot_text_capacity);
      t.name.reserve(slot_text_capacity);
      t.authority.assign("127.0.0.1:").append(std::to_string(e.port));
      t.name.assign("http://").append(t.authority);
      placed = true;
    }
  }
}

std::size_t worker::order_instances(generation& gen, service_state& svc, std::size_t* order, std::int64_t now) {
  std::size_t count = 0;
  for (std::size_t ti : svc.targets)
    if (gen.targets[ti].instance) order[count++] = ti;
  if (count == 0) return 0;
  std::rotate(order, order + svc.next++ % count, order + count);
  auto load = [&](std::size_t ti) {
    const auto& t = gen.targets[ti];
    return (t.down_until > now ? 1 << 30 : 0) + (t.in_flight ? t.in_flight->load(std::memory_order_relaxed) : 0);
  };
  // Insertion sort (a few slots; stable, and no allocation on the request path).
  for (std::size_t i = 1; i < count; ++i) {
    const std::size_t ti = order[i];
    const int key = load(ti);
    std::size_t j = i;
    for (; j > 0 && load(order[j - 1]) > key; --j) order[j] = order[j - 1];
    order[j] = ti;
  }
  return count;
}

}  // namespace kinfra::proxy
