#pragma once
/**
 * @file ACME Renewal Information (RFC 9773): when the CA would like a certificate renewed. A CA
 * that offers it (`renewalInfo` in its directory) suggests a window — earlier than usual when it
 * is about to revoke — and kinfra renews at a random moment inside it instead of at two thirds of
 * the lifetime. Runs on the ACME thread.
 */

#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

namespace kinfra::app::acme {

/** The ARI identifier of a certificate: base64url(its AKI keyIdentifier) "." base64url(its serial). */
std::string ari_cert_id(X509* cert);

struct renewal_window {
  std::chrono::system_clock::time_point start, end;
  std::string explanation;  ///< the CA's explanationURL, if any
  bool operator==(const renewal_window& o) const { return start == o.start && end == o.end; }
};

/** What asking the CA gave: its window (none when the CA does not offer ARI), and when to ask again. */
struct renewal_info {
  std::optional<renewal_window> window;
  std::chrono::seconds ask_again{std::chrono::hours(6)};
};

/**
 * Asks the CA of `directory` (its own TLS certificate verified with `ca_file`, or the system
 * store) for `cert`'s renewal window. Throws std::runtime_error when the CA offers ARI and the
 * answer is unusable (or acme::stopped).
 */
renewal_info fetch_renewal_info(const std::string& directory, const std::string& ca_file, X509* cert,
                                const std::atomic<bool>& stop);

/** "2025-01-02T03:04:05Z" (or with fractional seconds / an offset) as a time; nothing when it is not RFC 3339. */
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text);

}  // namespace kinfra::app::acme
