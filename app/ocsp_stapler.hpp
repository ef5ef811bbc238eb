#pragma once
/**
 * @file Fetches the OCSP responses the listeners staple (proxy/ocsp_staples): for every
 * certificate in use that names a responder, a response at once, then again halfway through its
 * validity; a failed fetch is retried with backoff while the response already held is stapled
 * until it expires. Verified before use (signed by the issuer or its delegate, for this
 * certificate, current). Kept in state_dir/ocsp, so a restart staples at once even when the
 * responder is down. One thread of its own: a handshake never waits for a fetch.
 */

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "app/background_loop.hpp"
#include "proxy/ocsp_staples.hpp"

namespace kinfra {
class status_board;
}


namespace kinfra::app {

class ocsp_stapler {
 public:
  /** `state_dir`: where the responses are kept (the configuration's, asked each time). */
  ocsp_stapler(proxy::tls::ocsp_staples& staples, status_board& board, std::function<std::string()> state_dir);
  ~ocsp_stapler();
  ocsp_stapler(const ocsp_stapler&) = delete;
  ocsp_stapler& operator=(const ocsp_stapler&) = delete;

  void start();
  /** Ends the thread (a fetch in progress is abandoned within ~100 ms). */
  void stop();
  /** Looks at the certificates again now (one was loaded). */
  void wake();

 private:
  struct fetch_state {
    std::chrono::steady_clock::time_point due{};  ///< when to fetch next
    unsigned failures = 0;
  };
  /** Staples the answer kept in state_dir for `s`, when there is a good one. */
  void restore(const proxy::tls::ocsp_staples::subject& s, fetch_state& st, const std::string& dir);
  /** Fetches, checks, staples (or not) and keeps the answer for `s`; says how it went on the board. */
  void refresh(const proxy::tls::ocsp_staples::subject& s, fetch_state& st, const std::string& dir);
  /** Fetches what is due; returns when to look again. */
  std::chrono::steady_clock::time_point round();

  proxy::tls::ocsp_staples& staples_;
  status_board& board_;
  std::function<std::string()> state_dir_;
  std::map<std::string, fetch_state> states_;  ///< by fingerprint (the thread only)
  background_loop loop_;                       ///< (last: its thread uses everything above)
};

}  // namespace kinfra::app
