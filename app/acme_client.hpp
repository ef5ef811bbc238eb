#pragma once
/**
 * @file An ACME client (RFC 8555): an account key kept in state_dir/acme (0600), the account,
 * an order for a listener's names, HTTP-01 challenges (answered by the proxy on its plain
 * listeners through `acme_challenges`), finalisation with a CSR and the download of the chain,
 * written next to its key under state_dir/acme/certificates. JWS with ES256 (and HS256 for
 * External Account Binding), nonces and badNonce retries. Blocking: runs on the ACME thread.
 */

#include <functional>
#include <string>

#include "common/acme_challenges.hpp"
#include "common/config.hpp"

namespace kinfra::app::acme {

class client {
 public:
  /** `log`: one line per step, for kinfra's log. */
  client(const acme_config& cfg, std::string state_dir, acme_challenges& challenges,
         std::function<void(const std::string&)> log);

  /**
   * Gets a certificate for every name of the config and writes it (and its new key) to
   * cfg.cert_file/key_file. Throws std::runtime_error with what the CA said (or what failed).
   */
  void obtain();

 private:
  struct impl;
  const acme_config& cfg_;
  std::string state_dir_;
  acme_challenges& challenges_;
  std::function<void(const std::string&)> log_;
};

}  // namespace kinfra::app::acme
