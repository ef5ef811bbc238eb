#include "common/config_loader.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cstdlib>

namespace {

using kinfra::config_load_result;

config_load_result load(const std::string& yaml) { return kinfra::load_config_string(yaml, "/tmp/routes.yaml"); }

/** All errors as "LINE:COL: message" lines, for readable failures. */
std::string errors_of(const config_load_result& r) {
  std::string out;
  for (const auto& e : r.errors) out += std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message + "\n";
  return out;
}

bool has_error(const config_load_result& r, int line, const std::string& fragment) {
  return std::any_of(r.errors.begin(), r.errors.end(), [&](const kinfra::config_error& e) {
    return e.line == line && e.message.find(fragment) != std::string::npos;
  });
}

const char* minimal = R"(
routes:
  - path: /api
    service: api
  - path: /
    service: web
services:
  api: { url: http://127.0.0.1:8000 }
  web: { url: "http://localhost:8001/" }
)";

}  // namespace

TEST(RoutesConfig, LoadsTheMinimalExampleWithDefaults) {
  auto r = load(minimal);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& cfg = *r.cfg;
  ASSERT_EQ(cfg.listen.size(), 1u);
  EXPECT_EQ(cfg.listen[0].address.to_string(), "0.0.0.0:9100");
  EXPECT_GE(cfg.workers, 1u);
  ASSERT_EQ(cfg.routes.size(), 2u);
  EXPECT_EQ(cfg.routes[0].path, "/api");
  EXPECT_EQ(cfg.routes[0].service, "api");
  ASSERT_EQ(cfg.services.size(), 2u);
  EXPECT_EQ(cfg.services[1].targets.at(0).address.host, "localhost");
  EXPECT_EQ(cfg.services[1].targets.at(0).address.port, 8001);
  EXPECT_EQ(cfg.limits.max_body_bytes, kinfra::unlimited_bytes);
  EXPECT_EQ(cfg.timeouts.connect, std::chrono::seconds(5));
}

TEST(RoutesConfig, ReadsEverySetting) {
  auto r = load(R"(
listen: [127.0.0.1:9100, "[::1]:9101", ":9102"]
workers: 3
timeouts: { connect: 1s, header: 2s, idle: 30s, upstream_response: 45s, body: 10s, tunnel_idle: 1h }
limits: { max_header_bytes: 16KiB, max_uri_bytes: 4KiB, max_body_bytes: 10MiB }
upstream: { max_idle_per_target: 8, idle_timeout: 15s }
routes:
  - path: /api/
    host: "*.Example.com"
    service: api
    strip_prefix: true
    max_body_bytes: 1MiB
services:
  api:
    targets: [http://127.0.0.1:8000, http://127.0.0.1:8002]
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& cfg = *r.cfg;
  ASSERT_EQ(cfg.listen.size(), 3u);
  EXPECT_EQ(cfg.listen[1].address.to_string(), "[::1]:9101");
  EXPECT_EQ(cfg.listen[2].address.to_string(), "0.0.0.0:9102");
  EXPECT_EQ(cfg.workers, 3u);
  EXPECT_EQ(cfg.timeouts.connect, std::chrono::seconds(1));
  EXPECT_EQ(cfg.timeouts.tunnel_idle, std::chrono::hours(1));
  EXPECT_EQ(cfg.limits.max_header_bytes, 16u * 1024);
  EXPECT_EQ(cfg.limits.max_body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(cfg.upstream.max_idle_per_target, 8u);
  const auto& route = cfg.routes.at(0);
  EXPECT_EQ(route.path, "/api") << "a trailing slash is dropped: prefixes are segment-aware anyway";
  EXPECT_EQ(route.host, "*.example.com");
  EXPECT_TRUE(route.strip_prefix);
  EXPECT_EQ(route.max_body_bytes, 1024u * 1024);
  EXPECT_EQ(cfg.services.at(0).targets.size(), 2u);
}

TEST(RoutesConfig, PortMeansALocalTargetAndCommandIsRelativeToTheFile) {
  auto r = load(R"(
routes: [{ path: /, service: app }]
services:
  app:
    command: ["./app", "--flag"]
    port: 8123
    env: { MODE: demo }
  sh:
    command: "echo hi && sleep 1"
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& app = r.cfg->services.at(0);
  EXPECT_EQ(app.targets.at(0).address.to_string(), "127.0.0.1:8123");
  EXPECT_EQ(app.command, (std::vector<std::string>{"./app", "--flag"}));
  EXPECT_FALSE(app.command_is_shell);
  EXPECT_EQ(app.cwd, "/tmp");
  EXPECT_EQ(app.env.at("MODE"), "demo");
  EXPECT_TRUE(r.cfg->services.at(1).command_is_shell);
}

TEST(RoutesConfig, ReportsYamlSyntaxErrorsWithPosition) {
  auto r = load("routes:\n  - path: /api\n    service: [unclosed\n");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_NE(r.errors[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(RoutesConfig, RejectsUnknownKeysNamingThem) {
  auto r = load(R"(
routes:
  - path: /
    service: web
    sevrice: typo
services:
  web: { url: http://127.0.0.1:8000, colour: blue }
listn: 1
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 5, "unknown key 'sevrice' in route")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 7, "unknown key 'colour'")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 8, "unknown key 'listn'")) << errors_of(r);
  EXPECT_EQ(r.errors.size(), 3u) << errors_of(r);
}

TEST(RoutesConfig, ReportsErrorsWithLineAndColumn) {
  auto r = load("routes:\n  - path: /\n    service: nope\nservices:\n  web: { url: http://127.0.0.1:1 }\n");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_EQ(r.errors[0].column, 14);
  EXPECT_NE(r.errors[0].message.find("unknown service 'nope'"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("known: web"), std::string::npos);
  EXPECT_EQ(kinfra::format_config_error("routes.yaml", r.errors[0]),
            "routes.yaml:3:14: route points to unknown service 'nope' (known: web)");
}

TEST(RoutesConfig, RejectsWrongTypes) {
  auto r = load(R"(
workers: many
timeouts: { connect: soon }
limits: { max_body_bytes: huge }
routes:
  - path: 42x
    service: web
    strip_prefix: maybe
services:
  web: { port: http }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 2, "workers")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 3, "timeouts.connect must be a duration")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 4, "limits.max_body_bytes must be a size")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 6, "must start with '/'")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 8, "strip_prefix must be true or false")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 10, "port must be an integer")) << errors_of(r);
}

