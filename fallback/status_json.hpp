#pragma once
/** @file The `/__status__` document, in exactly the shape of the spec. */

#include <chrono>
#include <string>
#include <string_view>

#include "common/metrics.hpp"
#include "common/status_board.hpp"

namespace kinfra::fallback {

/** How many log lines each service carries in `/__status__` (the dashboard shows the last 10). */
inline constexpr std::size_t status_log_lines = 10;

/** Each service's traffic (from metrics_registry::rates), by name. */
using service_rates = std::map<std::string, service_rate, std::less<>>;
/** Each route's traffic (from metrics_registry::route_rates), by (label, service). */
using route_rates = std::map<metrics_registry::route_key, service_rate>;

/**
 * Renders `/__status__`: the top-level fields describe `selected` (or the first service when
 * empty or unknown), `services` maps every service to its fields and last log lines, and
 * `timestamp` is now. Numbers the spec shows as strings (port, pid) are strings. With `rates`,
 * each service also has requests_total, errors_total, requests_per_second and error_rate. Besides
 * the spec's fields: `routes` (with `by_route`, each route's traffic), `listeners`, `certificates`
 * and `config`.
 */
std::string render_status_json(const status_board& board, std::string_view selected,
                               std::chrono::system_clock::time_point now, const service_rates* rates = nullptr,
                               const route_rates* by_route = nullptr);

/**
 * The part of one service's status a public fallback page may see (name, state, message, steps,
 * maintenance): what `/__status__?service=NAME` answers to a client that may not read the admin
 * surface. Empty when there is no such service.
 */
std::string render_public_status_json(const status_board& board, std::string_view service);

/** "2027-11-27T17:00:00Z". */
std::string format_utc(std::chrono::system_clock::time_point t);

/** `t` in local time, formatted with strftime's `pattern`. */
std::string format_local(std::chrono::system_clock::time_point t, const char* pattern);

/** "15:00:01": a log line's time as the spec shows it (local time), unless it came with its own. */
std::string log_timestamp(const log_entry& e);

/** "5m 32s" while a process runs (or a watched service is up), "-" otherwise. */
std::string uptime_text(const service_status& s, std::chrono::system_clock::time_point now);

}  // namespace kinfra::fallback
