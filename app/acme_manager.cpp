#include "app/acme_manager.hpp"

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <random>
#include <set>

#include "app/acme_ari.hpp"
#include "app/acme_client.hpp"
#include "app/acme_http.hpp"
#include "common/status_board.hpp"
#include "proxy/dev_certificates.hpp"
#include "proxy/openssl_util.hpp"

namespace kinfra::app {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/**
 * When the stored certificate should be renewed: two thirds into its lifetime; at once (the epoch)
 * when it lacks one of the names or has another kind of key than key_type (it is still served
 * meanwhile); nothing when there is none.
 */
std::optional<std::chrono::system_clock::time_point> renewal_time(const acme_config& acme, const std::string& state_dir) {
  if (!proxy::tls::usable_pair(acme.cert_file(state_dir), acme.key_file(state_dir), 0)) return std::nullopt;
  auto cert = proxy::tls::read_first_cert(acme.cert_file(state_dir));
  if (!cert) return std::nullopt;
  const std::chrono::system_clock::time_point now_due{};
  for (const auto& n : acme.names)
    if (X509_check_host(cert.get(), n.c_str(), n.size(), 0, nullptr) != 1) return now_due;  // names changed
  const int kind = EVP_PKEY_get_base_id(X509_get0_pubkey(cert.get()));
  if (kind != (acme.key_type == acme_config::key::rsa2048 ? EVP_PKEY_RSA : EVP_PKEY_EC)) return now_due;
  const auto from = proxy::tls::to_time_t(X509_get0_notBefore(cert.get()));
  const auto to = proxy::tls::to_time_t(X509_get0_notAfter(cert.get()));
  const auto at = from + static_cast<std::time_t>(static_cast<double>(to - from) * acme_manager::renew_at());
  return std::chrono::system_clock::from_time_t(at);
}

/**
 * The challenge types to try, preferred first. Automatic: the one the CA can reach — HTTP-01 on a
 * plain listener on port 80, else TLS-ALPN-01 on a TLS listener on 443 (a lone :443 works); with
 * neither port (behind a port mapping) HTTP-01 when there is a plain listener. After a failed
 * attempt the other one goes first.
 */
std::vector<std::string> challenge_order(const acme_config& acme, const config& cfg, unsigned failures) {
  using challenge = acme_config::challenge;
  if (acme.challenge_type == challenge::http01) return {"http-01"};
  if (acme.challenge_type == challenge::tls_alpn01) return {"tls-alpn-01"};
  auto any = [&](auto pred) { return std::any_of(cfg.listen.begin(), cfg.listen.end(), pred); };
  if (!any([](const listener_config& l) { return !l.tls; })) return {"tls-alpn-01"};
  const bool http_first = any([](const listener_config& l) { return !l.tls && l.address.port == 80; }) ||
                          !any([](const listener_config& l) { return l.tls && l.address.port == 443; });
  std::vector<std::string> order = {"http-01", "tls-alpn-01"};
  if (http_first == (failures % 2 == 1)) std::swap(order[0], order[1]);
  return order;
}

std::string utc_text(std::chrono::system_clock::time_point t) {
  return proxy::tls::format_time(std::chrono::system_clock::to_time_t(t));
}

}  // namespace

acme_manager::acme_manager(std::function<std::shared_ptr<const config>()> current, status_board& board,
                           std::function<std::string()> reload_certificates)
    : current_(std::move(current)),
      board_(board),
      reload_certificates_(std::move(reload_certificates)),
      loop_([this] { return round(); }) {}

acme_manager::~acme_manager() { stop(); }

double acme_manager::renew_at() {
  if (const char* v = std::getenv("KINFRA_ACME_RENEW_AT"); v && *v) {
    double f = std::atof(v);
    if (f > 0 && f <= 1) return f;
  }
  return 2.0 / 3.0;
}

void acme_manager::start() { loop_.start(); }
void acme_manager::stop() { loop_.stop(); }
void acme_manager::wake() { loop_.wake(); }

