#include "proxy/uri_path.hpp"

#include <cstring>

namespace kinfra::proxy {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// True when the path needs no rewriting: no escapes, no empty segments, no dot segments (and
// nothing that might hide one: a backslash, a ';').
bool already_canonical(std::string_view path) {
  if (path.find_first_of("%\\;") != std::string_view::npos) return false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '/') continue;
    std::string_view rest = path.substr(i + 1);
    if (!rest.empty() && rest[0] == '/') return false;
    if (rest == "." || rest.starts_with("./") || rest == ".." || rest.starts_with("../")) return false;
  }
  return true;
}

/** "." or "..", once what follows a ';' is ignored (as Tomcat and Spring read `..;x`). */
bool is_dot_segment(std::string_view seg) {
  seg = seg.substr(0, seg.find(';'));
  return seg == "." || seg == "..";
}

/**
 * True when `seg` (one segment, unreserved escapes already decoded) hides a dot segment that an
 * upstream could resolve: behind an encoded slash or a backslash, literal or encoded
 * (`..%2Fadmin`, `%2F..%2Fx`, `..\admin`, `..%5Cadmin`), or behind a ';' (`..;/admin`).
 */
bool hides_dot_segment(std::string_view seg) {
  if (is_dot_segment(seg)) return seg != "." && seg != "..";  // (a plain one is resolved here)
  std::size_t start = 0;
  for (std::size_t i = 0; i <= seg.size(); ++i) {
    std::size_t sep = 0;  // the separator's length at i (0: none)
    if (i == seg.size()) sep = 1;
    else if (seg[i] == '\\') sep = 1;
    else if (seg.substr(i, 3) == "%2F" || seg.substr(i, 3) == "%5C") sep = 3;
    if (sep == 0) continue;
    if (is_dot_segment(seg.substr(start, i - start)) && !(start == 0 && i == seg.size())) return true;
    start = i + sep;
    i = start - 1;
  }
  return false;
}

}  // namespace

bool normalise_target(std::string_view target, std::string& scratch, normalised_target& out) {
  if (target.empty() || target[0] != '/') return false;
  if (target.find('#') != std::string_view::npos) return false;
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  out.has_query = q != std::string_view::npos;
  out.query = out.has_query ? target.substr(q + 1) : std::string_view{};
  if (already_canonical(path)) {
    out.path = path;
    return true;
  }

  // Decode what may be decoded; every segment then lands in `scratch` one at a time, resolving
  // dot segments against what is already written.
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c != '%') {
      decoded += c;
      continue;
    }
    if (i + 2 >= path.size()) return false;
    int hi = hex_value(path[i + 1]), lo = hex_value(path[i + 2]);
    if (hi < 0 || lo < 0) return false;
    auto byte = static_cast<unsigned char>(hi * 16 + lo);
    // An encoded NUL, and 0xC0/0xC1 (only ever the start of an overlong form of '.' or '/',
    // which some servers decode): refused.
    if (byte == 0 || byte == 0xC0 || byte == 0xC1) return false;
    if (is_unreserved(byte)) {
      decoded += static_cast<char>(byte);
    } else {
      static constexpr char digits[] = "0123456789ABCDEF";
      decoded += '%';
      decoded += digits[byte >> 4];
      decoded += digits[byte & 15];
    }
    i += 2;
  }

  scratch.clear();
  scratch.reserve(decoded.size());
  std::string_view rest(decoded);
  bool trailing_slash = false;
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the '/'
    auto end = rest.find('/');
    std::string_view seg = rest.substr(0, end);
    rest.remove_prefix(seg.size());
    trailing_slash = false;
    if (seg.empty()) {
      // "//" merges; a final empty segment is a trailing slash.
      trailing_slash = rest.empty();
      continue;
    }
    if (seg == ".") {
      trailing_slash = true;
      continue;
    }
    if (seg == "..") {
      if (scratch.empty()) return false;  // would climb above the root
      scratch.resize(scratch.rfind('/'));
      trailing_slash = true;
      continue;
    }
    if (hides_dot_segment(seg)) return false;  // (an upstream could climb out of the route with it)
    scratch += '/';
    scratch.append(seg);
  }
  if (scratch.empty() || trailing_slash) scratch += '/';
  out.path = scratch;
  return true;
}

std::string_view strip_path_prefix(std::string_view path, std::string_view prefix) {
  if (prefix.size() <= 1 || !path.starts_with(prefix)) return path;
  std::string_view rest = path.substr(prefix.size());
  if (rest.empty()) return "/";
  return rest;
}

}  // namespace kinfra::proxy
