#include "proxy/h2_translate.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <array>
#include <cstring>

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

namespace {

/**
 * Per byte: 1 ends a line (CR, LF, NUL), 2 is not in a field name (RFC 9110 tchar, lower case:
 * nghttp2 checked that already; this is the translation's own guard), ':' included.
 */
constexpr auto byte_classes = [] {
  std::array<unsigned char, 256> t{};
  for (auto& c : t) c = 2;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = 0;
  for (int c = '0'; c <= '9'; ++c) t[c] = 0;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = 0;
  t['\r'] = t['\n'] = t['\0'] = 1 | 2;
  return t;
}();

/** True when a byte of `s` is in `classes` (a mask of byte_classes). */
bool has_any(std::string_view s, unsigned char classes) {
  unsigned char seen = 0;
  for (char c : s) seen |= byte_classes[static_cast<unsigned char>(c)];
  return (seen & classes) != 0;
}

}  // namespace

bool has_line_break(std::string_view s) {
  // (One pass, a table look-up per byte: find_first_of with a set calls memchr once per byte.)
  return has_any(s, 1);
}

void h2_request_head::reset(std::size_t max_bytes) {
  max_bytes_ = max_bytes;
  bytes_ = 0;
  status_ = 0;
  reason_ = "";
  chunked_ = has_length_ = te_trailers_ = false;
  for (auto* s : {&method_, &path_, &authority_, &host_, &cookie_, &content_length_, &fields_}) s->clear();
}

bool h2_request_head::add(std::string_view name, std::string_view value) {
  bytes_ += name.size() + value.size() + 32;
  if (bytes_ > max_bytes_) refuse(431, "The request header fields are too large.");
  if (status_ != 0) return false;
  // A name is tokens only; a pseudo-header's starts with ':'.
  if (name.empty() || has_any(name.substr(name.front() == ':' ? 1 : 0), 2) || has_line_break(value)) {
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
  if (name == "content-length") {
    has_length_ = true;
    content_length_.assign(value);  // (nghttp2 checked it: digits, and only one)
    return true;
  }
  fields_.append(name);
  fields_.append(": ", 2);
  fields_.append(value);
  fields_.append("\r\n", 2);
  return true;
}

std::string h2_request_head::finish(bool has_body) {
  std::string line, fields;
  if (!finish(has_body, line, fields)) return {};
  // One piece: the request line, the fields, then the framing fields and the blank line.
  const std::size_t eol = line.find("\r\n") + 2;
  std::string out;
  out.reserve(line.size() + fields.size());
  out.append(line, 0, eol).append(fields).append(line, eol);
  return out;
}

bool h2_request_head::finish(bool has_body, std::string& line, std::string& fields) {
  if (status_ == 0 && method_ == "CONNECT") path_ = authority_;  // (answered 405 by the session)
  if (status_ == 0 && (!is_token_safe(method_) || !is_token_safe(path_)))
    refuse(400, "The request's :method or :path is missing or malformed.");
  if (status_ == 0 && !authority_.empty() && !is_token_safe(authority_))
    refuse(400, "The request's :authority is malformed.");
  // RFC 9113 §8.3.1: a Host naming another authority than :authority makes the request malformed.
  if (status_ == 0 && !authority_.empty() && !host_.empty() && !boost::beast::iequals(authority_, host_))
    refuse(400, "The :authority and Host header fields name different hosts.");
  if (status_ != 0) return false;
  const std::string& host = authority_.empty() ? host_ : authority_;
  chunked_ = has_body && !has_length_;
  line.clear();
  line.append(method_).append(" ", 1).append(path_).append(" HTTP/1.1\r\n", 11);
  if (has_length_) line.append("content-length: ", 16).append(content_length_).append("\r\n", 2);
  if (chunked_) line.append("transfer-encoding: chunked\r\n");
  line.append("\r\n", 2);
  fields.clear();
  fields.reserve(host.size() + fields_.size() + cookie_.size() + 20);
  if (!host.empty()) fields.append("host: ", 6).append(host).append("\r\n", 2);
  fields.append(fields_);
  if (!cookie_.empty()) fields.append("cookie: ", 8).append(cookie_).append("\r\n", 2);
  return true;
}

void h2_response_fields::assign(unsigned code, std::string_view head_fields) {
  status = std::to_string(code);
  const bool no_length = code < 200 || code == 204;
  // Lower-cased names and values never add up to more than the lines they come from: `storage`
  // is sized once, does not move, and the views below stay valid.
  storage.resize(head_fields.size());
  char* out = storage.data();
  fields.clear();
  const char* p = head_fields.data();
  const char* const end = p + head_fields.size();
  while (p < end) {
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* line_end = eol ? eol : end;
    const char* next = eol ? eol + 1 : end;
    if (line_end > p && line_end[-1] == '\r') --line_end;
    const char* colon = static_cast<const char*>(std::memchr(p, ':', static_cast<std::size_t>(line_end - p)));
    if (colon == nullptr || colon == p) {
      p = next;
      continue;
    }
    char* name_at = out;
    for (const char* c = p; c < colon; ++c) *out++ = (*c >= 'A' && *c <= 'Z') ? static_cast<char>(*c - 'A' + 'a') : *c;
    std::string_view name(name_at, static_cast<std::size_t>(out - name_at));
    if (is_connection_specific(name) || name == "te" || (no_length && name == "content-length")) {
      out = name_at;
      p = next;
      continue;
    }
    const char* v = colon + 1;
    while (v < line_end && (*v == ' ' || *v == '\t')) ++v;
    const auto value_size = static_cast<std::size_t>(line_end - v);
    if (value_size > 0) std::memcpy(out, v, value_size);
    fields.emplace_back(name, std::string_view(out, value_size));
    out += value_size;
    p = next;
  }
  storage.resize(static_cast<std::size_t>(out - storage.data()));
}

}  // namespace kinfra::proxy
