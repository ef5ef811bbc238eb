// libFuzzer target: routes.yaml text → the loader and validator. Any input must give a config or
// errors with positions, never a crash, a hang or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto result = kinfra::load_config_string(text, "/nonexistent/kinfra-fuzz/routes.yaml");
  if (result.ok() == !result.errors.empty()) __builtin_trap();  // exactly one of the two
  for (const auto& e : result.errors) (void)kinfra::format_config_error("routes.yaml", e);
  if (result.ok()) (void)result.cfg->start_levels();
  return 0;
}
