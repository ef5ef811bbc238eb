#include "supervisor/service_runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include "common/units.hpp"
#include "supervisor/health_probe.hpp"
#include "supervisor/process.hpp"
#include "supervisor/restart_policy.hpp"

namespace kinfra::supervisor {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// While a service starts, it is checked more often than `interval`, so that it gets traffic soon.
constexpr std::chrono::milliseconds starting_probe_interval = 250ms;
// After a stop signal, how often to look whether the whole process group is gone.
constexpr std::chrono::milliseconds group_poll = 50ms;
// Output lines a runner keeps for itself (shown when a start-first restart fails).
constexpr std::size_t tail_lines = 10;

bool group_alive(pid_t group) { return group > 0 && ::kill(-group, 0) == 0; }

std::string describe_exit(int wait_status) {
  exit_status st;
  if (WIFSIGNALED(wait_status)) st.signal = WTERMSIG(wait_status);
  else if (WIFEXITED(wait_status)) st.code = WEXITSTATUS(wait_status);
  return st.describe();
}

}  // namespace

service_runner::service_runner(net::io_context& ioc, const service_config& cfg, status_board& board,
                               runner_hooks hooks)
    : ioc_(ioc),
      cfg_(cfg),
      board_(board),
      hooks_(std::move(hooks)),
      probe_timer_(ioc),
      restart_timer_(ioc),
      stop_timer_(ioc),
      out_(ioc),
      err_(ioc) {
  state_ = cfg_.managed() ? service_state::stopped : service_state::starting;
}

service_runner::~service_runner() { *alive_ = false; }

bool service_runner::probing() const {
  if (cfg_.health.probe == health_config::kind::none) return false;
  if (cfg_.health.probe == health_config::kind::automatic && !cfg_.probe_address()) return false;
  return true;
}

std::chrono::milliseconds service_runner::probe_interval() const {
  if (state_ == service_state::starting) return std::min(cfg_.health.interval, starting_probe_interval);
  return cfg_.health.interval;
}

void service_runner::set_state(service_state s, std::string message, std::optional<std::string> health) {
  bool changed = s != state_;
  state_ = s;
  message_ = message;
  // Expected back on its own: wanted (or being restarted) and not running now. Requests may wait.
  // (A watched service is not: kinfra does not bring it back.)
  const bool expected_back = cfg_.managed() && s != service_state::running && (want_running_ || restarting_);
  hooks_.modify([&](instance_status& st) {
    st.state = s;
    st.expected_back = expected_back;
    st.status_message = std::move(message);
    if (health) st.health = *health;
    // A stopped service has no current check result: the last one would read as now.
    if (s == service_state::stopped) st.health_detail.clear();
    st.restarts = restarts_;
    if (!pid_) {
      st.pid.reset();
      st.started_at.reset();
    }
  });
  if (changed && hooks_.state_changed) hooks_.state_changed();
}

bool service_runner::dependencies_met(std::string* waiting_for) const {
  for (const auto& dep : cfg_.depends_on) {
    if (!hooks_.dependency_met(dep.service, dep.until)) {
      if (waiting_for)
        *waiting_for = dep.service + (dep.until == dependency::condition::healthy ? " to be healthy" : " to start");
      return false;
    }
  }
  return true;
}

void service_runner::start() {
  want_running_ = true;
  restarting_ = false;
  attempts_ = 0;
  restart_timer_.cancel();
  if (!cfg_.managed()) {
    // Watched, not run: checking is all there is to do.
    if (!probing()) set_state(service_state::running, "Not checked", std::string("Not checked"));
    else run_probe_now();
    return;
  }
  if (stopping_) {
    // Asked to start while it is still stopping: it starts once it has stopped.
    stop_waiters_.push_back([this, alive = alive_] {
      if (*alive && want_running_ && !pid_ && !stopping_) start();
    });
    return;
  }
  if (pid_) return;
  dependencies_changed();
  if (!pid_ && !waiting_for_dependencies_) spawn();
}

