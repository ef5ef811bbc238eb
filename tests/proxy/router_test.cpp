#include "proxy/router.hpp"

#include <gtest/gtest.h>

#include "common/config_loader.hpp"

namespace {

std::shared_ptr<const kinfra::config> load(const std::string& yaml) {
  auto r = kinfra::load_config_string(yaml, "/tmp/routes.yaml");
  if (!r.ok()) throw std::runtime_error(r.errors.at(0).message);
  return r.cfg;
}

std::string service_for(const kinfra::proxy::router& r, std::string_view host, std::string_view path) {
  const auto* m = r.match(host, path);
  return m ? m->service : "<none>";
}

const char* services = R"(
services:
  api: { url: http://127.0.0.1:1 }
  api2: { url: http://127.0.0.1:2 }
  web: { url: http://127.0.0.1:3 }
  admin: { url: http://127.0.0.1:4 }
  tenant: { url: http://127.0.0.1:5 }
  deep: { url: http://127.0.0.1:6 }
)";

}  // namespace

TEST(Router, PrefixIsSegmentAware) {
  auto cfg = load(std::string("routes:\n  - { path: /api, service: api }\n  - { path: /, service: web }\n") + services);
  kinfra::proxy::router r(*cfg);
  EXPECT_EQ(service_for(r, "", "/api"), "api");
  EXPECT_EQ(service_for(r, "", "/api/"), "api");
  EXPECT_EQ(service_for(r, "", "/api/x/y"), "api");
  EXPECT_EQ(service_for(r, "", "/apix"), "web");
  EXPECT_EQ(service_for(r, "", "/ap"), "web");
  EXPECT_EQ(service_for(r, "", "/"), "web");
}

TEST(Router, LongestPrefixWinsWhateverTheOrderInTheFile) {
  auto cfg = load(std::string("routes:\n  - { path: /, service: web }\n  - { path: /api, service: api }\n"
                              "  - { path: /api/v2, service: api2 }\n") +
                  services);
  kinfra::proxy::router r(*cfg);
  EXPECT_EQ(service_for(r, "", "/api/v2/users"), "api2");
  EXPECT_EQ(service_for(r, "", "/api/v2"), "api2");
  EXPECT_EQ(service_for(r, "", "/api/v20"), "api");
  EXPECT_EQ(service_for(r, "", "/api/v1"), "api");
  EXPECT_EQ(service_for(r, "", "/other"), "web");
}

TEST(Router, NoRouteMeansNoMatch) {
  auto cfg = load(std::string("routes:\n  - { path: /api, service: api }\n") + services);
  kinfra::proxy::router r(*cfg);
  EXPECT_EQ(r.match("", "/"), nullptr);
  EXPECT_EQ(r.match("", "/apiary"), nullptr);
}

TEST(Router, ExactHostBeatsWildcardBeatsAnyHost) {
  auto cfg = load(std::string(R"(routes:
  - { path: /, service: web }
  - { path: /, service: admin, host: admin.example.com }
  - { path: /, service: tenant, host: "*.example.com" }
  - { path: /, service: deep, host: "*.eu.example.com" }
)") + services);
  kinfra::proxy::router r(*cfg);
  EXPECT_TRUE(r.uses_hosts());
  EXPECT_EQ(service_for(r, "admin.example.com", "/x"), "admin");
  EXPECT_EQ(service_for(r, "shop.example.com", "/x"), "tenant");
  EXPECT_EQ(service_for(r, "a.b.example.com", "/x"), "tenant");
  EXPECT_EQ(service_for(r, "shop.eu.example.com", "/x"), "deep") << "the longer wildcard is more specific";
  EXPECT_EQ(service_for(r, "example.com", "/x"), "web") << "*.example.com does not match the bare domain";
  EXPECT_EQ(service_for(r, "other.org", "/x"), "web");
  EXPECT_EQ(service_for(r, "", "/x"), "web");
}

TEST(Router, FallsBackToRoutesWithoutHostWhenTheHostGroupHasNoMatchingPath) {
  auto cfg = load(std::string(R"(routes:
  - { path: /, service: web }
  - { path: /admin, service: admin, host: admin.example.com }
)") + services);
  kinfra::proxy::router r(*cfg);
  EXPECT_EQ(service_for(r, "admin.example.com", "/admin/users"), "admin");
  EXPECT_EQ(service_for(r, "admin.example.com", "/public"), "web");
}

TEST(Router, CarriesStripPrefixAndEffectiveBodyLimit) {
  auto cfg = load(std::string(R"(limits: { max_body_bytes: 1MiB }
routes:
  - { path: /api, service: api, strip_prefix: true, max_body_bytes: 10 }
  - { path: /, service: web }
)") + services);
  kinfra::proxy::router r(*cfg);
  const auto* api = r.match("", "/api/x");
  ASSERT_NE(api, nullptr);
  EXPECT_TRUE(api->strip_prefix);
  EXPECT_EQ(api->max_body_bytes, 10u);
  EXPECT_EQ(r.match("", "/")->max_body_bytes, 1024u * 1024);
  EXPECT_EQ(cfg->services[api->service_index].name, "api");
}
