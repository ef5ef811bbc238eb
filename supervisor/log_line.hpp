#pragma once
/**
 * @file Turning a service's raw output into log lines: split into lines, made safe to store and
 * show (no ANSI colour codes, no control characters, valid UTF-8, bounded length), and given a
 * level detected from the usual spellings. Pure functions, no I/O.
 */

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/status_board.hpp"

namespace kinfra::supervisor {

/** Longest line kept; the rest of an over-long line is cut and marked. */
inline constexpr std::size_t max_line_bytes = 4096;

/**
 * Splits a byte stream into lines (`\n` or `\r\n`). A line longer than `max_line_bytes` is emitted
 * cut at that length with a marker, and the rest of it is skipped up to its newline.
 */
class line_splitter {
 public:
  using sink = std::function<void(std::string_view line)>;

  /** Feeds bytes; `out` is called for every complete line. */
  void feed(std::string_view data, const sink& out);
  /** At EOF: emits what is left as a last line, if anything. */
  void finish(const sink& out);

 private:
  std::string partial_;
  bool skipping_ = false;  ///< inside the rest of a line that was cut
};

/**
 * Makes a line safe to keep and display: removes ANSI escape sequences (colours, cursor moves),
 * drops other control characters except tab, and replaces invalid UTF-8 with U+FFFD.
 */
std::string sanitize_log_line(std::string_view raw);

/**
 * Detects the level of a log line from the usual spellings: `ERROR`, `[error]`, `error:`,
 * `level=error`, `"level":"error"` (also numeric levels of pino/bunyan), `WARN`/`WARNING`,
 * `INFO`/`NOTICE`, `DEBUG`/`TRACE`, `FATAL`/`CRITICAL`/`PANIC` (as error).
 * @return the detected level, or `fallback` when the line names none
 */
log_level detect_log_level(std::string_view line, log_level fallback = log_level::info);

/**
 * The line without a leading level word (`INFO x`, `[warn] x`, `ERROR: x`, `WARNING - x`), which the
 * dashboard, the log view and `kinfra logs` show as the line's level already; other lines as they
 * are (a level elsewhere in the line, or a level word and nothing after it, stays).
 */
std::string_view strip_level_prefix(std::string_view line);

/** strip_level_prefix, only when the word means `level` (a line whose `level=` says otherwise keeps it). */
std::string_view strip_level_prefix(std::string_view line, log_level level);

}  // namespace kinfra::supervisor
