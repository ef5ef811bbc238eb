#pragma once
/**
 * @file Keeps the certificates of `tls: { acme: … }` listeners: obtains a missing one, renews one
 * at two thirds of its lifetime, retries a failure with backoff (the current certificate keeps
 * being served), tells the board how each stands, and asks for the listeners' certificates to be
 * loaded again when one changed. One thread of its own; never a proxy worker.
 */

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "app/background_loop.hpp"
#include "common/acme_challenges.hpp"
#include "common/config.hpp"

namespace kinfra {
class status_board;
struct acme_status;
}

namespace kinfra::app {

class acme_manager {
 public:
  /**
   * @param current the configuration in force (read on every round: reloads add and drop names)
   * @param reload_certificates called after a certificate was written: loads it into the listener;
   *        returns why it could not (empty: done)
   */
  acme_manager(std::function<std::shared_ptr<const config>()> current, status_board& board,
               std::function<std::string()> reload_certificates);
  ~acme_manager();
  acme_manager(const acme_manager&) = delete;
  acme_manager& operator=(const acme_manager&) = delete;

  /** The HTTP-01 answers the proxy serves (via the fallback responder). */
  acme_challenges& challenges() { return challenges_; }

  void start();
  /** Ends the thread (an order in progress is abandoned at its next step). */
  void stop();
  /** Looks at the configuration again now (after a reload). */
  void wake();

  /** When a certificate is renewed, as a share of its lifetime (2/3; KINFRA_ACME_RENEW_AT overrides). */
  static double renew_at();

 private:
  struct name_state {
    unsigned failures = 0;
    std::uint64_t obtained_total = 0, failed_total = 0;
    std::chrono::steady_clock::time_point retry_at{};
    // ACME Renewal Information, when the CA offers it: the moment chosen in its window.
    std::chrono::steady_clock::time_point ari_check{};  ///< when to ask the CA again
    std::string ari_cert;                               ///< the certificate (ARI id) it is about
    std::optional<std::chrono::system_clock::time_point> ari_start, ari_end, ari_time;
  };
  /**
   * Gets (or renews) the certificate of `acme` now; on failure sets when to try again. Returns
   * whether a certificate is there to load. Throws acme::stopped.
   */
  bool attempt(const acme_config& acme, const config& cfg, name_state& st, acme_status& status, bool renewing);
  static void counts(acme_status& status, const name_state& st);
  /** One round over every ACME listener; returns when to look again. */
  std::chrono::steady_clock::time_point round();
  /** When the stored certificate is due: the CA's ARI moment for it, else two thirds of its lifetime. */
  std::optional<std::chrono::system_clock::time_point> due(const acme_config& acme, const std::string& state_dir,
                                                            const name_state& st) const;
  /** Asks the CA for the stored certificate's renewal window, when it is time to (acme::stopped passes). */
  void check_renewal_info(const acme_config& acme, const std::string& state_dir, name_state& st);

  std::function<std::shared_ptr<const config>()> current_;
  status_board& board_;
  std::function<std::string()> reload_certificates_;
  bool pending_load_ = false;  ///< a written certificate is not loaded yet (the ACME thread only)
  acme_challenges challenges_;
  std::map<std::string, name_state> states_;  ///< by first name (the ACME thread only)
  background_loop loop_;                      ///< (last: its thread uses everything above)
};

}  // namespace kinfra::app
