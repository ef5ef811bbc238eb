#include "common/metrics.hpp"

#include <algorithm>
#include <charconv>

#include "common/access_log.hpp"
#include "common/status_board.hpp"
#include "common/version.hpp"

namespace kinfra {

route_stats::route_stats(std::string route, std::string service, unsigned workers)
    : route_(std::move(route)), service_(std::move(service)), cells_(std::max(1u, workers)) {}

void route_stats::record(unsigned worker, unsigned status, std::chrono::nanoseconds duration, std::uint64_t received,
                         std::uint64_t sent) noexcept {
  auto& c = cells_[worker];
  unsigned cls = status / 100;
  c.by_class[cls >= 1 && cls <= 5 ? cls : 0].add(1);
  const double seconds = std::chrono::duration<double>(duration).count();
  std::size_t b = 0;
  while (b < duration_buckets.size() && seconds > duration_buckets[b]) ++b;
  c.buckets[b].add(1);
  c.duration_us.add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(duration).count()));
  c.bytes_received.add(received);
  c.bytes_sent.add(sent);
}

std::uint64_t route_stats::totals::requests() const {
  std::uint64_t n = 0;
  for (auto v : by_class) n += v;
  return n;
}

route_stats::totals route_stats::sum() const {
  totals t;
  for (const auto& c : cells_) {
    for (std::size_t i = 0; i < t.by_class.size(); ++i) t.by_class[i] += c.by_class[i].get();
    for (std::size_t i = 0; i < t.buckets.size(); ++i) t.buckets[i] += c.buckets[i].get();
    t.duration_us += c.duration_us.get();
    t.bytes_received += c.bytes_received.get();
    t.bytes_sent += c.bytes_sent.get();
  }
  return t;
}

service_stats::service_stats(std::string name, unsigned workers) : name_(std::move(name)), cells_(std::max(1u, workers)) {}

std::uint64_t service_stats::connect_errors() const {
  std::uint64_t n = 0;
  for (const auto& c : cells_) n += c.connect_errors.get();
  return n;
}

std::uint64_t service_stats::in_flight() const {
  std::uint64_t began = 0, ended = 0;
  for (const auto& c : cells_) ended += c.ended.get();  // (ended first: never more ended than began)
  for (const auto& c : cells_) began += c.began.get();
  return began >= ended ? began - ended : 0;
}

metrics_registry::metrics_registry(unsigned workers)
    : workers_(std::max(1u, workers)),
      admin_(std::make_unique<route_stats>("(kinfra)", "", workers_)),
      unmatched_(std::make_unique<route_stats>("(none)", "", workers_)),
      connections_(workers_) {}

route_stats& metrics_registry::route(std::string_view route, std::string_view service) {
  std::string key;
  key.reserve(route.size() + 1 + service.size());
  key.append(route).append(1, '\0').append(service);
  std::lock_guard lock(mutex_);
  if (auto it = route_index_.find(key); it != route_index_.end()) return *it->second;
  auto& made = *routes_.emplace_back(std::make_unique<route_stats>(std::string(route), std::string(service), workers_));
  route_index_.emplace(std::move(key), &made);
  return made;
}

service_stats& metrics_registry::service(std::string_view name) {
  std::lock_guard lock(mutex_);
  for (auto& s : services_)
    if (s->name() == name) return *s;
  return *services_.emplace_back(std::make_unique<service_stats>(std::string(name), workers_));
}


std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

namespace {

/** The shortest text that reads back as the same double ("0.005", not "0.0050000000000000001"). */
std::string number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

class writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  /** `labels` is already formatted: `a="x",b="y"` (may be empty). */
  void sample(std::string_view name, std::string_view labels, std::uint64_t v) { line(name, labels, std::to_string(v)); }
  void sample(std::string_view name, std::string_view labels, double v) { line(name, labels, number(v)); }
  std::string take() { return std::move(out_); }

 private:
  void line(std::string_view name, std::string_view labels, const std::string& v) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += v;
    out_ += '\n';
  }
  std::string out_;
};

std::string label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + escape_label(value) + "\"";
}

}  // namespace

