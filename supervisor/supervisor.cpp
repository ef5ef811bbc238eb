#include "supervisor/supervisor.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <future>
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "supervisor/service_group.hpp"

namespace kinfra::supervisor {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// The reaper also runs on a timer, in case SIGCHLD notifications were merged or missed.
constexpr std::chrono::milliseconds reap_interval = 500ms;

/** Children of this process (direct, or orphans handed to us as subreaper), from /proc. */
std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  DIR* dir = ::opendir("/proc");
  if (!dir) return out;
  while (dirent* e = ::readdir(dir)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == self) out.push_back(pid);
  }
  ::closedir(dir);
  return out;
}

}  // namespace

struct supervisor::impl {
  // Read by other threads (service_control) under the mutex; replaced on the control thread.
  mutable std::mutex cfg_mutex;
  std::shared_ptr<const config> cfg;
  status_board& board;
  net::io_context ioc;
  net::signal_set sigchld{ioc, SIGCHLD};
  net::steady_timer reap_timer{ioc};
  // Control thread only from start() on.
  std::vector<std::unique_ptr<service_group>> runners;  ///< in the order of `cfg`
  /** Runners of services removed by a reload: stopping or stopped, kept until shutdown. */
  std::vector<std::unique_ptr<service_group>> retired;
  std::map<pid_t, service_group*> pids;
  std::thread thread;
  bool started = false;
  bool shut_down = false;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> all_stopped{false};

  impl(std::shared_ptr<const config> c, status_board& b) : cfg(std::move(c)), board(b) {}

  std::unique_ptr<service_group> make_runner(const service_config& svc) {
    runner_hooks hooks;
    hooks.dependency_met = [this](const std::string& name, dependency::condition until) {
      return dependency_met(name, until);
    };
    // Exits are routed to the runner that spawned the process, whatever a reload did since.
    auto self = std::make_shared<service_group*>(nullptr);
    hooks.spawned = [this, self](pid_t pid) { pids[pid] = *self; };
    hooks.state_changed = [this] { net::post(ioc, [this] { notify_dependents(); }); };
    auto runner = std::make_unique<service_group>(ioc, svc, board, std::move(hooks));
    *self = runner.get();
    return runner;
  }

  std::shared_ptr<const config> current() const {
    std::lock_guard lock(cfg_mutex);
    return cfg;
  }

  service_group* find(std::string_view name) {
    for (auto& r : runners)
      if (r && r->name() == name) return r.get();
    return nullptr;
  }

  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;  // 0: none exited; -1: no children (ECHILD) or EINTR
      auto it = pids.find(pid);
      if (it == pids.end()) continue;  // an orphan handed to us as subreaper: reaped, nothing more
      service_group* group = it->second;
      pids.erase(it);
      group->on_exit(pid, status);
    }
  }

  void wait_sigchld() {
    sigchld.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      reap();
      wait_sigchld();
    });
  }

  void reap_periodically() {
    reap_timer.expires_after(reap_interval);
    reap_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      reap();
      reap_periodically();
    });
  }

  void notify_dependents() {
    for (auto& r : runners) r->dependencies_changed();
  }

  bool dependency_met(const std::string& name, dependency::condition until) {
    service_group* r = find(name);
    if (!r) return false;
    auto s = r->state();
    if (until == dependency::condition::healthy) return s == service_state::running;
    // "started": its process exists (a service still waiting for its own dependencies is
    // "starting" too, but has not started anything); a watched service counts once checked.
    if (r->managed() && !r->has_process()) return false;
    return s == service_state::starting || s == service_state::running || s == service_state::unhealthy;
  }

  /** Runs `fn` on the control thread and waits for it. */
  template <class F>
  auto run_on_control(F fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    net::post(ioc, [&task] { task(); });
    return result.get();
  }

  /** Stops all services, deepest dependents first, each level in parallel; `done` when all stopped. */
  void stop_levels(std::vector<std::vector<std::size_t>> levels, std::function<void()> done) {
    if (levels.empty()) return done();
    auto level = std::move(levels.back());
    levels.pop_back();
    auto remaining = std::make_shared<std::size_t>(level.size());
    auto next = [this, levels, done, remaining]() mutable {
      if (--*remaining == 0) stop_levels(std::move(levels), std::move(done));
    };
    if (level.empty()) return stop_levels(std::move(levels), std::move(done));
    for (std::size_t i : level) runners.at(i)->stop(next);
  }
};

supervisor::supervisor(std::shared_ptr<const config> cfg, status_board& board)
    : impl_(std::make_unique<impl>(std::move(cfg), board)) {
  if (!spdlog::get("services")) {
    // Service output is echoed to kinfra's stderr, one "name | line" per line, like compose does.
    auto console = spdlog::stderr_color_mt("services");
    console->set_pattern("%v");
  }
  auto& d = *impl_;
  for (const auto& svc : d.cfg->services) d.runners.push_back(d.make_runner(svc));
  // A refused connection seen by the proxy (any thread) is handled on the control thread.
  d.board.on_refused([&d](const std::string& name, std::uint16_t port) {
    net::post(d.ioc, [&d, name, port] {
      if (auto* r = d.find(name)) r->on_refused(port);
    });
  });
}

