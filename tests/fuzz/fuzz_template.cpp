// libFuzzer target: the template renderer and the escaping functions. The first byte splits the
// input into a template and a variable value; the escaped value may never contain markup.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fallback/template_renderer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kinfra::fallback;
  std::string input(reinterpret_cast<const char*>(data), size);
  auto cut = input.find('\x01');
  std::string tpl = input.substr(0, cut);
  std::string value = cut == std::string::npos ? input : input.substr(cut + 1);
  template_vars vars;
  vars["value"] = value;
  vars["other"] = "x";
  (void)render_template(tpl, vars);
  std::string escaped = html_escape(value);
  if (escaped.find_first_of("<>\"'") != std::string::npos) __builtin_trap();
  // {{value}} inserts the escaped text, exactly.
  if (render_template("[{{value}}]", vars) != "[" + escaped + "]") __builtin_trap();
  std::string safe = script_safe_json(value);
  if (safe.find("</") != std::string::npos || safe.find("<!--") != std::string::npos) __builtin_trap();
  return 0;
}
