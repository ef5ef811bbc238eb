#include "fallback/status_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

#include "common/units.hpp"

namespace kinfra::fallback {
namespace {

using json = nlohmann::ordered_json;

void put_traffic(json& j, const service_rate& r) {
  j["requests_total"] = r.requests;
  j["errors_total"] = r.errors;
  j["requests_per_second"] = r.requests_per_second ? json(*r.requests_per_second) : json(nullptr);
  j["error_rate"] = r.error_rate ? json(*r.error_rate) : json(nullptr);
}

/** Each process of the service: its N instances, and a start-first restart's new and old one. */
json instances_json(const service_status& s, std::chrono::system_clock::time_point now) {
  json out = json::array();
  for (const auto& i : s.instances) {
    json j;
    j["instance"] = i.index;
    j["role"] = std::string(to_string(i.part));
    j["state"] = std::string(to_string(i.state));
    j["pid"] = i.pid ? std::to_string(*i.pid) : "-";
    j["port"] = i.port ? std::to_string(*i.port) : "-";
    j["uptime"] = i.started_at && i.pid
                      ? format_uptime(std::chrono::duration_cast<std::chrono::seconds>(now - *i.started_at))
                      : "-";
    j["health_status"] = i.health;
    j["health_detail"] = i.health_detail;
    j["restarts"] = i.restarts;
    j["in_flight"] = i.in_flight ? i.in_flight->load(std::memory_order_relaxed) : 0;
    if (i.last_exit_code) j["last_exit_code"] = *i.last_exit_code;
    if (i.last_signal) j["last_signal"] = *i.last_signal;
    out.push_back(std::move(j));
  }
  return out;
}

json restart_json(const std::optional<restart_report>& r) {
  if (!r) return nullptr;
  return {{"id", r->id}, {"result", std::string(to_string(r->outcome))}, {"message", r->message}, {"lines", r->lines},
          {"at", format_utc(r->at)}};
}

json service_fields(const status_board& board, const service_status& s,
                    std::chrono::system_clock::time_point now, bool with_logs, const service_rates* rates) {
  json j;
  j["status_message"] = s.status_message;
  j["port"] = s.port ? std::to_string(*s.port) : "-";
  j["pid"] = s.pid ? std::to_string(*s.pid) : "-";
  j["uptime"] = uptime_text(s, now);
  j["health_status"] = s.health;
  j["state"] = std::string(to_string(s.state));
  // Beyond the spec's fields: what the dashboard and scripts also want to know.
  j["managed"] = s.managed;
  j["restarts"] = s.restarts;
  j["health_detail"] = s.health_detail;
  // Requests waiting for it to be back (hold), on every worker.
  j["held_requests"] = board.traffic(s.name)->held.load(std::memory_order_relaxed);
  if (s.last_exit_code) j["last_exit_code"] = *s.last_exit_code;
  if (s.last_signal) j["last_signal"] = *s.last_signal;
  j["instances"] = instances_json(s, now);
  // The last start-first restart: in progress, done, or failed with the previous process kept.
  j["last_restart"] = restart_json(s.last_restart);
  json steps = json::array();
  for (const auto& step : s.steps) steps.push_back({{"text", step.text}, {"status", std::string(to_string(step.status))}});
  j["steps"] = steps;
  j["maintenance"] = {{"on", s.maintenance.on}, {"message", s.maintenance.message}, {"expected", s.maintenance.expected}};
  if (rates) {
    // The same counters as /metrics: requests routed to this service, and the 5xx among them.
    service_rate r;
    if (auto it = rates->find(s.name); it != rates->end()) r = it->second;
    put_traffic(j, r);
  }
  if (with_logs) {
    json logs = json::array();
    for (const auto& e : board.logs(s.name, status_log_lines))
      logs.push_back({{"timestamp", log_timestamp(e)}, {"level", std::string(to_string(e.level))}, {"message", e.message}});
    j["logs"] = logs;
  }
  return j;
}

/** The routes in force, in the order they are written (the router picks the most specific). */
json routes_json(const board_snapshot& snap, const route_rates* by_route) {
  json out = json::array();
  if (!snap.config.routes) return out;
  for (const auto& r : *snap.config.routes) {
    json j = {{"host", r.host}, {"path", r.path}, {"service", r.service}, {"strip_prefix", r.strip_prefix},
              {"label", r.label()}};  // (its /metrics label and /__history__?route=)
    const service_status* s = snap.find(r.service);
    j["state"] = s ? std::string(to_string(s->state)) : "unknown";
    if (s && s->maintenance.on) j["maintenance"] = true;
    if (by_route) {
      service_rate rate;
      if (auto it = by_route->find({r.label(), r.service}); it != by_route->end()) rate = it->second;
      put_traffic(j, rate);
    }
    out.push_back(std::move(j));
  }
  return out;
}

json listeners_json(const config_status& c) {
  json out = json::array();
  for (const auto& l : c.listeners) {
    json j = {{"address", l.address}, {"kind", std::string(to_string(l.role))}, {"protocols", l.protocols}};
    if (l.role == listener_status::kind::redirect) {
      j["https_port"] = l.https_port;
      j["plain_paths"] = l.plain_paths;
    }
    out.push_back(std::move(j));
  }
  return out;
}

json acme_json(const acme_status& a) {
  json j = {{"directory", a.directory}, {"names", a.names}, {"last_error", a.last_error}, {"failures", a.failures}};
  j["next_renewal"] = a.next_renewal ? json(format_utc(*a.next_renewal)) : json(nullptr);
  j["last_success"] = a.last_success ? json(format_utc(*a.last_success)) : json(nullptr);
  j["next_attempt"] = a.next_attempt ? json(format_utc(*a.next_attempt)) : json(nullptr);
  j["renewal_window"] = a.window_start && a.window_end
                            ? json({{"start", format_utc(*a.window_start)}, {"end", format_utc(*a.window_end)}})
                            : json(nullptr);
  return j;
}

json time_or_null(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? json(format_utc(*t)) : json(nullptr);
}

/** OCSP stapling of a certificate that names a responder (null when it names none). */
json ocsp_json(const config_status& c, const certificate_status& cert) {
  if (cert.ocsp_url.empty()) return nullptr;
  json j = {{"url", cert.ocsp_url}, {"status", ""}, {"this_update", nullptr}, {"next_update", nullptr},
            {"next_fetch", nullptr}, {"last_error", ""}, {"failures", 0}};
  if (auto it = c.ocsp.find(cert.fingerprint); it != c.ocsp.end()) {
    const ocsp_status& o = it->second;
    j["status"] = o.status;
    j["this_update"] = time_or_null(o.this_update);
    j["next_update"] = time_or_null(o.next_update);
    j["next_fetch"] = time_or_null(o.next_fetch);
    j["last_error"] = o.last_error;
    j["failures"] = o.failures;
  }
  return j;
}

json certificates_json(const config_status& c, std::chrono::system_clock::time_point now) {
  json out = json::array();
  for (const auto& cert : c.certificates) {
    const auto left = std::chrono::duration_cast<std::chrono::hours>(cert.not_after - now).count();
    // By the set of names: a CA may list them in its own order.
    json acme = nullptr;
    auto sorted = [](std::vector<std::string> v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    for (const auto& [key, a] : c.acme)
      if (sorted(a.names) == sorted(cert.names)) acme = acme_json(a);
    out.push_back({{"listener", cert.listener},
                   {"names", cert.names},
                   {"issuer", cert.issuer},
                   {"not_after", format_utc(cert.not_after)},
                   {"days_left", left / 24},
                   {"source", std::string(to_string(cert.source))},
                   {"file", cert.file},
                   {"fingerprint", cert.fingerprint},
                   {"acme", acme},
                   {"ocsp", ocsp_json(c, cert)}});
  }
  return out;
}

}  // namespace

std::string format_utc(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string format_local(std::chrono::system_clock::time_point t, const char* pattern) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, pattern, &tm);
  return buf;
}

std::string log_timestamp(const log_entry& e) {
  if (!e.timestamp.empty()) return e.timestamp;
  return format_local(e.time, "%H:%M:%S");
}

std::string uptime_text(const service_status& s, std::chrono::system_clock::time_point now) {
  if (!s.started_at) return "-";
  return format_uptime(std::chrono::duration_cast<std::chrono::seconds>(now - *s.started_at));
}

std::string render_public_status_json(const status_board& board, std::string_view service) {
  auto snap = board.snapshot();
  const service_status* s = snap->find(service);
  if (!s) return {};
  json j;
  j["service_name"] = s->name;
  j["state"] = std::string(to_string(s->state));
  j["status_message"] = s->status_message;
  json steps = json::array();
  for (const auto& step : s->steps) steps.push_back({{"text", step.text}, {"status", std::string(to_string(step.status))}});
  j["steps"] = steps;
  j["maintenance"] = {{"on", s->maintenance.on}, {"message", s->maintenance.message}, {"expected", s->maintenance.expected}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string render_status_json(const status_board& board, std::string_view selected,
                               std::chrono::system_clock::time_point now, const service_rates* rates,
                               const route_rates* by_route) {
  auto snap = board.snapshot();
  json doc = json::object();
  std::size_t chosen = 0;
  for (std::size_t i = 0; i < snap->services.size(); ++i)
    if (snap->services[i].name == selected) chosen = i;
  if (!snap->services.empty()) {
    const auto& s = snap->services[chosen];
    doc["service_name"] = s.name;
    json fields = service_fields(board, s, now, false, rates);
    for (auto it = fields.begin(); it != fields.end(); ++it) doc[it.key()] = it.value();
  }
  doc["timestamp"] = format_local(now, "%Y-%m-%dT%H:%M:%S");
  json services = json::object();
  for (std::size_t i = 0; i < snap->services.size(); ++i)
    services[snap->services[i].name] = service_fields(board, snap->services[i], now, true, rates);
  doc["services"] = services;
  doc["version"] = snap->version;
  // Which routes.yaml is in force, and why the last reload failed, if it did (the dashboard's banner).
  const auto& c = snap->config;
  json config = {{"path", c.path},
                 {"loaded_at", format_local(c.loaded_at, "%Y-%m-%dT%H:%M:%S")},
                 {"loaded_by", c.loaded_by},
                 {"reloads", c.reloads},
                 {"failures", c.failures},
                 {"errors", c.errors}};
  if (c.failed_at) config["failed_at"] = format_local(*c.failed_at, "%Y-%m-%dT%H:%M:%S");
  doc["config"] = config;
  doc["routes"] = routes_json(*snap, by_route);
  doc["listeners"] = listeners_json(c);
  doc["certificates"] = certificates_json(c, now);
  // Service output may contain anything: invalid UTF-8 is replaced rather than failing the page.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace kinfra::fallback
