#include "proxy/router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

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

namespace {

/** The matcher before the prefix tables (issue 20): every route of a host group scanned, longest first. */
const kinfra::route_config* oracle(const kinfra::config& cfg, std::string_view host, std::string_view path) {
  auto best_in = [&](auto&& in_group) -> const kinfra::route_config* {
    const kinfra::route_config* best = nullptr;
    for (const auto& r : cfg.routes)
      if (in_group(r) && kinfra::proxy::router::prefix_matches(r.path, path) && (!best || r.path.size() > best->path.size()))
        best = &r;
    return best;
  };
  if (!host.empty()) {
    if (auto* r = best_in([&](const kinfra::route_config& r) { return r.host == host; })) return r;
    // Wildcards: the longest suffix whose group has a match.
    std::vector<std::string> suffixes;
    for (const auto& r : cfg.routes)
      if (r.host.starts_with("*.")) suffixes.push_back(r.host.substr(1));
    std::sort(suffixes.begin(), suffixes.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
    for (const auto& suffix : suffixes) {
      if (host.size() <= suffix.size() || !host.ends_with(suffix)) continue;
      if (auto* r = best_in([&](const kinfra::route_config& r) { return r.host == "*" + suffix; })) return r;
    }
  }
  return best_in([](const kinfra::route_config& r) { return r.host.empty(); });
}

}  // namespace

TEST(Router, PrefixTablesAgreeWithTheLinearMatcherOnRandomConfigurations) {
  std::mt19937 rng(20);
  const std::vector<std::string> segments = {"a", "b", "api", "v1", "x", "ab", "a.b", "users", "1"};
  const std::vector<std::string> hosts = {"", "", "example.com", "a.example.com", "*.example.com",
                                          "*.a.example.com", "other.test", "*.test"};
  const std::vector<std::string> asked_hosts = {"", "example.com", "a.example.com", "b.a.example.com",
                                                "c.example.com", "other.test", "x.other.test", "unknown.org",
                                                "example.com.evil"};
  auto random_path = [&](int max_segments) {
    std::string p;
    int n = static_cast<int>(rng() % (max_segments + 1));
    for (int i = 0; i < n; ++i) p += "/" + segments[rng() % segments.size()];
    return p.empty() ? std::string("/") : p;
  };
  for (int round = 0; round < 200; ++round) {
    kinfra::config cfg;
    // From a few routes (scanned) to many (the tables), duplicates included.
    const int count = round % 2 ? 3 + static_cast<int>(rng() % 5) : 8 + static_cast<int>(rng() % 120);
    for (int i = 0; i < count; ++i) {
      kinfra::route_config r;
      r.host = hosts[rng() % hosts.size()];
      r.path = random_path(4);
      r.service = "s" + std::to_string(i);
      cfg.routes.push_back(r);
      kinfra::service_config svc;
      svc.name = r.service;
      cfg.services.push_back(svc);
    }
    kinfra::proxy::router table(cfg);
    for (int q = 0; q < 300; ++q) {
      const std::string host = asked_hosts[rng() % asked_hosts.size()];
      const std::string path = random_path(6) + (rng() % 5 == 0 ? "/" : "");
      const auto* want = oracle(cfg, host, path);
      const auto* got = table.match(host, path);
      ASSERT_EQ(got ? got->service : "<none>", want ? want->service : "<none>")
          << "round " << round << ", host '" << host << "', path " << path;
    }
  }
}

TEST(Router, TenThousandRoutesAreLookedUpByTheirSegments) {
  kinfra::config cfg;
  kinfra::service_config svc;
  svc.name = "app";
  cfg.services.push_back(svc);
  for (int i = 0; i < 10000; ++i) {
    kinfra::route_config r;
    r.path = "/r" + std::to_string(i) + "/x";
    r.service = "app";
    cfg.routes.push_back(r);
  }
  kinfra::route_config exact;
  exact.host = "h9999.test";
  exact.path = "/";
  exact.service = "app";
  cfg.routes.push_back(exact);
  kinfra::proxy::router table(cfg);
  EXPECT_EQ(table.match("", "/r9999/x/y")->prefix, "/r9999/x");
  EXPECT_EQ(table.match("", "/r0/x")->prefix, "/r0/x");
  EXPECT_EQ(table.match("", "/r0"), nullptr);
  EXPECT_EQ(table.match("", "/r10000/x"), nullptr);
  EXPECT_EQ(table.match("h9999.test", "/r5/x")->host, "h9999.test") << "the exact host's group first";
}

TEST(Router, ALongHostCostsNoMoreThanTheLongestWildcard) {
  auto cfg = load(std::string(services) + "routes:\n  - { host: \"*.example.com\", path: /, service: tenant }\n"
                                          "  - { path: /, service: web }\n");
  kinfra::proxy::router r(*cfg);
  std::string host;
  for (int i = 0; i < 16000; ++i) host += "a.";
  EXPECT_EQ(service_for(r, host + "example.com", "/"), "tenant");
  EXPECT_EQ(service_for(r, host + "example.org", "/"), "web");
  EXPECT_EQ(service_for(r, "x.example.com", "/"), "tenant");
  EXPECT_EQ(service_for(r, "example.com", "/"), "web") << "a suffix needs something before it";
}
