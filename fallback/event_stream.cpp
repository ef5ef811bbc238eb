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

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

event_stream::event_stream(const status_board& board, options opts, status_source status,
                           std::shared_ptr<std::atomic<int>> open,
                           std::shared_ptr<const std::atomic<std::uint64_t>> generation, std::uint64_t generation_at_open)
    : board_(board), opts_(std::move(opts)), status_(std::move(status)), open_(std::move(open)),
      generation_(std::move(generation)), generation_at_open_(generation_at_open) {
  // A cursor beyond what this process has is an earlier process's: from now on, and say so.
  const std::uint64_t last_event = board_.events().last_seq();
  events_seen_ = opts_.events_after.value_or(last_event);
  if (events_seen_ > last_event) {
    events_seen_ = last_event;
    reset_events_ = true;
  }
  if (opts_.logs) {
    auto last = board_.logs(opts_.service, 1);
    const std::uint64_t last_line = last.empty() ? 0 : last.back().seq;
    lines_seen_ = opts_.logs_after.value_or(last_line);
    if (lines_seen_ > last_line) {
      lines_seen_ = last_line;
      reset_logs_ = true;
    }
  }
}

event_stream::~event_stream() { open_->fetch_sub(1, std::memory_order_acq_rel); }

std::uint64_t event_stream::version() const {
  // All of them only grow (the last one goes 0, 1, 0): the sum changes whenever one does.
  const std::int64_t due = status_due_.load(std::memory_order_acquire);
  return board_changes() + (opts_.admin ? board_.events().last_seq() : 0) + pending_.load(std::memory_order_acquire) +
         (due != 0 && steady_ns() >= due ? 1 : 0);
}

std::uint64_t event_stream::board_changes() const {
  // A visitor's document has no log lines in it: lines appended do not change it.
  return opts_.admin ? board_.version() : board_.version() - board_.log_version();
}

bool event_stream::done() const {
  return finished_.load(std::memory_order_acquire) ||
         generation_->load(std::memory_order_acquire) != generation_at_open_;
}

std::string event_stream::next() {
  const auto now = std::chrono::steady_clock::now();
  std::string out;
  if (!started_) {
    started_ = true;
    out += "retry: 2000\n\n";  // (a browser's EventSource waits so long before it connects again)
    append_sse(out, "hello", R"({"boot": ")" + process_boot_id() + "\"}");
    if (reset_events_) append_sse(out, "resync", R"({"what": "events", "reset": true})");
    if (reset_logs_) append_sse(out, "resync", R"({"what": "logs", "reset": true})");
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
  const bool dropped = board_.events().first_seq() > events_seen_ + 1;
  std::uint64_t upto = events_seen_;
  auto events = board_.events().since(events_seen_, stream_max_events + 1, opts_.service, &upto);
  if (dropped || events.size() > stream_max_events) {
    append_sse(out, "resync", R"({"what": "events"})");
    if (events.size() > stream_max_events) events.erase(events.begin());
  }
  for (const auto& e : events) append_sse(out, "event", dump(event_json(e)));
  // (Up to what existed while they were read, other services' included: none is skipped.)
  events_seen_ = std::max(events_seen_, upto);
}

void event_stream::add_logs(std::string& out) {
  bool more = false;
  auto lines = board_.logs_after(opts_.service, lines_seen_, stream_max_lines, more);
  if (lines.empty()) return;
  // Lines between the cursor and the first one here were dropped by the ring: lost for good.
  if (lines.front().seq > lines_seen_ + 1)
    append_sse(out, "resync",
               R"({"what": "logs", "lost": )" + std::to_string(lines.front().seq - lines_seen_ - 1) + "}");
  // The rest follows in the next batches, asked for at once (the version changes).
  if (more) pending_.fetch_add(1, std::memory_order_acq_rel);
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
  const std::uint64_t v = board_changes();
  const bool changed = v != status_version_;
  const bool soon_enough = now - status_at_ >= stream_status_min_gap;
  const bool due = status_version_ == 0 || (changed && soon_enough) ||
                   (opts_.admin && now - status_at_ >= stream_status_every);
  if (!due) {
    // Held back by the gap: the version changes when it may go, so that it is asked for then.
    if (changed)
      status_due_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            (status_at_ + stream_status_min_gap).time_since_epoch()).count(),
                        std::memory_order_release);
    return;
  }
  status_due_.store(0, std::memory_order_release);
  auto doc = status_();
  if (!doc) return;
  if (doc->empty()) {
    finished_.store(true, std::memory_order_release);  // (its service was removed)
    return;
  }
  status_version_ = v;
  status_at_ = now;
  // (A visitor's page needs only changes: its document has no clock in it.)
  if (!opts_.admin && last_status_ && *last_status_ == *doc) return;
  last_status_ = doc;
  append_sse(out, "status", *doc);
}

}  // namespace kinfra::fallback
