#include "common/admin_hosts.hpp"

namespace kinfra {

bool admin_host::matches(const authority& a) const {
  if (port && a.port != port) return false;
  if (!wildcard) return a.name == name;
  // "*.corp.example" matches "a.corp.example" and "a.b.corp.example", not "corp.example".
  return a.name.size() > name.size() && a.name.ends_with(name);
}

std::variant<admin_host, std::string> parse_admin_host(std::string_view text) {
  auto bad = [&](const char* why) {
    return "admin_hosts: \"" + std::string(text) + "\" " + why +
           " (expected a host name or address, optionally with :port, e.g. kinfra.example.com or 10.0.0.5:9000)";
  };
  if (text.find("://") != std::string_view::npos || text.find('/') != std::string_view::npos)
    return bad("is not a host name: give the name alone, without scheme or path");
  admin_host out;
  std::string_view rest = text;
  if (rest.starts_with("*.")) {
    out.wildcard = true;
    rest.remove_prefix(1);  // keep the dot: the suffix is ".corp.example"
  }
  auto a = parse_authority(out.wildcard ? rest.substr(1) : rest);
  if (!a) return bad("is not a valid host");
  if (out.wildcard && is_loopback_literal(a->name)) return bad("cannot be a wildcard of an address");
  if (!a->name.empty() && a->name.back() == '.') a->name.pop_back();  // "example.com." is example.com
  out.name = out.wildcard ? "." + a->name : a->name;
  out.port = a->port;
  return out;
}

bool is_admin_host(const std::vector<admin_host>& list, const authority& a) {
  if (a.name == "localhost" || is_loopback_literal(a.name)) return true;
  for (const auto& h : list)
    if (h.matches(a)) return true;
  return false;
}

}  // namespace kinfra
