// The times of an h2_connection: idle, write stall, drain (two GOAWAYs), closing, the streams
// nobody serves any more, and ending the connection for misbehaviour.
#include <spdlog/spdlog.h>

#include "proxy/h2_frames.hpp"
#include "proxy/h2_stream_state.hpp"

namespace kinfra::proxy {
void h2_connection::calm_down(const char* why) {
  if (closing_) return;
  spdlog::warn("HTTP/2 connection from {} closed: {} (GOAWAY ENHANCE_YOUR_CALM)", peer_.ip, why);
  closing_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  detach_relays();
  for (auto& [id, s] : streams_)
    if (s->chan) s->chan->reset();
  update_deadline();
  wake();
}

void h2_connection::on_drain() {
  if (closing_ || draining_) return;
  // Two steps (RFC 9113 §6.8): a GOAWAY that says "no new streams soon", then, a moment later,
  // the final one with the last stream served; streams already on their way are not lost.
  draining_ = true;
  drain_started_ = now_ms();
  nghttp2_submit_shutdown_notice(session_);
  update_deadline();
  wake();
}

void h2_connection::on_deadline() {
  const std::int64_t now = now_ms();
  const auto& t = w_.current()->cfg->timeouts;
  // Streams nobody serves any more (a head that never completed, an answer the client does not
  // read): reset, and the connection goes on.
  bool reset_any = false;
  for (auto& [id, st] : streams_) {
    if (st->orphan_deadline != 0 && st->orphan_deadline <= now) {
      st->orphan_deadline = 0;
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      reset_any = true;
    }
  }
  if (draining_ && !closing_ && drain_started_ + notice_time.count() <= now) {
    closing_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    reset_any = true;
  }
  if ((writing_ && write_started_ + t.body.count() <= now) ||
      (closing_ && !writing_ && !reset_any && streams_.empty() && closing_since_ + closing_time.count() <= now)) {
    // A client that stopped reading, or a GOAWAY that could not be delivered in time.
    io_.close();
    return;
  }
  if (!reset_any && !closing_ && streams_.empty() && idle_since_ + (streams_started_ == 0 ? t.header : t.idle).count() <= now) {
    // Idle: say goodbye, then close.
    closing_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  }
  update_deadline();
  wake();
}

void h2_connection::close_now() { io_.close(); }

void h2_connection::update_deadline() {
  const auto& t = w_.current()->cfg->timeouts;
  std::int64_t next = 0;
  auto consider = [&](std::int64_t at) {
    if (at != 0 && (next == 0 || at < next)) next = at;
  };
  if (closing_ && closing_since_ == 0) closing_since_ = now_ms();
  if (writing_) consider(write_started_ + t.body.count());
  if (draining_ && !closing_) consider(drain_started_ + notice_time.count());
  if (closing_ && streams_.empty()) consider(closing_since_ + closing_time.count());
  if (!closing_ && streams_.empty()) consider(idle_since_ + (streams_started_ == 0 ? t.header : t.idle).count());
  for (const auto& [id, st] : streams_) consider(st->orphan_deadline);
  clock_.deadline = next;
}

}  // namespace kinfra::proxy
