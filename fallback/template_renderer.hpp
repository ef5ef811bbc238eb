#pragma once
/**
 * @file The page templates: `{{name}}` is replaced by the variable HTML-escaped, `{{{name}}}` by
 * the variable as is (only for markup kinfra built itself, where every service string was already
 * escaped). Unknown names become empty. Pages come from `templates_dir` when a file of that name
 * is there and readable, otherwise from the copy embedded in the binary.
 */

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace kinfra::fallback {

using template_vars = std::map<std::string, std::string, std::less<>>;

/** Renders `tpl` with `vars` (see the file comment for the syntax). */
std::string render_template(std::string_view tpl, const template_vars& vars);

/** Escapes text for HTML element content and attribute values. */
std::string html_escape(std::string_view text);

/** JSON text made safe to embed in a `<script>` element (no `</script>`, no `<!--`). */
std::string script_safe_json(std::string_view json);

/**
 * Where pages come from: an override folder (checked on each use, cached by modification time)
 * and the embedded assets. An override that cannot be read falls back to the embedded page.
 */
class template_store {
 public:
  explicit template_store(std::string override_dir) : dir_(std::move(override_dir)) {}

  /** The text of `name` (e.g. "dashboard.html"). */
  std::string get(std::string_view name) const;

 private:
  struct cached {
    std::filesystem::file_time_type mtime;
    std::string text;
  };
  std::string dir_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, cached, std::less<>> cache_;
};

}  // namespace kinfra::fallback
