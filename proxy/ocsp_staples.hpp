#pragma once
/**
 * @file OCSP stapling: the listeners' certificates that name an OCSP responder, and the responses
 * stapled to their handshakes. The proxy attaches each certificate as it loads it (start, reload,
 * ACME renewal); app/ocsp_stapler fetches the responses on its own thread and publishes them here;
 * a handshake that asks for one (status_request) reads its certificate's slot — one atomic load,
 * never a wait, never a fetch. No response yet (or an expired one): the handshake goes on without.
 */

#include <openssl/ssl.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kinfra::proxy::tls {

/** An OCSP response as stapled: DER, and the times it is valid for. */
struct staple {
  std::string der;
  std::time_t this_update = 0;
  std::time_t next_update = 0;  ///< not sent after this
  std::string status;           ///< "good", "revoked" or "unknown"
};

/**
 * One certificate's current response, read by its handshakes with one lock-free atomic load. The
 * last responses it pointed at are kept (fetches are at least a minute apart: a replaced one is
 * freed a quarter of an hour later at the earliest, long after any handshake copied it), so a
 * handshake never reads one being freed and never takes a lock.
 */
class staple_slot {
 public:
  /** The current response, or null. Valid as long as the slot. */
  const staple* get() const { return current_.load(std::memory_order_acquire); }
  /** (The fetcher's thread and the loading thread; never a handshake.) */
  void set(std::shared_ptr<const staple> s) {
    std::lock_guard lock(writer_);
    if (s) held_.push_back(s);
    if (held_.size() > 16) held_.erase(held_.begin());
    current_.store(s.get(), std::memory_order_release);
  }

 private:
  std::atomic<const staple*> current_{nullptr};
  std::mutex writer_;
  std::vector<std::shared_ptr<const staple>> held_;  ///< every response it pointed at
};

class ocsp_staples {
 public:
  /** A certificate in use that names a responder: what a fetch needs. */
  struct subject {
    std::string fingerprint;
    std::string url;
    std::shared_ptr<X509> leaf, issuer;
    std::shared_ptr<const staple> current;
  };

  /**
   * Staples responses for `leaf` (signed by `issuer`) to the handshakes of `ctx`, when the
   * certificate names an OCSP responder. Returns the slot, which `ctx`'s owner keeps (the
   * certificate counts as in use while it lives); null when there is nothing to staple.
   */
  std::shared_ptr<staple_slot> attach(SSL_CTX* ctx, X509* leaf, X509* issuer, const std::string& fingerprint);

  /** The certificates still in use (their slot alive), with their current responses. */
  std::vector<subject> subjects();
  /** A new response for the certificate with `fingerprint`: every handshake from now on sends it. */
  void publish(const std::string& fingerprint, std::shared_ptr<const staple> s);
  /** Called (on the loading thread) when a certificate not seen before was attached. */
  void on_new_certificate(std::function<void()> wake);

 private:
  struct entry {
    std::weak_ptr<staple_slot> slot;
    std::string url;
    std::shared_ptr<X509> leaf, issuer;
    std::shared_ptr<const staple> current;
  };
  std::mutex mutex_;
  std::map<std::string, entry> entries_;  ///< by fingerprint
  std::function<void()> wake_;
};

/** The OCSP responder URL a certificate names (its Authority Information Access), or "". */
std::string ocsp_url_of(X509* cert);

}  // namespace kinfra::proxy::tls
