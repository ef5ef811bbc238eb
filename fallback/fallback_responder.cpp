#include "fallback/fallback_responder.hpp"

#include <nlohmann/json.hpp>

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

}  // namespace kinfra::fallback
