#pragma once
/** @file One health check of a service: a TCP connect, or an HTTP GET answered 2xx/3xx. */

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>

#include "common/config.hpp"

namespace kinfra::supervisor {

struct probe_result {
  bool ok = false;
  std::string detail;  ///< "HTTP 200", "HTTP 503", "connection refused", "timed out after 1s", …
};

/**
 * Checks `address` once, within `timeout`. For `kind::http`, sends `GET path` with
 * `Connection: close` and reads the status line with Beast's parser; with `tls` (an https://
 * target) over TLS, without verifying the certificate: the check is about liveness, and the
 * proxy verifies the service's identity on every connection. Never throws.
 */
boost::asio::awaitable<probe_result> run_probe(health_config::kind kind, host_port address, std::string path,
                                               std::chrono::milliseconds timeout, bool tls = false);

}  // namespace kinfra::supervisor
