#include "supervisor/service_group.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>


namespace kinfra::supervisor {
namespace {

using namespace std::chrono_literals;

// A new process that does not check its health gets this long to show it stays up.
constexpr auto unchecked_grace = 1s;

std::atomic<std::uint64_t> next_uid{1};

/** The order in which a state stands for a service when none of its instances runs. */
int weight(service_state s) {
  switch (s) {
    case service_state::running: return 0;
    case service_state::starting: return 1;
    case service_state::unhealthy: return 2;
    case service_state::stopping: return 3;
    case service_state::error: return 4;
    case service_state::stopped: return 5;
  }
  return 6;
}

}  // namespace

service_group::service_group(net::io_context& ioc, const service_config& cfg, status_board& board, runner_hooks hooks)
    : ioc_(ioc), cfg_(cfg), board_(board), hooks_(std::move(hooks)), roll_timer_(ioc) {
  rebuild_members();
}

service_group::~service_group() { *alive_ = false; }

service_config service_group::instance_config(const service_config& base, unsigned index) const {
  service_config c = base;
  if (c.managed() && (c.port_auto || c.instances > 1) && !c.env.count("INSTANCE"))
    c.env["INSTANCE"] = std::to_string(index);
  return c;
}

void service_group::refresh(member& m) {
  auto wanted = instance_config(cfg_, m.index);
  if (!service_runner::same_process(m.runner->config(), wanted)) m.runner->reconfigure(wanted);
}

void service_group::rebuild_members() {
  for (auto& m : members_) {
    restarts_before_ += m.runner->restarts();
    if (m.runner->pid()) m.runner->kill_now();  // (a reshape stopped them all; nothing is expected here)
  }
  drains_.clear();
  members_.clear();
  const unsigned n = cfg_.managed() ? std::max(1u, cfg_.instances) : 1u;
  for (unsigned i = 0; i < n; ++i) add_member(i, instance_status::role::serving, instance_config(cfg_, i));
  board_.modify(cfg_.name, [&](service_status& st) {
    st.instances.clear();
    aggregate(st);
  });
}

service_group::member& service_group::add_member(unsigned index, instance_status::role part,
                                                 const service_config& cfg) {
  member m;
  m.uid = next_uid.fetch_add(1);
  m.index = index;
  m.part = part;
  runner_hooks h;
  h.dependency_met = hooks_.dependency_met;
  h.spawned = hooks_.spawned;
  h.retired = retired_;
  h.restarted = [this](const std::string& by) { restarted_event(by); };
  const std::uint64_t uid = m.uid;
  // (Posted: the group may act on the change, and must not do so inside the runner's call.)
  h.state_changed = [this, uid, alive = alive_] {
    net::post(ioc_, [this, uid, alive] {
      if (*alive) member_changed(uid);
    });
  };
  auto in_flight = m.in_flight;
  h.modify = [this, uid, index, part, in_flight](const std::function<void(instance_status&)>& fn) {
    if (*retired_) return;  // (a service of the same name may be back: this is not its process)
    board_.modify(cfg_.name, [&](service_status& st) {
      auto it = std::find_if(st.instances.begin(), st.instances.end(),
                             [&](const instance_status& i) { return i.uid == uid; });
      if (it == st.instances.end()) {
        instance_status fresh;
        fresh.uid = uid;
        fresh.index = index;
        fresh.part = part;
        fresh.in_flight = in_flight;
        // By instance, then age: the dashboard lists them so.
        it = st.instances.insert(std::upper_bound(st.instances.begin(), st.instances.end(), fresh,
                                                  [](const instance_status& a, const instance_status& b) {
                                                    return a.index != b.index ? a.index < b.index : a.uid < b.uid;
                                                  }),
                                 std::move(fresh));
      }
      const auto state = it->state;
      const auto message = it->status_message;
      const auto health = it->health;
      fn(*it);
      // A check's detail alone leaves what a service pushed (update_service_status) as it is.
      aggregate(st, it->state != state || it->status_message != message || it->health != health);
    });
  };
  if (cfg_.instances > 1) h.log_tag = "[" + std::to_string(index) + "] ";
  m.runner = std::make_unique<service_runner>(ioc_, cfg, board_, std::move(h));
  members_.push_back(std::move(m));
  return members_.back();
}

service_group::member* service_group::find(std::uint64_t uid) {
  for (auto& m : members_)
    if (m.uid == uid) return &m;
  return nullptr;
}

service_group::member* service_group::serving(unsigned index) {
  for (auto& m : members_)
    if (m.index == index && m.part == instance_status::role::serving) return &m;
  return nullptr;
}

void service_group::remove_member(std::uint64_t uid) {
  auto it = std::find_if(members_.begin(), members_.end(), [&](const member& m) { return m.uid == uid; });
  if (it == members_.end()) return;
  if (it->runner->pid()) it->runner->kill_now();  // (never expected: nothing runs unsupervised)
  restarts_before_ += it->runner->restarts();
  members_.erase(it);
  if (*retired_) return;
  board_.modify(cfg_.name, [&](service_status& st) {
    std::erase_if(st.instances, [&](const instance_status& i) { return i.uid == uid; });
    aggregate(st);
  });
}

void service_group::aggregate(service_status& st, bool lifecycle) const {
  const instance_status* rep = nullptr;
  unsigned running = 0, serving = 0, restarts = restarts_before_;
  bool expected_back = false;
  for (const auto& i : st.instances) {
    restarts += i.restarts;
    if (i.part != instance_status::role::serving) continue;
    ++serving;
    if (i.state == service_state::running) ++running;
    expected_back = expected_back || i.expected_back;
    if (!rep || weight(i.state) < weight(rep->state)) rep = &i;
  }
  st.restarts = restarts;
  if (!rep) return;
  st.health_detail = rep->health_detail;
  st.pid = rep->pid;
  st.started_at = rep->started_at;
  if (rep->port) st.port = rep->port;
  st.last_exit_code = rep->last_exit_code;
  st.last_signal = rep->last_signal;
  st.expected_back = expected_back;
  if (!lifecycle) return;
  st.state = rep->state;
  st.status_message = rep->status_message;
  st.health = rep->health;
  const unsigned n = std::max(1u, cfg_.instances);
  if (n > 1 && running > 0)
    st.status_message = running == n ? "Service is running (" + std::to_string(n) + " instances)"
                                     : std::to_string(running) + " of " + std::to_string(n) + " instances running";
  if (phase_ != rollout_phase::idle && running > 0)
    st.status_message = "Restarting (start-first): instance " + std::to_string(roll_index_ + 1) + " of " +
                        std::to_string(n);
}

service_state service_group::state() const {
  const service_runner* rep = nullptr;
  for (const auto& m : members_)
    if (m.part == instance_status::role::serving && (!rep || weight(m.runner->state()) < weight(rep->state())))
      rep = m.runner.get();
  return rep ? rep->state() : service_state::stopped;
}

bool service_group::has_process() const {
  return std::any_of(members_.begin(), members_.end(), [](const member& m) { return m.runner->pid() != 0; });
}

void service_group::start() {
  if (reshape_to_) {
    reshape_start_ = true;  // once the reshape has stopped everything
    return;
  }
  for (auto& m : members_) {
    if (m.part != instance_status::role::serving) continue;
    if (!m.runner->wanted()) refresh(m);  // (a stopped one starts with what routes.yaml says now)
    m.runner->start();
  }
}

void service_group::stop(std::function<void()> done) {
  if (reshape_to_) reshape_start_ = false;
  if (phase_ != rollout_phase::idle) {
    roll_timer_.cancel();
    phase_ = rollout_phase::idle;
    roll_again_ = false;
    report(restart_report::result::failed, "restart stopped: the service was stopped");
  }
  drains_.clear();  // (their members stop below, with everything else)
  if (members_.empty()) {
    if (done) done();
    return;
  }
  auto remaining = std::make_shared<std::size_t>(members_.size());
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  auto one_stopped = [remaining, shared_done] {
    if (--*remaining == 0 && *shared_done) (*shared_done)();
  };
  // Those that were only there for a restart go once stopped; the N instances stay (stopped).
  std::vector<std::uint64_t> extra;
  for (auto& m : members_)
    if (m.part != instance_status::role::serving) extra.push_back(m.uid);
  for (auto& m : members_) m.runner->stop(one_stopped);
  for (auto uid : extra) {
    if (auto* m = find(uid)) {
      m->runner->stop_then([this, uid, alive = alive_] {
        net::post(ioc_, [this, uid, alive] {
          if (*alive) remove_member(uid);
        });
      });
    }
  }
}

void service_group::kill_now() {
  for (auto& m : members_) m.runner->kill_now();
}

void service_group::dependencies_changed() {
  for (auto& m : members_)
    if (m.part != instance_status::role::draining) m.runner->dependencies_changed();
}

bool service_group::on_exit(pid_t pid, int wait_status) {
  for (auto& m : members_) {
    if (m.runner->pid() == pid) {
      m.runner->on_exit(wait_status);
      return true;
    }
  }
  return false;
}

void service_group::on_refused(std::uint16_t port) {
  for (auto& m : members_)
    if (m.part == instance_status::role::serving && (port == 0 || m.runner->config().port == port))
      m.runner->on_refused();
}

void service_group::member_changed(std::uint64_t uid) {
  if (hooks_.state_changed) hooks_.state_changed();
  if (uid != new_uid_ || phase_ == rollout_phase::idle) return;
  member* m = find(uid);
  if (!m) return;
  if (phase_ == rollout_phase::draining_old) {
    // It took over, then failed while the previous one was still there: that one serves again.
    const auto st = m->runner->state();
    if (st == service_state::error || st == service_state::stopped || st == service_state::unhealthy)
      take_back(st == service_state::unhealthy ? "failed its health check right after it took over"
                                               : "exited right after it took over");
    return;
  }
  switch (m->runner->state()) {
    case service_state::running:
      // Without checks, "running" comes at once: it must also stay up for a moment.
      if (cfg_.health.probe == health_config::kind::none) {
        roll_timer_.expires_after(unchecked_grace);
        roll_timer_.async_wait([this, uid, alive = alive_](const boost::system::error_code& ec) {
          if (ec || !*alive || phase_ != rollout_phase::starting_new || uid != new_uid_) return;
          if (auto* n = find(uid); n && n->runner->state() == service_state::running) switch_over();
        });
        return;
      }
      switch_over();
      return;
    case service_state::error:
    case service_state::stopped: {
      auto snap = board_.snapshot();
      std::string how = "it exited";
      if (const auto* st = snap->find(cfg_.name))
        for (const auto& i : st->instances)
          if (i.uid == uid && !i.status_message.empty()) how = "it exited (" + i.status_message + ")";
      fail_rollout(how);
      return;
    }
    case service_state::unhealthy:
      fail_rollout("it failed its health check");
      return;
    default:
      return;
  }
}

}  // namespace kinfra::supervisor
