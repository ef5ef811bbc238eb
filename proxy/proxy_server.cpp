#include "proxy/proxy_server.hpp"

#include <boost/asio/thread_pool.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/ocsp_staples.hpp"
#include "proxy/router.hpp"
#include "proxy/worker.hpp"

namespace kinfra::proxy {
namespace {

/** Resolves every service target (at start-up and on each reload). */
resolved_targets resolve_targets(const config& cfg, metrics_registry* metrics) {
  resolved_targets out;
  out.services.resize(cfg.services.size());
  for (std::size_t s = 0; s < cfg.services.size(); ++s) {
    const auto& svc = cfg.services[s];
    out.services[s].name = svc.name;
    out.services[s].hold = svc.hold;
    out.services[s].protocol = svc.protocol;
    out.services[s].comes_back = svc.managed() && svc.health.probe != health_config::kind::none &&
                                 (svc.health.probe != health_config::kind::automatic || svc.probe_address() ||
                                  svc.port_auto);
    out.services[s].dynamic = svc.dynamic_port();
    if (svc.dynamic_port()) {
      // One slot per instance, and one more for a start-first restart's new process.
      for (unsigned i = 0; i <= svc.instances; ++i) {
        target_state t;
        t.name = "http://127.0.0.1 (port: auto)";
        out.services[s].targets.push_back(out.targets.size());
        out.targets.push_back(std::move(t));
      }
    }
    if (metrics) {
      out.services[s].stats = &metrics->service(svc.name);
      out.services[s].fallback_stats = &metrics->route(metrics_registry::fallback_route, svc.name);
    }
    std::shared_ptr<net::ssl::context> tls_context;
    for (const auto& url : svc.targets) {
      target_state t;
      t.name = url.text;
      t.authority = url.address.to_string();
      if (url.tls()) {
        if (!tls_context) {
          std::vector<tls::problem> problems;
          tls_context = tls::make_client_context(svc.tls, problems);
          for (const auto& p : problems) {
            if (!p.warning) throw std::runtime_error("service " + svc.name + ": " + p.message);
            spdlog::warn("service {}: {}", svc.name, p.message);
          }
        }
        t.tls = tls_context;
        t.tls_name = svc.tls.server_name.empty() ? url.address.host : svc.tls.server_name;
        t.tls_verify = !svc.tls.insecure_skip_verify;
      }
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_family = AF_UNSPEC;
      addrinfo* res = nullptr;
      std::string port = std::to_string(url.address.port);
      int rc = ::getaddrinfo(url.address.host.c_str(), port.c_str(), &hints, &res);
      if (rc == 0 && res) {
        t.endpoint.resize(res->ai_addrlen);
        std::memcpy(t.endpoint.data(), res->ai_addr, res->ai_addrlen);
        t.resolved = true;
        ::freeaddrinfo(res);
      } else {
        spdlog::error("service {}: cannot resolve {}: {}", cfg.services[s].name, url.address.host, gai_strerror(rc));
      }
      out.services[s].targets.push_back(out.targets.size());
      out.targets.push_back(std::move(t));
    }
  }
  return out;
}

/** Opens a listening socket on `addr` with SO_REUSEPORT. Throws with a clear message. */
int open_listener(const host_port& addr) {
  sockaddr_storage ss{};
  socklen_t len;
  if (addr.host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(addr.port);
    inet_pton(AF_INET6, addr.host.c_str(), &a6->sin6_addr);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(addr.port);
    inet_pton(AF_INET, addr.host.c_str(), &a4->sin_addr);
    len = sizeof(sockaddr_in);
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot create a socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ss.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("cannot listen on " + addr.to_string() + ": " + std::strerror(err));
  }
  return fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

/** Loads a listener's certificates; throws with every problem, logs the warnings. */
std::shared_ptr<tls::server_contexts> load_certificates(const config& cfg, const listener_config& l,
                                                       const local_responder* responder, tls::ocsp_staples& staples) {
  std::vector<tls::problem> problems;
  auto contexts = tls::load_server_contexts(*l.tls, cfg.state_dir, problems, responder, &staples);
  std::string errors;
  for (const auto& p : problems) {
    std::string where = cfg.source_path + ":" + std::to_string(p.mark.line) + ":" + std::to_string(p.mark.column) + ": ";
    if (p.warning) spdlog::warn("{}{}", where, p.message);
    else errors += (errors.empty() ? "" : "\n") + where + p.message;
  }
  if (!contexts || !errors.empty()) throw std::runtime_error(errors.empty() ? "TLS setup failed" : errors);
  for (const auto& c : contexts->certificates())
    spdlog::info("https on {}: certificate {} for {} (valid until {}), SHA-256 fingerprint {}", l.address.to_string(),
                 c.cert_path, c.names.empty() ? std::string("no names") : fmt::format("{}", fmt::join(c.names, ", ")),
                 c.not_after, c.fingerprint);
  return contexts;
}

}  // namespace

void check_tls(const config& cfg, std::vector<config_error>& errors, std::vector<config_error>& warnings) {
  for (const auto& p : tls::check_config(cfg))
    (p.warning ? warnings : errors).push_back({p.mark.line, p.mark.column, p.message});
}

/** A listen address of the configuration, open on every worker. */
struct open_listener_set {
  host_port configured;  ///< as written (port 0 stays 0: a reload keeps the port it got)
  bool admin = false;
  host_port bound;
  std::vector<int> fds;          ///< one per worker, until handed to them
  std::vector<std::size_t> ids;  ///< per worker, once handed over
  std::vector<int> handed;       ///< the descriptors the workers own (to stop listening at once)
  listener_info info;
};

struct proxy_server::impl {
  std::shared_ptr<const config> cfg;
  const local_responder* responder = nullptr;
  tls::ocsp_staples staples;  ///< (before the listeners: their contexts point at its slots)
  status_board* board = nullptr;
  metrics_registry* metrics = nullptr;
  mutable std::mutex log_mutex;     ///< guards `log` (a reload and SIGUSR1 come on different threads)
  std::shared_ptr<access_log> log;  ///< the access log in use (kept by a reload that does not change it)

