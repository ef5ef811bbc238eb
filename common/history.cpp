#include "common/history.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kinfra {

std::optional<double> bucket_quantile(const std::array<std::uint64_t, duration_buckets.size() + 1>& buckets,
                                      double q) {
  std::uint64_t total = 0;
  for (auto n : buckets) total += n;
  if (total == 0) return std::nullopt;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double below = 0;  // requests in the buckets before this one
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto n = static_cast<double>(buckets[i]);
    const double lower = i == 0 ? 0.0 : duration_buckets[i - 1];
    if (i == duration_buckets.size()) return lower * 1000.0;  // above the last bound: its lower bound
    if (n > 0 && below + n >= rank) {
      const double upper = duration_buckets[i];
      return (lower + (upper - lower) * ((rank - below) / n)) * 1000.0;
    }
    below += n;
  }
  return duration_buckets.back() * 1000.0;
}

namespace {

template <class T>
T saturated(std::uint64_t v) {
  return static_cast<T>(std::min<std::uint64_t>(v, std::numeric_limits<T>::max()));
}

float packed_ms(const std::optional<double>& v) { return v ? static_cast<float>(*v) : std::nanf(""); }

std::optional<double> unpacked_ms(float v) {
  if (std::isnan(v)) return std::nullopt;
  return static_cast<double>(v);
}

}  // namespace

void history::ring::push(const history_point& p) {
  packed_point& slot = slots_[(first_ + size_) % slots_.size()];
  slot = {p.at,
          saturated<std::uint32_t>(p.requests),
          saturated<std::uint32_t>(p.errors),
          p.connections,
          packed_ms(p.p50_ms),
          packed_ms(p.p95_ms),
          packed_ms(p.p99_ms),
          saturated<std::uint16_t>(p.seconds),
          saturated<std::uint16_t>(p.restarts),
          p.state};
  if (size_ < slots_.size()) ++size_;
  else first_ = (first_ + 1) % slots_.size();
}

std::vector<history_point> history::ring::last(std::size_t n) const {
  n = std::min(n, size_);
  std::vector<history_point> out;
  out.reserve(n);
  for (std::size_t i = size_ - n; i < size_; ++i) {
    const packed_point& s = slots_[(first_ + i) % slots_.size()];
    history_point& p = out.emplace_back();
    p.at = s.at;
    p.seconds = s.seconds;
    p.requests = s.requests;
    p.errors = s.errors;
    p.requests_per_s = static_cast<double>(s.requests) / s.seconds;
    p.errors_per_s = static_cast<double>(s.errors) / s.seconds;
    p.p50_ms = unpacked_ms(s.p50);
    p.p95_ms = unpacked_ms(s.p95);
    p.p99_ms = unpacked_ms(s.p99);
    p.connections = s.connections;
    p.restarts = s.restarts;
    p.state = s.state;
  }
  return out;
}

history_point history::between(const history_counters& from, std::int64_t from_at, const history_counters& to,
                               std::int64_t to_at) {
  history_point p;
  p.at = from_at;
  p.seconds = static_cast<std::uint32_t>(std::max<std::int64_t>(1, to_at - from_at));
  // (Counters only grow; a smaller one would be a new series under an old name: counted from 0.)
  auto delta = [](std::uint64_t a, std::uint64_t b) { return b >= a ? b - a : b; };
  p.requests = delta(from.requests, to.requests);
  p.errors = delta(from.errors, to.errors);
  p.requests_per_s = static_cast<double>(p.requests) / p.seconds;
  p.errors_per_s = static_cast<double>(p.errors) / p.seconds;
  std::array<std::uint64_t, duration_buckets.size() + 1> during{};
  for (std::size_t i = 0; i < during.size(); ++i) during[i] = delta(from.buckets[i], to.buckets[i]);
  p.p50_ms = bucket_quantile(during, 0.50);
  p.p95_ms = bucket_quantile(during, 0.95);
  p.p99_ms = bucket_quantile(during, 0.99);
  p.connections = to.connections;
  p.restarts = static_cast<std::uint32_t>(delta(from.restarts, to.restarts));
  p.state = to.state;
  return p;
}

void history::sample(std::int64_t now, const history_counters& c) {
  // The first sample, or the system clock set back (more than a moment): a new baseline, so
  // that sampling goes on from the new time instead of waiting for the old one.
  if (!last_ || now < last_at_ - 5) {
    last_ = c;
    last_at_ = now;
    minute_base_ = c;
    minute_base_at_ = now;
    minute_at_ = now - now % 60;
    return;
  }
  if (now <= last_at_) return;
  seconds_.push(between(*last_, last_at_, c, now));
  // A minute closes on the first sample of a later one, which reports the minute's last second:
  // a minute point holds exactly the 1 s points labelled with its seconds.
  const std::int64_t minute = now - now % 60;
  if (minute > minute_at_) {
    history_point m = between(minute_base_, minute_base_at_, c, now);
    m.at = minute_at_;
    minutes_.push(m);
    minute_base_ = c;
    minute_base_at_ = now;
    minute_at_ = minute;
  }
  last_ = c;
  last_at_ = now;
}

