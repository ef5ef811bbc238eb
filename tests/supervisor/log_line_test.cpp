#include "supervisor/log_line.hpp"

#include <gtest/gtest.h>

#include <vector>

using kinfra::log_level;
using kinfra::supervisor::detect_log_level;
using kinfra::supervisor::line_splitter;
using kinfra::supervisor::max_line_bytes;
using kinfra::supervisor::sanitize_log_line;

namespace {

std::vector<std::string> split(std::initializer_list<std::string_view> pieces, bool finish = true) {
  std::vector<std::string> out;
  line_splitter s;
  auto sink = [&](std::string_view l) { out.emplace_back(l); };
  for (auto p : pieces) s.feed(p, sink);
  if (finish) s.finish(sink);
  return out;
}

}  // namespace

TEST(LogLine, SplitsLinesAcrossReads) {
  EXPECT_EQ(split({"one\ntw", "o\r\nthree"}), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(split({"a\n\nb\n"}), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(split({"partial"}, false), std::vector<std::string>{});
}

TEST(LogLine, CutsOverlongLinesAndSkipsTheirRest) {
  std::string huge(max_line_bytes * 3, 'x');
  auto lines = split({huge.substr(0, 5000), huge.substr(5000), "\nnext\n"});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].substr(0, max_line_bytes), std::string(max_line_bytes, 'x'));
  EXPECT_NE(lines[0].find("[line cut]"), std::string::npos);
  EXPECT_LT(lines[0].size(), max_line_bytes + 32);
  EXPECT_EQ(lines[1], "next");
}

TEST(LogLine, StripsAnsiAndControlCharacters) {
  EXPECT_EQ(sanitize_log_line("\x1b[31mERROR\x1b[0m red \x1b[1;32mgreen\x1b[0m"), "ERROR red green");
  EXPECT_EQ(sanitize_log_line("\x1b]0;title\x07text"), "text");
  EXPECT_EQ(sanitize_log_line("bell\x07 nul\x01 tab\tok"), "bell nul tab\tok");
}

TEST(LogLine, MakesInvalidUtf8Safe) {
  EXPECT_EQ(sanitize_log_line("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93") << "valid UTF-8 stays";
  EXPECT_EQ(sanitize_log_line("bad \xff end"), "bad \xEF\xBF\xBD end");
  EXPECT_EQ(sanitize_log_line("\xc3\x28"), "\xEF\xBF\xBD(");
  EXPECT_EQ(sanitize_log_line("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "overlong form";
  EXPECT_EQ(sanitize_log_line("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "surrogate";
  EXPECT_EQ(sanitize_log_line("cut \xe2\x9c"), "cut \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(LogLine, KeepsMarkupAsText) {
  // Escaping is the renderer's job; the stored line is exactly what the service printed.
  EXPECT_EQ(sanitize_log_line("<script>alert(1)</script>"), "<script>alert(1)</script>");
}

TEST(LogLine, DetectsLevelsInTheUsualSpellings) {
  struct c {
    const char* line;
    log_level level;
  };
  for (auto [line, level] : std::vector<c>{
           {"ERROR something failed", log_level::error},
           {"2024-01-01 12:00:00 [warn] disk almost full", log_level::warn},
           {"level=info msg=\"listening\"", log_level::info},
           {"{\"level\":\"debug\",\"msg\":\"cache miss\"}", log_level::debug},
           {"{\"level\": \"ERROR\", \"msg\": \"x\"}", log_level::error},
           {"{\"level\":50,\"msg\":\"pino error\"}", log_level::error},
           {"{\"level\":40,\"msg\":\"pino warn\"}", log_level::warn},
           {"WARNING: deprecated option", log_level::warn},
           {"[error] upstream timed out", log_level::error},
           {"<info> started", log_level::info},
           {"DEBUG verbose detail", log_level::debug},
           {"FATAL out of memory", log_level::error},
           {"CRITICAL: boom", log_level::error},
           {"error: file not found", log_level::error},
           {"I 12:00 NOTICE ready", log_level::info},
           {"severity=warning component=db", log_level::warn},
           {"2024-01-01T00:00:00Z TRACE step", log_level::debug},
           {"INFO:root:hello", log_level::info},
       })
    EXPECT_EQ(detect_log_level(line), level) << line;
}

TEST(LogLine, ALeadingLevelWordIsNotSaidTwice) {
  using kinfra::supervisor::strip_level_prefix;
  EXPECT_EQ(strip_level_prefix("INFO api listening on port 8000"), "api listening on port 8000");
  EXPECT_EQ(strip_level_prefix("[warn] cache is cold"), "cache is cold");
  EXPECT_EQ(strip_level_prefix("WARNING: deprecated option"), "deprecated option");
  EXPECT_EQ(strip_level_prefix("error: no such file"), "no such file");
  EXPECT_EQ(strip_level_prefix("ERROR - upstream timed out"), "upstream timed out");
  EXPECT_EQ(strip_level_prefix("[ERROR]: boom"), "boom");
  // Everything else stays as it was printed.
  for (std::string_view keep : {"Error connecting to db", "Information is power", "2024-01-01 [warn] disk",
                                "level=info msg=x", "INFO", "INFOx y", "[info x", "a plain line", "", "DEBUGGING now",
                                "FATAL out of memory", "TRACE x", "NOTICE y"})
    EXPECT_EQ(strip_level_prefix(keep), keep) << "a word that says more than the level stays";
  EXPECT_EQ(strip_level_prefix("ERROR -1 is not a valid port"), "-1 is not a valid port");
  EXPECT_EQ(strip_level_prefix("WARN --force is deprecated"), "--force is deprecated");
  EXPECT_EQ(strip_level_prefix("ERROR | - x"), "x");
  // With the detected level: a line whose level= says otherwise keeps its word.
  using kinfra::log_level;
  EXPECT_EQ(strip_level_prefix("ERROR unknown flag --log-level=verbose", log_level::debug),
            "ERROR unknown flag --log-level=verbose");
  EXPECT_EQ(strip_level_prefix("ERROR boom", log_level::error), "boom");
  EXPECT_EQ(strip_level_prefix("WARNING: x", log_level::warn), "x");
}

TEST(LogLine, PlainLinesKeepTheFallbackLevel) {
  EXPECT_EQ(detect_log_level("a plain line"), log_level::info);
  EXPECT_EQ(detect_log_level("a plain line", log_level::warn), log_level::warn);
  EXPECT_EQ(detect_log_level("connected to errorservice.example"), log_level::info);
  EXPECT_EQ(detect_log_level("handled request without errors"), log_level::info);
  EXPECT_EQ(detect_log_level(std::string(100, 'x') + " ERROR late"), log_level::info)
      << "a level word far into a message is not the line's level";
}