  std::shared_ptr<access_log> current_log() const {
    std::lock_guard lock(log_mutex);
    return log;
  }
  /** The access log `next` asks for: the current one when its settings stay. Throws when it cannot open. */
  std::shared_ptr<access_log> open_log(const config& next) const {
    if (next.access_log.off()) return nullptr;
    auto now = current_log();
    if (now && now->settings().same_output(next.access_log)) return now;
    return std::make_shared<access_log>(next.access_log);
  }

  std::vector<std::unique_ptr<worker>> workers;
  /** The admin work that may block or grow (see worker::set_control_executor), off the workers. */
  net::thread_pool control{2};
  std::vector<open_listener_set> listeners;  ///< in routes.yaml order, the admin listener last

  /**
   * The listeners `next` asks for: those already open (same address) are reused, the others are
   * bound now. Certificates are loaded. Throws, closing what it opened, when anything fails.
   */
  std::vector<open_listener_set> prepare_listeners(const config& next) {
    std::vector<open_listener_set> out;
    // Several listeners may be written the same (127.0.0.1:0 three times): each old one is taken
    // once, in order, as commit_listeners pairs them.
    std::vector<bool> taken(listeners.size(), false);
    auto reuse = [&](const host_port& addr, bool admin) -> const open_listener_set* {
      for (std::size_t i = 0; i < listeners.size(); ++i)
        if (!taken[i] && listeners[i].configured == addr && listeners[i].admin == admin) {
          taken[i] = true;
          return &listeners[i];
        }
      return nullptr;
    };
    auto bind_all = [&](open_listener_set& set) {
      host_port actual = set.configured;
      try {
        for (std::size_t i = 0; i < workers.size(); ++i) {
          int fd = open_listener(actual);
          actual.port = bound_port(fd);
          set.fds.push_back(fd);
        }
      } catch (...) {
        for (int fd : set.fds) ::close(fd);
        set.fds.clear();
        throw;
      }
      set.bound = actual;
    };
    try {
      std::optional<std::uint16_t> first_https;
      for (const auto& l : next.listen) {
        open_listener_set set;
        set.configured = l.address;
        if (l.tls) {
          set.info.tls = load_certificates(next, l, responder, staples);
          set.info.tls->offer_h2(l.http2);
        }
        set.info.h2c = l.h2c;
        set.info.redirect_to_https = l.redirect_to_https;
        set.info.plain_paths = l.plain_paths;
        if (const auto* old = reuse(l.address, false)) set.bound = old->bound;
        else bind_all(set);
        if (l.tls && !first_https) first_https = set.bound.port;
        out.push_back(std::move(set));
      }
      for (std::size_t i = 0; i < out.size(); ++i) {
        // Redirects go to the port users reach HTTPS on: https_port, else the first TLS listener.
        out[i].info.https_port = next.listen[i].https_port.value_or(first_https.value_or(443));
        if (!out[i].info.redirect_to_https) continue;
        for (const auto& target : out)
          if (target.info.tls && target.bound.port == out[i].info.https_port)
            out[i].info.https_names = target.info.tls->certificates().front().names;
      }
      if (next.admin.listen) {
        open_listener_set set;
        set.configured = *next.admin.listen;
        set.admin = true;
        set.info.admin = true;
        if (const auto* old = reuse(set.configured, true)) {
          set.bound = old->bound;
          out.push_back(std::move(set));
        } else {
          try {
            bind_all(set);
            out.push_back(std::move(set));
          } catch (const std::exception& e) {
            for (int fd : set.fds) ::close(fd);
            spdlog::warn("admin listener: {}; the dashboard is still at /kinfra on the main listener", e.what());
          }
        }
      }
    } catch (...) {
      for (auto& set : out)
        for (int fd : set.fds) ::close(fd);
      throw;
    }
    return out;
  }

