#pragma once
/** @file The CLI's tables, from the /__status__ document (exposed for tests). */

#include <string>

namespace kinfra::cli {

/** One row per service, like `docker ps`, columns aligned; then the reload errors, if any. */
std::string format_status_table(const std::string& status_json);

/** The routes (host, path, strip, service, state, traffic), the listeners and the certificates. */
std::string format_routes_table(const std::string& status_json);

}  // namespace kinfra::cli
