#pragma once
/**
 * @file The bodies of `POST /__action__/status/NAME` (the spec's update_service_status over HTTP)
 * and `POST /__action__/maintenance/NAME`, read into board changes with bounds: a push may not grow
 * what kinfra keeps or shows without limit. Beyond a bound the answer is 413 and nothing changes.
 *
 * A pushed `state` drives routing: `running` lets traffic through, anything else sends visitors to
 * the fallback page (until the supervisor's next transition or another push). Only clients that may
 * run actions may push (see access_policy.hpp).
 */

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status_board.hpp"

namespace kinfra::fallback {

inline constexpr std::size_t push_max_message_bytes = 4096;  ///< status_message, maintenance message
inline constexpr std::size_t push_max_steps = 32;
inline constexpr std::size_t push_max_step_bytes = 4096;    ///< one step's text
inline constexpr std::size_t push_max_lines = 1000;         ///< log lines in one push
inline constexpr std::size_t push_max_line_bytes = 4096;    ///< one log line

/** A parsed body, or why not: `status` 400 (malformed) or 413 (beyond a bound) with `error`. */
template <class T>
struct parsed_push {
  T value{};
  unsigned status = 0;  ///< 0: parsed
  std::string error;
};

/** `{"status_message", "state", "steps": [{text, status}], "logs": [{timestamp, level, message}]}` */
parsed_push<service_update> parse_status_push(std::string_view body);

/** `{"on": true, "message": "...", "expected": "30m"}`, or the same as query parameters. */
parsed_push<maintenance_info> parse_maintenance_push(std::string_view body, std::string_view query);

}  // namespace kinfra::fallback
