// The `services:` half of the routes.yaml loader: how each service is run, checked, restarted
// and stopped, and in which order.

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <variant>
#include <filesystem>
#include <map>
#include <set>

#include "common/yaml_reader.hpp"

namespace kinfra {
namespace detail {
namespace {

namespace fs = std::filesystem;

bool valid_service_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

source_mark mark_of(const yaml::node& n) {
  auto m = n.Mark();
  return m.is_null() ? source_mark{} : source_mark{m.line + 1, m.column + 1};
}

/**
 * Expands `${VAR}` and `${VAR:-default}` from kinfra's environment; `$$` is a literal `$`.
 * An unset variable without a default becomes empty and is reported in `unset`.
 * @return false when a `${` is not closed
 */
bool expand_env(const std::string& in, std::string& out, std::vector<std::string>& unset) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 >= in.size()) {
      out += in[i];
      continue;
    }
    if (in[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (in[i + 1] != '{') {
      out += in[i];
      continue;
    }
    auto close = in.find('}', i + 2);
    if (close == std::string::npos) return false;
    std::string expr = in.substr(i + 2, close - i - 2);
    std::string name = expr, fallback;
    bool has_default = false;
    if (auto sep = expr.find(":-"); sep != std::string::npos) {
      name = expr.substr(0, sep);
      fallback = expr.substr(sep + 2);
      has_default = true;
    }
    const char* value = std::getenv(name.c_str());
    if (value && *value) out += value;
    else if (has_default) out += fallback;
    else unset.push_back(name);
    i = close;
  }
  return true;
}

std::optional<int> parse_signal(std::string name) {
  static const std::map<std::string, int> known{{"TERM", SIGTERM}, {"INT", SIGINT},   {"QUIT", SIGQUIT},
                                                {"HUP", SIGHUP},   {"KILL", SIGKILL}, {"USR1", SIGUSR1},
                                                {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  if (auto it = known.find(name); it != known.end()) return it->second;
  return std::nullopt;
}

class service_reader {
 public:
  service_reader(yaml_reader& r, const std::string& source_path, std::vector<config_error>& warnings)
      : r_(r), base_(fs::absolute(fs::path(source_path)).parent_path()), warnings_(warnings) {}

  void read(const yaml::node& n, service_config& svc) {
    const std::string what = "service '" + svc.name + "'";
    if (!r_.check_map(n, what,
                      {"url", "targets", "command", "cwd", "env", "port", "instances", "health", "restart", "stop", "hold", "depends_on",
                       "log_lines", "fallback", "tls", "autostart", "protocol"}))
      return;
    read_targets(n, svc, what);
    if (auto p = n["protocol"]) read_protocol(p, n, svc, what);
    if (auto t = n["tls"]) read_upstream_tls(t, svc, what);
    read_command(n, svc, what);
    if (auto i = n["instances"]) read_instances(i, n, svc, what);
    if (auto h = n["health"]) read_health(h, svc, what);
    if (auto rs = n["restart"]) read_restart(rs, svc, what);
    if (auto st = n["stop"]) read_stop(st, svc, what);
    if (auto h = n["hold"]) read_hold(h, svc, what);
    if (auto d = n["depends_on"]) read_depends_on(d, svc, what);
    if (auto f = n["fallback"]) read_fallback(f, svc, what);
    if (auto l = n["log_lines"]) {
      if (auto v = r_.integer(l, what + " log_lines", 10, 100000)) svc.log_lines = static_cast<std::size_t>(*v);
    }
    if (auto a = n["autostart"]) {
      if (auto b = r_.boolean(a, what + " autostart")) svc.autostart = *b;
      if (!svc.autostart && n["command"].IsDefined() == false)
        r_.error(a, what + " autostart: false needs a command (kinfra only starts what it runs)");
    }
    if (svc.targets.empty() && !svc.monitor && svc.command.empty() && !svc.port_auto)
      r_.error(n, what + " needs a url, targets or a port (and optionally a command)");
  }

 private:
  void read_protocol(const yaml::node& p, const yaml::node& n, service_config& svc, const std::string& what) {
    auto s = r_.string(p, what + " protocol");
    if (!s) return;
    if (*s == "http1" || *s == "http/1.1") svc.protocol = upstream_protocol::http1;
    else if (*s == "h2") svc.protocol = upstream_protocol::h2;
    else if (*s == "h2c") svc.protocol = upstream_protocol::h2c;
    else return r_.error(p, what + " protocol must be http1, h2 (HTTP/2 over TLS, https:// targets) or h2c (plain)");
    if (svc.protocol == upstream_protocol::http1) return;
    const std::string want = svc.protocol == upstream_protocol::h2 ? "https" : "http";
    for (const auto& t : svc.targets)
      if (t.scheme != want)
        r_.error(p, what + " protocol " + *s + " needs " + want + ":// targets (" + t.text + " is not)");
    if (auto h = n["health"]; h && h.IsMap() && h["http"])
      r_.error(h["http"], what + " speaks HTTP/2 only: an http health check (HTTP/1.1) cannot reach it; "
                                 "use health: { tcp: true } (the default with a port)");
  }

  void read_targets(const yaml::node& n, service_config& svc, const std::string& what) {
    auto add_target = [&](const yaml::node& item) {
      auto s = r_.string(item, what + " url");
      if (!s) return;
      if (s->rfind("tcp://", 0) == 0) {
        // A service kinfra only watches (a database, a queue): checked with TCP, never routed to.
        auto parsed = parse_listen_address(s->substr(6));
        auto* err = std::get_if<std::string>(&parsed);
        if (err || std::get<host_port>(parsed).port == 0)
          return r_.error(item, "invalid URL \"" + *s + "\" (expected tcp://HOST:PORT with an IP address)");
        svc.monitor = std::get<host_port>(parsed);
        return;
      }
      auto parsed = parse_upstream_url(*s);
      if (auto* err = std::get_if<std::string>(&parsed)) return r_.error(item, *err);
      svc.targets.push_back(std::get<upstream_url>(parsed));
    };
    if (auto u = n["url"]) add_target(u);
    if (auto t = n["targets"]) {
      if (n["url"]) r_.error(t, what + " has both url and targets; use one of them");
      else if (!t.IsSequence() || t.size() == 0) r_.error(t, what + " targets must be a non-empty list of URLs");
      else for (const auto& item : t) add_target(item);
    }
    if (auto p = n["port"]; p && p.IsScalar() && p.Scalar() == "auto") {
      svc.port_auto = true;
      if (n["url"] || n["targets"]) r_.error(p, what + " has both port: auto and url/targets; use one of them");
      if (!n["command"]) r_.error(p, what + " port: auto needs a command (kinfra picks the port of what it runs)");
    } else if (p) {
      if (auto v = r_.integer(p, what + " port", 1, 65535)) {
        svc.port = static_cast<std::uint16_t>(*v);
        if (n["url"] || n["targets"]) {
          r_.error(p, what + " has both port and url/targets; port already means http://127.0.0.1:PORT");
        } else {
          upstream_url u;
          u.scheme = "http";
          u.address = {"127.0.0.1", *svc.port};
          u.text = "http://127.0.0.1:" + std::to_string(*svc.port);
          svc.targets.push_back(u);
        }
      }
    }
  }

  /** A path from routes.yaml: absolute, or taken from the file's folder. */
  std::string resolve(const std::string& path) const {
    fs::path p(path);
    return (p.is_absolute() ? p : base_ / p).lexically_normal().string();
  }

  /** `tls:` of a service: how its https:// targets are verified. */
  void read_upstream_tls(const yaml::node& t, service_config& svc, const std::string& what) {
    auto& tls = svc.tls;
    auto m = t.Mark();
    if (!m.is_null()) tls.mark = {m.line + 1, m.column + 1};
    if (!r_.check_map(t, what + " tls", {"ca_file", "server_name", "insecure_skip_verify"})) return;
    bool any_https = std::any_of(svc.targets.begin(), svc.targets.end(), [](const upstream_url& u) { return u.tls(); });
    if (!any_https) r_.error(t, what + " has tls: but no https:// url");
    if (auto ca = t["ca_file"]) {
      if (auto s = r_.string(ca, what + " tls.ca_file")) tls.ca_file = resolve(*s);
    }
    if (auto sn = t["server_name"]) {
      if (auto s = r_.string(sn, what + " tls.server_name")) {
        if (!is_valid_host_name(*s)) r_.error(sn, what + " tls.server_name \"" + *s + "\" is not a host name");
        else tls.server_name = *s;
      }
    }
    if (auto v = t["insecure_skip_verify"]) {
      if (auto b = r_.boolean(v, what + " tls.insecure_skip_verify")) tls.insecure_skip_verify = *b;
      if (tls.insecure_skip_verify) {
        auto vm = v.Mark();
        warnings_.push_back({vm.line + 1, vm.column + 1,
                             what + " tls.insecure_skip_verify: its certificate is not verified, so anyone on the path "
                                    "can impersonate it"});
      }
      if (tls.insecure_skip_verify && t["ca_file"])
        r_.error(v, what + " tls: ca_file has no effect with insecure_skip_verify: true");
    }
  }

  void read_command(const yaml::node& n, service_config& svc, const std::string& what) {
    if (auto c = n["command"]) {
      if (c.IsScalar()) {
        if (c.Scalar().empty()) r_.error(c, what + " command is empty");
        else {
          svc.command = {c.Scalar()};
          svc.command_is_shell = true;
        }
      } else if (c.IsSequence() && c.size() > 0) {
        for (const auto& arg : c) {
          if (auto s = r_.string(arg, what + " command argument")) svc.command.push_back(*s);
        }
      } else {
        r_.error(c, what + " command must be a list of arguments or a shell command string");
      }
    }
    svc.cwd = base_.string();
    if (auto c = n["cwd"]) {
      if (!n["command"]) r_.error(c, what + " has cwd but no command");
      if (auto s = r_.string(c, what + " cwd")) {
        svc.cwd = resolve(*s);
        std::error_code ec;
        if (!fs::is_directory(svc.cwd, ec)) r_.error(c, what + " cwd \"" + *s + "\" is not a directory");
      }
    }
    if (auto e = n["env"]) {
      if (!n["command"]) r_.error(e, what + " has env but no command");
      if (!e.IsMap()) return r_.error(e, what + " env must be a mapping of NAME: value");
      for (const auto& kv : e) {
        auto key = r_.string(kv.first, what + " env name");
        if (!key) continue;
        if (key->empty() || key->find('=') != std::string::npos) {
          r_.error(kv.first, what + " env name \"" + *key + "\" is invalid");
          continue;
        }
        if (svc.env.count(*key)) r_.error(kv.first, what + " env " + *key + " is given twice");
        auto raw = r_.string(kv.second, what + " env " + *key);
        if (!raw) continue;
        std::string value;
        std::vector<std::string> unset;
        if (!expand_env(*raw, value, unset)) {
          r_.error(kv.second, what + " env " + *key + ": '${' without a closing '}'");
          continue;
        }
        for (const auto& var : unset) {
          auto m = mark_of(kv.second);
          warnings_.push_back({m.line, m.column,
                               what + " env " + *key + ": ${" + var + "} is not set in kinfra's environment; using \"\""});
        }
        svc.env[*key] = value;
      }
    }
  }

  void read_health(const yaml::node& h, service_config& svc, const std::string& what) {
    const std::string w = what + " health";
    if (h.IsScalar() && (h.Scalar() == "off" || h.Scalar() == "false" || h.Scalar() == "none")) {
      svc.health.probe = health_config::kind::none;
      return;
    }
    if (!r_.check_map(h, w, {"http", "tcp", "interval", "timeout", "rise", "fall", "start_period"})) return;
    auto& hc = svc.health;
    if (h["http"] && h["tcp"]) r_.error(h, w + " has both http and tcp; choose one");
    if (auto p = h["http"]) {
      if (auto s = r_.string(p, w + ".http")) {
        if (s->empty() || (*s)[0] != '/') r_.error(p, w + ".http must be a path starting with '/', e.g. /health");
        else if (s->find_first_of(" \r\n\t") != std::string::npos) r_.error(p, w + ".http may not contain spaces");
        else {
          hc.probe = health_config::kind::http;
          hc.http_path = *s;
        }
      }
    }
    if (auto t = h["tcp"]) {
      if (auto b = r_.boolean(t, w + ".tcp")) hc.probe = *b ? health_config::kind::tcp : hc.probe;
    }
    r_.positive_duration(h, "interval", w + ".interval", hc.interval);
    r_.positive_duration(h, "timeout", w + ".timeout", hc.timeout);
    if (auto sp = h["start_period"]) {
      if (auto d = r_.duration(sp, w + ".start_period")) hc.start_period = *d;
    }
    if (auto v = h["rise"]) {
      if (auto i = r_.integer(v, w + ".rise", 1, 100)) hc.rise = static_cast<unsigned>(*i);
    }
    if (auto v = h["fall"]) {
      if (auto i = r_.integer(v, w + ".fall", 1, 100)) hc.fall = static_cast<unsigned>(*i);
    }
    bool has_address = svc.port || svc.port_auto || svc.monitor || !svc.targets.empty();
    if (hc.probe != health_config::kind::automatic && !has_address)
      r_.error(h, w + " needs a port or url to probe");
  }

  void read_fallback(const yaml::node& f, service_config& svc, const std::string& what) {
    const std::string w = what + " fallback";
    if (!r_.check_map(f, w, {"page", "message", "refresh"})) return;
    if (auto p = f["page"]) {
      if (auto s = r_.string(p, w + ".page")) {
        if (*s == "auto") svc.fallback.kind = fallback_config::page::automatic;
        else if (*s == "loading") svc.fallback.kind = fallback_config::page::loading;
        else if (*s == "error" || *s == "503") svc.fallback.kind = fallback_config::page::error;
        else if (*s == "maintenance") svc.fallback.kind = fallback_config::page::maintenance;
        else r_.error(p, w + ".page must be auto, loading, error or maintenance, got \"" + *s + "\"");
      }
    }
    if (auto m = f["message"]) {
      if (auto s = r_.string(m, w + ".message")) svc.fallback.message = *s;
    }
    if (auto r = f["refresh"]) {
      if (auto d = r_.duration(r, w + ".refresh")) {
        if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(1)) r_.error(r, w + ".refresh must be between 1s and 1h");
        else svc.fallback.refresh = *d;
      }
    }
  }

  void read_restart(const yaml::node& rs, service_config& svc, const std::string& what) {
    const std::string w = what + " restart";
    if (!svc.managed()) r_.error(rs, w + ": the service has no command, kinfra does not run it");
    auto read_policy = [&](const yaml::node& p) {
      auto s = r_.string(p, w + " policy");
      if (!s) return;
      if (*s == "always") svc.restart.when = restart_config::policy::always;
      else if (*s == "on-failure" || *s == "on_failure") svc.restart.when = restart_config::policy::on_failure;
      else if (*s == "never" || *s == "no") svc.restart.when = restart_config::policy::never;
      else r_.error(p, w + " policy must be always, on-failure or never, got \"" + *s + "\"");
    };
    if (rs.IsScalar()) return read_policy(rs);
    if (!r_.check_map(rs, w, {"policy", "max_attempts", "backoff", "max_backoff", "reset_after"})) return;
    if (auto p = rs["policy"]) read_policy(p);
    if (auto m = rs["max_attempts"]) {
      if (auto i = r_.integer(m, w + ".max_attempts", 0, 1000000)) svc.restart.max_attempts = static_cast<unsigned>(*i);
    }
    r_.positive_duration(rs, "backoff", w + ".backoff", svc.restart.backoff);
    r_.positive_duration(rs, "max_backoff", w + ".max_backoff", svc.restart.max_backoff);
    r_.positive_duration(rs, "reset_after", w + ".reset_after", svc.restart.reset_after);
    if (svc.restart.max_backoff < svc.restart.backoff)
      r_.error(rs, w + ".max_backoff must not be shorter than backoff");
  }

  void read_stop(const yaml::node& st, service_config& svc, const std::string& what) {
    const std::string w = what + " stop";
    if (!svc.managed()) r_.error(st, w + ": the service has no command, kinfra does not run it");
    if (!r_.check_map(st, w, {"signal", "timeout", "drain"})) return;
    if (auto s = st["signal"]) {
      if (auto name = r_.string(s, w + ".signal")) {
        if (auto sig = parse_signal(*name)) svc.stop.signal = *sig;
        else r_.error(s, w + ".signal must be TERM, INT, QUIT, HUP, KILL, USR1, USR2 or WINCH, got \"" + *name + "\"");
      }
    }
    r_.positive_duration(st, "timeout", w + ".timeout", svc.stop.timeout);
    if (st["drain"]) r_.positive_duration(st, "drain", w + ".drain", svc.stop.drain);
  }

  void read_instances(const yaml::node& i, const yaml::node& n, service_config& svc, const std::string& what) {
    auto v = r_.integer(i, what + " instances", 1, 64);
    if (!v) return;
    svc.instances = static_cast<unsigned>(*v);
    if (!svc.managed()) return r_.error(i, what + " instances: the service has no command, kinfra does not run it");
    // Each instance listens on a port of its own: a fixed port or URL would be one for all.
    if (svc.instances > 1 && (svc.port || n["url"] || n["targets"]))
      r_.error(i, what + " instances: " + std::to_string(svc.instances) +
                      " needs port: auto (each instance gets a port of its own), not a fixed port or url");
  }

  void read_hold(const yaml::node& h, service_config& svc, const std::string& what) {
    const std::string w = what + " hold";
    if (h.IsScalar()) {
      // `hold: off` (or on, for the defaults)
      if (auto b = r_.boolean(h, w)) svc.hold.enabled = *b;
      return;
    }
    if (!r_.check_map(h, w, {"timeout", "max_requests"})) return;
    r_.positive_duration(h, "timeout", w + ".timeout", svc.hold.timeout);
    if (svc.hold.timeout > std::chrono::minutes(5)) r_.error(h["timeout"], w + ".timeout must be at most 5m");
    if (auto m = h["max_requests"]) {
      if (auto v = r_.integer(m, w + ".max_requests", 1, 1000000)) svc.hold.max_requests = static_cast<unsigned>(*v);
    }
  }

  void read_depends_on(const yaml::node& d, service_config& svc, const std::string& what) {
    const std::string w = what + " depends_on";
    auto add = [&](const yaml::node& name_node, dependency::condition c) {
      auto name = r_.string(name_node, w + " entry");
      if (!name) return;
      for (const auto& existing : svc.depends_on)
        if (existing.service == *name) return r_.error(name_node, w + " names '" + *name + "' twice");
      svc.depends_on.push_back({*name, c});
      dependency_marks[svc.name + "\n" + *name] = mark_of(name_node);
    };
    if (d.IsSequence()) {
      for (const auto& item : d) add(item, dependency::condition::healthy);
    } else if (d.IsMap()) {
      for (const auto& kv : d) {
        auto cond = r_.string(kv.second, w + " condition");
        if (!cond) continue;
        if (*cond == "healthy") add(kv.first, dependency::condition::healthy);
        else if (*cond == "started") add(kv.first, dependency::condition::started);
        else r_.error(kv.second, w + " condition must be healthy or started, got \"" + *cond + "\"");
      }
    } else {
      r_.error(d, w + " must be a list of services or a mapping service: healthy|started");
    }
  }

 public:
  std::map<std::string, source_mark> dependency_marks;  ///< "service\ndependency" → position

 private:
  yaml_reader& r_;
  fs::path base_;
  std::vector<config_error>& warnings_;
};

/** Unknown dependencies and cycles are errors, reported where the dependency is written. */
void check_dependencies(yaml_reader& r, const config& cfg, const std::map<std::string, source_mark>& marks) {
  auto mark = [&](const std::string& from, const std::string& to) {
    auto it = marks.find(from + "\n" + to);
    return it == marks.end() ? source_mark{} : it->second;
  };
  auto report = [&](source_mark m, std::string message) {
    yaml::mark ym;
    ym.line = m.line - 1;
    ym.column = m.column - 1;
    if (m.line == 0) ym = yaml::mark::null_mark();
    r.error(ym, std::move(message));
  };
  bool references_ok = true;
  for (const auto& svc : cfg.services) {
    for (const auto& dep : svc.depends_on) {
      if (dep.service == svc.name) {
        report(mark(svc.name, dep.service), "service '" + svc.name + "' depends on itself");
        references_ok = false;
      } else if (!cfg.find_service(dep.service)) {
        report(mark(svc.name, dep.service),
               "service '" + svc.name + "' depends on unknown service '" + dep.service + "'");
        references_ok = false;
      }
    }
  }
  if (!references_ok) return;
  // Depth-first search for a cycle; report it once, with its path.
  enum class color { white, grey, black };
  std::vector<color> state(cfg.services.size(), color::white);
  std::vector<std::size_t> stack;
  std::function<bool(std::size_t)> visit = [&](std::size_t i) -> bool {
    state[i] = color::grey;
    stack.push_back(i);
    for (const auto& dep : cfg.services[i].depends_on) {
      auto j = static_cast<std::size_t>(cfg.service_index(dep.service));
      if (state[j] == color::grey) {
        std::string path;
        auto from = std::find(stack.begin(), stack.end(), j);
        for (auto it = from; it != stack.end(); ++it) path += cfg.services[*it].name + " -> ";
        path += cfg.services[j].name;
        report(mark(cfg.services[i].name, dep.service), "depends_on forms a cycle: " + path);
        return true;
      }
      if (state[j] == color::white && visit(j)) return true;
    }
    stack.pop_back();
    state[i] = color::black;
    return false;
  };
  for (std::size_t i = 0; i < cfg.services.size(); ++i)
    if (state[i] == color::white && visit(i)) return;
}

}  // namespace

void read_services(yaml_reader& r, const yaml::node& n, config& cfg, const std::string& source_path,
                   std::vector<config_error>& warnings) {
  if (!n) return;
  if (!n.IsMap()) return r.error(n, "services must be a mapping of service names to settings");
  service_reader reader(r, source_path, warnings);
  std::set<std::string> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) {
      r.error(kv.first, "service names must be plain strings");
      continue;
    }
    const std::string name = kv.first.Scalar();
    if (!seen.insert(name).second) {
      r.error(kv.first, "duplicate service '" + name + "'");
      continue;
    }
    if (!valid_service_name(name)) {
      r.error(kv.first, "invalid service name '" + name +
                            "' (letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64)");
      continue;
    }
    service_config svc;
    svc.name = name;
    svc.mark = mark_of(kv.first);
    reader.read(kv.second, svc);
    cfg.services.push_back(std::move(svc));
  }
  check_dependencies(r, cfg, reader.dependency_marks);
}

}  // namespace detail

