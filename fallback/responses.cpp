#include "fallback/responses.hpp"

#include <cctype>

namespace kinfra::fallback {
namespace {

/** An answer with what every admin answer says, whatever its type. */
local_response answer(unsigned status, const char* content_type, std::string body) {
  local_response res;
  res.status = status;
  res.content_type = content_type;
  res.body = std::move(body);
  res.headers.emplace_back("Cache-Control", "no-store");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // Another origin's page may not even load these bytes as an image or script (Spectre, XS-leaks).
  res.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
  return res;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

}  // namespace

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

local_response json_response(unsigned status, std::string body) {
  return answer(status, "application/json", std::move(body));
}

local_response html_response(unsigned status, std::string body) {
  local_response res = answer(status, "text/html; charset=utf-8", std::move(body));
  // kinfra's pages load nothing from elsewhere and are never framed by another site.
  res.headers.emplace_back("X-Frame-Options", "DENY");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  return res;
}

local_response text_response(unsigned status, std::string body) {
  return answer(status, "text/plain; charset=utf-8", std::move(body));
}

local_response json_error(unsigned status, std::string_view why) {
  return json_response(status, dump(nlohmann::json{{"success", false}, {"error", why}}));
}

local_response method_not_allowed(const char* allow) {
  auto res = json_error(405, std::string("use ") + allow);
  res.headers.emplace_back("Allow", allow);
  return res;
}

bool is_get(const local_request& req) { return req.method == "GET" || req.method == "HEAD"; }

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
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
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

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  return v;
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
      if (raw[i] == '+') {
        out += ' ';
      } else if (raw[i] == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 &&
                 hex_value(raw[i + 2]) >= 0) {
        out += static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
        i += 2;
      } else {
        out += raw[i];
      }
    }
    return out;
  }
  return {};
}

}  // namespace kinfra::fallback
