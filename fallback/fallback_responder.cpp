#include "fallback/fallback_responder.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

#include "common/history.hpp"

#include "common/admin_proof.hpp"
#include "fallback/access_policy.hpp"
#include "fallback/event_stream.hpp"
#include "fallback/events_api.hpp"
#include "fallback/history_api.hpp"
#include "fallback/logs_api.hpp"
#include "fallback/push_api.hpp"
#include "fallback/responses.hpp"
#include "fallback/pages.hpp"
#include "fallback/status_json.hpp"

namespace kinfra::fallback {
namespace {

using json = nlohmann::json;

std::string why(access a) {
  switch (a) {
    case access::host_refused:
      return "kinfra's admin pages answer only to kinfra's own names: 127.0.0.1, [::1], localhost, or a name listed "
             "in admin_hosts (routes.yaml). Add the name you use to admin_hosts to allow it";
    case access::remote_refused: return "kinfra's admin surface answers only local clients (set allow_remote, admin_token and admin_hosts to open it)";
    case access::token_required: return "this needs the admin token (Authorization: Bearer <token>)";
    case access::token_wrong: return "the admin token is not right";
    case access::cross_site: return "actions are refused from pages of another origin";
    case access::actions_disabled: return "actions are disabled in routes.yaml (actions: false)";
    case access::allowed: return "";
  }
  return "";
}

unsigned status_for(access a) {
  switch (a) {
    case access::host_refused: return 421;
    case access::token_required:
    case access::token_wrong: return 401;
    default: return 403;
  }
}

/** Who asked for an action, for the events and "loaded by": the CLI says who it is; a browser is the dashboard. */
std::string who_asked(const local_request& req) {
  if (req.user_agent.starts_with("kinfra-cli")) return "CLI";
  if (req.user_agent.starts_with("Mozilla/")) return "dashboard";
  return "API";
}

/** The endpoints, by path. */
enum class endpoint { dashboard, service_page, status, logs, action, metrics, history, events, stream, unknown };

/** Whole seconds on the system clock: the status document's resolution. */
std::int64_t this_second() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

fallback_responder::fallback_responder(std::shared_ptr<const config> cfg, status_board* board,
                                       service_control* control)
    : cfg_(std::move(cfg)),
      board_(board),
      control_(control),
      templates_(std::make_shared<template_store>(cfg_ ? cfg_->admin.templates_dir : "")) {}

fallback_responder::fallback_responder() : templates_(std::make_shared<template_store>("")) {}

void fallback_responder::reconfigure(std::shared_ptr<const config> cfg) {
  {
    std::lock_guard lock(mutex_);
    if (!cfg_ || cfg_->admin.templates_dir != cfg->admin.templates_dir)
      templates_ = std::make_shared<template_store>(cfg->admin.templates_dir);
    cfg_ = std::move(cfg);
  }
  status_cache_.clear();
  // Open streams end: their clients open them again, under the new admin settings.
  generation_->fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const template_store> fallback_responder::templates() const {
  std::lock_guard lock(mutex_);
  return templates_;
}

std::shared_ptr<const config> fallback_responder::current() const {
  std::lock_guard lock(mutex_);
  return cfg_;
}

const admin_config& fallback_responder::admin_of(const config* cfg) const {
  // Without a configuration: the defaults (loopback clients and kinfra's own names only).
  static const admin_config defaults;
  return cfg ? cfg->admin : defaults;
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
  if (as_json || req.wants_json) return json_error(status, reason);
  return error_page(status, reason, req);
}

local_response fallback_responder::deny(access a, const local_request& req, bool as_json) const {
  local_response res = refused(status_for(a), why(a), req, as_json);
  if (status_for(a) == 401) {
    res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"kinfra\"");
    // The CLI asks kinfra to show it knows the token before it sends its own (admin_proof.hpp).
    const auto cfg = current();
    if (cfg && !cfg->admin.token.empty() && is_valid_challenge(req.challenge) && !req.local_address.empty())
      res.headers.emplace_back("X-Kinfra-Proof", admin_proof(cfg->admin.token, req.challenge, req.local_address));
  }
  return res;
}

namespace {

endpoint endpoint_of(std::string_view path, const config* cfg) {
  if (path == "/kinfra" || path == "/kinfra/") return endpoint::dashboard;
  if (path == "/__status__" || path == "/__status__/") return endpoint::status;
  if (path.starts_with("/__logs__/")) return endpoint::logs;
  if (path.starts_with("/__action__/")) return endpoint::action;
  if (path == "/__metrics__") return endpoint::metrics;
  if (path == "/__history__" || path == "/__history__/") return endpoint::history;
  if (path == "/__events__" || path == "/__events__/") return endpoint::events;
  if (path == "/__stream__" || path == "/__stream__/") return endpoint::stream;
  if (path.starts_with("/kinfra/service/")) return endpoint::service_page;
  if (cfg && !cfg->admin.metrics_path.empty() && path == cfg->admin.metrics_path) return endpoint::metrics;
  return endpoint::unknown;
}

/** The logs page itself (no format, or html) holds no lines: a shell like the dashboard's. */
bool is_logs_shell(const local_request& req) {
  auto format = query_param(req.query, "format");
  return format.empty() || format == "html";
}

}  // namespace

std::optional<local_response> fallback_responder::handle_quick(const local_request& req) const {
  // Refusals need nothing but the request: each endpoint's own checks come first and answer at
  // once, so they are called here for them.
  const auto cfg = current();
  const endpoint e = endpoint_of(req.path, cfg.get());
  switch (e) {
    case endpoint::unknown: return handle(req);
    case endpoint::status: return status(req, /*quick=*/true);
    case endpoint::action:
      if (req.method != "POST" || check_action(admin_of(cfg.get()), req) != access::allowed) return action(req);
      return std::nullopt;
    default: break;
  }
  if (!is_get(req)) return handle(req);
  const access a = check_read(admin_of(cfg.get()), req);
  const bool shell =
      e == endpoint::dashboard || e == endpoint::service_page || (e == endpoint::logs && is_logs_shell(req));
  if (shell ? !may_see_shell(a) : a != access::allowed) return handle(req);
  if (e == endpoint::logs && shell) return logs(req);  // a small page without lines
  if (e == endpoint::service_page) return service_page(req);  // the same
  return std::nullopt;  // the rest is made off the proxy's workers
}

local_response fallback_responder::handle(const local_request& req) const {
  const auto cfg = current();
  switch (endpoint_of(req.path, cfg.get())) {
    case endpoint::dashboard: return dashboard(req);
    case endpoint::status: return *status(req, /*quick=*/false);
    case endpoint::logs: return logs(req);
    case endpoint::action: return action(req);
    case endpoint::metrics: return metrics(req);
    case endpoint::history: return history(req);
    case endpoint::events: return events(req);
    case endpoint::stream: return stream(req);
    case endpoint::service_page: return service_page(req);
    case endpoint::unknown: break;
  }
  return refused(404, "No such kinfra page.", req, req.path.starts_with("/__"));
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
  if (!may_see_shell(a)) return deny(a, req, false);
  page_context ctx = context(req);
  // Without the token (or remotely) the page comes without data; its script asks for the token.
  ctx.embed_status = a == access::allowed;
  std::optional<service_rates> rates;
  std::shared_ptr<const std::string> document;
  if (ctx.embed_status) {
    if (metrics_) rates = metrics_->rates(std::chrono::steady_clock::now());
    document = status_document("", /*quick=*/false);
  }
  ctx.rates = rates ? &*rates : nullptr;
  ctx.status_json = document.get();
  return html_response(200, render_dashboard(ctx));
}

std::shared_ptr<const std::string> fallback_responder::status_document(std::string_view selected, bool quick) const {
  // The version is read before the board is: a change while rendering makes the next request
  // render again rather than keep a stale document.
  const status_cache::key k{board_->version(), this_second()};
  if (auto cached = status_cache_.find(selected, k)) return cached;
  if (quick) return nullptr;
  std::optional<service_rates> rates;
  std::optional<route_rates> by_route;
  if (metrics_) {
    const auto now = std::chrono::steady_clock::now();
    rates = metrics_->rates(now);
    by_route = metrics_->route_rates(now);
  }
  auto body = std::make_shared<const std::string>(
      render_status_json(*board_, selected, std::chrono::system_clock::now(), rates ? &*rates : nullptr,
                         by_route ? &*by_route : nullptr) +
      "\n");
  status_cache_.store(selected, k, body);
  return body;
}

std::optional<local_response> fallback_responder::status(const local_request& req, bool quick) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  if (!board_) return json_response(200, "{\"services\": {}}\n");
  std::string service = query_param(req.query, "service");
  access a = check_read(admin_of(cfg.get()), req);
  if (a != access::allowed) {
    // The fallback pages visitors see poll their own service's state: that much is public.
    if (!service.empty()) {
      auto pub = render_public_status_json(*board_, service);
      if (pub.empty()) return json_error(404, "unknown service");
      return json_response(200, pub + "\n");
    }
    return deny(a, req, true);
  }
  // Only real names are cached (one document each, at most one per service).
  if (!service.empty() && board_->index_of(service) < 0) service.clear();
  auto document = status_document(service, quick);
  if (!document) return std::nullopt;
  local_response res = json_response(200, {});
  res.shared_body = std::move(document);
  return res;
}

local_response fallback_responder::metrics(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  access a = check_read(admin_of(cfg.get()), req);
  if (a != access::allowed) return deny(a, req, false);
  if (!metrics_) return refused(404, "Metrics are not collected by this kinfra.", req, false);
  auto res = text_response(200, metrics_->render(board_));
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return res;
}

local_response fallback_responder::history(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  access a = check_read(admin_of(cfg.get()), req);
  if (a != access::allowed) return deny(a, req, true);
  if (!history_) return refused(404, "History is not kept by this kinfra.", req, true);
  return render_history_answer(*history_, board_, req.query);
}

local_response fallback_responder::events(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  access a = check_read(admin_of(cfg.get()), req);
  if (a != access::allowed) return deny(a, req, true);
  if (!board_) return refused(404, "Events are not kept by this kinfra.", req, true);
  return render_events_answer(*board_, req.query);
}

local_response fallback_responder::service_page(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  std::string_view name = req.path.substr(std::string_view("/kinfra/service/").size());
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  access a = check_read(admin_of(cfg.get()), req);
  if (!may_see_shell(a)) return deny(a, req, false);
  if (!board_ || name.empty() || name.find('/') != std::string_view::npos || board_->index_of(name) < 0)
    return refused(404, "unknown service", req, false);
  page_context ctx = context(req);
  return html_response(200, render_detail_page(ctx, std::string(name)));
}

local_response fallback_responder::stream(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  // (Before the configuration is read: a reload from now on ends this stream.)
  const std::uint64_t generation = generation_->load(std::memory_order_acquire);
  const auto cfg = current();
  if (!board_) return refused(404, "This kinfra has no status to stream.", req, true);
  // A page of another site has no business with a stream (it could only hold places open): refused.
  if (req.fetch_site == "cross-site") return refused(403, "streams are refused to pages of another site", req, true);
  event_stream::options opts;
  opts.service = query_param(req.query, "service");
  opts.admin = check_read(admin_of(cfg.get()), req) == access::allowed;
  if (!opts.admin && opts.service.empty()) return deny(check_read(admin_of(cfg.get()), req), req, true);
  if (!opts.service.empty() && board_->index_of(opts.service) < 0) return refused(404, "unknown service", req, true);
  opts.logs = opts.admin && !opts.service.empty() && query_param(req.query, "logs") == "1";
  opts.events_after = parse_decimal(query_param(req.query, "events_after"));
  opts.logs_after = parse_decimal(query_param(req.query, "logs_after"));
  local_response res;
  res.content_type = "text/event-stream; charset=utf-8";
  res.headers.emplace_back("Cache-Control", "no-store");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
  res.headers.emplace_back("X-Accel-Buffering", "no");  // (an nginx in front would hold the events back)
  if (req.method == "HEAD") return res;
  // A place is taken before the stream is made (several workers and control threads open them).
  auto& open = opts.admin ? admin_streams_ : public_streams_;
  if (open->fetch_add(1, std::memory_order_acq_rel) >= (opts.admin ? stream_max_admin : stream_max_public)) {
    open->fetch_sub(1, std::memory_order_acq_rel);
    local_response busy = refused(503, "Too many open streams: poll /__status__ instead.", req, true);
    busy.headers.emplace_back("Retry-After", "10");
    return busy;
  }
  event_stream::status_source status;
  if (opts.admin) {
    std::string selected = opts.service;
    status = [this, selected] { return status_document(selected, /*quick=*/false); };
  } else {
    std::string name = opts.service;
    status = [this, name] { return std::make_shared<const std::string>(render_public_status_json(*board_, name)); };
  }
  res.stream = std::make_shared<event_stream>(*board_, std::move(opts), std::move(status), open, generation_, generation);
  return res;
}

local_response fallback_responder::logs(const local_request& req) const {
  if (!is_get(req)) return method_not_allowed("GET, HEAD");
  const auto cfg = current();
  std::string_view name = req.path.substr(std::string_view("/__logs__/").size());
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  const std::string format = query_param(req.query, "format");
  const bool shell = format.empty() || format == "html";
  access a = check_read(admin_of(cfg.get()), req);
  if (shell ? !may_see_shell(a) : a != access::allowed) return deny(a, req, !shell);
  // The name is not repeated back: this may be an HTML page.
  if (!board_ || name.empty() || name.find('/') != std::string_view::npos || board_->index_of(name) < 0)
    return refused(404, "unknown service", req, !shell);
  if (shell) {
    // The page itself holds no log lines: its script fetches them (with the token, when needed).
    page_context ctx = context(req);
    return html_response(200, render_logs_page(ctx, std::string(name)));
  }
  if (format != "json" && format != "text") return refused(400, "format must be html, text or json", req, true);
  return render_logs_answer(*board_, name, format, req.query);
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
  access a = check_action(admin_of(cfg.get()), req);
  if (a != access::allowed) return deny(a, req, true);
  if (!cfg || !board_) return json_error(503, "actions are not available");
  if (verb == "reload" && name.empty()) {
    if (!reload_) return json_error(503, "reload is not available");
    // (Never waits behind another reload: that one may be stuck on a slow DNS name, and this runs
    // on the small control executor.)
    // (Who asked, for the dashboard's "loaded by": the CLI says who it is.)
    reload_result r = reload_->reload(who_asked(req), /*wait=*/false);
    json body = {{"success", r.applied || r.unchanged}, {"action", "reload"}, {"applied", r.applied}};
    if (!r.errors.empty()) body["errors"] = r.errors;
    if (r.busy) body["error"] = r.errors.front();
    return json_response(r.busy ? 409 : r.errors.empty() ? 200 : 422, dump(body));
  }
  if (verb != "restart" && verb != "stop" && verb != "start" && verb != "maintenance" && verb != "status")
    return json_error(404, "unknown action");
  if (name.empty() || name.find('/') != std::string_view::npos || board_->index_of(name) < 0)
    return json_error(404, "unknown service");
  return service_action(req, verb, name);
}

local_response fallback_responder::service_action(const local_request& req, std::string_view verb,
                                                  std::string_view name) const {
  auto ok = [&](json extra = json::object()) {
    json body = {{"success", true}, {"service", name}, {"action", verb}};
    body.update(extra);
    return json_response(200, dump(body));
  };
  if (verb == "status") {
    auto push = parse_status_push(req.body);
    if (push.status) return json_error(push.status, push.error);
    board_->update_service_status(name, push.value);
    return ok();
  }
  if (verb == "maintenance") {
    auto push = parse_maintenance_push(req.body, req.query);
    if (push.status) return json_error(push.status, push.error);
    const bool on = push.value.on;
    board_->set_maintenance(name, std::move(push.value));
    return ok({{"on", on}});
  }
  if (!control_) return json_error(403, "actions are not available");
  const std::string by = who_asked(req);
  // Recorded before the supervisor acts (it may restart a stopped service at once): the request
  // comes before what it caused. (The same checks as the supervisor's: no event for a refusal.)
  const auto cfg = current();
  const service_config* svc = cfg ? cfg->find_service(std::string(name)) : nullptr;
  if (svc && svc->managed()) {
    event e;
    e.service = std::string(name);
    e.kind = event_kind::action;
    e.by = by;
    e.message = std::string(verb) + " requested (" + by + ")";
    board_->events().record(std::move(e));
  }
  control_result r = verb == "restart" ? control_->restart(name, by)
                     : verb == "stop"  ? control_->stop(name)
                                       : control_->start(name);
  switch (r) {
    case control_result::accepted: return ok();
    case control_result::unknown_service: return json_error(404, "unknown service");
    case control_result::not_managed: return json_error(409, "kinfra only watches this service; it does not run it");
  }
  return json_error(500, "unexpected");
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
  res.service_fault = !(s->maintenance.on || s->state == service_state::stopped);
  return res;
}

}  // namespace kinfra::fallback