TEST(RoutesConfig, RejectsDuplicateServicesKeysAndRoutes) {
  auto r = load(R"(
routes:
  - path: /api
    service: a
  - path: /api/
    service: a
services:
  a: { url: http://127.0.0.1:1 }
  a: { url: http://127.0.0.1:2 }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 5, "duplicate route for path /api (first defined on line 3)")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 9, "duplicate service 'a'")) << errors_of(r);
}

TEST(RoutesConfig, SamePathOnDifferentHostsIsNotADuplicate) {
  auto r = load(R"(
routes:
  - { path: /, service: a, host: a.example.com }
  - { path: /, service: a, host: "*.example.com" }
  - { path: /, service: a }
services:
  a: { url: http://127.0.0.1:1 }
)");
  EXPECT_TRUE(r.ok()) << errors_of(r);
}

TEST(RoutesConfig, RejectsBadAddresses) {
  auto r = load(R"(
listen: [nowhere:80, "127.0.0.1:99999", "127.0.0.1"]
routes: [{ path: /, service: a }]
services:
  a: { url: "ftp://127.0.0.1:21" }
  b: { url: "http://127.0.0.1:8000/base/path" }
  c: { url: "http://bad host:1" }
  d: { url: "http://127.0.0.1:443", tls: { ca_file: ca.pem } }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 2, "not an IP address")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 2, "invalid port \"99999\"")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 2, "has no port")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 5, "unsupported scheme \"ftp\"")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 6, "has a path")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 7, "invalid host")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 8, "has tls: but no https:// url")) << errors_of(r);
}

