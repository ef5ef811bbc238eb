#include "proxy/h2_connection.hpp"


#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/access_log.hpp"
#include "common/local_responder.hpp"
#include "proxy/h2_frames.hpp"
#include "proxy/h2_stream_state.hpp"
#include "proxy/h2_translate.hpp"
#include "proxy/h2_upstream.hpp"
#include "proxy/uri_path.hpp"

namespace kinfra::proxy {
namespace {

constexpr auto tok = net::as_tuple(net::use_awaitable);
constexpr std::size_t read_size = 16 * 1024;
constexpr std::size_t write_batch = 64 * 1024;
constexpr std::int32_t stream_window = 256 * 1024;
constexpr std::int32_t connection_window = 1024 * 1024;
/** Ended streams whose state (and its buffers) is kept for the next ones. */
constexpr std::size_t max_spare_streams = 16;
/** …unless its buffers grew past this (a large head): that memory is not kept. */
constexpr std::size_t max_spare_bytes = 16 * 1024;

/** The HEADERS of a translated response head (views into `res`; good until the next call). */
const std::vector<nghttp2_nv>& response_nva(const h2_response_fields& res) {
  // (nghttp2 copies the fields when a frame is submitted: one vector serves the thread.)
  static thread_local std::vector<nghttp2_nv> nva;
  nva.clear();
  nva.push_back(h2_nv(":status", res.status));
  for (const auto& [n, v] : res.fields) nva.push_back(h2_nv(n, v));
  return nva;
}

}  // namespace

bool h2_connection::bucket::take(std::int64_t now) {
  if (last_ms != 0) tokens = std::min(burst, tokens + static_cast<double>(now - last_ms) * per_second / 1000.0);
  last_ms = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

struct h2_connection::callbacks {
  static h2_connection& self(void* user) { return *static_cast<h2_connection*>(user); }

  /** The response body (and trailers) of a stream relayed from an HTTP/2 service. */
  static ssize_t read_relayed(stream_state& s, std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
    auto& r = *s.relay;
    auto& body = r.response_body;
    const std::size_t n = std::min(length, body.size());
    if (n > 0) std::memcpy(buf, body.data().data(), n);
    body.consume(n);
    if (n > 0 && r.up) r.up->consumed(r.up_id, n);
    if (body.size() == 0 && r.response_end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!r.response_trailers.empty() && r.client) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nva;
        for (const auto& [name, value] : r.response_trailers) nva.push_back(h2_nv(name, value));
        nghttp2_submit_trailer(r.client->session_, s.id, nva.data(), nva.size());
      }
      s.phase = stream_state::response_phase::done;
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      r.client_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }


  static int begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    const auto& cfg = *c.w_.current()->cfg;
    std::unique_ptr<stream_state> st;
    if (c.spare_.empty()) {
      st = std::make_unique<stream_state>(frame->hd.stream_id, cfg.limits.max_header_bytes);
    } else {
      st = std::move(c.spare_.back());
      c.spare_.pop_back();
      st->reuse(frame->hd.stream_id, cfg.limits.max_header_bytes);
    }
    // Until the head is complete, nobody else keeps this stream's time.
    st->orphan_deadline = now_ms() + cfg.timeouts.header.count();
    c.streams_.emplace(frame->hd.stream_id, std::move(st));
    c.idle_since_ = now_ms();
    return 0;  // (the read loop updates the deadline once nghttp2 took the bytes)
  }

