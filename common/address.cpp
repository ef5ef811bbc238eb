#include "common/address.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>

namespace kinfra {
namespace {

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

std::variant<std::uint16_t, std::string> parse_port(std::string_view s, bool allow_zero) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || value > 65535)
    return "invalid port \"" + std::string(s) + "\" (expected 1-65535)";
  if (value == 0 && !allow_zero) return std::string("port 0 is not allowed here");
  return static_cast<std::uint16_t>(value);
}

// Splits "host:port", "[v6]:port" or ":port" into its parts; `port` is empty when absent.
bool split_host_port(std::string_view text, std::string& host, std::string_view& port) {
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (rest.empty()) { port = {}; return true; }
    if (rest.front() != ':') return false;
    port = rest.substr(1);
    return true;
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) { host = std::string(text); port = {}; return true; }
  if (text.find(':') != colon) return false;  // a bare IPv6 address needs brackets
  host = std::string(text.substr(0, colon));
  port = text.substr(colon + 1);
  return true;
}

}  // namespace

std::string host_port::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool is_valid_host_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::string str(s);
  if (is_ipv4(str) || is_ipv6(str)) return true;
  std::size_t label = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return label > 0 || s.back() == '.';
}

std::variant<host_port, std::string> parse_listen_address(std::string_view text) {
  if (text.empty()) return std::string("empty listen address");
  bool digits_only = text.find_first_not_of("0123456789") == std::string_view::npos;
  std::string host;
  std::string_view port_text;
  if (digits_only) {
    host = "0.0.0.0";
    port_text = text;
  } else {
    if (!split_host_port(text, host, port_text))
      return "invalid listen address \"" + std::string(text) + "\" (expected HOST:PORT, e.g. 0.0.0.0:9100)";
    if (port_text.empty())
      return "listen address \"" + std::string(text) + "\" has no port (expected HOST:PORT)";
    if (host.empty() || host == "*") host = "0.0.0.0";
    if (host == "localhost") host = "127.0.0.1";
  }
  if (!is_ipv4(host) && !is_ipv6(host))
    return "listen host \"" + host + "\" is not an IP address (use e.g. 0.0.0.0, 127.0.0.1 or [::])";
  auto port = parse_port(port_text, /*allow_zero=*/true);
  if (auto* err = std::get_if<std::string>(&port)) return *err;
  return host_port{host, std::get<std::uint16_t>(port)};
}

std::variant<upstream_url, std::string> parse_upstream_url(std::string_view text) {
  upstream_url out;
  out.text = std::string(text);
  auto sep = text.find("://");
  if (sep == std::string_view::npos)
    return "invalid URL \"" + std::string(text) + "\" (expected http://HOST:PORT)";
  std::string scheme(text.substr(0, sep));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https")
    return "unsupported scheme \"" + scheme + "\" in \"" + std::string(text) + "\" (expected http:// or https://)";
  out.scheme = scheme;
  std::string_view rest = text.substr(sep + 3);
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos && rest.substr(slash) != "/")
    return "URL \"" + std::string(text) + "\" has a path; give only http://HOST:PORT (use strip_prefix on routes to change paths)";
  if (authority.find('@') != std::string_view::npos)
    return "URL \"" + std::string(text) + "\" contains user info, which is not supported";
  std::string host;
  std::string_view port_text;
  if (!split_host_port(authority, host, port_text) || host.empty())
    return "invalid URL \"" + std::string(text) + "\" (expected http://HOST:PORT)";
  if (!is_valid_host_name(host)) return "invalid host \"" + host + "\" in URL \"" + std::string(text) + "\"";
  std::uint16_t port = scheme == "https" ? 443 : 80;
  if (!port_text.empty()) {
    auto p = parse_port(port_text, /*allow_zero=*/false);
    if (auto* err = std::get_if<std::string>(&p)) return *err + " in URL \"" + std::string(text) + "\"";
    port = std::get<std::uint16_t>(p);
  }
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out.address = host_port{host, port};
  return out;
}

std::optional<authority> parse_authority(std::string_view text) {
  std::string host;
  std::string_view port;
  if (text.empty() || !split_host_port(text, host, port) || host.empty()) return std::nullopt;
  const bool bracketed = text.front() == '[';
  if (bracketed && !is_ipv6(host)) return std::nullopt;
  if (!bracketed && !is_valid_host_name(host)) return std::nullopt;
  authority out;
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out.name = std::move(host);
  if (!port.empty() || (!text.empty() && text.back() == ':')) {
    auto p = parse_port(port, /*allow_zero=*/false);
    if (std::holds_alternative<std::string>(p)) return std::nullopt;
    out.port = std::get<std::uint16_t>(p);
  }
  return out;
}

bool is_loopback_literal(std::string_view name) {
  std::string s(name);
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

}  // namespace kinfra
