#include "proxy/uri_path.hpp"

#include <gtest/gtest.h>

namespace {

std::string norm(std::string_view target) {
  std::string scratch;
  kinfra::proxy::normalised_target out;
  if (!kinfra::proxy::normalise_target(target, scratch, out)) return "<invalid>";
  std::string s(out.path);
  if (out.has_query) s += "?" + std::string(out.query);
  return s;
}

}  // namespace

TEST(UriPath, CanonicalPathsAreUntouchedAndNotCopied) {
  std::string scratch;
  kinfra::proxy::normalised_target out;
  std::string_view target = "/api/items?x=1";
  ASSERT_TRUE(kinfra::proxy::normalise_target(target, scratch, out));
  EXPECT_EQ(out.path, "/api/items");
  EXPECT_EQ(out.path.data(), target.data());
  EXPECT_EQ(out.query, "x=1");
  EXPECT_TRUE(scratch.empty());
}

TEST(UriPath, ResolvesDotSegmentsAndMergesSlashes) {
  EXPECT_EQ(norm("/a/./b"), "/a/b");
  EXPECT_EQ(norm("/a/b/../c"), "/a/c");
  EXPECT_EQ(norm("/a//b///c"), "/a/b/c");
  EXPECT_EQ(norm("/a/b/.."), "/a/");
  EXPECT_EQ(norm("/a/."), "/a/");
  EXPECT_EQ(norm("//"), "/");
  EXPECT_EQ(norm("/a/b/?q=/../"), "/a/b/?q=/../") << "the query is not a path";
}

TEST(UriPath, DecodesUnreservedEscapesOnly) {
  EXPECT_EQ(norm("/%61pi/x"), "/api/x");
  EXPECT_EQ(norm("/api/%2e%2e/admin"), "/admin");
  EXPECT_EQ(norm("/api%2Fx"), "/api%2Fx") << "an encoded slash is not a separator";
  EXPECT_EQ(norm("/api%2F..%2Fadmin"), "<invalid>") << "…but one hiding a dot segment is refused (issue 20)";
  EXPECT_EQ(norm("/a%2fb"), "/a%2Fb");
  EXPECT_EQ(norm("/a%20b"), "/a%20b");
}

TEST(UriPath, RefusesWhatCannotBeAPath) {
  EXPECT_EQ(norm("/.."), "<invalid>");
  EXPECT_EQ(norm("/a/../../b"), "<invalid>");
  EXPECT_EQ(norm("/%2e%2e/etc"), "<invalid>");
  EXPECT_EQ(norm("/bad%zz"), "<invalid>");
  EXPECT_EQ(norm("/bad%2"), "<invalid>");
  EXPECT_EQ(norm("http://example.com/"), "<invalid>");
  EXPECT_EQ(norm("*"), "<invalid>");
  EXPECT_EQ(norm(""), "<invalid>");
  EXPECT_EQ(norm("/a#frag"), "<invalid>");
}

TEST(UriPath, StripsAPrefixKeepingTheLeadingSlash) {
  using kinfra::proxy::strip_path_prefix;
  EXPECT_EQ(strip_path_prefix("/api/users", "/api"), "/users");
  EXPECT_EQ(strip_path_prefix("/api", "/api"), "/");
  EXPECT_EQ(strip_path_prefix("/api/", "/api"), "/");
  EXPECT_EQ(strip_path_prefix("/x", "/"), "/x");
}

