// Access log lines: nginx's combined format, JSON, and the file writer.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/access_log.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

kinfra::access_entry sample() {
  kinfra::access_entry e;
  e.time = std::chrono::system_clock::from_time_t(1795809415) + 123ms;  // 2026-11-27 19:56:55 UTC
  e.client_ip = "127.0.0.1";
  e.method = "GET";
  e.target = "/api/items?x=1";
  e.version = 11;
  e.host = "example.com";
  e.referer = "http://example.com/";
  e.user_agent = "curl/8.0";
  e.route = "/api";
  e.service = "api";
  e.upstream = "http://127.0.0.1:8000";
  e.status = 200;
  e.body_bytes_sent = 1234;
  e.bytes_sent = 1400;
  e.bytes_received = 80;
  e.duration = 2345us;
  return e;
}

class AccessLogFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = std::getenv("TZ");
    saved_ = tz ? tz : "";
    had_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  void TearDown() override {
    if (had_) setenv("TZ", saved_.c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }
  std::string saved_;
  bool had_ = false;
};

TEST_F(AccessLogFormat, CombinedIsNginxs) {
  std::string line;
  kinfra::format_combined(sample(), line);
  EXPECT_EQ(line,
            "127.0.0.1 - - [27/Nov/2026:19:56:55 +0000] \"GET /api/items?x=1 HTTP/1.1\" 200 1234 "
            "\"http://example.com/\" \"curl/8.0\"");
}

TEST_F(AccessLogFormat, CombinedEscapesQuotesAndControlBytesAndMarksMissingFields) {
  auto e = sample();
  e.user_agent = "evil\"agent\n\x7f";
  e.referer = "";
  e.version = 10;
  std::string line;
  kinfra::format_combined(e, line);
  EXPECT_NE(line.find("HTTP/1.0\" 200 1234 \"-\" \"evil\\x22agent\\x0A\\x7F\""), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);

  kinfra::access_entry unread;  // nothing parsed, no answer: nginx's 499 and "-"
  unread.time = sample().time;
  unread.client_ip = "10.0.0.1";
  line.clear();
  kinfra::format_combined(unread, line);
  EXPECT_EQ(line, "10.0.0.1 - - [27/Nov/2026:19:56:55 +0000] \"-\" 499 0 \"-\" \"-\"");
}

TEST_F(AccessLogFormat, JsonHasEveryFieldAndAlwaysParses) {
  std::string line;
  kinfra::format_json(sample(), line);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "2026-11-27T19:56:55.123Z");
  EXPECT_EQ(j["client"], "127.0.0.1");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["target"], "/api/items?x=1");
  EXPECT_EQ(j["protocol"], "HTTP/1.1");
  EXPECT_EQ(j["host"], "example.com");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["body_bytes_sent"], 1234);
  EXPECT_EQ(j["bytes_sent"], 1400);
  EXPECT_EQ(j["bytes_received"], 80);
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 2.345);
  EXPECT_EQ(j["route"], "/api");
  EXPECT_EQ(j["service"], "api");
  EXPECT_EQ(j["upstream"], "http://127.0.0.1:8000");
  EXPECT_EQ(j["referer"], "http://example.com/");
  EXPECT_EQ(j["user_agent"], "curl/8.0");
  EXPECT_EQ(j["tls"], false);

  auto e = sample();
  e.user_agent = "caf\xc3\xa9 \xff\xfe \"q\" \x01";  // valid UTF-8, invalid bytes, quotes, a control byte
  line.clear();
  kinfra::format_json(e, line);
  auto k = nlohmann::json::parse(line);  // throws if the line is not valid JSON
  EXPECT_EQ(k["user_agent"], "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd \"q\" \x01");
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool wait_for_lines(const std::string& path, std::size_t n) {
  for (int i = 0; i < 250; ++i) {
    if (lines_of(path).size() >= n) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(AccessLogFile, WritesLinesAndReopensAfterRotation) {
  auto dir = fs::temp_directory_path() / ("kinfra-access-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "logs" / "access.log").string();  // the folder is created
  {
    kinfra::access_log_config cfg;
    cfg.to = path;
    kinfra::access_log log(cfg);
    for (int i = 0; i < 3; ++i) log.write(sample());
    ASSERT_TRUE(wait_for_lines(path, 3));
    EXPECT_NE(lines_of(path)[0].find("\"GET /api/items?x=1 HTTP/1.1\" 200"), std::string::npos);

    // logrotate: the file is moved away, then kinfra is told to reopen (SIGUSR1).
    fs::rename(path, path + ".1");
    std::string error;
    ASSERT_TRUE(log.reopen(error)) << error;
    auto e = sample();
    e.target = "/after-rotation";
    log.write(e);
    ASSERT_TRUE(wait_for_lines(path, 1));
    EXPECT_NE(lines_of(path)[0].find("/after-rotation"), std::string::npos);
    EXPECT_EQ(lines_of(path + ".1").size(), 3u);
  }
  fs::remove_all(dir);
}

TEST(AccessLogFile, AFileThatCannotBeOpenedIsAClearError) {
  kinfra::access_log_config cfg;
  cfg.to = "/proc/kinfra-cannot-write-here/access.log";
  try {
    kinfra::access_log log(cfg);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/kinfra-cannot-write-here/access.log"), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(AccessLogFile, AFailedReopenKeepsWritingToTheOldFile) {
  auto dir = fs::temp_directory_path() / ("kinfra-access-fail-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "logs" / "access.log").string();
  {
    kinfra::access_log_config cfg;
    cfg.to = path;
    kinfra::access_log log(cfg);
    log.write(sample());
    ASSERT_TRUE(wait_for_lines(path, 1));
    // The folder is moved away and a file takes its name: the log cannot be opened again.
    fs::rename(dir / "logs", dir / "logs.old");
    std::ofstream(dir / "logs") << "not a folder";
    std::string error;
    EXPECT_FALSE(log.reopen(error));
    EXPECT_NE(error.find(path), std::string::npos) << error;
    log.write(sample());
    EXPECT_TRUE(wait_for_lines((dir / "logs.old" / "access.log").string(), 2)) << "the old file is still written";
  }
  fs::remove_all(dir);
}
