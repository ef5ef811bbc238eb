#pragma once
/**
 * @file The interface through which the proxy asks the fallback module for answers it does not get
 * from a service: admin pages and error pages. Declared here so that `proxy` and `fallback` stay
 * independent of each other; the composition root (app/) plugs the implementation in.
 */

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

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
  bool tls = false;          ///< the connection is HTTPS
  bool wants_json = false;   ///< the client prefers JSON over HTML (Accept header)
  std::string_view host_header;    ///< Host as sent (with port), for the Origin check
  std::string_view origin;         ///< the Origin header, if any
  std::string_view authorization;  ///< the Authorization header, if any
  std::string_view fetch_site;     ///< Sec-Fetch-Site, if any (browsers: cross-site, same-site, same-origin, none)
  std::string_view challenge;      ///< X-Kinfra-Challenge, if any (see common/admin_proof.hpp)
  std::string_view user_agent;     ///< User-Agent, if any
  std::string_view local_address;  ///< the address the connection reached (`127.0.0.1:9000`); admin requests only
  std::string_view body;           ///< a small request body (admin actions), complete
};

/**
 * A response that goes on until the client leaves or kinfra stops: Server-Sent Events
 * (`/__stream__`). The proxy sends the head, then asks `next` for bytes whenever `version`
 * changed and at least once a second, and writes them; it never asks again before the last
 * bytes were written, so a slow client holds one batch, never a growing queue.
 */
class local_stream {
 public:
  virtual ~local_stream() = default;
  /** Changes whenever `next` may have something new; cheap, any thread. */
  virtual std::uint64_t version() const = 0;
  /** What to send now (may be empty); called off the proxy's workers, one call at a time. */
  virtual std::string next() = 0;
  /** Nothing more will come (its subject is gone, its permission may have changed): end it. Any thread. */
  virtual bool done() const { return false; }
};

/** A complete, small response; the proxy adds framing and connection headers. */
struct local_response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  /** When set, the body instead of `body`: bytes shared with a cache, sent without a copy. */
  std::shared_ptr<const std::string> shared_body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra fields, e.g. Retry-After
  /**
   * For an unavailable page: false when the service is out of traffic on purpose (stopped by an
   * operator, in maintenance), so the 503 is not counted as the service's error.
   */
  bool service_fault = true;
  /** When set, the body is this stream's bytes, sent as they come (`body` is unused). */
  std::shared_ptr<local_stream> stream;

  std::string_view body_view() const { return shared_body ? std::string_view(*shared_body) : std::string_view(body); }
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
   * Called on a proxy worker for kinfra's own paths (`is_admin_path`, before routing): answers
   * what is quick and small — refusals (Host, client, token, method, unknown path), the cached
   * `/__status__`, one service's public status, page shells. Nothing when the answer needs work
   * that may block or grow (a reload, actions, logs, metrics, the dashboard, a status render):
   * the proxy then calls `handle` off its workers and waits for it without blocking them.
   */
  virtual std::optional<local_response> handle_quick(const local_request& req) const = 0;

  /** The full answer for kinfra's own paths; may block (a reload) or take a while. */
  virtual local_response handle(const local_request& req) const = 0;

  /**
   * The page for a route whose service cannot take the request (starting, crashed, stopped, in
   * maintenance): HTML for browsers, JSON for API clients; always 503 with Retry-After.
   * The service is `req.service` (by name: a reload may reorder services).
   * @param json_route the route is marked `json: true`
   */
  virtual local_response unavailable_page(const local_request& req, bool json_route) const = 0;

  /**
   * The key authorization of a pending ACME HTTP-01 challenge (`/.well-known/acme-challenge/TOKEN`),
   * when kinfra's ACME client published one for `token`. Cheap when there is none.
   */
  virtual std::optional<std::string> acme_challenge(std::string_view token) const {
    (void)token;
    return std::nullopt;
  }

  /**
   * The TLS context holding the ACME TLS-ALPN-01 challenge certificate for `name` (RFC 8737), when
   * kinfra's ACME client published one; null otherwise, cheaply when there is none.
   */
  virtual std::shared_ptr<ssl_ctx_st> acme_tls_alpn_context(std::string_view name) const {
    (void)name;
    return nullptr;
  }

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
