// The kinfra command line: --version, --help, check, and run refusing a broken routes.yaml.
#include <gtest/gtest.h>

#include "http_test.hpp"

TEST(Cli, PrintsVersion) {
  auto r = kt::run_kinfra({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("kinfra 0."), std::string::npos) << r.out;
}

TEST(Cli, PrintsHelpWithSubcommands) {
  auto r = kt::run_kinfra({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("run"), std::string::npos);
  EXPECT_NE(r.out.find("check"), std::string::npos);
}

TEST(Cli, CheckAcceptsAValidFile) {
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "routes:\n  - { path: /, service: a }\nservices:\n  a: { url: http://127.0.0.1:1 }\n");
  auto r = kt::run_kinfra({"check", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("OK"), std::string::npos);
}

TEST(Cli, CheckPrintsEveryErrorWithFileLineAndColumn) {
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml",
                        "routes:\n  - path: /api\n    service: missing\n  - path: nope\n    service: a\n"
                        "services:\n  a: { url: http://127.0.0.1:1, bogus: 1 }\n");
  auto r = kt::run_kinfra({"check", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path + ":3:14: route points to unknown service 'missing'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":4:11: route path \"nope\" must start with '/'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":7:33: unknown key 'bogus'"), std::string::npos) << r.err;
}

TEST(Cli, CheckReportsYamlSyntaxErrors) {
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "routes:\n  - path: /\n   service: [\n");
  auto r = kt::run_kinfra({"check", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path + ":"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("YAML syntax error"), std::string::npos) << r.err;
}

TEST(Cli, CheckOfAMissingFileFails) {
  auto r = kt::run_kinfra({"check", "/nonexistent/routes.yaml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot read"), std::string::npos) << r.err;
}

TEST(Cli, RunRefusesABrokenFileAndSaysWhy) {
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "listen: 127.0.0.1:0\nroutes:\n  - { path: /, service: ghost }\n");
  auto r = kt::run_kinfra({"run", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path + ":3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did not start"), std::string::npos) << r.err;
}

TEST(Cli, RunReportsAnAddressInUse) {
  kt::test_upstream busy;  // holds a port
  kt::temp_dir dir;
  auto path = dir.write("routes.yaml", "listen: 127.0.0.1:" + std::to_string(busy.port()) +
                                           "\nroutes: []\nservices: {}\n");
  auto r = kt::run_kinfra({"run", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(busy.port())), std::string::npos) << r.err;
}

TEST(Cli, UnknownSubcommandIsAnError) {
  auto r = kt::run_kinfra({"frobnicate"});
  EXPECT_NE(r.exit_code, 0);
}

TEST(Cli, StopsCleanlyOnSigterm) {
  kt::kinfra_process k("workers: 1\nroutes: []\nservices: {}\n");
  EXPECT_EQ(k.stop(), 0) << k.log();
}
