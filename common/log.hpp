#pragma once
/** @file kinfra's own logging (spdlog), set up once by the executable. */

#include <string>

namespace kinfra {

/**
 * Routes spdlog's default logger to stderr with kinfra's format.
 * @param level one of trace, debug, info, warn, error, off
 * @return false when `level` is not a known level (info is used then)
 */
bool setup_logging(const std::string& level);

}  // namespace kinfra
