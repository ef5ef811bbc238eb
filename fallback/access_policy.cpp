#include "fallback/access_policy.hpp"

#include <cctype>

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

/** "https://host:port/..." → "host:port" (lower case); empty when it is not an origin. */
std::string origin_authority(std::string_view origin) {
  auto sep = origin.find("://");
  if (sep == std::string_view::npos) return {};
  std::string_view rest = origin.substr(sep + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string out(rest);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Every byte of the longer string is looked at, whatever the contents.
  std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool has_valid_token(const admin_config& admin, const local_request& req) {
  if (admin.token.empty()) return false;
  auto given = bearer(req.authorization);
  return !given.empty() && constant_time_equals(given, admin.token);
}

access check_read(const admin_config& admin, const local_request& req) {
  if (req.client_is_loopback) return access::allowed;
  if (!admin.allow_remote) return access::remote_refused;
  if (has_valid_token(admin, req)) return access::allowed;
  return bearer(req.authorization).empty() ? access::token_required : access::token_wrong;
}

access check_action(const admin_config& admin, const local_request& req) {
  if (auto r = check_read(admin, req); r != access::allowed) return r;
  if (!admin.actions) return access::actions_disabled;
  // A page of another site may make a browser POST here (CSRF): refuse any foreign Origin.
  if (!req.origin.empty()) {
    std::string from = origin_authority(req.origin);
    std::string host(req.host_header);
    for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (from.empty() || from != host) return access::cross_site;
  }
  if (!admin.token.empty() && !has_valid_token(admin, req))
    return bearer(req.authorization).empty() ? access::token_required : access::token_wrong;
  return access::allowed;
}

}  // namespace kinfra::fallback
