#pragma once
/** @file kinfra's pages, scripts and styles, compiled into the binary from fallback/assets/. */

#include <string_view>

namespace kinfra::fallback {

/** The content of `fallback/assets/<name>` as it was at build time; empty when there is none. */
std::string_view embedded_asset(std::string_view name);

}  // namespace kinfra::fallback
