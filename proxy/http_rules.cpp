#include "proxy/http_rules.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>
#include <vector>

namespace kinfra::proxy {

namespace beast = boost::beast;

framing_check check_request_framing(const http::request_header<>& req) {
  framing_check out;
  std::size_t cl_count = 0;
  std::string_view cl_value;
  bool has_te = false;
  int chunked_seen = 0;
  bool chunked_last = false;
  bool other_coding = false;
  for (const auto& f : req) {
    if (f.name() == http::field::content_length) {
      ++cl_count;
      cl_value = f.value();
    } else if (f.name() == http::field::transfer_encoding) {
      has_te = true;
      http::token_list tokens{f.value()};
      if (tokens.begin() == tokens.end()) return {400, "empty Transfer-Encoding"};
      for (auto t : tokens) {
        bool is_chunked = beast::iequals(t, "chunked");
        chunked_seen += is_chunked;
        chunked_last = is_chunked;
        if (!is_chunked) other_coding = true;
      }
    }
  }
  if (cl_count > 0 && has_te) return {400, "both Content-Length and Transfer-Encoding"};
  if (cl_count > 1) return {400, "more than one Content-Length"};
  if (cl_count == 1) {
    if (cl_value.empty() ||
        !std::all_of(cl_value.begin(), cl_value.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return {400, "invalid Content-Length"};
    out.framing = cl_value.find_first_not_of('0') == std::string_view::npos ? body_framing::none
                                                                           : body_framing::length;
    return out;
  }
  if (has_te) {
    if (req.version() < 11) return {400, "Transfer-Encoding in an HTTP/1.0 request"};
    if (chunked_seen != 1 || !chunked_last) return {400, "Transfer-Encoding must end with chunked, once"};
    if (other_coding) return {501, "unsupported transfer coding"};
    out.framing = body_framing::chunked;
  }
  return out;
}

bool check_host(const http::request_header<>& req, std::string& host_out) {
  host_out.clear();
  auto range = req.equal_range(http::field::host);
  auto count = std::distance(range.first, range.second);
  if (count > 1) return false;
  if (count == 0) return req.version() < 11;
  std::string_view v = range.first->value();
  if (v.empty()) return req.version() < 11;  // an empty Host is allowed only without authority
  std::string_view host = v;
  if (host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    if (!rest.empty()) {
      auto port = rest.substr(1);
      if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    }
    host = host.substr(0, close + 1);
  } else {
    auto colon = host.find(':');
    if (colon != std::string_view::npos) {
      auto port = host.substr(colon + 1);
      if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
      host = host.substr(0, colon);
    }
  }
  if (host.empty()) return false;
  for (char c : host) {
    auto u = static_cast<unsigned char>(c);
    // reg-name / IP literal characters only (RFC 3986 §3.2.2): no spaces, '/', '@', '?', '#', '\'
    bool ok = std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '[' || c == ']' ||
              c == ':' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
              c == '+' || c == ',' || c == ';' || c == '=' || c == '%';
    if (!ok) return false;
  }
  host_out.resize(host.size());
  std::transform(host.begin(), host.end(), host_out.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return true;
}

void remove_hop_by_hop(http::fields& fields) {
  // Names listed in Connection are hop-by-hop too; collect them before erasing Connection.
  std::vector<std::string> named;
  for (auto field_id : {http::field::connection, http::field::proxy_connection}) {
    auto range = fields.equal_range(field_id);
    for (auto it = range.first; it != range.second; ++it) {
      for (auto token : http::token_list{it->value()}) named.emplace_back(token);
    }
  }
  for (const auto& name : named) {
    // A client may not use Connection to strip what the proxy relies on (a known abuse).
    if (beast::iequals(name, "host")) continue;
    fields.erase(name);
  }
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection, http::field::te,
                 http::field::trailer, http::field::transfer_encoding, http::field::upgrade})
    fields.erase(f);
}


bool prefers_json(const http::request_header<>& req) {
  auto it = req.find(http::field::accept);
  if (it == req.end()) return false;
  std::string_view accept = it->value();
  auto json = accept.find("json");
  if (json == std::string_view::npos) return false;
  auto html = accept.find("text/html");
  return html == std::string_view::npos || json < html;
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

bool expects_continue(const http::request_header<>& req, bool& bad) {
  bad = false;
  auto it = req.find(http::field::expect);
  if (it == req.end()) return false;
  if (beast::iequals(it->value(), "100-continue")) return true;
  bad = true;
  return false;
}

}  // namespace kinfra::proxy
