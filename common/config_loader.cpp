#include "common/config_loader.hpp"


#include "common/yaml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <charconv>
#include <cstring>
#include <tuple>
#include <variant>
#include <filesystem>
#include <fstream>
#include <optional>
#include <functional>
#include <initializer_list>
#include <set>
#include <sstream>
#include <thread>

namespace kinfra {
namespace {

namespace fs = std::filesystem;
using detail::read_services;
using detail::yaml_reader;

/** Brings a route prefix to its canonical form, or says why it cannot be one. */
std::variant<std::string, std::string> normalise_route_path(const std::string& p) {
  using result = std::variant<std::string, std::string>;
  if (p.empty() || p[0] != '/') return result(std::in_place_index<1>, "must start with '/'");
  for (char c : p) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '?' || c == '#')
      return result(std::in_place_index<1>, "may not contain spaces, control characters, '?' or '#'");
    // Requests are matched in their decoded, normalised form, and a ';', an encoded slash or a
    // backslash at a route boundary is refused (a lenient upstream would read it as '/'): a
    // prefix with them would never match.
    if (c == '%' || c == ';' || c == '\\')
      return result(std::in_place_index<1>,
                    "may not contain '%', ';' or '\\' (requests are matched decoded: write the character itself)");
  }
  std::string out = p;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.find("//") != std::string::npos)
    return result(std::in_place_index<1>, "may not contain empty segments ('//')");
  std::string_view rest(out);
  while (!rest.empty()) {
    rest.remove_prefix(1);
    auto seg = rest.substr(0, rest.find('/'));
    if (seg == "." || seg == "..") return result(std::in_place_index<1>, "may not contain '.' or '..' segments");
    rest.remove_prefix(seg.size());
  }
  return result(std::in_place_index<0>, out);
}

bool valid_host_pattern(std::string host) {
  if (host.rfind("*.", 0) == 0) host = host.substr(2);
  if (host.find('*') != std::string::npos || host.find(':') != std::string::npos) return false;
  return is_valid_host_name(host);
}

class config_builder {
 public:
  config_builder(std::vector<config_error>& errors, std::vector<config_error>& warnings, std::string source_path)
      : errors_(errors), warnings_(warnings), r_(errors), source_path_(std::move(source_path)) {}

  std::shared_ptr<config> build(const yaml::node& root) {
    auto cfg = std::make_shared<config>();
    cfg->source_path = source_path_;
    if (!root || root.IsNull()) {
      r_.error(root, file_name() + " is empty (expected at least `routes:` and `services:`)");
      return nullptr;
    }
    if (!r_.check_map(root, file_name(),
                      {"listen", "workers", "timeouts", "limits", "upstream", "routes", "services", "admin_listen",
                       "admin_token", "admin_hosts", "allow_remote", "actions", "templates_dir", "template_variables",
                       "public_details", "state_dir", "access_log", "log_format", "metrics_path"}))
      return nullptr;

    read_listen(root["listen"], *cfg);
    read_state_dir(root["state_dir"], *cfg);
    read_workers(root["workers"], *cfg);
    read_timeouts(root["timeouts"], cfg->timeouts);
    read_limits(root["limits"], cfg->limits);
    read_upstream(root["upstream"], cfg->upstream);
    read_admin(root, cfg->admin);
    read_access_log(root, cfg->access_log);
    read_services(r_, root["services"], *cfg, source_path_, warnings_);
    read_routes(root["routes"], *cfg);
    return cfg;
  }

 private:
  /** The file's own name for messages ("routes.yaml", "routes.yaml.tmp", "(service_manager)"). */
  std::string file_name() const {
    auto name = fs::path(source_path_).filename().string();
    return name.empty() ? std::string("routes.yaml") : name;
  }

