#include "fallback/event_stream.hpp"

#include <nlohmann/json.hpp>

#include "fallback/events_api.hpp"
#include "fallback/responses.hpp"
#include "fallback/status_json.hpp"

namespace kinfra::fallback {

void append_sse(std::string& out, std::string_view name, std::string_view data) {
  out.append("event: ").append(name).append("\n");
  while (!data.empty() && data.back() == '\n') data.remove_suffix(1);
  for (;;) {
    const auto nl = data.find('\n');
    out.append("data: ").append(data.substr(0, nl)).append("\n");
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  out.append("\n");
}

event_stream::event_stream(const status_board& board, options opts, status_source status,
                           std::shared_ptr<std::atomic<int>> open)
    : board_(board), opts_(std::move(opts)), status_(std::move(status)), open_(std::move(open)) {
  open_->fetch_add(1, std::memory_order_acq_rel);
  events_seen_ = opts_.events_after.value_or(board_.events().last_seq());
  if (opts_.logs) {
    if (opts_.logs_after) {
      lines_seen_ = *opts_.logs_after;
    } else {
      auto last = board_.logs(opts_.service, 1);
      lines_seen_ = last.empty() ? 0 : last.back().seq;
    }
  }
}

event_stream::~event_stream() { open_->fetch_sub(1, std::memory_order_acq_rel); }

std::uint64_t event_stream::version() const {
  // Both only grow: their sum changes whenever either does.
  return board_.version() + (opts_.admin ? board_.events().last_seq() : 0);
}

std::string event_stream::next() {
  const auto now = std::chrono::steady_clock::now();
  std::string out;
  if (!started_) {
    started_ = true;
    out += "retry: 2000\n\n";  // (a browser's EventSource waits so long before it connects again)
  }
  if (opts_.admin) add_events(out);
  if (opts_.admin && opts_.logs) add_logs(out);
  add_status(out, now);
  if (out.empty() && now - sent_at_ >= stream_heartbeat) out = ": keep-alive\n\n";
  if (!out.empty()) sent_at_ = now;
  return out;
}

void event_stream::add_events(std::string& out) {
  if (board_.events().last_seq() <= events_seen_) return;
  auto events = board_.events().since(events_seen_, stream_max_events + 1, opts_.service);
  const bool lost = board_.events().first_seq() > events_seen_ + 1 || events.size() > stream_max_events;
  if (lost) {
    append_sse(out, "resync", R"({"what": "events"})");
    if (events.size() > stream_max_events) events.erase(events.begin());
  }
  for (const auto& e : events) append_sse(out, "event", dump(event_json(e)));
  // (Events of other services were looked at too: the cursor moves past them.)
  events_seen_ = std::max(events.empty() ? events_seen_ : events.back().seq, board_.events().last_seq());
}

void event_stream::add_logs(std::string& out) {
  auto lines = board_.logs(opts_.service, stream_max_lines + 1, lines_seen_);
  if (lines.empty()) return;
  // Lines between the cursor and the first one here were dropped by the ring or by this batch.
  if (lines.front().seq > lines_seen_ + 1 || lines.size() > stream_max_lines) {
    append_sse(out, "resync", R"({"what": "logs"})");
    if (lines.size() > stream_max_lines) lines.erase(lines.begin());
  }
  for (const auto& e : lines) {
    nlohmann::ordered_json j = {{"service", opts_.service},
                                {"seq", e.seq},
                                {"timestamp", log_timestamp(e)},
                                {"level", std::string(to_string(e.level))},
                                {"message", e.message}};
    append_sse(out, "log", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  lines_seen_ = lines.back().seq;
}

void event_stream::add_status(std::string& out, std::chrono::steady_clock::time_point now) {
  const std::uint64_t v = board_.version();
  const bool changed = v != status_version_;
  const bool due = status_version_ == 0 || (changed && now - status_at_ >= stream_status_min_gap) ||
                   (opts_.admin && now - status_at_ >= stream_status_every);
  if (!due) return;
  auto doc = status_();
  if (!doc) return;
  status_version_ = v;
  status_at_ = now;
  // (A visitor's page needs only changes: its document has no clock in it.)
  if (!opts_.admin && last_status_ && *last_status_ == *doc) return;
  last_status_ = doc;
  append_sse(out, "status", *doc);
}

}  // namespace kinfra::fallback