TEST(RoutesConfig, RejectsUnsafeRoutePathsAndHosts) {
  auto r = load(R"(
routes:
  - { path: "/a/../b", service: a }
  - { path: "/a//b", service: a }
  - { path: "/a b", service: a }
  - { path: "/x?y", service: a }
  - { path: /ok, service: a, host: "a.*.com" }
  - { path: /ok2, service: a, host: "example.com:80" }
services:
  a: { url: http://127.0.0.1:1 }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 3, "'.' or '..'")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 4, "empty segments")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 5, "spaces")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 6, "'?'")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 7, "is not a host name")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 8, "is not a host name")) << errors_of(r);
  // Issue 20: prefixes that a decoded, normalised request path could never match.
  auto escaped = load(R"(
routes:
  - { path: "/%61pi", service: a }
  - { path: "/a;b", service: a }
  - { path: '/a\b', service: a }
services:
  a: { url: http://127.0.0.1:1 }
)");
  ASSERT_FALSE(escaped.ok());
  EXPECT_TRUE(has_error(escaped, 3, "may not contain '%'")) << errors_of(escaped);
  EXPECT_TRUE(has_error(escaped, 4, "may not contain '%'")) << errors_of(escaped);
  EXPECT_TRUE(has_error(escaped, 5, "may not contain '%'")) << errors_of(escaped);
}

TEST(RoutesConfig, ServiceNeedsSomewhereToForward) {
  auto r = load(R"(
routes: [{ path: /, service: a }]
services:
  a: {}
  b: { url: "http://127.0.0.1:1", port: 8000 }
  c: { url: "http://127.0.0.1:1", targets: ["http://127.0.0.1:2"] }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 4, "needs a url, targets or a port")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 5, "both port and url")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 6, "both url and targets")) << errors_of(r);
}

