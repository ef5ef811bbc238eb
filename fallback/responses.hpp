#pragma once
/**
 * @file The shapes of kinfra's own answers: JSON, HTML and plain text with the headers every admin
 * answer carries (no caching, no sniffing, no framing, no reading from other origins), and small
 * request helpers shared by the admin endpoints.
 */

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/local_responder.hpp"

namespace kinfra::fallback {

/** Compact JSON text; invalid UTF-8 becomes U+FFFD. Ends with a newline. */
std::string dump(const nlohmann::json& j);
std::string dump(const nlohmann::ordered_json& j);

local_response json_response(unsigned status, std::string body);
local_response html_response(unsigned status, std::string body);
local_response text_response(unsigned status, std::string body);
/** `{"success": false, "error": why}` with `status`. */
local_response json_error(unsigned status, std::string_view why);
local_response method_not_allowed(const char* allow);

bool is_get(const local_request& req);

/** The standard reason phrase of an HTTP status code ("Bad Gateway"), or "Error". */
std::string_view reason_phrase(unsigned status);

/** The value of `key` in a query string (`a=1&service=api`), percent-decoded; empty when absent. */
std::string query_param(std::string_view query, std::string_view key);

/** A whole number written in decimal (at most 19 digits: it fits); nullopt when empty or not one. */
std::optional<std::uint64_t> parse_decimal(std::string_view s);

}  // namespace kinfra::fallback
