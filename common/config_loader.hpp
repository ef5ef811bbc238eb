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

/** `s` as routes.yaml at `config_path` means it: `~/` is the home folder, relative paths start at its folder. */
std::string resolve_config_path(const std::string& config_path, const std::string& s);

/** kinfra's state_dir when routes.yaml names none: $KINFRA_STATE_DIR, else ~/.kinfra/state. */
std::string default_state_dir(const std::string& config_path);

/**
 * Only the state_dir routes.yaml at `config_path` asks for (the default when the file has none or
 * does not exist), without validating the rest: for `kinfra trust`. Empty, with `error`, when the
 * file is not YAML.
 */
std::string state_dir_of(const std::string& config_path, std::string& error);

/** `routes.yaml:3:7: message` — the form editors and CI logs link to. */
std::string format_config_error(const std::string& source_path, const config_error& e);

}  // namespace kinfra
