#pragma once
/**
 * @file Small OpenSSL helpers shared by the TLS set-up and the development certificates: owning
 * handles, error text, and reading one certificate. Internal to proxy/.
 */

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kinfra::proxy::tls {

struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct bio_free {
  void operator()(BIO* b) const { BIO_free(b); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;

/** The last OpenSSL error as text, and clears the queue. */
std::string openssl_error();

/** A pem_password_cb that never prompts on the terminal (encrypted keys fail to load). */
int no_password(char*, int, int, void*);

/** "2027-11-27 17:00 UTC". */
std::string format_time(const ASN1_TIME* t);
std::string format_time(std::time_t t);
/** The same instant as a time_t (0 when it cannot be read). */
std::time_t to_time_t(const ASN1_TIME* t);

/** The SHA-256 fingerprint of a certificate, "AB:CD:…". */
std::string fingerprint(X509* x);

/** The subject's CN, else the whole subject on one line. */
std::string issuer_name(X509* x);

/** The first certificate of a PEM file; null when there is none (the error queue is cleared). */
x509_ptr read_first_cert(const std::string& path);
/** The private key of a PEM file; null when there is none. */
pkey_ptr read_private_key(const std::string& path);

/** Writes `data` to `path` with `mode`, replacing it atomically. Throws naming the file. */
void write_file_atomically(const std::string& path, const std::string& data, mode_t mode);

/** True for "127.0.0.1", "::1", …: a name that goes into a certificate as an IP address. */
bool is_ip_literal(const std::string& s);

}  // namespace kinfra::proxy::tls
