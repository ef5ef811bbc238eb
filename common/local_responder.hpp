#pragma once
/**
 * @file The interface through which the proxy asks the fallback module for answers it does not get
 * from a service: admin pages and error pages. Declared here so that `proxy` and `fallback` stay
 * independent of each other; `proxy/main.cpp` plugs the implementation in.
 */

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
  std::string_view service;  ///< the routed service, empty if none
  bool wants_json = false;   ///< the client prefers JSON over HTML (Accept header)
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
};

}  // namespace kinfra
