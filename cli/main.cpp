// The `kinfra` executable: the command line over the library (app/) and the admin API client.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "app/config_check.hpp"
#include "app/local_ca_trust.hpp"
#include "common/config_loader.hpp"
#include "cli/admin_client.hpp"
#include "common/log.hpp"
#include "common/version.hpp"
#include "kinfra/kinfra.hpp"

namespace {

int check_command(const std::string& path) {
  auto checked = kinfra::app::check_config_file(path);
  if (!checked.ok()) {
    for (const auto& e : checked.errors) std::cerr << e << "\n";
    std::cerr << path << ": " << checked.errors.size() << (checked.errors.size() == 1 ? " error" : " errors") << "\n";
    return 1;
  }
  for (const auto& w : checked.warnings) std::cerr << w << " (warning)\n";
  std::cout << path << ": OK (" << checked.cfg->routes.size() << " routes, " << checked.cfg->services.size()
            << " services)\n";
  return 0;
}

int trust_command(const std::string& config_path, kinfra::app::trust_request req, bool trust) {
  // Only routes.yaml's state_dir matters here (the default when there is no routes.yaml): the
  // rest of the file may be broken, or be another machine's.
  if (req.state_dir.empty()) {
    std::string error;
    req.state_dir = kinfra::state_dir_of(config_path, error);
    if (req.state_dir.empty()) {
      std::cerr << "kinfra: " << error << "\n";
      return 1;
    }
  }
  req.update_system = kinfra::app::is_system_store(req.store);
  return trust ? kinfra::app::trust_local_ca(req, std::cout, std::cerr)
               : kinfra::app::untrust_local_ca(req, std::cout, std::cerr);
}

/** Writes `{"pid":…,"listen":["host:port",…],"admin":[…]}` atomically, for scripts and tests. */
void write_ready_file(const std::string& path, const std::vector<std::string>& bound,
                      const std::vector<std::string>& admin) {
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ",\"" : "\"") + v[i] + "\"";
    return out;
  };
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << "{\"pid\":" << ::getpid() << ",\"listen\":[" << list(bound) << "],\"admin\":[" << list(admin) << "]}\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

/** Every connection is a descriptor (two when proxied): use all the system allows, as nginx's
 * worker_rlimit_nofile would. */
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) == 0)
    spdlog::debug("file descriptor limit raised from {} to {}", before, lim.rlim_cur);
}

