#pragma once
/**
 * @file `/__logs__/NAME?format=json|text`: a service's kept log lines, a page at a time, so that
 * no answer grows with the ring (`log_lines` may keep 100,000 lines).
 *
 * Query: `after=SEQ` (lines with a larger seq, oldest first), `tail=N` (the last N lines, at most
 * 10,000), `limit=N` (lines per page with `after`: default 1,000, at most 10,000). A page also stops at about 1 MiB of
 * text. JSON carries `next` (the seq to ask `after`) and `more` (later lines remain); text carries
 * them as the headers `X-Kinfra-Next` and `X-Kinfra-More`. An `after` beyond the newest line (a
 * cursor of an earlier kinfra process) gets `reset: true` (`X-Kinfra-Reset`) and `next` = the newest;
 * `boot` (`X-Kinfra-Boot`) names the process (see process_boot_id).
 */

#include <cstddef>
#include <string_view>

#include "common/local_responder.hpp"
#include "common/status_board.hpp"

namespace kinfra::fallback {

inline constexpr std::size_t logs_default_lines = 1000;
inline constexpr std::size_t logs_max_lines = 10000;
inline constexpr std::size_t logs_max_bytes = 1024 * 1024;

/** The answer for `name` (a service on `board`); `format` is "json" or "text". */
local_response render_logs_answer(const status_board& board, std::string_view name, std::string_view format,
                                  std::string_view query);

}  // namespace kinfra::fallback
