// client_session::hold: a request waits for its service to accept traffic again.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/client_session.hpp"

namespace kinfra::proxy {
namespace {

/** One place in a service's queue for as long as it lives (all workers count together). */
class queue_place {
 public:
  queue_place(traffic_flags& flags, unsigned max) : flags_(flags) {
    taken_ = flags_.held.fetch_add(1, std::memory_order_acq_rel) < static_cast<int>(max);
    if (!taken_) flags_.held.fetch_sub(1, std::memory_order_acq_rel);
  }
  ~queue_place() {
    if (taken_) flags_.held.fetch_sub(1, std::memory_order_acq_rel);
  }
  queue_place(const queue_place&) = delete;
  queue_place& operator=(const queue_place&) = delete;
  bool taken() const { return taken_; }

 private:
  traffic_flags& flags_;
  bool taken_ = false;
};

/** How long a connection that closed without an answer gets to show that its process died. */
constexpr auto death_notice = std::chrono::milliseconds(200);

}  // namespace

net::awaitable<hold_queue::waiter::outcome> client_session::hold(const service_state& svc, exchange& x,
                                                                 std::optional<std::uint32_t> after_epoch) {
  using result = hold_queue::waiter::outcome;
  traffic_flags& flags = *svc.traffic;
  const std::uint32_t epoch = after_epoch ? *after_epoch : flags.epoch.load(std::memory_order_acquire);
  if (!after_epoch && flags.accepting.load(std::memory_order_acquire)) co_return result::ready;
  // One hold time per request, however many waits it takes.
  const auto now = std::chrono::steady_clock::now();
  if (!x.hold_until) x.hold_until = now + svc.hold.timeout;
  if (*x.hold_until <= now || w_.draining()) co_return result::waiting;
  queue_place place(flags, svc.hold.max_requests);
  if (!place.taken()) co_return result::waiting;  // full: the page at once
  disarm();  // (the hold has its own timeout; what comes next arms its own)
  net::steady_timer timer(co_await net::this_coro::executor);
  timer.expires_at(*x.hold_until);
  hold_queue::waiter w;
  w.flags = &flags;
  // Not after a failure: any accepting will do (the epoch it had is one behind).
  w.epoch = after_epoch ? epoch : epoch - 1;
  w.fd = client_.native_fd();  // (-1 for an HTTP/2 stream: a reset ends its hold through close_now)
  w.timer = &timer;
  w_.held().add(w);
  hold_timer_ = &timer;
  co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  hold_timer_ = nullptr;
  w.unlink();
  if (closed_) co_return result::gone;  // (closed while it waited: an HTTP/2 stream reset, a stop)
  // (A last look: the service may have come back in the moment the timeout fired.)
  if (w.result == result::waiting && !w_.draining() && flags.accepting.load(std::memory_order_acquire) &&
      flags.epoch.load(std::memory_order_acquire) != w.epoch)
    co_return result::ready;
  co_return w.result;
}

net::awaitable<hold_queue::waiter::outcome> client_session::hold_after_failure(exchange& x, bool refused) {
  using result = hold_queue::waiter::outcome;
  const auto& svc = gen_->services[x.target_route->service_index];
  // (Read before the supervisor is told: its verdict may come at once.)
  const std::uint32_t epoch = svc.traffic ? svc.traffic->epoch.load(std::memory_order_acquire) : 0;
  // (`port: auto` instances were reported one by one, as each refused.)
  if (status_board* board = w_.board(); board && refused && !svc.dynamic) board->report_refused(x.target_route->service);
  if (x.held_after_failure || !svc.hold.enabled || !svc.traffic || !svc.comes_back || w_.draining())
    co_return result::waiting;
  x.held_after_failure = true;
  if (!refused) {
    // Closed without an answer: a process that died (kill -9) is noticed by the supervisor within
    // moments; one that is alive closed it on purpose, and gets no second request.
    net::steady_timer pause(co_await net::this_coro::executor);
    pause.expires_after(death_notice);
    co_await pause.async_wait(net::as_tuple(net::use_awaitable));
    if (svc.traffic->accepting.load(std::memory_order_acquire) &&
        svc.traffic->epoch.load(std::memory_order_acquire) == epoch)
      co_return result::waiting;
  }
  co_return co_await hold(svc, x, epoch);
}

}  // namespace kinfra::proxy