  /** Hands the prepared listeners to the workers: new ones open, kept ones updated, the rest closed. */
  void commit_listeners(std::vector<open_listener_set> next) {
    for (auto& set : next) {
      auto old = std::find_if(listeners.begin(), listeners.end(), [&](const open_listener_set& l) {
        return l.configured == set.configured && l.admin == set.admin && !l.ids.empty();
      });
      if (old != listeners.end()) {
        set.ids = std::move(old->ids);
        set.handed = std::move(old->handed);
        old->ids.clear();
        for (std::size_t i = 0; i < workers.size(); ++i) workers[i]->update_listener(set.ids[i], set.info);
      } else {
        for (std::size_t i = 0; i < workers.size(); ++i) set.ids.push_back(workers[i]->add_listener(set.fds[i], set.info));
        set.handed = set.fds;
        set.fds.clear();
      }
    }
    for (auto& gone : listeners) {
      if (gone.ids.empty()) continue;
      spdlog::info("no longer listening on {}", gone.bound.to_string());
      for (std::size_t i = 0; i < workers.size(); ++i) {
        // The socket stops listening now (new connections are refused from this moment); the
        // worker then closes its acceptor on its own thread.
        ::shutdown(gone.handed[i], SHUT_RDWR);
        workers[i]->close_listener(gone.ids[i]);
      }
    }
    listeners = std::move(next);
    publish_listeners();
  }