TEST(RoutesConfig, ReportsEveryErrorNotJustTheFirst) {
  auto r = load(R"(
workers: 0
routes:
  - { path: /, service: x }
  - { service: y }
  - { path: /z }
services:
  "bad name!": { url: http://127.0.0.1:1 }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_GE(r.errors.size(), 5u) << errors_of(r);
  EXPECT_TRUE(std::is_sorted(r.errors.begin(), r.errors.end(), [](auto& a, auto& b) { return a.line < b.line; }));
}

TEST(RoutesConfig, EmptyOrScalarDocumentIsAnErrorNotACrash) {
  for (const char* doc : {"", "42", "[1, 2]", "routes: 5", "services: [a, b]", "routes: [5]", "~"}) {
    auto r = load(doc);
    EXPECT_FALSE(r.ok()) << doc;
    EXPECT_FALSE(r.errors.empty()) << doc;
  }
}

TEST(RoutesConfig, MissingFileIsAnError) {
  auto r = kinfra::load_config_file("/nonexistent/routes.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors.at(0).message.find("cannot read"), std::string::npos);
}

TEST(RoutesConfig, ReadsSupervisorSettings) {
  setenv("KINFRA_TEST_DB", "postgres://x", 1);
  unsetenv("KINFRA_TEST_UNSET");
  auto r = load(R"(
routes: [{ path: /, service: api }]
services:
  api:
    command: ["./api", "--verbose"]
    env: { DATABASE_URL: "${KINFRA_TEST_DB}", MODE: "${KINFRA_TEST_UNSET:-dev}", EMPTY: "${KINFRA_TEST_UNSET}", COST: "$$5" }
    port: 8000
    depends_on: { db: healthy, cache: started }
    health: { http: /health, interval: 2s, timeout: 1s, rise: 2, fall: 3, start_period: 30s }
    restart: { policy: always, max_attempts: 5, backoff: 1s, max_backoff: 30s, reset_after: 1m }
    stop: { signal: INT, timeout: 10s }
    log_lines: 500
  db:
    url: tcp://127.0.0.1:5432
    health: { tcp: true, interval: 5s }
  cache:
    command: redis-server --port 6380
    restart: never
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& api = r.cfg->services.at(0);
  EXPECT_EQ(api.env.at("DATABASE_URL"), "postgres://x");
  EXPECT_EQ(api.env.at("MODE"), "dev");
  EXPECT_EQ(api.env.at("EMPTY"), "");
  EXPECT_EQ(api.env.at("COST"), "$5");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].message.find("${KINFRA_TEST_UNSET} is not set"), std::string::npos);
  EXPECT_EQ(api.health.probe, kinfra::health_config::kind::http);
  EXPECT_EQ(api.health.http_path, "/health");
  EXPECT_EQ(api.health.rise, 2u);
  EXPECT_EQ(api.restart.when, kinfra::restart_config::policy::always);
  EXPECT_EQ(api.restart.reset_after, std::chrono::minutes(1));
  EXPECT_EQ(api.stop.signal, SIGINT);
  EXPECT_EQ(api.log_lines, 500u);
  ASSERT_EQ(api.depends_on.size(), 2u);
  EXPECT_EQ(api.depends_on[0].service, "db");
  EXPECT_EQ(api.depends_on[1].until, kinfra::dependency::condition::started);
  const auto& db = r.cfg->services.at(1);
  EXPECT_FALSE(db.managed());
  ASSERT_TRUE(db.monitor);
  EXPECT_EQ(db.monitor->port, 5432);
  EXPECT_TRUE(db.targets.empty());
  EXPECT_EQ(r.cfg->services.at(2).restart.when, kinfra::restart_config::policy::never);
  EXPECT_TRUE(r.cfg->services.at(2).command_is_shell);
}

TEST(RoutesConfig, StartLevelsFollowDependencies) {
  auto r = load(R"(
services:
  web: { command: w, depends_on: [api] }
  api: { command: a, depends_on: { db: healthy, cache: started } }
  db: { command: d }
  cache: { command: c }
  lone: { command: l }
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  auto levels = r.cfg->start_levels();
  auto name = [&](std::size_t i) { return r.cfg->services[i].name; };
  ASSERT_EQ(levels.size(), 3u);
  std::vector<std::string> first;
  for (auto i : levels[0]) first.push_back(name(i));
  EXPECT_EQ(first, (std::vector<std::string>{"db", "cache", "lone"}));
  EXPECT_EQ(name(levels[1].at(0)), "api");
  EXPECT_EQ(name(levels[2].at(0)), "web");
}

TEST(RoutesConfig, RejectsDependencyCyclesAndUnknownDependencies) {
  auto r = load(R"(
services:
  a: { command: a, depends_on: [b] }
  b: { command: b, depends_on: { c: healthy } }
  c: { command: c, depends_on: [a] }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(errors_of(r).find("depends_on forms a cycle: "), std::string::npos) << errors_of(r);
  auto u = load("services:\n  a: { command: a, depends_on: [ghost, a] }\n");
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(has_error(u, 2, "depends on unknown service 'ghost'")) << errors_of(u);
  EXPECT_TRUE(has_error(u, 2, "depends on itself")) << errors_of(u);
}

TEST(RoutesConfig, RejectsBadSupervisorSettings) {
  auto r = load(R"(
services:
  a:
    command: x
    health: { http: health, rise: 0, tcp: maybe }
    restart: { policy: sometimes, backoff: 10s, max_backoff: 1s }
    stop: { signal: NOPE }
    depends_on: { b: ready }
    log_lines: 1
  b:
    url: http://127.0.0.1:1
    restart: always
  c:
    url: "tcp://db.local:5432"
routes: [{ path: /, service: c }]
)");
  ASSERT_FALSE(r.ok());
  for (auto [line, text] : std::vector<std::pair<int, std::string>>{
           {5, "has both http and tcp"}, {5, "must be a path starting with '/'"}, {5, "rise must be between"},
           {5, "tcp must be true or false"}, {6, "policy must be always, on-failure or never"},
           {6, "max_backoff must not be shorter than backoff"}, {7, "signal must be TERM"},
           {8, "condition must be healthy or started"}, {9, "log_lines must be between"},
           {12, "kinfra does not run it"}, {14, "expected tcp://HOST:PORT"}})
    EXPECT_TRUE(has_error(r, line, text)) << line << ": " << text << "\n" << errors_of(r);
}

TEST(RoutesConfig, ARouteCannotPointAtAWatchedOnlyService) {
  auto r = load("routes: [{ path: /, service: db }]\nservices:\n  db: { url: \"tcp://127.0.0.1:5432\" }\n");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 1, "a tcp:// service is only monitored")) << errors_of(r);
}

TEST(RoutesConfig, HealthOffIsAccepted) {
  auto r = load("services:\n  a: { url: \"http://127.0.0.1:1\", health: off }\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg->services[0].health.probe, kinfra::health_config::kind::none);
}

TEST(RoutesConfig, ReadsAdminSettings) {
  unsetenv("KINFRA_ADMIN_TOKEN");
  auto defaults = load("services: {}\n");
  ASSERT_TRUE(defaults.ok()) << errors_of(defaults);
  EXPECT_EQ(defaults.cfg->admin.listen->to_string(), "127.0.0.1:9000");
  EXPECT_TRUE(defaults.cfg->admin.actions);
  EXPECT_FALSE(defaults.cfg->admin.allow_remote);
  auto r = load(R"(
admin_token: "0123456789abcdef"
allow_remote: true
admin_hosts: [kinfra.example.com, "10.0.0.5:9000", "*.corp.example"]
actions: false
public_details: true
template_variables: { company: ACME }
routes: [{ path: /api, service: a, json: true }]
services:
  a: { url: "http://127.0.0.1:1", fallback: { page: maintenance, message: "soon", refresh: 10s } }
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg->admin.token, "0123456789abcdef");
  EXPECT_EQ(r.cfg->admin.listen->to_string(), "0.0.0.0:9000") << "allow_remote opens the direct listener too";
  ASSERT_EQ(r.cfg->admin.hosts.size(), 3u);
  EXPECT_EQ(r.cfg->admin.hosts[0].name, "kinfra.example.com");
  EXPECT_EQ(r.cfg->admin.hosts[1].port, 9000);
  EXPECT_TRUE(r.cfg->admin.hosts[2].wildcard);
  EXPECT_FALSE(r.cfg->admin.actions);
  EXPECT_TRUE(r.cfg->admin.public_details);
  EXPECT_EQ(r.cfg->admin.variables.at("company"), "ACME");
  EXPECT_TRUE(r.cfg->routes[0].json);
  EXPECT_EQ(r.cfg->services[0].fallback.kind, kinfra::fallback_config::page::maintenance);
  EXPECT_EQ(r.cfg->services[0].fallback.refresh, std::chrono::seconds(10));
  auto off = load("admin_listen: off\nservices: {}\n");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off.cfg->admin.listen);
}

TEST(RoutesConfig, TakesTheTokenFromTheEnvironment) {
  setenv("KINFRA_ADMIN_TOKEN", "from-the-environment", 1);
  auto r = load("allow_remote: true\nadmin_hosts: kinfra.example.com\nservices: {}\n");
  unsetenv("KINFRA_ADMIN_TOKEN");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg->admin.token, "from-the-environment");
}

TEST(RoutesConfig, AdminHostsAreNamesWithAnOptionalPort) {
  auto bad = load(R"(
admin_hosts:
  - "https://kinfra.example.com"
  - "kinfra.example.com/dashboard"
  - "bad name"
  - "host:99999"
  - "*.127.0.0.1"
  - [nested]
services: {}
)");
  ASSERT_FALSE(bad.ok());
  for (int line = 3; line <= 8; ++line) EXPECT_TRUE(has_error(bad, line, "admin_hosts")) << line << errors_of(bad);
  auto good = load("admin_hosts: [\"[fd00::1]:9000\", Kinfra.Example.COM.]\nservices: {}\n");
  ASSERT_TRUE(good.ok()) << errors_of(good);
  EXPECT_EQ(good.cfg->admin.hosts[0].name, "fd00::1");
  EXPECT_EQ(good.cfg->admin.hosts[1].name, "kinfra.example.com");
}

TEST(RoutesConfig, MessagesNameTheFileAndExplainIndentation) {
  auto tmp = kinfra::load_config_string("colour: blue\nservices: {}\n", "/tmp/routes.yaml.tmp");
  ASSERT_FALSE(tmp.ok());
  EXPECT_TRUE(has_error(tmp, 1, "in routes.yaml.tmp")) << errors_of(tmp);
  auto indented = load("services:\n  a:\n    url: http://127.0.0.1:1\n   health: off\n");
  ASSERT_FALSE(indented.ok());
  EXPECT_NE(errors_of(indented).find("check the indentation"), std::string::npos) << errors_of(indented);
  auto tabbed = load("routes:\n\t- { path: /, service: a }\nservices:\n  a: { url: http://127.0.0.1:1 }\n");
  ASSERT_FALSE(tabbed.ok());
  EXPECT_NE(errors_of(tabbed).find("tab character"), std::string::npos) << errors_of(tabbed);
}

TEST(RoutesConfig, RejectsBadAdminSettings) {
  unsetenv("KINFRA_ADMIN_TOKEN");
  auto r = load(R"(
allow_remote: true
admin_token: short
admin_listen: "nowhere"
templates_dir: /nonexistent/templates
services:
  a: { url: "http://127.0.0.1:1", fallback: { page: fancy, refresh: 0s } }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 2, "allow_remote: true needs admin_token")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 2, "allow_remote: true needs admin_hosts")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 3, "at least 8 characters")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 4, "admin_listen")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 5, "is not a directory")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 7, "page must be auto, loading, error or maintenance")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 7, "refresh must be between")) << errors_of(r);
}

