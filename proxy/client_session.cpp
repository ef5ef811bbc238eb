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
#include "proxy/client_session_parts.hpp"
#include "proxy/uri_path.hpp"

namespace kinfra::proxy {
namespace {

using namespace session_parts;

// How long a closing connection is drained, so that a response is not lost to a TCP reset
// caused by request bytes the client sent and we did not read (RFC 9112 §9.6).
constexpr std::chrono::milliseconds linger_time{2000};
constexpr std::size_t linger_bytes = 1024 * 1024;

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

}  // namespace

client_session::client_session(worker& w, tcp::socket socket, std::shared_ptr<const listener_info> listener,
                               bool fresh)
    : w_(w), client_(std::move(socket)), listener_(std::move(listener)), gen_(w.current()), tls_(listener_->tls) {
  if (fresh) w_.connection_opened();
  else requests_ = 1;  // taken over from a dormant_set: no handshake, no HTTP/2 preface, the idle timeout
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
  if (tls_ && !client_.is_tls()) {  // (a connection woken from dormancy has its TLS already)
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
        auto tls = client_.release_tls();  // (before the socket it refers to moves)
        w_.rest(std::move(client_.socket()), listener_, idle_until_, std::move(tls));
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
  if (started) {
    begin_request();
    arm(cfg.timeouts.header, phase::request_header);
  } else if (requests_ == 0) {
    arm(cfg.timeouts.header, phase::idle);
  } else {
    arm(cfg.timeouts.idle, phase::idle);
    if (resumed_idle_until_ != 0 && resumed_idle_until_ < deadline) deadline = resumed_idle_until_;
    // An HTTP/1.1 connection idle past rest_after is handed to a dormant_connection (over TLS
    // too: its OpenSSL state goes with it; a read waiting here has taken all OpenSSL decrypted).
    if (!client_.is_h2_stream() && cfg.timeouts.idle > worker::rest_after) {
      idle_until_ = deadline;
      deadline = std::min(deadline, now_ms() + worker::rest_after.count());
    }
  }
  if (auto* ch = client_.channel()) take_stream_fields(*ch);  // (after begin_request: they are counted in it)
  for (;;) {
    if (in_.size() > 0) {
      boost::system::error_code ec;
      std::size_t used = req_->put(in_.data(), ec);
      if (!ec && req_->is_header_done() && has_obs_fold(in_, used))
        co_return co_await respond_error(proxy_error::malformed,
                                         "Header fields folded over several lines are not accepted.", outcome::linger);
      in_.consume(used);
      if (!ec && req_->is_header_done()) co_return std::nullopt;
      if (ec && ec != http::error::need_more)
        co_return co_await respond_error(parse_error(ec), "The request is malformed (" + ec.message() + ").",
                                         outcome::linger);
    }
    auto [ec, n] = co_await client_.async_read_some(in_.prepare(read_size), tok);
    if (ec == net::error::operation_aborted && resting_ && !started && !closed_ && !w_.draining() &&
        client_.is_open())
      co_return outcome::dormant;
    resting_ = false;
    if (ec) {
      if (timed_out_ && started)
        co_return co_await respond_error(proxy_error::request_timeout, "The request header did not arrive in time.",
                                         outcome::close);
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

proxy_error client_session::parse_error(const boost::system::error_code& ec) const {
  if (ec == http::error::header_limit) {
    // Too long: blame the URI when the request line alone is over its limit. Once Beast has
    // parsed the request line, the target is in the message; before that, in the buffer.
    const std::size_t max_uri = cfg().limits.max_uri_bytes;
    if (req_ && !req_head_.target.empty())
      return req_head_.target.size() > max_uri ? proxy_error::uri_too_long : proxy_error::header_too_large;
    std::string_view raw(static_cast<const char*>(in_.data().data()), in_.size());
    auto eol = raw.find('\n');
    std::size_t line = eol == std::string_view::npos ? raw.size() : eol;
    return line > max_uri ? proxy_error::uri_too_long : proxy_error::header_too_large;
  }
  return proxy_error::malformed;
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
    co_return co_await respond_error(proxy_error::version_not_supported,
                                     "Only HTTP/1.0 and HTTP/1.1 are supported here.", outcome::linger, &x);
  auto framing = check_request_framing(req, req_->content_length() ? std::optional<std::uint64_t>(*req_->content_length())
                                                                   : std::nullopt);
  if (framing.error)
    co_return co_await respond_error(*framing.error, std::string("The request is malformed: ") + framing.reason + ".",
                                     outcome::linger, &x);
  x.framing = framing.framing;
  if (x.framing == body_framing::length) x.body_length = req_->content_length().value_or(0);
  if (!check_host(req, host_))
    co_return co_await respond_error(proxy_error::malformed, "The Host header is missing, repeated or invalid.",
                                     outcome::linger, &x);
  std::string_view target = req.target;
  if (target.size() > cfg.limits.max_uri_bytes)
    co_return co_await respond_error(proxy_error::uri_too_long, "The request target is too long.", outcome::linger, &x);
  if (req.method == http::verb::connect)
    co_return co_await respond_error(proxy_error::method_not_allowed, "CONNECT is not supported by this reverse proxy.",
                                     outcome::linger, &x);
  normalised_target nt;
  if (!normalise_target(target, scratch_, nt))
    co_return co_await respond_error(proxy_error::malformed, "The request target is not a valid path.", outcome::linger,
                                     &x);
  bool bad_expect = false;
  x.expect_continue = expects_continue(req, bad_expect);
  if (bad_expect)
    co_return co_await respond_error(proxy_error::expectation_failed, "Only Expect: 100-continue is supported.",
                                     outcome::linger, &x);

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
    co_return co_await respond_error(proxy_error::no_route, "No route matches this path.",
                                     x.framing == body_framing::none ? outcome::keep_alive : outcome::linger, &x);
  }
  // A ';', an encoded slash or a backslash that an upstream may read as a separator must not
  // take the request to another route than the one kinfra chose (`/admin;x/secret` is not `/`'s).
  if (nt.disguised_separators && (*gen_->routes).match(host_, routing_key(nt.path)) != r)
    co_return co_await respond_error(proxy_error::malformed,
                                     "The path's ';', encoded slash or backslash would route it elsewhere.",
                                     outcome::linger, &x);
  x.target_route = r;
  route_ = r;
  if (gen_->services[r->service_index].protocol != upstream_protocol::http1)
    co_return co_await respond_error(proxy_error::version_not_supported,
                                     "This service speaks HTTP/2 only (gRPC): connect to it with HTTP/2.",
                                     x.framing == body_framing::none ? outcome::keep_alive : outcome::linger, &x);
  x.max_body = r->max_body_bytes;
  if (x.framing == body_framing::length && x.body_length > x.max_body)
    co_return co_await respond_error(proxy_error::too_large, "The request body is larger than this route accepts.",
                                     outcome::linger, &x);
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
    co_return co_await respond_error(proxy_error::unavailable, "The service is not available right now.", after, &x);
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
