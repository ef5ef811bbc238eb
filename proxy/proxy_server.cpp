#include "proxy/proxy_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/router.hpp"
#include "proxy/worker.hpp"

namespace kinfra::proxy {
namespace {

/** Resolves every service target once, at start-up. */
resolved_targets resolve_targets(const config& cfg) {
  resolved_targets out;
  out.services.resize(cfg.services.size());
  for (std::size_t s = 0; s < cfg.services.size(); ++s) {
    const auto& svc = cfg.services[s];
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
std::shared_ptr<tls::server_contexts> load_certificates(const config& cfg, const listener_config& l) {
  std::vector<tls::problem> problems;
  auto contexts = tls::load_server_contexts(*l.tls, cfg.state_dir, problems);
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

struct proxy_server::impl {
  std::shared_ptr<const config> cfg;
  std::vector<std::unique_ptr<worker>> workers;
  std::vector<host_port> bound;
  std::vector<host_port> admin;
};

proxy_server::proxy_server(std::shared_ptr<const config> cfg, const local_responder* responder, status_board* board)
    : impl_(std::make_unique<impl>()) {
  impl_->cfg = cfg;
  auto routes = std::make_shared<const router>(*cfg);
  auto targets = resolve_targets(*cfg);
  for (unsigned i = 0; i < cfg->workers; ++i)
    impl_->workers.push_back(std::make_unique<worker>(cfg, routes, targets, responder, board));
  // Every worker gets its own socket on each address; with port 0 the first bind picks the
  // port and the others join it.
  std::vector<listener_info> infos;
  std::vector<std::vector<int>> fds;
  std::optional<std::uint16_t> first_https;
  try {
    for (const auto& listener : cfg->listen) {
      listener_info info;
      if (listener.tls) info.tls = load_certificates(*cfg, listener);
      host_port actual = listener.address;
      fds.emplace_back();
      for (std::size_t i = 0; i < impl_->workers.size(); ++i) {
        int fd = open_listener(actual);
        actual.port = bound_port(fd);
        fds.back().push_back(fd);
      }
      if (listener.tls && !first_https) first_https = actual.port;
      info.redirect_to_https = listener.redirect_to_https;
      info.plain_paths = listener.plain_paths;
      infos.push_back(std::move(info));
      impl_->bound.push_back(actual);
    }
  } catch (...) {
    for (auto& list : fds)
      for (int fd : list) ::close(fd);
    throw;
  }
  for (std::size_t l = 0; l < infos.size(); ++l) {
    // Redirects go to the port users reach HTTPS on: https_port, else the first TLS listener.
    infos[l].https_port = cfg->listen[l].https_port.value_or(first_https.value_or(443));
    for (std::size_t i = 0; i < impl_->workers.size(); ++i) impl_->workers[i]->add_listener(fds[l][i], infos[l]);
  }
  if (cfg->admin.listen) {
    host_port actual = *cfg->admin.listen;
    std::vector<int> fds;
    try {
      for (std::size_t i = 0; i < impl_->workers.size(); ++i) {
        int fd = open_listener(actual);
        actual.port = bound_port(fd);
        fds.push_back(fd);
      }
      listener_info admin;
      admin.admin = true;
      for (std::size_t i = 0; i < fds.size(); ++i) impl_->workers[i]->add_listener(fds[i], admin);
      impl_->admin.push_back(actual);
    } catch (const std::exception& e) {
      for (int fd : fds) ::close(fd);
      spdlog::warn("admin listener: {}; the dashboard is still at /kinfra on the main listener", e.what());
    }
  }
}

proxy_server::~proxy_server() { stop(); }

void proxy_server::start() {
  for (auto& w : impl_->workers) w->start();
}

void proxy_server::stop() {
  for (auto& w : impl_->workers) w->stop();
  for (auto& w : impl_->workers) w->join();
}

std::vector<host_port> proxy_server::bound_addresses() const { return impl_->bound; }

void proxy_server::reload_certificates() {
  const auto& cfg = *impl_->cfg;
  // Everything is loaded first: one bad file leaves every listener as it was.
  std::vector<std::pair<std::size_t, std::shared_ptr<tls::server_contexts>>> fresh;
  for (std::size_t l = 0; l < cfg.listen.size(); ++l) {
    if (cfg.listen[l].tls) fresh.emplace_back(l, load_certificates(cfg, cfg.listen[l]));
  }
  for (const auto& [l, contexts] : fresh) {
    for (auto& w : impl_->workers) w->replace_certificates(l, contexts);
  }
}
std::vector<host_port> proxy_server::admin_addresses() const { return impl_->admin; }

}  // namespace kinfra::proxy
