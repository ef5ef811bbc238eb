#include "fallback/access_policy.hpp"

#include <gtest/gtest.h>

#include <variant>

using kinfra::admin_config;
using kinfra::local_request;
using kinfra::fallback::access;
using kinfra::fallback::check_action;
using kinfra::fallback::check_read;

namespace {
local_request from(bool loopback, std::string_view auth = {}, std::string_view origin = {},
                   std::string_view host = "127.0.0.1:9100") {
  local_request r;
  r.client_is_loopback = loopback;
  r.authorization = auth;
  r.origin = origin;
  r.host_header = host;
  r.method = "POST";
  return r;
}

kinfra::admin_host entry(std::string_view text) { return std::get<kinfra::admin_host>(kinfra::parse_admin_host(text)); }
}  // namespace

TEST(AccessPolicy, LoopbackOnlyByDefault) {
  admin_config a;
  EXPECT_EQ(check_read(a, from(true)), access::allowed);
  EXPECT_EQ(check_read(a, from(false)), access::remote_refused);
  EXPECT_EQ(check_action(a, from(false)), access::remote_refused);
  EXPECT_EQ(check_action(a, from(true)), access::allowed) << "no token set: loopback actions are open, as the spec says";
}

TEST(AccessPolicy, ATokenGuardsReadsAndActionsFromLoopbackToo) {
  admin_config a;
  a.token = "s3cret-token";
  EXPECT_EQ(check_read(a, from(true)), access::token_required) << "a rebinding page must not read logs either";
  EXPECT_EQ(check_read(a, from(true, "Bearer s3cret-token")), access::allowed);
  EXPECT_TRUE(kinfra::fallback::may_see_shell(check_read(a, from(true)))) << "the page that asks for the token";
  EXPECT_EQ(check_action(a, from(true)), access::token_required);
  EXPECT_EQ(check_action(a, from(true, "Bearer wrong-token")), access::token_wrong);
  EXPECT_EQ(check_action(a, from(true, "Bearer s3cret-token")), access::allowed);
  EXPECT_EQ(check_action(a, from(true, "bearer  s3cret-token ")), access::allowed);
  EXPECT_EQ(check_action(a, from(true, "Basic s3cret-token")), access::token_required);
  EXPECT_EQ(check_action(a, from(true, "Bearer s3cret-token-longer")), access::token_wrong);
}

TEST(AccessPolicy, AllowRemoteNeedsTheTokenForEverything) {
  admin_config a;
  a.token = "s3cret-token";
  a.allow_remote = true;
  EXPECT_EQ(check_read(a, from(false)), access::token_required);
  EXPECT_EQ(check_read(a, from(false, "Bearer nope")), access::token_wrong);
  EXPECT_EQ(check_read(a, from(false, "Bearer s3cret-token")), access::allowed);
  EXPECT_EQ(check_action(a, from(false, "Bearer s3cret-token")), access::allowed);
}

TEST(AccessPolicy, RefusesCrossSiteActions) {
  admin_config a;
  EXPECT_EQ(check_action(a, from(true, {}, "http://127.0.0.1:9100")), access::allowed);
  EXPECT_EQ(check_action(a, from(true, {}, "HTTP://127.0.0.1:9100")), access::allowed);
  EXPECT_EQ(check_action(a, from(true, {}, "http://evil.example")), access::cross_site);
  EXPECT_EQ(check_action(a, from(true, {}, "http://127.0.0.1:9101")), access::cross_site);
  EXPECT_EQ(check_action(a, from(true, {}, "null")), access::cross_site);
}

