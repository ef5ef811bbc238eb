#pragma once
/**
 * @file The message rules a careful HTTP/1.1 proxy applies (RFC 9110 §7.6, RFC 9112 §6), as small
 * functions over Beast's parsed headers so that they can be tested without sockets.
 */

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/empty_body.hpp>

#include <string>
#include <string_view>

namespace kinfra::proxy {

namespace http = boost::beast::http;

/** How a request body is delimited, after validation. */
enum class body_framing { none, length, chunked };

/** The verdict on a request's framing headers. */
struct framing_check {
  unsigned status = 0;  ///< 0 when acceptable, else 400 or 501
  const char* reason = "";
  body_framing framing = body_framing::none;
};

/**
 * Checks Content-Length and Transfer-Encoding of a request (RFC 9112 §6.1–6.3): a single
 * Content-Length only; Transfer-Encoding only in HTTP/1.1, with `chunked` once and last;
 * never both. Anything ambiguous is 400, an unknown transfer coding 501.
 */
framing_check check_request_framing(const http::request_header<>& req);

/**
 * Checks the Host header: exactly one in HTTP/1.1, at most one in HTTP/1.0, with a valid value.
 * @param host_out receives the host in lower case without the port
 * @return false when the request must be rejected with 400
 */
bool check_host(const http::request_header<>& req, std::string& host_out);

/**
 * Removes the hop-by-hop fields (RFC 9110 §7.6.1): Connection and every field it names,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding and Upgrade.
 */
void remove_hop_by_hop(http::fields& fields);

/** True when the client prefers JSON to HTML (an Accept header that names JSON before HTML). */
bool prefers_json(const http::request_header<>& req);

/** True when a request with this method may be sent again after a failure (RFC 9110 §9.2.2). */
bool is_idempotent(http::verb method);

/** True when the Expect header asks for 100-continue; `bad` is set when it asks for anything else. */
bool expects_continue(const http::request_header<>& req, bool& bad);

}  // namespace kinfra::proxy
