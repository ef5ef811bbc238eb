#pragma once
/**
 * @file A thread of its own that does one round of work again and again: when the round says,
 * sooner at wake(), and never again after stop() (which a round in progress can watch through
 * stopping(), to abandon slow network work within ~100 ms). The ACME client and the OCSP fetcher
 * each run on one.
 */

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace kinfra::app {

class background_loop {
 public:
  using clock = std::chrono::steady_clock;
  /** `round` does the work and returns when it wants to run again. */
  explicit background_loop(std::function<clock::time_point()> round) : round_(std::move(round)) {}
  ~background_loop() { stop(); }
  background_loop(const background_loop&) = delete;
  background_loop& operator=(const background_loop&) = delete;

  void start() { thread_ = std::thread([this] { run(); }); }
  /** Ends the thread after the round in progress (which sees stopping() turn true). */
  void stop() {
    stopping_.store(true);
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /** Runs the next round now (or right after the one in progress). */
  void wake() {
    {
      std::lock_guard lock(mutex_);
      woken_ = true;
    }
    cv_.notify_all();
  }
  const std::atomic<bool>& stopping() const { return stopping_; }

 private:
  void run() {
    for (;;) {
      auto next = round_();
      std::unique_lock lock(mutex_);
      cv_.wait_until(lock, next, [this] { return stop_ || woken_; });
      if (stop_) return;
      woken_ = false;
    }
  }

  std::function<clock::time_point()> round_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace kinfra::app
