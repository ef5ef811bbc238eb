#include "common/events.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <ctime>
#include <string.h>  // sigabbrev_np

#include "common/status_board.hpp"

namespace kinfra {

std::string_view to_string(event_kind k) {
  switch (k) {
    case event_kind::started: return "started";
    case event_kind::exited: return "exited";
    case event_kind::state: return "state";
    case event_kind::health: return "health";
    case event_kind::restarted: return "restarted";
    case event_kind::action: return "action";
    case event_kind::maintenance: return "maintenance";
    case event_kind::config_loaded: return "config_loaded";
    case event_kind::config_refused: return "config_refused";
    case event_kind::certificate: return "certificate";
    case event_kind::service_added: return "service_added";
    case event_kind::service_removed: return "service_removed";
  }
  return "state";
}

std::string_view to_string(event_level l) {
  switch (l) {
    case event_level::info: return "info";
    case event_level::warn: return "warn";
    case event_level::error: return "error";
  }
  return "info";
}

const std::string& process_boot_id() {
  static const std::string id = [] {
    std::random_device rd;
    const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return std::string(buf);
  }();
  return id;
}

void event_log::record(event e) {
  std::lock_guard lock(mutex_);
  record_locked(std::move(e));
}

void event_log::record_locked(event e) {
  e.seq = next_seq_++;
  if (e.at == std::chrono::system_clock::time_point{}) e.at = std::chrono::system_clock::now();
  events_.push_back(std::move(e));
  while (events_.size() > capacity_) events_.pop_front();
  last_.store(events_.back().seq, std::memory_order_release);
}

std::uint64_t event_log::first_seq() const {
  std::lock_guard lock(mutex_);
  return events_.empty() ? next_seq_ : events_.front().seq;
}

std::vector<event> event_log::since(std::uint64_t after, std::size_t max, std::string_view service,
                                    std::uint64_t* upto) const {
  std::vector<event> out;
  std::lock_guard lock(mutex_);
  if (upto) *upto = next_seq_ - 1;
  if (max == 0) return out;
  // Newest first, so that `max` keeps the latest; then turned around.
  for (auto it = events_.rbegin(); it != events_.rend() && it->seq > after && out.size() < max; ++it)
    if (service.empty() || it->service == service) out.push_back(*it);
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig);
}

/** "exited with code 1", "killed by SIGKILL" */
std::string exit_text(const std::optional<int>& code, const std::optional<int>& sig) {
  if (sig) return "killed by " + signal_name(*sig);
  if (code) return "exited with code " + std::to_string(*code);
  return "exited";
}

bool same_exit(const std::optional<int>& c1, const std::optional<int>& s1, const std::optional<int>& c2,
               const std::optional<int>& s2) {
  return c1 == c2 && s1 == s2;
}

event_level level_of(service_state s) {
  if (s == service_state::error) return event_level::error;
  if (s == service_state::unhealthy) return event_level::warn;
  return event_level::info;
}

/** Builds the events of one observation (recorded together, in order). */
class differ {
 public:
  explicit differ(std::vector<event>& out) : out_(out) {}

  void add(std::string service, event_kind kind, event_level level, std::string message, std::string detail = {},
           std::string by = {}) {
    event e;
    e.at = now_;
    e.service = std::move(service);
    e.kind = kind;
    e.level = level;
    e.message = std::move(message);
    e.detail = std::move(detail);
    e.by = std::move(by);
    out_.push_back(std::move(e));
  }

  /** A process's start and end (`who`: "" for a plain service, "instance 1 " for one of several). */
  void process(const std::string& name, const std::string& who, std::optional<pid_t> pid_before,
               std::optional<pid_t> pid_after, bool exit_changed, const std::optional<int>& code,
               const std::optional<int>& sig, service_state state_before) {
    if (exit_changed && (code || sig)) {
      // Asked to stop: an exit by the stop signal is what was wanted, not a failure.
      const bool asked = state_before == service_state::stopping;
      const bool clean = (code && *code == 0) || asked;
      add(name, event_kind::exited, clean ? event_level::info : event_level::error,
          who + (pid_before ? "process " + std::to_string(*pid_before) + " " : std::string("process ")) +
              exit_text(code, sig));
    }
    if (pid_after && pid_after != pid_before)
      add(name, event_kind::started, event_level::info, who + "process started (pid " + std::to_string(*pid_after) + ")");
  }

