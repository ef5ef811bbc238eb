#pragma once
/**
 * @file The fallback module's answer to the proxy: the pages a visitor sees instead of a
 * connection error. This version renders error pages; the dashboard, status API and
 * service pages build on it.
 */

#include "common/local_responder.hpp"
#include "common/status_board.hpp"

namespace kinfra::fallback {

/** Renders kinfra's own pages from the StatusBoard. Thread-safe: it only reads snapshots. */
class fallback_responder final : public local_responder {
 public:
  /** `board` (may be null: no service information) must outlive the responder. */
  explicit fallback_responder(const status_board* board = nullptr) : board_(board) {}

  // local_responder
  local_response error_page(unsigned status, std::string_view detail, const local_request& req) const override;
  std::optional<local_response> handle(const local_request& req) const override;

 private:
  local_response json_response(unsigned status, std::string body) const;
  std::optional<local_response> logs_page(const local_request& req) const;
  const status_board* board_;
};

/** The value of `key` in a query string (`a=1&service=api`), percent-decoded; empty when absent. */
std::string query_param(std::string_view query, std::string_view key);

/** Escapes text for HTML element content and attribute values. */
std::string html_escape(std::string_view text);

/** The standard reason phrase of an HTTP status code ("Bad Gateway"), or "Error". */
std::string_view reason_phrase(unsigned status);

}  // namespace kinfra::fallback