TEST(RoutesConfig, ReadsTlsListeners) {
  auto r = load(R"(
listen:
  - address: 127.0.0.1:8443
    tls:
      - { cert: certs/a.pem, key: certs/a.key }
      - { cert: /etc/b.pem, key: /etc/b.key }
  - address: 127.0.0.1:8444
    tls: { self_signed: true, names: [Dev.Test, "*.dev.test"] }
  - address: 127.0.0.1:8080
    redirect_to_https: true
    plain_paths: [/__status__, /.well-known/acme-challenge/]
  - 127.0.0.1:8081
state_dir: state
routes: [{ path: /, service: a }]
services:
  a: { url: "https://api.internal", tls: { ca_file: ca.pem, server_name: api.example.com } }
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& cfg = *r.cfg;
  ASSERT_EQ(cfg.listen.size(), 4u);
  ASSERT_TRUE(cfg.listen[0].tls);
  ASSERT_EQ(cfg.listen[0].tls->certificates.size(), 2u);
  EXPECT_EQ(cfg.listen[0].tls->certificates[0].cert, "/tmp/certs/a.pem");
  EXPECT_EQ(cfg.listen[0].tls->certificates[1].key, "/etc/b.key");
  EXPECT_EQ(cfg.listen[0].tls->certificates[1].mark.line, 6);
  ASSERT_TRUE(cfg.listen[1].tls);
  EXPECT_TRUE(cfg.listen[1].tls->self_signed);
  EXPECT_EQ(cfg.listen[1].tls->names, (std::vector<std::string>{"dev.test", "*.dev.test"}));
  EXPECT_TRUE(cfg.listen[2].redirect_to_https);
  EXPECT_FALSE(cfg.listen[2].tls);
  EXPECT_EQ(cfg.listen[2].plain_paths, (std::vector<std::string>{"/__status__", "/.well-known/acme-challenge"}));
  EXPECT_FALSE(cfg.listen[3].tls);
  EXPECT_FALSE(cfg.listen[3].redirect_to_https);
  EXPECT_EQ(cfg.state_dir, "/tmp/state");
  ASSERT_EQ(cfg.services[0].targets.size(), 1u);
  EXPECT_TRUE(cfg.services[0].targets[0].tls());
  EXPECT_EQ(cfg.services[0].targets[0].address.port, 443);
  EXPECT_EQ(cfg.services[0].tls.ca_file, "/tmp/ca.pem");
  EXPECT_EQ(cfg.services[0].tls.server_name, "api.example.com");
}

TEST(RoutesConfig, RejectsBadTlsSettings) {
  auto r = load(R"(
listen:
  - address: 127.0.0.1:8443
    tls: { cert: a.pem }
  - address: 127.0.0.1:8444
    tls: { names: [x.test] }
  - address: 127.0.0.1:8445
    tls: { self_signed: true, names: ["bad name"] }
  - address: 127.0.0.1:8446
    tls: yes
  - { address: 127.0.0.1:8447, tls: { cert: a.pem, key: a.key }, redirect_to_https: true }
  - { address: 127.0.0.1:8448, plain_paths: [/x] }
routes: [{ path: /, service: a }]
services:
  a: { url: "https://127.0.0.1", tls: { insecure_skip_verify: maybe } }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 4, "needs both cert")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 6, "names are for self_signed")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 8, "\"bad name\" is not a valid host name")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 10, "tls must be")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 11, "cannot also redirect")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 12, "plain_paths is only used with redirect_to_https")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 15, "insecure_skip_verify must be true or false")) << errors_of(r);
}

