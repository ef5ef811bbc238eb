// service_group: restarts and reloads — start-first for `port: auto`, one instance at a time.
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/units.hpp"
#include "supervisor/service_group.hpp"

namespace kinfra::supervisor {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr auto drain_poll = 50ms;

/** `next`'s settings with the process `running` was started with (command, cwd, env, port). */
service_config with_process_of(service_config next, const service_config& running) {
  next.command = running.command;
  next.command_is_shell = running.command_is_shell;
  next.cwd = running.cwd;
  next.env = running.env;
  next.port = running.port;
  next.port_auto = running.port_auto;
  next.targets = running.targets;
  return next;
}

std::string describe_pid(const service_runner& r) {
  std::string s = r.pid() ? "pid " + std::to_string(r.pid()) : "no process";
  if (r.config().port) s += ", port " + std::to_string(*r.config().port);
  return s;
}

}  // namespace

void service_group::event(log_level level, const std::string& message) {
  if (level == log_level::error) spdlog::error("service {}: {}", cfg_.name, message);
  else if (level == log_level::warn) spdlog::warn("service {}: {}", cfg_.name, message);
  else spdlog::info("service {}: {}", cfg_.name, message);
  if (*retired_) return;
  board_.append_log(cfg_.name, {std::chrono::system_clock::now(), {}, level, "[kinfra] " + message, 0});
}

void service_group::report(restart_report::result r, std::string message, std::vector<std::string> lines) {
  if (*retired_) return;
  board_.modify(cfg_.name, [&](service_status& st) {
    st.last_restart = restart_report{r, rollout_id_, std::move(message), std::move(lines), std::chrono::system_clock::now()};
    aggregate(st);
  });
}

void service_group::restarted_event(const std::string& by) {
  if (*retired_) return;
  unsigned total = restarts_before_;
  for (const auto& m : members_) total += m.runner->restarts();
  kinfra::event e;
  e.service = cfg_.name;
  e.kind = event_kind::restarted;
  e.by = by;
  const bool crash = by == "crash";
  e.level = crash ? event_level::warn : event_level::info;
  e.message = std::string(crash             ? "restarted after a failure"
                          : by == "reload" ? "restarted with its new entry in routes.yaml"
                                           : "restarted on request (" + by + ")") +
              " (restart " + std::to_string(total) + ")";
  board_.events().record(std::move(e));
}

void service_group::restart(std::string by) {
  if (!cfg_.managed()) return;
  if (reshape_to_) {
    reshape_start_ = true;  // it starts anew once the reshape has stopped everything
    reshape_by_ = std::move(by);
    return;
  }
  if (phase_ != rollout_phase::idle) {
    roll_again_ = true;  // once this one is done (it may be running an older entry)
    again_by_ = std::move(by);
    return;
  }
  restart_by_ = by;
  const bool any_running = std::any_of(members_.begin(), members_.end(), [](const member& m) {
    return m.part == instance_status::role::serving && m.runner->state() == service_state::running;
  });
  if (!cfg_.dynamic_port() || !any_running) {
    // Stop-first: requests wait for it while it comes back (hold).
    for (auto& m : members_) {
      if (m.part != instance_status::role::serving) continue;
      refresh(m);
      m.runner->restart(by);
    }
    return;
  }
  roll_index_ = 0;
  ++rollout_id_;
  rollout_generation_ = config_generation_;
  event(log_level::info, "restart started (start-first, " + std::to_string(std::max(1u, cfg_.instances)) +
                             (cfg_.instances > 1 ? " instances, one at a time)" : " instance)"));
  report(restart_report::result::in_progress, "restart in progress");
  roll_one();
}

