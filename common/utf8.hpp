#pragma once
/** @file UTF-8 validation shared by everything that passes untrusted bytes on as text. */

#include <cstddef>
#include <string_view>

namespace kinfra {

/**
 * The length (2–4) of the valid UTF-8 sequence that starts at `s[i]` with a byte ≥ 0x80, or 0
 * when it is not one: a bad lead byte, a missing or wrong continuation byte, an overlong form, a
 * surrogate or a code point above U+10FFFF.
 */
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (len == 2 && c < 0xc2) return 0;
  if (len == 3 && c == 0xe0 && b1 < 0xa0) return 0;
  if (len == 3 && c == 0xed && b1 >= 0xa0) return 0;
  if (len == 4 && (c > 0xf4 || (c == 0xf0 && b1 < 0x90) || (c == 0xf4 && b1 >= 0x90))) return 0;
  return len;
}

}  // namespace kinfra