void service_runner::dependencies_changed() {
  if (!cfg_.managed() || !want_running_ || pid_ || stopping_) return;
  std::string waiting_for;
  if (!dependencies_met(&waiting_for)) {
    if (!waiting_for_dependencies_ || message_ != "Waiting for " + waiting_for) {
      waiting_for_dependencies_ = true;
      set_state(service_state::starting, "Waiting for " + waiting_for, std::string("Starting"));
    }
    return;
  }
  if (waiting_for_dependencies_) {
    waiting_for_dependencies_ = false;
    spawn();
  }
}

void service_runner::spawn() {
  restart_timer_.cancel();
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    set_state(service_state::error, std::string("Failed to start: ") + std::strerror(errno), std::string("Unhealthy"));
    return;
  }
  if (cfg_.port_auto) {
    // `port: auto`: a port of its own for each process (a restart's new one runs beside the old).
    auto port = pick_free_port();
    if (!port) {
      ::close(out_pipe[0]), ::close(out_pipe[1]), ::close(err_pipe[0]), ::close(err_pipe[1]);
      set_state(service_state::error, "Failed to start: no free port for port: auto", std::string("Unhealthy"));
      return;
    }
    cfg_.port = *port;
    cfg_.targets = {upstream_url{"http", {"127.0.0.1", *port}, "http://127.0.0.1:" + std::to_string(*port)}};
    hooks_.modify([&](instance_status& st) { st.port = *port; });
  }
  spawn_options opts;
  opts.argv = cfg_.command_is_shell ? std::vector<std::string>{"/bin/sh", "-c", cfg_.command.front()} : cfg_.command;
  opts.cwd = cfg_.cwd;
  opts.env = cfg_.env;
  if (cfg_.port) opts.env["PORT"] = std::to_string(*cfg_.port);
  opts.stdout_fd = out_pipe[1];
  opts.stderr_fd = err_pipe[1];
  auto result = spawn_process(opts);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (auto* err = std::get_if<std::string>(&result)) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    spdlog::error("service {}: {}", cfg_.name, *err);
    if (!retired()) board_.append_log(cfg_.name, {std::chrono::system_clock::now(), {}, log_level::error, *err, 0});
    // A command that cannot start is a failure like any other: the restart policy decides.
    pid_ = 0;
    hooks_.modify([&](instance_status& st) { st.last_exit_code = 127; st.last_signal.reset(); });
    exit_info info{false, false};
    auto d = decide_restart(cfg_.restart, info, attempts_);
    if (!d.restart) want_running_ = false;  // (nothing brings it back: requests are not held for it)
    set_state(service_state::error, *err, std::string("Unhealthy"));
    if (d.restart) {
      ++attempts_;
      restart_timer_.expires_after(d.delay);
      restart_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
        if (ec || !*alive || !want_running_) return;
        ++restarts_;
        if (hooks_.restarted) hooks_.restarted("crash");
        spawn();
      });
    }
    return;
  }
  pid_ = std::get<pid_t>(result);
  group_ = pid_;
  spawned_at_ = clock::now();
  healthy_since_.reset();
  probe_ok_ = probe_fail_ = 0;
  ++probe_generation_;
  if (hooks_.spawned) hooks_.spawned(pid_);
  spdlog::info("service {}: started (pid {})", cfg_.name, pid_);

  out_.assign(out_pipe[0]);
  err_.assign(err_pipe[0]);
  out_lines_ = {};
  err_lines_ = {};
  read_output(out_, out_lines_, out_buf_, false);
  read_output(err_, err_lines_, err_buf_, true);

  const auto now = std::chrono::system_clock::now();
  hooks_.modify([&](instance_status& st) {
    st.pid = pid_;
    st.started_at = now;
    st.health_detail.clear();
  });
  if (!probing()) {
    // Nothing to check: alive is healthy.
    mark_healthy();
    return;
  }
  set_state(service_state::starting, "Starting server process...", std::string("Starting"));
  schedule_probe(0ms);
}

