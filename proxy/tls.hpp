#pragma once
/**
 * @file TLS settings of the proxy: server contexts for HTTPS listeners (one per certificate,
 * chosen by SNI), client contexts for https:// upstreams, and the checks behind `kinfra check`.
 *
 * Contexts are built once per configuration and shared by every worker (an SSL_CTX is safe to
 * use from several threads). A new set replaces the old one for new connections only: open
 * connections keep a reference to the set they were accepted with.
 */

#include <boost/asio/ssl/context.hpp>

#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.hpp"

namespace kinfra {
class local_responder;
}
namespace kinfra::proxy::tls {
class ocsp_staples;
class staple_slot;
}

namespace kinfra::proxy::tls {

namespace ssl = boost::asio::ssl;

/** One thing wrong (or worth saying) about the TLS files of a configuration. */
struct problem {
  source_mark mark;
  std::string message;
  bool warning = false;
};

/** What one loaded certificate says about itself. */
struct certificate_info {
  std::vector<std::string> names;  ///< DNS names (lower case, possibly "*.example.com")
  std::string fingerprint;         ///< SHA-256, "AB:CD:…"
  std::string not_after;           ///< "2027-11-27 17:00 UTC"
  std::time_t not_after_time = 0;
  std::string issuer;              ///< the issuer's CN (or whole name)
  std::string cert_path;
  bool development = false;        ///< made by kinfra for `self_signed` (signed by its local CA)
  bool self_issued = false;        ///< its issuer is itself (a self-signed file)
  bool acme = false;               ///< obtained from the listener's ACME CA
  bool temporary = false;          ///< a stand-in until the ACME CA's certificate exists
  std::string ocsp_url;            ///< the OCSP responder it names ("" when none)
};

/** The server side of one HTTPS listener. */
class server_contexts {
 public:
  /** The context a handshake starts with; SNI may move it to another certificate's. */
  ssl::context& initial() { return *contexts_.front(); }
  const std::vector<certificate_info>& certificates() const { return info_; }

  /** Index of the certificate for `host_name` (exact, then wildcard), or 0, the default. */
  std::size_t select(std::string_view host_name) const;
  SSL_CTX* native(std::size_t i);
  /** Whether ALPN offers `h2` (before `http/1.1`); set before the first handshake. */
  void offer_h2(bool on) { h2_ = on; }
  bool offers_h2() const { return h2_; }

 private:
  friend std::shared_ptr<server_contexts> load_server_contexts(const listener_tls_config&, const std::string&,
                                                               std::vector<problem>&, const local_responder*,
                                                               ocsp_staples*);
  friend int on_client_hello(SSL*, int*, void*);
  std::vector<std::unique_ptr<ssl::context>> contexts_;
  std::vector<certificate_info> info_;
  std::unordered_map<std::string, std::size_t> exact_;
  std::unordered_map<std::string, std::size_t> wildcard_;  ///< "example.com" for "*.example.com"
  const local_responder* responder_ = nullptr;  ///< has the ACME TLS-ALPN-01 challenges (may be null)
  std::vector<std::shared_ptr<staple_slot>> staples_;  ///< OCSP responses of the certificates that have one
  bool h2_ = true;
};

/**
 * Loads (and for `self_signed`, makes or reuses under `state_dir/tls`) the certificates of a
 * listener. Returns null and appends to `problems` when a file is missing, unreadable, not PEM,
 * expired, or a key does not match its certificate; warnings are appended too. `responder`, when
 * given, is asked for ACME TLS-ALPN-01 challenges (a ClientHello offering `acme-tls/1`);
 * `staples`, when given, staples OCSP responses for the certificates that name a responder.
 */
std::shared_ptr<server_contexts> load_server_contexts(const listener_tls_config& tls, const std::string& state_dir,
                                                      std::vector<problem>& problems,
                                                      const local_responder* responder = nullptr,
                                                      ocsp_staples* staples = nullptr);

/** The client-hello callback of every listener context (ACME TLS-ALPN-01). */
int on_client_hello(SSL* ssl, int* alert, void* arg);

/**
 * The client context of a service with https:// targets (null when it has none). Problems: an
 * unreadable or empty CA file.
 */
std::shared_ptr<ssl::context> make_client_context(const upstream_tls_config& tls, std::vector<problem>& problems);

/**
 * Every TLS problem of `cfg` without changing anything on disk: certificate files are loaded and
 * checked; self-signed certificates are not made. For `kinfra check` and the start-up checks.
 */
std::vector<problem> check_config(const config& cfg);

/**
 * Prepares a client-side SSL object for a handshake: SNI and the host name check when
 * `verify`. Returns false (with the reason) when OpenSSL refuses.
 */
bool prepare_client(SSL* ssl, const std::string& server_name, bool verify);

/** Why a handshake failed, in words: the verification error when there is one. */
std::string describe_handshake_error(SSL* ssl, const boost::system::error_code& ec);


}  // namespace kinfra::proxy::tls