std::string metrics_registry::render(const status_board* board) const {
  std::vector<const route_stats*> routes;
  std::vector<const service_stats*> services;
  {
    std::lock_guard lock(mutex_);
    for (const auto& r : routes_) routes.push_back(r.get());
    for (const auto& s : services_) services.push_back(s.get());
  }
  routes.push_back(admin_.get());
  routes.push_back(unmatched_.get());
  std::vector<route_stats::totals> totals;
  totals.reserve(routes.size());
  for (const auto* r : routes) totals.push_back(r->sum());
  auto route_labels = [&](std::size_t i) { return label("route", routes[i]->route()) + "," + label("service", routes[i]->service()); };

  writer w;
  w.family("kinfra_build_info", "gauge", "The running kinfra's version.");
  w.sample("kinfra_build_info", label("version", version), std::uint64_t{1});
  w.family("kinfra_start_time_seconds", "gauge", "When kinfra started, in seconds since the Unix epoch.");
  w.sample("kinfra_start_time_seconds", "", unix_seconds(started_));

  w.family("kinfra_http_requests_total", "counter", "Requests answered, by route, service and status class.");
  static constexpr std::array<std::string_view, 6> classes = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (std::size_t i = 0; i < routes.size(); ++i) {
    for (std::size_t c = 0; c < classes.size(); ++c) {
      if (totals[i].by_class[c] == 0 && c != 2 && c != 5) continue;  // 2xx and 5xx always, the rest once seen
      w.sample("kinfra_http_requests_total", route_labels(i) + "," + label("code", classes[c]), totals[i].by_class[c]);
    }
  }
  w.family("kinfra_http_request_duration_seconds", "histogram",
           "Time from the first byte of a request to the last byte of its response, by route.");
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const std::string base = route_labels(i);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < totals[i].buckets.size(); ++b) {
      cumulative += totals[i].buckets[b];
      std::string le = b < duration_buckets.size() ? number(duration_buckets[b]) : "+Inf";
      w.sample("kinfra_http_request_duration_seconds_bucket", base + "," + label("le", le), cumulative);
    }
    w.sample("kinfra_http_request_duration_seconds_sum", base, static_cast<double>(totals[i].duration_us) / 1e6);
    w.sample("kinfra_http_request_duration_seconds_count", base, cumulative);
  }
  w.family("kinfra_http_received_bytes_total", "counter", "Bytes received from clients (heads and bodies), by route.");
  for (std::size_t i = 0; i < routes.size(); ++i)
    w.sample("kinfra_http_received_bytes_total", route_labels(i), totals[i].bytes_received);
  w.family("kinfra_http_sent_bytes_total", "counter", "Bytes sent to clients (heads and bodies), by route.");
  for (std::size_t i = 0; i < routes.size(); ++i)
    w.sample("kinfra_http_sent_bytes_total", route_labels(i), totals[i].bytes_sent);

  w.family("kinfra_upstream_connect_errors_total", "counter",
           "Connections to a service's targets that failed (refused, timed out, TLS handshake failed).");
  for (const auto* s : services) w.sample("kinfra_upstream_connect_errors_total", label("service", s->name()), s->connect_errors());
  w.family("kinfra_service_requests_in_flight", "gauge",
           "Requests and WebSocket tunnels to a service in flight now (each holds one upstream connection).");
  for (const auto* s : services) w.sample("kinfra_service_requests_in_flight", label("service", s->name()), s->in_flight());

  std::uint64_t opened = 0, closed = 0;
  for (const auto& c : connections_) closed += c.closed.get();  // (closed first: never more closed than opened)
  for (const auto& c : connections_) opened += c.opened.get();
  w.family("kinfra_connections_active", "gauge", "Client connections open now.");
  w.sample("kinfra_connections_active", "", opened >= closed ? opened - closed : std::uint64_t{0});
  w.family("kinfra_connections_total", "counter", "Client connections accepted.");
  w.sample("kinfra_connections_total", "", opened);
  std::uint64_t slept = 0, woke = 0;
  for (const auto& c : connections_) woke += c.dormant_out.get();
  for (const auto& c : connections_) slept += c.dormant_in.get();
  w.family("kinfra_connections_dormant", "gauge",
           "Keep-alive client connections idle long enough to be held without a session (a few hundred bytes each).");
  w.sample("kinfra_connections_dormant", "", slept >= woke ? slept - woke : std::uint64_t{0});

  if (board) {
    auto snap = board->snapshot();
    static constexpr std::array<service_state, 6> states = {service_state::stopped,  service_state::starting,
                                                            service_state::running,  service_state::unhealthy,
                                                            service_state::stopping, service_state::error};
    w.family("kinfra_service_state", "gauge", "1 for the state each service is in, 0 for the others.");
    for (const auto& s : snap->services)
      for (auto st : states)
        w.sample("kinfra_service_state", label("service", s.name) + "," + label("state", to_string(st)),
                 std::uint64_t{s.state == st ? 1u : 0u});
    w.family("kinfra_service_up", "gauge", "1 when the service takes traffic (running, healthy, not in maintenance).");
    for (const auto& s : snap->services)
      w.sample("kinfra_service_up", label("service", s.name), std::uint64_t{accepts_traffic(s) ? 1u : 0u});
    w.family("kinfra_service_maintenance", "gauge", "1 while the service is in maintenance.");
    for (const auto& s : snap->services)
      w.sample("kinfra_service_maintenance", label("service", s.name), std::uint64_t{s.maintenance.on ? 1u : 0u});
    w.family("kinfra_service_restarts_total", "counter", "Times kinfra started the service again after it ended.");
    for (const auto& s : snap->services)
      w.sample("kinfra_service_restarts_total", label("service", s.name), std::uint64_t{s.restarts});
    w.family("kinfra_service_health_checks_total", "counter", "Health checks run, by result.");
    for (const auto& s : snap->services) {
      auto [ok, failed] = board->health_checks(s.name);
      w.sample("kinfra_service_health_checks_total", label("service", s.name) + ",result=\"success\"", ok);
      w.sample("kinfra_service_health_checks_total", label("service", s.name) + ",result=\"failure\"", failed);
    }
    w.family("kinfra_service_start_time_seconds", "gauge", "When the service's current process started (0: not running).");
    for (const auto& s : snap->services)
      w.sample("kinfra_service_start_time_seconds", label("service", s.name),
               s.started_at && s.pid ? unix_seconds(*s.started_at) : 0.0);

    // Per process of a service (instances: N): the serving ones, by INSTANCE.
    auto each_instance = [&](const char* name, auto value) {
      for (const auto& s : snap->services)
        for (const auto& i : s.instances)
          if (i.part == instance_status::role::serving)
            w.sample(name, label("service", s.name) + "," + label("instance", std::to_string(i.index)), value(i));
    };
    w.family("kinfra_instance_up", "gauge", "1 when the instance is running and healthy.");
    each_instance("kinfra_instance_up",
                  [](const instance_status& i) { return std::uint64_t{i.state == service_state::running ? 1u : 0u}; });
    w.family("kinfra_instance_restarts_total", "counter", "Times kinfra started the instance again after it ended.");
    each_instance("kinfra_instance_restarts_total", [](const instance_status& i) { return std::uint64_t{i.restarts}; });
    w.family("kinfra_instance_start_time_seconds", "gauge", "When the instance's process started (0: not running).");
    each_instance("kinfra_instance_start_time_seconds", [&](const instance_status& i) {
      return i.started_at && i.pid ? unix_seconds(*i.started_at) : 0.0;
    });
    w.family("kinfra_instance_requests_in_flight", "gauge",
             "Requests and tunnels the proxy has open to the instance now (port: auto services).");
    each_instance("kinfra_instance_requests_in_flight", [](const instance_status& i) {
      return std::uint64_t(i.in_flight ? std::max(0, i.in_flight->load(std::memory_order_relaxed)) : 0);
    });

    w.family("kinfra_config_errors", "gauge", "Errors of the last attempt to load routes.yaml (0: it is in force).");
    w.sample("kinfra_config_errors", "", std::uint64_t{snap->config.errors.size()});
    w.family("kinfra_config_last_load_timestamp_seconds", "gauge",
             "When the routes.yaml in force was loaded, in seconds since the Unix epoch.");
    w.sample("kinfra_config_last_load_timestamp_seconds", "", unix_seconds(snap->config.loaded_at));
    w.family("kinfra_config_reloads_total", "counter", "Reloads of routes.yaml since start-up, by result.");
    w.sample("kinfra_config_reloads_total", "result=\"success\"", std::uint64_t{snap->config.reloads});
    w.sample("kinfra_config_reloads_total", "result=\"failure\"", std::uint64_t{snap->config.failures});

    w.family("kinfra_tls_certificate_expiry_seconds", "gauge",
             "When each certificate a listener serves expires, in seconds since the Unix epoch.");
    for (const auto& c : snap->config.certificates)
      w.sample("kinfra_tls_certificate_expiry_seconds",
               label("name", c.names.empty() ? std::string("-") : c.names.front()) + "," + label("listener", c.listener) +
                   "," + label("source", to_string(c.source)),
               unix_seconds(c.not_after));
    w.family("kinfra_acme_certificates_total", "counter", "Certificates requested from the ACME CA, by result.");
    for (const auto& [name, a] : snap->config.acme) {
      w.sample("kinfra_acme_certificates_total", label("name", name) + ",result=\"success\"", a.obtained_total);
      w.sample("kinfra_acme_certificates_total", label("name", name) + ",result=\"failure\"", a.failed_total);
    }
    w.family("kinfra_acme_next_renewal_seconds", "gauge", "When the ACME certificate is due for renewal (Unix seconds).");
    for (const auto& [name, a] : snap->config.acme)
      if (a.next_renewal) w.sample("kinfra_acme_next_renewal_seconds", label("name", name), unix_seconds(*a.next_renewal));
  }
  w.family("kinfra_access_log_dropped_total", "counter",
           "Access log lines dropped because the writer fell behind (never blocks a request).");
  w.sample("kinfra_access_log_dropped_total", "", access_log::dropped());
  return w.take();
}

