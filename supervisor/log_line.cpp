#include "supervisor/log_line.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

#include "common/utf8.hpp"

namespace kinfra::supervisor {
namespace {

constexpr std::string_view cut_marker = " …[line cut]";

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/** Maps a level word (any case) to a level. */
std::optional<log_level> level_word(std::string_view word) {
  std::string w = lower(word);
  if (w == "error" || w == "err" || w == "fatal" || w == "critical" || w == "crit" || w == "panic" ||
      w == "emerg" || w == "emergency" || w == "alert" || w == "severe")
    return log_level::error;
  if (w == "warn" || w == "warning") return log_level::warn;
  if (w == "info" || w == "notice" || w == "information") return log_level::info;
  if (w == "debug" || w == "trace" || w == "verbose" || w == "dbg" || w == "trc") return log_level::debug;
  return std::nullopt;
}

/** pino/bunyan numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal. */
std::optional<log_level> numeric_level(std::string_view digits) {
  if (digits.size() != 2) return std::nullopt;
  switch (digits[0]) {
    case '1':
    case '2': return log_level::debug;
    case '3': return log_level::info;
    case '4': return log_level::warn;
    case '5':
    case '6': return log_level::error;
    default: return std::nullopt;
  }
}

/** Finds `level=x`, `"level":"x"`, `severity: x`, `lvl=x` and the like. */
std::optional<log_level> structured_level(std::string_view line, const std::string& low) {
  for (std::string_view key : {"level", "lvl", "severity", "loglevel"}) {
    std::size_t pos = 0;
    while ((pos = low.find(key, pos)) != std::string::npos) {
      std::size_t start = pos;
      pos += key.size();
      if (start > 0 && is_word_char(low[start - 1])) continue;
      std::size_t i = pos;
      if (i < low.size() && low[i] == '"') ++i;  // "level"
      while (i < low.size() && low[i] == ' ') ++i;
      if (i >= low.size() || (low[i] != '=' && low[i] != ':')) continue;
      ++i;
      while (i < low.size() && (low[i] == ' ' || low[i] == '"' || low[i] == '\'')) ++i;
      std::size_t end = i;
      while (end < low.size() && is_word_char(low[end])) ++end;
      std::string_view value = line.substr(i, end - i);
      if (auto l = level_word(value)) return l;
      if (auto l = numeric_level(value)) return l;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view strip_level_prefix(std::string_view line) {
  std::string_view rest = line;
  const bool bracket = !rest.empty() && rest.front() == '[';
  if (bracket) rest.remove_prefix(1);
  std::size_t n = 0;
  while (n < rest.size() && std::isalpha(static_cast<unsigned char>(rest[n]))) ++n;
  const std::string_view word = rest.substr(0, n);
  // Only the words the shown level says as well: FATAL, TRACE or NOTICE say more than it does.
  const std::string w = lower(word);
  if (n == 0 || !(w == "error" || w == "err" || w == "warn" || w == "warning" || w == "info" || w == "debug"))
    return line;
  rest.remove_prefix(n);
  if (bracket) {
    if (rest.empty() || rest.front() != ']') return line;
    rest.remove_prefix(1);
  }
  const bool colon = !rest.empty() && rest.front() == ':';
  if (colon) rest.remove_prefix(1);
  // "ERROR x", "[error] x" and "error: x" are markers; "Error connecting to db" is a sentence.
  const bool upper = std::all_of(word.begin(), word.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
  if (!bracket && !colon && !upper) return line;
  // A separator must follow (a word like "Information" in a sentence is not a prefix).
  if (rest.empty() || (rest.front() != ' ' && rest.front() != '\t')) return line;
  // Spaces, and a lone '-' or '|' between them ("ERROR - x"); "ERROR -1 is not a port" keeps its '-'.
  for (;;) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    if (rest.size() >= 2 && (rest[0] == '-' || rest[0] == '|') && (rest[1] == ' ' || rest[1] == '\t')) {
      rest.remove_prefix(1);
      continue;
    }
    break;
  }
  return rest.empty() ? line : rest;
}

std::string_view strip_level_prefix(std::string_view line, log_level level) {
  std::string_view rest = strip_level_prefix(line);
  if (rest.size() == line.size()) return line;
  std::string_view word = line.substr(line.front() == '[' ? 1 : 0);
  std::size_t n = 0;
  while (n < word.size() && std::isalpha(static_cast<unsigned char>(word[n]))) ++n;
  return level_word(word.substr(0, n)) == level ? rest : line;
}

void line_splitter::feed(std::string_view data, const sink& out) {
  while (!data.empty()) {
    auto nl = data.find('\n');
    std::string_view piece = data.substr(0, nl);
    if (skipping_) {
      if (nl == std::string_view::npos) return;
      skipping_ = false;
      data.remove_prefix(nl + 1);
      continue;
    }
    if (partial_.size() + piece.size() > max_line_bytes) {
      partial_.append(piece.substr(0, max_line_bytes - partial_.size()));
      partial_.append(cut_marker);
      out(partial_);
      partial_.clear();
      skipping_ = nl == std::string_view::npos;
      if (nl == std::string_view::npos) return;
      data.remove_prefix(nl + 1);
      continue;
    }
    if (nl == std::string_view::npos) {
      partial_.append(piece);
      return;
    }
    partial_.append(piece);
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    out(partial_);
    partial_.clear();
    data.remove_prefix(nl + 1);
  }
}

void line_splitter::finish(const sink& out) {
  if (!partial_.empty() && !skipping_) {
    if (partial_.back() == '\r') partial_.pop_back();
    out(partial_);
  }
  partial_.clear();
  skipping_ = false;
}

std::string sanitize_log_line(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == 0x1b) {  // ESC: skip the whole escape sequence
      ++i;
      if (i < raw.size() && raw[i] == '[') {  // CSI: parameters, then a final byte 0x40-0x7e
        ++i;
        while (i < raw.size() && !(raw[i] >= 0x40 && raw[i] <= 0x7e)) ++i;
        if (i < raw.size()) ++i;
      } else if (i < raw.size() && raw[i] == ']') {  // OSC: up to BEL or ESC '\'
        ++i;
        while (i < raw.size() && raw[i] != '\a' && !(raw[i] == 0x1b && i + 1 < raw.size() && raw[i + 1] == '\\')) ++i;
        if (i < raw.size()) i += raw[i] == '\a' ? 1 : 2;
      } else if (i < raw.size()) {
        ++i;  // a two-byte escape
      }
      continue;
    }
    if (c < 0x80) {
      if (c == '\t' || c >= 0x20) out += static_cast<char>(c == 0x7f ? ' ' : c);
      ++i;
      continue;
    }
    // UTF-8: a valid sequence is kept; anything else becomes U+FFFD.
    if (std::size_t len = utf8_sequence(raw, i)) {
      out.append(raw.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

log_level detect_log_level(std::string_view line, log_level fallback) {
  const std::string low = lower(line);
  if (auto l = structured_level(line, low)) return *l;
  // A level word standing on its own near the start: "ERROR ...", "[warn]", "<info>", "E: ...",
  // "2024-01-01 12:00:00 WARNING ...", "error: ...". Only the first 80 bytes are looked at, so a
  // message that merely mentions "error" later on keeps the fallback level.
  std::string_view head = line.substr(0, std::min<std::size_t>(line.size(), 80));
  std::size_t i = 0;
  while (i < head.size()) {
    if (!std::isalpha(static_cast<unsigned char>(head[i]))) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < head.size() && is_word_char(head[end])) ++end;
    std::string_view word = head.substr(i, end - i);
    bool starts_clean = i == 0 || !is_word_char(head[i - 1]);
    char before = i > 0 ? head[i - 1] : ' ';
    char after = end < head.size() ? head[end] : ' ';
    if (starts_clean && word.size() >= 3) {
      if (auto l = level_word(word)) {
        bool upper = std::all_of(word.begin(), word.end(), [](char c) { return !std::islower(static_cast<unsigned char>(c)); });
        bool bracketed = (before == '[' || before == '<' || before == '(') && (after == ']' || after == '>' || after == ')');
        bool labelled = (i == 0 || before == ' ') && after == ':';  // "error: file not found"
        if (upper || bracketed || labelled) return *l;
      }
    }
    i = end;
  }
  return fallback;
}

}  // namespace kinfra::supervisor
