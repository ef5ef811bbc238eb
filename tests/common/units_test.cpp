#include "common/units.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Units, ParsesDurationsWithUnits) {
  EXPECT_EQ(kinfra::parse_duration("500ms"), 500ms);
  EXPECT_EQ(kinfra::parse_duration("2s"), 2000ms);
  EXPECT_EQ(kinfra::parse_duration("1m30s"), 90'000ms);
  EXPECT_EQ(kinfra::parse_duration("1h"), 3'600'000ms);
  EXPECT_EQ(kinfra::parse_duration("0.5s"), 500ms);
}

TEST(Units, BareNumberIsSeconds) {
  EXPECT_EQ(kinfra::parse_duration("5"), 5000ms);
  EXPECT_EQ(kinfra::parse_duration(" 10 "), 10'000ms);
}

TEST(Units, RejectsMalformedDurations) {
  for (const char* bad : {"", "s", "5x", "-1s", "1m30", "abc", "1.2.3s", "ms5"})
    EXPECT_FALSE(kinfra::parse_duration(bad)) << bad;
}

TEST(Units, ParsesSizes) {
  EXPECT_EQ(kinfra::parse_size("1024"), 1024u);
  EXPECT_EQ(kinfra::parse_size("8KiB"), 8192u);
  EXPECT_EQ(kinfra::parse_size("8k"), 8192u);
  EXPECT_EQ(kinfra::parse_size("1MiB"), 1048576u);
  EXPECT_EQ(kinfra::parse_size("1MB"), 1000000u);
  EXPECT_EQ(kinfra::parse_size("2 GiB"), 2147483648u);
  EXPECT_FALSE(kinfra::parse_size("1 parsec"));
  EXPECT_FALSE(kinfra::parse_size("-5"));
  EXPECT_FALSE(kinfra::parse_size(""));
}

TEST(Units, FormatsUptimeLikeTheDashboard) {
  EXPECT_EQ(kinfra::format_uptime(45s), "45s");
  EXPECT_EQ(kinfra::format_uptime(332s), "5m 32s");
  EXPECT_EQ(kinfra::format_uptime(7380s), "2h 3m");
  EXPECT_EQ(kinfra::format_uptime(3 * 86400s + 4 * 3600s), "3d 4h");
}

TEST(Units, FormatsDurationsCompactly) {
  EXPECT_EQ(kinfra::format_duration(250ms), "250ms");
  EXPECT_EQ(kinfra::format_duration(2000ms), "2s");
  EXPECT_EQ(kinfra::format_duration(90'000ms), "1m30s");
}
