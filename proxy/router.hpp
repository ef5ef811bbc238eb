#pragma once
/**
 * @file The compiled route table: host match first, then the longest segment-aware path prefix.
 *
 * Built once from a `config` and never changed, so any number of worker threads can share it.
 * Lookup is flat in the number of routes: an exact host and a `*.domain` suffix are hash
 * lookups (one per label of the Host), and within a host's routes the prefixes are looked up by
 * the request path's own segment boundaries, longest first (one hash lookup per segment); a
 * group of a few routes is scanned instead, which is cheaper at that size.
 */

#include <cstdint>
#include <functional>
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
  /** Hashes std::string and std::string_view alike (lookups without a copy). */
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  template <class T>
  using text_map = std::unordered_map<std::string, T, text_hash, std::equal_to<>>;

  /** The routes of one host (or of none): their prefixes, for the longest that matches a path. */
  struct group {
    std::vector<const route*> ordered;   ///< longest prefix first (file order among equals)
    text_map<const route*> by_prefix;    ///< the first route of each prefix (large groups only)
    std::size_t longest = 0;             ///< the longest prefix's length
    const route* root = nullptr;         ///< the "/" route, if any
    void finish();
    const route* match(std::string_view path) const;
  };

  std::vector<route> routes_;
  text_map<group> exact_;
  text_map<group> wildcard_;  ///< by suffix (".example.com")
  std::size_t longest_suffix_ = 0;  ///< a Host's suffixes longer than this are not looked up
  group any_;
};

}  // namespace kinfra::proxy
