// libFuzzer target: service output → lines (cut at 4 KiB), sanitised (no escape sequences, no
// control characters, valid UTF-8) and given a level.
#include <cstddef>
#include <cstdint>
#include <string>

#include "supervisor/log_line.hpp"

namespace {

bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kinfra::supervisor;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  line_splitter splitter;
  auto check = [](std::string_view raw) {
    std::string line = sanitize_log_line(raw);
    if (!valid_utf8(line)) __builtin_trap();
    for (unsigned char c : line)
      if ((c < 0x20 && c != '\t') || c == 0x7f) __builtin_trap();
    (void)detect_log_level(line);
  };
  // Fed in two pieces, as pipes deliver it.
  splitter.feed(input.substr(0, size / 2), check);
  splitter.feed(input.substr(size / 2), check);
  splitter.finish(check);
  return 0;
}