TEST(RoutesConfig, RedirectNeedsSomewhereToGo) {
  auto r = load(R"(
listen:
  - { address: 127.0.0.1:8080, redirect_to_https: true }
routes: [{ path: /, service: a }]
services:
  a: { url: "http://127.0.0.1:1" }
)");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 3, "redirect_to_https needs a listener with tls")) << errors_of(r);
  auto ok = load(R"(
listen:
  - { address: 127.0.0.1:8080, redirect_to_https: true, https_port: 443 }
routes: [{ path: /, service: a }]
services:
  a: { url: "https://127.0.0.1", tls: { insecure_skip_verify: true } }
)");
  ASSERT_TRUE(ok.ok()) << errors_of(ok);
  EXPECT_EQ(ok.cfg->listen[0].https_port, std::optional<std::uint16_t>(443));
  ASSERT_EQ(ok.warnings.size(), 1u);
  EXPECT_NE(ok.warnings[0].message.find("not verified"), std::string::npos);
}

TEST(RoutesConfig, AccessLogIsOffUnlessAskedForAndThenCombined) {
  // Caddy's convention: the services' own lines already say what they served.
  auto r = load(minimal);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_TRUE(r.cfg->access_log.off());
  r = load(std::string("access_log: stdout\n") + minimal);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg->access_log.to, "stdout");
  EXPECT_EQ(r.cfg->access_log.fmt, kinfra::access_log_config::format::combined);
}

