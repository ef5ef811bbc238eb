#pragma once
/**
 * @file The message rules a careful HTTP/1.1 proxy applies (RFC 9110 §7.6, RFC 9112 §6), as small
 * functions over what `request_parser` / `response_parser` recorded, so that they can be tested
 * without sockets.
 */

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/message_parser.hpp"

#include "proxy/proxy_error.hpp"

namespace kinfra::proxy {

/** How a request body is delimited, after validation. */
enum class body_framing { none, length, chunked };

/** The verdict on a request's framing headers. */
struct framing_check {
  std::optional<proxy_error> error;  ///< none when acceptable, else malformed or not_implemented
  const char* reason = "";
  /** 0 when acceptable, else the status for `error` (400 or 501). */
  unsigned status() const { return error ? status_of(*error) : 0; }
  body_framing framing = body_framing::none;
};

/**
 * Checks Content-Length and Transfer-Encoding of a request (RFC 9112 §6.1–6.3): a single
 * Content-Length only; Transfer-Encoding only in HTTP/1.1, with `chunked` once and last;
 * never both. Anything ambiguous is 400, an unknown transfer coding 501.
 * @param content_length the length Beast parsed and validated, if any
 */
framing_check check_request_framing(const request_head& req, std::optional<std::uint64_t> content_length);

/**
 * Checks the Host header: exactly one in HTTP/1.1, at most one in HTTP/1.0, with a valid value.
 * @param host_out receives the host in lower case without the port
 * @return false when the request must be rejected with 400
 */
bool check_host(const request_head& req, std::string& host_out);

/** True when the Expect header asks for 100-continue; `bad` is set when it asks for anything else. */
bool expects_continue(const request_head& req, bool& bad);

/** True when a request with this method may be sent again after a failure (RFC 9110 §9.2.2). */
bool is_idempotent(http::verb method);

/** What the proxy adds when it forwards a request. */
struct forward_info {
  std::string_view client_ip;      ///< appended to X-Forwarded-For
  std::string_view proto = "http"; ///< X-Forwarded-Proto
  std::string_view fallback_host;  ///< Host to send when the client sent none (HTTP/1.0)
  bool chunked = false;            ///< the body follows re-chunked
  bool upgrade = false;            ///< an upgrade request: keep Upgrade, send Connection: upgrade
};

/** The request line sent upstream: always HTTP/1.1, with the (possibly rewritten) target. */
void write_request_line(const request_head& req, std::string_view target, std::string& out);

/**
 * What follows the forwarded fields of a request: Host when the client sent none,
 * X-Forwarded-For (earlier hops, then this client), X-Forwarded-Proto, X-Forwarded-Host,
 * `Via: 1.1 kinfra`, the framing and upgrade fields the proxy chose, and the blank line.
 */
void write_request_tail(const request_head& req, const forward_info& f, std::string& out);

/** How the proxy frames a response for its client. */
struct response_head_info {
  bool chunked = false;        ///< the proxy sends the body chunked
  bool close = false;          ///< Connection: close
  bool keep_alive_10 = false;  ///< Connection: keep-alive (an HTTP/1.0 client that asked for it)
  bool upgrade = false;        ///< a 101 being tunnelled: Upgrade and Connection: upgrade
};

/** What follows the relayed fields of a response: framing, connection fields, the blank line. */
void write_response_tail(const response_head& res, const response_head_info& info, std::string& out);

}  // namespace kinfra::proxy
