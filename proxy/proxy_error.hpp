#pragma once
/**
 * @file Why the proxy answers a request itself instead of relaying the service's answer, and the
 * one place where each reason becomes an HTTP status.
 */

#include <cstdint>

namespace kinfra::proxy {

enum class proxy_error : std::uint8_t {
  // The client's request.
  malformed,              ///< 400: framing, Host, target, header syntax
  no_route,               ///< 404
  method_not_allowed,     ///< 405: CONNECT
  request_timeout,        ///< 408: the head or the body did not arrive in time
  length_required,        ///< 411: a body kinfra's own pages take only with a Content-Length
  too_large,              ///< 413: a body beyond the route's (or kinfra's pages') limit
  uri_too_long,           ///< 414
  expectation_failed,     ///< 417: an Expect other than 100-continue
  header_too_large,       ///< 431
  not_implemented,        ///< 501: an unknown transfer coding
  version_not_supported,  ///< 505: not HTTP/1.x, or a service that speaks HTTP/2 only
  // The service.
  bad_gateway,            ///< 502: refused, closed without answering, an invalid answer
  unavailable,            ///< 503: stopped, in maintenance, not accepting
  gateway_timeout,        ///< 504: no connection or no answer in time
};

/** The status a response for `e` carries. */
constexpr unsigned status_of(proxy_error e) {
  switch (e) {
    case proxy_error::malformed: return 400;
    case proxy_error::no_route: return 404;
    case proxy_error::method_not_allowed: return 405;
    case proxy_error::request_timeout: return 408;
    case proxy_error::length_required: return 411;
    case proxy_error::too_large: return 413;
    case proxy_error::uri_too_long: return 414;
    case proxy_error::expectation_failed: return 417;
    case proxy_error::header_too_large: return 431;
    case proxy_error::not_implemented: return 501;
    case proxy_error::version_not_supported: return 505;
    case proxy_error::bad_gateway: return 502;
    case proxy_error::unavailable: return 503;
    case proxy_error::gateway_timeout: return 504;
  }
  return 500;
}

}  // namespace kinfra::proxy
