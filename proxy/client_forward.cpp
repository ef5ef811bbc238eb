// client_session, forwarding: the request head and body up, the response head and body down,
// and the tunnel of an upgraded connection.
#include "proxy/client_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/client_session_parts.hpp"

namespace kinfra::proxy {

using namespace session_parts;

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
        if (*failure == proxy_error::bad_gateway && x.refused) {
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
      const std::size_t sent = x.up->io.write_now(parts, ec);
      if (!ec && sent < net::buffer_size(parts)) {
        beast::buffers_suffix<std::array<net::const_buffer, 4>> rest(parts);
        rest.consume(sent);
        std::tie(ec, std::ignore) = co_await net::async_write(x.up->io, rest, tok);
      }
    }
    // Not sent: a pooled connection the upstream closed meanwhile, or a new one to a process that
    // died after it accepted (kill -9): handled below like a connection closed without an answer.
    outcome o = outcome::retry;
    if (ec && closed_) {  // (the session was told to close: nothing to retry)
      release_upstream(x, false);
      co_return outcome::abort;
    }
    if (ec && (timed_out_ || !can_retry)) {
      release_upstream(x, false);
      co_return co_await respond_error(timed_out_ ? proxy_error::gateway_timeout : proxy_error::bad_gateway,
                                       "The request could not be sent to the service.",
                                       x.framing == body_framing::none ? outcome::keep_alive : outcome::linger, &x);
    }
    if (!ec) {
      if (body_here) {
        in_.consume(static_cast<std::size_t>(x.body_length));
        x.body = body_state::done;
      } else if (x.framing == body_framing::none) {
        x.body = body_state::done;
      }

      if (!x.body_done()) {
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
      co_return co_await respond_error(proxy_error::bad_gateway, "The service closed the connection without answering.",
                                       outcome::keep_alive, &x);
    }
    release_upstream(x, x.upstream_reusable && x.body_done() && !x.body_failed());
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
  // (Abandoned stays abandoned even when the relay got to the end first: the response side
  // already decided, and neither connection is reused.)
  if (x.body == body_state::abandoned) co_return;  // the response side knows what to do
  if (st == relay_status::done) {
    x.body = body_state::done;
    if (!x.response_started) arm(cfg.timeouts.upstream_response, phase::response_header);
    co_return;
  }
  x.body = body_state::upstream_failed;
  if (timed_out_) co_return;
  switch (st) {
    case relay_status::source_error:
      x.body = body_state::client_gone;
      x.up->io.cancel();
      break;
    case relay_status::too_large:
      x.body = body_state::too_large;
      x.up->io.cancel();
      break;
    case relay_status::bad_framing:
      x.body = body_state::malformed;
      x.up->io.cancel();
      break;
    default:
      // The upstream stopped reading; it may still send an early answer, which the response
      // side reads and relays.
      break;
  }
}

void client_session::abandon_body(exchange& x) {
  if (x.body != body_state::sending) return;
  x.body = body_state::abandoned;
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
    if (x.body_done()) arm(cfg.timeouts.upstream_response, phase::response_header);
    for (;;) {
      if (up.buffer.size() > 0) {
        boost::system::error_code ec;
        std::size_t used = res_->put(up.buffer.data(), ec);
        up.buffer.consume(used);
        if (!ec && res_->is_header_done()) break;
        if (ec && ec != http::error::need_more) {
          abandon_body(x);
          x.upstream_reusable = false;
          co_return co_await respond_error(proxy_error::bad_gateway,
                                           "The service sent an invalid response (" + ec.message() + ").",
                                           x.body_done() ? outcome::close : outcome::linger, &x);
        }
      }
      // The body relay may have failed before this read started; its cancel would be lost then.
      boost::system::error_code ec = x.body_stopped() ? net::error::operation_aborted : boost::system::error_code{};
      std::size_t n = 0;
      if (!ec) std::tie(ec, n) = co_await up.io.async_read_some(up.buffer.prepare(read_size), tok);
      if (ec) {
        x.upstream_reusable = false;
        if (x.body == body_state::client_gone || closed_) co_return outcome::abort;
        if (x.body == body_state::too_large)
          co_return co_await respond_error(proxy_error::too_large,
                                           "The request body is larger than this route accepts.", outcome::linger, &x);
        if (x.body == body_state::malformed)
          co_return co_await respond_error(proxy_error::malformed, "The chunked request body is malformed.",
                                           outcome::linger, &x);
        if (timed_out_) {
          if (timed_out_in_ == phase::request_body)
            co_return co_await respond_error(proxy_error::request_timeout, "The request body did not arrive in time.",
                                             outcome::linger, &x);
          abandon_body(x);
          co_return co_await respond_error(
              proxy_error::gateway_timeout,
              "The service did not answer within " + describe_ms(cfg.timeouts.upstream_response) + ".",
              x.body_done() ? outcome::close : outcome::linger, &x);
        }
        // (forward decides whether it goes again: on a kept-alive connection, or after a hold)
        if (!got_any && x.body_done() && !x.body_failed()) co_return outcome::retry;
        abandon_body(x);
        co_return co_await respond_error(proxy_error::bad_gateway,
                                         "The service closed the connection without answering.",
                                         x.body_done() ? outcome::close : outcome::linger, &x);
      }
      up.buffer.commit(n);
      got_any = true;
    }
    unsigned status = res_head_.status;
    if (status == 101) {
      if (x.upgrade && x.body_done()) co_return co_await tunnel(x);
      x.upstream_reusable = false;
      co_return co_await respond_error(proxy_error::bad_gateway,
                                       "The service switched protocols without being asked to.", outcome::close, &x);
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
  bool client_keep = x.keep_alive && x.body_done() && !w_.draining();
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
      n = client_.write_now(parts, ec);
      if (!ec && n < net::buffer_size(parts)) {
        beast::buffers_suffix<std::array<net::const_buffer, 4>> rest(parts);
        rest.consume(n);
        std::size_t more = 0;
        std::tie(ec, more) = co_await net::async_write(client_, rest, tok);
        n += more;
      }
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
  if (!x.body_done()) {
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

}  // namespace kinfra::proxy
