// kinfra::service_manager (include/kinfra/kinfra.hpp): the composition root of every module,
// used by the `kinfra` executable (cli/) and by programs that embed kinfra.

#include <pthread.h>
#include <signal.h>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "app/config_check.hpp"
#include "app/acme_manager.hpp"
#include "app/ocsp_stapler.hpp"
#include "app/reloader.hpp"
#include "common/history.hpp"
#include "common/metrics.hpp"
#include "common/status_board.hpp"
#include "common/version.hpp"
#include "fallback/fallback_responder.hpp"
#include "fallback/status_json.hpp"
#include "kinfra/kinfra.hpp"
#include "proxy/proxy_server.hpp"
#include "supervisor/supervisor.hpp"

namespace kinfra {
namespace {

using clock = std::chrono::steady_clock;
/** What messages call a configuration made by the host program (it has no file). */
constexpr const char* embedded_source = "(service_manager)";

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}


sigset_t handled_signals() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&s, sig);
  return s;
}

/** Waits up to `timeout` for one of `signals`; the signal, or 0. */
int wait_signal(const sigset_t& signals, std::chrono::milliseconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1000000};
  int sig = sigtimedwait(&signals, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

/** A bound address as a person can open it: a wildcard bind is reached as localhost. */
std::string openable(const host_port& a) {
  if (a.host == "0.0.0.0" || a.host == "::") return "localhost:" + std::to_string(a.port);
  return a.to_string();
}

/** " (all interfaces)" for a wildcard bind: reachable from the network, not only this machine. */
const char* everywhere(const host_port& a) {
  return a.host == "0.0.0.0" || a.host == "::" ? " (all interfaces)" : "";
}

service_state to_internal(state s) {
  switch (s) {
    case state::stopped: return service_state::stopped;
    case state::starting: return service_state::starting;
    case state::running: return service_state::running;
    case state::unhealthy: return service_state::unhealthy;
    case state::stopping: return service_state::stopping;
    case state::error: return service_state::error;
  }
  return service_state::stopped;
}

state to_public(service_state s) {
  switch (s) {
    case service_state::stopped: return state::stopped;
    case service_state::starting: return state::starting;
    case service_state::running: return state::running;
    case service_state::unhealthy: return state::unhealthy;
    case service_state::stopping: return state::stopping;
    case service_state::error: return state::error;
  }
  return state::stopped;
}

step_status to_internal(step s) {
  return s == step::completed ? step_status::completed : s == step::active ? step_status::active : step_status::pending;
}

step to_public(step_status s) {
  return s == step_status::completed ? step::completed : s == step_status::active ? step::active : step::pending;
}

}  // namespace

error::error(std::vector<std::string> problems) : std::runtime_error(join_lines(problems)), problems_(std::move(problems)) {}

options options::from_file(const std::string& path) {
  auto checked = app::check_config_file(path);
  if (!checked.ok()) throw error(std::move(checked.errors));
  options o;  // (its warnings are logged by start(), which loads it again)
  o.config_file = path;
  return o;
}

struct service_manager::impl {
  options opts;
  std::vector<service> services;  ///< added through the API
  std::vector<route> routes;
  mutable std::mutex mutex;  ///< guards services, routes and the lifecycle below

  std::shared_ptr<const config> cfg;
  std::unique_ptr<status_board> board;
  std::unique_ptr<metrics_registry> metrics;
  history_registry history;  ///< the dashboard's charts, sampled each second with the rates
  std::unique_ptr<supervisor::supervisor> services_sup;
  std::unique_ptr<fallback::fallback_responder> responder;
  std::unique_ptr<reloader> reload;
  std::unique_ptr<proxy::proxy_server> proxy;
  std::unique_ptr<app::acme_manager> acme;  ///< certificates of `tls: { acme: … }` listeners
  std::unique_ptr<app::ocsp_stapler> ocsp;  ///< OCSP responses for the listeners' certificates (after proxy)
  bool started = false;
  bool stopped = false;
  /** Set (release) once every component exists: readers on other threads check it (acquire). */
  std::atomic<bool> ready{false};
  std::mutex stop_mutex;  ///< one graceful stop at a time
  std::condition_variable stop_cv;
  std::mutex apply_mutex;  ///< one add_service/add_route applied at a time (validate, reload, undo)
  std::thread sampler;     ///< samples the request counters each second, for the rates
  bool sampler_stop = false;
  sigset_t signals = handled_signals();

