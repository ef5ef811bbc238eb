#include "common/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

namespace kinfra {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads a non-negative decimal number (with an optional fraction) from the front of `s`.
std::optional<double> take_number(std::string_view& s) {
  std::size_t i = 0;
  while (i < s.size() && (is_digit(s[i]) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + i, value);
  if (ec != std::errc{} || ptr != s.data() + i || !std::isfinite(value)) return std::nullopt;
  s.remove_prefix(i);
  return value;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return std::nullopt;
  double total_ms = 0;
  bool first = true;
  while (!s.empty()) {
    auto number = take_number(s);
    if (!number) return std::nullopt;
    std::size_t unit_len = 0;
    while (unit_len < s.size() && std::isalpha(static_cast<unsigned char>(s[unit_len]))) ++unit_len;
    std::string_view unit = s.substr(0, unit_len);
    s.remove_prefix(unit_len);
    double scale;
    if (unit.empty()) {
      // A bare number is seconds, but only on its own: "1m30" is a typo, not 1m30s.
      if (!first || !s.empty()) return std::nullopt;
      scale = 1000;
    } else if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else if (unit == "d") scale = 86'400'000;
    else return std::nullopt;
    total_ms += *number * scale;
    first = false;
  }
  if (total_ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim(text);
  auto number = take_number(s);
  if (!number) return std::nullopt;
  s = trim(s);
  double scale;
  if (s.empty() || s == "B" || s == "b") scale = 1;
  else if (s == "KiB" || s == "k" || s == "K") scale = 1024.0;
  else if (s == "MiB" || s == "m" || s == "M") scale = 1024.0 * 1024;
  else if (s == "GiB" || s == "g" || s == "G") scale = 1024.0 * 1024 * 1024;
  else if (s == "TiB") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (s == "KB" || s == "kB") scale = 1e3;
  else if (s == "MB") scale = 1e6;
  else if (s == "GB") scale = 1e9;
  else if (s == "TB") scale = 1e12;
  else return std::nullopt;
  double bytes = *number * scale;
  if (bytes >= 1.8e19) return std::nullopt;
  return static_cast<std::uint64_t>(std::llround(bytes));
}

std::string format_uptime(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 0) s = 0;
  long long days = s / 86400, hours = (s / 3600) % 24, minutes = (s / 60) % 60, seconds = s % 60;
  auto str = [](long long v, const char* unit) { return std::to_string(v) + unit; };
  if (days > 0) return str(days, "d ") + str(hours, "h");
  if (hours > 0) return str(hours, "h ") + str(minutes, "m");
  if (minutes > 0) return str(minutes, "m ") + str(seconds, "s");
  return str(seconds, "s");
}

std::string format_duration(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms % 1000 != 0 || ms == 0) return std::to_string(ms) + "ms";
  long long s = ms / 1000;
  std::string out;
  if (s >= 3600) { out += std::to_string(s / 3600) + "h"; s %= 3600; }
  if (s >= 60) { out += std::to_string(s / 60) + "m"; s %= 60; }
  if (s > 0) out += std::to_string(s) + "s";
  return out;
}

}  // namespace kinfra
