#pragma once
/**
 * @file The interface through which the proxy asks the fallback module for answers it does not get
 * from a service: admin pages and error pages. Declared here so that `proxy` and `fallback` stay
 * independent of each other; `proxy/main.cpp` plugs the implementation in.
 */

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kinfra {

/** What the fallback module may know about the request it answers. */
struct local_request {
  std::string_view method;
  std::string_view target;   ///< as sent by the client
  std::string_view path;     ///< normalised path, no query
  std::string_view host;     ///< Host header without port, lower case
  std::string_view query;    ///< the query string, without '?'
  std::string_view service;  ///< the routed service, empty if none
  std::string_view client_ip;
  bool client_is_loopback = false;
  bool wants_json = false;   ///< the client prefers JSON over HTML (Accept header)
  std::string_view host_header;    ///< Host as sent (with port), for the Origin check
  std::string_view origin;         ///< the Origin header, if any
  std::string_view authorization;  ///< the Authorization header, if any
  std::string_view body;           ///< a small request body (admin actions), complete
};

/** A complete, small response; the proxy adds framing and connection headers. */
struct local_response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra fields, e.g. Retry-After
};

/** Implemented by the fallback module; called from proxy worker threads concurrently. */
class local_responder {
 public:
  virtual ~local_responder() = default;

  /**
   * The page for a request the proxy answers itself with an error status (4xx/5xx).
   * @param status the HTTP status code
   * @param detail one line for people, e.g. "the upstream did not answer within 60s"
   */
  virtual local_response error_page(unsigned status, std::string_view detail, const local_request& req) const = 0;

  /**
   * Answers kinfra's own paths (`/kinfra`, `/__status__`, …). The proxy asks only for paths where
   * `is_admin_path` is true, before routing.
   * @return the response, or nothing when the path is not one of kinfra's (then it is routed)
   */
  virtual std::optional<local_response> handle(const local_request& req) const = 0;

  /**
   * The page for a route whose service cannot take the request (starting, crashed, stopped, in
   * maintenance): HTML for browsers, JSON for API clients; always 503 with Retry-After.
   * The service is `req.service` (by name: a reload may reorder services).
   * @param json_route the route is marked `json: true`
   */
  virtual local_response unavailable_page(const local_request& req, bool json_route) const = 0;

  /**
   * The paths kinfra answers itself: `/kinfra` and below, and everything under `/__` (and the
   * configured `metrics_path`, which the proxy checks itself).
   */
  static bool is_admin_path(std::string_view path) {
    if (path.size() >= 3 && path[1] == '_' && path[2] == '_') return true;
    return path.starts_with("/kinfra") && (path.size() == 7 || path[7] == '/');
  }
};

}  // namespace kinfra
