#pragma once
// Internal to common/: the helper both halves of the routes.yaml loader use to walk its YAML tree.

#include <charconv>
#include <chrono>
#include <cstdint>
#include <algorithm>
#include <initializer_list>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_loader.hpp"
#include "common/units.hpp"
#include "common/yaml_tree.hpp"

namespace kinfra::detail {

/**
 * Walks the YAML tree and collects every error with its position, so one run of
 * `kinfra check` reports all problems rather than the first.
 */
class yaml_reader {
 public:
  explicit yaml_reader(std::vector<config_error>& errors) : errors_(errors) {}

  void error(const yaml::node& at, std::string message) {
    auto m = at.Mark();
    errors_.push_back({m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1, std::move(message)});
  }
  void error(const yaml::mark& m, std::string message) {
    errors_.push_back({m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1, std::move(message)});
  }

  /** Checks that `node` is a mapping whose keys are all known and unique. */
  bool check_map(const yaml::node& node, const std::string& what,
                 std::initializer_list<std::string_view> known) {
    if (!node.IsMap()) {
      error(node, what + " must be a mapping (key: value)");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const auto& key = kv.first;
      if (!key.IsScalar()) {
        error(key, "keys in " + what + " must be plain names");
        continue;
      }
      const std::string& name = key.Scalar();
      if (!seen.insert(name).second) error(key, "duplicate key '" + name + "' in " + what);
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::string list;
        for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        error(key, "unknown key '" + name + "' in " + what + " (expected one of: " + list + ")");
      }
    }
    return true;
  }

  std::optional<std::string> string(const yaml::node& n, const std::string& what) {
    if (!n.IsScalar()) {
      error(n, what + " must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<std::uint64_t> integer(const yaml::node& n, const std::string& what, std::uint64_t min,
                                       std::uint64_t max) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      std::uint64_t v = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (!s.empty() && ec == std::errc{} && p == s.data() + s.size()) {
        if (v >= min && v <= max) return v;
        error(n, what + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                     ", got " + s);
        return std::nullopt;
      }
    }
    error(n, what + " must be an integer" + (n.IsScalar() ? ", got \"" + n.Scalar() + "\"" : ""));
    return std::nullopt;
  }

  std::optional<bool> boolean(const yaml::node& n, const std::string& what) {
    if (n.IsScalar()) {
      static const std::set<std::string> yes{"true", "True", "TRUE", "yes", "Yes", "on", "On"};
      static const std::set<std::string> no{"false", "False", "FALSE", "no", "No", "off", "Off"};
      if (yes.count(n.Scalar())) return true;
      if (no.count(n.Scalar())) return false;
    }
    error(n, what + " must be true or false" + (n.IsScalar() ? ", got \"" + n.Scalar() + "\"" : ""));
    return std::nullopt;
  }

  std::optional<std::chrono::milliseconds> duration(const yaml::node& n, const std::string& what) {
    if (n.IsScalar()) {
      if (auto d = parse_duration(n.Scalar())) return d;
    }
    error(n, what + " must be a duration such as 500ms, 10s or 2m" +
                 (n.IsScalar() ? ", got \"" + n.Scalar() + "\"" : ""));
    return std::nullopt;
  }

  /** A positive duration. */
  void positive_duration(const yaml::node& parent, const char* key, const std::string& what,
                         std::chrono::milliseconds& out) {
    const yaml::node n = parent[key];
    if (!n) return;
    if (auto d = duration(n, what)) {
      if (d->count() <= 0) error(n, what + " must be greater than zero");
      else out = *d;
    }
  }

  std::optional<std::uint64_t> size(const yaml::node& n, const std::string& what, bool allow_unlimited) {
    if (n.IsScalar()) {
      if (allow_unlimited && (n.Scalar() == "unlimited" || n.Scalar() == "off")) return unlimited_bytes;
      if (auto s = parse_size(n.Scalar())) return s;
    }
    error(n, what + " must be a size such as 8KiB, 10MiB or 1048576" +
                 std::string(allow_unlimited ? " (or unlimited)" : "") +
                 (n.IsScalar() ? ", got \"" + n.Scalar() + "\"" : ""));
    return std::nullopt;
  }

 private:
  std::vector<config_error>& errors_;
};


/** Reads a listener's `tls: { acme: … }` (see acme_loader.cpp); relative paths start at routes.yaml's folder. */
std::optional<acme_config> read_acme(yaml_reader& r, const yaml::node& n, const std::string& source_path);

/** Reads the `services:` mapping into `cfg.services` (see service_loader.cpp). */
void read_services(yaml_reader& r, const yaml::node& n, config& cfg, const std::string& source_path,
                   std::vector<config_error>& warnings);

}  // namespace kinfra::detail
