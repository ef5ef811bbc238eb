#include "proxy/uri_path.hpp"

#include <cctype>
#include <cstring>
#include <string>

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
    if (static_cast<unsigned char>(path[i]) >= 0x80) return false;  // (checked for overlong forms)
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
/** Case-blind: `s` starts with `word` (upper case). */
bool starts_with_nocase(std::string_view s, std::string_view word) {
  if (s.size() < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(s[i])) != word[i]) return false;
  return true;
}

/** The length of a separator an upstream might see at the start of `s` (0: none). */
std::size_t separator_at(std::string_view s) {
  if (s.empty()) return 0;
  if (s[0] == '\\') return 1;
  if (s.starts_with("%2F") || s.starts_with("%5C")) return 3;
  // Double-encoded, for an upstream (or a layer in front of it) that decodes twice.
  if (starts_with_nocase(s, "%252F") || starts_with_nocase(s, "%255C")) return 5;
  return 0;
}

bool hides_dot_segment(std::string_view seg) {
  if (is_dot_segment(seg)) return seg != "." && seg != "..";  // (a plain one is resolved here)
  // Double-encoded dots read as dots too (`%252E%252E%252F`).
  std::string plain;
  for (std::size_t i = 0; i < seg.size(); ++i) {
    if (starts_with_nocase(seg.substr(i), "%252E")) {
      plain += '.';
      i += 4;
    } else {
      plain += seg[i];
    }
  }
  std::string_view s(plain);
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size();) {
    const std::size_t sep = i == s.size() ? 1 : separator_at(s.substr(i));
    if (sep == 0) {
      ++i;
      continue;
    }
    if (is_dot_segment(s.substr(start, i - start)) && !(start == 0 && i == s.size())) return true;
    i += sep;
    start = i;
  }
  return false;
}

/**
 * True for the start of an overlong UTF-8 form (`first` a lead byte, `second` the next byte or
 * -1): C0/C1 always, E0 before 80–9F, F0 before 80–8F; and F5–FF, which are never UTF-8.
 */
bool overlong(unsigned char first, int second) {
  if (first == 0xC0 || first == 0xC1 || first >= 0xF5) return true;
  if (first == 0xE0) return second >= 0x80 && second <= 0x9F;
  if (first == 0xF0) return second >= 0x80 && second <= 0x8F;
  return false;
}

}  // namespace

bool normalise_target(std::string_view target, std::string& scratch, normalised_target& out) {
  out.disguised_separators = false;
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
  // The byte at `i` (raw, or an escape), -1 when there is none or it is malformed.
  auto byte_at = [&](std::size_t i) -> int {
    if (i >= path.size()) return -1;
    if (path[i] != '%') return static_cast<unsigned char>(path[i]);
    if (i + 2 >= path.size()) return -1;
    int hi = hex_value(path[i + 1]), lo = hex_value(path[i + 2]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  };
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c != '%') {
      // A raw overlong form, which some servers decode, is refused like an escaped one.
      if (static_cast<unsigned char>(c) >= 0x80 && overlong(static_cast<unsigned char>(c), byte_at(i + 1))) return false;
      decoded += c;
      continue;
    }
    if (i + 2 >= path.size()) return false;
    int hi = hex_value(path[i + 1]), lo = hex_value(path[i + 2]);
    if (hi < 0 || lo < 0) return false;
    auto byte = static_cast<unsigned char>(hi * 16 + lo);
    // An encoded NUL, and the start of an overlong form (of '.' or '/', which some servers
    // decode): refused.
    if (byte == 0 || (byte >= 0x80 && overlong(byte, byte_at(i + 3)))) return false;
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
    if (seg.find(';') != std::string_view::npos || seg.find('\\') != std::string_view::npos ||
        seg.find("%2F") != std::string_view::npos || seg.find("%5C") != std::string_view::npos)
      out.disguised_separators = true;
    scratch += '/';
    scratch.append(seg);
  }
  if (scratch.empty() || trailing_slash) scratch += '/';
  out.path = scratch;
  return true;
}

std::string routing_key(std::string_view path) {
  std::string key;
  key.reserve(path.size());
  bool in_params = false;  // after a ';' until the end of the segment
  for (std::size_t i = 0; i < path.size();) {
    std::size_t sep = path[i] == '/' ? 1 : separator_at(path.substr(i));
    if (sep > 0) {
      if (key.empty() || key.back() != '/') key += '/';
      in_params = false;
      i += sep;
      continue;
    }
    if (path[i] == ';') in_params = true;
    if (!in_params) key += path[i];
    ++i;
  }
  if (key.size() > 1 && key.back() == '/' && (path.empty() || path.back() != '/')) key.pop_back();
  return key.empty() ? std::string("/") : key;
}

std::string_view strip_path_prefix(std::string_view path, std::string_view prefix) {
  if (prefix.size() <= 1 || !path.starts_with(prefix)) return path;
  std::string_view rest = path.substr(prefix.size());
  if (rest.empty()) return "/";
  return rest;
}

}  // namespace kinfra::proxy
