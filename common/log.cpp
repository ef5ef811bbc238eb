#include "common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace kinfra {

bool setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("kinfra");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_default_logger(logger);
  auto lvl = spdlog::level::from_str(level);
  bool known = !(lvl == spdlog::level::off && level != "off");
  spdlog::set_level(known ? lvl : spdlog::level::info);
  spdlog::flush_on(spdlog::level::info);
  return known;
}

}  // namespace kinfra
