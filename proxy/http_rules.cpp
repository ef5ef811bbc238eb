#include "proxy/http_rules.hpp"

#include <array>
#include <string_view>

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cctype>

namespace kinfra::proxy {

namespace beast = boost::beast;

framing_check check_request_framing(const request_head& req, std::optional<std::uint64_t> content_length) {
  framing_check out;
  const bool has_cl = req.content_length_fields > 0;
  const bool has_te = req.transfer_encoding_fields > 0;
  if (has_cl && has_te) return {proxy_error::malformed, "both Content-Length and Transfer-Encoding"};
  if (req.content_length_fields > 1 || req.content_length_list)
    return {proxy_error::malformed, "more than one Content-Length"};
  if (has_cl) {
    if (!content_length) return {proxy_error::malformed, "invalid Content-Length"};
    out.framing = *content_length > 0 ? body_framing::length : body_framing::none;
    return out;
  }
  if (has_te) {
    if (req.version < 11) return {proxy_error::malformed, "Transfer-Encoding in an HTTP/1.0 request"};
    if (req.empty_coding || req.chunked_tokens != 1 || !req.chunked_last)
      return {proxy_error::malformed, "Transfer-Encoding must end with chunked, once"};
    if (req.other_coding) return {proxy_error::not_implemented, "unsupported transfer coding"};
    out.framing = body_framing::chunked;
  }
  return out;
}

namespace {

/** The characters a Host may hold (reg-name and IP-literal, RFC 3986 §3.2.2), as a table. */
constexpr std::array<bool, 256> host_chars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = t[static_cast<std::size_t>(c - 'a' + 'A')] = true;
  for (char c : std::string_view("-._~[]:!$&'()*+,;=%")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

}  // namespace

bool check_host(const request_head& req, std::string& host_out) {
  host_out.clear();
  if (req.host_fields > 1) return false;
  if (req.host_fields == 0 || req.host.empty()) return req.version < 11;
  std::string_view host = req.host;
  auto digits = [](std::string_view s) { return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }); };
  if (host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !digits(rest.substr(1)))) return false;
    host = host.substr(0, close + 1);
  } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
    if (!digits(host.substr(colon + 1))) return false;
    host = host.substr(0, colon);
  }
  // A fully qualified name's trailing dot names the same host (`api.example.com.`): routed as
  // without it. A name longer than DNS allows is no host.
  if (host.size() > 1 && host.back() == '.' && host.front() != '[') host.remove_suffix(1);
  if (host.empty() || host.size() > 255) return false;
  // One pass: each character must be a reg-name or IP-literal one (RFC 3986 §3.2.2: no spaces,
  // '/', '@', '?', '#', '\'), and is written lower case.
  host_out.resize(host.size());
  for (std::size_t i = 0; i < host.size(); ++i) {
    const auto u = static_cast<unsigned char>(host[i]);
    if (!host_chars[u]) {
      host_out.clear();
      return false;
    }
    host_out[i] = static_cast<char>(u >= 'A' && u <= 'Z' ? u + ('a' - 'A') : u);
  }
  return true;
}

bool expects_continue(const request_head& req, bool& bad) {
  bad = false;
  if (!req.has_expect) return false;
  if (beast::iequals(req.expect, "100-continue")) return true;
  bad = true;
  return false;
}

bool is_idempotent(http::verb method) {
  switch (method) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
}

void write_request_line(const request_head& req, std::string_view target, std::string& out) {
  out.clear();
  out.append(req.method_string);
  out += ' ';
  out.append(target);
  out.append(" HTTP/1.1\r\n", 11);
}

void write_request_tail(const request_head& req, const forward_info& f, std::string& out) {
  out.clear();
  if (req.host.empty() && !f.fallback_host.empty()) {
    out.append("Host: ");
    out.append(f.fallback_host);
    out.append("\r\n", 2);
  }
  out.append("X-Forwarded-For: ");
  if (!req.forwarded_for.empty()) {
    out.append(req.forwarded_for);
    out.append(", ", 2);
  }
  out.append(f.client_ip);
  out.append("\r\nX-Forwarded-Proto: ");
  out.append(f.proto);
  out.append("\r\n", 2);
  if (!req.host.empty()) {
    out.append("X-Forwarded-Host: ");
    out.append(req.host);
    out.append("\r\n", 2);
  }
  // A gateway names itself in Via on requests it forwards (RFC 9110 §7.6.3); an incoming Via was
  // forwarded with the other fields, and a second field line continues its list.
  out.append("Via: 1.1 kinfra\r\n");
  if (f.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (f.upgrade) {
    out.append("Connection: upgrade\r\nUpgrade: ");
    out.append(req.upgrade);
    out.append("\r\n", 2);
  }
  out.append("\r\n", 2);
}

void write_response_tail(const response_head& res, const response_head_info& info, std::string& out) {
  out.clear();
  if (info.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (info.upgrade) {
    out.append("Connection: upgrade\r\n");
    if (!res.upgrade.empty()) {
      out.append("Upgrade: ");
      out.append(res.upgrade);
      out.append("\r\n", 2);
    }
  } else if (info.close) {
    out.append("Connection: close\r\n");
  } else if (info.keep_alive_10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n", 2);
}

}  // namespace kinfra::proxy
