#pragma once
/**
 * @file Certificates kinfra makes itself, for development: a local certificate authority made once
 * in `state_dir/ca` (which `kinfra trust` adds to the system's trust store), and the leaf
 * certificates of `tls: self_signed` listeners, signed by it, for their names plus localhost,
 * 127.0.0.1 and ::1. A client that trusts the local CA verifies https://localhost:PORT and
 * https://127.0.0.1:PORT without flags.
 */

#include <string>
#include <utility>
#include <vector>

namespace kinfra::proxy::tls {

/** Where a local CA's certificate and key are. */
struct ca_files {
  std::string cert;  ///< PEM, 0644: what clients trust
  std::string key;   ///< PEM, 0600: never leaves state_dir
};

/** The local CA's files under `state_dir` (whether they exist or not). */
ca_files local_ca_paths(const std::string& state_dir);

/**
 * Makes the local CA of `state_dir` when it is missing, unreadable or expires within 30 days
 * (valid ten years). Returns true when it made one. Safe against another kinfra doing the same
 * (a lock file). Throws std::runtime_error naming the file.
 */
bool ensure_local_ca(const std::string& state_dir);

/** The name the local CA of this user on this machine gets: "kinfra local CA (alice@laptop)". */
std::string local_ca_name();

/** The subject CN of the first certificate in `cert_path` ("" when there is none). */
std::string subject_cn_of(const std::string& cert_path);

/** `names`, then localhost, 127.0.0.1 and ::1, each once. */
std::vector<std::string> development_names(const std::vector<std::string>& names);

/** A development certificate's files, and what had to be made for it. */
struct development_certificate {
  std::string cert, key;
  bool made = false;     ///< the certificate was made now
  bool made_ca = false;  ///< so was the local CA
  bool replaced_ca = false;  ///< …in place of an earlier one: clients that trusted that must trust it again
};

/**
 * The development certificate for `names` (see development_names) under `state_dir/tls`, signed by
 * the local CA (made if needed): reused while it stays valid for 30 more days, matches its key and
 * was signed by the CA in place; made again otherwise. The folders must belong to this user.
 * Throws std::runtime_error naming the file.
 */
development_certificate ensure_development_certificate(const std::vector<std::string>& names,
                                                       const std::string& state_dir);

/** True when the pair is valid for `days` more days (0: now) and the key is the certificate's own. */
bool usable_pair(const std::string& cert_path, const std::string& key_path, long days);

/**
 * A stand-in certificate for `names` (self-signed, one week) under `state_dir/acme/temporary`, made
 * when missing or expiring: an ACME listener serves it until its first real certificate exists,
 * so a handshake never fails for want of one. Returns {cert, key}. Throws naming the file.
 */
std::pair<std::string, std::string> ensure_temporary_certificate(const std::vector<std::string>& names,
                                                                 const std::string& state_dir);

/** True when the first certificate of `cert_path` carries a valid signature of the one in `ca_path`. */
bool signed_by(const std::string& cert_path, const std::string& ca_path);

/**
 * Makes a certificate and key (ECDSA P-256) for `names` and writes them as PEM to `cert_path`
 * (0644) and `key_path` (0600). Self-signed, or signed by `issuer_cert`/`issuer_key` (PEM files)
 * when given; `is_ca` makes a CA. `valid_from_days`/`valid_days` shift the validity (tests make
 * expired certificates with them). Throws std::runtime_error naming the file.
 */
void make_certificate(const std::vector<std::string>& names, const std::string& cert_path, const std::string& key_path,
                      const std::string& issuer_cert = "", const std::string& issuer_key = "", bool is_ca = false,
                      long valid_from_days = 0, long valid_days = 365);

/** The SHA-256 fingerprint of the first certificate in a PEM file, "AB:CD:…" (empty on failure). */
std::string fingerprint_of(const std::string& cert_path);

}  // namespace kinfra::proxy::tls