  void read_listen(const yaml::node& n, config& cfg) {
    if (!n) {
      listener_config l;
      l.address = {"0.0.0.0", 9100};
      cfg.listen.push_back(std::move(l));
      return;
    }
    if (n.IsSequence()) {
      if (n.size() == 0) r_.error(n, "listen must name at least one address");
      for (const auto& item : n) read_listener(item, cfg);
    } else {
      read_listener(n, cfg);
    }
    bool any_tls = cfg.has_tls_listener();
    for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
      const auto& l = cfg.listen[i];
      if (l.redirect_to_https && !l.https_port && !any_tls)
        r_.error(n.IsSequence() ? n[i] : n,
                 "redirect_to_https needs a listener with tls: (or https_port: saying where HTTPS is served)");
    }
    // (Once every listener is read: the plain one may come after the TLS one.)
    const bool plain = std::any_of(cfg.listen.begin(), cfg.listen.end(), [](const listener_config& l) { return !l.tls; });
    for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
      const auto& l = cfg.listen[i];
      if (plain || !l.tls || !l.tls->acme || l.tls->acme->challenge_type != acme_config::challenge::http01) continue;
      const yaml::node item = n.IsSequence() ? n[i] : n;
      r_.error(item.IsMap() && item["tls"] && item["tls"]["acme"] ? item["tls"]["acme"]["challenge"] : item,
               "acme challenge http-01 needs a plain HTTP listener (the CA asks on port 80); add one, or use tls-alpn-01");
    }
  }

  /** A listener: `0.0.0.0:9100`, or a mapping with `address:` and `tls:` or `redirect_to_https:`. */
  void read_listener(const yaml::node& item, config& cfg) {
    listener_config l;
    l.mark = mark_of(item);
    // (yaml::node assignment would overwrite the node it refers to: reset() rebinds instead.)
    yaml::node address;
    address.reset(item);
    if (item.IsMap()) {
      if (!r_.check_map(item, "listener", {"address", "tls", "redirect_to_https", "https_port", "plain_paths", "http2", "h2c"}))
        return;
      address.reset(item["address"]);
      if (!address) return r_.error(item, "listener needs an address (e.g. address: 0.0.0.0:443)");
    }
    auto s = r_.string(address, "listen address");
    if (!s) return;
    auto parsed = parse_listen_address(*s);
    if (auto* err = std::get_if<std::string>(&parsed)) return r_.error(address, *err);
    l.address = std::get<host_port>(parsed);
    for (const auto& other : cfg.listen) {
      if (other.address == l.address && l.address.port != 0)
        return r_.error(address, "listen address " + l.address.to_string() + " is given twice");
    }
    if (item.IsMap()) {
      if (auto t = item["tls"]) {
        l.tls = read_listener_tls(t);
        if (l.tls && l.tls->acme) check_acme_names(t["acme"], *l.tls->acme, cfg);
      }
      if (auto rd = item["redirect_to_https"]) {
        if (auto b = r_.boolean(rd, "redirect_to_https")) l.redirect_to_https = *b;
        if (l.redirect_to_https && l.tls) r_.error(rd, "a listener with tls: cannot also redirect to https");
      }
      if (auto p = item["https_port"]) {
        if (auto v = r_.integer(p, "https_port", 1, 65535)) l.https_port = static_cast<std::uint16_t>(*v);
        if (!item["redirect_to_https"]) r_.error(p, "https_port is only used with redirect_to_https: true");
      }
      if (auto pp = item["plain_paths"]) {
        if (!pp.IsSequence()) {
          r_.error(pp, "plain_paths must be a list of path prefixes, e.g. [/__status__]");
        } else {
          for (const auto& p : pp) {
            auto path = r_.string(p, "plain_paths entry");
            if (!path) continue;
            auto norm = normalise_route_path(*path);
            if (auto* why = std::get_if<1>(&norm)) r_.error(p, "plain_paths entry \"" + *path + "\" " + *why);
            else l.plain_paths.push_back(std::get<0>(norm));
          }
        }
        if (!l.redirect_to_https) r_.error(pp, "plain_paths is only used with redirect_to_https: true");
      }
      if (auto v = item["http2"]) {
        if (auto b = r_.boolean(v, "http2")) l.http2 = *b;
        if (!l.tls) r_.error(v, "http2 is for listeners with tls: (plain HTTP/2 is h2c: true)");
      }
      if (auto v = item["h2c"]) {
        if (auto b = r_.boolean(v, "h2c")) l.h2c = *b;
        if (l.tls) r_.error(v, "h2c is for plain listeners (a TLS listener offers HTTP/2 by ALPN: http2: true)");
      }
    }
    cfg.listen.push_back(std::move(l));
  }

  /**
   * Two listeners may ask for the same certificate (the same names), not for overlapping ones: a
   * name belongs to one certificate (stored under its first name).
   */
  void check_acme_names(const yaml::node& at, const acme_config& acme, const config& cfg) {
    auto sorted = [](std::vector<std::string> v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    for (const auto& other : cfg.listen) {
      if (!other.tls || !other.tls->acme || sorted(other.tls->acme->names) == sorted(acme.names)) continue;
      for (const auto& n : acme.names)
        if (std::find(other.tls->acme->names.begin(), other.tls->acme->names.end(), n) != other.tls->acme->names.end())
          return r_.error(at, "acme name " + n + " is also in another listener's acme names; give both the same list");
    }
  }

  /**
   * `tls:` of a listener: `{cert, key}`, a list of them, `{certificates: [...]}`, or
   * `{self_signed: true, names: [...]}`. Paths are relative to routes.yaml.
   */
  listener_tls_config read_listener_tls(const yaml::node& t) {
    listener_tls_config tls;
    tls.mark = mark_of(t);
    auto pair = [&](const yaml::node& c) {
      if (!r_.check_map(c, "tls certificate", {"cert", "key"})) return;
      tls_certificate_config cc;
      cc.mark = mark_of(c);
      auto cert = c["cert"];
      auto key = c["key"];
      if (!cert || !key) return r_.error(c, "a tls certificate needs both cert: (PEM chain) and key: (PEM private key)");
      auto cs = r_.string(cert, "tls cert");
      auto ks = r_.string(key, "tls key");
      if (!cs || !ks) return;
      cc.cert = resolve_path(*cs);
      cc.key = resolve_path(*ks);
      tls.certificates.push_back(std::move(cc));
    };
    if (t.IsSequence()) {
      for (const auto& c : t) pair(c);
    } else if (t.IsMap() && (t["cert"] || t["key"])) {
      pair(t);
    } else if (t.IsMap()) {
      if (!r_.check_map(t, "tls", {"certificates", "self_signed", "names", "acme"})) return tls;
      if (auto acme = t["acme"]) {
        tls.acme = detail::read_acme(r_, acme, source_path_);
        if (t["certificates"] || t["self_signed"])
          r_.error(acme, "tls: use one of certificates, self_signed or acme");
      }
      if (auto list = t["certificates"]) {
        if (!list.IsSequence() || list.size() == 0)
          r_.error(list, "tls certificates must be a list of {cert, key}");
        else
          for (const auto& c : list) pair(c);
      }
      if (auto ss = t["self_signed"]) {
        if (auto b = r_.boolean(ss, "tls self_signed")) tls.self_signed = *b;
        if (tls.self_signed && t["certificates"]) r_.error(ss, "tls: use either certificates or self_signed, not both");
      }
      if (auto names = t["names"]) {
        if (!tls.self_signed) r_.error(names, "tls names are for self_signed: true (real certificates carry their own)");
        if (!names.IsSequence()) {
          r_.error(names, "tls names must be a list of host names");
        } else {
          for (const auto& nm : names) {
            auto name = r_.string(nm, "tls name");
            if (!name) continue;
            std::string lower = *name;
            for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (!valid_host_pattern(lower)) r_.error(nm, "tls name \"" + *name + "\" is not a valid host name");
            else tls.names.push_back(lower);
          }
        }
      }
      if (tls.self_signed && tls.names.empty()) tls.names = {"localhost"};
    } else {
      r_.error(t, "tls must be {cert: FILE, key: FILE}, a list of them, {acme: {names: […]}} or {self_signed: true}");
      return tls;
    }
    if (tls.certificates.empty() && !tls.self_signed && !tls.acme)
      r_.error(t, "tls needs at least one {cert, key} pair, acme: {names: […]}, or self_signed: true for development");
    return tls;
  }

  /** `access_log: stdout | stderr | off | PATH` and `log_format: combined | json`. */
  void read_access_log(const yaml::node& root, access_log_config& log) {
    if (auto n = root["access_log"]) {
      log.mark = mark_of(n);
      if (n.IsScalar() && (n.Scalar() == "false" || n.Scalar() == "off")) {
        log.to = "off";  // YAML reads a bare `off` as a boolean; both spellings mean the same here
      } else if (auto s = r_.string(n, "access_log")) {
        if (s->empty()) r_.error(n, "access_log must be stdout, stderr, off or a file path");
        else if (*s == "stdout" || *s == "stderr") log.to = *s;
        else log.to = resolve_path(*s);
      }
    }
    if (auto n = root["log_format"]) {
      if (auto s = r_.string(n, "log_format")) {
        if (*s == "combined") log.fmt = access_log_config::format::combined;
        else if (*s == "json") log.fmt = access_log_config::format::json;
        else r_.error(n, "log_format must be combined or json, not '" + *s + "'");
      }
    }
  }

  void read_state_dir(const yaml::node& n, config& cfg) {
    cfg.state_dir = default_state_dir(source_path_);
    if (!n) return;
    if (auto s = r_.string(n, "state_dir")) cfg.state_dir = resolve_path(*s);
  }

  std::string resolve_path(const std::string& s) const { return resolve_config_path(source_path_, s); }

  static source_mark mark_of(const yaml::node& n) {
    auto m = n.Mark();
    if (m.is_null()) return {};
    return {m.line + 1, m.column + 1};
  }

  void read_workers(const yaml::node& n, config& cfg) {
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    cfg.workers = cores;
    if (!n || (n.IsScalar() && n.Scalar() == "auto")) return;
    if (auto v = r_.integer(n, "workers (a number or auto)", 1, 1024)) cfg.workers = static_cast<unsigned>(*v);
  }

  void read_timeouts(const yaml::node& n, timeouts_config& t) {
    if (!n) return;
    if (!r_.check_map(n, "timeouts",
                      {"connect", "header", "idle", "upstream_response", "body", "tunnel_idle", "shutdown"}))
      return;
    r_.positive_duration(n, "connect", "timeouts.connect", t.connect);
    r_.positive_duration(n, "header", "timeouts.header", t.header);
    r_.positive_duration(n, "idle", "timeouts.idle", t.idle);
    r_.positive_duration(n, "upstream_response", "timeouts.upstream_response", t.upstream_response);
    r_.positive_duration(n, "body", "timeouts.body", t.body);
    r_.positive_duration(n, "tunnel_idle", "timeouts.tunnel_idle", t.tunnel_idle);
    r_.positive_duration(n, "shutdown", "timeouts.shutdown", t.shutdown);
  }

  void read_limits(const yaml::node& n, limits_config& l) {
    if (!n) return;
    if (!r_.check_map(n, "limits", {"max_header_bytes", "max_uri_bytes", "max_body_bytes", "max_concurrent_streams"}))
      return;
    if (auto v = n["max_header_bytes"]) {
      if (auto s = r_.size(v, "limits.max_header_bytes", false)) {
        if (*s < 1024 || *s > 1024 * 1024) r_.error(v, "limits.max_header_bytes must be between 1KiB and 1MiB");
        else l.max_header_bytes = *s;
      }
    }
    if (auto v = n["max_uri_bytes"]) {
      if (auto s = r_.size(v, "limits.max_uri_bytes", false)) {
        if (*s < 256 || *s > 1024 * 1024) r_.error(v, "limits.max_uri_bytes must be between 256 and 1MiB");
        else l.max_uri_bytes = *s;
      }
    }
    if (auto v = n["max_body_bytes"]) {
      if (auto s = r_.size(v, "limits.max_body_bytes", true)) l.max_body_bytes = *s;
    }
    if (auto v = n["max_concurrent_streams"]) {
      if (auto i = r_.integer(v, "limits.max_concurrent_streams", 1, 1000)) l.max_concurrent_streams = static_cast<std::uint32_t>(*i);
    }
  }

  void read_admin_hosts(const yaml::node& n, admin_config& a) {
    if (!n.IsSequence() && !n.IsScalar())
      return r_.error(n, "admin_hosts must be a list of host names, e.g. [kinfra.example.com, 10.0.0.5:9000]");
    auto add = [&](const yaml::node& item) {
      auto s = r_.string(item, "admin_hosts entry");
      if (!s) return;
      auto parsed = parse_admin_host(*s);
      if (auto* err = std::get_if<std::string>(&parsed)) r_.error(item, *err);
      else a.hosts.push_back(std::get<admin_host>(parsed));
    };
    if (n.IsScalar()) add(n);
    else
      for (const auto& item : n) add(item);
  }

  void read_admin(const yaml::node& root, admin_config& a) {
    if (auto n = root["admin_listen"]) {
      if (auto s = r_.string(n, "admin_listen")) {
        if (*s == "off" || *s == "false" || *s == "none") {
          a.listen.reset();
        } else {
          auto parsed = parse_listen_address(*s);
          if (auto* err = std::get_if<std::string>(&parsed)) r_.error(n, "admin_listen: " + *err);
          else a.listen = std::get<host_port>(parsed);
        }
      }
    }
    if (const char* env = std::getenv("KINFRA_ADMIN_TOKEN"); env && *env) a.token = env;
    if (auto n = root["admin_token"]) {
      if (auto s = r_.string(n, "admin_token")) {
        if (s->size() < 8) r_.error(n, "admin_token must be at least 8 characters");
        else a.token = *s;
      }
    }
    if (auto n = root["admin_hosts"]) read_admin_hosts(n, a);
    if (auto n = root["allow_remote"]) {
      if (auto b = r_.boolean(n, "allow_remote")) {
        a.allow_remote = *b;
        if (*b && a.token.empty())
          r_.error(n, "allow_remote: true needs admin_token (or KINFRA_ADMIN_TOKEN): the admin surface would be open "
                      "to anyone who can reach kinfra");
        if (*b && a.hosts.empty())
          r_.error(n, "allow_remote: true needs admin_hosts: the names remote browsers use to reach kinfra's "
                      "dashboard (e.g. admin_hosts: [kinfra.example.com, 10.0.0.5]); any other Host is refused");
        // As in the spec ("allow_remote=True  # Listen on 0.0.0.0"): the direct listener opens up too,
        // unless admin_listen says where it should be.
        if (*b && !root["admin_listen"] && a.listen) a.listen->host = "0.0.0.0";
      }
    }
    if (auto n = root["actions"]) {
      if (auto b = r_.boolean(n, "actions")) a.actions = *b;
    }
    if (auto n = root["metrics_path"]) {
      if (n.IsScalar() && (n.Scalar() == "off" || n.Scalar() == "false")) {
        a.metrics_path.clear();
      } else if (auto s = r_.string(n, "metrics_path")) {
        if (s->empty() || s->front() != '/' || s->find_first_of("?# ") != std::string::npos || s->find("//") != std::string::npos)
          r_.error(n, "metrics_path must be a path like /metrics (or off: metrics only at /__metrics__)");
        else a.metrics_path = s->size() > 1 && s->back() == '/' ? s->substr(0, s->size() - 1) : *s;
      }
    }
    if (auto n = root["public_details"]) {
      if (auto b = r_.boolean(n, "public_details")) a.public_details = *b;
    }
    const char* home = std::getenv("HOME");
    a.templates_dir = home ? std::string(home) + "/.kinfra/templates" : "";
    if (auto n = root["templates_dir"]) {
      if (auto s = r_.string(n, "templates_dir")) {
        a.templates_dir = resolve_path(*s);
        std::error_code ec;
        if (!fs::is_directory(a.templates_dir, ec)) r_.error(n, "templates_dir \"" + *s + "\" is not a directory");
      }
    }
    if (auto n = root["template_variables"]) {
      if (!n.IsMap()) return r_.error(n, "template_variables must be a mapping of name: text");
      for (const auto& kv : n) {
        auto key = r_.string(kv.first, "template variable name");
        auto value = r_.string(kv.second, "template variable");
        if (!key || !value) continue;
        bool ok = !key->empty() && std::all_of(key->begin(), key->end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        });
        if (!ok) r_.error(kv.first, "template variable names are letters, digits and '_'");
        else a.variables[*key] = *value;
      }
    }
  }

  void read_upstream(const yaml::node& n, upstream_pool_config& u) {
    if (!n) return;
    if (!r_.check_map(n, "upstream", {"max_idle_per_target", "idle_timeout"})) return;
    if (auto v = n["max_idle_per_target"]) {
      if (auto i = r_.integer(v, "upstream.max_idle_per_target", 0, 100000)) u.max_idle_per_target = *i;
    }
    r_.positive_duration(n, "idle_timeout", "upstream.idle_timeout", u.idle_timeout);
  }

  void read_routes(const yaml::node& n, config& cfg) {
    if (!n) return;
    if (!n.IsSequence()) return r_.error(n, "routes must be a list of routes (each starting with '- path:')");
    std::map<std::pair<std::string, std::string>, int> seen;  // (host, path) → line
    for (const auto& item : n) {
      if (!r_.check_map(item, "route", {"path", "service", "host", "strip_prefix", "max_body_bytes", "json"}))
        continue;
      route_config route;
      route.mark = {item.Mark().line + 1, item.Mark().column + 1};
      bool ok = true;
      if (auto p = item["path"]) {
        if (auto s = r_.string(p, "route path")) {
          auto norm = normalise_route_path(*s);
          if (norm.index() == 1) {
            r_.error(p, "route path \"" + *s + "\" " + std::get<1>(norm));
            ok = false;
          } else {
            route.path = std::get<0>(norm);
            auto m = p.Mark();
            if (!cfg.admin.metrics_path.empty() && route.path == cfg.admin.metrics_path) {
              warnings_.push_back({m.line + 1, m.column + 1,
                                   "GET " + route.path + " is kinfra's own (Prometheus metrics): only paths below it "
                                   "reach the service (metrics_path: off gives it back to your routes)"});
            } else if (route.path == "/kinfra" || route.path.starts_with("/kinfra/") || route.path.starts_with("/__")) {
              warnings_.push_back({m.line + 1, m.column + 1,
                                   "route path " + route.path +
                                       " is kinfra's own (the dashboard and its API): requests there are answered by "
                                       "kinfra, not routed"});
            }
          }
        } else ok = false;
      } else {
        r_.error(item, "route has no path (e.g. path: /api)");
        ok = false;
      }
      if (auto h = item["host"]) {
        if (auto s = r_.string(h, "route host")) {
          std::string host = *s;
          for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (!valid_host_pattern(host)) {
            r_.error(h, "route host \"" + *s + "\" is not a host name or *.domain pattern (no port)");
            ok = false;
          }
          route.host = host;
        } else ok = false;
      }
      if (auto s = item["service"]) {
        if (auto name = r_.string(s, "route service")) {
          route.service = *name;
          const service_config* svc = cfg.find_service(*name);
          if (!svc) {
            std::string known;
            for (const auto& x : cfg.services) known += (known.empty() ? "" : ", ") + x.name;
            r_.error(s, "route points to unknown service '" + *name + "'" +
                            (known.empty() ? " (no services are defined)" : " (known: " + known + ")"));
            ok = false;
          } else if (svc->targets.empty() && !svc->dynamic_port()) {
            r_.error(s, "route points to service '" + *name + "', which has no http:// url or port to forward to" +
                            std::string(svc->monitor ? " (a tcp:// service is only monitored)" : ""));
            ok = false;
          }
        } else ok = false;
      } else {
        r_.error(item, "route has no service (e.g. service: api)");
        ok = false;
      }
      if (auto sp = item["strip_prefix"]) {
        if (auto b = r_.boolean(sp, "route strip_prefix")) route.strip_prefix = *b;
      }
      if (auto j = item["json"]) {
        if (auto b = r_.boolean(j, "route json")) route.json = *b;
      }
      if (auto mb = item["max_body_bytes"]) {
        if (auto s = r_.size(mb, "route max_body_bytes", true)) route.max_body_bytes = *s;
      }
      if (!ok) continue;
      auto [it, inserted] = seen.emplace(std::make_pair(route.host, route.path), route.mark.line);
      if (!inserted) {
        r_.error(item, "duplicate route for path " + route.path +
                           (route.host.empty() ? "" : " on host " + route.host) + " (first defined on line " +
                           std::to_string(it->second) + ")");
        continue;
      }
      cfg.routes.push_back(std::move(route));
    }
  }

  std::vector<config_error>& errors_;
  std::vector<config_error>& warnings_;
  yaml_reader r_;
  std::string source_path_;
};

