#include "proxy/h2_upstream.hpp"


#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "proxy/h2_connection.hpp"
#include "proxy/h2_frames.hpp"
#include "proxy/tls.hpp"
#include "proxy/worker.hpp"

namespace kinfra::proxy {
namespace {

constexpr auto tok = net::as_tuple(net::use_awaitable);
constexpr std::size_t read_size = 16 * 1024;
constexpr std::size_t write_batch = 64 * 1024;
constexpr std::int32_t stream_window = 256 * 1024;
constexpr std::int32_t connection_window = 4 * 1024 * 1024;

std::vector<nghttp2_nv> make_nva(const h2_fields& fields) {
  std::vector<nghttp2_nv> out;
  out.reserve(fields.size());
  for (const auto& [n, v] : fields) out.push_back(h2_nv(n, v));
  return out;
}

}  // namespace

struct h2_upstream::callbacks {
  static h2_upstream& self(void* user) { return *static_cast<h2_upstream*>(user); }

  static int header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                    const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
    auto* r = self(user).find(frame->hd.stream_id);
    if (!r || frame->hd.type != NGHTTP2_HEADERS) return 0;
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    // The first block is the response (after any 1xx), a later one the trailers.
    if (!r->response_head_done) r->response.emplace_back(std::move(n), std::move(v));
    else if (r->response_trailers.size() < 256) r->response_trailers.emplace_back(std::move(n), std::move(v));
    return 0;
  }

  static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& u = self(user);
    auto* r = u.find(frame->hd.stream_id);
    if (!r) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
      if (!r->response_head_done) {
        // An interim response (1xx) is not relayed: the final one follows.
        if (!r->response.empty() && r->response.front().second.size() == 3 && r->response.front().second[0] == '1') {
          r->response.clear();
          return 0;
        }
        r->response_head_done = true;
        if (end) r->response_end = true;
        if (r->client) r->client->relay_response(r->client_id);
      } else if (end) {
        r->response_end = true;
        if (r->client) r->client->relay_resume(r->client_id);
      }
    } else if (frame->hd.type == NGHTTP2_DATA && end) {
      r->response_end = true;
      if (r->client) r->client->relay_resume(r->client_id);
    }
    return 0;
  }

  static int data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                        std::size_t len, void* user) {
    auto* r = self(user).find(id);
    if (!r || !r->client) {
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    auto dst = r->response_body.prepare(len);
    if (len > 0) std::memcpy(dst.data(), data, len);
    r->response_body.commit(len);
    r->bytes_out += len;
    r->client->relay_resume(r->client_id);
    return 0;
  }

  static int stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* user) {
    auto& u = self(user);
    auto it = u.relays_.find(id);
    if (it == u.relays_.end()) return 0;
    auto r = it->second;
    u.relays_.erase(it);
    // What the client has not taken yet will never be consumed on this stream: the connection's
    // window gets it back now (nghttp2 does not for a closed stream).
    if (r->response_body.size() > 0) nghttp2_session_consume_connection(u.session_, r->response_body.size());
    r->up.reset();
    r->up_id = -1;
    if (!r->client) return 0;
    if (r->response_end) return 0;  // complete: the client side finishes it, whatever came after
    if (!r->response_head_done)
      r->client->relay_failed(r->client_id, 502, 14,
                              code == NGHTTP2_REFUSED_STREAM ? "the service refused the stream"
                                                             : "the service reset the stream");
    else  // (the service's own error code is not the client's fault: never PROTOCOL_ERROR & co.)
      r->client->relay_reset(r->client_id, code == NGHTTP2_CANCEL ? std::uint32_t{NGHTTP2_CANCEL}
                                                                  : std::uint32_t{NGHTTP2_INTERNAL_ERROR});
    return 0;
  }

  static ssize_t read_request(nghttp2_session* session, std::int32_t id, std::uint8_t* buf, std::size_t length,
                              std::uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* r = static_cast<h2_relay*>(source->ptr);
    auto& body = r->request_body;
    const std::size_t n = std::min(length, body.size());
    if (n > 0) std::memcpy(buf, body.data().data(), n);
    body.consume(n);
    if (n > 0 && r->client) r->client->relay_consumed(r->client_id, n);
    if (body.size() == 0 && r->request_end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!r->request_trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        auto nva = make_nva(r->request_trailers);
        nghttp2_submit_trailer(session, id, nva.data(), nva.size());
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      r->up_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }
};

h2_upstream::h2_upstream(const net::any_io_executor& ex) : io_(ex), wake_(ex) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &callbacks::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &callbacks::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &callbacks::stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(stream_window)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window);
}

h2_upstream::~h2_upstream() { nghttp2_session_del(session_); }

h2_relay* h2_upstream::find(std::int32_t id) {
  auto it = relays_.find(id);
  return it == relays_.end() ? nullptr : it->second.get();
}

