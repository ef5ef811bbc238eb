#pragma once
/** @file Keep-alive clients that send requests in a loop while a test disrupts a service. */

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kt {

/**
 * Keep-alive clients sending `GET /items` (and, with `posts`, one POST with a body in three)
 * to 127.0.0.1:port until stopped; counts the answers from the service ("hello from api").
 * (A POST in flight when its process dies cannot be sent again safely: kill tests send GETs.)
 */
class steady_load {
 public:
  steady_load(std::uint16_t port, int clients, bool posts = false, std::string expected = "hello from api\n");
  ~steady_load();
  steady_load(const steady_load&) = delete;
  steady_load& operator=(const steady_load&) = delete;
  void stop();
  int ok() const { return ok_; }
  /** Everything that was not 200 from the service, one line each. */
  std::string failures() const;

 private:
  void run(std::uint16_t port, int c);
  void note(const std::string& what);

  const bool posts_;
  const std::string expected_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  mutable std::mutex mutex_;
  std::string failures_;
  std::vector<std::thread> threads_;
};

}  // namespace kt
