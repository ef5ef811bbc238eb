#pragma once
/**
 * @file ACME TLS-ALPN-01 (RFC 8737) on the TLS listeners: a ClientHello that offers `acme-tls/1`
 * for a name with a published challenge is answered with the challenge certificate (and that
 * protocol), and the connection ends after the handshake. Every other handshake is untouched.
 */

#include <memory>

#include <openssl/ssl.h>

namespace kinfra {
class local_responder;
}

namespace kinfra::proxy::tls {

/** The ALPN protocol of the challenge: "acme-tls/1". */
inline constexpr unsigned char acme_tls_alpn_protocol[] = {'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'};

/**
 * In a client-hello callback: when the ClientHello offers `acme-tls/1` and `responder` has a
 * challenge context for its server name, moves the handshake to that context. Returns whether it
 * did.
 */
bool use_acme_challenge(SSL* ssl, const local_responder& responder);

/** Whether the handshake that just ended was an ACME validation (`acme-tls/1` was chosen). */
bool is_acme_challenge(SSL* ssl);

/**
 * A server context that serves only `cert` (with `key`) and only `acme-tls/1`: what a challenge
 * published with acme_challenges::put_certificate holds. Throws std::runtime_error.
 */
std::shared_ptr<SSL_CTX> make_acme_challenge_context(X509* cert, EVP_PKEY* key);

}  // namespace kinfra::proxy::tls
