#pragma once
/**
 * @file Request counters for `/metrics` (Prometheus text format) and the dashboard's rates.
 *
 * Every series has one cell per proxy worker, on its own cache line, written only by that
 * worker's thread: recording a request is a handful of relaxed loads and stores, with no lock and
 * no locked instruction. A scrape sums the cells (relaxed loads, so a scrape may see a request
 * half recorded: its count before its duration, never a torn number).
 *
 * Series are created when a configuration is loaded and kept for the life of the process, so a
 * reload that keeps a route keeps its counters, and counters never go backwards.
 */

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kinfra {

class status_board;

/** A counter with a single writer thread: no read-modify-write instruction needed. */
class local_counter {
 public:
  void add(std::uint64_t n) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/** Upper bounds of the request duration histogram, in seconds (+Inf is implied). */
inline constexpr std::array<double, 11> duration_buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5,   1,    2.5,   5,    10};

/** One route's counters as one worker writes them. */
struct alignas(64) route_cell {
  std::array<local_counter, 6> by_class;  ///< [1..5] = 1xx..5xx, [0] anything else
  std::array<local_counter, duration_buckets.size() + 1> buckets;  ///< per bucket (not cumulative)
  local_counter duration_us;
  local_counter bytes_received;  ///< from clients (request head and body)
  local_counter bytes_sent;      ///< to clients (response head and body)
};

/** The counters of one route (or of kinfra's own pages, or of requests that matched none). */
class route_stats {
 public:
  route_stats(std::string route, std::string service, unsigned workers);

  /** Called by worker `worker` when a request is done. */
  void record(unsigned worker, unsigned status, std::chrono::nanoseconds duration, std::uint64_t received,
              std::uint64_t sent) noexcept;

  const std::string& route() const { return route_; }
  const std::string& service() const { return service_; }

  /** The cells summed. */
  struct totals {
    std::array<std::uint64_t, 6> by_class{};
    std::array<std::uint64_t, duration_buckets.size() + 1> buckets{};
    std::uint64_t duration_us = 0, bytes_received = 0, bytes_sent = 0;
    std::uint64_t requests() const;
  };
  totals sum() const;

 private:
  std::string route_;
  std::string service_;
  std::vector<route_cell> cells_;
};

/** Per-service counters the proxy writes (connect errors, requests in flight), one cell per worker. */
class service_stats {
 public:
  service_stats(std::string name, unsigned workers);
  void connect_error(unsigned worker) noexcept { cells_[worker].connect_errors.add(1); }
  /** A request (or WebSocket tunnel) to the service began / ended, on worker `worker`. */
  void began(unsigned worker) noexcept { cells_[worker].began.add(1); }
  void ended(unsigned worker) noexcept { cells_[worker].ended.add(1); }
  const std::string& name() const { return name_; }
  std::uint64_t connect_errors() const;
  /** Requests and tunnels to the service in flight now (each holds one upstream connection). */
  std::uint64_t in_flight() const;

 private:
  struct alignas(64) cell {
    local_counter connect_errors;
    local_counter began, ended;
  };
  std::string name_;
  std::vector<cell> cells_;
};

/** Per-worker connection counters. */
struct alignas(64) connection_cell {
  local_counter opened;
  local_counter closed;
  local_counter dormant_in;   ///< idle keep-alive connections handed from their session to a dormant hold
  local_counter dormant_out;  ///< dormant connections that woke up or closed
};

/** A service's traffic over the last seconds, for the dashboard. */
struct service_rate {
  std::uint64_t requests = 0;  ///< since start
  std::uint64_t errors = 0;    ///< 5xx answers since start (the service's or kinfra's)
  std::optional<double> requests_per_second;  ///< unknown until two samples a second apart exist
  std::optional<double> error_rate;           ///< 5xx / requests in the window; unknown with no requests
};

class metrics_registry {
 public:
  /** `workers`: how many proxy workers write cells (fixed for the life of the process). */
  explicit metrics_registry(unsigned workers);
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  unsigned workers() const { return workers_; }

  /**
   * The series of a route, created on first use; the same (route, service) always gives the same
   * object, which lives as long as the registry. Thread-safe.
   * @param route the label: the path prefix, with the host in front when the route has one
   */
  route_stats& route(std::string_view route, std::string_view service);
  /**
   * The route label of kinfra's own pages for a service stopped or in maintenance on purpose: in
   * /metrics under this label, and not among the service's errors on the dashboard.
   */
  static constexpr std::string_view fallback_route = "(stopped)";
  /** kinfra's own pages (dashboard, API, metrics). */
  route_stats& admin() { return *admin_; }
  /** Requests that matched no route, or were refused before routing (malformed, redirected). */
  route_stats& unmatched() { return *unmatched_; }
  service_stats& service(std::string_view name);
  connection_cell& connections(unsigned worker) { return connections_[worker]; }


  /**
   * The Prometheus text exposition (format 0.0.4) of every counter, plus, from `board` (when not
   * null), each service's state, restarts and health-check results and the configuration status.
   */
  std::string render(const status_board* board) const;

  /**
   * Requests per second and error rate of each service over about the last ten seconds. Samples
   * are taken when this is called (at most one a second), so rates are known from the second
   * call on. Thread-safe.
   */
  std::map<std::string, service_rate, std::less<>> rates(std::chrono::steady_clock::time_point now);

  /** Calls `f` with every route's series (not kinfra's own pages, not the unmatched). Thread-safe. */
  void each_route(const std::function<void(const route_stats&)>& f) const;
  /** Calls `f` with every service's series. Thread-safe. */
  void each_service(const std::function<void(const service_stats&)>& f) const;
  /** Client connections open now, over all workers. */
  std::uint64_t open_connections() const;

  /** A route's series: its label (see router::label) and its service. */
  using route_key = std::pair<std::string, std::string>;
  /** The same, per route (the requests it routed, the 5xx answered to them). Thread-safe. */
  std::map<route_key, service_rate> route_rates(std::chrono::steady_clock::time_point now);

 private:
  using counts = std::pair<std::uint64_t, std::uint64_t>;  // requests, errors
  struct sample {
    std::chrono::steady_clock::time_point at;
    std::map<std::string, counts, std::less<>> by_service;
    std::map<route_key, counts> by_route;
  };
  /** Sums the counters now, keeps them as a sample when the last is a second old; returns the sums
   *  and the sample rates are measured from (null when none is old enough). Needs mutex_. */
  std::pair<sample, const sample*> sample_locked(std::chrono::steady_clock::time_point now);

  const unsigned workers_;
  const std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
  mutable std::mutex mutex_;  ///< guards the series lists (not the counters) and samples_
  std::deque<std::unique_ptr<route_stats>> routes_;
  /** routes_ by "label\0service": a configuration of 10,000 routes finds its series without a scan. */
  std::map<std::string, route_stats*, std::less<>> route_index_;
  std::deque<std::unique_ptr<service_stats>> services_;
  std::unique_ptr<route_stats> admin_;
  std::unique_ptr<route_stats> unmatched_;
  std::vector<connection_cell> connections_;
  std::deque<sample> samples_;
};

/** Escapes a Prometheus label value (backslash, double quote, newline). */
std::string escape_label(std::string_view v);

}  // namespace kinfra
