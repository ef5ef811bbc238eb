#include "proxy/router.hpp"

#include <algorithm>

namespace kinfra::proxy {
namespace {

/** Below this many routes, a group is scanned (a few comparisons cost less than hashing). */
constexpr std::size_t scan_limit = 8;

}  // namespace

router::router(const config& cfg, metrics_registry* metrics) {
  text_map<std::size_t> service_at;
  for (std::size_t i = 0; i < cfg.services.size(); ++i) service_at.emplace(cfg.services[i].name, i);
  routes_.reserve(cfg.routes.size());
  for (const auto& r : cfg.routes) {
    route out;
    out.host = r.host;
    out.prefix = r.path;
    out.service = r.service;
    auto at = service_at.find(r.service);
    out.service_index = at != service_at.end() ? at->second : 0;
    out.strip_prefix = r.strip_prefix;
    out.json = r.json;
    out.max_body_bytes = r.max_body_bytes.value_or(cfg.limits.max_body_bytes);
    out.label = label(r);
    if (metrics) out.stats = &metrics->route(out.label, r.service);
    routes_.push_back(std::move(out));
  }
  // Pointers into routes_ are stable from here on: it is never resized again.
  for (const auto& r : routes_) {
    if (r.host.empty()) any_.ordered.push_back(&r);
    else if (r.host.starts_with("*.")) wildcard_[r.host.substr(1)].ordered.push_back(&r);  // ".example.com"
    else exact_[r.host].ordered.push_back(&r);
  }
  any_.finish();
  for (auto& [_, g] : exact_) g.finish();
  for (auto& [suffix, g] : wildcard_) {
    g.finish();
    longest_suffix_ = std::max(longest_suffix_, suffix.size());
  }
}

void router::group::finish() {
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const route* a, const route* b) { return a->prefix.size() > b->prefix.size(); });
  for (const route* r : ordered) {
    longest = std::max(longest, r->prefix.size());
    if (r->prefix == "/" && !root) root = r;
  }
  if (ordered.size() < scan_limit) return;
  // (A later route with the same prefix never wins: emplace keeps the first.)
  for (const route* r : ordered) by_prefix.emplace(r->prefix, r);
}

bool router::prefix_matches(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

const route* router::group::match(std::string_view path) const {
  if (by_prefix.empty()) {
    for (const route* r : ordered)
      if (prefix_matches(r->prefix, path)) return r;
    return nullptr;
  }
  // The prefixes that can match `path` are the path itself and the path cut before each '/'
  // (segment-aware matching): tried longest first, no longer than the longest prefix.
  if (path.size() <= longest)
    if (auto it = by_prefix.find(path); it != by_prefix.end()) return it->second;
  for (std::size_t end = std::min(path.size(), longest + 1); end > 1;) {
    end = path.rfind('/', end - 1);
    if (end == std::string_view::npos || end == 0) break;
    if (auto it = by_prefix.find(path.substr(0, end)); it != by_prefix.end()) return it->second;
  }
  return root;
}

const route* router::match(std::string_view host, std::string_view path) const {
  if (!host.empty() && uses_hosts()) {
    if (!exact_.empty()) {
      if (auto it = exact_.find(host); it != exact_.end())
        if (const route* r = it->second.match(path)) return r;
    }
    if (!wildcard_.empty()) {
      // The longest suffix first: ".b.example.com", then ".example.com", then ".com" (a suffix
      // needs something before it).
      // (From the longest suffix a route names: a long Host costs no more than that.)
      const std::size_t from = host.size() > longest_suffix_ ? host.size() - longest_suffix_ : 1;
      for (std::size_t dot = host.find('.', std::max<std::size_t>(from, 1)); dot != std::string_view::npos;
           dot = host.find('.', dot + 1)) {
        if (auto it = wildcard_.find(host.substr(dot)); it != wildcard_.end())
          if (const route* r = it->second.match(path)) return r;
      }
    }
  }
  return any_.match(path);
}

}  // namespace kinfra::proxy
