// client_session's answers that come from kinfra itself rather than from a service: kinfra's own
// pages (handed to the fallback module: the quick part on this worker, the rest on the control
// executor), error pages, and the HTTPS redirect.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "common/address.hpp"
#include "proxy/client_session.hpp"

namespace kinfra::proxy {
namespace {

constexpr auto tok = net::as_tuple(net::use_awaitable);

/** What an admin request gets when answering it failed inside kinfra (logged). */
local_response internal_error(const local_request& req, const char* what) {
  spdlog::error("admin request {} failed: {}", req.path, what);
  local_response res;
  res.status = 500;
  res.body = "kinfra could not answer this request; see its log.\n";
  res.headers.emplace_back("Cache-Control", "no-store");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return res;
}

/** The responder's quick answer (`full`: its full one); a failure becomes a 500, never an exception here. */
std::optional<local_response> answer_admin(const local_responder& responder, const local_request& req, bool full) {
  try {
    if (full) return responder.handle(req);
    return responder.handle_quick(req);
  } catch (const std::exception& e) {
    return internal_error(req, e.what());
  } catch (...) {
    return internal_error(req, "unknown exception");
  }
}

/** What next_of answers when the stream failed (logged): it ends. */
const std::string stream_failed = std::string(1, '\0');

/** The stream's next bytes; a failure ends it (logged), never an exception here. */
std::string next_of(local_stream& s) {
  try {
    return s.next();
  } catch (const std::exception& e) {
    spdlog::error("an event stream failed: {}", e.what());
  } catch (...) {
    spdlog::error("an event stream failed");
  }
  return stream_failed;
}

/**
 * Where a redirect to HTTPS sends `host`: itself, unless it is a loopback address the HTTPS
 * certificate does not name (a browser would refuse it); then localhost, or the certificate's
 * first plain name.
 */
std::string redirect_host(const std::string& host, const std::vector<std::string>& cert_names) {
  std::string_view bare = host;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  if (cert_names.empty() || !is_loopback_literal(bare)) return host;
  auto named = [&](std::string_view n) { return std::find(cert_names.begin(), cert_names.end(), n) != cert_names.end(); };
  if (named(bare)) return host;
  if (named("localhost")) return "localhost";
  for (const auto& n : cert_names)
    if (n.rfind("*.", 0) != 0) return n;
  return host;
}

}  // namespace

net::awaitable<client_session::outcome> client_session::redirect_to_https(const exchange& x,
                                                                          const normalised_target& nt) {
  // Same host (without its port) and the request's own path and query, on the HTTPS port.
  std::string host = host_;
  if (host.empty()) {
    boost::system::error_code ec;
    auto local = client_.local_endpoint(ec);
    host = ec ? "localhost" : local.address().to_string();
  }
  host = redirect_host(host, listener_->https_names);
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  std::string location = "https://" + host;
  if (listener_->https_port != 443) location += ":" + std::to_string(listener_->https_port);
  std::string_view target = req_head_.target;
  if (!target.empty() && target.front() == '/') {
    location.append(target);
  } else {
    location.append(nt.path);
    if (nt.has_query) location.append("?").append(nt.query);
  }
  local_response page;
  page.status = 308;
  page.content_type = "text/plain; charset=utf-8";
  page.body = "This site is served over HTTPS: " + location + "\n";
  page.headers.emplace_back("Location", std::move(location));
  co_return co_await send_page(std::move(page), x.framing == body_framing::none ? outcome::keep_alive : outcome::linger);
}

net::awaitable<client_session::outcome> client_session::answer_locally(exchange& x, const normalised_target& nt) {
  // Admin requests are small: a body (an action's JSON) is read whole, up to a bound.
  constexpr std::uint64_t max_admin_body = 64 * 1024;
  if (x.framing == body_framing::chunked)
    co_return co_await respond_error(proxy_error::length_required,
                                     "kinfra's own pages take bodies with a Content-Length only.", outcome::linger, &x);
  if (x.framing == body_framing::length && x.body_length > max_admin_body)
    co_return co_await respond_error(proxy_error::too_large, "The request body is too large for kinfra's own pages.",
                                     outcome::linger, &x);
  if (w_.metrics()) stats_ = &w_.metrics()->admin();
  if (x.framing == body_framing::length) {
    arm(cfg().timeouts.body, phase::request_body);
    while (in_.size() < x.body_length) {
      auto [ec, n] = co_await client_.async_read_some(in_.prepare(static_cast<std::size_t>(x.body_length - in_.size())), tok);
      if (ec)
        co_return timed_out_ ? co_await respond_error(proxy_error::request_timeout,
                                                      "The request body did not arrive in time.", outcome::close, &x)
                             : outcome::abort;
      client_.bytes_in += n;
      in_.commit(n);
    }
  }
  local_request lr = describe_request(&x);
  lr.path = nt.path;
  lr.challenge = req_head_.challenge;
  if (local_address_.empty()) {
    // As the CLI writes the address it connected to (an IPv4 client of a dual-stack socket
    // reached an IPv4 address).
    boost::system::error_code ec;
    auto local = client_.local_endpoint(ec);
    if (!ec) {
      auto a = local.address();
      if (a.is_v6() && a.to_v6().is_v4_mapped()) a = net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
      local_address_ = host_port{a.to_string(), local.port()}.to_string();
    }
  }
  lr.local_address = local_address_;
  if (x.framing == body_framing::length)
    lr.body = std::string_view(static_cast<const char*>(in_.data().data()), static_cast<std::size_t>(x.body_length));
  const local_responder* responder = w_.responder();
  std::optional<local_response> page = answer_admin(*responder, lr, /*full=*/false);
  if (!page && w_.control_executor()) {
    // Work that may block or grow (a reload, logs, the dashboard, a status render) runs on the
    // control executor while this worker serves its other connections. `lr` stays valid: nothing
    // is read into in_ until the answer is sent.
    disarm();
    page = co_await net::co_spawn(
        w_.control_executor(),
        [responder, &lr]() -> net::awaitable<std::optional<local_response>> {
          co_return answer_admin(*responder, lr, /*full=*/true);
        },
        net::use_awaitable);
  } else if (!page) {
    page = answer_admin(*responder, lr, /*full=*/true);
  }
  if (x.framing == body_framing::length) in_.consume(static_cast<std::size_t>(x.body_length));
  if (page->stream) co_return co_await send_stream(std::move(*page));
  co_return co_await send_page(std::move(*page), outcome::keep_alive);
}

bool client_session::client_hung_up() {
  const int fd = client_.native_fd();
  if (fd < 0) return false;
  char c;
  const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

net::awaitable<client_session::outcome> client_session::send_stream(local_response page) {
  const auto& cfg = this->cfg();
  const bool h2 = client_.is_h2_stream();
  const bool http10 = req_ && req_->is_header_done() && req_head_.version == 10;
  // HTTP/1.1: chunked; HTTP/1.0: until the connection closes; HTTP/2: DATA frames, END_STREAM last.
  const bool chunked = !h2 && !http10;
  std::string head = "HTTP/1.1 " + std::to_string(page.status) + " OK\r\nServer: kinfra\r\nContent-Type: " +
                     page.content_type + "\r\n";
  for (auto& [name, value] : page.headers) head += name + ": " + value + "\r\n";
  if (chunked) head += "Transfer-Encoding: chunked\r\n";
  if (!h2) head += "Connection: close\r\n";
  head += "\r\n";
  status_ = page.status;
  arm(cfg.timeouts.body, phase::response_body);
  auto [hec, hn] = co_await net::async_write(client_, net::buffer(head), tok);
  client_.bytes_out += hn;
  head_out_ += hn;
  if (hec) co_return outcome::abort;
  std::shared_ptr<local_stream> source = std::move(page.stream);
  const auto& control = w_.control_executor();
  net::steady_timer tick(co_await net::this_coro::executor);
  std::uint64_t seen = source->version() - 1;
  auto asked = std::chrono::steady_clock::time_point{};
  std::string framed;
  for (;;) {
    disarm();
    if (closed_ || w_.draining() || source->done() || client_hung_up()) break;
    const auto now = std::chrono::steady_clock::now();
    if (const auto v = source->version(); v != seen || now - asked >= std::chrono::seconds(1)) {
      seen = v;
      asked = now;
      std::string bytes;
      if (control) {
        // (A raw pointer: `source` keeps it alive, and GCC 12 destroys a lambda temporary with a
        // non-trivial capture twice in a co_await expression.)
        local_stream* raw = source.get();
        bytes = co_await net::co_spawn(
            control, [raw]() -> net::awaitable<std::string> { co_return next_of(*raw); }, net::use_awaitable);
      } else {
        bytes = next_of(*source);
      }
      if (bytes == stream_failed) break;
      if (closed_) break;
      if (!bytes.empty()) {
        framed.clear();
        if (chunked) {
          char size[20];
          framed.append(size, static_cast<std::size_t>(std::snprintf(size, sizeof size, "%zx\r\n", bytes.size())));
        }
        framed += bytes;
        if (chunked) framed += "\r\n";
        // A client that does not read within the body timeout is let go: nothing piles up for it.
        arm(cfg.timeouts.body, phase::response_body);
        auto [ec, n] = co_await net::async_write(client_, net::buffer(framed), tok);
        client_.bytes_out += n;
        if (ec) co_return outcome::abort;
        if (framed.capacity() > 256 * 1024) std::string().swap(framed);
      }
    }
    tick.expires_after(std::chrono::milliseconds(250));
    co_await tick.async_wait(tok);
  }
  if (closed_) co_return outcome::abort;
  arm(cfg.timeouts.body, phase::response_body);
  if (chunked) {
    auto [ec, n] = co_await net::async_write(client_, net::buffer("0\r\n\r\n", 5), tok);
    client_.bytes_out += n;
  }
  co_return outcome::close;
}

local_request client_session::describe_request(const exchange* x) const {
  local_request lr;
  lr.client_ip = client_ip_;
  lr.client_is_loopback = client_loopback_;
  lr.tls = client_.secure();
  if (req_ && req_->is_header_done()) {
    const auto& req = req_head_;
    lr.method = req.method_string;
    lr.target = req.target;
    lr.host = host_;
    lr.wants_json = req.accept_json || (x && x->target_route && x->target_route->json);
    lr.host_header = req.host;
    lr.origin = req.origin;
    lr.authorization = req.authorization;
    lr.fetch_site = req.fetch_site;
    lr.user_agent = req.user_agent;
    auto q = req.target.find('?');
    if (q != std::string::npos) lr.query = std::string_view(req.target).substr(q + 1);
  }
  if (x && x->target_route) lr.service = x->target_route->service;
  return lr;
}

net::awaitable<client_session::outcome> client_session::respond_error(proxy_error error, std::string_view detail,
                                                                      outcome after, const exchange* x) {
  const unsigned status = status_of(error);
  local_request lr = describe_request(x);
  local_response page;
  if (const auto* responder = w_.responder()) {
    page = responder->error_page(status, detail, lr);
  } else {
    page.status = status;
    page.body = std::to_string(status) + " " + std::string(detail) + "\n";
  }
  co_return co_await send_page(std::move(page), after);
}

net::awaitable<client_session::outcome> client_session::send_page(local_response page, outcome after) {
  const auto& cfg = this->cfg();
  bool head = false;
  bool http10 = false;
  bool keep = after == outcome::keep_alive && !w_.draining();
  if (req_ && req_->is_header_done()) {
    head = req_head_.method == http::verb::head;
    http10 = req_head_.version == 10;
    if (keep && !req_->keep_alive()) keep = false;
  }
  // The body is sent from where it is (a cached status document is shared, not copied).
  const std::string_view body = page.body_view();
  http::response<http::span_body<const char>> res{static_cast<http::status>(page.status), 11};
  res.set(http::field::server, "kinfra");
  res.set(http::field::content_type, page.content_type);
  if (page.status == 503) res.set(http::field::retry_after, "5");
  for (auto& [name, value] : page.headers) res.set(name, value);
  if (!keep) res.set(http::field::connection, "close");
  else if (http10) res.set(http::field::connection, "keep-alive");
  res.content_length(body.size());
  const std::size_t body_size = head ? 0 : body.size();
  if (!head) res.body() = {body.data(), body.size()};
  arm(cfg.timeouts.body, phase::response_body);
  status_ = page.status;
  auto [ec, n] = co_await http::async_write(client_, res, tok);
  client_.bytes_out += n;
  head_out_ += n > body_size ? n - body_size : 0;
  if (ec) co_return outcome::abort;
  if (!keep && after == outcome::keep_alive) co_return outcome::close;
  co_return after;
}

}  // namespace kinfra::proxy
