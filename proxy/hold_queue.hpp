#pragma once
/**
 * @file Requests held on one worker: each waits (a coroutine parked on its own timer, no thread)
 * for its service to accept traffic again. One ticker per worker, running only while something
 * waits, looks at the services' flags every 10 ms — ready once it accepts; over at once once it is
 * no longer expected back (stopped on purpose, given up on) — and at the clients every 100 ms (a
 * client that hung up, or half-closed, is dropped); the waiter's timer is its hold timeout.
 */

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include "common/status_board.hpp"

namespace kinfra::proxy {

class hold_queue {
 public:
  /** One held request; lives in its session's coroutine frame (unlinks itself when it goes). */
  struct waiter : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    enum class outcome { waiting, ready, gone };
    const traffic_flags* flags = nullptr;
    std::uint32_t epoch = 0;                       ///< ready once accepting with another epoch
    int fd = -1;                                   ///< the client's socket, to notice it hang up
    boost::asio::steady_timer* timer = nullptr;   ///< cancelled when the wait ends early
    outcome result = outcome::waiting;
  };

  explicit hold_queue(boost::asio::io_context& ioc) : ticker_(ioc) {}

  /** Starts watching `w` (the worker's thread). */
  void add(waiter& w);
  /**
   * Ends every wait now with `how`: `gone` when the worker stops (the connections close),
   * `waiting` when it drains (each gets the fallback page, then the connection closes).
   */
  void end_all(waiter::outcome how);

 private:
  void tick();

  boost::intrusive::list<waiter, boost::intrusive::constant_time_size<false>> waiters_;
  boost::asio::steady_timer ticker_;
  bool ticking_ = false;
  unsigned ticks_ = 0;
};

}  // namespace kinfra::proxy
