#include "fallback/fallback_responder.hpp"

#include <nlohmann/json.hpp>

#include "fallback/access_policy.hpp"
#include "fallback/pages.hpp"
#include "fallback/status_json.hpp"

namespace kinfra::fallback {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

local_response json_response(unsigned status, std::string body) {
  local_response res;
  res.status = status;
  res.content_type = "application/json";
  res.body = std::move(body);
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

local_response html_response(unsigned status, std::string body) {
  local_response res;
  res.status = status;
  res.content_type = "text/html; charset=utf-8";
  res.body = std::move(body);
  res.headers.emplace_back("Cache-Control", "no-store");
  // kinfra's pages load nothing from elsewhere and are never framed by another site.
  res.headers.emplace_back("X-Frame-Options", "DENY");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  return res;
}

local_response method_not_allowed(const char* allow) {
  auto res = json_response(405, dump({{"success", false}, {"error", std::string("use ") + allow}}));
  res.headers.emplace_back("Allow", allow);
  return res;
}

bool is_get(const local_request& req) { return req.method == "GET" || req.method == "HEAD"; }

std::string why(access a) {
  switch (a) {
    case access::remote_refused: return "kinfra's admin surface answers only local clients (set allow_remote and admin_token to open it)";
    case access::token_required: return "this needs the admin token (Authorization: Bearer <token>)";
    case access::token_wrong: return "the admin token is not right";
    case access::cross_site: return "actions are refused from pages of another origin";
    case access::actions_disabled: return "actions are disabled in routes.yaml (actions: false)";
    case access::allowed: return "";
  }
  return "";
}

unsigned status_for(access a) {
  return a == access::token_required || a == access::token_wrong ? 401 : 403;
}

/** May this client read the status and metrics? Without a configuration: loopback clients only. */
access read_access(const config* cfg, const local_request& req) {
  if (cfg) return check_read(cfg->admin, req);
  return req.client_is_loopback ? access::allowed : access::remote_refused;
}

}  // namespace

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    std::string_view raw = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') out += ' ';
      else if (raw[i] == '%' && i + 2 < raw.size() && std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
        out += static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else out += raw[i];
    }
    return out;
  }
  return {};
}

fallback_responder::fallback_responder(std::shared_ptr<const config> cfg, status_board* board,
                                       service_control* control)
    : cfg_(std::move(cfg)),
      board_(board),
      control_(control),
      templates_(std::make_shared<template_store>(cfg_ ? cfg_->admin.templates_dir : "")) {}

fallback_responder::fallback_responder() : templates_(std::make_shared<template_store>("")) {}

void fallback_responder::reconfigure(std::shared_ptr<const config> cfg) {
  std::lock_guard lock(mutex_);
  if (!cfg_ || cfg_->admin.templates_dir != cfg->admin.templates_dir)
    templates_ = std::make_shared<template_store>(cfg->admin.templates_dir);
  cfg_ = std::move(cfg);
}

std::shared_ptr<const template_store> fallback_responder::templates() const {
  std::lock_guard lock(mutex_);
  return templates_;
}

std::shared_ptr<const config> fallback_responder::current() const {
  std::lock_guard lock(mutex_);
  return cfg_;
}

local_response fallback_responder::error_page(unsigned status, std::string_view detail, const local_request& req) const {
  const std::string reason(reason_phrase(status));
  if (req.wants_json) {
    json body = {{"error", reason}, {"status", status}, {"detail", detail}};
    if (!req.service.empty()) body["service"] = req.service;
    return json_response(status, dump(body));
  }
  const std::string title = std::to_string(status) + " " + reason;
  std::string body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>" +
                     html_escape(title) + "</title><style>" + templates()->get("kinfra.css") +
                     "</style></head><body><div class=\"page\"><section class=\"panel error\"><div class=\"kicker\">" +
                     html_escape(title) + "</div><h1>" + html_escape(reason) + "</h1><p class=\"message\">" +
                     html_escape(detail) + "</p>";
  if (!req.service.empty()) body += "<p class=\"detail\">Service: <code>" + html_escape(req.service) + "</code></p>";
  body += "<p class=\"detail\">kinfra</p></section></div></body></html>\n";
  return html_response(status, std::move(body));
}

