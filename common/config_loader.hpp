#pragma once
/** @file Reading routes.yaml into a validated `config`. */

#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace kinfra {

/** One problem found in routes.yaml, at a 1-based line and column (0 when unknown). */
struct config_error {
  int line = 0;
  int column = 0;
  std::string message;
};

/** The outcome of loading: a config when there were no errors, otherwise every error found. */
struct config_load_result {
  std::shared_ptr<const config> cfg;
  std::vector<config_error> errors;
  std::vector<config_error> warnings;  ///< accepted, but worth saying (e.g. an unset ${VAR})

  bool ok() const { return cfg != nullptr; }
};

/**
 * Loads and validates routes.yaml at `path`. Never throws: unreadable files, YAML syntax errors,
 * unknown keys, wrong types, duplicates, dangling references and bad addresses all become errors.
 */
config_load_result load_config_file(const std::string& path);

/**
 * Loads and validates YAML text. `source_path` names the file in messages and anchors relative
 * paths (cwd of services): they are taken relative to its folder.
 */
config_load_result load_config_string(const std::string& yaml, const std::string& source_path);

/** `routes.yaml:3:7: message` — the form editors and CI logs link to. */
std::string format_config_error(const std::string& source_path, const config_error& e);

}  // namespace kinfra
