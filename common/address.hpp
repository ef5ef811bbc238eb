#pragma once
/** @file Listen addresses and upstream URLs as written in routes.yaml. */

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace kinfra {

/** A host and port to listen on or connect to. `host` is an IP literal or a DNS name (no brackets). */
struct host_port {
  std::string host;
  std::uint16_t port = 0;

  /** `127.0.0.1:80` or `[::1]:80`. */
  std::string to_string() const;
  friend bool operator==(const host_port&, const host_port&) = default;
};

/** Where a service can be reached: `http://host:port` or `https://host:port`. */
struct upstream_url {
  std::string scheme;  ///< "http" or "https"
  host_port address;
  std::string text;    ///< as written in routes.yaml, for messages

  bool tls() const { return scheme == "https"; }
};

/**
 * Parses a listen address: `0.0.0.0:9100`, `[::]:9100`, `:9100` (all IPv4 interfaces),
 * `localhost:9100` or a bare port. The host must be an IP literal or `localhost`.
 * @return the address, or a message saying what is wrong.
 */
std::variant<host_port, std::string> parse_listen_address(std::string_view text);

/**
 * Parses an upstream URL `http://host[:port][/]` or `https://…` (port 80 or 443 by default). The
 * host may be a DNS name, resolved when kinfra starts. A path, query, user info or another scheme
 * are refused with a message.
 */
std::variant<upstream_url, std::string> parse_upstream_url(std::string_view text);

/** True when `s` is a valid DNS host name (letters, digits, hyphens, dots) or an IP literal. */
bool is_valid_host_name(std::string_view s);

/** The authority of a Host header or an origin: a name and, when given, a port. */
struct authority {
  std::string name;  ///< lower case; an IPv6 literal without its brackets
  std::optional<std::uint16_t> port;
};

/**
 * Parses `name`, `name:port`, `[v6]` or `[v6]:port` (a Host header's value, or the part of an
 * origin after `://`). Nothing when it is not one: empty, a bare IPv6 address, a bad port, or
 * characters a host name cannot have.
 */
std::optional<authority> parse_authority(std::string_view text);

/** True for a loopback IP literal (127.0.0.0/8, ::1, ::ffff:127.x.y.z), written as `parse_authority` gives it. */
bool is_loopback_literal(std::string_view name);

}  // namespace kinfra