  static int header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                    const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
    auto& c = self(user);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      // Trailers: relayed to an HTTP/2 service (at most 64 fields), dropped for HTTP/1.1.
      if (auto* s = c.find(frame->hd.stream_id); s && s->relay && s->relay->request_trailers.size() < 64)
        s->relay->request_trailers.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                                                std::string(reinterpret_cast<const char*>(value), valuelen));
      return 0;
    }
    if (auto* s = c.find(frame->hd.stream_id))
      s->head.add({reinterpret_cast<const char*>(name), namelen}, {reinterpret_cast<const char*>(value), valuelen});
    return 0;
  }

  static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        if (auto* s = c.find(frame->hd.stream_id)) {
          if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) c.start_stream(*s, end_stream);
          else if (end_stream) finish_request(*s);  // trailers: dropped (HTTP/1.1 chunked has none here)
        }
        break;
      case NGHTTP2_DATA:
        if (end_stream)
          if (auto* s = c.find(frame->hd.stream_id)) finish_request(*s);
        break;
      default:
        break;
    }
    return 0;
  }

  /**
   * Frame headers, also of frames that never reach frame_recv (such as DATA on a stream that is
   * closing): the frames that cost work and carry no request are counted here.
   */
  static int begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
    auto& c = self(user);
    const bool ack = (hd->flags & NGHTTP2_FLAG_ACK) != 0;
    switch (hd->type) {
      case NGHTTP2_DATA:
        if (hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0 && !c.control_.take(now_ms()))
          c.calm_down("empty DATA flood");
        break;
      case NGHTTP2_RST_STREAM:
        if (!c.resets_.take(now_ms())) c.calm_down("rapid reset");
        break;
      case NGHTTP2_SETTINGS:
      case NGHTTP2_PING:
        if (!ack && !c.control_.take(now_ms())) c.calm_down(hd->type == NGHTTP2_PING ? "PING flood" : "SETTINGS flood");
        break;
      case NGHTTP2_PRIORITY:
      case NGHTTP2_PRIORITY_UPDATE:
        // (WINDOW_UPDATE is not counted: it needs no answer, and clients send one per read.)
        if (!c.control_.take(now_ms())) c.calm_down("PRIORITY flood");
        break;
      default:
        break;
    }
    return 0;
  }

  static void finish_request(stream_state& s) {
    s.request_ended = true;
    if (s.relay) {
      s.relay->request_end = true;
      if (s.relay->up) s.relay->up->resume(s.relay->up_id);
      return;
    }
    if (!s.chan) return;
    if (s.chunked) s.chan->add_request("0\r\n\r\n", 5, 0);
    s.chan->end_request();
  }

  static int data_chunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                        void* user) {
    auto& c = self(user);
    auto* s = c.find(id);
    if (s && s->relay) {
      auto& r = *s->relay;
      r.bytes_in += len;
      if (r.refused || r.bytes_in > r.max_body) {
        // Answered already, or over the route's limit: dropped, and the service's stream ends.
        c.conn_consume_ += len;
        if (!r.refused) {
          if (r.up) r.up->reset(r.up_id, NGHTTP2_CANCEL);
          c.conn_consume_ += r.request_body.size();
          r.request_body.consume(r.request_body.size());
          if (!r.response_started)
            c.relay_failed(id, 413, 8, "the request body is larger than this route accepts");
          else
            nghttp2_submit_rst_stream(c.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
          r.refused = true;
        }
        return 0;
      }
      auto dst = r.request_body.prepare(len);
      if (len > 0) std::memcpy(dst.data(), data, len);
      r.request_body.commit(len);
      if (r.up) r.up->resume(r.up_id);
      return 0;
    }
    if (!s || !s->chan || s->chan->closed()) {
      c.conn_consume_ += len;  // nobody reads it: the window opens again at once
      return 0;
    }
    const char* bytes = reinterpret_cast<const char*>(data);
    if (s->chunked) {
      char size[24];
      int n = std::snprintf(size, sizeof size, "%zx\r\n", len);
      s->chan->add_request(size, static_cast<std::size_t>(n), 0);
      s->chan->add_request(bytes, len, len);
      s->chan->add_request("\r\n", 2, 0);
    } else {
      s->chan->add_request(bytes, len, len);
    }
    return 0;
  }

  static int stream_close(nghttp2_session*, std::int32_t id, std::uint32_t, void* user) {
    auto& c = self(user);
    auto it = c.streams_.find(id);
    if (it == c.streams_.end()) return 0;
    if (auto& ch = it->second->chan) {
      c.conn_consume_ += ch->take_consumed() + ch->discard_request();
      ch->reset();
    }
    if (auto& r = it->second->relay) {
      c.conn_consume_ += r->request_body.size();  // (never read: the window opens for the others)
      r->client = nullptr;
      if (r->up) r->up->reset(r->up_id, NGHTTP2_CANCEL);
      c.log_relay(*it->second);
    }
    if (c.spare_.size() < max_spare_streams && it->second->retained() <= max_spare_bytes) {
      auto& spare = c.spare_.emplace_back(std::move(it->second));
      spare->chan.reset();  // (nothing of the ended stream is kept alive by its spare state)
      spare->relay.reset();
      spare->gen.reset();
    }
    c.streams_.erase(it);
    c.idle_since_ = now_ms();
    if (c.closing_ && c.streams_.empty()) c.closing_since_ = c.idle_since_;  // (the close wait starts now)
    c.update_deadline();
    return 0;
  }

  static int frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    // Streams reset for the client's own faults count as resets too (a client that makes the
    // server reset streams must not escape the rapid-reset limit).
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR &&
        frame->rst_stream.error_code != NGHTTP2_INTERNAL_ERROR && frame->rst_stream.error_code != NGHTTP2_CANCEL &&
        !c.resets_.take(now_ms()))
      c.calm_down("too many streams reset for protocol errors");
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
      return 0;
    // The response is complete before the request: the rest of the request is not wanted
    // (RFC 9113 §8.1).
    if (auto* s = c.find(frame->hd.stream_id); s && !s->request_ended)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* flags, nghttp2_data_source* source, void* user) {
    auto& s = *static_cast<stream_state*>(source->ptr);
    // A stream nobody else serves any more times out only without progress.
    if (s.orphan_deadline != 0) s.orphan_deadline = now_ms() + self(user).w_.current()->cfg->timeouts.body.count();
    if (!s.refusal.empty()) {
      const std::size_t n = std::min(length, s.refusal.size() - s.refusal_sent);
      if (n > 0) std::memcpy(buf, s.refusal.data() + s.refusal_sent, n);
      s.refusal_sent += n;
      if (s.refusal_sent == s.refusal.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    }
    if (s.relay) return read_relayed(s, buf, length, flags);
    auto& ch = *s.chan;
    if (ch.end() == h2_channel::response_end::aborted) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    auto& out = ch.response();
    const std::size_t n = std::min(length, out.size());
    if (n > 0) std::memcpy(buf, out.data().data(), n);
    ch.took_response(n);
    if (out.size() == 0 && ch.end() == h2_channel::response_end::complete) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s.phase = stream_state::response_phase::done;
    } else if (n == 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }
};

