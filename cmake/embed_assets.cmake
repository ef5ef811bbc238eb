# Turns the files of fallback/assets into a C++ source file, so that kinfra's pages are part of
# the binary and /kinfra works with nothing on disk.
#   cmake -DOUT=embedded_assets.cpp -DFILES="a.html|b.js" -P embed_assets.cmake
string(REPLACE "|" ";" files "${FILES}")
set(body "")
set(entries "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME)
  string(MAKE_C_IDENTIFIER "asset_${name}" id)
  file(READ "${f}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR length "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "const unsigned char ${id}[] = {${bytes}0x00};\n")
  string(APPEND entries "    {\"${name}\", std::string_view(reinterpret_cast<const char*>(${id}), ${length})},\n")
endforeach()
file(WRITE "${OUT}.tmp"
"// Generated from fallback/assets by cmake/embed_assets.cmake; edit the assets, not this file.
#include \"fallback/embedded_assets.hpp\"

#include <array>
#include <utility>

namespace kinfra::fallback {
namespace {
${body}
}  // namespace

std::string_view embedded_asset(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> assets[] = {
${entries}  };
  for (const auto& [n, data] : assets)
    if (n == name) return data;
  return {};
}

}  // namespace kinfra::fallback
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
