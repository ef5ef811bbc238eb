#pragma once
/**
 * @file The fallback module's answer to the proxy: the pages a visitor sees instead of a
 * connection error. This version renders error pages; the dashboard, status API and
 * service pages build on it.
 */

#include "common/local_responder.hpp"

namespace kinfra::fallback {

/** Renders kinfra's own pages. Stateless and thread-safe. */
class fallback_responder final : public local_responder {
 public:
  // local_responder
  local_response error_page(unsigned status, std::string_view detail, const local_request& req) const override;
};

/** Escapes text for HTML element content and attribute values. */
std::string html_escape(std::string_view text);

/** The standard reason phrase of an HTTP status code ("Bad Gateway"), or "Error". */
std::string_view reason_phrase(unsigned status);

}  // namespace kinfra::fallback
