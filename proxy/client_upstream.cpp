// client_session, choosing and connecting an upstream target: this worker's pool first, then a
// new connection (round-robin, or fewest in flight for `port: auto`), with TLS for https:// ones.
#include "proxy/client_session.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "proxy/client_session_parts.hpp"

namespace kinfra::proxy {
namespace {

using namespace session_parts;

/** True when an idle pooled connection was closed by its upstream (or sent something unasked). */
bool looks_closed(tcp::socket& s) {
  char c;
  ssize_t r = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

}  // namespace

net::awaitable<std::optional<proxy_error>> client_session::connect_upstream(exchange& x, std::string& detail) {
  const auto& cfg = this->cfg();
  auto& svc = gen_->services[x.target_route->service_index];
  x.active.begin(svc.stats, w_.index());
  const std::size_t n = svc.targets.size();
  if (n == 0) {
    detail = "The service has no address to forward to.";
    co_return proxy_error::bad_gateway;
  }
  // Round-robin order, live targets first; targets marked down are still tried last.
  std::array<std::size_t, 66> order_buf;
  std::vector<std::size_t> order_vec;
  std::size_t* order = order_buf.data();
  if (n > order_buf.size()) {
    order_vec.resize(n);
    order = order_vec.data();
  }
  std::int64_t now = now_ms();
  std::size_t count = 0;
  if (svc.dynamic) {
    // `port: auto`: the healthy instances, fewest requests in flight first.
    if (svc.traffic) w_.follow_instances(*gen_, svc);
    count = w_.order_instances(*gen_, svc, order, now);
    if (count == 0) {
      // (Its last instance just left: the request may wait for one, like after a refusal.)
      detail = "No instance of the service is ready to take requests.";
      x.refused = true;
      co_return proxy_error::bad_gateway;
    }
  } else {
    std::size_t start = svc.next++;
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t i = 0; i < n; ++i) {
        std::size_t ti = svc.targets[(start + i) % n];
        bool down = gen_->targets[ti].down_until > now;
        if (down == (pass == 1)) order[count++] = ti;
      }
    }
  }

  bool any_timeout = false;
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t ti = order[i];
    auto& t = gen_->targets[ti];
    if (!t.resolved) {
      detail = "The address of " + t.name + " could not be resolved.";
      continue;
    }
    if (!x.fresh_only) {
      while (auto idle = w_.take_idle(*gen_, ti)) {
        // A request that cannot be retried must not be sent on a connection the upstream closed.
        if (!x.retryable && looks_closed(idle->io.socket())) continue;
        x.up = std::move(idle);
        active_up_ = x.up.get();
        x.in_flight.board(t.in_flight);
        co_return std::nullopt;
      }
    }
    auto conn = std::make_unique<upstream_connection>(w_.context().get_executor());
    conn->target = ti;
    conn->instance = t.instance;
    // Counted before the connect: a drain that looks meanwhile sees it (the slot may also move
    // to another instance while this one connects; what follows checks `conn->instance`).
    x.in_flight.board(t.in_flight);
    active_up_ = conn.get();
    arm(cfg.timeouts.connect, phase::connect);
    auto [ec] = co_await conn->io.socket().async_connect(t.endpoint, tok);
    active_up_ = nullptr;
    if (closed_) co_return proxy_error::bad_gateway;
    if (!ec) {
      boost::system::error_code ignored;
      conn->io.socket().set_option(tcp::no_delay(true), ignored);
      if (t.tls) {
        std::string failure = co_await connect_tls(*conn, t);
        active_up_ = nullptr;
        if (closed_) co_return proxy_error::bad_gateway;
        if (!failure.empty()) {
          // The service is up but cannot be trusted (or does not speak TLS): try the next one.
          detail = timed_out_ ? "The TLS handshake with " + t.name + " timed out."
                              : "The TLS handshake with " + t.name + " failed: " + failure + ".";
          if (timed_out_) any_timeout = true;
          if (svc.stats) svc.stats->connect_error(w_.index());
          spdlog::warn("upstream {}: {}", t.name, detail);
          x.in_flight.land();
          continue;
        }
      }
      if (t.instance == conn->instance) t.down_until = 0;
      x.up = std::move(conn);
      active_up_ = x.up.get();
      co_return std::nullopt;
    }
    if (timed_out_) {
      any_timeout = true;
      detail = "Connecting to " + t.name + " timed out after " + describe_ms(cfg.timeouts.connect) + ".";
    } else {
      detail = "The service at " + t.name + " is not accepting connections (" + ec.message() + ").";
      x.refused = true;
      // One instance of several: the supervisor checks that one now (the others take the request).
      if (svc.dynamic && w_.board() && t.instance == conn->instance)
        w_.board()->report_refused(svc.name, t.endpoint.port());
    }
    x.in_flight.land();
    if (t.instance == conn->instance) t.down_until = now_ms() + passive_down_ms;
    if (svc.stats) svc.stats->connect_error(w_.index());
    spdlog::debug("upstream {}: {}", t.name, detail);
  }
  co_return any_timeout ? proxy_error::gateway_timeout : proxy_error::bad_gateway;
}

net::awaitable<std::string> client_session::connect_tls(upstream_connection& conn, const target_state& t) {
  conn.io.start_tls(*t.tls);
  if (!tls::prepare_client(conn.io.tls().native_handle(), t.tls_name, t.tls_verify)) co_return "cannot set up TLS";
  active_up_ = &conn;
  // The handshake shares the connect timeout.
  auto [ec] = co_await conn.io.tls().async_handshake(net::ssl::stream_base::client, tok);
  if (ec) co_return tls::describe_handshake_error(conn.io.tls().native_handle(), ec);
  co_return std::string();
}

void client_session::release_upstream(exchange& x, bool reusable) {
  active_up_ = nullptr;
  if (!x.up) return;
  if (reusable && x.up->buffer.size() == 0 && !closed_) {
    ++x.up->uses;
    w_.put_idle(*gen_, std::move(x.up));
  } else {
    x.up->io.close();
    x.up.reset();
  }
}

}  // namespace kinfra::proxy
