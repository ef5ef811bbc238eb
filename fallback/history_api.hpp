#pragma once
/**
 * @file `GET /__history__`: what the dashboard's charts draw (see common/history.hpp).
 *
 * - `?service=NAME` (none: kinfra as a whole) or `?route=LABEL`, `range=15m|1h|24h`: the points,
 *   one object each (`t`, `seconds`, `requests`, `errors`, `requests_per_s`, `errors_per_s`,
 *   `p50_ms`, `p95_ms`, `p99_ms`, `restarts`, and `state` for a service, `connections` for kinfra).
 * - `?all=1&range=…&step=S`: every service, every route and kinfra at once, in columns
 *   (`t`, `requests_per_s`, `errors_per_s`, `p99_ms`), merged into steps of S seconds (a multiple
 *   of the range's own step; p99 is the highest of the merged points): the cards' sparklines in
 *   one request. Its step is at least 3 s, 1 min or 5 min (about 300 points a series at most).
 * `step=S` merges the single-series form the same way.
 */

#include <string_view>

#include "common/history.hpp"
#include "common/local_responder.hpp"
#include "common/status_board.hpp"

namespace kinfra::fallback {

/** The answer to `GET /__history__?query` (400 for a bad range or step, 404 for an unknown name). */
local_response render_history_answer(const history_registry& history, const status_board* board,
                                     std::string_view query);

/** `points` merged into steps of `step` seconds (aligned on multiples of it). */
std::vector<history_point> merge_points(const std::vector<history_point>& points, std::int64_t step);

}  // namespace kinfra::fallback