void service_group::roll_one() {
  const unsigned n = std::max(1u, cfg_.instances);
  if (roll_index_ >= n) return finish_rollout();
  member* old = serving(roll_index_);
  if (!old || old->runner->state() != service_state::running) {
    // Not serving now (crashed, backing off): nothing to keep, it restarts in place.
    if (old) {
      refresh(*old);
      old->runner->restart(restart_by_);
    }
    ++roll_index_;
    return roll_one();
  }
  old_uid_ = old->uid;
  service_config c = instance_config(cfg_, roll_index_);
  c.restart.when = restart_config::policy::never;  // a new process that fails is not tried again
  member& fresh = add_member(roll_index_, instance_status::role::starting, c);
  new_uid_ = fresh.uid;
  phase_ = rollout_phase::starting_new;
  fresh.runner->start();
  event(log_level::info, "restart: new process of instance " + std::to_string(roll_index_) + " started (" +
                             describe_pid(*fresh.runner) + "), waiting until it is healthy");
  // It gets its start period and the failed checks that would make it unhealthy, then it has failed.
  const auto& h = cfg_.health;
  auto limit = h.probe == health_config::kind::none ? 5s : h.start_period + h.interval * h.fall + h.timeout;
  roll_timer_.expires_after(limit);
  roll_timer_.async_wait([this, uid = new_uid_, limit, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive || phase_ != rollout_phase::starting_new || uid != new_uid_) return;
    fail_rollout("it did not become healthy within " + format_duration(limit));
  });
  // (It may have failed at once: no command, no port.)
  if (fresh.runner->state() == service_state::error) member_changed(new_uid_);
}

void service_group::publish_parts() {
  if (*retired_) return;
  board_.modify(cfg_.name, [&](service_status& st) {
    for (auto& i : st.instances)
      if (const member* m = find(i.uid)) i.part = m->part;
    aggregate(st);
  });
}

void service_group::switch_over() {
  member* fresh = find(new_uid_);
  member* old = find(old_uid_);
  if (!fresh) return fail_rollout("is gone");
  roll_timer_.cancel();
  fresh->part = instance_status::role::serving;
  // The service's settings (its restart policy…) from now on, with the process it runs.
  fresh->runner->reconfigure(with_process_of(instance_config(cfg_, fresh->index), fresh->runner->config()));
  if (old) {
    old->part = instance_status::role::draining;
    service_config c = old->runner->config();
    c.restart.when = restart_config::policy::never;  // not brought back if it ends now
    old->runner->reconfigure(c);
    // Crashed meanwhile (a restart pending): nothing to drain, and it must not come back.
    if (old->runner->state() != service_state::running) old->runner->stop();
  }
  ++restarts_before_;
  restarted_event(restart_by_);
  publish_parts();  // one change: the proxy sees the new one in and the old one out at once
  event(log_level::info, "restart: switched to the new process of instance " + std::to_string(fresh->index) + " (" +
                             describe_pid(*fresh->runner) + ")" +
                             (old ? "; the previous one (" + describe_pid(*old->runner) + ") finishes its requests" : ""));
  if (!old) {
    ++roll_index_;
    phase_ = rollout_phase::idle;
    return roll_one();
  }
  phase_ = rollout_phase::draining_old;
  drain_then_stop(old_uid_, [this, uid = old_uid_](const std::string& what) {
    if (phase_ != rollout_phase::draining_old || uid != old_uid_) return;
    event(log_level::info, "restart: the previous process (" + what + ") stopped");
    ++roll_index_;
    phase_ = rollout_phase::idle;
    roll_one();
  });
}

void service_group::drain_then_stop(std::uint64_t uid, std::function<void(const std::string&)> after) {
  auto timer = std::make_shared<net::steady_timer>(ioc_);
  drains_[uid] = timer;
  const auto deadline = clock::now() + cfg_.stop.drain;
  // (A first look after a moment: a worker that picked it just before the switch counts it by then.)
  timer->expires_after(drain_poll);
  timer->async_wait([this, uid, deadline, after, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) poll_drain(uid, deadline, after);
  });
}