config_load_result finish(std::shared_ptr<config> cfg, std::vector<config_error> errors,
                          std::vector<config_error> warnings = {}) {
  config_load_result result;
  result.warnings = std::move(warnings);
  std::stable_sort(errors.begin(), errors.end(), [](const config_error& a, const config_error& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  if (errors.empty()) result.cfg = std::move(cfg);
  result.errors = std::move(errors);
  return result;
}

}  // namespace


config_load_result load_config_string(const std::string& yaml, const std::string& source_path) {
  std::vector<config_error> errors;
  std::optional<yaml::document> doc;
  try {
    doc.emplace(yaml);
  } catch (const yaml::parse_error& e) {
    std::string msg = "YAML syntax error: " + e.msg;
    // libyaml's words for a key or list item out of line; say what usually causes them. A tab in
    // the indentation is the usual cause of the others.
    const bool tab = yaml.find('\t') != std::string::npos &&
                     (e.msg.find("tab") != std::string::npos || e.msg.find("cannot start any token") != std::string::npos);
    if (tab)
      msg += " (this file has a tab character: YAML indents with spaces only)";
    else if (e.msg.find("not allowed in this context") != std::string::npos ||
             e.msg.find("did not find expected") != std::string::npos ||
             e.msg.find("could not find expected ':'") != std::string::npos)
      msg += " (check the indentation on this line and the one before: keys of one mapping start in the same "
             "column, list items with '- ' under their key, and a value after ':' needs a space or its own line)";
    errors.push_back({e.mark.is_null() ? 0 : e.mark.line + 1, e.mark.is_null() ? 0 : e.mark.column + 1, msg});
    return finish(nullptr, std::move(errors));
  }
  std::vector<config_error> warnings;
  config_builder builder(errors, warnings, source_path);
  auto cfg = builder.build(doc->root());
  return finish(std::move(cfg), std::move(errors), std::move(warnings));
}

config_load_result load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    config_load_result r;
    r.errors.push_back({0, 0, "cannot read " + path + ": " + std::strerror(errno)});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_string(text.str(), path);
}

