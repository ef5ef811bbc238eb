#include "fallback/logs_api.hpp"

#include <algorithm>

#include "common/events.hpp"
#include "fallback/responses.hpp"
#include "fallback/status_json.hpp"

namespace kinfra::fallback {
namespace {

std::size_t number(std::string_view query, std::string_view key, std::size_t fallback) {
  return static_cast<std::size_t>(parse_decimal(query_param(query, key)).value_or(fallback));
}

/**
 * What a line costs in an answer: its text as JSON writes it (a control character becomes six
 * bytes, `\u0001`), and some room for the fields around it.
 */
std::size_t weight(const log_entry& e) {
  std::size_t n = e.timestamp.size() + 64;
  for (char c : e.message) n += static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\' ? 6 : 1;
  return n;
}

}  // namespace

local_response render_logs_answer(const status_board& board, std::string_view name, std::string_view format,
                                  std::string_view query) {
  const std::size_t limit = std::clamp<std::size_t>(number(query, "limit", logs_default_lines), 1, logs_max_lines);
  const std::uint64_t after = number(query, "after", 0);
  const std::size_t tail = number(query, "tail", 0);
  std::vector<log_entry> lines;
  bool more = false;
  if (tail > 0) {
    // The newest lines: the byte cap drops the oldest of them.
    lines = board.logs(name, std::min(tail, logs_max_lines), after);
    std::size_t bytes = 0, keep = 0;
    for (auto it = lines.rbegin(); it != lines.rend() && (keep == 0 || bytes + weight(*it) <= logs_max_bytes); ++it) {
      bytes += weight(*it);
      ++keep;
    }
    lines.erase(lines.begin(), lines.end() - static_cast<long>(keep));
  } else {
    lines = board.logs_after(name, after, limit, more);
    std::size_t bytes = 0, keep = 0;
    for (const auto& e : lines) {
      if (keep > 0 && bytes + weight(e) > logs_max_bytes) break;
      bytes += weight(e);
      ++keep;
    }
    if (keep < lines.size()) {
      lines.resize(keep);
      more = true;
    }
  }
  std::uint64_t next = lines.empty() ? after : lines.back().seq;
  // A cursor beyond the newest line is an earlier kinfra process's: the reader should start again.
  bool reset = false;
  if (lines.empty() && after > 0) {
    auto newest = board.logs(name, 1);
    const std::uint64_t last = newest.empty() ? 0 : newest.back().seq;
    if (after > last) {
      reset = true;
      next = last;
    }
  }
  if (format == "json") {
    nlohmann::ordered_json body;
    body["service"] = std::string(name);
    body["boot"] = process_boot_id();
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& e : lines)
      arr.push_back({{"seq", e.seq}, {"timestamp", log_timestamp(e)}, {"level", std::string(to_string(e.level))},
                     {"message", e.message}});
    body["lines"] = std::move(arr);
    body["next"] = next;
    body["more"] = more;
    if (reset) body["reset"] = true;
    return json_response(200, dump(body));
  }
  std::string text;
  for (const auto& e : lines) {
    std::string level(to_string(e.level));
    for (auto& c : level) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    text += log_timestamp(e) + " " + level + " " + e.message + "\n";
  }
  auto res = text_response(200, std::move(text));
  res.headers.emplace_back("X-Kinfra-Next", std::to_string(next));
  res.headers.emplace_back("X-Kinfra-Boot", process_boot_id());
  res.headers.emplace_back("X-Kinfra-More", more ? "true" : "false");
  if (reset) res.headers.emplace_back("X-Kinfra-Reset", "true");
  return res;
}

}  // namespace kinfra::fallback
