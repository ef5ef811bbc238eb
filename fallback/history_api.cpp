#include "fallback/history_api.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "fallback/responses.hpp"

namespace kinfra::fallback {
namespace {

using json = nlohmann::json;

/** ms to the microsecond, or null. */
json ms(const std::optional<double>& v) { return v ? json(std::round(*v * 1000) / 1000) : json(nullptr); }
/** A rate to 1/1000. */
double rate(double v) { return std::round(v * 1000) / 1000; }

json point_json(const history_point& p, bool service, bool whole) {
  json j = {{"t", p.at},
            {"seconds", p.seconds},
            {"requests", p.requests},
            {"errors", p.errors},
            {"requests_per_s", p.requests_per_s},
            {"errors_per_s", p.errors_per_s},
            {"p50_ms", ms(p.p50_ms)},
            {"p95_ms", ms(p.p95_ms)},
            {"p99_ms", ms(p.p99_ms)},
            {"restarts", p.restarts}};
  if (service || whole) j["connections"] = p.connections;  // (a route has none of its own)
  if (service) j["state"] = to_string(static_cast<service_state>(p.state));
  return j;
}

json columns(const std::vector<history_point>& points) {
  json t = json::array(), rps = json::array(), eps = json::array(), p99 = json::array();
  for (const auto& p : points) {
    t.push_back(p.at);
    rps.push_back(rate(p.requests_per_s));
    eps.push_back(rate(p.errors_per_s));
    p99.push_back(ms(p.p99_ms));
  }
  return {{"t", std::move(t)}, {"requests_per_s", std::move(rps)}, {"errors_per_s", std::move(eps)}, {"p99_ms", std::move(p99)}};
}

}  // namespace

std::vector<history_point> merge_points(const std::vector<history_point>& points, std::int64_t step) {
  if (step <= 1) return points;
  std::vector<history_point> out;
  for (const auto& p : points) {
    const std::int64_t at = p.at - ((p.at % step) + step) % step;
    if (out.empty() || out.back().at != at) {
      history_point m;
      m.at = at;
      m.seconds = 0;
      out.push_back(m);
    }
    auto& m = out.back();
    m.seconds += p.seconds;
    m.requests += p.requests;
    m.errors += p.errors;
    m.restarts += p.restarts;
    m.connections = p.connections;
    m.state = p.state;
    auto higher = [](std::optional<double>& a, const std::optional<double>& b) {
      if (b && (!a || *b > *a)) a = b;
    };
    higher(m.p50_ms, p.p50_ms);
    higher(m.p95_ms, p.p95_ms);
    higher(m.p99_ms, p.p99_ms);
    m.requests_per_s = m.seconds ? static_cast<double>(m.requests) / m.seconds : 0;
    m.errors_per_s = m.seconds ? static_cast<double>(m.errors) / m.seconds : 0;
  }
  return out;
}

local_response render_history_answer(const history_registry& history, const status_board* board,
                                     std::string_view query) {
  const std::string range = query_param(query, "range");
  history::span span = history::span::minutes_15;
  if (range == "1h") span = history::span::hour_1;
  else if (range == "24h") span = history::span::hours_24;
  else if (!range.empty() && range != "15m") return json_error(400, "range must be 15m, 1h or 24h");
  const std::int64_t base = span == history::span::minutes_15 ? 1 : 60;
  std::int64_t step = base;
  if (const std::string s = query_param(query, "step"); !s.empty()) {
    if (s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return json_error(400, "step is a number of seconds");
    step = std::stoll(s);
    if (step < base || step % base != 0 || step > 3600)
      return json_error(400, "step must be a multiple of " + std::to_string(base) + " seconds, at most 3600");
  }
  const bool all = query_param(query, "all") == "1";
  // Every series at once: at most about 300 points each (the answer stays small with many services).
  if (all) step = std::max<std::int64_t>(step, span == history::span::minutes_15 ? 3 : span == history::span::hour_1 ? 60 : 300);
  json out = {{"range", range.empty() ? "15m" : range}, {"step_seconds", step}};
  if (all) {
    json services = json::object(), routes = json::object();
    for (const auto& name : history.service_names())
      if (auto p = history.points(name, span)) services[name] = columns(merge_points(*p, step));
    for (const auto& label : history.route_labels())
      if (auto p = history.route_points(label, span)) routes[label] = columns(merge_points(*p, step));
    out["kinfra"] = columns(merge_points(*history.points("", span), step));
    out["services"] = std::move(services);
    out["routes"] = std::move(routes);
    return json_response(200, dump(out));
  }
  const std::string service = query_param(query, "service");
  const std::string route = query_param(query, "route");
  std::optional<std::vector<history_point>> points;
  if (!route.empty()) {
    points = history.route_points(route, span);
    if (!points) return json_error(404, "unknown route (or no request yet)");
    out["route"] = route;
  } else {
    points = history.points(service, span);
    if (!points && board && board->index_of(service) >= 0) points.emplace();  // (not sampled yet)
    if (!points) return json_error(404, "unknown service");
    out["service"] = service.empty() ? json(nullptr) : json(service);
  }
  json list = json::array();
  for (const auto& p : merge_points(*points, step))
    list.push_back(point_json(p, route.empty() && !service.empty(), route.empty() && service.empty()));
  out["points"] = std::move(list);
  return json_response(200, dump(out));
}

}  // namespace kinfra::fallback
