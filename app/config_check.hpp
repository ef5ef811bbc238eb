#pragma once
/**
 * @file The one path from routes.yaml (a file, or text the embedding program made) to a
 * configuration kinfra may use: parse and validate, check the TLS files it names, and format every
 * problem as `routes.yaml:LINE:COL: message`. Start-up, reload and `kinfra check` all go through it,
 * so they can never disagree about what is an error.
 */

#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace kinfra::app {

/** A configuration with its problems, formatted for people. */
struct checked_config {
  std::shared_ptr<const config> cfg;  ///< null when there are errors
  std::vector<std::string> errors;    ///< `FILE:LINE:COL: message`
  std::vector<std::string> warnings;  ///< accepted, but worth saying
  bool ok() const { return cfg != nullptr && errors.empty(); }
};

/** Loads and checks routes.yaml at `path` (never throws). */
checked_config check_config_file(const std::string& path);

/** Loads and checks YAML text; `source` names it in messages and anchors relative paths. */
checked_config check_config_text(const std::string& text, const std::string& source);

}  // namespace kinfra::app
