#include "fallback/fallback_responder.hpp"

#include <nlohmann/json.hpp>

#include "fallback/status_json.hpp"

namespace kinfra::fallback {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
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

local_response fallback_responder::error_page(unsigned status, std::string_view detail,
                                              const local_request& req) const {
  local_response res;
  res.status = status;
  res.headers.emplace_back("Cache-Control", "no-store");
  const std::string reason(reason_phrase(status));
  if (req.wants_json) {
    nlohmann::json body = {{"error", reason}, {"status", status}, {"detail", detail}};
    if (!req.service.empty()) body["service"] = req.service;
    res.content_type = "application/json";
    res.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return res;
  }
  res.content_type = "text/html; charset=utf-8";
  const std::string title = std::to_string(status) + " " + reason;
  res.body.reserve(1024);
  res.body += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
              "<title>" + html_escape(title) + "</title><style>"
              "body{background:#0F1115;color:#E6E8EE;font-family:system-ui,sans-serif;"
              "display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}"
              "main{max-width:36rem;padding:2rem}h1{color:#5A8DEE;font-weight:600}"
              "code{font-family:ui-monospace,monospace;color:#9EA0A6}</style></head><body><main>"
              "<h1>" + html_escape(title) + "</h1><p>" + html_escape(detail) + "</p>";
  if (!req.service.empty()) res.body += "<p>Service: <code>" + html_escape(req.service) + "</code></p>";
  res.body += "<p><code>kinfra</code></p></main></body></html>\n";
  return res;
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

local_response fallback_responder::json_response(unsigned status, std::string body) const {
  local_response res;
  res.status = status;
  res.content_type = "application/json";
  res.body = std::move(body);
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

std::optional<local_response> fallback_responder::handle(const local_request& req) const {
  // The admin surface answers loopback clients only (the spec's "localhost only").
  if (!req.client_is_loopback) {
    local_request as_json = req;
    return error_page(403, "kinfra's admin pages answer only local clients.", as_json);
  }
  if (req.path == "/__status__" || req.path == "/__status__/") {
    if (req.method != "GET" && req.method != "HEAD") {
      auto res = json_response(405, "{\"success\": false, \"error\": \"use GET\"}\n");
      res.headers.emplace_back("Allow", "GET, HEAD");
      return res;
    }
    if (!board_) return json_response(200, "{\"services\": {}}\n");
    return json_response(200, render_status_json(*board_, query_param(req.query, "service"),
                                                 std::chrono::system_clock::now()) + "\n");
  }
  if (req.path.starts_with("/__logs__/")) return logs_page(req);
  return error_page(404, "No such kinfra page.", req);
}

std::optional<local_response> fallback_responder::logs_page(const local_request& req) const {
  std::string_view name = req.path.substr(std::string_view("/__logs__/").size());
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  int index = board_ ? board_->index_of(name) : -1;
  if (index < 0) {
    nlohmann::json body = {{"success", false}, {"error", "unknown service"}, {"service", name}};
    return json_response(404, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  std::uint64_t after = 0;
  if (auto a = query_param(req.query, "after"); !a.empty()) after = std::strtoull(a.c_str(), nullptr, 10);
  auto lines = board_->logs(static_cast<std::size_t>(index), SIZE_MAX, after);
  std::string format = query_param(req.query, "format");
  if (format == "json") {
    nlohmann::ordered_json body;
    body["service"] = std::string(name);
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& e : lines)
      arr.push_back({{"seq", e.seq}, {"timestamp", log_timestamp(e)}, {"level", std::string(to_string(e.level))},
                     {"message", e.message}});
    body["lines"] = arr;
    return json_response(200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  local_response res;
  res.status = 200;
  res.content_type = "text/plain; charset=utf-8";
  res.headers.emplace_back("Cache-Control", "no-store");
  for (const auto& e : lines) {
    std::string level(to_string(e.level));
    for (auto& c : level) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    res.body += log_timestamp(e) + " " + level + " " + e.message + "\n";
  }
  return res;
}

}  // namespace kinfra::fallback