std::vector<history_point> history::points(span s) const {
  switch (s) {
    case span::minutes_15: return seconds_.last(second_points);
    case span::hour_1: return minutes_.last(60);
    case span::hours_24: return minutes_.last(minute_points);
  }
  return {};
}

void history_registry::follow(std::shared_ptr<const config> cfg_ptr) {
  followed_ = std::move(cfg_ptr);
  const config& cfg = *followed_;
  live_services_.clear();
  live_routes_.clear();
  for (const auto& svc : cfg.services) live_services_.insert(svc.name);
  for (const auto& r : cfg.routes) live_routes_.insert(r.label());
  auto drop = [](auto& series, const auto& live, auto& dropped) {
    for (auto it = series.begin(); it != series.end();) {
      if (live.count(it->first)) {
        ++it;
        continue;
      }
      dropped.insert(it->first);
      it = series.erase(it);
    }
  };
  drop(services_, live_services_, dropped_services_);
  drop(routes_, live_routes_, dropped_routes_);
  std::erase_if(last_restarts_, [&](const auto& kv) { return !live_services_.count(kv.first); });
}

void history_registry::sample(std::int64_t now, const metrics_registry& metrics, const status_board* board,
                              std::shared_ptr<const config> cfg) {
  std::map<std::string, history_counters, std::less<>> by_service;
  std::map<std::string, history_counters, std::less<>> by_route;
  history_counters whole;
  metrics.each_route([&](const route_stats& r) {
    const auto t = r.sum();
    // kinfra's own page for a service stopped on purpose is not the service's error (as on the dashboard).
    const std::uint64_t errors = r.route() != metrics_registry::fallback_route ? t.by_class[5] : 0;
    std::uint64_t requests = 0;  // (from the histogram, so that a point's latency and count agree)
    for (auto n : t.buckets) requests += n;
    history_counters* route = r.route() != metrics_registry::fallback_route ? &by_route[r.route()] : nullptr;
    for (auto* c : {&whole, &by_service[r.service()], route}) {
      if (!c) continue;
      c->requests += requests;
      c->errors += errors;
      for (std::size_t i = 0; i < t.buckets.size(); ++i) c->buckets[i] += t.buckets[i];
    }
  });
  metrics.each_service([&](const service_stats& s) {
    by_service[s.name()].connections = static_cast<std::uint32_t>(s.in_flight());
  });
  whole.connections = static_cast<std::uint32_t>(metrics.open_connections());
  std::shared_ptr<const board_snapshot> snapshot = board ? board->snapshot() : nullptr;
  std::lock_guard lock(mutex_);
  if (cfg && cfg != followed_) follow(std::move(cfg));
  if (snapshot) {
    for (const auto& s : snapshot->services) {
      auto& c = by_service[s.name];
      c.restarts = s.restarts;
      c.state = static_cast<std::uint8_t>(s.state);
      // kinfra's restarts add up what each service's count grew by: a service removed, or its
      // count started again, takes nothing away and adds no false restarts.
      auto [it, fresh] = last_restarts_.try_emplace(s.name, s.restarts);
      if (!fresh) whole_restarts_ += s.restarts >= it->second ? s.restarts - it->second : s.restarts;
      it->second = s.restarts;
    }
  }
  whole.restarts = whole_restarts_;
  // A series starts from zero (its counters did, when it was made): what it counted before its
  // first sample shows in the first second instead of vanishing into the baseline. One that a
  // reload removed and another brought back starts from its counters now.
  if (!whole_started_) {
    whole_.sample(now - 1, history_counters{});
    whole_started_ = true;
  }
  auto feed = [&](auto& series, const auto& counters, const auto& live, auto& dropped) {
    for (const auto& [name, c] : counters) {
      if (followed_ && !live.count(name)) continue;
      auto it = series.find(name);
      if (it == series.end()) {
        it = series.emplace(name, history()).first;
        const bool again = dropped.erase(name) > 0;
        history_counters base = again ? c : history_counters{};
        it->second.sample(now - 1, base);
      }
      it->second.sample(now, c);
    }
  };
  feed(services_, by_service, live_services_, dropped_services_);
  whole_.sample(now, whole);
  feed(routes_, by_route, live_routes_, dropped_routes_);
}

std::optional<std::vector<history_point>> history_registry::route_points(std::string_view label, history::span s) const {
  std::lock_guard lock(mutex_);
  auto it = routes_.find(label);
  if (it == routes_.end()) return std::nullopt;
  return it->second.points(s);
}

std::vector<std::string> history_registry::service_names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, h] : services_) out.push_back(name);
  return out;
}

std::vector<std::string> history_registry::route_labels() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [label, h] : routes_) out.push_back(label);
  return out;
}

std::optional<std::vector<history_point>> history_registry::points(std::string_view service, history::span s) const {
  std::lock_guard lock(mutex_);
  if (service.empty()) return whole_.points(s);
  auto it = services_.find(service);
  if (it == services_.end()) return std::nullopt;
  return it->second.points(s);
}

}  // namespace kinfra
