// The routes.yaml that ships with kinfra, with its demo services, as a new user runs it (on
// ephemeral ports instead of 9100/8000/8001, so tests can run side by side).
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "http_test.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/** The shipped routes.yaml with its ports replaced, its services run from the source tree. */
std::string default_config(std::uint16_t api_port, std::uint16_t web_port) {
  std::ifstream in(fs::path(KINFRA_SOURCE_DIR) / "routes.yaml");
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  yaml = std::regex_replace(yaml, std::regex("listen: 0\\.0\\.0\\.0:9100"), "listen: 127.0.0.1:0");
  yaml = std::regex_replace(yaml, std::regex("port: 8000"), "port: " + std::to_string(api_port));
  yaml = std::regex_replace(yaml, std::regex("port: 8001"), "port: " + std::to_string(web_port));
  // The commands are relative to the folder of routes.yaml: run them where the real one lives.
  yaml = std::regex_replace(yaml, std::regex("(\n    command: [^\n]*)"), "$1\n    cwd: " + std::string(KINFRA_SOURCE_DIR));
  return yaml;
}

}  // namespace

TEST(DefaultConfig, PassesCheck) {
  auto r = kt::run_kinfra({"check", std::string(KINFRA_SOURCE_DIR) + "/routes.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(DefaultConfig, ServesTheDemoAndSurvivesKillMinus9) {
  kt::kinfra_process k(default_config(kt::free_port(), kt::free_port()), /*add_listen=*/false);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; }, 30s))
      << kt::get_status(k.port()).dump(2) << k.log();
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "frontend") == "running"; }, 30s));
  auto items = kt::http_get(k.port(), "/api/items");
  EXPECT_EQ(items.status, 200);
  EXPECT_NE(items.body.find("\"items\""), std::string::npos);
  auto page = kt::http_get(k.port(), "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("kinfra demo frontend"), std::string::npos);

  std::string pid = kt::get_status(k.port(), "api")["pid"];
  ASSERT_EQ(::kill(std::stoi(pid), SIGKILL), 0);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "error"; }, 3s));
  EXPECT_EQ(kt::get_status(k.port(), "api")["status_message"], "Killed by signal 9");
  EXPECT_EQ(kt::http_get(k.port(), "/").status, 200) << "the other service is not affected";
  // A request while it is down waits for it (hold) instead of getting the page.
  EXPECT_EQ(kt::http_get(k.port(), "/api/items").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "api") == "running"; }, 15s));
  EXPECT_EQ(kt::http_get(k.port(), "/api/items").status, 200);
}
