#pragma once
/**
 * @file What a service (or kinfra as a whole) did over time, for the dashboard's
 * charts: fixed-size rings of points at 1 s resolution for the last 15 minutes and 1 min
 * resolution for the last 24 hours.
 *
 * Nothing here is on a request's path: a history is fed once a second with the cumulative
 * counters that already exist (requests, 5xx, the latency histogram, restarts) and turns their
 * differences into rates and latency quantiles. Memory is fixed when it is made.
 */

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.hpp"
#include "common/status_board.hpp"

namespace kinfra {

/** A series' cumulative counters at one moment: what a history is fed. */
struct history_counters {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  ///< 5xx answers
  /** Requests per duration bucket (see duration_buckets; the last one is "above"), not cumulative over buckets. */
  std::array<std::uint64_t, duration_buckets.size() + 1> buckets{};
  std::uint64_t restarts = 0;
  std::uint32_t connections = 0;  ///< open now
  std::uint8_t state = 0;         ///< the series' state now (a service_state, for a service)
};

/** One point: what happened during its second (or minute). */
struct history_point {
  std::int64_t at = 0;       ///< when it began, seconds since the epoch
  std::uint32_t seconds = 1;  ///< how long it covers (more than its step when a sample was late)
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  ///< 5xx answers
  double requests_per_s = 0;
  double errors_per_s = 0;
  /** Latency quantiles in ms, estimated from the histogram; absent without requests. */
  std::optional<double> p50_ms, p95_ms, p99_ms;
  std::uint32_t connections = 0;  ///< open at its end
  std::uint32_t restarts = 0;     ///< during it
  std::uint8_t state = 0;         ///< at its end
};

/**
 * The `q` quantile (0…1) of the requests counted in `buckets`, in ms: linear within the bucket it
 * falls in (the last, unbounded bucket counts as its lower bound). Absent when there are none.
 */
std::optional<double> bucket_quantile(const std::array<std::uint64_t, duration_buckets.size() + 1>& buckets,
                                      double q);

/** 15 minutes of 1 s points and 24 hours of 1 min points: about 94 KB, fixed. */
class history {
 public:
  static constexpr std::size_t second_points = 15 * 60;
  static constexpr std::size_t minute_points = 24 * 60;
  enum class span { minutes_15, hour_1, hours_24 };

  history() : seconds_(second_points), minutes_(minute_points) {}

  /**
   * The counters at `now` (seconds since the epoch), about once a second. The first call only
   * sets the baseline; a call in the same second as the last is ignored, and one from a clock set
   * back by more than 5 s sets a new baseline.
   */
  void sample(std::int64_t now, const history_counters& c);

  /** Oldest first: 1 s points for minutes_15, 1 min points for hour_1 (the last 60) and hours_24. */
  std::vector<history_point> points(span s) const;

 private:
  /** A point as a ring keeps it: 40 bytes instead of about 110 (rates are derived, NaN: no latency). */
  struct packed_point {
    std::int64_t at = 0;
    std::uint32_t requests = 0, errors = 0, connections = 0;
    float p50 = 0, p95 = 0, p99 = 0;
    std::uint16_t seconds = 1, restarts = 0;
    std::uint8_t state = 0;
  };
  /** A fixed-size ring of points. */
  class ring {
   public:
    explicit ring(std::size_t capacity) : slots_(capacity) {}
    void push(const history_point& p);
    /** The newest `n` (all when fewer), oldest first. */
    std::vector<history_point> last(std::size_t n) const;

   private:
    std::vector<packed_point> slots_;
    std::size_t first_ = 0;
    std::size_t size_ = 0;
  };

  /** The point for what the counters did from `from` (at `from_at`) to `to` (at `to_at`). */
  static history_point between(const history_counters& from, std::int64_t from_at, const history_counters& to,
                               std::int64_t to_at);

  ring seconds_;
  ring minutes_;
  std::optional<history_counters> last_;  ///< the last sample
  std::int64_t last_at_ = 0;
  history_counters minute_base_;    ///< the last sample before the current minute
  std::int64_t minute_base_at_ = 0;  ///< when it was taken
  std::int64_t minute_at_ = 0;       ///< when the current minute began (a multiple of 60)
};

/**
 * The histories of every service and of kinfra as a whole, sampled from the metrics registry
 * (requests, 5xx, latency) and the status board (state, restarts) once a second by the caller.
 * Thread-safe. Series are added as they appear and dropped when a reload removes their service or route.
 */
class history_registry {
 public:
  /**
   * Samples every series at `now` (seconds since the epoch). With `cfg`, only its services and
   * routes keep a history: those a reload removed are dropped (a name that comes back starts
   * anew from then).
   */
  void sample(std::int64_t now, const metrics_registry& metrics, const status_board* board,
              std::shared_ptr<const config> cfg = nullptr);
  /** A service's points (empty name: kinfra as a whole); absent for a name never seen. */
  std::optional<std::vector<history_point>> points(std::string_view service, history::span s) const;
  /** A route's points, by its label (as in /metrics and the status document's `by_route`). */
  std::optional<std::vector<history_point>> route_points(std::string_view label, history::span s) const;
  /** The services and the route labels sampled so far, in name order. */
  std::vector<std::string> service_names() const;
  std::vector<std::string> route_labels() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, history, std::less<>> services_;
  std::map<std::string, history, std::less<>> routes_;  ///< by label; requests and 5xx only
  history whole_;
  bool whole_started_ = false;
  std::map<std::string, std::uint64_t, std::less<>> last_restarts_;  ///< each service's, at the last sample
  std::uint64_t whole_restarts_ = 0;
  /** What the configuration last seen has (services and route labels); the rest is not kept. */
  void follow(std::shared_ptr<const config> cfg);
  std::shared_ptr<const config> followed_;
  std::set<std::string, std::less<>> live_services_, live_routes_;
  /** Names dropped once: their counters did not start from zero when they come back. */
  std::set<std::string, std::less<>> dropped_services_, dropped_routes_;
};

}  // namespace kinfra
