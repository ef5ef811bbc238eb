// client_session::hold: a request waits for its service to accept traffic again.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/client_session.hpp"

namespace kinfra::proxy {

net::awaitable<hold_queue::waiter::outcome> client_session::hold(const service_state& svc, bool after_refusal) {
  using result = hold_queue::waiter::outcome;
  traffic_flags& flags = *svc.traffic;
  // Not accepting: ready once it accepts. After a refused connection (it still counted as
  // accepting): once it accepts again, after the supervisor had a look.
  const std::uint32_t epoch = flags.epoch.load(std::memory_order_acquire);
  if (!after_refusal && flags.accepting.load(std::memory_order_acquire)) co_return result::ready;
  // At most max_requests wait at once, over every worker: beyond, the page at once.
  if (flags.held.fetch_add(1, std::memory_order_acq_rel) >= static_cast<int>(svc.hold.max_requests)) {
    flags.held.fetch_sub(1, std::memory_order_acq_rel);
    co_return result::waiting;
  }
  disarm();  // (the hold has its own timeout; what comes next arms its own)
  net::steady_timer timer(co_await net::this_coro::executor);
  timer.expires_after(svc.hold.timeout);
  hold_queue::waiter w;
  w.flags = &flags;
  w.epoch = after_refusal ? epoch : epoch - 1;  // (not after a refusal: any accepting will do)
  w.fd = client_.socket().native_handle();
  w.timer = &timer;
  w_.held().add(w);
  co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  w.unlink();
  flags.held.fetch_sub(1, std::memory_order_acq_rel);
  // (A last look: the service may have come back in the moment the timeout fired.)
  if (w.result == result::waiting && flags.accepting.load(std::memory_order_acquire) &&
      (!after_refusal || flags.epoch.load(std::memory_order_acquire) != epoch))
    co_return result::ready;
  co_return w.result;
}

}  // namespace kinfra::proxy