  /** The name in messages and the base of relative paths. */
  std::string source() const { return opts.config_file.empty() ? embedded_source : opts.config_file; }

  /**
   * The configuration as routes.yaml text: the file's own bytes when nothing was added (so errors
   * point at its lines), else the file (or the options) with the added services and routes.
   */
  bool yaml_text(std::string& text, std::string& err) const {
    try {
      YAML::Node root;
      if (!opts.config_file.empty()) {
        std::ifstream in(opts.config_file, std::ios::binary);
        if (!in) {
          err = opts.config_file + ": cannot read";
          return false;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        text = ss.str();
        if (services.empty() && routes.empty()) return true;
        root = YAML::Load(text);
      } else {
        for (const auto& l : opts.listen) root["listen"].push_back(l);
        root["admin_listen"] = opts.admin_listen.empty() ? std::string("off") : opts.admin_listen;
        if (!opts.admin_token.empty()) root["admin_token"] = opts.admin_token;
        root["allow_remote"] = opts.allow_remote;
        for (const auto& h : opts.admin_hosts) root["admin_hosts"].push_back(h);
        root["actions"] = opts.actions;
        if (!opts.templates_dir.empty()) root["templates_dir"] = opts.templates_dir;
        if (opts.workers == 0) root["workers"] = "auto";
        else root["workers"] = opts.workers;
        root["access_log"] = opts.access_log;
        root["log_format"] = opts.json_access_log ? "json" : "combined";
      }
      if (!root["routes"]) root["routes"] = YAML::Node(YAML::NodeType::Sequence);
      if (!root["services"]) root["services"] = YAML::Node(YAML::NodeType::Map);
      for (const auto& s : services) {
        if (root["services"][s.name]) {
          err = "service '" + s.name + "' is defined twice";
          return false;
        }
        YAML::Node n(YAML::NodeType::Map);
        for (const auto& a : s.command) n["command"].push_back(a);
        if (s.port_auto) n["port"] = "auto";
        else if (s.port) n["port"] = *s.port;
        if (s.instances != 1) n["instances"] = s.instances;
        if (!s.url.empty()) n["url"] = s.url;
        if (!s.cwd.empty()) n["cwd"] = s.cwd;
        for (const auto& [k, v] : s.env) n["env"][k] = v;
        if (!s.health_path.empty()) n["health"]["http"] = s.health_path;
        if (!s.autostart) n["autostart"] = false;
        if (!s.protocol.empty()) n["protocol"] = s.protocol;
        root["services"][s.name] = n;
        if (!s.path_prefix.empty()) {
          YAML::Node r;
          r["path"] = s.path_prefix;
          r["service"] = s.name;
          root["routes"].push_back(r);
        }
      }
      for (const auto& r : routes) {
        YAML::Node n;
        n["path"] = r.path;
        n["service"] = r.service;
        if (!r.host.empty()) n["host"] = r.host;
        if (r.strip_prefix) n["strip_prefix"] = true;
        if (r.json) n["json"] = true;
        root["routes"].push_back(n);
      }
      YAML::Emitter out;
      out << root;
      text = out.c_str();
      text += "\n";
      return true;
    } catch (const YAML::Exception& e) {
      err = source() + ": " + e.what();
      return false;
    }
  }

  /** Loads the current text; throws kinfra::error with every problem. */
  std::shared_ptr<const config> load(bool log_warnings = false) const {
    std::string text, err;
    if (!yaml_text(text, err)) throw error({err});
    auto checked = app::check_config_text(text, source());
    if (!checked.ok()) throw error(std::move(checked.errors));
    if (log_warnings)
      for (const auto& w : checked.warnings) spdlog::warn("{}", w);
    return checked.cfg;
  }

  /** After an add_* while running: validate, then apply like a reload; undo `undo` on failure. */
  template <class Undo>
  void apply_change(std::unique_lock<std::mutex>& lock, Undo undo) {
    // Before start() the parts may come in any order (a route before its service): start()
    // validates the whole.
    if (!started || stopped) return;
    try {
      load();  // everything that can be wrong is found here, before anything changes
    } catch (...) {
      undo();
      throw;
    }
    lock.unlock();
    auto r = reload->reload("service_manager");
    if (!r.errors.empty()) {
      lock.lock();
      undo();
      throw error(r.errors);
    }
  }

  void start() {
    cfg = load(true);
    board = std::make_unique<status_board>(*cfg);
    metrics = std::make_unique<metrics_registry>(cfg->workers);
    services_sup = std::make_unique<supervisor::supervisor>(cfg, *board);
    responder = std::make_unique<fallback::fallback_responder>(cfg, board.get(), services_sup.get());
    // What is in force now, so that a save that changes nothing is not applied again.
    std::string baseline, ignored;
    if (!yaml_text(baseline, ignored)) baseline.clear();
    reload = std::make_unique<reloader>(
        source(), cfg, *board, *services_sup, *responder,
        [this](std::string& text, std::string& err) {
          std::lock_guard lock(mutex);  // (taken inside the reloader's lock: never the other way round)
          return yaml_text(text, err);
        },
        std::move(baseline));
    responder->set_config_control(reload.get());
    responder->set_metrics(metrics.get());
    responder->set_history(&history);
    acme = std::make_unique<app::acme_manager>([this] { return reload->current(); }, *board,
                                          [this] { return reload->reload_certificates("ACME certificate"); });
    responder->set_acme_challenges(&acme->challenges());
    proxy = std::make_unique<proxy::proxy_server>(cfg, responder.get(), board.get(), metrics.get());
    reload->attach(proxy.get());
    services_sup->start();
    proxy->start();
    acme->start();
    ocsp = std::make_unique<app::ocsp_stapler>(proxy->ocsp_staples(), *board,
                                               [this] { return reload->current()->state_dir; });
    ocsp->start();
    if (!opts.config_file.empty()) reload->watch();
    auto bound = proxy->bound_addresses();
    for (std::size_t i = 0; i < bound.size() && i < cfg->listen.size(); ++i) {
      const auto& l = cfg->listen[i];
      const std::string a = bound[i].to_string();
      const char* scheme = l.tls ? "https" : "http";
      if (l.redirect_to_https)
        spdlog::info("kinfra {} listening on {}{}, redirecting to https", version, a, everywhere(bound[i]));
      else
        spdlog::info("kinfra {} listening on {}{} ({} workers); dashboard at {}://{}/kinfra", version, a,
                     everywhere(bound[i]), cfg->workers, scheme, openable(bound[i]));
    }
    for (const auto& a : proxy->admin_addresses()) spdlog::info("dashboard also at http://{}/kinfra", openable(a));
    // The dashboard's rates are over the last seconds, its history in 1 s points: a sample each
    // second, whoever asks, on a fixed beat (a wait of 1 s after the work would drift and skip one
    // now and then).
    sampler = std::thread([this] {
      std::unique_lock lock(mutex);
      auto beat = clock::now();
      for (;;) {
        beat += std::chrono::seconds(1);
        if (const auto now = clock::now(); beat < now) beat = now;  // (late: go on from now)
        if (stop_cv.wait_until(lock, beat, [this] { return sampler_stop; })) break;
        lock.unlock();
        (void)metrics->rates(clock::now());
        const auto epoch = std::chrono::system_clock::now().time_since_epoch();
        history.sample(std::chrono::duration_cast<std::chrono::seconds>(epoch).count(), *metrics, board.get(),
                       reload->current());
        lock.lock();
      }
    });
    ready.store(true, std::memory_order_release);
  }

  /** After a failed start(): the parts made so far go, newest first. */
  void discard() {
    if (acme) acme->stop();
    ocsp.reset();  // (before proxy: it fills the proxy's staples)
    proxy.reset();  // (before acme: the responder the proxy calls points at acme's challenges)
    acme.reset();
    reload.reset();
    responder.reset();
    services_sup.reset();
    metrics.reset();
    board.reset();
    cfg.reset();
  }

  void stop_sampler() {
    {
      std::lock_guard lock(mutex);
      sampler_stop = true;
    }
    stop_cv.notify_all();
    if (sampler.joinable()) sampler.join();
  }

  /**
   * Stop accepting, let requests in flight finish within timeouts.shutdown (idle keep-alive
   * connections close at once), then stop the services in reverse dependency order. With
   * `watch_signals`, a second SIGINT/SIGTERM cuts this short and SIGKILLs the services.
   */
  void graceful_stop(int first_signal, bool watch_signals) {
    std::lock_guard stop_lock(stop_mutex);
    {
      std::lock_guard lock(mutex);
      if (!started || stopped) return;
    }
    acme->stop();  // (an order in progress is abandoned; it starts over at the next start)
    ocsp->stop();
    reload->stop();
    const auto grace = reload->current()->timeouts.shutdown;
    spdlog::info("{}: finishing requests in flight (up to {} ms), then stopping services",
                 first_signal == SIGINT ? "SIGINT received" : first_signal == SIGTERM ? "SIGTERM received" : "stopping",
                 grace.count());
    auto second_signal = [&](std::chrono::milliseconds wait) {
      if (!watch_signals) {
        std::this_thread::sleep_for(wait);
        return false;
      }
      int s = wait_signal(signals, wait);
      return s == SIGINT || s == SIGTERM;
    };
    proxy->drain();
    bool hurry = false;
    const auto deadline = clock::now() + grace;
    while (proxy->connections() > 0 && clock::now() < deadline) {
      if (second_signal(std::chrono::milliseconds(50))) {
        hurry = true;
        spdlog::warn("second signal: closing every connection and killing the services now");
        break;
      }
    }
    if (std::size_t left = proxy->connections(); left > 0 && !hurry)
      spdlog::warn("{} connections still open after {} ms: closing them", left, grace.count());
    proxy->stop();
    services_sup->begin_shutdown();
    if (hurry) services_sup->kill_all();
    while (!services_sup->services_stopped()) {
      if (second_signal(std::chrono::milliseconds(50)) && !hurry) {
        hurry = true;
        spdlog::warn("second signal: killing the services now");
        services_sup->kill_all();
      }
    }
    services_sup->shutdown();
    proxy->flush_logs();
    stop_sampler();
    {
      std::lock_guard lock(mutex);
      stopped = true;
    }
    stop_cv.notify_all();
    spdlog::info("kinfra stopped");
  }
};

service_manager::service_manager(options opts) : impl_(std::make_unique<impl>()) { impl_->opts = std::move(opts); }

service_manager::~service_manager() {
  try {
    shutdown();
  } catch (...) {
  }
}

void service_manager::add_service(const service& s) {
  std::lock_guard one_at_a_time(impl_->apply_mutex);
  std::unique_lock lock(impl_->mutex);
  impl_->services.push_back(s);
  impl_->apply_change(lock, [this] { impl_->services.pop_back(); });
}

void service_manager::add_route(const route& r) {
  std::lock_guard one_at_a_time(impl_->apply_mutex);
  std::unique_lock lock(impl_->mutex);
  impl_->routes.push_back(r);
  impl_->apply_change(lock, [this] { impl_->routes.pop_back(); });
}

void service_manager::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) return;
  if (impl_->stopped) throw std::logic_error("kinfra::service_manager cannot start again after shutdown()");
  // kinfra's threads are created with these signals blocked (they inherit the mask), so they
  // reach run()'s sigwait, never a worker; the caller's own mask is given back afterwards.
  sigset_t before;
  if (impl_->opts.handle_signals) pthread_sigmask(SIG_BLOCK, &impl_->signals, &before);
  // A peer that goes away must not kill the host program (sockets and service pipes).
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
  try {
    impl_->start();
  } catch (...) {
    impl_->discard();
    if (impl_->opts.handle_signals) pthread_sigmask(SIG_SETMASK, &before, nullptr);
    throw;
  }
  if (impl_->opts.handle_signals) pthread_sigmask(SIG_SETMASK, &before, nullptr);
  impl_->started = true;
}