TEST(RoutesConfig, AccessLogTakesAFileRelativeToTheConfigOrOff) {
  auto file = load(std::string("access_log: logs/access.log\nlog_format: json\n") + minimal);
  ASSERT_TRUE(file.ok()) << errors_of(file);
  EXPECT_EQ(file.cfg->access_log.to, "/tmp/logs/access.log");
  EXPECT_EQ(file.cfg->access_log.fmt, kinfra::access_log_config::format::json);
  auto off = load(std::string("access_log: off\n") + minimal);
  ASSERT_TRUE(off.ok()) << errors_of(off);
  EXPECT_TRUE(off.cfg->access_log.off());
  auto no = load(std::string("access_log: false\n") + minimal);
  ASSERT_TRUE(no.ok()) << errors_of(no);
  EXPECT_TRUE(no.cfg->access_log.off());
  auto err = load(std::string("access_log: stderr\n") + minimal);
  ASSERT_TRUE(err.ok()) << errors_of(err);
  EXPECT_EQ(err.cfg->access_log.to, "stderr");
}

TEST(RoutesConfig, AnUnknownLogFormatIsAnErrorAtItsPosition) {
  auto r = load("log_format: apache\naccess_log: [a]\n" + std::string(minimal));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, 1, "log_format must be combined or json")) << errors_of(r);
  EXPECT_TRUE(has_error(r, 2, "access_log must be a string")) << errors_of(r);
}