std::optional<std::chrono::system_clock::time_point> acme_manager::due(const acme_config& acme,
                                                                       const std::string& state_dir,
                                                                       const name_state& st) const {
  auto local = renewal_time(acme, state_dir);
  if (!local || !st.ari_time) return local;
  auto cert = proxy::tls::read_first_cert(acme.cert_file(state_dir));
  if (!cert || acme::ari_cert_id(cert.get()) != st.ari_cert) return local;  // (about another certificate)
  return st.ari_time;
}

void acme_manager::check_renewal_info(const acme_config& acme, const std::string& state_dir, name_state& st) {
  if (clock::now() < st.ari_check || !renewal_time(acme, state_dir)) return;
  auto cert = proxy::tls::read_first_cert(acme.cert_file(state_dir));
  if (!cert) return;
  const std::string id = acme::ari_cert_id(cert.get());
  try {
    auto info = acme::fetch_renewal_info(acme.directory, acme.ca_file, cert.get(), loop_.stopping());
    st.ari_check = clock::now() + info.ask_again;
    if (!info.window) {
      st.ari_time.reset();
      return;
    }
    if (st.ari_cert == id && st.ari_start == info.window->start && st.ari_end == info.window->end) return;
    // RFC 9773 §4.2: a moment chosen at random in the window (clients do not all come at once).
    std::uniform_real_distribution<double> share(0.0, 1.0);
    std::random_device seed;
    std::mt19937_64 rng(seed());
    const auto span = info.window->end - info.window->start;
    st.ari_cert = id;
    st.ari_start = info.window->start;
    st.ari_end = info.window->end;
    st.ari_time = info.window->start + std::chrono::duration_cast<std::chrono::system_clock::duration>(span * share(rng));
    // A window that ends after the certificate (a CA's mistake) is not followed: it would expire.
    const auto not_after = std::chrono::system_clock::from_time_t(proxy::tls::to_time_t(X509_get0_notAfter(cert.get())));
    if (*st.ari_time > not_after - 24h) {
      spdlog::warn("acme: the CA's renewal window for {} ends after the certificate expires; renewing at two thirds "
                   "of its lifetime", acme.names.front());
      st.ari_time.reset();
      return;
    }
    spdlog::info("acme: the CA suggests renewing the certificate for {} between {} and {}{}; kinfra renews at {}",
                 acme.names.front(), utc_text(*st.ari_start), utc_text(*st.ari_end),
                 info.window->explanation.empty() ? "" : " (" + info.window->explanation + ")",
                 utc_text(*st.ari_time));
  } catch (const acme::stopped&) {
  } catch (const std::exception& e) {
    st.ari_check = clock::now() + 1h;
    spdlog::warn("acme: no renewal information for {} from the CA ({}); renewing at two thirds of its lifetime",
                 acme.names.front(), e.what());
  }
}

void acme_manager::counts(acme_status& status, const name_state& st) {
  status.obtained_total = st.obtained_total;
  status.failed_total = st.failed_total;
  status.failures = st.failures;
}

