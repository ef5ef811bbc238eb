#pragma once
/**
 * @file The HTTP-01 answers the ACME client has published: token → key authorization. The ACME
 * client (app/) writes; the proxy reads on its workers for /.well-known/acme-challenge/TOKEN, on
 * plain listeners before routing and before any redirect to HTTPS. Nearly always empty: a reader
 * pays one relaxed atomic load then.
 */

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace kinfra {

class acme_challenges {
 public:
  /** The path prefix the CA fetches (RFC 8555 §8.3). */
  static constexpr std::string_view path_prefix = "/.well-known/acme-challenge/";

  void put(const std::string& token, const std::string& key_authorization) {
    std::lock_guard lock(mutex_);
    answers_[token] = key_authorization;
    count_.store(answers_.size(), std::memory_order_release);
  }
  void remove(const std::string& token) {
    std::lock_guard lock(mutex_);
    answers_.erase(token);
    count_.store(answers_.size(), std::memory_order_release);
  }
  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }
  /** The key authorization for `token`, if one is published. */
  std::optional<std::string> find(std::string_view token) const {
    std::lock_guard lock(mutex_);
    auto it = answers_.find(token);
    if (it == answers_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> answers_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace kinfra