  /** Tells the board (the dashboard's Listeners and Certificates) what is open now. */
  void publish_listeners() const {
    if (!board) return;
    std::vector<listener_status> out;
    std::vector<certificate_status> certs;
    for (const auto& set : listeners) {
      listener_status l;
      l.address = set.bound.to_string();
      l.role = set.admin                  ? listener_status::kind::admin
               : set.info.tls             ? listener_status::kind::https
               : set.info.redirect_to_https ? listener_status::kind::redirect
                                          : listener_status::kind::http;
      if (set.info.redirect_to_https) {
        l.https_port = set.info.https_port;
        l.plain_paths = set.info.plain_paths;
      }
      l.protocols = {"http/1.1"};
      if ((set.info.tls && set.info.tls->offers_h2()) || set.info.h2c) l.protocols.insert(l.protocols.begin(), set.info.tls ? "h2" : "h2c");
      out.push_back(std::move(l));
      if (!set.info.tls) continue;
      for (const auto& c : set.info.tls->certificates()) {
        certificate_status cs;
        cs.listener = set.bound.to_string();
        cs.names = c.names;
        cs.issuer = c.issuer;
        cs.not_after = std::chrono::system_clock::from_time_t(c.not_after_time);
        cs.file = c.cert_path;
        cs.source = c.development   ? certificate_status::origin::local_ca
                    : c.acme        ? certificate_status::origin::acme
                    : c.temporary   ? certificate_status::origin::temporary
                    : c.self_issued ? certificate_status::origin::self_signed
                                    : certificate_status::origin::file;
        cs.fingerprint = c.fingerprint;
        cs.ocsp_url = c.ocsp_url;
        certs.push_back(std::move(cs));
      }
    }
    board->set_config_status([&](config_status& c) {
      c.listeners = std::move(out);
      c.certificates = std::move(certs);
    });
  }
};

proxy_server::proxy_server(std::shared_ptr<const config> cfg, const local_responder* responder, status_board* board,
                           metrics_registry* metrics)
    : impl_(std::make_unique<impl>()) {
  impl_->cfg = cfg;
  impl_->responder = responder;
  impl_->board = board;
  impl_->metrics = metrics;
  if (metrics && metrics->workers() < cfg->workers)
    throw std::runtime_error("the metrics registry has fewer cells than workers");
  auto routes = std::make_shared<const router>(*cfg, metrics);
  auto targets = resolve_targets(*cfg, metrics);
  impl_->log = targets.log = impl_->open_log(*cfg);  // (no other thread yet)
  for (unsigned i = 0; i < cfg->workers; ++i)
    impl_->workers.push_back(std::make_unique<worker>(cfg, routes, targets, responder, board, i, metrics));
  for (auto& w : impl_->workers) w->set_control_executor(impl_->control.get_executor());
  impl_->commit_listeners(impl_->prepare_listeners(*cfg));
}

proxy_server::~proxy_server() { stop(); }

void proxy_server::start() {
  for (auto& w : impl_->workers) w->start();
}

void proxy_server::drain() {
  for (auto& w : impl_->workers) w->drain();
}

std::size_t proxy_server::connections() const {
  std::size_t n = 0;
  for (const auto& w : impl_->workers) n += w->connections();
  return n;
}

void proxy_server::stop() {
  for (auto& w : impl_->workers) w->stop();
  // A worker's context runs until the admin work its sessions wait for has answered.
  for (auto& w : impl_->workers) w->join();
  impl_->control.join();
}

std::vector<host_port> proxy_server::bound_addresses() const {
  std::vector<host_port> out;
  for (const auto& l : impl_->listeners)
    if (!l.admin) out.push_back(l.bound);
  return out;
}

bool proxy_server::reopen_logs(std::string& error) {
  auto log = impl_->current_log();
  return !log || log->reopen(error);
}

void proxy_server::flush_logs() {
  if (auto log = impl_->current_log()) log->flush();
}

std::vector<host_port> proxy_server::admin_addresses() const {
  std::vector<host_port> out;
  for (const auto& l : impl_->listeners)
    if (l.admin) out.push_back(l.bound);
  return out;
}

tls::ocsp_staples& proxy_server::ocsp_staples() { return impl_->staples; }

struct reload_plan::data {
  std::shared_ptr<const config> cfg;
  std::shared_ptr<const router> routes;
  resolved_targets targets;
  std::vector<open_listener_set> listeners;
  ~data() {
    for (auto& set : listeners)
      for (int fd : set.fds) ::close(fd);
  }
};

reload_plan::reload_plan() = default;
reload_plan::~reload_plan() = default;
reload_plan::reload_plan(reload_plan&&) noexcept = default;
reload_plan& reload_plan::operator=(reload_plan&&) noexcept = default;

reload_plan proxy_server::prepare(std::shared_ptr<const config> next) {
  auto& d = *impl_;
  if (next->workers != d.cfg->workers)
    spdlog::warn("workers: {} → {} takes effect at the next start; the {} running workers go on", d.cfg->workers,
                 next->workers, d.workers.size());
  reload_plan plan;
  plan.d_ = std::make_unique<reload_plan::data>();
  plan.d_->routes = std::make_shared<const router>(*next, d.metrics);
  plan.d_->targets = resolve_targets(*next, d.metrics);
  plan.d_->targets.log = d.open_log(*next);
  plan.d_->listeners = d.prepare_listeners(*next);
  plan.d_->cfg = std::move(next);
  return plan;
}

void proxy_server::commit(reload_plan plan) {
  auto& d = *impl_;
  auto& p = *plan.d_;
  for (auto& w : d.workers) w->reconfigure(p.cfg, p.routes, p.targets);
  d.commit_listeners(std::move(p.listeners));
  p.listeners.clear();
  d.cfg = p.cfg;
  std::lock_guard lock(d.log_mutex);
  d.log = p.targets.log;
}

}  // namespace kinfra::proxy