void service_group::poll_drain(std::uint64_t uid, clock::time_point deadline,
                               std::function<void(const std::string&)> after) {
  member* m = find(uid);
  auto it = drains_.find(uid);
  if (!m || it == drains_.end()) return;  // stopped meanwhile, with the rest of the service
  const int left = m->in_flight->load(std::memory_order_acquire);
  const bool up = m->runner->pid() != 0;
  if (left > 0 && up && clock::now() < deadline) {
    it->second->expires_after(drain_poll);
    it->second->async_wait([this, uid, deadline, after, alive = alive_](const boost::system::error_code& ec) {
      if (!ec && *alive) poll_drain(uid, deadline, after);
    });
    return;
  }
  if (left > 0 && up)
    event(log_level::warn, std::to_string(left) + " request(s) or tunnel(s) still open on " + describe_pid(*m->runner) +
                               " after stop.drain (" + format_duration(cfg_.stop.drain) + "); stopping it anyway");
  drains_.erase(it);
  const std::string what = describe_pid(*m->runner);
  // (stop(), not stop_then(): a restart it was in the middle of must not bring it back.)
  m->runner->stop([this, uid, what, after, alive = alive_] {
    net::post(ioc_, [this, uid, what, after, alive] {
      if (!*alive) return;
      remove_member(uid);
      if (after) after(what);
    });
  });
}

void service_group::take_back(const std::string& reason) {
  member* old = find(old_uid_);
  member* fresh = find(new_uid_);
  if (!old || !drains_.count(old_uid_) || old->runner->state() != service_state::running)
    return;  // nothing to go back to: its own restart policy brings the new one back
  drains_.erase(old_uid_);
  old->part = instance_status::role::serving;
  old->runner->reconfigure(with_process_of(instance_config(cfg_, old->index), old->runner->config()));
  if (fresh) fresh->part = instance_status::role::draining;
  publish_parts();
  fail_rollout(reason);
}

void service_group::fail_rollout(const std::string& reason) {
  roll_timer_.cancel();
  member* fresh = find(new_uid_);
  std::vector<std::string> lines;
  if (fresh) lines.assign(fresh->runner->tail().begin(), fresh->runner->tail().end());
  const std::string message = "restart failed, previous instance kept: the new process " + reason;
  event(log_level::error, message);
  for (const auto& l : lines) spdlog::error("service {}:   | {}", cfg_.name, l);
  phase_ = rollout_phase::idle;
  // A reload that changed the process meanwhile still has to be tried; another restart does not.
  const bool newer = config_generation_ != rollout_generation_;
  roll_again_ = false;
  report(restart_report::result::failed, message, std::move(lines));
  if (fresh) {
    fresh->runner->stop([this, uid = new_uid_, alive = alive_] {
      net::post(ioc_, [this, uid, alive] {
        if (*alive) remove_member(uid);
      });
    });
  }
  new_uid_ = 0;
  if (scale_pending_) {
    scale_pending_ = false;
    scale(std::max(1u, cfg_.instances));
  }
  if (newer) restart("reload");
}

void service_group::finish_rollout() {
  phase_ = rollout_phase::idle;
  new_uid_ = 0;
  event(log_level::info, "restart done");
  report(restart_report::result::done, "restart done");
  if (scale_pending_) {
    scale_pending_ = false;
    scale(std::max(1u, cfg_.instances));
  }
  if (roll_again_) {
    roll_again_ = false;
    restart(std::move(again_by_));
  }
}

