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
#include <map>
#include <thread>

#include "supervisor/service_runner.hpp"

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
  std::shared_ptr<const config> cfg;
  status_board& board;
  net::io_context ioc;
  net::signal_set sigchld{ioc, SIGCHLD};
  net::steady_timer reap_timer{ioc};
  std::vector<std::unique_ptr<service_runner>> runners;
  std::map<pid_t, std::size_t> pids;
  std::thread thread;
  bool started = false;
  bool shut_down = false;

  impl(std::shared_ptr<const config> c, status_board& b) : cfg(std::move(c)), board(b) {}

  service_runner* find(std::string_view name) {
    for (auto& r : runners)
      if (r->name() == name) return r.get();
    return nullptr;
  }

  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;  // 0: none exited; -1: no children (ECHILD) or EINTR
      auto it = pids.find(pid);
      if (it == pids.end()) continue;  // an orphan handed to us as subreaper: reaped, nothing more
      std::size_t index = it->second;
      pids.erase(it);
      runners[index]->on_exit(status);
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
    service_runner* r = find(name);
    if (!r) return false;
    auto s = r->state();
    if (until == dependency::condition::healthy) return s == service_state::running;
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
    for (std::size_t i : level) runners[i]->stop(next);
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
  for (std::size_t i = 0; i < d.cfg->services.size(); ++i) {
    runner_hooks hooks;
    hooks.dependency_met = [&d](const std::string& name, dependency::condition until) {
      return d.dependency_met(name, until);
    };
    hooks.spawned = [&d, i](pid_t pid) { d.pids[pid] = i; };
    hooks.state_changed = [&d] { net::post(d.ioc, [&d] { d.notify_dependents(); }); };
    d.runners.push_back(std::make_unique<service_runner>(d.ioc, d.cfg->services[i], i, d.board, std::move(hooks)));
  }
  // A refused connection seen by the proxy (any thread) is handled on the control thread.
  d.board.on_refused([&d](std::size_t index) {
    net::post(d.ioc, [&d, index] { d.runners[index]->on_refused(); });
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
    for (std::size_t i : level) d.runners[i]->start();
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

void supervisor::shutdown() {
  auto& d = *impl_;
  if (d.shut_down) return;
  d.shut_down = true;
  d.board.on_refused(nullptr);
  if (!d.started) return;
  std::promise<void> stopped;
  net::post(d.ioc, [&d, &stopped] {
    d.stop_levels(d.cfg->start_levels(), [&stopped] { stopped.set_value(); });
  });
  stopped.get_future().wait();
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
}

control_result supervisor::start(std::string_view service) {
  auto& d = *impl_;
  auto* r = d.find(service);
  if (!r) return control_result::unknown_service;
  if (!r->managed()) return control_result::not_managed;
  net::post(d.ioc, [r] { r->start(); });
  return control_result::accepted;
}

control_result supervisor::stop(std::string_view service) {
  auto& d = *impl_;
  auto* r = d.find(service);
  if (!r) return control_result::unknown_service;
  if (!r->managed()) return control_result::not_managed;
  net::post(d.ioc, [r] { r->stop(); });
  return control_result::accepted;
}

control_result supervisor::restart(std::string_view service) {
  auto& d = *impl_;
  auto* r = d.find(service);
  if (!r) return control_result::unknown_service;
  if (!r->managed()) return control_result::not_managed;
  net::post(d.ioc, [r] { r->restart(); });
  return control_result::accepted;
}

}  // namespace kinfra::supervisor
