#pragma once
/**
 * @file The names kinfra's admin surface answers to: loopback literals, `localhost`, and the
 * entries of `admin_hosts:` in routes.yaml. Everything else is a name some other site controls
 * (DNS rebinding points such a name at 127.0.0.1), so an admin request that carries it is refused.
 */

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/address.hpp"

namespace kinfra {

/** One entry of `admin_hosts:`: `kinfra.example.com`, `10.0.0.5:9000`, `[fd00::1]`, `*.corp.example`. */
struct admin_host {
  std::string name;  ///< lower case; for a wildcard, the suffix without `*` (".corp.example")
  bool wildcard = false;
  std::optional<std::uint16_t> port;  ///< when given, only this port matches

  bool matches(const authority& a) const;
};

/** Parses one `admin_hosts:` entry; a message saying what is wrong when it is not one. */
std::variant<admin_host, std::string> parse_admin_host(std::string_view text);

/**
 * True when `a` names kinfra itself: a loopback literal, `localhost`, or an entry of `list`.
 * Ports matter only for entries that name one.
 */
bool is_admin_host(const std::vector<admin_host>& list, const authority& a);

}  // namespace kinfra