h2_connection::h2_connection(worker& w, stream& io, boost::beast::flat_buffer& already,
                             std::shared_ptr<const listener_info> listener, client_address peer, timed& clock)
    : w_(w), io_(io), in_(already), listener_(std::move(listener)), peer_(std::move(peer)), clock_(clock),
      wake_(io.get_executor()) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &callbacks::begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &callbacks::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &callbacks::begin_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &callbacks::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &callbacks::stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &callbacks::frame_send);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // The window opens again as the session reads the body, not as it arrives: bounded memory.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, 8);
  const auto& cfg = *w_.current()->cfg;
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg.limits.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(cfg.limits.max_header_bytes)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      // RFC 9218: no RFC 7540 priority tree (nor the closed streams kept for it); streams are
      // served round-robin within the RFC 9218 urgency a client may give.
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window);
}

h2_connection::~h2_connection() {
  detach_relays();
  for (auto& [id, s] : streams_)
    if (s->chan) s->chan->reset();
  nghttp2_session_del(session_);
}

h2_connection::stream_state* h2_connection::find(std::int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

net::awaitable<void> h2_connection::run() {
  using namespace net::experimental::awaitable_operators;
  update_deadline();
  co_await (read_loop() && write_loop());
  detach_relays();
  for (auto& [id, s] : streams_)
    if (s->chan) s->chan->reset();
  if (closing_ && io_.is_open() && !write_failed_) {
    // The GOAWAY is out: half-close and read what the client still sends for a moment, so that
    // unread bytes do not turn the close into a reset that could destroy the GOAWAY.
    io_.shutdown_send();
    clock_.deadline = now_ms() + closing_time.count();
    std::size_t drained = 0;
    while (drained < 1024 * 1024) {
      auto [ec, n] = co_await io_.async_read_some(in_.prepare(read_size), tok);
      if (ec) break;
      drained += n;
    }
  }
  clock_.deadline = 0;
  io_.close();
}

net::awaitable<void> h2_connection::read_loop() {
  for (;;) {
    if (in_.size() > 0) {
      const auto* data = static_cast<const std::uint8_t*>(in_.data().data());
      const auto rv = nghttp2_session_mem_recv(session_, data, in_.size());
      in_.consume(in_.size());
      start_sessions();
      if (rv < 0) {
        spdlog::debug("HTTP/2 connection from {} ended: {}", peer_.ip, nghttp2_strerror(static_cast<int>(rv)));
        break;
      }
      update_deadline();
      wake();
    }
    if (!nghttp2_session_want_read(session_) || (closing_ && streams_.empty())) break;
    auto [ec, n] = co_await io_.async_read_some(in_.prepare(read_size), tok);
    if (ec) break;
    in_.commit(n);
    io_.bytes_in += n;
  }
  reading_done_ = true;
  wake();
}

net::awaitable<void> h2_connection::write_loop() {
  for (;;) {
    apply_touched();
    if (!gather_frames(session_, out_, write_batch)) break;
    if (!out_.empty()) {
      writing_ = true;
      write_started_ = now_ms();
      update_deadline();
      auto [ec, n] = co_await net::async_write(io_, net::buffer(out_), tok);
      writing_ = false;
      io_.bytes_out += n;
      update_deadline();
      if (ec) {
        write_failed_ = true;
        break;
      }
      continue;
    }
    if (reading_done_) break;
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
    if (closing_ && streams_.empty()) break;
    if (wake_pending_) {
      wake_pending_ = false;
      continue;
    }
    waiting_ = true;
    wake_.expires_at(net::steady_timer::time_point::max());
    co_await wake_.async_wait(tok);
    waiting_ = false;
    wake_pending_ = false;
  }
  // Nothing more will be written: the reader stops too.
  reading_done_ = true;
  io_.cancel();
}

void h2_connection::wake() {
  wake_pending_ = true;
  if (waiting_) wake_.cancel();
}

void h2_connection::touched(h2_channel& ch) {
  if (!ch.queued) {
    ch.queued = true;
    touched_.push_back(ch.id());
  }
  wake();
}

void h2_connection::apply_touched() {
  if (conn_consume_ > 0) {
    nghttp2_session_consume_connection(session_, conn_consume_);
    conn_consume_ = 0;
  }
  // (apply may add to the list: a write that was waiting for room goes on)
  for (std::size_t i = 0; i < touched_.size(); ++i) {
    if (auto* s = find(touched_[i])) {
      s->chan->queued = false;
      apply(*s);
    }
  }
  touched_.clear();
  update_deadline();  // (a stream may have become one nobody serves)
}

void h2_connection::apply(stream_state& s) {
  auto& ch = *s.chan;
  if (std::size_t n = ch.take_consumed()) nghttp2_session_consume(session_, s.id, n);
  if (ch.closed()) {
    if (std::size_t n = ch.discard_request()) nghttp2_session_consume(session_, s.id, n);
    // The session is done; what it wrote waits for the client's window, for so long.
    if (s.orphan_deadline == 0 && s.phase != stream_state::response_phase::done)
      s.orphan_deadline = now_ms() + w_.current()->cfg->timeouts.body.count();
  }
  if (s.phase == stream_state::response_phase::head) submit_response_head(s);
  else if (s.phase == stream_state::response_phase::body) {
    if (ch.end() == h2_channel::response_end::aborted) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
      s.phase = stream_state::response_phase::done;
    } else {
      nghttp2_session_resume_data(session_, s.id);
    }
  }
}

