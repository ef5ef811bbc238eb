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

std::string_view to_string(listener_status::kind k) {
  switch (k) {
    case listener_status::kind::http: return "http";
    case listener_status::kind::https: return "https";
    case listener_status::kind::redirect: return "redirect";
    case listener_status::kind::admin: return "admin";
  }
  return "unknown";
}

std::string_view to_string(certificate_status::origin o) {
  switch (o) {
    case certificate_status::origin::file: return "file";
    case certificate_status::origin::self_signed: return "self-signed";
    case certificate_status::origin::local_ca: return "local CA";
    case certificate_status::origin::acme: return "ACME";
    case certificate_status::origin::temporary: return "temporary (waiting for ACME)";
  }
  return "unknown";
}

std::string_view to_string(instance_status::role r) {
  switch (r) {
    case instance_status::role::serving: return "serving";
    case instance_status::role::starting: return "starting";
    case instance_status::role::draining: return "draining";
  }
  return "serving";
}

std::string_view to_string(restart_report::result r) {
  switch (r) {
    case restart_report::result::in_progress: return "in progress";
    case restart_report::result::done: return "done";
    case restart_report::result::failed: return "failed";
  }
  return "done";
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

service_status status_board::fresh_status(const service_config& svc) {
  service_status st;
  st.name = svc.name;
  st.managed = svc.managed();
  if (svc.port) st.port = svc.port;
  else if (svc.monitor) st.port = svc.monitor->port;
  else if (!svc.targets.empty()) st.port = svc.targets.front().address.port;
  st.state = svc.managed() ? service_state::stopped : service_state::starting;
  st.status_message = !svc.managed() ? "Checking..." : svc.autostart ? "Not started" : "Not started (autostart: false)";
  st.health = svc.managed() ? "Stopped" : "Starting";
  st.changed_at = std::chrono::system_clock::now();
  st.routes_to_instances = svc.dynamic_port();
  return st;
}

status_board::status_board(const config& cfg) : never_(std::make_shared<traffic_flags>()) {
  auto first = std::make_shared<board_snapshot>();
  first->config.path = cfg.source_path;
  first->config.loaded_at = std::chrono::system_clock::now();
  first->config.loaded_by = "start-up";
  current_ = std::move(first);
  reconfigure(cfg);
  event e;
  e.kind = event_kind::config_loaded;
  e.message = "kinfra started: configuration loaded (start-up)";
  e.detail = cfg.source_path;
  e.by = "start-up";
  events_.record(std::move(e));
}

void status_board::reconfigure(const config& cfg) {
  {
    std::lock_guard lock(logs_mutex_);
    std::map<std::string, ring, std::less<>> rings;
    for (const auto& svc : cfg.services) {
      auto it = rings_.find(svc.name);
      ring r = it != rings_.end() ? std::move(it->second) : ring{};
      r.capacity = svc.log_lines;
      while (r.lines.size() > r.capacity) r.lines.pop_front();
      rings.emplace(svc.name, std::move(r));
    }
    rings_ = std::move(rings);
  }
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<board_snapshot>();
  next->config = current_->config;
  next->config.routes = std::make_shared<const std::vector<route_config>>(cfg.routes);
  std::map<std::string, std::shared_ptr<traffic_flags>, std::less<>> flags;
  for (const auto& svc : cfg.services) {
    const service_status* before = current_->find(svc.name);
    service_status st = before ? *before : fresh_status(svc);
    if (before) {
      // What the new entry says about itself wins; the life of the service carries over.
      service_status fresh = fresh_status(svc);
      st.port = fresh.port;
      st.routes_to_instances = fresh.routes_to_instances;
      if (st.managed != fresh.managed) st = fresh;
    }
    next->services.push_back(std::move(st));
    auto it = flags_.find(svc.name);
    flags.emplace(svc.name, it != flags_.end() ? it->second : std::make_shared<traffic_flags>());
  }
  // A removed service's flag keeps its last value: requests that the previous configuration
  // already routed there finish as they would have.
  flags_ = std::move(flags);
  publish_locked(std::move(next));
}

std::size_t status_board::size() const {
  std::lock_guard lock(mutex_);
  return current_->services.size();
}

int status_board::index_locked(std::string_view name) const {
  const auto& services = current_->services;
  for (std::size_t i = 0; i < services.size(); ++i)
    if (services[i].name == name) return static_cast<int>(i);
  return -1;
}

int status_board::index_of(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return index_locked(name);
}

std::shared_ptr<const board_snapshot> status_board::snapshot() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void status_board::publish_locked(std::shared_ptr<board_snapshot> next) {
  next->version = version_.load(std::memory_order_relaxed) + 1;
  for (const auto& st : next->services) {
    if (auto it = flags_.find(st.name); it != flags_.end()) {
      const bool accepting = accepts_traffic(st);
      auto& f = *it->second;
      f.holdable.store(!accepting && st.expected_back && !st.maintenance.on, std::memory_order_release);
      f.long_start.store(st.state == service_state::starting &&
                             std::any_of(st.steps.begin(), st.steps.end(),
                                         [](const step_entry& e) { return e.status != step_status::completed; }),
                         std::memory_order_release);
      if (st.routes_to_instances) publish_routable(st, f);
      if (accepting && !f.accepting.load(std::memory_order_relaxed)) f.epoch.fetch_add(1, std::memory_order_acq_rel);
      f.accepting.store(accepting, std::memory_order_release);
    }
  }
  // (The first snapshot, made by the constructor, is no change: kinfra's start is one event.)
  events_.observe(current_->version != 0 ? current_.get() : nullptr, *next);
  current_ = std::move(next);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

void status_board::publish_routable(const service_status& st, traffic_flags& f) {
  // Healthy serving instances, in instance order: published (before `accepting`) when they change.
  auto routable = [](const instance_status& i) {
    return i.part == instance_status::role::serving && i.state == service_state::running && i.port && i.in_flight;
  };
  auto now = f.routable();
  std::size_t count = 0;
  bool same = true;
  for (const auto& i : st.instances) {
    if (!routable(i)) continue;
    same = same && now && count < now->size() && (*now)[count].uid == i.uid && (*now)[count].port == *i.port;
    ++count;
  }
  if (same && now && now->size() == count) return;
  auto next = std::make_shared<std::vector<instance_endpoint>>();
  for (const auto& i : st.instances)
    if (routable(i)) next->push_back({i.uid, *i.port, i.index, i.in_flight});
  f.set_routable(std::move(next));
}

void status_board::modify(std::string_view name, const std::function<void(service_status&)>& fn) {
  std::lock_guard lock(mutex_);
  int index = index_locked(name);
  if (index < 0) return;
  auto next = std::make_shared<board_snapshot>(*current_);
  auto& st = next->services[static_cast<std::size_t>(index)];
  auto before = st.state;
  fn(st);
  if (st.state != before) st.changed_at = std::chrono::system_clock::now();
  publish_locked(std::move(next));
}

void status_board::set_config_status(const std::function<void(config_status&)>& fn) {
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<board_snapshot>(*current_);
  fn(next->config);
  publish_locked(std::move(next));
}

bool status_board::update_service_status(std::string_view name, const service_update& update) {
  if (index_of(name) < 0) return false;
  if (update.status_message || update.state || update.steps) {
    modify(name, [&](service_status& st) {
      if (update.status_message) st.status_message = *update.status_message;
      if (update.state) st.state = *update.state;
      if (update.steps) st.steps = *update.steps;
    });
  }
  for (const auto& line : update.logs) append_log(name, line);
  return true;
}

bool status_board::set_maintenance(std::string_view name, maintenance_info info) {
  if (index_of(name) < 0) return false;
  if (info.on) info.since = std::chrono::system_clock::now();
  modify(name, [&](service_status& st) { st.maintenance = std::move(info); });
  return true;
}

void status_board::append_log(std::string_view name, log_entry entry) {
  {
    std::lock_guard lock(logs_mutex_);
    auto it = rings_.find(name);
    if (it == rings_.end()) return;
    auto& r = it->second;
    entry.seq = r.next_seq++;
    r.lines.push_back(std::move(entry));
    while (r.lines.size() > r.capacity) r.lines.pop_front();
  }
  log_version_.fetch_add(1, std::memory_order_acq_rel);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

std::vector<log_entry> status_board::logs(std::string_view name, std::size_t max, std::uint64_t after) const {
  std::lock_guard lock(logs_mutex_);
  auto it = rings_.find(name);
  if (it == rings_.end()) return {};
  const auto& lines = it->second.lines;
  // Lines are in seq order: skip those at or before `after`, then keep the last `max`.
  auto first = std::partition_point(lines.begin(), lines.end(), [&](const log_entry& e) { return e.seq <= after; });
  auto available = static_cast<std::size_t>(std::distance(first, lines.end()));
  if (available > max) first += static_cast<long>(available - max);
  return {first, lines.end()};
}

std::vector<log_entry> status_board::logs_after(std::string_view name, std::uint64_t after, std::size_t max,
                                               bool& more) const {
  std::lock_guard lock(logs_mutex_);
  more = false;
  auto it = rings_.find(name);
  if (it == rings_.end()) return {};
  const auto& lines = it->second.lines;
  auto first = std::partition_point(lines.begin(), lines.end(), [&](const log_entry& e) { return e.seq <= after; });
  auto available = static_cast<std::size_t>(std::distance(first, lines.end()));
  more = available > max;
  return {first, first + static_cast<long>(more ? max : available)};
}

void status_board::record_health_check(std::string_view name, bool ok) {
  std::lock_guard lock(logs_mutex_);
  auto it = checks_.find(name);
  if (it == checks_.end()) it = checks_.emplace(std::string(name), std::pair<std::uint64_t, std::uint64_t>{}).first;
  ++(ok ? it->second.first : it->second.second);
}

std::pair<std::uint64_t, std::uint64_t> status_board::health_checks(std::string_view name) const {
  std::lock_guard lock(logs_mutex_);
  auto it = checks_.find(name);
  return it == checks_.end() ? std::pair<std::uint64_t, std::uint64_t>{} : it->second;
}

std::shared_ptr<const std::atomic<bool>> status_board::accepting_flag(std::string_view name) const {
  auto t = traffic(name);
  return std::shared_ptr<const std::atomic<bool>>(t, &t->accepting);
}

std::shared_ptr<traffic_flags> status_board::traffic(std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = flags_.find(name);
  return it != flags_.end() ? it->second : never_;
}

void status_board::report_refused(const std::string& name, std::uint16_t port) {
  // The supervisor decides (on its thread, within moments): a service it checks is marked
  // unhealthy until a check passes; one with `health: off` keeps its traffic.
  std::function<void(const std::string&, std::uint16_t)> handler;
  {
    std::lock_guard lock(handler_mutex_);
    handler = refused_handler_;
  }
  if (handler) handler(name, port);
}

void status_board::on_refused(std::function<void(const std::string&, std::uint16_t)> handler) {
  std::lock_guard lock(handler_mutex_);
  refused_handler_ = std::move(handler);
}

}  // namespace kinfra
