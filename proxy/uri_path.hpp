#pragma once
/** @file The path of a request target, brought to one canonical form before routing. */

#include <string>
#include <string_view>

namespace kinfra::proxy {

/** The request target split and normalised. */
struct normalised_target {
  std::string_view path;   ///< canonical path; points into the target or into `scratch`
  std::string_view query;  ///< without the '?', empty when absent
  bool has_query = false;
  /**
   * The path has something an upstream may read as a separator where kinfra does not: a ';'
   * (path parameters), an encoded slash or a backslash. The router must then find the same
   * route for `routing_key(path)` (see there), or the request is refused.
   */
  bool disguised_separators = false;
};

/**
 * `path` as a lenient upstream reads it: each segment cut at a ';', and `%2F`, `%5C` and `\` as
 * separators (`/admin;x/secret`, `/admin%2Fsecret` → `/admin/secret`).
 */
std::string routing_key(std::string_view path);

/**
 * Normalises an origin-form request target (`/a/./b/../c?x=1`) for routing and forwarding:
 * percent-encoded unreserved characters are decoded (`%61` → `a`, `%2E` → `.`), other escapes are
 * kept with upper-case hex (`%2f` → `%2F`, so an encoded slash never becomes a separator), empty
 * segments are merged (`//` → `/`), and `.`/`..` segments are resolved.
 *
 * Fails (returns false) on a target that does not start with '/', a malformed escape, a fragment,
 * `..` that would climb above the root, a dot segment hidden behind an encoded slash, a backslash
 * or a ';' (also double-encoded), an encoded NUL, or an overlong UTF-8 form (escaped or raw): such a
 * request is answered 400 and reaches no service.
 * When the path is already canonical, `out.path` points into `target` and nothing is copied.
 */
bool normalise_target(std::string_view target, std::string& scratch, normalised_target& out);

/**
 * Removes a route prefix from a canonical path, keeping a leading '/':
 * (`/api/users`, `/api`) → `/users`; (`/api`, `/api`) → `/`.
 */
std::string_view strip_path_prefix(std::string_view path, std::string_view prefix);

}  // namespace kinfra::proxy