local_response fallback_responder::refused(unsigned status, const std::string& reason, const local_request& req,
                                           bool as_json) const {
  if (as_json || req.wants_json) return json_response(status, dump({{"success", false}, {"error", reason}}));
  return error_page(status, reason, req);
}

std::optional<local_response> fallback_responder::handle(const local_request& req) const {
  const std::string_view path = req.path;
  if (path == "/kinfra" || path == "/kinfra/") return dashboard(req);
  if (path == "/__status__" || path == "/__status__/") return status(req);
  if (path.starts_with("/__logs__/")) return logs(req);
  if (path.starts_with("/__action__/")) return action(req);
  if (path == "/__metrics__") return metrics(req);
  if (const auto cfg = current(); cfg && !cfg->admin.metrics_path.empty() && path == cfg->admin.metrics_path)
    return metrics(req);
  return refused(404, "No such kinfra page.", req, path.starts_with("/__"));
}

page_context fallback_responder::context(const local_request& req) const {
  page_context ctx;
  {
    std::lock_guard lock(mutex_);
    ctx.cfg = cfg_;
    ctx.template_hold = templates_;
  }
  ctx.board = board_;
  ctx.templates = ctx.template_hold.get();
  ctx.host = std::string(req.host_header);
  return ctx;
}

local_response fallback_responder::dashboard(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  if (!board_ || !cfg) return error_page(503, "The dashboard has no services to show.", req);
  access a = check_read(cfg->admin, req);
  if (a == access::remote_refused) return refused(403, why(a), req, false);
  page_context ctx = context(req);
  // A remote client gets the page without data; its script asks for the token and fetches it.
  ctx.embed_status = a == access::allowed;
  std::optional<service_rates> rates;
  if (metrics_ && ctx.embed_status) rates = metrics_->rates(std::chrono::steady_clock::now());
  ctx.rates = rates ? &*rates : nullptr;
  return html_response(200, render_dashboard(ctx));
}

local_response fallback_responder::status(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  if (!board_) return json_response(200, "{\"services\": {}}\n");
  std::string service = query_param(req.query, "service");
  access a = read_access(cfg.get(), req);
  if (a != access::allowed) {
    // The fallback pages visitors see poll their own service's state: that much is public.
    if (!service.empty()) {
      auto pub = render_public_status_json(*board_, service);
      if (pub.empty()) return json_response(404, dump({{"success", false}, {"error", "unknown service"}}));
      return json_response(200, pub + "\n");
    }
    return refused(status_for(a), why(a), req, true);
  }
  std::optional<service_rates> rates;
  if (metrics_) rates = metrics_->rates(std::chrono::steady_clock::now());
  return json_response(200, render_status_json(*board_, service, std::chrono::system_clock::now(),
                                               rates ? &*rates : nullptr) + "\n");
}

local_response fallback_responder::metrics(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  access a = read_access(cfg.get(), req);
  if (a != access::allowed) return refused(status_for(a), why(a), req, false);
  if (!metrics_) return refused(404, "Metrics are not collected by this kinfra.", req, false);
  local_response res;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = metrics_->render(board_);
  return res;
}

