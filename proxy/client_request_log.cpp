// client_session, a request's accounting: its /metrics counters and its access log line.
#include "proxy/client_session.hpp"

#include "common/access_log.hpp"

namespace kinfra::proxy {

void client_session::begin_request() {
  if (in_request_) return;
  in_request_ = true;
  resumed_idle_until_ = 0;  // (a woken connection's old idle deadline holds only until a request starts)
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

}  // namespace kinfra::proxy