std::string resolve_config_path(const std::string& config_path, const std::string& s) {
  fs::path p(s);
  const char* home = std::getenv("HOME");
  if (s.rfind("~/", 0) == 0 && home) p = fs::path(home) / s.substr(2);
  return (p.is_absolute() ? p : fs::absolute(fs::path(config_path)).parent_path() / p).lexically_normal().string();
}

std::string default_state_dir(const std::string& config_path) {
  const char* home = std::getenv("HOME");
  if (const char* env = std::getenv("KINFRA_STATE_DIR"); env && *env) return resolve_config_path(config_path, env);
  if (home && *home) return std::string(home) + "/.kinfra/state";
  return resolve_config_path(config_path, ".kinfra-state");
}

std::string state_dir_of(const std::string& config_path, std::string& error) {
  if (!fs::exists(config_path)) return default_state_dir(config_path);
  try {
    std::ifstream in(config_path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    const yaml::document doc(text.str());
    const yaml::node root = doc.root();
    if (root.IsMap() && root["state_dir"] && root["state_dir"].IsScalar() && !root["state_dir"].Scalar().empty())
      return resolve_config_path(config_path, root["state_dir"].Scalar());
    return default_state_dir(config_path);
  } catch (const std::exception& e) {
    error = config_path + ": " + e.what();
    return {};
  }
}

std::string format_config_error(const std::string& source_path, const config_error& e) {
  if (e.line == 0) return source_path + ": " + e.message;
  return source_path + ":" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message;
}

}  // namespace kinfra