local_response fallback_responder::logs(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  std::string_view name = req.path.substr(std::string_view("/__logs__/").size());
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  std::string format = query_param(req.query, "format");
  const bool json_format = format == "json";
  int index = board_ ? board_->index_of(name) : -1;
  if (index < 0 || name.find('/') != std::string_view::npos)
    return refused(404, "No service is called \"" + std::string(name) + "\".", req, json_format);
  access a = cfg ? check_read(cfg->admin, req) : access::allowed;
  if (a == access::remote_refused) return refused(403, why(a), req, json_format);
  if (format.empty() || format == "html") {
    // The page itself holds no log lines: its script fetches them (with the token, remotely).
    page_context ctx = context(req);
      return html_response(200, render_logs_page(ctx, std::string(name)));
  }
  if (a != access::allowed) return refused(status_for(a), why(a), req, json_format);
  std::uint64_t after = 0;
  if (auto v = query_param(req.query, "after"); !v.empty()) after = std::strtoull(v.c_str(), nullptr, 10);
  auto lines = board_->logs(name, SIZE_MAX, after);
  if (json_format) {
    nlohmann::ordered_json body;
    body["service"] = std::string(name);
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& e : lines)
      arr.push_back({{"seq", e.seq}, {"timestamp", log_timestamp(e)}, {"level", std::string(to_string(e.level))},
                     {"message", e.message}});
    body["lines"] = arr;
    return json_response(200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (format != "text") return refused(400, "format must be html, text or json", req, false);
  local_response res;
  res.status = 200;
  res.content_type = "text/plain; charset=utf-8";
  res.headers.emplace_back("Cache-Control", "no-store");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  for (const auto& e : lines) {
    std::string level(to_string(e.level));
    for (auto& c : level) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    res.body += log_timestamp(e) + " " + level + " " + e.message + "\n";
  }
  return res;
}

local_response fallback_responder::action(const local_request& req) const {
  const auto cfg = current();
  // /__action__/<action>/<service>
  std::string_view rest = req.path.substr(std::string_view("/__action__/").size());
  auto slash = rest.find('/');
  std::string_view verb = rest.substr(0, slash);
  std::string_view name = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  if (req.method != "POST") return method_not_allowed("POST");
  if (!cfg || !board_) return json_response(503, dump({{"success", false}, {"error", "actions are not available"}}));
  access a = check_action(cfg->admin, req);
  if (a != access::allowed) return json_response(status_for(a), dump({{"success", false}, {"error", why(a)}}));
  if (verb == "reload" && name.empty()) {
    if (!reload_) return json_response(503, dump({{"success", false}, {"error", "reload is not available"}}));
    reload_result r = reload_->reload("dashboard");
    json body = {{"success", r.applied || r.unchanged}, {"action", "reload"}, {"applied", r.applied}};
    if (!r.errors.empty()) body["errors"] = r.errors;
    return json_response(r.errors.empty() ? 200 : 422, dump(body));
  }
  if (verb != "restart" && verb != "stop" && verb != "start" && verb != "maintenance" && verb != "status")
    return json_response(404, dump({{"success", false}, {"error", "unknown action \"" + std::string(verb) + "\""}}));
  if (name.empty() || name.find('/') != std::string_view::npos || board_->index_of(name) < 0)
    return json_response(404, dump({{"success", false}, {"error", "unknown service"}, {"service", name}}));

  if (verb == "status") return push_status(req, name);
  if (verb == "maintenance") {
    // {"on": true, "message": "...", "expected": "30m"}, or the same as query parameters.
    maintenance_info info;
    info.on = true;
    json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return json_response(400, dump({{"success", false}, {"error", "the body must be a JSON object"}}));
    auto text = [&](const char* key) -> std::string {
      if (body.contains(key) && body[key].is_string()) return body[key].get<std::string>();
      return query_param(req.query, key);
    };
    if (body.contains("on") && body["on"].is_boolean()) info.on = body["on"].get<bool>();
    else if (auto q = query_param(req.query, "on"); !q.empty()) info.on = q == "1" || q == "true" || q == "on";
    info.message = text("message");
    info.expected = text("expected");
    if (info.expected.empty()) info.expected = text("duration");
    board_->set_maintenance(name, info);
    return json_response(200, dump({{"success", true}, {"service", name}, {"action", "maintenance"}, {"on", info.on}}));
  }

  if (!control_) return json_response(403, dump({{"success", false}, {"error", "actions are not available"}}));
  control_result r = verb == "restart" ? control_->restart(name) : verb == "stop" ? control_->stop(name) : control_->start(name);
  switch (r) {
    case control_result::accepted:
      return json_response(200, dump({{"success", true}, {"service", name}, {"action", verb}}));
    case control_result::unknown_service:
      return json_response(404, dump({{"success", false}, {"error", "unknown service"}, {"service", name}}));
    case control_result::not_managed:
      return json_response(409, dump({{"success", false}, {"service", name},
                                      {"error", "kinfra only watches this service; it does not run it"}}));
  }
  return json_response(500, dump({{"success", false}, {"error", "unexpected"}}));
}

local_response fallback_responder::push_status(const local_request& req, std::string_view name) const {
  // The spec's update_service_status over HTTP, for services in any language:
  // {"status_message": "...", "state": "starting", "steps": [{"text", "status"}],
  //  "logs": [{"timestamp", "level", "message"}]}
  json body = json::parse(req.body, nullptr, false);
  auto bad = [](const std::string& why) { return json_response(400, dump({{"success", false}, {"error", why}})); };
  if (body.is_discarded() || !body.is_object()) return bad("the body must be a JSON object");
  service_update u;
  if (body.contains("status_message")) {
    if (!body["status_message"].is_string()) return bad("status_message must be a string");
    u.status_message = body["status_message"].get<std::string>();
  }
  if (body.contains("state")) {
    auto st = body["state"].is_string() ? parse_service_state(body["state"].get<std::string>()) : std::nullopt;
    if (!st) return bad("state must be one of stopped, starting, running, unhealthy, stopping, error");
    u.state = *st;
  }
  if (body.contains("steps")) {
    if (!body["steps"].is_array()) return bad("steps must be a list of {text, status}");
    std::vector<step_entry> steps;
    for (const auto& st : body["steps"]) {
      if (!st.is_object() || !st.contains("text") || !st["text"].is_string()) return bad("each step needs a text");
      step_entry p{st["text"].get<std::string>(), step_status::pending};
      if (st.contains("status")) {
        auto parsed = st["status"].is_string() ? parse_step_status(st["status"].get<std::string>()) : std::nullopt;
        if (!parsed) return bad("a step's status is completed, active or pending");
        p.status = *parsed;
      }
      steps.push_back(std::move(p));
    }
    u.steps = std::move(steps);
  }
  if (body.contains("logs")) {
    if (!body["logs"].is_array()) return bad("logs must be a list of {timestamp, level, message}");
    for (const auto& l : body["logs"]) {
      if (!l.is_object() || !l.contains("message") || !l["message"].is_string()) return bad("each log line needs a message");
      log_entry e;
      e.time = std::chrono::system_clock::now();
      e.message = l["message"].get<std::string>();
      if (l.contains("timestamp") && l["timestamp"].is_string()) e.timestamp = l["timestamp"].get<std::string>();
      if (l.contains("level") && l["level"].is_string())
        e.level = parse_log_level(l["level"].get<std::string>()).value_or(log_level::info);
      u.logs.push_back(std::move(e));
    }
  }
  board_->update_service_status(name, u);
  return json_response(200, dump({{"success", true}, {"service", name}, {"action", "status"}}));
}

local_response fallback_responder::unavailable_page(const local_request& req, bool json_route) const {
  const auto cfg = current();
  const service_config* svc = cfg ? cfg->find_service(std::string(req.service)) : nullptr;
  auto snap = board_ ? board_->snapshot() : nullptr;
  const service_status* s = snap ? snap->find(req.service) : nullptr;
  if (!svc || !s) return error_page(503, "The service is not available right now.", req);
  page_kind kind = choose_page(*s, svc->fallback);
  page_context ctx = context(req);
  ctx.details = cfg->admin.public_details || check_read(cfg->admin, req) == access::allowed;
  auto retry = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(svc->fallback.refresh).count());
  local_response res = json_route || req.wants_json ? json_response(503, render_service_json(ctx, *s, *svc, kind))
                                                     : html_response(503, render_service_page(ctx, *s, *svc, kind));
  res.headers.emplace_back("Retry-After", retry);
  return res;
}

}  // namespace kinfra::fallback
