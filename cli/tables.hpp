#pragma once
/** @file The CLI's tables, from the /__status__ document (exposed for tests). */

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace kinfra::cli {

/**
 * `text` safe to print on a terminal: control characters (C0, DEL, C1) shown as `\xHH` or
 * `\u00HH` instead of acting (a log line or a pushed status could otherwise move the cursor,
 * retitle the window or hide text); a line break is kept only with `keep_newlines`.
 */
std::string printable(std::string_view text, bool keep_newlines = false);

/** `j[key]` as printable text (a number or a boolean as JSON writes it); `fallback` when absent or null. */
std::string str(const nlohmann::json& j, const char* key, const char* fallback = "-");

/** One row per service, like `docker ps`, columns aligned; then the reload errors, if any. */
std::string format_status_table(const std::string& status_json);

/** The routes (host, path, strip, service, state, traffic), the listeners and the certificates. */
std::string format_routes_table(const std::string& status_json);

/**
 * The events of a /__events__ document, one per line: local time, level, service (or "kinfra"),
 * message, and who asked; the detail indented below (a refused reload's errors).
 */
std::string format_events(const std::string& events_json);

}  // namespace kinfra::cli