TEST(UriPath, RefusesDotSegmentsHiddenFromTheRouter) {
  // Behind an encoded slash or a backslash: an upstream that decodes them would climb out of the
  // route the request matched (issue 20).
  for (const char* t : {"/api/..%2fadmin", "/api/..%2Fadmin", "/api/%2f..%2fx", "/api/%2F..", "/api/x%2F..%2F..%2Fetc",
                        "/api/.%2Fx", "/api/..%5cadmin", "/api/..%5Cadmin", "/api/..\\admin", "/api/x\\..\\..\\y",
                        "/api/%2e%2e%2fadmin", "/api/.%2e%2Fadmin",
                        // behind a ';' (Tomcat and Spring read "..;" as "..")
                        "/api/..;/admin", "/api/..;jsessionid=1/x", "/api/.;x/y",
                        // an encoded NUL, and the overlong forms of '.' and '/'
                        "/api/a%00b", "/api/%c0%ae%c0%ae/x", "/api/%C0%AF", "/api/%c1%9c"})
    EXPECT_EQ(norm(t), "<invalid>") << t;
  // What hides nothing passes, with its escapes kept.
  EXPECT_EQ(norm("/api/group%2Fproject"), "/api/group%2Fproject");
  EXPECT_EQ(norm("/api/a%2fb%2fc"), "/api/a%2Fb%2Fc");
  EXPECT_EQ(norm("/api/..a%2F"), "/api/..a%2F");
  EXPECT_EQ(norm("/api/x;v=1/y"), "/api/x;v=1/y");
  EXPECT_EQ(norm("/api/...%2Fx"), "/api/...%2Fx") << "three dots are a name";
  EXPECT_EQ(norm("/api/a\\b"), "/api/a\\b");
  EXPECT_EQ(norm("/api/%e2%82%ac"), "/api/%E2%82%AC") << "real UTF-8 stays";
}

TEST(UriPath, RefusesDoubleEncodedAndOverlongFormsAndFlagsDisguisedSeparators) {
  for (const char* t : {"/api/..%252Fadmin", "/api/%252e%252e%252fadmin", "/api/%252E%252E%255Cx",
                        "/api/%e0%80%ae%e0%80%ae/x", "/api/%E0%80%AF", "/api/%f0%80%80%ae", "/api/%f5",
                        "/api/\xc0\xae\xc0\xae/x", "/api/\xe0\x80\xaf"})
    EXPECT_EQ(norm(t), "<invalid>") << t;
  EXPECT_EQ(norm("/api/%252Fx"), "/api/%252Fx") << "a double-encoded slash hiding nothing passes";
  EXPECT_EQ(norm("/caf\xc3\xa9"), "/caf\xc3\xa9") << "real UTF-8, raw, passes";
  EXPECT_EQ(norm("/%e0%a4%85"), "/%E0%A4%85") << "a three-byte form that is not overlong passes";
  auto flagged = [](std::string_view target) {
    std::string scratch;
    kinfra::proxy::normalised_target out;
    return kinfra::proxy::normalise_target(target, scratch, out) && out.disguised_separators;
  };
  EXPECT_TRUE(flagged("/admin;x/secret"));
  EXPECT_TRUE(flagged("/admin%2Fsecret"));
  EXPECT_TRUE(flagged("/admin\\secret"));
  EXPECT_FALSE(flagged("/admin/secret"));
  EXPECT_FALSE(flagged("/admin/%41"));
}

TEST(UriPath, TheRoutingKeyIsThePathAsALenientUpstreamReadsIt) {
  using kinfra::proxy::routing_key;
  EXPECT_EQ(routing_key("/admin;x/secret"), "/admin/secret");
  EXPECT_EQ(routing_key("/admin%2Fsecret"), "/admin/secret");
  EXPECT_EQ(routing_key("/admin%5Csecret"), "/admin/secret");
  EXPECT_EQ(routing_key("/admin\\secret"), "/admin/secret");
  EXPECT_EQ(routing_key("/admin%252Fsecret"), "/admin/secret");
  EXPECT_EQ(routing_key("/a;b=1;c=2/d;e"), "/a/d");
  EXPECT_EQ(routing_key("/admin%2F"), "/admin");
  EXPECT_EQ(routing_key("/x/"), "/x/");
  EXPECT_EQ(routing_key("/;x"), "/");
}
