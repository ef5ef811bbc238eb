#pragma once
/**
 * @file The compiled route table: host match first, then the longest segment-aware path prefix.
 *
 * Built once from a `config` and never changed, so any number of worker threads can share it.
 */

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config.hpp"
#include "common/metrics.hpp"

namespace kinfra::proxy {

/** One route, ready for matching. */
struct route {
  std::string host;            ///< as configured ("" any, exact, or "*.suffix")
  std::string prefix;          ///< canonical path prefix
  std::size_t service_index;   ///< index into config::services
  std::string service;         ///< the service's name
  bool strip_prefix = false;
  bool json = false;                 ///< an API route: kinfra's own answers are JSON
  std::uint64_t max_body_bytes = 0;  ///< effective limit (route override or global)
  std::string label;                 ///< for /metrics and the access log (see router::label)
  route_stats* stats = nullptr;      ///< its /metrics series (null without a registry)
};

class router {
 public:
  /** `metrics`: when given, each route gets its series (kept across reloads by label). */
  explicit router(const config& cfg, metrics_registry* metrics = nullptr);

  /** The /metrics label of a route: its path prefix, after its host when it has one. */
  static std::string label(const route_config& r) { return r.label(); }

  /**
   * Finds the route for a request. Hosts are tried from the most specific: an exact host, then
   * `*.domain` patterns (longest domain first), then routes without a host; the first of these
   * groups that has a matching prefix wins, and within it the longest prefix.
   * @param host the Host header, lower case, without port (may be empty)
   * @param path a canonical path (see normalise_target)
   * @return the route, or nullptr when none matches (the proxy answers 404)
   */
  const route* match(std::string_view host, std::string_view path) const;

  /** True when some route names a host; when false, the proxy need not look at Host at all. */
  bool uses_hosts() const { return !exact_.empty() || !wildcard_.empty(); }

  /** True when `path` equals `prefix` or continues it with a '/' (so /api matches /api/x, not /apix). */
  static bool prefix_matches(std::string_view prefix, std::string_view path);

 private:
  using group = std::vector<const route*>;  // longest prefix first
  static const route* match_in(const group& g, std::string_view path);

  std::vector<route> routes_;
  std::unordered_map<std::string, group> exact_;
  std::vector<std::pair<std::string, group>> wildcard_;  // (".example.com", routes), longest first
  group any_;
};

}  // namespace kinfra::proxy
