#pragma once
/**
 * @file kinfra's own answers: the `/kinfra` dashboard, `/__status__`, `/__action__/…`,
 * `/__logs__/…`, the loading / 503 / maintenance pages, and error pages. A pure request handler:
 * no sockets, so the proxy's listener and the direct admin listener both call it, and unit tests
 * call it without any network.
 */

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "common/config.hpp"
#include "common/acme_challenges.hpp"
#include "common/local_responder.hpp"
#include "common/service_control.hpp"
#include "common/status_board.hpp"
#include "fallback/access_policy.hpp"
#include "fallback/pages.hpp"
#include "fallback/status_cache.hpp"
#include "fallback/template_renderer.hpp"

namespace kinfra {
class history_registry;
}

namespace kinfra::fallback {

/** Renders kinfra's pages from the StatusBoard and runs actions through ServiceControl. Thread-safe. */
class fallback_responder final : public local_responder {
 public:
  /**
   * @param cfg the configuration (admin settings, services' fallback settings)
   * @param board what is known about services; may be null (then only error pages work)
   * @param control carries out actions; may be null (actions answer "Not available")
   * All three must outlive the responder.
   */
  fallback_responder(std::shared_ptr<const config> cfg, status_board* board, service_control* control);
  /** Error pages only: for tools and tests that run the proxy without services. */
  fallback_responder();

  // local_responder
  local_response error_page(unsigned status, std::string_view detail, const local_request& req) const override;
  std::optional<local_response> handle_quick(const local_request& req) const override;
  local_response handle(const local_request& req) const override;
  local_response unavailable_page(const local_request& req, bool json_route) const override;

  /** Takes a reloaded configuration; requests already being answered finish with the old one. */
  void reconfigure(std::shared_ptr<const config> cfg);
  /** Enables `POST /__action__/reload` (set once, before serving). */
  void set_config_control(config_control* reload) { reload_ = reload; }
  /** Enables `/metrics` and the cards' request rates (set once, before serving). */
  void set_metrics(metrics_registry* metrics) { metrics_ = metrics; }
  /** What `/__history__` answers from (see common/history.hpp). */
  void set_history(const history_registry* history) { history_ = history; }
  /** Where the ACME client publishes its HTTP-01 answers (may stay null: none are answered). */
  void set_acme_challenges(const acme_challenges* challenges) { challenges_ = challenges; }
  std::optional<std::string> acme_challenge(std::string_view token) const override {
    if (!challenges_ || challenges_->empty()) return std::nullopt;
    return challenges_->find(token);
  }
  std::shared_ptr<ssl_ctx_st> acme_tls_alpn_context(std::string_view name) const override {
    return challenges_ ? challenges_->find_certificate(name) : nullptr;
  }

 private:
  page_context context(const local_request& req) const;
  std::shared_ptr<const config> current() const;
  std::shared_ptr<const template_store> templates() const;
  /** The admin settings in force (defaults when there is no configuration). */
  const admin_config& admin_of(const config* cfg) const;
  local_response dashboard(const local_request& req) const;
  /** `/__status__`; with `quick`, nothing when the document must be rendered first. */
  std::optional<local_response> status(const local_request& req, bool quick) const;
  /** The document for an admin reader, from the cache or (not quick) rendered now. */
  std::shared_ptr<const std::string> status_document(std::string_view selected, bool quick) const;
  local_response logs(const local_request& req) const;
  local_response metrics(const local_request& req) const;
  local_response history(const local_request& req) const;
  local_response events(const local_request& req) const;
  /** `/__stream__`: Server-Sent Events (see event_stream.hpp). */
  local_response stream(const local_request& req) const;
  /** `/kinfra/service/NAME`: one service's detail page (a shell; its script fetches the data). */
  local_response service_page(const local_request& req) const;
  local_response action(const local_request& req) const;
  local_response service_action(const local_request& req, std::string_view verb, std::string_view name) const;
  local_response refused(unsigned status, const std::string& why, const local_request& req, bool json) const;
  /** The refusal for `a` (421, 403 or 401 with WWW-Authenticate and, for the CLI, X-Kinfra-Proof). */
  local_response deny(access a, const local_request& req, bool as_json) const;

  mutable std::mutex mutex_;  ///< guards cfg_ and templates_ (replaced on reload)
  std::shared_ptr<const config> cfg_;
  status_board* board_ = nullptr;  ///< read for pages; written only by the maintenance action
  service_control* control_ = nullptr;
  config_control* reload_ = nullptr;
  metrics_registry* metrics_ = nullptr;
  const history_registry* history_ = nullptr;
  const acme_challenges* challenges_ = nullptr;
  std::shared_ptr<template_store> templates_;
  mutable status_cache status_cache_;
  /** Streams open now (`/__stream__`), admin and visitors' apart: each kind has its cap. */
  std::shared_ptr<std::atomic<int>> admin_streams_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> public_streams_ = std::make_shared<std::atomic<int>>(0);
  /** Grows with each reconfigure: streams opened before end. */
  std::shared_ptr<std::atomic<std::uint64_t>> generation_ = std::make_shared<std::atomic<std::uint64_t>>(0);
};

}  // namespace kinfra::fallback
