#pragma once
/**
 * @file The challenge answers the ACME client has published. HTTP-01: token → key authorization,
 * read by the proxy for /.well-known/acme-challenge/TOKEN on plain listeners, before routing and
 * before any redirect to HTTPS. TLS-ALPN-01 (RFC 8737): name → a TLS context holding the
 * challenge certificate, chosen by the TLS listener for a ClientHello that offers `acme-tls/1`.
 * The ACME client (app/) writes; proxy workers read. Nearly always empty: a reader pays one
 * atomic load then.
 */

#include <atomic>
#include <memory>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

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

  /** TLS-ALPN-01: the context with the challenge certificate for `name` (lower case). */
  void put_certificate(const std::string& name, std::shared_ptr<ssl_ctx_st> context) {
    std::lock_guard lock(mutex_);
    certificates_[name] = std::move(context);
    certificate_count_.store(certificates_.size(), std::memory_order_release);
  }
  void remove_certificate(const std::string& name) {
    std::lock_guard lock(mutex_);
    certificates_.erase(name);
    certificate_count_.store(certificates_.size(), std::memory_order_release);
  }
  /** The challenge context for `name`, or null (at once when none is published). */
  std::shared_ptr<ssl_ctx_st> find_certificate(std::string_view name) const {
    if (certificate_count_.load(std::memory_order_acquire) == 0) return nullptr;
    std::lock_guard lock(mutex_);
    auto it = certificates_.find(name);
    return it == certificates_.end() ? nullptr : it->second;
  }

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
  std::map<std::string, std::shared_ptr<ssl_ctx_st>, std::less<>> certificates_;
  std::atomic<std::size_t> certificate_count_{0};
};

}  // namespace kinfra