net::awaitable<std::string> h2_upstream::connect(const target_state& t, std::chrono::milliseconds timeout) {
  using namespace net::experimental::awaitable_operators;
  net::steady_timer timer(io_.get_executor());
  timer.expires_after(timeout);
  auto result = co_await (io_.socket().async_connect(t.endpoint, tok) || timer.async_wait(tok));
  if (result.index() == 1) co_return "no connection within " + std::to_string(timeout.count()) + " ms";
  if (auto [ec] = std::get<0>(result); ec) co_return ec.message();
  boost::system::error_code ignored;
  io_.socket().set_option(tcp::no_delay(true), ignored);
  if (t.tls) {
    io_.start_tls(*t.tls);
    SSL* ssl = io_.tls().native_handle();
    static constexpr unsigned char alpn[] = {2, 'h', '2'};
    if (!tls::prepare_client(ssl, t.tls_name, t.tls_verify) || SSL_set_alpn_protos(ssl, alpn, sizeof alpn) != 0)
      co_return "cannot set up TLS";
    auto handshake = co_await (io_.tls().async_handshake(net::ssl::stream_base::client, tok) || timer.async_wait(tok));
    if (handshake.index() == 1) co_return "no TLS handshake within " + std::to_string(timeout.count()) + " ms";
    if (auto [ec] = std::get<0>(handshake); ec) co_return tls::describe_handshake_error(ssl, ec);
    const unsigned char* chosen = nullptr;
    unsigned chosen_len = 0;
    SSL_get0_alpn_selected(ssl, &chosen, &chosen_len);
    if (chosen_len != 2 || std::memcmp(chosen, "h2", 2) != 0) co_return "the service did not agree to HTTP/2 (ALPN)";
  }
  connected_ = true;
  co_return std::string();
}

net::awaitable<void> h2_upstream::run(std::chrono::milliseconds idle_timeout, std::chrono::milliseconds stall_timeout) {
  using namespace net::experimental::awaitable_operators;
  auto keep = shared_from_this();
  co_await (read_loop() && write_loop(idle_timeout, stall_timeout));
  done_ = true;
  // Every stream still open ends now; the client side answers for each.
  auto relays = std::move(relays_);
  relays_.clear();
  for (auto& [id, r] : relays) {
    r->up.reset();
    r->up_id = -1;
    if (!r->client) continue;
    if (!r->response_started && r->response.empty())
      r->client->relay_failed(r->client_id, 502, 14, "the service closed the connection");
    else if (!r->response_end) r->client->relay_reset(r->client_id, NGHTTP2_INTERNAL_ERROR);
  }
  io_.close();
}

bool h2_upstream::usable() const {
  return connected_ && !done_ && nghttp2_session_check_request_allowed(session_) &&
         relays_.size() < nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool h2_upstream::submit(const std::shared_ptr<h2_relay>& r) {
  auto nva = make_nva(r->request);
  nghttp2_data_provider provider{};
  provider.source.ptr = r.get();
  provider.read_callback = &callbacks::read_request;
  const bool body = !(r->request_end && r->request_body.size() == 0 && r->request_trailers.empty());
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), body ? &provider : nullptr, nullptr);
  if (id < 0) return false;
  r->up = shared_from_this();
  r->up_id = id;
  relays_.emplace(id, r);
  wake();
  return true;
}

void h2_upstream::resume(std::int32_t id) {
  if (auto* r = find(id); r && r->up_deferred) {
    r->up_deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  wake();
}

void h2_upstream::reset(std::int32_t id, std::uint32_t code) {
  if (auto* r = find(id)) r->client = nullptr;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
  wake();
}

void h2_upstream::consumed(std::int32_t id, std::size_t n) {
  nghttp2_session_consume(session_, id, n);
  wake();
}

void h2_upstream::close() {
  done_ = true;
  io_.close();
  wake();
}

void h2_upstream::wake() {
  wake_pending_ = true;
  if (waiting_) wake_.cancel();
}

net::awaitable<void> h2_upstream::read_loop() {
  for (;;) {
    auto [ec, n] = co_await io_.async_read_some(in_.prepare(read_size), tok);
    if (ec) break;
    in_.commit(n);
    const auto rv = nghttp2_session_mem_recv(session_, static_cast<const std::uint8_t*>(in_.data().data()), in_.size());
    in_.consume(in_.size());
    if (rv < 0) {
      spdlog::debug("HTTP/2 connection to a service ended: {}", nghttp2_strerror(static_cast<int>(rv)));
      break;
    }
    wake();
    if (!nghttp2_session_want_read(session_)) break;
  }
  done_ = true;
  wake();
}

net::awaitable<void> h2_upstream::write_loop(std::chrono::milliseconds idle_timeout,
                                             std::chrono::milliseconds stall_timeout) {
  using namespace net::experimental::awaitable_operators;
  net::steady_timer stall(io_.get_executor());
  for (;;) {
    if (!gather_frames(session_, out_, write_batch)) break;
    if (!out_.empty()) {
      stall.expires_after(stall_timeout);
      auto written = co_await (net::async_write(io_, net::buffer(out_), tok) || stall.async_wait(tok));
      if (written.index() == 1) {
        spdlog::warn("HTTP/2 connection to a service closed: it read nothing for {} ms", stall_timeout.count());
        break;
      }
      if (auto [ec, n] = std::get<0>(written); ec) break;
      continue;
    }
    if (done_) break;
    if (wake_pending_) {
      wake_pending_ = false;
      continue;
    }
    waiting_ = true;
    const bool idle = relays_.empty();
    if (idle) wake_.expires_after(idle_timeout);
    else wake_.expires_at(net::steady_timer::time_point::max());
    auto [ec] = co_await wake_.async_wait(tok);
    waiting_ = false;
    wake_pending_ = false;
    if (!ec && idle && relays_.empty()) {
      // Idle for the whole pool timeout: say goodbye and close.
      done_ = true;
      nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
      continue;
    }
  }
  done_ = true;
  io_.cancel();
}

}  // namespace kinfra::proxy