void service_runner::read_output(net::posix::stream_descriptor& pipe, line_splitter& splitter,
                                 std::array<char, 8192>& buf, bool is_stderr) {
  pipe.async_read_some(net::buffer(buf), [this, &pipe, &splitter, &buf, is_stderr, alive = alive_](
                                             const boost::system::error_code& ec, std::size_t n) {
    if (!*alive) return;
    auto sink = [&](std::string_view line) { take_line(line, is_stderr); };
    if (ec) {
      splitter.finish(sink);
      boost::system::error_code ignored;
      pipe.close(ignored);
      return;
    }
    splitter.feed(std::string_view(buf.data(), n), sink);
    read_output(pipe, splitter, buf, is_stderr);
  });
}

void service_runner::take_line(std::string_view raw, bool is_stderr) {
  log_entry e;
  e.time = std::chrono::system_clock::now();
  e.message = sanitize_log_line(raw);
  e.level = detect_log_level(e.message, log_level::info);
  (void)is_stderr;
  if (!hooks_.log_tag.empty()) e.message.insert(0, hooks_.log_tag);
  if (auto console = spdlog::get("services")) console->info("{:<12}| {}", cfg_.name, e.message);
  tail_.push_back(e.message);
  if (tail_.size() > tail_lines) tail_.pop_front();
  // The level is shown beside the line: a leading "INFO " is not said twice.
  if (auto rest = strip_level_prefix(e.message, e.level); rest.size() != e.message.size()) e.message = std::string(rest);
  if (!retired()) board_.append_log(cfg_.name, std::move(e));
}

void service_runner::schedule_probe(std::chrono::milliseconds delay) {
  if (!probing()) return;
  probe_timer_.expires_after(delay);
  probe_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    run_probe_now();
  });
}

void service_runner::run_probe_now() {
  if (!probing() || probe_in_flight_) return;
  if (cfg_.managed() && !pid_) return;
  probe_in_flight_ = true;
  const auto generation = probe_generation_;
  auto kind = cfg_.health.probe == health_config::kind::http ? health_config::kind::http : health_config::kind::tcp;
  // Every address of the service is checked; it is healthy when any of them answers.
  std::vector<std::pair<host_port, bool>> addresses;  // and whether it speaks TLS
  if (cfg_.port) addresses.push_back({{"127.0.0.1", *cfg_.port}, false});
  else if (cfg_.monitor) addresses.push_back({*cfg_.monitor, false});
  else
    for (const auto& t : cfg_.targets) addresses.push_back({t.address, t.tls()});
  net::co_spawn(
      ioc_,
      [this, kind, addresses, generation, alive = alive_]() -> net::awaitable<void> {
        probe_result last{false, "no address to check"};
        for (const auto& [address, tls] : addresses) {
          last = co_await run_probe(kind, address, cfg_.health.http_path, cfg_.health.timeout, tls);
          if (!*alive) co_return;
          if (last.ok) break;
        }
        probe_in_flight_ = false;
        if (generation != probe_generation_) co_return;  // a probe of a process that is gone
        on_probe(last.ok, last.detail);
      },
      net::detached);
}

void service_runner::mark_healthy() {
  healthy_since_ = clock::now();
  probe_fail_ = 0;
  set_state(service_state::running, "Service is running", std::string(probing() ? "Healthy" : "Not checked"));
}

void service_runner::on_probe(bool ok, const std::string& detail) {
  if (stopping_ || (cfg_.managed() && !pid_)) return;
  hooks_.modify([&](instance_status& st) { st.health_detail = detail; });
  if (!retired()) board_.record_health_check(cfg_.name, ok);
  const auto& h = cfg_.health;
  if (ok) {
    ++probe_ok_;
    probe_fail_ = 0;
    if ((state_ == service_state::starting || state_ == service_state::unhealthy) && probe_ok_ >= h.rise)
      mark_healthy();
  } else {
    ++probe_fail_;
    probe_ok_ = 0;
    healthy_since_.reset();
    bool in_start_period = cfg_.managed() && state_ == service_state::starting &&
                           clock::now() - spawned_at_ < h.start_period;
    if (state_ == service_state::starting && in_start_period) {
      // Not ready yet, and still allowed to take its time.
    } else if (probe_fail_ >= h.fall && state_ != service_state::unhealthy) {
      // Said once, on the change (the card shows each check's result).
      spdlog::warn("service {}: unhealthy: health check failed ({}); traffic goes to its fallback page", cfg_.name,
                   detail);
      set_state(service_state::unhealthy, "Health check failed: " + detail, std::string("Unhealthy"));
    }
  }
  schedule_probe(probe_interval());
}