void h2_connection::submit_response_head(stream_state& s) {
  auto& ch = *s.chan;
  auto& out = ch.response();
  if (ch.head_status() != 0) {
    // Handed over parsed (a forwarded response): what the channel holds is body.
    s.res.assign(ch.head_status(), ch.head_fields());
    return submit_final_head(s);
  }
  for (;;) {
    if (!s.parser) {
      s.parser.emplace(s.res_head);
      s.parser->header_limit(static_cast<std::uint32_t>(h2_channel::response_capacity));
      s.parser->body_limit(boost::none);  // (only the head is parsed; Beast would refuse a large Content-Length)
    }
    boost::system::error_code ec;
    std::size_t used = out.size() > 0 ? s.parser->put(out.data(), ec) : 0;
    ch.took_response(used);
    if (ec && ec != http::error::need_more) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
      s.phase = stream_state::response_phase::done;
      return;
    }
    if (!s.parser->is_header_done()) {
      if (ch.end() != h2_channel::response_end::open) {
        // The session ended without a response (the client went, or it aborted).
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
        s.phase = stream_state::response_phase::done;
      }
      return;
    }
    s.res.assign(s.res_head);
    const unsigned status = s.res_head.status;
    s.parser.reset();
    if (status < 200) {
      // An interim response (100 Continue): HEADERS without END_STREAM, then the final one.
      if (status != 101) {
        const auto& nva = response_nva(s.res);
        nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, s.id, nullptr, nva.data(), nva.size(), nullptr);
      }
      continue;
    }
    return submit_final_head(s);
  }
}

