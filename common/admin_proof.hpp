#pragma once
/**
 * @file How kinfra proves to its CLI that it knows the admin token, before the CLI sends it.
 *
 * The CLI sends `X-Kinfra-Challenge: NONCE` (random, hex) with every request. When kinfra refuses
 * one for want of the token (401) and has a token, it answers `X-Kinfra-Proof:
 * admin_proof(token, NONCE, ADDRESS)`, ADDRESS being the address the connection reached
 * (`127.0.0.1:9000`, `[::1]:9100`). The CLI computes the same with its own token and the address
 * it connected to, and sends the token only when they agree: another program listening where the
 * CLI looks for kinfra cannot make the proof, and relaying the challenge to the real kinfra on
 * another address gives a proof for that other address.
 */

#include <string>
#include <string_view>

namespace kinfra {

/** Lower-case hex of HMAC-SHA256(token, "kinfra-admin-proof\n" + nonce + "\n" + address). */
std::string admin_proof(std::string_view token, std::string_view nonce, std::string_view address);

/** A challenge is 16 to 128 hex digits; anything else is ignored (and gets no proof). */
bool is_valid_challenge(std::string_view nonce);

/** Compares two secrets in time that does not depend on where they differ. */
bool constant_time_equals(std::string_view a, std::string_view b);

/** A fresh challenge: 32 hex digits from the system's random source. */
std::string make_challenge();

}  // namespace kinfra