bool config::has_tls_listener() const {
  return std::any_of(listen.begin(), listen.end(), [](const listener_config& l) { return l.tls.has_value(); });
}

const service_config* config::find_service(const std::string& name) const {
  for (const auto& s : services)
    if (s.name == name) return &s;
  return nullptr;
}

int config::service_index(const std::string& name) const {
  for (std::size_t i = 0; i < services.size(); ++i)
    if (services[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<std::vector<std::size_t>> config::start_levels() const {
  // Level of a service = 1 + the deepest level of what it depends on (0 without dependencies).
  std::vector<int> level(services.size(), -1);
  std::function<int(std::size_t, int)> depth = [&](std::size_t i, int guard) -> int {
    if (level[i] >= 0) return level[i];
    if (guard > static_cast<int>(services.size())) return 0;  // a cycle (refused at load; be safe)
    int l = 0;
    for (const auto& dep : services[i].depends_on) {
      int j = service_index(dep.service);
      if (j >= 0) l = std::max(l, depth(static_cast<std::size_t>(j), guard + 1) + 1);
    }
    return level[i] = l;
  };
  std::vector<std::vector<std::size_t>> levels;
  for (std::size_t i = 0; i < services.size(); ++i) {
    auto l = static_cast<std::size_t>(depth(i, 0));
    if (levels.size() <= l) levels.resize(l + 1);
    levels[l].push_back(i);
  }
  return levels;
}

std::optional<host_port> service_config::probe_address() const {
  if (port) return host_port{"127.0.0.1", *port};
  if (monitor) return monitor;
  if (!targets.empty()) return targets.front().address;
  return std::nullopt;
}

}  // namespace kinfra