TEST(RoutesConfig, ARouteOnKinfrasOwnPathsIsAWarning) {
  auto r = load(R"(
routes:
  - { path: /metrics, service: api }
  - { path: /kinfra/x, service: api }
  - { path: /metricsx, service: api }
services:
  api: { url: http://127.0.0.1:8000 }
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_EQ(r.warnings[0].line, 3);
  EXPECT_NE(r.warnings[0].message.find("/metrics is kinfra's own"), std::string::npos) << r.warnings[0].message;
  EXPECT_EQ(r.warnings[1].line, 4);
  EXPECT_NE(r.warnings[1].message.find("dashboard"), std::string::npos) << r.warnings[1].message;
}

TEST(RoutesConfig, MetricsPathCanMoveOrGoAway) {
  auto def = load(minimal);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def.cfg->admin.metrics_path, "/metrics");
  auto moved = load(std::string("metrics_path: /internal/stats/\n") + minimal);
  ASSERT_TRUE(moved.ok()) << errors_of(moved);
  EXPECT_EQ(moved.cfg->admin.metrics_path, "/internal/stats");
  auto off = load(std::string("metrics_path: off\n") + minimal);
  ASSERT_TRUE(off.ok()) << errors_of(off);
  EXPECT_TRUE(off.cfg->admin.metrics_path.empty());
  auto bad = load(std::string("metrics_path: metrics\n") + minimal);
  EXPECT_TRUE(has_error(bad, 1, "metrics_path must be a path")) << errors_of(bad);
}

TEST(RoutesConfig, PortAutoAndInstances) {
  auto ok = load(R"(
listen: 127.0.0.1:9100
routes:
  - { path: /, service: api }
services:
  api: { command: "./api", port: auto, instances: 3, stop: { drain: 30s } }
  worker: { command: "./worker", instances: 2 }
)");
  ASSERT_TRUE(ok.ok()) << errors_of(ok);
  const auto& api = ok.cfg->services[0];
  EXPECT_TRUE(api.port_auto);
  EXPECT_FALSE(api.port);
  EXPECT_EQ(api.instances, 3u);
  EXPECT_EQ(api.stop.drain, std::chrono::seconds(30));
  EXPECT_EQ(ok.cfg->services[1].instances, 2u);

  auto bad = load(R"(
listen: 127.0.0.1:9100
routes:
  - { path: /, service: a }
services:
  a: { command: "./a", port: 8000, instances: 2 }
  b: { url: "http://127.0.0.1:8001", port: auto }
  c: { command: "./c", port: auto, instances: 0 }
  d: { url: "http://127.0.0.1:8002", instances: 2 }
)");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(has_error(bad, 6, "needs port: auto")) << errors_of(bad);
  EXPECT_TRUE(has_error(bad, 7, "port: auto")) << errors_of(bad);
  EXPECT_TRUE(has_error(bad, 8, "instances")) << errors_of(bad);
  EXPECT_TRUE(has_error(bad, 9, "no command")) << errors_of(bad);
}

TEST(RoutesConfig, Http2ListenersAndServiceProtocols) {
  auto ok = load(R"(
listen:
  - { address: 127.0.0.1:9443, tls: { self_signed: true }, http2: false }
  - { address: 127.0.0.1:9100, h2c: true }
limits: { max_concurrent_streams: 64 }
routes:
  - { path: /, service: grpc }
services:
  grpc: { url: "http://127.0.0.1:50051", protocol: h2c }
  secure: { url: "https://127.0.0.1:50052", protocol: h2 }
)");
  ASSERT_TRUE(ok.ok()) << errors_of(ok);
  EXPECT_FALSE(ok.cfg->listen[0].http2);
  EXPECT_TRUE(ok.cfg->listen[1].h2c);
  EXPECT_EQ(ok.cfg->limits.max_concurrent_streams, 64u);
  EXPECT_EQ(ok.cfg->services[0].protocol, kinfra::upstream_protocol::h2c);
  EXPECT_EQ(ok.cfg->services[1].protocol, kinfra::upstream_protocol::h2);

  auto bad = load(R"(
listen:
  - { address: 127.0.0.1:9100, http2: true }
  - { address: 127.0.0.1:9443, tls: { self_signed: true }, h2c: true }
routes:
  - { path: /, service: a }
services:
  a: { url: "http://127.0.0.1:1", protocol: h2 }
  b: { url: "http://127.0.0.1:2", protocol: h3 }
  c: { url: "http://127.0.0.1:3", protocol: h2c, health: { http: /health } }
)");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(has_error(bad, 3, "http2 is for listeners with tls")) << errors_of(bad);
  EXPECT_TRUE(has_error(bad, 4, "h2c is for plain listeners")) << errors_of(bad);
  EXPECT_TRUE(has_error(bad, 8, "needs https:// targets")) << errors_of(bad);
  EXPECT_TRUE(has_error(bad, 9, "protocol must be")) << errors_of(bad);
  EXPECT_TRUE(has_error(bad, 10, "speaks HTTP/2 only")) << errors_of(bad);
}

TEST(RoutesConfig, AliasesNullsPositionsAndTheNestingBound) {
  // An anchored entry used twice; `~` and an empty value are null, a quoted "null" is text.
  auto r = load(
      "services:\n  a: &svc { url: \"http://127.0.0.1:1\", health: off }\n  b: *svc\n"
      "routes:\n  - { path: /a, service: a }\n  - { path: /b, service: \"b\" }\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg->services.size(), 2u);
  auto unknown = load("routes: *nowhere\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(has_error(unknown, 1, "unknown anchor")) << errors_of(unknown);
  auto null_name = load("services:\n  a: { url: ~ }\nroutes: []\n");
  ASSERT_FALSE(null_name.ok());
  EXPECT_TRUE(has_error(null_name, 2, "url")) << errors_of(null_name);
  // Deep nesting is refused at once (libyaml slows down with every open level).
  auto deep = load("routes: " + std::string(100000, '[') + "\n");
  ASSERT_FALSE(deep.ok());
  EXPECT_TRUE(has_error(deep, 1, "nesting deeper than 64 levels")) << errors_of(deep);
  // An alias inside what its anchor names would make a cycle: refused, not looped over.
  auto cycle = load("services:\n  a: &x { url: \"http://127.0.0.1:1\", more: *x }\nroutes: []\n");
  ASSERT_FALSE(cycle.ok());
  EXPECT_TRUE(has_error(cycle, 2, "unknown anchor '*x'")) << errors_of(cycle);
  // Aliases of aliases (a "billion laughs") are shared, but the loaders would read every use: bounded.
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'i'; ++c)
    laughs += std::string(1, c) + ": &" + c + " [" + std::string("*") + static_cast<char>(c - 1) + ", *" +
              static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) + "]\n";
  laughs += "routes: *i\n";
  auto amplified = load(laughs);
  ASSERT_FALSE(amplified.ok());
  EXPECT_TRUE(has_error(amplified, 8, "aliases repeat more than 100000 nodes")) << errors_of(amplified);
  // Bytes that are no UTF-8 are reported where they are, not at 1:1.
  auto bad_bytes = load("routes:\n  - { path: /a, service: a }\n  - { path: /\xff, service: a }\n");
  ASSERT_FALSE(bad_bytes.ok());
  EXPECT_TRUE(has_error(bad_bytes, 3, "UTF-8")) << errors_of(bad_bytes);
  EXPECT_EQ(bad_bytes.errors.at(0).column, 14) << errors_of(bad_bytes);
}
