#pragma once
/**
 * @file `GET /__events__`: what happened, oldest first (see common/events.hpp).
 *
 * Query: `after=SEQ` (events with a larger seq), `service=NAME` (that service's only), `limit=N`
 * (default 200, at most 2,000: the latest ones when more). The answer carries `last_seq` (ask
 * `after` it next time) and `first_seq` (the oldest kept: a reader whose `after` is below it
 * missed some). An `after` beyond `last_seq` (a cursor of an earlier kinfra process) adds
 * `reset: true`: the reader should forget what it has and ask again from 0. `boot` names this
 * kinfra process (see process_boot_id): a reader that sees it change starts again too.
 */

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/events.hpp"
#include "common/local_responder.hpp"
#include "common/status_board.hpp"

namespace kinfra::fallback {

inline constexpr std::size_t events_default_limit = 200;
inline constexpr std::size_t events_max_limit = 2000;

/** One event as JSON: seq, time (UTC, ISO 8601), service (null: kinfra), kind, level, message, detail, by. */
nlohmann::ordered_json event_json(const event& e);

/** The answer to `GET /__events__?query`. */
local_response render_events_answer(const status_board& board, std::string_view query);

}  // namespace kinfra::fallback