int run_command(const std::string& path, const std::string& ready_file) {
  // The same public API a program that embeds kinfra uses (include/kinfra/kinfra.hpp).
  // (Not options::from_file: start() reads and checks the file anyway, and reading 10,000 routes
  // twice would double the start-up time.)
  kinfra::options opts;
  opts.config_file = path;
  raise_fd_limit();
  kinfra::service_manager manager(opts);
  try {
    manager.start();  // blocks SIGINT/SIGTERM/SIGHUP/SIGUSR1 here first: run() takes them
  } catch (const kinfra::error& e) {
    for (const auto& p : e.problems()) std::cerr << p << "\n";
    spdlog::critical("{} has errors; kinfra did not start", path);
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  if (!ready_file.empty()) write_ready_file(ready_file, manager.listen_addresses(), manager.admin_addresses());
  manager.run();  // until SIGINT/SIGTERM: a graceful stop (a second signal hurries it)
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kinfra: a reverse proxy with a process supervisor, fallback pages and a live dashboard"};
  app.set_version_flag("--version", std::string("kinfra ") + kinfra::version);
  app.require_subcommand(1);
  std::string log_level = "info";
  if (const char* env = std::getenv("KINFRA_LOG_LEVEL"); env && *env) log_level = env;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off (default: $KINFRA_LOG_LEVEL, else info)")
      ->capture_default_str();

  std::string run_path = "routes.yaml";
  std::string ready_file;
  auto* run = app.add_subcommand("run", "Run the proxy and the services described in routes.yaml");
  run->add_option("config", run_path, "Path to routes.yaml")->capture_default_str();
  run->add_option("--ready-file", ready_file,
                  "Once listening, write {\"pid\":…,\"listen\":[…]} to this file (for scripts and tests)");

  std::string check_path = "routes.yaml";
  auto* check = app.add_subcommand("check", "Validate routes.yaml; print every error as FILE:LINE:COL: message");
  check->add_option("config", check_path, "Path to routes.yaml")->capture_default_str();

  // The running instance, through its admin API.
  kinfra::cli::client_options client;
  auto client_options = [&](CLI::App* sub) {
    sub->add_option("-c,--config", client.config, "routes.yaml to read kinfra's address and admin_token from")
        ->capture_default_str();
    sub->add_option("--url", client.url, "Where kinfra is, e.g. http://127.0.0.1:9000 (overrides routes.yaml)");
    sub->add_option("--token", client.token, "admin_token (default: routes.yaml's, else $KINFRA_ADMIN_TOKEN)");
    sub->fallthrough();
  };
  bool status_json = false;
  auto* status = app.add_subcommand("status", "Show every service of the running kinfra, like `docker ps`");
  status->add_flag("--json", status_json, "Print the /__status__ document instead of a table");
  client_options(status);

  std::string service_name;
  bool no_wait = false;
  double wait_seconds = 30;
  std::vector<CLI::App*> actions;
  for (const char* verb : {"restart", "stop", "start"}) {
    auto* a = app.add_subcommand(verb, std::string("Ask the running kinfra to ") + verb + " a service, and wait for it");
    a->add_option("service", service_name, "The service's name in routes.yaml")->required();
    a->add_flag("--no-wait", no_wait, "Return once kinfra took the request");
    a->add_option("--timeout", wait_seconds, "Seconds to wait for the service to get there")->capture_default_str();
    client_options(a);
    actions.push_back(a);
  }
  std::size_t log_lines = 100;
  bool follow = false;
  auto* logs = app.add_subcommand("logs", "Print a service's recent output (kept by kinfra)");
  logs->add_option("service", service_name, "The service's name in routes.yaml")->required();
  logs->add_flag("-f,--follow", follow, "Keep printing new lines until interrupted");
  logs->add_option("-n,--lines", log_lines, "How many of the last lines to print first (0: all kept)")
      ->capture_default_str();
  client_options(logs);
  std::size_t event_count = 50;
  bool events_follow = false;
  std::string events_service;
  auto* events = app.add_subcommand("events", "Print what happened: starts, exits, restarts, health, reloads");
  events->add_option("service", events_service, "Only this service's events");
  events->add_flag("-f,--follow", events_follow, "Keep printing new events until interrupted");
  events->add_option("-n,--count", event_count, "How many of the last events to print first (at most 2,000)")
      ->capture_default_str();
  client_options(events);
  auto* reload = app.add_subcommand("reload", "Ask the running kinfra to read routes.yaml again");
  client_options(reload);
  bool routes_json = false;
  auto* routes = app.add_subcommand("routes", "Show the routes, listeners and certificates of the running kinfra");
  routes->add_flag("--json", routes_json, "Print them as JSON (the routes, listeners and certificates of /__status__)");
  client_options(routes);

  // The local development CA (tls: self_signed certificates are signed by it).
  std::string trust_config = "routes.yaml";
  kinfra::app::trust_request trust_req;
  std::vector<CLI::App*> trust_commands;
  for (const char* verb : {"trust", "untrust"}) {
    auto* t = app.add_subcommand(verb, std::string(verb) == "trust"
                                           ? "Add kinfra's local CA (it signs the self_signed certificates) to the system's trust store"
                                           : "Remove kinfra's local CA from the trust store again");
    t->add_option("config", trust_config, "routes.yaml (its state_dir holds the CA; none: the default state_dir)")
        ->capture_default_str();
    t->add_option("--state-dir", trust_req.state_dir, "The state_dir to use, whatever routes.yaml says");
    t->add_option("--store", trust_req.store,
                  "Folder of CA certificates to use instead of the system's (nothing else is run then)")
        ->capture_default_str();
    t->fallthrough();
    trust_commands.push_back(t);
  }

  run->fallthrough();
  check->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here with 0; a usage error is exit code 3 (see README).
    return app.exit(e) == 0 ? 0 : kinfra::cli::exit_usage;
  }
  // Hidden, for tests/docs/check_readme.py: KINFRA_PARSE_ONLY=1 stops right after a successful
  // parse (exit 0; a usage error above is still 3), so documented commands are checked without
  // running anything. (`--help` cannot tell: it exits 0 even after an unknown subcommand.)
  if (const char* p = std::getenv("KINFRA_PARSE_ONLY"); p && std::string(p) == "1") {
    std::cerr << "kinfra: KINFRA_PARSE_ONLY=1: the command line parsed; nothing was run\n";
    return 0;
  }
  if (*check) {
    kinfra::setup_logging(log_level);
    return check_command(check_path);
  }
  if (*status) return kinfra::cli::status_command(client, status_json);
  if (*routes) return kinfra::cli::routes_command(client, routes_json);
  for (auto* t : trust_commands)
    if (*t) {
      kinfra::setup_logging(log_level);
      return trust_command(trust_config, trust_req, t->get_name() == "trust");
    }
  for (auto* a : actions)
    if (*a)
      return kinfra::cli::action_command(client, a->get_name(), service_name, !no_wait,
                                         std::chrono::milliseconds(static_cast<long>(wait_seconds * 1000)));
  if (*logs) return kinfra::cli::logs_command(client, service_name, log_lines, follow);
  if (*events) return kinfra::cli::events_command(client, events_service, event_count, events_follow);
  if (*reload) return kinfra::cli::reload_command(client);
  if (!kinfra::setup_logging(log_level)) spdlog::warn("unknown log level '{}', using info", log_level);
  return run_command(run_path, ready_file);
}
