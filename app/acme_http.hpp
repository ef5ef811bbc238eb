#pragma once
/**
 * @file A small blocking HTTP(S) client for the ACME client and the OCSP fetcher: one request per
 * connection, an https:// server verified against a CA file (or the system store), bounded in
 * time and size. Runs on their own threads, never on a proxy worker.
 */

#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace kinfra::app::acme {

struct http_reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  ///< names in lower case
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

/**
 * `method` (GET, HEAD, POST) to an https:// (or http://: OCSP responders) `url`; `ca_file`
 * empty: the system's store. The whole
 * exchange ends within `timeout`, and within ~100 ms of `stop` turning true (`stopped`). Throws
 * std::runtime_error saying what failed (connect, TLS, verification, timeout, a body over 1 MiB).
 */
http_reply http_request(const std::string& method, const std::string& url, const std::string& body,
                        const std::string& content_type, const std::string& ca_file, const std::atomic<bool>* stop,
                        std::chrono::seconds timeout = std::chrono::seconds(30));

/**
 * A `Retry-After` value (RFC 9110 §10.2.3: delta-seconds or an HTTP-date) as the wait from `now`;
 * nothing when it is neither. A date in the past is a wait of 0.
 */
std::optional<std::chrono::seconds> parse_retry_after(const std::string& value, std::time_t now);

/** The CA refused for now and said when to come back (a rate limit, an overload): not before `retry_after`. */
struct ca_busy : std::runtime_error {
  ca_busy(const std::string& what, std::chrono::seconds wait) : std::runtime_error(what), retry_after(wait) {}
  std::chrono::seconds retry_after;
};

/** Thrown when `stop` became true: kinfra is stopping, the request was abandoned. */
struct stopped : std::runtime_error {
  stopped() : std::runtime_error("kinfra is stopping") {}
};

}  // namespace kinfra::app::acme
