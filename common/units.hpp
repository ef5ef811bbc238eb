#pragma once
/** @file Parsing and formatting of the units routes.yaml speaks: durations and byte sizes. */

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kinfra {

/** A byte count meaning "no limit". */
inline constexpr std::uint64_t unlimited_bytes = UINT64_MAX;

/**
 * Parses a duration such as `500ms`, `2s`, `1m30s`, `1h` or a bare number of seconds (`5`, `0.5`).
 * @return the duration, or nothing when the text is not a duration.
 */
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/**
 * Parses a byte size: a bare number of bytes, or a number with a unit. `KiB`, `MiB`, `GiB` and
 * nginx-style `k`, `m`, `g` are powers of 1024; `KB`, `MB`, `GB` are powers of 1000.
 * @return the size, or nothing when the text is not a size.
 */
std::optional<std::uint64_t> parse_size(std::string_view text);

/** Formats a duration for people, like the dashboard does: `45s`, `5m 32s`, `2h 3m`, `3d 4h`. */
std::string format_uptime(std::chrono::seconds d);

/** Formats a duration compactly for messages: `250ms`, `2s`, `1m30s`. */
std::string format_duration(std::chrono::milliseconds d);

}  // namespace kinfra
