#pragma once
/**
 * @file Who may use kinfra's admin surface (the spec's Security section, made strict):
 * loopback clients by default, remote ones only with `allow_remote` and the admin token; actions
 * need the token when one is set, come only by POST and never from another site.
 */

#include <string_view>

#include "common/config.hpp"
#include "common/local_responder.hpp"

namespace kinfra::fallback {

enum class access {
  allowed,
  remote_refused,    ///< 403: not loopback, allow_remote is off
  token_required,    ///< 401: the token is needed and was not given
  token_wrong,       ///< 401: a token was given and is not the right one
  cross_site,        ///< 403: an action from a page of another origin
  actions_disabled,  ///< 403: `actions: false`
};

/** Compares two secrets in time that does not depend on where they differ. */
bool constant_time_equals(std::string_view a, std::string_view b);

/** May this client read the admin surface (dashboard, status, logs)? */
access check_read(const admin_config& admin, const local_request& req);

/** May this client run an action (restart, stop, start, maintenance)? */
access check_action(const admin_config& admin, const local_request& req);

/** True when the request carries `Authorization: Bearer <the token>`. */
bool has_valid_token(const admin_config& admin, const local_request& req);

}  // namespace kinfra::fallback