void service_manager::run() {
  start();
  auto& d = *impl_;
  if (!d.opts.handle_signals) {
    std::unique_lock lock(d.mutex);
    d.stop_cv.wait(lock, [&] { return d.stopped; });
    return;
  }
  // This thread takes the signals from here on (kinfra's own threads never do).
  pthread_sigmask(SIG_BLOCK, &d.signals, nullptr);
  for (;;) {
    {
      std::lock_guard lock(d.mutex);
      if (d.stopped) return;
    }
    int sig = wait_signal(d.signals, std::chrono::milliseconds(100));
    try {
      if (sig == SIGHUP) {
        d.reload->reload("SIGHUP");  // routes.yaml and every certificate it names, read again
      } else if (sig == SIGUSR1) {
        std::string error;  // logrotate moved the access log away
        if (d.proxy->reopen_logs(error)) spdlog::info("SIGUSR1: access log reopened");
        else spdlog::error("SIGUSR1: {}", error);
      } else if (sig == SIGINT || sig == SIGTERM) {
        d.graceful_stop(sig, true);
        return;
      }
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
    }
  }
}

void service_manager::shutdown() { impl_->graceful_stop(0, false); }

bool service_manager::running() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->started && !impl_->stopped;
}

bool service_manager::update_service_status(const std::string& name, const status_update& update) {
  if (!impl_->ready.load(std::memory_order_acquire)) return false;
  service_update u;
  u.status_message = update.status_message;
  if (update.state) u.state = to_internal(*update.state);
  if (!update.steps.empty() || update.clear_steps) {
    std::vector<step_entry> steps;
    for (const auto& s : update.steps) steps.push_back({s.text, to_internal(s.status)});
    u.steps = std::move(steps);
  }
  for (const auto& l : update.logs) {
    log_entry e;
    e.time = std::chrono::system_clock::now();
    e.timestamp = l.timestamp;
    e.level = parse_log_level(l.level).value_or(log_level::info);
    e.message = l.message;
    u.logs.push_back(std::move(e));
  }
  return impl_->board->update_service_status(name, u);
}

