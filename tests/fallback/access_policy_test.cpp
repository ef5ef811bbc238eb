#include "fallback/access_policy.hpp"

#include <gtest/gtest.h>

using kinfra::admin_config;
using kinfra::local_request;
using kinfra::fallback::access;
using kinfra::fallback::check_action;
using kinfra::fallback::check_read;

namespace {
local_request from(bool loopback, std::string_view auth = {}, std::string_view origin = {}) {
  local_request r;
  r.client_is_loopback = loopback;
  r.authorization = auth;
  r.origin = origin;
  r.host_header = "127.0.0.1:9100";
  r.method = "POST";
  return r;
}
}  // namespace

TEST(AccessPolicy, LoopbackOnlyByDefault) {
  admin_config a;
  EXPECT_EQ(check_read(a, from(true)), access::allowed);
  EXPECT_EQ(check_read(a, from(false)), access::remote_refused);
  EXPECT_EQ(check_action(a, from(false)), access::remote_refused);
  EXPECT_EQ(check_action(a, from(true)), access::allowed) << "no token set: loopback actions are open, as the spec says";
}

TEST(AccessPolicy, ATokenGuardsActions) {
  admin_config a;
  a.token = "s3cret-token";
  EXPECT_EQ(check_read(a, from(true)), access::allowed);
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
