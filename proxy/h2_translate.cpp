#include "proxy/h2_translate.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>

namespace kinfra::proxy {
namespace {

/** Bytes that may not appear inside a request-line token (method, target): space and controls. */
bool is_token_safe(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

bool is_connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

}  // namespace

bool has_line_break(std::string_view s) {
  // (One pass over the bytes: find_first_of with a set calls memchr once per byte.)
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return true;
  return false;
}

bool h2_request_head::add(std::string_view name, std::string_view value) {
  bytes_ += name.size() + value.size() + 32;
  if (bytes_ > max_bytes_) refuse(431, "The request header fields are too large.");
  if (status_ != 0) return false;
  if (name.empty() || has_line_break(name) || has_line_break(value) || name.find(':', 1) != std::string_view::npos) {
    refuse(400, "A header field is malformed.");
    return false;
  }
  if (name.front() == ':') {
    if (name == ":method") method_.assign(value);
    else if (name == ":path") path_.assign(value);
    else if (name == ":authority") authority_.assign(value);
    else if (name != ":scheme") refuse(400, "The request has an unknown pseudo-header field.");
    return status_ == 0;
  }
  if (name == "host") {
    if (!host_.empty()) refuse(400, "The Host header field is repeated.");
    host_.assign(value);
    return status_ == 0;
  }
  if (name == "cookie") {
    // RFC 9113 §8.2.3: HTTP/2 may split the cookie; HTTP/1.1 wants one field.
    if (!cookie_.empty()) cookie_.append("; ");
    cookie_.append(value);
    return true;
  }
  if (is_connection_specific(name)) {
    refuse(400, "Connection-specific header fields are not allowed in HTTP/2.");
    return false;
  }
  if (name == "te") {
    te_trailers_ = true;  // (only "trailers" gets here: nghttp2 refuses any other value)
    return true;
  }
  if (name == "http2-settings") return true;
  if (name == "content-length") has_length_ = true;
  fields_.append(name);
  fields_.append(": ", 2);
  fields_.append(value);
  fields_.append("\r\n", 2);
  return true;
}

std::string h2_request_head::finish(bool has_body) {
  if (status_ == 0 && method_ == "CONNECT") path_ = authority_;  // (answered 405 by the session)
  if (status_ == 0 && (!is_token_safe(method_) || !is_token_safe(path_)))
    refuse(400, "The request's :method or :path is missing or malformed.");
  if (status_ == 0 && !authority_.empty() && !is_token_safe(authority_))
    refuse(400, "The request's :authority is malformed.");
  // RFC 9113 §8.3.1: a Host naming another authority than :authority makes the request malformed.
  if (status_ == 0 && !authority_.empty() && !host_.empty() && !boost::beast::iequals(authority_, host_))
    refuse(400, "The :authority and Host header fields name different hosts.");
  if (status_ != 0) return {};
  const std::string& host = authority_.empty() ? host_ : authority_;
  chunked_ = has_body && !has_length_;
  std::string out;
  out.reserve(method_.size() + path_.size() + host.size() + fields_.size() + cookie_.size() + 64);
  out.append(method_).append(" ", 1).append(path_).append(" HTTP/1.1\r\n", 11);
  if (!host.empty()) out.append("host: ", 6).append(host).append("\r\n", 2);
  out.append(fields_);
  if (!cookie_.empty()) out.append("cookie: ", 8).append(cookie_).append("\r\n", 2);
  if (chunked_) out.append("transfer-encoding: chunked\r\n");
  out.append("\r\n", 2);
  return out;
}

void h2_response_fields::assign(unsigned code, std::string_view head_fields) {
  status = std::to_string(code);
  const bool no_length = code < 200 || code == 204;
  storage.clear();
  // Lower-cased names and values never add up to more than the lines they come from: with this
  // reserved, `storage` does not move and the views below stay valid.
  storage.reserve(head_fields.size());
  fields.clear();
  std::string_view rest(head_fields);
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    const std::size_t at = storage.size();
    for (char c : name) storage.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    std::string_view lower(storage.data() + at, name.size());
    if (is_connection_specific(lower) || lower == "te" || (no_length && lower == "content-length")) {
      storage.resize(at);
      continue;
    }
    storage.append(value);
    fields.emplace_back(lower, std::string_view(storage.data() + at + name.size(), value.size()));
  }
}

}  // namespace kinfra::proxy
