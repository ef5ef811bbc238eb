#include "fallback/push_api.hpp"

#include <nlohmann/json.hpp>

#include "fallback/responses.hpp"

namespace kinfra::fallback {
namespace {

using json = nlohmann::json;

template <class T>
parsed_push<T> failed(unsigned status, std::string why) {
  parsed_push<T> p;
  p.status = status;
  p.error = std::move(why);
  return p;
}

std::string too_long(const char* what, std::size_t max) {
  return std::string(what) + " is longer than " + std::to_string(max) + " bytes";
}

/** Reads the steps of a push into `out`; the error status (0: fine) and message. */
unsigned read_steps(const json& list, std::vector<step_entry>& out, std::string& error) {
  if (!list.is_array()) return error = "steps must be a list of {text, status}", 400;
  if (list.size() > push_max_steps) return error = "at most " + std::to_string(push_max_steps) + " steps", 413;
  for (const auto& st : list) {
    if (!st.is_object() || !st.contains("text") || !st["text"].is_string()) return error = "each step needs a text", 400;
    step_entry p{st["text"].get<std::string>(), step_status::pending};
    if (p.text.size() > push_max_step_bytes) return error = too_long("a step's text", push_max_step_bytes), 413;
    if (st.contains("status")) {
      auto parsed = st["status"].is_string() ? parse_step_status(st["status"].get<std::string>()) : std::nullopt;
      if (!parsed) return error = "a step's status is completed, active or pending", 400;
      p.status = *parsed;
    }
    out.push_back(std::move(p));
  }
  return 0;
}

unsigned read_lines(const json& list, std::vector<log_entry>& out, std::string& error) {
  if (!list.is_array()) return error = "logs must be a list of {timestamp, level, message}", 400;
  if (list.size() > push_max_lines) return error = "at most " + std::to_string(push_max_lines) + " log lines a push", 413;
  for (const auto& l : list) {
    if (!l.is_object() || !l.contains("message") || !l["message"].is_string())
      return error = "each log line needs a message", 400;
    log_entry e;
    e.time = std::chrono::system_clock::now();
    e.message = l["message"].get<std::string>();
    if (e.message.size() > push_max_line_bytes) return error = too_long("a log line", push_max_line_bytes), 413;
    if (l.contains("timestamp") && l["timestamp"].is_string()) {
      e.timestamp = l["timestamp"].get<std::string>();
      if (e.timestamp.size() > 64) return error = too_long("a log line's timestamp", 64), 413;
    }
    if (l.contains("level") && l["level"].is_string())
      e.level = parse_log_level(l["level"].get<std::string>()).value_or(log_level::info);
    out.push_back(std::move(e));
  }
  return 0;
}

}  // namespace

parsed_push<service_update> parse_status_push(std::string_view body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return failed<service_update>(400, "the body must be a JSON object");
  parsed_push<service_update> out;
  service_update& u = out.value;
  if (doc.contains("status_message")) {
    if (!doc["status_message"].is_string()) return failed<service_update>(400, "status_message must be a string");
    u.status_message = doc["status_message"].get<std::string>();
    if (u.status_message->size() > push_max_message_bytes)
      return failed<service_update>(413, too_long("status_message", push_max_message_bytes));
  }
  if (doc.contains("state")) {
    auto st = doc["state"].is_string() ? parse_service_state(doc["state"].get<std::string>()) : std::nullopt;
    if (!st) return failed<service_update>(400, "state must be one of stopped, starting, running, unhealthy, stopping, error");
    u.state = *st;
  }
  std::string error;
  if (doc.contains("steps")) {
    std::vector<step_entry> steps;
    if (unsigned s = read_steps(doc["steps"], steps, error)) return failed<service_update>(s, error);
    u.steps = std::move(steps);
  }
  if (doc.contains("logs"))
    if (unsigned s = read_lines(doc["logs"], u.logs, error)) return failed<service_update>(s, error);
  return out;
}

parsed_push<maintenance_info> parse_maintenance_push(std::string_view body, std::string_view query) {
  json doc = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return failed<maintenance_info>(400, "the body must be a JSON object");
  parsed_push<maintenance_info> out;
  maintenance_info& info = out.value;
  info.on = true;
  auto text = [&](const char* key) -> std::string {
    if (doc.contains(key) && doc[key].is_string()) return doc[key].get<std::string>();
    return query_param(query, key);
  };
  if (doc.contains("on") && doc["on"].is_boolean()) info.on = doc["on"].get<bool>();
  else if (auto q = query_param(query, "on"); !q.empty()) info.on = q == "1" || q == "true" || q == "on";
  info.message = text("message");
  info.expected = text("expected");
  if (info.expected.empty()) info.expected = text("duration");
  if (info.message.size() > push_max_message_bytes)
    return failed<maintenance_info>(413, too_long("message", push_max_message_bytes));
  if (info.expected.size() > 256) return failed<maintenance_info>(413, too_long("expected", 256));
  return out;
}

}  // namespace kinfra::fallback
