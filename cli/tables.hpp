#pragma once
/** @file The CLI's tables, from the /__status__ document (exposed for tests). */

#include <string>

namespace kinfra::cli {

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
