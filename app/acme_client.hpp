#pragma once
/**
 * @file An ACME client (RFC 8555): an account key kept in state_dir/acme (0600), the account,
 * an order for a listener's names, HTTP-01 or TLS-ALPN-01 challenges (answered by the proxy, on
 * its plain or its TLS listeners, through `acme_challenges`), finalisation with a CSR and the download of the chain,
 * written next to its key under state_dir/acme/certificates. JWS with ES256 (and HS256 for
 * External Account Binding), nonces and badNonce retries. Blocking: runs on the ACME thread.
 */

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "common/acme_challenges.hpp"
#include "common/config.hpp"

namespace kinfra::app::acme {

class client {
 public:
  /** `log`: one line per step, for kinfra's log. */
  /** `stop`: when it turns true, the order is abandoned within ~100 ms (acme::stopped is thrown). */
  client(const acme_config& cfg, std::string state_dir, acme_challenges& challenges,
         std::function<void(const std::string&)> log, const std::atomic<bool>& stop);

  /**
   * Gets a certificate for every name of the config and writes it with its new key, in one file
   * (cfg.cert_file, 0600), replaced at once. `still_needed` is asked again once the state_dir lock
   * is held (another kinfra may have just written one): false ends here. Throws
   * std::runtime_error with what the CA said (or what failed).
   * @param challenge_order the challenge types to use ("http-01", "tls-alpn-01"), preferred first
   * @param replaces the ARI id of the certificate this one replaces (RFC 9773 §5), or ""
   * @return whether a certificate was written
   */
  bool obtain(const std::function<bool()>& still_needed, const std::vector<std::string>& challenge_order,
              const std::string& replaces = "");

 private:
  struct impl;
  const acme_config& cfg_;
  std::string state_dir_;
  acme_challenges& challenges_;
  std::function<void(const std::string&)> log_;
  const std::atomic<bool>& stop_;
};

}  // namespace kinfra::app::acme