  void service(const service_status& b, const service_status& a) {
    const std::string& name = a.name;
    if (!a.instances.empty() || !b.instances.empty()) {
      const bool several = a.instances.size() > 1 || b.instances.size() > 1 || a.routes_to_instances;
      for (const auto& ia : a.instances) {
        auto ib = std::find_if(b.instances.begin(), b.instances.end(),
                               [&](const instance_status& i) { return i.uid == ia.uid; });
        const std::string who = several ? "instance " + std::to_string(ia.index) + ": " : "";
        if (ib == b.instances.end()) {
          process(name, who, std::nullopt, ia.pid, false, ia.last_exit_code, ia.last_signal, ia.state);
          continue;
        }
        const bool exit_changed = !same_exit(ib->last_exit_code, ib->last_signal, ia.last_exit_code, ia.last_signal) ||
                                  (ib->pid && !ia.pid && (ia.last_exit_code || ia.last_signal));
        process(name, who, ib->pid, ia.pid, exit_changed, ia.last_exit_code, ia.last_signal, ib->state);
      }
    } else {
      const bool exit_changed = !same_exit(b.last_exit_code, b.last_signal, a.last_exit_code, a.last_signal);
      process(name, "", b.pid, a.pid, exit_changed, a.last_exit_code, a.last_signal, b.state);
    }
    if (a.state != b.state) {
      std::string detail = a.status_message;
      if (detail.empty() && a.state != service_state::running) detail = a.health_detail;
      add(name, event_kind::state, level_of(a.state),
          std::string(to_string(b.state)) + " → " + std::string(to_string(a.state)), detail);
    } else if (a.health != b.health) {
      add(name, event_kind::health, a.health == "Unhealthy" ? event_level::warn : event_level::info,
          "health: " + b.health + " → " + a.health, a.health_detail);
    }
    if (a.maintenance.on != b.maintenance.on) {
      std::string message = a.maintenance.on ? "maintenance on" : "maintenance off";
      if (a.maintenance.on && !a.maintenance.expected.empty()) message += " (expected: " + a.maintenance.expected + ")";
      add(name, event_kind::maintenance, a.maintenance.on ? event_level::warn : event_level::info, std::move(message),
          a.maintenance.on ? a.maintenance.message : std::string());
    }
  }

  void config(const config_status& b, const config_status& a) {
    if (a.loaded_at != b.loaded_at)
      add({}, event_kind::config_loaded, event_level::info,
          "configuration " + std::string(a.reloads > b.reloads ? "reloaded" : "loaded") +
              (a.loaded_by.empty() ? "" : " (" + a.loaded_by + ")"),
          a.path, a.loaded_by);
    if (a.failed_at && a.failed_at != b.failed_at) {
      std::string detail;
      for (const auto& e : a.errors) detail += (detail.empty() ? "" : "\n") + e;
      add({}, event_kind::config_refused, event_level::error,
          "configuration refused: " + std::to_string(a.errors.size()) + (a.errors.size() == 1 ? " error" : " errors") +
              ", the previous one stays in force",
          std::move(detail));
    }
    for (const auto& c : a.certificates) {
      auto old = std::find_if(b.certificates.begin(), b.certificates.end(),
                              [&](const certificate_status& o) { return o.listener == c.listener; });
      if (old != b.certificates.end() && old->fingerprint == c.fingerprint) continue;
      std::string names;
      for (const auto& n : c.names) names += (names.empty() ? "" : ", ") + n;
      std::time_t t = std::chrono::system_clock::to_time_t(c.not_after);
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      char until[32];
      std::strftime(until, sizeof until, "%Y-%m-%d", &tm);
      add({}, event_kind::certificate, event_level::info,
          std::string(old == b.certificates.end() ? "certificate loaded" : "certificate replaced") + " on " +
              c.listener + ": " + names,
          "issuer " + c.issuer + ", valid until " + until + ", " + std::string(to_string(c.source)));
    }
    for (const auto& [key, s] : a.acme) {
      auto old = b.acme.find(key);
      const std::uint64_t obtained = old == b.acme.end() ? 0 : old->second.obtained_total;
      const std::uint64_t failed = old == b.acme.end() ? 0 : old->second.failed_total;
      if (s.obtained_total > obtained)
        add({}, event_kind::certificate, event_level::info, "certificate obtained from the ACME CA for " + key,
            s.directory, "acme");
      if (s.failed_total > failed)
        add({}, event_kind::certificate, event_level::warn, "certificate request to the ACME CA failed for " + key,
            s.last_error, "acme");
    }
  }

 private:
  std::vector<event>& out_;
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

}  // namespace

void event_log::observe(const board_snapshot* before, const board_snapshot& after) {
  if (!before) return;
  std::vector<event> out;
  differ d(out);
  for (std::size_t i = 0; i < after.services.size(); ++i) {
    const service_status& a = after.services[i];
    // (Usually at the same place: no search, the board's writer lock is held.)
    const service_status* b = i < before->services.size() && before->services[i].name == a.name
                                  ? &before->services[i] : before->find(a.name);
    if (!b) {
      d.add(a.name, event_kind::service_added, event_level::info, "service added");
      continue;
    }
    d.service(*b, a);
  }
  for (const auto& b : before->services)
    if (!after.find(b.name)) d.add(b.name, event_kind::service_removed, event_level::info, "service removed");
  d.config(before->config, after.config);
  if (out.empty()) return;
  std::lock_guard lock(mutex_);
  for (auto& e : out) record_locked(std::move(e));
}

}  // namespace kinfra