void service_runner::on_refused() {
  if (state_ != service_state::running) return;
  if (!probing()) return;  // nothing would bring it back; per-target backoff in the proxy covers it
  probe_ok_ = 0;
  healthy_since_.reset();
  set_state(service_state::unhealthy, "The service refused a connection from the proxy", std::string("Unhealthy"));
  probe_timer_.cancel();
  run_probe_now();
}

void service_runner::on_exit(int wait_status) {
  const pid_t was = pid_;
  pid_ = 0;
  ++probe_generation_;
  probe_timer_.cancel();
  std::optional<int> code, sig;
  if (WIFSIGNALED(wait_status)) sig = WTERMSIG(wait_status);
  else if (WIFEXITED(wait_status)) code = WEXITSTATUS(wait_status);
  const std::string how = describe_exit(wait_status);
  // A stop kinfra asked for is not news; an exit nobody asked for is.
  if (stopping_ && ((code && *code == 0) || (sig && *sig == cfg_.stop.signal)))
    spdlog::info("service {}: stopped (pid {})", cfg_.name, was);
  else if (stopping_) spdlog::info("service {}: stopped (pid {}: {})", cfg_.name, was, how);
  else spdlog::warn("service {}: pid {} ended unexpectedly: {}", cfg_.name, was, how);
  hooks_.modify([&](instance_status& st) {
    st.last_exit_code = code;
    st.last_signal = sig;
    st.pid.reset();
    st.started_at.reset();
  });

  if (stopping_) {
    wait_group_then_finish();
    return;
  }
  // An unexpected exit: whatever the leader left behind in its group goes too, so that a
  // restart finds its port free and nothing lingers.
  signal_group(group_, SIGKILL);
  group_ = 0;
  if (healthy_since_ && clock::now() - *healthy_since_ >= cfg_.restart.reset_after) attempts_ = 0;
  healthy_since_.reset();
  exit_info info{!want_running_, code && *code == 0};
  auto d = decide_restart(cfg_.restart, info, attempts_);
  if (d.restart) {
    set_state(service_state::error, how, std::string("Unhealthy"));
    hooks_.modify([&](instance_status& st) {
      st.health_detail = "restarting in " + format_duration(d.delay) + " (attempt " + std::to_string(attempts_ + 1) +
                         (cfg_.restart.max_attempts ? " of " + std::to_string(cfg_.restart.max_attempts) : "") + ")";
    });
    ++attempts_;
    restart_timer_.expires_after(d.delay);
    restart_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
      if (ec || !*alive || !want_running_ || pid_) return;
      ++restarts_;
      if (hooks_.restarted) hooks_.restarted("crash");
      spawn();
    });
    return;
  }
  if (d.gave_up) {
    want_running_ = false;
    set_state(service_state::error, how, std::string("Unhealthy"));
    hooks_.modify([&](instance_status& st) {
      st.health_detail = "gave up after " + std::to_string(attempts_) + " restarts; start it again to retry";
    });
    return;
  }
  want_running_ = false;
  if (code && *code == 0) set_state(service_state::stopped, how, std::string("Stopped"));
  else set_state(service_state::error, how, std::string("Unhealthy"));
}

void service_runner::stop(std::function<void()> done) {
  // A stop from outside (the dashboard, a reload removing it, shutdown) cancels a pending
  // "start again once stopped".
  ++continuation_;
  restarting_ = false;
  stop_then(std::move(done));
  // (Already stopping for a restart: requests stop waiting for it now, not when it has exited.)
  hooks_.modify([](instance_status& st) { st.expected_back = false; });
}

