#include "common/status_board.hpp"

#include <algorithm>

namespace kinfra {

std::string_view to_string(service_state s) {
  switch (s) {
    case service_state::stopped: return "stopped";
    case service_state::starting: return "starting";
    case service_state::running: return "running";
    case service_state::unhealthy: return "unhealthy";
    case service_state::stopping: return "stopping";
    case service_state::error: return "error";
  }
  return "unknown";
}

std::optional<service_state> parse_service_state(std::string_view s) {
  for (auto st : {service_state::stopped, service_state::starting, service_state::running, service_state::unhealthy,
                  service_state::stopping, service_state::error})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

std::string_view to_string(log_level l) {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "info";
}

std::optional<log_level> parse_log_level(std::string_view s) {
  std::string lower(s);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "debug" || lower == "trace") return log_level::debug;
  if (lower == "info" || lower == "notice") return log_level::info;
  if (lower == "warn" || lower == "warning") return log_level::warn;
  if (lower == "error" || lower == "err" || lower == "fatal" || lower == "critical") return log_level::error;
  return std::nullopt;
}

std::string_view to_string(step_status s) {
  switch (s) {
    case step_status::pending: return "pending";
    case step_status::active: return "active";
    case step_status::completed: return "completed";
  }
  return "pending";
}

std::optional<step_status> parse_step_status(std::string_view s) {
  if (s == "pending") return step_status::pending;
  if (s == "active") return step_status::active;
  if (s == "completed" || s == "done") return step_status::completed;
  return std::nullopt;
}

const service_status* board_snapshot::find(std::string_view name) const {
  for (const auto& s : services)
    if (s.name == name) return &s;
  return nullptr;
}

status_board::status_board(const config& cfg)
    : size_(cfg.services.size()), accepting_(new std::atomic<bool>[cfg.services.size()]), rings_(cfg.services.size()) {
  auto first = std::make_shared<board_snapshot>();
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < cfg.services.size(); ++i) {
    const auto& svc = cfg.services[i];
    names_.push_back(svc.name);
    service_status st;
    st.name = svc.name;
    st.managed = svc.managed();
    if (svc.port) st.port = svc.port;
    else if (svc.monitor) st.port = svc.monitor->port;
    else if (!svc.targets.empty()) st.port = svc.targets.front().address.port;
    st.state = svc.managed() ? service_state::stopped : service_state::starting;
    st.status_message = svc.managed() ? "Not started" : "Checking...";
    st.health = svc.managed() ? "Stopped" : "Starting";
    st.changed_at = now;
    first->services.push_back(std::move(st));
    accepting_[i].store(false, std::memory_order_relaxed);
    rings_[i].capacity = svc.log_lines;
  }
  current_ = std::move(first);
}

int status_board::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return static_cast<int>(i);
  return -1;
}

std::shared_ptr<const board_snapshot> status_board::snapshot() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void status_board::publish_locked(std::shared_ptr<board_snapshot> next) {
  next->version = version_.load(std::memory_order_relaxed) + 1;
  for (std::size_t i = 0; i < next->services.size(); ++i)
    accepting_[i].store(accepts_traffic(next->services[i]), std::memory_order_release);
  current_ = std::move(next);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

void status_board::modify(std::size_t index, const std::function<void(service_status&)>& fn) {
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<board_snapshot>(*current_);
  auto& st = next->services.at(index);
  auto before = st.state;
  fn(st);
  if (st.state != before) st.changed_at = std::chrono::system_clock::now();
  publish_locked(std::move(next));
}

bool status_board::update_service_status(std::string_view name, const service_update& update) {
  int index = index_of(name);
  if (index < 0) return false;
  if (update.status_message || update.state || update.steps) {
    modify(static_cast<std::size_t>(index), [&](service_status& st) {
      if (update.status_message) st.status_message = *update.status_message;
      if (update.state) st.state = *update.state;
      if (update.steps) st.steps = *update.steps;
    });
  }
  for (const auto& line : update.logs) append_log(static_cast<std::size_t>(index), line);
  return true;
}

bool status_board::set_maintenance(std::string_view name, maintenance_info info) {
  int index = index_of(name);
  if (index < 0) return false;
  if (info.on) info.since = std::chrono::system_clock::now();
  modify(static_cast<std::size_t>(index), [&](service_status& st) { st.maintenance = std::move(info); });
  return true;
}

void status_board::append_log(std::size_t index, log_entry entry) {
  {
    std::lock_guard lock(logs_mutex_);
    auto& r = rings_.at(index);
    entry.seq = r.next_seq++;
    r.lines.push_back(std::move(entry));
    while (r.lines.size() > r.capacity) r.lines.pop_front();
  }
  version_.fetch_add(1, std::memory_order_acq_rel);
}

std::vector<log_entry> status_board::logs(std::size_t index, std::size_t max, std::uint64_t after) const {
  std::lock_guard lock(logs_mutex_);
  const auto& lines = rings_.at(index).lines;
  // Lines are in seq order: skip those at or before `after`, then keep the last `max`.
  auto first = std::partition_point(lines.begin(), lines.end(), [&](const log_entry& e) { return e.seq <= after; });
  auto available = static_cast<std::size_t>(std::distance(first, lines.end()));
  if (available > max) first += static_cast<long>(available - max);
  return {first, lines.end()};
}

void status_board::report_refused(std::size_t index) {
  // The supervisor decides (on its thread, within moments): a service it checks is marked
  // unhealthy until a check passes; one with `health: off` keeps its traffic.
  std::function<void(std::size_t)> handler;
  {
    std::lock_guard lock(handler_mutex_);
    handler = refused_handler_;
  }
  if (handler) handler(index);
}

void status_board::on_refused(std::function<void(std::size_t)> handler) {
  std::lock_guard lock(handler_mutex_);
  refused_handler_ = std::move(handler);
}

}  // namespace kinfra