TEST(AccessPolicy, OnlyKinfrasOwnNamesAreAdmin) {
  admin_config a;
  for (auto host : {"127.0.0.1:9000", "127.0.0.1", "127.8.9.10:1", "[::1]:9100", "[::1]", "localhost:9000", "LOCALHOST",
                    "[::ffff:127.0.0.1]:80"})
    EXPECT_EQ(check_read(a, from(true, {}, {}, host)), access::allowed) << host;
  for (auto host : {"attacker.example:9000", "attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io",
                    "localhost.", "10.0.0.5:9000", "[fd00::1]:9000", "", "127.0.0.1:abc", "a b"})
    EXPECT_EQ(check_read(a, from(true, {}, {}, host)), access::host_refused) << host;
  EXPECT_EQ(check_action(a, from(true, {}, "http://attacker.example:9000", "attacker.example:9000")),
            access::host_refused) << "a rebound page is refused even when its Origin matches its Host";
  a.hosts = {entry("kinfra.example.com"), entry("10.0.0.5:9000"), entry("*.corp.example")};
  EXPECT_EQ(check_read(a, from(true, {}, {}, "kinfra.example.com")), access::allowed);
  EXPECT_EQ(check_read(a, from(true, {}, {}, "KINFRA.example.com:8443")), access::allowed) << "no port: any port";
  EXPECT_EQ(check_read(a, from(true, {}, {}, "10.0.0.5:9000")), access::allowed);
  EXPECT_EQ(check_read(a, from(true, {}, {}, "10.0.0.5:9001")), access::host_refused) << "that port only";
  EXPECT_EQ(check_read(a, from(true, {}, {}, "dash.corp.example")), access::allowed);
  EXPECT_EQ(check_read(a, from(true, {}, {}, "corp.example")), access::host_refused) << "a wildcard needs a label";
  EXPECT_EQ(check_read(a, from(true, {}, {}, "evilcorp.example")), access::host_refused);
}

TEST(AccessPolicy, OriginMustBeKinfrasOwnAndTheRequestsOwn) {
  admin_config a;
  a.hosts = {entry("kinfra.example.com")};
  EXPECT_EQ(check_action(a, from(true, {}, "http://localhost:9000", "localhost:9000")), access::allowed);
  EXPECT_EQ(check_action(a, from(true, {}, "http://localhost:3000", "localhost:9000")), access::cross_site)
      << "another local port is another origin";
  EXPECT_EQ(check_action(a, from(true, {}, "https://kinfra.example.com", "kinfra.example.com")), access::allowed);
  EXPECT_EQ(check_action(a, from(true, {}, "https://kinfra.example.com:443", "kinfra.example.com")), access::allowed);
  EXPECT_EQ(check_action(a, from(true, {}, "http://attacker.example", "kinfra.example.com")), access::cross_site);
  EXPECT_EQ(check_action(a, from(true, {}, "http://127.0.0.1:9000", "localhost:9000")), access::cross_site);
  EXPECT_EQ(check_action(a, from(true, {}, "file://", "localhost:9000")), access::cross_site);
  EXPECT_EQ(check_action(a, from(true, {}, "http://localhost:9000/x", "localhost:9000")), access::cross_site);
  auto over_tls = [](std::string_view origin) {
    auto r = from(true, {}, origin, "kinfra.example.com");
    r.tls = true;
    return r;
  };
  EXPECT_EQ(check_action(a, over_tls("https://kinfra.example.com")), access::allowed);
  EXPECT_EQ(check_action(a, over_tls("http://kinfra.example.com")), access::cross_site)
      << "on HTTPS, a plain-http page of the same name is another origin";
}

TEST(AccessPolicy, SecFetchSiteRefusesActionsFromOtherSites) {
  admin_config a;
  auto with_site = [](std::string_view site, std::string_view origin = {}) {
    auto r = from(true, {}, origin);
    r.fetch_site = site;
    return r;
  };
  EXPECT_EQ(check_action(a, with_site("cross-site")), access::cross_site) << "no Origin, but a browser says cross-site";
  EXPECT_EQ(check_action(a, with_site("same-site")), access::cross_site);
  EXPECT_EQ(check_action(a, with_site("Cross-Site")), access::cross_site);
  EXPECT_EQ(check_action(a, with_site("same-origin", "http://127.0.0.1:9100")), access::allowed);
  EXPECT_EQ(check_action(a, with_site("none")), access::allowed) << "typed in the address bar";
  EXPECT_EQ(check_action(a, with_site("")), access::allowed) << "not a browser (curl, the CLI)";
}

TEST(AccessPolicy, ActionsCanBeTurnedOff) {
  admin_config a;
  a.actions = false;
  EXPECT_EQ(check_action(a, from(true)), access::actions_disabled);
  EXPECT_EQ(check_read(a, from(true)), access::allowed);
}

TEST(AccessPolicy, ComparesSecretsExactly) {
  using kinfra::fallback::constant_time_equals;
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "abcd"));
  EXPECT_FALSE(constant_time_equals("", "a"));
  EXPECT_TRUE(constant_time_equals("", ""));
}