bool service_manager::restart(const std::string& name) {
  return impl_->ready.load(std::memory_order_acquire) && impl_->services_sup->restart(name, "API") == control_result::accepted;
}

bool service_manager::stop(const std::string& name) {
  return impl_->ready.load(std::memory_order_acquire) && impl_->services_sup->stop(name) == control_result::accepted;
}

bool service_manager::start(const std::string& name) {
  return impl_->ready.load(std::memory_order_acquire) && impl_->services_sup->start(name) == control_result::accepted;
}

std::vector<service_info> service_manager::status() const {
  std::vector<service_info> out;
  if (!impl_->ready.load(std::memory_order_acquire)) return out;
  const auto snap = impl_->board->snapshot();  // (kept alive: a writer may publish a new one meanwhile)
  for (const auto& s : snap->services) {
    service_info i;
    i.name = s.name;
    i.state = to_public(s.state);
    i.status_message = s.status_message;
    i.port = s.port;
    if (s.pid) i.pid = static_cast<int>(*s.pid);
    i.health = s.health;
    i.restarts = s.restarts;
    for (const auto& st : s.steps) i.steps.push_back({st.text, to_public(st.status)});
    for (const auto& p : s.instances) {
      instance_info ii;
      ii.index = p.index;
      ii.role = std::string(to_string(p.part));
      ii.state = to_public(p.state);
      if (p.pid) ii.pid = static_cast<int>(*p.pid);
      ii.port = p.port;
      i.instances.push_back(std::move(ii));
    }
    if (s.last_restart) {
      i.last_restart = std::string(to_string(s.last_restart->outcome));
      i.last_restart_message = s.last_restart->message;
    }
    out.push_back(std::move(i));
  }
  return out;
}

std::string service_manager::status_json(const std::string& service) const {
  if (!impl_->ready.load(std::memory_order_acquire)) return "{\"services\": {}}";
  auto rates = impl_->metrics->rates(std::chrono::steady_clock::now());
  return fallback::render_status_json(*impl_->board, service, std::chrono::system_clock::now(), &rates);
}

std::vector<std::string> service_manager::listen_addresses() const {
  std::vector<std::string> out;
  if (impl_->ready.load(std::memory_order_acquire))
    for (const auto& a : impl_->proxy->bound_addresses()) out.push_back(a.to_string());
  return out;
}

std::vector<std::string> service_manager::admin_addresses() const {
  std::vector<std::string> out;
  if (impl_->ready.load(std::memory_order_acquire))
    for (const auto& a : impl_->proxy->admin_addresses()) out.push_back(a.to_string());
  return out;
}

}  // namespace kinfra
