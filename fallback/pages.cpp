#include "fallback/pages.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>

#include "common/units.hpp"
#include "common/version.hpp"
#include "fallback/status_json.hpp"

namespace kinfra::fallback {
namespace {

using json = nlohmann::ordered_json;

const char* indicator(service_state s) {
  switch (s) {
    case service_state::running: return "🟢";
    case service_state::starting:
    case service_state::stopping: return "🟡";
    case service_state::unhealthy:
    case service_state::error: return "🔴";
    case service_state::stopped: return "⚪";
  }
  return "⚪";
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string render_log_lines(const std::vector<log_entry>& logs) {
  std::string out;
  for (const auto& l : logs) {
    out += "<div class=\"log-line level-" + std::string(to_string(l.level)) + "\"><span class=\"ts\">" +
           html_escape(log_timestamp(l)) + " </span><span class=\"lvl\">" + upper(to_string(l.level)) +
           "</span><span class=\"msg\"> " + html_escape(l.message) + "</span></div>";
  }
  if (out.empty()) out = "<div class=\"empty\">No log lines yet.</div>";
  return out;
}

std::string render_steps(const std::vector<step_entry>& steps) {
  std::string out;
  for (const auto& st : steps)
    out += "<li class=\"" + std::string(to_string(st.status)) + "\">" + html_escape(st.text) + "</li>";
  return out;
}

/** One fact of a card (a class: the dashboard has one card per service) or of a fallback page
 *  (`with_id`: page.js updates it by id; a page shows one service). */
std::string fact(const char* label, const char* cls, const std::string& value, bool with_id = false) {
  return std::string("<div><dt>") + label + "</dt><dd class=\"" + cls + "\"" +
         (with_id ? std::string(" id=\"") + cls + "\"" : std::string()) + ">" + html_escape(value) + "</dd></div>";
}

template_vars common_vars(const page_context& ctx) {
  template_vars v;
  if (ctx.cfg)
    for (const auto& [k, val] : ctx.cfg->admin.variables) v[k] = val;
  v["style"] = ctx.templates->get("kinfra.css");
  v["version"] = kinfra::version;
  v["host"] = ctx.host;
  v["title"] = v.count("title") ? v["title"] : "KInfra Dashboard";
  return v;
}

}  // namespace

page_kind choose_page(const service_status& s, const fallback_config& f) {
  switch (f.kind) {
    case fallback_config::page::loading: return page_kind::loading;
    case fallback_config::page::error: return page_kind::error;
    case fallback_config::page::maintenance: return page_kind::maintenance;
    case fallback_config::page::automatic: break;
  }
  if (s.maintenance.on) return page_kind::maintenance;
  switch (s.state) {
    case service_state::error:
    case service_state::unhealthy: return page_kind::error;
    default: return page_kind::loading;  // starting, stopping, stopped: it is (or will be) on its way
  }
}

std::string format_request_rate(const std::optional<double>& per_second) {
  if (!per_second) return "–";
  char buf[32];
  if (*per_second < 10) std::snprintf(buf, sizeof buf, "%.1f req/s", *per_second);
  else std::snprintf(buf, sizeof buf, "%.0f req/s", *per_second);
  return buf;
}

std::string format_error_rate(const std::optional<double>& rate) {
  if (!rate) return "–";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", *rate * 100);
  return buf;
}

/** The card's three sparklines (drawn by the dashboard's script from /__history__). */
const std::string sparks_html =
    "<div class=\"sparks\"><figure><figcaption>req/s</figcaption><svg class=\"spark spark-rps\"></svg></figure>"
    "<figure><figcaption>p99 ms</figcaption><svg class=\"spark spark-p99\"></svg></figure>"
    "<figure><figcaption>5xx/s</figcaption><svg class=\"spark spark-errors\"></svg></figure></div>";

std::string render_card(const service_status& s, const std::vector<log_entry>& logs, bool actions,
                        std::chrono::system_clock::time_point now, const service_rate* rate) {
  const std::string state(to_string(s.state));
  const bool failing = rate && rate->error_rate && *rate->error_rate > 0.05;
  std::string card = "<article class=\"card state-" + state + (failing ? " failing" : "") + "\" data-service=\"" +
                     html_escape(s.name) + "\">";
  card += "<div class=\"card-head\"><span class=\"indicator\">" + std::string(indicator(s.state)) +
          "</span><h2 class=\"name\"><a href=\"/kinfra/service/" + html_escape(s.name) + "\">" + html_escape(s.name) +
          "</a></h2><span class=\"badge\">" + state + "</span></div>";
  card += "<p class=\"message\">" + html_escape(s.status_message) + "</p>";
  card += "<p class=\"detail\"" + std::string(s.health_detail.empty() ? " hidden" : "") + ">" +
          html_escape(s.health_detail) + "</p>";
  card += "<dl class=\"facts\">";
  card += fact("Port", "port", s.port ? std::to_string(*s.port) : "-");
  card += fact("PID", "pid", s.pid ? std::to_string(*s.pid) : "- (stopped)");
  card += fact("Uptime", "uptime", uptime_text(s, now));
  card += fact("Health", "health", s.health);
  card += fact("Restarts", "restarts", std::to_string(s.restarts));
  card += fact("Requests", "traffic", format_request_rate(rate ? rate->requests_per_second : std::nullopt));
  card += fact("Errors", "errors", format_error_rate(rate ? rate->error_rate : std::nullopt));
  card += "</dl>";
  card += sparks_html;
  card += "<ol class=\"steps\"" + std::string(s.steps.empty() ? " hidden" : "") + ">" + render_steps(s.steps) + "</ol>";
  card += "<div class=\"logs\">" + render_log_lines(logs) + "</div>";
  card += "<div class=\"actions\">";
  const std::string logs_href = "/__logs__/" + html_escape(s.name);
  if (actions && s.managed) {
    bool down = s.state == service_state::stopped || s.state == service_state::error;
    card += "<button type=\"button\" class=\"restart\">🔄 Restart</button>";
    card += "<a class=\"button view-logs\" href=\"" + logs_href + "\" target=\"_blank\" rel=\"noopener\">📄 View Logs</a>";
    card += std::string("<button type=\"button\" class=\"stop\" data-action=\"") + (down ? "start" : "stop") + "\">" +
            (down ? "▶ Start" : "⏹ Stop") + "</button>";
  } else {
    card += "<button type=\"button\" class=\"restart\" disabled>Not available</button>";
    card += "<a class=\"button view-logs\" href=\"" + logs_href + "\" target=\"_blank\" rel=\"noopener\">📄 View Logs</a>";
    card += "<button type=\"button\" class=\"stop\" disabled>Not available</button>";
  }
  card += "<a class=\"button details\" href=\"/kinfra/service/" + html_escape(s.name) + "\">📈 Details</a>";
  card += "</div></article>";
  return card;
}

std::string render_dashboard(const page_context& ctx) {
  template_vars v = common_vars(ctx);
  auto snap = ctx.board->snapshot();
  const bool actions = ctx.cfg->admin.actions;
  std::size_t running = 0, starting = 0, errors = 0;
  std::string cards;
  for (std::size_t i = 0; i < snap->services.size(); ++i) {
    const auto& s = snap->services[i];
    if (s.state == service_state::running) ++running;
    else if (s.state == service_state::starting || s.state == service_state::stopping) ++starting;
    else if (s.state == service_state::error || s.state == service_state::unhealthy) ++errors;
    const service_rate* rate = nullptr;
    if (ctx.rates)
      if (auto it = ctx.rates->find(s.name); it != ctx.rates->end()) rate = &it->second;
    if (ctx.embed_status) cards += render_card(s, ctx.board->logs(s.name, status_log_lines), actions, ctx.now, rate);
  }
  auto stat = [](const char* cls, const char* label, std::size_t n) {
    return std::string("<div class=\"stat ") + cls + "\"><div class=\"value\">" + std::to_string(n) +
           "</div><div class=\"label\">" + label + "</div></div>";
  };
  std::size_t total = ctx.embed_status ? snap->services.size() : 0;
  if (!ctx.embed_status) running = starting = errors = 0;
  v["stats"] = stat("total", "Total", total) + stat("running", "Running", running) +
               stat("starting", "Starting", starting) + stat("errors", "Errors", errors);
  v["cards"] = cards;
  // routes.yaml: when it was loaded and by what; the errors of a failed reload, as a banner.
  // (A shell without data says nothing of the configuration either: its errors may name files,
  // URLs and values. The script fills both in from /__status__ once it has the token.)
  const auto& config = snap->config;
  const bool show_config = ctx.embed_status;
  v["config_loaded"] = show_config ? format_local(config.loaded_at, "%Y-%m-%d %H:%M:%S") + " (" + config.loaded_by + ")" : "";
  v["banner_hidden"] = !show_config || config.errors.empty() ? "hidden" : "";
  std::string banner;
  if (show_config && !config.errors.empty()) {
    banner = "<strong>routes.yaml has errors; the previous configuration is still in use:</strong>";
    for (const auto& e : config.errors) banner += "<div class=\"mono\">" + html_escape(e) + "</div>";
  }
  v["banner"] = banner;
  v["actions"] = actions ? "true" : "false";
  v["token_required"] = ctx.cfg->admin.token.empty() ? "false" : "true";
  v["timestamp"] = "";
  if (!ctx.embed_status) v["initial_json"] = "null";
  else if (ctx.status_json) v["initial_json"] = script_safe_json(*ctx.status_json);
  else v["initial_json"] = script_safe_json(render_status_json(*ctx.board, "", ctx.now, ctx.rates));
  v["dashboard_js"] = ctx.templates->get("dashboard.js");
  v["live_js"] = ctx.templates->get("live.js");
  v["charts_js"] = ctx.templates->get("charts.js");
  v["timeline_js"] = ctx.templates->get("timeline.js");
  return render_template(ctx.templates->get("dashboard.html"), v);
}

std::string render_logs_page(const page_context& ctx, const std::string& service) {
  template_vars v = common_vars(ctx);
  v["service"] = service;
  v["logs_js"] = ctx.templates->get("logs.js");
  v["live_js"] = ctx.templates->get("live.js");
  return render_template(ctx.templates->get("logs.html"), v);
}

std::string render_detail_page(const page_context& ctx, const std::string& service) {
  template_vars v = common_vars(ctx);
  v["service"] = service;
  v["live_js"] = ctx.templates->get("live.js");
  v["charts_js"] = ctx.templates->get("charts.js");
  v["timeline_js"] = ctx.templates->get("timeline.js");
  v["service_js"] = ctx.templates->get("service.js");
  return render_template(ctx.templates->get("service.html"), v);
}

std::string render_service_page(const page_context& ctx, const service_status& s, const service_config& svc,
                                page_kind kind) {
  template_vars v = common_vars(ctx);
  v["service"] = s.name;
  v["state"] = std::string(to_string(s.state));
  v["status_message"] = s.status_message;
  v["refresh"] = std::to_string(std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(svc.fallback.refresh).count()));
  v["custom_message"] = svc.fallback.message.empty() ? "" : "<p class=\"custom\">" + html_escape(svc.fallback.message) + "</p>";
  v["steps"] = render_steps(s.steps);
  v["steps_hidden"] = s.steps.empty() ? "hidden" : "";
  v["maintenance_message"] = s.maintenance.message.empty() ? "We are working on it and will be back shortly."
                                                           : s.maintenance.message;
  v["expected"] = s.maintenance.expected.empty() ? "" : "Expected duration: " + s.maintenance.expected;
  if (ctx.details) {
    v["details"] = "<dl class=\"facts\">" + fact("Port", "port", s.port ? std::to_string(*s.port) : "-", true) +
                   fact("PID", "pid", s.pid ? std::to_string(*s.pid) : "-", true) +
                   fact("Uptime", "uptime", uptime_text(s, ctx.now), true) +
                   fact("Health", "health", s.health, true) + "</dl>";
    if (kind == page_kind::error) v["logs"] = "<div class=\"logs\">" + render_log_lines(ctx.board->logs(s.name, 10)) + "</div>";
  }
  // A stopped service will not come back by itself: no spinner, no countdown, no promise.
  const bool stopped = s.state == service_state::stopped;
  v["stopped"] = stopped ? "true" : "false";
  v["spinner_hidden"] = stopped ? "hidden" : "";
  v["countdown_hidden"] = stopped ? "hidden" : "";
  v["state_hidden"] = stopped ? "hidden" : "";  // the headline already says it
  v["kicker"] = stopped ? "Not running" : s.state == service_state::stopping ? "Stopping" : "Starting";
  v["headline"] = stopped ? "is stopped" : "is on its way";
  // "Stopped" is what the supervisor says after a stop someone asked for (dashboard, CLI, API).
  if (stopped)
    v["status_message"] = s.status_message == "Stopped" ? "It was stopped by an operator and will not start by itself."
                                                        : "It is not running and will not start by itself.";
  v["promise"] = stopped ? "This page goes back to what you asked for once someone starts it again."
                         : "This page goes back to what you asked for as soon as the service is ready.";
  v["page_js"] = ctx.templates->get("page.js");
  v["live_js"] = ctx.templates->get("live.js");
  const char* file = kind == page_kind::loading ? "loading.html" : kind == page_kind::error ? "error.html" : "maintenance.html";
  return render_template(ctx.templates->get(file), v);
}

std::string render_service_json(const page_context& ctx, const service_status& s, const service_config& svc,
                                page_kind kind) {
  json j;
  j["error"] = "Service Unavailable";
  j["service"] = s.name;
  j["state"] = std::string(to_string(s.state));
  j["status_message"] = s.status_message;
  j["page"] = kind == page_kind::loading ? "loading" : kind == page_kind::error ? "error" : "maintenance";
  if (!svc.fallback.message.empty()) j["message"] = svc.fallback.message;
  json steps = json::array();
  for (const auto& st : s.steps) steps.push_back({{"text", st.text}, {"status", std::string(to_string(st.status))}});
  j["steps"] = steps;
  if (s.maintenance.on) {
    j["maintenance"] = {{"message", s.maintenance.message}, {"expected", s.maintenance.expected}};
  }
  j["retry_after"] = std::chrono::duration_cast<std::chrono::seconds>(svc.fallback.refresh).count();
  if (ctx.details) {
    j["pid"] = s.pid ? std::to_string(*s.pid) : "-";
    j["uptime"] = uptime_text(s, ctx.now);
    j["health_status"] = s.health;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace kinfra::fallback
