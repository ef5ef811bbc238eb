#include "app/config_check.hpp"

#include "common/config_loader.hpp"
#include "proxy/proxy_server.hpp"

namespace kinfra::app {
namespace {

checked_config finish(const std::string& source, config_load_result result) {
  // Certificates are only looked at once the rest is valid (their paths come from it).
  if (result.ok()) proxy::check_tls(*result.cfg, result.errors, result.warnings);
  checked_config out;
  for (const auto& e : result.errors) out.errors.push_back(format_config_error(source, e));
  for (const auto& w : result.warnings) out.warnings.push_back(format_config_error(source, w));
  if (out.errors.empty()) out.cfg = std::move(result.cfg);
  return out;
}

}  // namespace

checked_config check_config_file(const std::string& path) { return finish(path, load_config_file(path)); }

checked_config check_config_text(const std::string& text, const std::string& source) {
  return finish(source, load_config_string(text, source));
}

}  // namespace kinfra::app
