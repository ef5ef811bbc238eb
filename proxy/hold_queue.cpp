#include "proxy/hold_queue.hpp"

#include <poll.h>

#include <chrono>
#include <vector>

namespace kinfra::proxy {
namespace {

constexpr auto tick_interval = std::chrono::milliseconds(10);
constexpr unsigned client_check_every = 10;  ///< ticks: the clients are looked at every 100 ms

}  // namespace

void hold_queue::add(waiter& w) {
  waiters_.push_back(w);
  if (!ticking_) {
    ticking_ = true;
    tick();
  }
}

void hold_queue::end_all(waiter::outcome how) {
  while (!waiters_.empty()) {
    waiter& w = waiters_.front();
    waiters_.pop_front();
    w.result = how;
    w.timer->cancel();
  }
}

void hold_queue::tick() {
  ticker_.expires_after(tick_interval);
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) {
      ticking_ = false;
      return;
    }
    const bool check_clients = ++ticks_ % client_check_every == 0;
    std::vector<pollfd> fds;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      waiter& w = *it;
      const bool accepting = w.flags->accepting.load(std::memory_order_acquire);
      if (accepting && w.flags->epoch.load(std::memory_order_acquire) != w.epoch) {
        it = waiters_.erase(it);
        w.result = waiter::outcome::ready;
        w.timer->cancel();
        continue;
      }
      if (!accepting && !w.flags->holdable.load(std::memory_order_acquire)) {
        // Stopped on purpose, given up on, in maintenance, removed: the page now, not at the timeout.
        it = waiters_.erase(it);
        w.timer->cancel();
        continue;
      }
      if (check_clients) fds.push_back({w.fd, POLLRDHUP, 0});
      ++it;
    }
    if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) > 0) {
      // (The waiters are in the same order as fds: none was removed since.)
      std::size_t i = 0;
      for (auto it = waiters_.begin(); it != waiters_.end(); ++i) {
        waiter& w = *it;
        if (i < fds.size() && (fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
          it = waiters_.erase(it);
          w.result = waiter::outcome::gone;
          w.timer->cancel();
          continue;
        }
        ++it;
      }
    }
    if (waiters_.empty()) {
      ticking_ = false;
      return;
    }
    tick();
  });
}

}  // namespace kinfra::proxy
