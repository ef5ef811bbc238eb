#pragma once
/**
 * @file `kinfra trust` / `kinfra untrust`: adds kinfra's local development CA (made once in
 * state_dir, see proxy/dev_certificates.hpp) to a trust store, or takes it out again, like
 * `caddy trust` or `mkcert -install`.
 */

#include <iosfwd>
#include <string>

namespace kinfra::app {

/** Debian's folder for locally added CAs (then `update-ca-certificates`). */
inline constexpr const char* system_ca_store = "/usr/local/share/ca-certificates";

/** What to trust and where. */
struct trust_request {
  std::string state_dir;  ///< where the local CA is (made there when missing)
  std::string store = system_ca_store;  ///< the folder the CA is copied to / removed from
  /** Run update-ca-certificates afterwards (the system store; off for any other folder). */
  bool update_system = true;
};

/** Copies the local CA into the store; says what it did and how to add it to a browser. Exit code. */
int trust_local_ca(const trust_request& req, std::ostream& out, std::ostream& err);

/**
 * Removes what `trust_local_ca` added: the file of the CA in state_dir, and those of earlier CAs this
 * user's kinfra made (same "kinfra local CA (user@…)" name), so a CA made again leaves nothing behind.
 * Exit code.
 */
int untrust_local_ca(const trust_request& req, std::ostream& out, std::ostream& err);

/** True when `store` is the system's folder (trailing slashes and `.` aside). */
bool is_system_store(const std::string& store);

/** The file name the local CA of `ca_cert` gets in a store: kinfra-local-ca-<fingerprint start>.crt. */
std::string store_file_name(const std::string& ca_cert);

}  // namespace kinfra::app