void service_group::scale(unsigned to) {
  const bool wanted = std::any_of(members_.begin(), members_.end(), [](const member& m) {
    return m.part == instance_status::role::serving && m.runner->wanted();
  });
  for (unsigned i = 0; i < to; ++i) {
    if (serving(i)) continue;
    member& m = add_member(i, instance_status::role::serving, instance_config(cfg_, i));
    if (wanted) m.runner->start();
  }
  // Instances beyond the new count leave the traffic at once, finish what they have, then stop.
  std::vector<std::uint64_t> gone;
  for (auto& m : members_)
    if (m.index >= to && m.part == instance_status::role::serving) gone.push_back(m.uid);
  for (auto uid : gone) {
    member* m = find(uid);
    m->part = instance_status::role::draining;
    service_config c = m->runner->config();
    c.restart.when = restart_config::policy::never;
    m->runner->reconfigure(c);
  }
  publish_parts();
  for (auto uid : gone) drain_then_stop(uid, {});
  event(log_level::info, "scaled to " + std::to_string(to) + (to == 1 ? " instance" : " instances"));
}

void service_group::begin_reshape(const service_config& next) {
  const bool wanted = !cfg_.managed() || std::any_of(members_.begin(), members_.end(), [](const member& m) {
    return m.runner->wanted() || m.runner->pid() != 0;
  });
  stop([this, alive = alive_] {
    net::post(ioc_, [this, alive] {
      if (*alive) finish_reshape();
    });
  });
  // (After stop(), which would count as "stop it" otherwise; its completion is posted.)
  reshape_to_ = next;
  reshape_start_ = wanted;
  // A process that ran (or was wanted) and runs again with the new entry: a restart, by the reload.
  reshape_restart_ = cfg_.managed() && wanted;
  reshape_by_ = "reload";
}

void service_group::finish_reshape() {
  if (!reshape_to_) return;
  cfg_ = *reshape_to_;
  reshape_to_.reset();
  rebuild_members();
  if (reshape_start_) {
    if (reshape_restart_ && cfg_.managed()) {
      ++restarts_before_;
      restarted_event(reshape_by_);  // (before the new processes' own events)
    }
    start();
  }
}

void service_group::reconfigure(const service_config& next) {
  if (reshape_to_) {
    reshape_to_ = next;  // the latest entry is the one it becomes
    return;
  }
  const bool dynamic = next.dynamic_port() && cfg_.dynamic_port();
  const bool process_changed = !service_runner::same_process(cfg_, next);
  const bool count_changed = next.instances != cfg_.instances;
  if (!dynamic && (count_changed || next.dynamic_port() != cfg_.dynamic_port() || next.managed() != cfg_.managed()))
    return begin_reshape(next);  // another shape: all of it stops, then starts anew
  cfg_ = next;
  if (!dynamic) {
    for (auto& m : members_)
      if (m.part == instance_status::role::serving) m.runner->reconfigure(instance_config(cfg_, m.index));
    return;
  }
  // `port: auto`: a running process is only ever replaced start-first. The new settings apply to
  // the processes now, with the process each runs.
  for (auto& m : members_)
    if (m.part == instance_status::role::serving && m.index < cfg_.instances)
      m.runner->reconfigure(with_process_of(instance_config(cfg_, m.index), m.runner->config()));
  const bool wanted = phase_ != rollout_phase::idle || std::any_of(members_.begin(), members_.end(), [](const member& m) {
    return m.part == instance_status::role::serving && m.runner->wanted();
  });
  if (process_changed && !wanted) {
    for (auto& m : members_)
      if (m.part == instance_status::role::serving) refresh(m);  // (stopped: it starts with it later)
  } else if (process_changed) {
    ++config_generation_;
    spdlog::info("service {}: command, cwd or env changed: restarting start-first", cfg_.name);
    kinfra::event e;
    e.service = cfg_.name;
    e.kind = event_kind::action;
    e.message = "restart: command, cwd or env changed in routes.yaml";
    e.by = "reload";
    board_.events().record(std::move(e));
    restart("reload");
  }
  if (count_changed) {
    if (phase_ == rollout_phase::idle) scale(std::max(1u, cfg_.instances));
    else scale_pending_ = true;  // (the restart under way is over first)
  }
}

}  // namespace kinfra::supervisor