void h2_connection::submit_final_head(stream_state& s) {
  auto& ch = *s.chan;
  const auto& nva = response_nva(s.res);
  if (ch.end() == h2_channel::response_end::complete && ch.response().size() == 0) {
    nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), nullptr);
    s.phase = stream_state::response_phase::done;
  } else {
    nghttp2_data_provider provider{};
    provider.source.ptr = &s;
    provider.read_callback = &callbacks::read_body;
    nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), &provider);
    s.phase = stream_state::response_phase::body;
  }
}

void h2_connection::start_stream(stream_state& s, bool end_stream) {
  s.request_ended = end_stream;
  s.orphan_deadline = 0;  // (a session or a relay keeps its time from here, or the refusal below)
  if (!s.head.finish(!end_stream, s.line, s.fields)) return refuse_stream(s, s.head.status(), s.head.reason());
  if (const auto& gen = w_.current(); const route* r = relay_route(s, *gen)) {
    s.gen = gen;
    s.matched = r;
    return start_relay(s, *r);
  }
  s.chunked = s.head.chunked();
  ++streams_started_;
  s.chan = std::make_shared<h2_channel>(io_.get_executor(), this, s.id);
  s.chan->secure = io_.secure();
  boost::system::error_code ec;
  s.chan->local_endpoint = io_.local_endpoint(ec);
  s.chan->request_fields.assign(s.fields);
  s.chan->add_request(s.line.data(), s.line.size(), 0);
  if (end_stream) s.chan->end_request();
  // Its session starts once nghttp2 has taken all the bytes of this read: a stream the client
  // resets in the same read is never served (nor forwarded).
  starting_.push_back(s.id);
}

void h2_connection::refuse_stream(stream_state& s, unsigned status, const std::string& reason) {
  // Made here, not by a session: the head could not become an HTTP/1.1 request at all.
  s.refusal = std::to_string(status) + " " + reason + "\n";
  const std::string code = std::to_string(status);
  const std::string length = std::to_string(s.refusal.size());
  const std::string type = "text/plain; charset=utf-8";
  nghttp2_nv nva[] = {h2_nv(":status", code), h2_nv("content-type", type), h2_nv("content-length", length)};
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = &callbacks::read_body;
  nghttp2_submit_response(session_, s.id, nva, std::size(nva), &provider);
  s.phase = stream_state::response_phase::done;
  s.orphan_deadline = now_ms() + w_.current()->cfg->timeouts.body.count();
  update_deadline();
}

void h2_connection::relay_response(std::int32_t id) {
  auto* s = find(id);
  if (!s || !s->relay || s->relay->response_started) return;
  auto& r = *s->relay;
  std::vector<nghttp2_nv> nva;
  nva.reserve(r.response.size());
  for (const auto& [name, value] : r.response) nva.push_back(h2_nv(name, value));
  if (!r.response.empty() && r.response.front().first == ":status") r.status = std::atoi(r.response.front().second.c_str());
  r.response_started = true;
  if (r.response_end && r.response_body.size() == 0 && r.response_trailers.empty()) {
    nghttp2_submit_response(session_, id, nva.data(), nva.size(), nullptr);
    s->phase = stream_state::response_phase::done;
  } else {
    nghttp2_data_provider provider{};
    provider.source.ptr = s;
    provider.read_callback = &callbacks::read_body;
    nghttp2_submit_response(session_, id, nva.data(), nva.size(), &provider);
    s->phase = stream_state::response_phase::body;
  }
  wake();
}

}  // namespace kinfra::proxy
