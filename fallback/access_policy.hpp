#pragma once
/**
 * @file Who may use kinfra's admin surface. The browser is assumed hostile:
 * - a request is admin only when its Host is one of kinfra's own names (loopback literals,
 *   `localhost`, `admin_hosts:`), so a page that rebinds its DNS name to 127.0.0.1 finds nothing;
 * - clients are loopback only, unless `allow_remote` (which needs the token and `admin_hosts`);
 * - with `admin_token` set, every read and every action needs it, from loopback too;
 * - actions come only by POST, never from a page of another origin (Origin, Sec-Fetch-Site).
 */

#include <string_view>

#include "common/admin_proof.hpp"
#include "common/config.hpp"
#include "common/local_responder.hpp"

namespace kinfra::fallback {

enum class access {
  allowed,
  host_refused,      ///< 421: the Host is not one of kinfra's own names
  remote_refused,    ///< 403: not loopback, allow_remote is off
  token_required,    ///< 401: the token is needed and was not given
  token_wrong,       ///< 401: a token was given and is not the right one
  cross_site,        ///< 403: an action from a page of another origin
  actions_disabled,  ///< 403: `actions: false`
};

using kinfra::constant_time_equals;  // (common/admin_proof.hpp: the CLI compares proofs with it too)

/** True when the request's Host names kinfra itself (loopback literal, localhost, admin_hosts). */
bool host_is_admin(const admin_config& admin, const local_request& req);

/** May this client read the admin surface (dashboard data, status, logs, metrics)? */
access check_read(const admin_config& admin, const local_request& req);

/**
 * May this client see a page shell that holds no data (the dashboard and log pages without their
 * content: their scripts ask for the token)? Allowed for the right Host and client, token or not.
 */
bool may_see_shell(access a);

/** May this client run an action (restart, stop, start, maintenance, status, reload)? */
access check_action(const admin_config& admin, const local_request& req);

/** True when the request carries `Authorization: Bearer <the token>`. */
bool has_valid_token(const admin_config& admin, const local_request& req);

}  // namespace kinfra::fallback
