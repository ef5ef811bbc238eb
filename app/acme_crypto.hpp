#pragma once
/** @file The cryptography of the ACME client: keys, base64url, JWK, JWS signatures, the CSR. */

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kinfra::app::acme {

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey = std::unique_ptr<EVP_PKEY, pkey_free>;
struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
using x509 = std::unique_ptr<X509, x509_free>;

std::string base64url(std::string_view bytes);
std::string base64url_decode(std::string_view text);
std::string sha256(std::string_view bytes);

/** A new ECDSA P-256 key, or RSA 2048 with `rsa`. Throws. */
pkey make_key(bool rsa = false);
std::string key_to_pem(EVP_PKEY* key);
/** The key of a PEM file, or null. */
pkey read_key(const std::string& path);

/** The public JWK of an EC P-256 key, members in the order RFC 7638 hashes them. */
std::string jwk_json(EVP_PKEY* key);
/** base64url(SHA-256(JWK)): the account's thumbprint for key authorizations. */
std::string jwk_thumbprint(EVP_PKEY* key);

/** The ES256 signature (r‖s, 64 bytes) of `input`. Throws. */
std::string sign_es256(EVP_PKEY* key, std::string_view input);
/** HMAC-SHA256 of `input` with `key`. Throws. */
std::string hmac_sha256(std::string_view key, std::string_view input);

/** A DER certificate signing request for `names` (the first is the CN), signed by `key`. Throws. */
std::string make_csr_der(EVP_PKEY* key, const std::vector<std::string>& names);

/**
 * The TLS-ALPN-01 challenge certificate for `name` (RFC 8737 §3): self-signed by `key`, naming
 * only `name`, with the critical acmeIdentifier extension holding SHA-256(`key_authorization`).
 * Throws.
 */
x509 make_tls_alpn_certificate(EVP_PKEY* key, const std::string& name, const std::string& key_authorization);

}  // namespace kinfra::app::acme