namespace {

/** The rate between `base` (when there is one) and `now`'s totals `t`. */
service_rate rate_of(std::pair<std::uint64_t, std::uint64_t> t, const std::pair<std::uint64_t, std::uint64_t>* base,
                     double seconds) {
  service_rate r;
  r.requests = t.first;
  r.errors = t.second;
  if (seconds > 0) {
    auto [req0, err0] = base ? *base : std::pair<std::uint64_t, std::uint64_t>{0, 0};
    const std::uint64_t dreq = t.first - std::min(req0, t.first);
    r.requests_per_second = static_cast<double>(dreq) / seconds;
    if (dreq > 0) r.error_rate = static_cast<double>(t.second - std::min(err0, t.second)) / static_cast<double>(dreq);
  }
  return r;
}

template <class Map, class Key>
const typename Map::mapped_type* find_in(const Map& m, const Key& k) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace

std::pair<metrics_registry::sample, const metrics_registry::sample*> metrics_registry::sample_locked(
    std::chrono::steady_clock::time_point now) {
  using namespace std::chrono_literals;
  sample totals{now, {}, {}};
  for (const auto& r : routes_) {
    auto t = r->sum();
    // kinfra's own page for a service stopped on purpose is not the service's error.
    const std::uint64_t errors = r->route() != fallback_route ? t.by_class[5] : 0;
    auto& [requests, errs] = totals.by_service[r->service()];
    requests += t.requests();
    errs += errors;
    totals.by_route[{r->route(), r->service()}] = {t.requests(), errors};
  }
  if (samples_.empty() || now - samples_.back().at >= 1s) samples_.push_back(totals);
  // Keep the samples of the last ten seconds and, before them, only the newest older one.
  while (samples_.size() > 2 && now - samples_[1].at > 10s) samples_.pop_front();
  const sample* base = now - samples_.front().at >= 1s ? &samples_.front() : nullptr;
  return {std::move(totals), base};
}

void metrics_registry::each_route(const std::function<void(const route_stats&)>& f) const {
  std::lock_guard lock(mutex_);
  for (const auto& r : routes_) f(*r);
}

void metrics_registry::each_service(const std::function<void(const service_stats&)>& f) const {
  std::lock_guard lock(mutex_);
  for (const auto& s : services_) f(*s);
}

std::uint64_t metrics_registry::open_connections() const {
  std::uint64_t opened = 0, closed = 0;
  for (const auto& c : connections_) {
    opened += c.opened.get();
    closed += c.closed.get();
  }
  return opened >= closed ? opened - closed : 0;
}

std::map<std::string, service_rate, std::less<>> metrics_registry::rates(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto [totals, base] = sample_locked(now);
  const double dt = base ? std::chrono::duration<double>(now - base->at).count() : 0;
  std::map<std::string, service_rate, std::less<>> out;
  for (const auto& [name, t] : totals.by_service)
    out.emplace(name, rate_of(t, base ? find_in(base->by_service, name) : nullptr, dt));
  return out;
}

std::map<metrics_registry::route_key, service_rate> metrics_registry::route_rates(
    std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto [totals, base] = sample_locked(now);
  const double dt = base ? std::chrono::duration<double>(now - base->at).count() : 0;
  std::map<route_key, service_rate> out;
  for (const auto& [key, t] : totals.by_route)
    out.emplace(key, rate_of(t, base ? find_in(base->by_route, key) : nullptr, dt));
  return out;
}

}  // namespace kinfra