void supervisor::reconfigure(std::shared_ptr<const config> next) {
  auto& d = *impl_;
  auto apply = [&d, next] {
    // First the new list, complete (no runner calls yet: they may look others up by name)...
    std::vector<std::unique_ptr<service_group>> runners;
    std::vector<std::pair<service_group*, const service_config*>> kept;
    std::vector<service_group*> added;
    for (const auto& svc : next->services) {
      auto it = std::find_if(d.runners.begin(), d.runners.end(),
                             [&](const std::unique_ptr<service_group>& r) { return r && r->name() == svc.name; });
      if (it != d.runners.end()) {
        runners.push_back(std::move(*it));
        kept.emplace_back(runners.back().get(), &svc);
      } else {
        runners.push_back(d.make_runner(svc));
        added.push_back(runners.back().get());
      }
    }
    std::vector<service_group*> removed;
    for (auto& old : d.runners) {
      if (!old) continue;
      removed.push_back(old.get());
      d.retired.push_back(std::move(old));
    }
    d.runners = std::move(runners);
    {
      std::lock_guard lock(d.cfg_mutex);
      d.cfg = next;
    }
    // ...then what each runner does about it.
    for (auto* r : removed) {
      spdlog::info("service {}: removed from routes.yaml, stopping it", r->name());
      r->retire();
      r->stop();
    }
    for (auto [r, svc] : kept) r->reconfigure(*svc);
    for (auto* r : added) {
      spdlog::info("service {}: added in routes.yaml, starting it", r->name());
      if (d.started && r->autostart()) r->start();
    }
    d.notify_dependents();
  };
  if (!d.started || d.shut_down) {
    apply();
    return;
  }
  d.run_on_control([&apply] {
    apply();
    return 0;
  });
}

supervisor::~supervisor() { shutdown(); }

void supervisor::start() {
  auto& d = *impl_;
  if (d.started) return;
  d.started = true;
  // Orphans of our services (a daemonising child, say) are re-parented to kinfra instead of init,
  // so that they can be reaped and, at shutdown, stopped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  d.wait_sigchld();
  d.reap_periodically();
  // Services start in dependency order: a service whose dependencies are not ready waits, and
  // is started when their state changes. This runs here, before the control thread exists, so
  // that a watched service without checks is "running" by the time the proxy takes requests.
  for (const auto& level : d.cfg->start_levels())
    for (std::size_t i : level)
      if (d.runners[i]->autostart()) d.runners[i]->start();
  d.thread = std::thread([&d] {
    for (;;) {
      try {
        d.ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("supervisor: {}", e.what());
      }
    }
  });
}

void supervisor::begin_shutdown() {
  auto& d = *impl_;
  if (d.stop_requested.exchange(true)) return;
  d.board.on_refused(nullptr);
  if (!d.started) {
    d.all_stopped = true;
    return;
  }
  net::post(d.ioc, [&d] { d.stop_levels(d.cfg->start_levels(), [&d] { d.all_stopped = true; }); });
}

bool supervisor::services_stopped() const { return impl_->all_stopped.load(); }

void supervisor::kill_all() {
  auto& d = *impl_;
  if (!d.started) return;
  net::post(d.ioc, [&d] {
    for (auto& r : d.runners) r->kill_now();
    for (auto& r : d.retired) r->kill_now();
  });
}

void supervisor::shutdown() {
  auto& d = *impl_;
  if (d.shut_down) return;
  d.shut_down = true;
  begin_shutdown();
  if (!d.started) return;
  while (!d.all_stopped.load()) std::this_thread::sleep_for(10ms);
  // Whatever escaped its process group (and was handed to us as subreaper) goes now.
  d.run_on_control([&d] {
    for (pid_t pid : own_children()) {
      spdlog::warn("killing leftover process {}", pid);
      ::kill(pid, SIGKILL);
    }
    for (int i = 0; i < 100 && !own_children().empty(); ++i) {
      d.reap();
      std::this_thread::sleep_for(10ms);
    }
    d.reap();
    return 0;
  });
  d.ioc.stop();
  if (d.thread.joinable()) d.thread.join();
  d.runners.clear();
  d.retired.clear();
}

control_result supervisor::act(std::string_view service, std::function<void(service_group&)> action) {
  auto& d = *impl_;
  auto cfg = d.current();
  const service_config* svc = cfg->find_service(std::string(service));
  if (!svc) return control_result::unknown_service;
  if (!svc->managed()) return control_result::not_managed;
  // The runner is found on the control thread: a reload may replace the list meanwhile.
  net::post(d.ioc, [&d, name = std::string(service), action = std::move(action)] {
    if (auto* r = d.find(name)) action(*r);
  });
  return control_result::accepted;
}

control_result supervisor::start(std::string_view service) {
  return act(service, [](service_group& g) { g.start(); });
}

control_result supervisor::stop(std::string_view service) {
  return act(service, [](service_group& g) { g.stop_now(); });
}

control_result supervisor::restart(std::string_view service, std::string_view by) {
  return act(service, [by = std::string(by)](service_group& g) { g.restart(by); });
}

}  // namespace kinfra::supervisor
