#include "proxy/router.hpp"

#include <algorithm>

namespace kinfra::proxy {

router::router(const config& cfg, metrics_registry* metrics) {
  routes_.reserve(cfg.routes.size());
  for (const auto& r : cfg.routes) {
    route out;
    out.host = r.host;
    out.prefix = r.path;
    out.service = r.service;
    out.service_index = 0;
    for (std::size_t i = 0; i < cfg.services.size(); ++i)
      if (cfg.services[i].name == r.service) out.service_index = i;
    out.strip_prefix = r.strip_prefix;
    out.json = r.json;
    out.max_body_bytes = r.max_body_bytes.value_or(cfg.limits.max_body_bytes);
    out.label = label(r);
    if (metrics) out.stats = &metrics->route(out.label, r.service);
    routes_.push_back(std::move(out));
  }
  // Pointers into routes_ are stable from here on: it is never resized again.
  for (const auto& r : routes_) {
    if (r.host.empty()) {
      any_.push_back(&r);
    } else if (r.host.starts_with("*.")) {
      std::string suffix = r.host.substr(1);  // ".example.com"
      auto it = std::find_if(wildcard_.begin(), wildcard_.end(), [&](auto& w) { return w.first == suffix; });
      if (it == wildcard_.end()) {
        wildcard_.emplace_back(suffix, group{});
        it = std::prev(wildcard_.end());
      }
      it->second.push_back(&r);
    } else {
      exact_[r.host].push_back(&r);
    }
  }
  auto by_length = [](const route* a, const route* b) { return a->prefix.size() > b->prefix.size(); };
  std::stable_sort(any_.begin(), any_.end(), by_length);
  for (auto& [_, g] : exact_) std::stable_sort(g.begin(), g.end(), by_length);
  for (auto& [_, g] : wildcard_) std::stable_sort(g.begin(), g.end(), by_length);
  std::stable_sort(wildcard_.begin(), wildcard_.end(),
                   [](auto& a, auto& b) { return a.first.size() > b.first.size(); });
}

bool router::prefix_matches(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

const route* router::match_in(const group& g, std::string_view path) {
  for (const route* r : g)
    if (prefix_matches(r->prefix, path)) return r;
  return nullptr;
}

const route* router::match(std::string_view host, std::string_view path) const {
  if (!host.empty() && uses_hosts()) {
    if (!exact_.empty()) {
      auto it = exact_.find(std::string(host));
      if (it != exact_.end())
        if (const route* r = match_in(it->second, path)) return r;
    }
    for (const auto& [suffix, g] : wildcard_) {
      if (host.size() > suffix.size() && host.ends_with(suffix))
        if (const route* r = match_in(g, path)) return r;
    }
  }
  return match_in(any_, path);
}

}  // namespace kinfra::proxy
