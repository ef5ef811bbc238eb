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

#include <array>
#include <cerrno>

#include "common/access_log.hpp"
#include "common/address.hpp"
#include "proxy/acme_tls_alpn.hpp"
#include "proxy/h2_connection.hpp"
#include "proxy/uri_path.hpp"

namespace kinfra::proxy {
namespace {

constexpr auto tok = net::as_tuple(net::use_awaitable);
// Heads are read 4 KiB at a time: big enough for almost every head, small enough that thousands of
// connections do not spread their hot bytes over many pages.
constexpr std::size_t read_size = 4096;
constexpr std::uint32_t max_response_header = 64 * 1024;
// How long a closing connection is drained, so that a response is not lost to a TCP reset
// caused by request bytes the client sent and we did not read (RFC 9112 §9.6).
constexpr std::chrono::milliseconds linger_time{2000};
constexpr std::size_t linger_bytes = 1024 * 1024;
// A target that refused a connection is skipped for this long (passive health check).
constexpr std::int64_t passive_down_ms = 2000;

/**
 * True when the header fields Beast just parsed (the first `size` bytes of `buf`) contain a line
 * folded with leading whitespace (obs-fold, RFC 9112 §5.2). Beast accepts it; a proxy must not
 * forward it, since other parsers read it differently.
 */
bool has_obs_fold(const beast::flat_buffer& buf, std::size_t size) {
  std::string_view raw(static_cast<const char*>(buf.data().data()), size);
  for (std::size_t i = raw.find('\n'); i != std::string_view::npos && i + 1 < raw.size(); i = raw.find('\n', i + 1)) {
    if (raw[i + 1] == ' ' || raw[i + 1] == '\t') return true;
  }
  return false;
}

/** True when an idle pooled connection was closed by its upstream (or sent something unasked). */
bool looks_closed(tcp::socket& s) {
  char c;
  ssize_t r = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

std::string describe_ms(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s" : std::to_string(d.count()) + "ms";
}

}  // namespace

client_session::client_session(worker& w, tcp::socket socket, std::shared_ptr<const listener_info> listener)
    : w_(w), client_(std::move(socket)), listener_(std::move(listener)), gen_(w.current()), tls_(listener_->tls) {
  w_.connection_opened();
  // Tracked from the moment it exists: a drain or stop before its coroutine first runs reaches it.
  w_.track(*this);
  boost::system::error_code ec;
  auto ep = client_.socket().remote_endpoint(ec);
  if (!ec) {
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6());
    client_ip_ = addr.to_string();
    client_loopback_ = addr.is_loopback();
  }
  in_.reserve(4096);
}

client_session::client_session(worker& w, tcp::socket socket, std::shared_ptr<const listener_info> listener,
                               resumed_t)
    : client_session(w, std::move(socket), std::move(listener)) {
  w_.connection_closed();  // (the delegated constructor counted it again: it was open all along)
  requests_ = 1;           // not a new connection: no TLS, no HTTP/2 preface, the idle timeout
}

client_session::~client_session() {
  if (auto* ch = client_.channel()) ch->session = nullptr;
  if (!stream_session_ && !handed_over_) w_.connection_closed();
}

void client_session::on_drain() {
  if (h2_) return h2_->on_drain();
  if (client_.is_h2_stream()) return;  // a request in progress: it finishes
  // Between requests (or before the first): nothing is lost by closing now. A request in
  // progress finishes, and its response closes the connection.
  if (phase_ == phase::idle || phase_ == phase::handshake) {
    closed_ = true;
    client_.close();
  }
}

void client_session::on_listener_closed(std::size_t id) {
  if (h2_ && listener_->id == id) h2_->on_drain();
}

void client_session::arm(std::chrono::milliseconds d, phase p) {
  deadline = now_ms() + d.count();
  phase_ = p;
  timed_out_ = false;
}

void client_session::on_deadline() {
  if (h2_) return h2_->on_deadline();
  if (phase_ == phase::idle && idle_until_ > now_ms()) {
    // Idle long enough to be held without a session: the read ends, and run() hands it over.
    resting_ = true;
    client_.cancel();
    return;
  }
  timed_out_ = true;
  timed_out_in_ = phase_;
  client_.cancel();
  if (active_up_) active_up_->io.cancel();
}

void client_session::close_now() {
  if (h2_) h2_->close_now();
  if (hold_timer_) hold_timer_->cancel();  // (a held request ends now too)
  closed_ = true;
  client_.close();
  if (active_up_) active_up_->io.close();
}

net::awaitable<void> client_session::run() {
  if (client_.is_h2_stream()) {
    // One request, then the stream ends (a response is never kept alive on a stream).
    if (auto done = co_await read_request_header()) {
      end_request();
      co_await finish(*done);
      co_return;
    }
    outcome o = co_await handle_request();
    end_request();
    co_await finish(o == outcome::abort ? o : outcome::close);
    co_return;
  }
  if (tls_) {
    if (auto done = co_await accept_tls()) {
      end_request();
      co_await finish(*done);
      co_return;
    }
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(client_.tls().native_handle(), &alpn, &alpn_len);
    if (alpn_len == 2 && std::memcmp(alpn, "h2", 2) == 0) co_return co_await serve_h2();
  } else if (listener_->h2c && requests_ == 0 && co_await sniff_h2c_preface()) {
    co_return co_await serve_h2();
  }
  for (;;) {
    if (auto done = co_await read_request_header()) {
      if (*done == outcome::dormant) {
        handed_over_ = true;
        w_.rest(std::move(client_.socket()), listener_, idle_until_);
        co_return;
      }
      end_request();  // a malformed or timed-out head that was answered
      co_await finish(*done);
      co_return;
    }
    outcome o = co_await handle_request();
    end_request();
    req_.reset();
    res_.reset();
    if (o == outcome::keep_alive && w_.draining()) o = outcome::close;
    if (o != outcome::keep_alive || closed_) {
      co_await finish(o);
      co_return;
    }
  }
}

net::awaitable<void> client_session::serve_h2() {
  disarm();
  phase_ = phase::h2;
  h2_connection conn(w_, client_, in_, listener_, client_address{client_ip_, client_loopback_}, *this);
  h2_ = &conn;
  co_await conn.run();
  h2_ = nullptr;
  client_.close();
}

net::awaitable<bool> client_session::sniff_h2c_preface() {
  static constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  arm(cfg().timeouts.header, phase::idle);
  while (in_.size() < preface.size()) {
    std::string_view have(static_cast<const char*>(in_.data().data()), in_.size());
    if (preface.substr(0, have.size()) != have) co_return false;
    auto [ec, n] = co_await client_.async_read_some(in_.prepare(read_size), tok);
    if (ec) co_return false;  // (the read loop below sees the error again and ends quietly)
    in_.commit(n);
    client_.bytes_in += n;
  }
  co_return std::string_view(static_cast<const char*>(in_.data().data()), preface.size()) == preface;
}

net::awaitable<std::optional<client_session::outcome>> client_session::accept_tls() {
  // The first bytes say whether this is TLS at all: a ClientHello starts with a handshake
  // record (0x16). Anything else is most likely plain HTTP sent to the HTTPS port, which gets
  // a readable answer instead of a failed handshake.
  arm(cfg().timeouts.header, phase::handshake);
  auto [ec, n] = co_await client_.async_read_some(in_.prepare(read_size), tok);
  if (ec) co_return outcome::abort;
  in_.commit(n);
  if (static_cast<const unsigned char*>(in_.data().data())[0] != 0x16) {
    client_.bytes_in += n;
    begin_request();
    local_response page;
    if (const auto* responder = w_.responder()) {
      page = responder->error_page(400, "This port speaks HTTPS, and the request was sent as plain HTTP. "
                                        "Use an https:// address.", describe_request(nullptr));
    } else {
      page.status = 400;
      page.body = "400 This port speaks HTTPS: use an https:// address.\n";
    }
    co_return co_await send_page(std::move(page), outcome::linger);
  }
  client_.start_tls(tls_->initial());
  auto [hec, used] = co_await client_.tls().async_handshake(net::ssl::stream_base::server, in_.data(), tok);
  in_.consume(in_.size());  // the handshake took what was read
  if (hec) {
    spdlog::debug("TLS handshake with {} failed: {}", client_ip_,
                  tls::describe_handshake_error(client_.tls().native_handle(), hec));
    co_return outcome::abort;
  }
  // An ACME CA's TLS-ALPN-01 validation: the handshake was all it wanted (RFC 8737 §3).
  if (tls::is_acme_challenge(client_.tls().native_handle())) co_return outcome::close;
  co_return std::nullopt;
}

net::awaitable<std::optional<client_session::outcome>> client_session::read_request_header() {
  const auto& cfg = this->cfg();
  req_.emplace(req_head_);
  req_->header_limit(static_cast<std::uint32_t>(cfg.limits.max_header_bytes));
  req_->body_limit(boost::none);  // limits are per route, checked by the session
  bool started = in_.size() > 0;
  idle_until_ = 0;
  resting_ = false;
  if (started) begin_request();
  if (started) {
    arm(cfg.timeouts.header, phase::request_header);
  } else if (requests_ == 0) {
    arm(cfg.timeouts.header, phase::idle);
  } else {
    arm(cfg.timeouts.idle, phase::idle);
    // A plain HTTP/1.1 connection idle past rest_after is handed to a dormant_connection.
    if (!client_.is_tls() && !client_.is_h2_stream() && cfg.timeouts.idle > worker::rest_after) {
      idle_until_ = deadline;
      deadline = now_ms() + worker::rest_after.count();
    }
  }
  if (auto* ch = client_.channel()) take_stream_fields(*ch);  // (after begin_request: they are counted in it)
  for (;;) {
    if (in_.size() > 0) {
      boost::system::error_code ec;
      std::size_t used = req_->put(in_.data(), ec);
      if (!ec && req_->is_header_done() && has_obs_fold(in_, used))
        co_return co_await respond_error(400, "Header fields folded over several lines are not accepted.",
                                         outcome::linger);
      in_.consume(used);
      if (!ec && req_->is_header_done()) co_return std::nullopt;
      if (ec && ec != http::error::need_more)
        co_return co_await respond_error(parse_error_status(ec), "The request is malformed (" + ec.message() + ").",
                                         outcome::linger);
    }
    auto [ec, n] = co_await client_.async_read_some(in_.prepare(read_size), tok);
    if (ec == net::error::operation_aborted && resting_ && !started && !closed_ && !w_.draining() &&
        client_.is_open())
      co_return outcome::dormant;
    resting_ = false;
    if (ec) {
      if (timed_out_ && started)
        co_return co_await respond_error(408, "The request header did not arrive in time.", outcome::close);
      co_return outcome::abort;  // the client left, or stayed idle too long
    }
    in_.commit(n);
    client_.bytes_in += n;
    if (!started) {
      started = true;
      idle_until_ = 0;
      begin_request();
      arm(cfg.timeouts.header, phase::request_header);
    }
  }
}

unsigned client_session::parse_error_status(const boost::system::error_code& ec) const {
  if (ec == http::error::header_limit) {
    // Too long: blame the URI when the request line alone is over its limit. Once Beast has
    // parsed the request line, the target is in the message; before that, in the buffer.
    const std::size_t max_uri = cfg().limits.max_uri_bytes;
    if (req_ && !req_head_.target.empty()) return req_head_.target.size() > max_uri ? 414 : 431;
    std::string_view raw(static_cast<const char*>(in_.data().data()), in_.size());
    auto eol = raw.find('\n');
    std::size_t line = eol == std::string_view::npos ? raw.size() : eol;
    return line > max_uri ? 414 : 431;
  }
  return 400;
}

net::awaitable<client_session::outcome> client_session::handle_request() {
  // A reload since the last request: this one (and only from here) uses the new configuration.
  if (const auto& current = w_.current(); current != gen_) gen_ = current;
  const auto& cfg = this->cfg();
  const auto& req = req_head_;
  ++requests_;
  exchange x;
  x.http10 = req.version == 10;
  x.keep_alive = req_->keep_alive();
  x.head = req.method == http::verb::head;
  if (req.version != 10 && req.version != 11)
    co_return co_await respond_error(505, "Only HTTP/1.0 and HTTP/1.1 are supported here.", outcome::linger, &x);
  auto framing = check_request_framing(req, req_->content_length() ? std::optional<std::uint64_t>(*req_->content_length())
                                                                   : std::nullopt);
  if (framing.status)
    co_return co_await respond_error(framing.status, std::string("The request is malformed: ") + framing.reason + ".",
                                     outcome::linger, &x);
  x.framing = framing.framing;
  if (x.framing == body_framing::length) x.body_length = req_->content_length().value_or(0);
  if (!check_host(req, host_))
    co_return co_await respond_error(400, "The Host header is missing, repeated or invalid.", outcome::linger, &x);
  std::string_view target = req.target;
  if (target.size() > cfg.limits.max_uri_bytes)
    co_return co_await respond_error(414, "The request target is too long.", outcome::linger, &x);
  if (req.method == http::verb::connect)
    co_return co_await respond_error(405, "CONNECT is not supported by this reverse proxy.", outcome::linger, &x);
  normalised_target nt;
  if (!normalise_target(target, scratch_, nt))
    co_return co_await respond_error(400, "The request target is not a valid path.", outcome::linger, &x);
  bool bad_expect = false;
  x.expect_continue = expects_continue(req, bad_expect);
  if (bad_expect) co_return co_await respond_error(417, "Only Expect: 100-continue is supported.", outcome::linger, &x);

  // An ACME CA checking a name (HTTP-01) is answered before routing and before any redirect.
  if (nt.path.size() > 28 && nt.path.starts_with("/.well-known/acme-challenge/") && !listener_->tls &&
      w_.responder()) {
    if (auto answer = w_.responder()->acme_challenge(nt.path.substr(28))) {
      local_response page;
      page.status = 200;
      page.content_type = "application/octet-stream";
      page.body = std::move(*answer);
      co_return co_await send_page(std::move(page), x.framing == body_framing::none ? outcome::keep_alive : outcome::linger);
    }
  }
  if (listener_->redirect_to_https) {
    const bool plain = std::any_of(listener_->plain_paths.begin(), listener_->plain_paths.end(),
                                   [&](const std::string& prefix) { return router::prefix_matches(prefix, nt.path); });
    if (!plain) co_return co_await redirect_to_https(x, nt);
  }
  // kinfra's own pages (/kinfra, /__status__, …) are answered here, whatever the routes say.
  if (const auto* responder = w_.responder();
      responder && (listener_->admin || local_responder::is_admin_path(nt.path) ||
                    (!cfg.admin.metrics_path.empty() && nt.path == cfg.admin.metrics_path))) {
    if (listener_->admin && nt.path == "/") {
      // The direct admin listener: its root is the dashboard.
      local_response to_dashboard;
      to_dashboard.status = 302;
      to_dashboard.headers.emplace_back("Location", "/kinfra");
      co_return co_await send_page(std::move(to_dashboard), x.framing == body_framing::none ? outcome::keep_alive
                                                                                            : outcome::linger);
    }
    co_return co_await answer_locally(x, nt);
  }
  const route* r = (*gen_->routes).match(host_, nt.path);
  if (!r) {
    co_return co_await respond_error(404, "No route matches this path.",
                                     x.framing == body_framing::none ? outcome::keep_alive : outcome::linger, &x);
  }
  // A ';', an encoded slash or a backslash that an upstream may read as a separator must not
  // take the request to another route than the one kinfra chose (`/admin;x/secret` is not `/`'s).
  if (nt.disguised_separators && (*gen_->routes).match(host_, routing_key(nt.path)) != r)
    co_return co_await respond_error(400, "The path's ';', encoded slash or backslash would route it elsewhere.",
                                     outcome::linger, &x);
  x.target_route = r;
  route_ = r;
  if (gen_->services[r->service_index].protocol != upstream_protocol::http1)
    co_return co_await respond_error(505, "This service speaks HTTP/2 only (gRPC): connect to it with HTTP/2.",
                                     x.framing == body_framing::none ? outcome::keep_alive : outcome::linger, &x);
  x.max_body = r->max_body_bytes;
  if (x.framing == body_framing::length && x.body_length > x.max_body)
    co_return co_await respond_error(413, "The request body is larger than this route accepts.", outcome::linger, &x);
  bool accepting = true;
  if (const auto& svc = gen_->services[r->service_index]; svc.accepting && !svc.accepting->load(std::memory_order_relaxed)) {
    accepting = false;
    // Expected back soon (starting, restarting, crashed with a restart coming): wait for it.
    // (A browser loading a page of a service that reports start-up steps sees them at once.)
    if (svc.hold.enabled && svc.traffic && svc.traffic->holdable.load(std::memory_order_acquire) &&
        !(req.navigation && svc.traffic->long_start.load(std::memory_order_relaxed))) {
      const auto held = co_await hold(svc, x);
      if (held == hold_queue::waiter::outcome::gone) co_return outcome::abort;
      accepting = held == hold_queue::waiter::outcome::ready;
    }
  }
  if (!accepting) {
    // Not healthy (starting, crashed, stopped, in maintenance): the fallback page says so,
    // instead of a connection error.
    const outcome after = x.framing == body_framing::none ? outcome::keep_alive : outcome::linger;
    if (const auto* responder = w_.responder()) {
      local_response page = responder->unavailable_page(describe_request(&x), r->json);
      if (!page.service_fault) {
        // Stopped or in maintenance on purpose: counted apart from the service's own answers.
        route_ = nullptr;
        stats_ = gen_->services[r->service_index].fallback_stats;
      }
      co_return co_await send_page(std::move(page), after);
    }
    co_return co_await respond_error(503, "The service is not available right now.", after, &x);
  }
  x.upgrade = req_->upgrade() && !req_head_.upgrade.empty();  // (an h2c upgrade is not one: see the parser)
  x.retryable = is_idempotent(req.method);

  // The target sent upstream: the client's own when it is canonical and no prefix is stripped.
  std::string_view path = r->strip_prefix ? strip_path_prefix(nt.path, r->prefix) : nt.path;
  std::string_view upstream_target = target;
  if (path.data() != target.data() || r->strip_prefix) {
    target_.clear();
    target_.append(path);
    if (nt.has_query) {
      target_ += '?';
      target_.append(nt.query);
    }
    upstream_target = target_;
  }
  forward_info info;
  info.client_ip = client_ip_;
  if (client_.secure()) info.proto = "https";
  info.chunked = x.framing == body_framing::chunked;
  info.upgrade = x.upgrade;
  const auto& svc = gen_->services[r->service_index];
  // (An HTTP/1.0 request without Host; a `port: auto` service's port is not known yet.)
  if (svc.dynamic) info.fallback_host = "127.0.0.1";
  else if (!svc.targets.empty()) info.fallback_host = gen_->targets[svc.targets.front()].authority;
  write_request_line(req, upstream_target, line_out_);
  write_request_tail(req, info, tail_out_);
  co_return co_await forward(x);
}

net::awaitable<std::optional<unsigned>> client_session::connect_upstream(exchange& x, std::string& detail) {
  const auto& cfg = this->cfg();
  auto& svc = gen_->services[x.target_route->service_index];
  const std::size_t n = svc.targets.size();
  if (n == 0) {
    detail = "The service has no address to forward to.";
    co_return 502;
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
      co_return 502;
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
    if (closed_) co_return 502;
    if (!ec) {
      boost::system::error_code ignored;
      conn->io.socket().set_option(tcp::no_delay(true), ignored);
      if (t.tls) {
        std::string failure = co_await connect_tls(*conn, t);
        active_up_ = nullptr;
        if (closed_) co_return 502;
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
  co_return any_timeout ? 504 : 502;
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

net::awaitable<client_session::outcome> client_session::forward(exchange& x) {
  using namespace net::experimental::awaitable_operators;
  const auto& cfg = this->cfg();
  bool retried = false;
  for (;;) {
    std::string detail;
    if (!x.up) {
      if (auto failure = co_await connect_upstream(x, detail)) {
        // Passive check: no target took the connection, so the service stops getting traffic
        // until its health check passes again. Nothing was sent: the request may wait for it.
        if (*failure == 502 && x.refused) {
          const auto held = co_await hold_after_failure(x, true);
          if (held == hold_queue::waiter::outcome::gone) co_return outcome::abort;
          if (held == hold_queue::waiter::outcome::ready) {
            x.refused = false;
            x.fresh_only = true;
            continue;
          }
        }
        co_return co_await respond_error(*failure, detail,
                                         x.framing == body_framing::none ? outcome::keep_alive : outcome::linger, &x);
      }
    }
    const bool reused = x.up->uses > 0;
    upstream_ = gen_->targets[x.up->target].name;
    const std::size_t used_target = x.up->target;
    const std::uint64_t used_instance = x.up->instance;
    // The header goes out together with the body when the body is already here in full.
    const bool body_here = x.framing == body_framing::length && in_.size() >= x.body_length;
    // (Only without a body: the body leaves the buffer as it is sent, so it could not go again.)
    const bool can_retry = x.retryable && x.framing == body_framing::none && !retried;
    arm(cfg.timeouts.body, phase::response_header);
    boost::system::error_code ec;
    {
      std::array<net::const_buffer, 4> parts{
          net::buffer(line_out_), net::buffer(req_head_.fields), net::buffer(tail_out_),
          net::buffer(in_.data().data(), body_here ? static_cast<std::size_t>(x.body_length) : 0)};
      std::tie(ec, std::ignore) = co_await net::async_write(x.up->io, parts, tok);
    }
    if (ec) {
      bool timeout = timed_out_;
      release_upstream(x, false);
      if (reused && can_retry && !timeout) {
        retried = true;
        x.fresh_only = true;
        continue;
      }
      co_return co_await respond_error(timeout ? 504 : 502, "The request could not be sent to the service.",
                                       x.framing == body_framing::none ? outcome::keep_alive : outcome::linger, &x);
    }
    if (body_here) {
      in_.consume(static_cast<std::size_t>(x.body_length));
      x.body_done = true;
    } else if (x.framing == body_framing::none) {
      x.body_done = true;
    }

    outcome o;
    if (!x.body_done) {
      if (x.expect_continue && !x.http10) {
        static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [cec, cn] = co_await net::async_write(client_, net::buffer(cont.data(), cont.size()), tok);
        client_.bytes_out += cn;
        head_out_ += cn;
        if (cec) {
          release_upstream(x, false);
          co_return outcome::abort;
        }
      }
      // Full duplex: the upstream may answer (or stream its answer) while the body still flows.
      o = co_await (send_request_body(x) && relay_response(x));
    } else {
      o = co_await relay_response(x);
    }
    if (o == outcome::retry) {
      release_upstream(x, false);
      if (can_retry && reused) {
        retried = true;
        x.fresh_only = true;
        res_.reset();
        continue;
      }
      // `port: auto`: another instance may take it at once (this one is passed over for a while).
      if (can_retry && gen_->services[x.target_route->service_index].dynamic) {
        retried = true;
        if (auto& t = gen_->targets[used_target]; t.instance == used_instance) t.down_until = now_ms() + passive_down_ms;
        x.fresh_only = true;
        res_.reset();
        continue;
      }
      // A new connection closed without an answer: if the process just died (kill -9), an
      // idempotent request without a body waits for it to be back, once, and goes again.
      if (can_retry) {
        retried = true;
        const auto held = co_await hold_after_failure(x, false);
        if (held == hold_queue::waiter::outcome::gone) co_return outcome::abort;
        if (held == hold_queue::waiter::outcome::ready) {
          x.fresh_only = true;
          res_.reset();
          continue;
        }
      }
      co_return co_await respond_error(502, "The service closed the connection without answering.",
                                       outcome::keep_alive, &x);
    }
    release_upstream(x, x.upstream_reusable && x.body_done && !x.body_failed);
    co_return o;
  }
}

net::awaitable<void> client_session::send_request_body(exchange& x) {
  const auto& cfg = this->cfg();
  arm(cfg.timeouts.body, phase::request_body);
  progress_timer timer{*this, cfg.timeouts.body};
  relay_status st;
  if (x.framing == body_framing::length)
    st = co_await relay_length(client_, in_, x.up->io, x.body_length, timer);
  else
    st = co_await relay_chunked<true>(*req_, client_, in_, x.up->io, /*rechunk=*/true, x.max_body, timer);
  if (st == relay_status::done) {
    x.body_done = true;
    if (!x.response_started) arm(cfg.timeouts.upstream_response, phase::response_header);
    co_return;
  }
  x.body_failed = true;
  if (x.body_abandoned || timed_out_) co_return;  // the response side knows what to do
  switch (st) {
    case relay_status::source_error:
      x.client_gone = true;
      x.up->io.cancel();
      break;
    case relay_status::too_large:
      x.body_too_large = true;
      x.up->io.cancel();
      break;
    case relay_status::bad_framing:
      x.body_malformed = true;
      x.up->io.cancel();
      break;
    default:
      // The upstream stopped reading; it may still send an early answer, which the response
      // side reads and relays.
      break;
  }
}

void client_session::abandon_body(exchange& x) {
  if (x.body_done || x.body_failed) return;
  x.body_abandoned = true;
  x.body_failed = true;
  client_.cancel();
  if (x.up) x.up->io.cancel();
}

net::awaitable<client_session::outcome> client_session::relay_response(exchange& x) {
  const auto& cfg = this->cfg();
  auto& up = *x.up;
  bool got_any = up.buffer.size() > 0;

  // Read the final response header, dropping interim 1xx responses (the proxy sent its own 100).
  for (;;) {
    res_.emplace(res_head_);
    res_->header_limit(max_response_header);
    res_->body_limit(boost::none);
    if (x.head) res_->skip(true);
    if (x.body_done) arm(cfg.timeouts.upstream_response, phase::response_header);
    for (;;) {
      if (up.buffer.size() > 0) {
        boost::system::error_code ec;
        std::size_t used = res_->put(up.buffer.data(), ec);
        up.buffer.consume(used);
        if (!ec && res_->is_header_done()) break;
        if (ec && ec != http::error::need_more) {
          abandon_body(x);
          x.upstream_reusable = false;
          co_return co_await respond_error(502, "The service sent an invalid response (" + ec.message() + ").",
                                           x.body_done ? outcome::close : outcome::linger, &x);
        }
      }
      // The body relay may have failed before this read started; its cancel would be lost then.
      boost::system::error_code ec = x.body_stopped() ? net::error::operation_aborted : boost::system::error_code{};
      std::size_t n = 0;
      if (!ec) std::tie(ec, n) = co_await up.io.async_read_some(up.buffer.prepare(read_size), tok);
      if (ec) {
        x.upstream_reusable = false;
        if (x.client_gone || closed_) co_return outcome::abort;
        if (x.body_too_large)
          co_return co_await respond_error(413, "The request body is larger than this route accepts.",
                                           outcome::linger, &x);
        if (x.body_malformed)
          co_return co_await respond_error(400, "The chunked request body is malformed.", outcome::linger, &x);
        if (timed_out_) {
          if (timed_out_in_ == phase::request_body)
            co_return co_await respond_error(408, "The request body did not arrive in time.", outcome::linger, &x);
          abandon_body(x);
          co_return co_await respond_error(
              504, "The service did not answer within " + describe_ms(cfg.timeouts.upstream_response) + ".",
              x.body_done ? outcome::close : outcome::linger, &x);
        }
        // (forward decides whether it goes again: on a kept-alive connection, or after a hold)
        if (!got_any && x.body_done && !x.body_failed) co_return outcome::retry;
        abandon_body(x);
        co_return co_await respond_error(502, "The service closed the connection without answering.",
                                         x.body_done ? outcome::close : outcome::linger, &x);
      }
      up.buffer.commit(n);
      got_any = true;
    }
    unsigned status = res_head_.status;
    if (status == 101) {
      if (x.upgrade && x.body_done) co_return co_await tunnel(x);
      x.upstream_reusable = false;
      co_return co_await respond_error(502, "The service switched protocols without being asked to.",
                                       outcome::close, &x);
    }
    if (status >= 200 || status < 100) break;
  }

  const unsigned status = res_head_.status;
  const bool no_body = x.head || status == 204 || status == 304 || res_->is_done();
  const auto length = res_->content_length();
  const bool upstream_chunked = res_->chunked();
  const bool chunked = !no_body && upstream_chunked;
  const bool to_eof = !no_body && !chunked && !length;
  x.upstream_reusable = res_->keep_alive() && !to_eof;

  // The client connection stays open only when this response can be delimited for it and the
  // request body was read completely.
  bool client_keep = x.keep_alive && x.body_done && !w_.draining();
  if (x.http10 && (chunked || to_eof)) client_keep = false;
  response_head_info head;
  // (An HTTP/2 stream's end is its own: its body goes as it is, like HTTP/1.0's.)
  const bool rechunk = !x.http10 && !client_.is_h2_stream();
  head.chunked = rechunk && (chunked || to_eof || (x.head && upstream_chunked));
  head.close = !client_keep;
  head.keep_alive_10 = client_keep && x.http10;
  write_response_tail(res_head_, head, tail_out_);

  arm(cfg.timeouts.body, phase::response_body);
  x.response_started = true;
  std::size_t first = 0;
  if (!no_body && length) first = static_cast<std::size_t>(std::min<std::uint64_t>(up.buffer.size(), *length));
  {
    status_ = status;
    boost::system::error_code ec;
    std::size_t n = 0;
    const std::size_t head_size = res_head_.status_line.size() + res_head_.fields.size() + tail_out_.size();
    if (auto* ch = client_.channel(); ch && ch->put_response_head(status, res_head_.fields)) {
      // An HTTP/2 stream: its connection takes the head as parsed here (it is counted as the
      // HTTP/1.1 bytes it stands for, like the rest of the stream).
      // A response whose body came with its head (or that has none) ends here, at once.
      const net::const_buffer body(up.buffer.data().data(), first);
      if ((no_body || (length && *length == first)) && ch->write_last(body)) n = first;
      else if (first > 0) std::tie(ec, n) = co_await net::async_write(client_, body, tok);
      n += head_size;
    } else {
      std::array<net::const_buffer, 4> parts{net::buffer(res_head_.status_line), net::buffer(res_head_.fields),
                                             net::buffer(tail_out_), net::buffer(up.buffer.data().data(), first)};
      std::tie(ec, n) = co_await net::async_write(client_, parts, tok);
    }
    client_.bytes_out += n;
    head_out_ += n > first ? n - first : 0;
    if (ec) {
      abandon_body(x);
      x.upstream_reusable = false;
      co_return outcome::abort;
    }
    up.buffer.consume(first);
  }
  relay_status st = relay_status::done;
  progress_timer timer{*this, cfg.timeouts.body};
  if (!no_body) {
    if (length) {
      if (*length > first) st = co_await relay_length(up.io, up.buffer, client_, *length - first, timer);
    } else if (chunked) {
      st = co_await relay_chunked<false>(*res_, up.io, up.buffer, client_, rechunk, unlimited_bytes, timer);
    } else {
      st = co_await relay_until_eof(up.io, up.buffer, client_, rechunk, timer);
    }
  }
  if (st != relay_status::done) {
    // Never present a cut body as complete: the client sees the connection close early.
    abandon_body(x);
    x.upstream_reusable = false;
    co_return outcome::abort;
  }
  if (!x.body_done) {
    // The service answered before the request body was all sent; the rest is not read.
    abandon_body(x);
    co_return outcome::linger;
  }
  co_return client_keep ? outcome::keep_alive : outcome::close;
}

net::awaitable<client_session::outcome> client_session::tunnel(exchange& x) {
  using namespace net::experimental::awaitable_operators;
  const auto& cfg = this->cfg();
  response_head_info head;
  head.upgrade = true;
  write_response_tail(res_head_, head, tail_out_);
  x.upstream_reusable = false;
  arm(cfg.timeouts.tunnel_idle, phase::tunnel);
  std::array<net::const_buffer, 3> parts{net::buffer(res_head_.status_line), net::buffer(res_head_.fields),
                                         net::buffer(tail_out_)};
  status_ = 101;
  auto [ec, n] = co_await net::async_write(client_, parts, tok);
  client_.bytes_out += n;
  head_out_ += n;
  if (ec) co_return outcome::abort;
  x.response_started = true;
  progress_timer timer{*this, cfg.timeouts.tunnel_idle};
  // From here on the bytes are the upgraded protocol's, copied as they are in both directions.
  co_await (pump(client_, in_, x.up->io, timer) && pump(x.up->io, x.up->buffer, client_, timer));
  co_return outcome::abort;
}

void client_session::begin_request() {
  if (in_request_) return;
  in_request_ = true;
  started_at_ = std::chrono::steady_clock::now();
  // Bytes already read and not yet parsed belong to this request (they arrived with the last one).
  in_mark_ = client_.bytes_in - in_.size();
  out_mark_ = client_.bytes_out;
  head_out_ = 0;
  status_ = 0;
  route_ = nullptr;
  stats_ = w_.metrics() ? &w_.metrics()->unmatched() : nullptr;
  upstream_ = {};
}

void client_session::end_request() {
  if (!in_request_) return;
  in_request_ = false;
  const auto took = std::chrono::steady_clock::now() - started_at_;
  // What is still buffered (a pipelined next request) belongs to the next one.
  const std::uint64_t received = client_.bytes_in - in_.size() - in_mark_;
  const std::uint64_t sent = client_.bytes_out - out_mark_;
  if (route_stats* stats = route_ && route_->stats ? route_->stats : stats_)
    stats->record(w_.index(), status_, took, received, sent);
  if (const auto& log = gen_->log) {
    const bool parsed = req_ && !req_head_.method_string.empty();
    access_entry e;
    e.time = std::chrono::system_clock::now() -
             std::chrono::duration_cast<std::chrono::system_clock::duration>(took);  // when it started
    e.client_ip = client_ip_;
    if (parsed) {
      e.method = req_head_.method_string;
      e.target = req_head_.target;
      e.version = client_.is_h2_stream() ? 20 : req_head_.version;
      e.host = req_head_.host;
      e.referer = req_head_.referer;
      e.user_agent = req_head_.user_agent;
    }
    if (route_) {
      e.service = route_->service;
      e.route = route_->label;
    } else if (stats_) {
      e.route = stats_->route();
      e.service = stats_->service();  // (the "(stopped)" series of a service: named in the log too)
    }
    e.upstream = upstream_;
    e.status = status_;
    e.bytes_sent = sent;
    e.body_bytes_sent = sent > head_out_ ? sent - head_out_ : 0;
    e.bytes_received = received;
    e.duration = std::chrono::duration_cast<std::chrono::microseconds>(took);
    e.tls = client_.secure();
    log->write(e);
  }
}

net::awaitable<void> client_session::finish(outcome how) {
  if (client_.is_h2_stream()) {
    // The response is complete unless aborted; the connection resets the stream otherwise.
    if (how != outcome::abort && !closed_) client_.shutdown_send();
    client_.close();
    co_return;
  }
  if (how == outcome::abort || closed_ || !client_.is_open()) {
    client_.close();
    co_return;
  }
  arm(linger_time, phase::linger);
  if (client_.is_tls()) {
    // close_notify, so the client knows the response was not cut; it usually answers with its
    // own, which ends the wait (else the linger deadline does).
    co_await client_.tls().async_shutdown(tok);
    client_.close();
    disarm();
    co_return;
  }
  // Half-close, then drain what the client still sends, so our last response is read before
  // the connection goes.
  client_.shutdown_send();
  std::size_t drained = 0;
  std::array<char, 4096> sink;
  while (drained < linger_bytes) {
    auto [ec, n] = co_await client_.async_read_some(net::buffer(sink), tok);
    if (ec) break;
    drained += n;
  }
  disarm();
  client_.close();
}

}  // namespace kinfra::proxy
