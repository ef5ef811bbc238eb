#include "fallback/access_policy.hpp"

#include <cctype>
#include <string>

namespace kinfra::fallback {
namespace {

std::string_view bearer(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return {};
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

bool equals_lower(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != lower[i]) return false;
  return true;
}

/**
 * An Origin (`https://host[:port]`, no path) that names the same host and port as the request's
 * Host (already known to be kinfra's own): the page that sent the request was served by kinfra
 * under that name. "null", other schemes and anything malformed are foreign.
 */
bool origin_is_own(std::string_view origin, const authority& host, bool tls) {
  std::uint16_t default_port = 0;
  std::string_view rest;
  // On an HTTPS connection only an https page is kinfra's own. (A plain connection may come from a
  // TLS-terminating proxy in front: there either scheme is.)
  if (!tls && origin.size() > 7 && equals_lower(origin.substr(0, 7), "http://")) {
    default_port = 80;
    rest = origin.substr(7);
  } else if (origin.size() > 8 && equals_lower(origin.substr(0, 8), "https://")) {
    default_port = 443;
    rest = origin.substr(8);
  } else {
    return false;
  }
  auto from = parse_authority(rest);
  if (!from || from->name != host.name) return false;
  // A browser leaves the scheme's default port out of both; an explicit one must be the same.
  return from->port.value_or(default_port) == host.port.value_or(default_port);
}

}  // namespace

bool has_valid_token(const admin_config& admin, const local_request& req) {
  if (admin.token.empty()) return false;
  auto given = bearer(req.authorization);
  return !given.empty() && constant_time_equals(given, admin.token);
}

bool host_is_admin(const admin_config& admin, const local_request& req) {
  auto host = parse_authority(req.host_header);
  return host && is_admin_host(admin.hosts, *host);
}

access check_read(const admin_config& admin, const local_request& req) {
  if (!host_is_admin(admin, req)) return access::host_refused;
  if (!req.client_is_loopback && !admin.allow_remote) return access::remote_refused;
  if (admin.token.empty()) return req.client_is_loopback ? access::allowed : access::token_required;
  if (has_valid_token(admin, req)) return access::allowed;
  return bearer(req.authorization).empty() ? access::token_required : access::token_wrong;
}

bool may_see_shell(access a) {
  return a == access::allowed || a == access::token_required || a == access::token_wrong;
}

access check_action(const admin_config& admin, const local_request& req) {
  if (auto r = check_read(admin, req); r != access::allowed) return r;
  if (!admin.actions) return access::actions_disabled;
  // A page of another site may make a browser POST here (CSRF). Browsers say where a request
  // comes from: Sec-Fetch-Site for every fetch, Origin for every POST. Either one pointing
  // elsewhere refuses the action; tools that send neither (curl, the CLI) are not browsers.
  if (equals_lower(req.fetch_site, "cross-site") || equals_lower(req.fetch_site, "same-site"))
    return access::cross_site;
  if (!req.origin.empty() && !origin_is_own(req.origin, *parse_authority(req.host_header), req.tls))
    return access::cross_site;
  return access::allowed;
}

}  // namespace kinfra::fallback