bool acme_manager::attempt(const acme_config& acme, const config& cfg, name_state& st, acme_status& status,
                           bool renewing) {
  const auto now_sys = std::chrono::system_clock::now();
  const std::string& key = acme.names.front();
  try {
    spdlog::info("acme: {} for {}", renewing ? "renewing the certificate" : "getting a certificate", key);
    acme::client client(acme, cfg.state_dir, challenges_, [](const std::string& line) { spdlog::info("acme: {}", line); },
                        loop_.stopping());
    const bool wrote = client.obtain(
        [&] {
          auto r = due(acme, cfg.state_dir, st);
          return !r || *r <= std::chrono::system_clock::now();
        },
        challenge_order(acme, cfg, st.failures), st.ari_time ? st.ari_cert : "");
    st.failures = 0;
    st.retry_at = {};
    if (wrote) ++st.obtained_total;
    counts(status, st);
    status.last_success = now_sys;
    st.ari_check = {};  // (the new certificate's window is asked for at the next round)
    if (auto again = renewal_time(acme, cfg.state_dir)) status.next_renewal = *again;
    return true;  // (written by us or by another kinfra: either way it is loaded now)
  } catch (const acme::stopped&) {
    throw;
  } catch (const std::exception& e) {
    ++st.failures;
    ++st.failed_total;
    counts(status, st);
    auto backoff = std::min<clock::duration>(30s * (1u << std::min(st.failures - 1, 7u)), 1h);
    // A CA that said when to come back (a rate limit) is not asked before then (within a day).
    if (const auto* busy = dynamic_cast<const acme::ca_busy*>(&e))
      backoff = std::max<clock::duration>(backoff, std::min<clock::duration>(busy->retry_after, 24h));
    st.retry_at = clock::now() + backoff;
    status.last_error = e.what();
    status.next_attempt = now_sys + std::chrono::duration_cast<std::chrono::system_clock::duration>(backoff);
    // Without a certificate of the CA's, the temporary one is served: loading again keeps it
    // fresh (it is made anew when it has less than a day left), however long the CA refuses.
    if (!renewing) pending_load_ = true;
    spdlog::error("acme: no certificate for {} ({}); trying again in {} s; {}", key, e.what(),
                  std::chrono::duration_cast<std::chrono::seconds>(backoff).count(),
                  renewing ? "the current one is still served" : "a temporary one is served meanwhile");
    return false;
  }
}

clock::time_point acme_manager::round() {
  auto cfg = current_();
  auto next = clock::now() + 1min;  // names added by a reload are noticed within a minute (or at wake())
  if (!cfg) return next;
  bool changed = false;
  std::set<std::string> seen;
  for (const auto& l : cfg->listen) {
    if (!l.tls || !l.tls->acme || l.tls->acme->names.empty()) continue;
    const acme_config& acme = *l.tls->acme;
    const std::string key = acme.names.front();
    if (!seen.insert(key).second) continue;
    auto& st = states_[key];
    check_renewal_info(acme, cfg->state_dir, st);
    if (loop_.stopping().load()) return next;
    auto renew = due(acme, cfg->state_dir, st);
    const auto now_sys = std::chrono::system_clock::now();
    acme_status status;
    status.names = acme.names;
    status.directory = acme.directory;
    if (st.ari_time) {
      status.window_start = st.ari_start;
      status.window_end = st.ari_end;
    }
    counts(status, st);
    if (renew && *renew > now_sys) {
      status.next_renewal = *renew;
      board_.set_config_status([&](config_status& c) { c.acme[key] = status; });
      continue;
    }
    if (clock::now() < st.retry_at) {
      next = std::min(next, st.retry_at);
      continue;
    }
    if (loop_.stopping().load()) return next;
    try {
      changed |= attempt(acme, *cfg, st, status, renew.has_value());
    } catch (const acme::stopped&) {
      return next;
    }
    next = std::min(next, st.retry_at == clock::time_point{} ? next : st.retry_at);
    board_.set_config_status([&](config_status& c) { c.acme[key] = status; });
  }
  if (changed && !loop_.stopping().load()) {
    // Into the listeners, from the configuration in force (routes.yaml on disk may be mid-edit).
    std::string error = reload_certificates_();
    if (!error.empty()) {
      spdlog::error("acme: the new certificate is written but could not be loaded ({}); trying again in a minute", error);
      pending_load_ = true;
      board_.set_config_status([&](config_status& c) {
        for (auto& [k, a] : c.acme) a.last_error = "written but not loaded: " + error;
      });
    } else {
      pending_load_ = false;
    }
  } else if (pending_load_ && !loop_.stopping().load()) {
    pending_load_ = !reload_certificates_().empty();
  }
  return next;
}

}  // namespace kinfra::app