void service_runner::stop_then(std::function<void()> done) {
  want_running_ = false;
  waiting_for_dependencies_ = false;
  restart_timer_.cancel();
  probe_timer_.cancel();
  if (done) stop_waiters_.push_back(std::move(done));
  if (!cfg_.managed()) {
    finish_stop();
    return;
  }
  if (stopping_) return;  // already on its way; `done` runs when it has stopped
  if (!pid_) {
    set_state(service_state::stopped, "Stopped", std::string("Stopped"));
    finish_stop();
    return;
  }
  stopping_ = true;
  set_state(service_state::stopping, "Stopping...", std::string("Stopping"));
  spdlog::info("service {}: stopping (pid {}, signal {})", cfg_.name, pid_, cfg_.stop.signal);
  signal_group(group_, cfg_.stop.signal);
  stop_deadline_ = clock::now() + cfg_.stop.timeout;
  stop_timer_.expires_at(stop_deadline_);
  stop_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive || !stopping_) return;
    spdlog::warn("service {}: did not stop within {}, sending SIGKILL", cfg_.name, format_duration(cfg_.stop.timeout));
    signal_group(group_, SIGKILL);
  });
}

void service_runner::kill_now() {
  if (!group_) return;
  stop_deadline_ = clock::now();  // children left in the group are killed as soon as they are seen
  signal_group(group_, SIGKILL);
}

void service_runner::wait_group_then_finish() {
  // The leader is gone; its children in the group get until the stop deadline, then SIGKILL.
  if (group_alive(group_)) {
    if (clock::now() >= stop_deadline_) signal_group(group_, SIGKILL);
    stop_timer_.expires_after(group_poll);
    stop_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
      if (ec || !*alive || !stopping_) return;
      wait_group_then_finish();
    });
    return;
  }
  stopping_ = false;
  group_ = 0;
  stop_timer_.cancel();
  set_state(service_state::stopped, "Stopped", std::string("Stopped"));
  finish_stop();
}

void service_runner::finish_stop() {
  auto waiters = std::move(stop_waiters_);
  stop_waiters_.clear();
  for (auto& w : waiters) w();
}

void service_runner::restart(std::string by) {
  if (!cfg_.managed()) return;
  const auto ticket = ++continuation_;
  restarting_ = true;  // (requests wait for it while it stops and starts again)
  stop_then([this, alive = alive_, ticket, by = std::move(by)] {
    if (!*alive || ticket != continuation_) return;
    ++restarts_;
    if (hooks_.restarted) hooks_.restarted(by);
    start();
  });
}

bool service_runner::same_process(const service_config& a, const service_config& b) {
  return a.command == b.command && a.command_is_shell == b.command_is_shell && a.cwd == b.cwd && a.env == b.env &&
         a.port_auto == b.port_auto && (a.port_auto || a.port == b.port);
}

void service_runner::reconfigure(const service_config& next) {
  const bool was_managed = cfg_.managed();
  const bool was_wanted = want_running_ || !was_managed;
  if (was_managed != next.managed()) {
    if (!was_wanted) {
      cfg_ = next;
      return;
    }
    // Run → watch or watch → run: what runs stops under the entry it was started with, then
    // the new kind starts.
    const auto ticket = ++continuation_;
    restarting_ = true;
    stop_then([this, alive = alive_, ticket, next] {
      if (!*alive || ticket != continuation_) return;
      cfg_ = next;
      start();
    });
    return;
  }
  const bool process_changed = !same_process(cfg_, next);
  service_config applied = next;
  if (cfg_.port_auto && next.port_auto) {
    // The port it was given stays its own.
    applied.port = cfg_.port;
    applied.targets = cfg_.targets;
  }
  const bool address_changed = cfg_.probe_address() != applied.probe_address();
  cfg_ = std::move(applied);  // health, restart, stop and dependency settings apply from now on
  if (!was_wanted) return;
  if (cfg_.managed() && process_changed) {
    spdlog::info("service {}: command, cwd, env or port changed: restarting", cfg_.name);
    restart("reload");
    return;
  }
  if (address_changed || !cfg_.managed()) {
    ++probe_generation_;  // a check in flight was for the old address
    probe_in_flight_ = false;
    if (probing()) run_probe_now();
    else if (!cfg_.managed()) set_state(service_state::running, "Not checked", std::string("Not checked"));
  }
}

}  // namespace kinfra::supervisor
