#include "proxy/ocsp_staples.hpp"

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace kinfra::proxy::tls {
namespace {

std::shared_ptr<X509> share(X509* x) {
  X509_up_ref(x);
  return std::shared_ptr<X509>(x, X509_free);
}

/** The status callback: the slot's response when it is still valid, else none. */
int staple_response(SSL* ssl, void* arg) {
  const staple* s = static_cast<const staple_slot*>(arg)->get();
  if (!s || s->der.empty() || s->next_update <= std::time(nullptr)) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(s->der.size()));  // OpenSSL frees it
  if (!copy) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, s->der.data(), s->der.size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(s->der.size()));
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string ocsp_url_of(X509* cert) {
  STACK_OF(OPENSSL_STRING)* urls = X509_get1_ocsp(cert);
  std::string out;
  if (urls && sk_OPENSSL_STRING_num(urls) > 0) out = sk_OPENSSL_STRING_value(urls, 0);
  X509_email_free(urls);
  return out;
}

std::shared_ptr<staple_slot> ocsp_staples::attach(SSL_CTX* ctx, X509* leaf, X509* issuer, const std::string& fingerprint) {
  if (!issuer) return nullptr;
  std::string url = ocsp_url_of(leaf);
  if (url.empty()) return nullptr;
  std::shared_ptr<staple_slot> slot;
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    auto& e = entries_[fingerprint];
    slot = e.slot.lock();
    if (!slot) {
      // (A certificate loaded again keeps the response it had: a reload never loses the staple.)
      slot = std::make_shared<staple_slot>();
      slot->set(e.current);
      e.slot = slot;
    }
    if (!e.leaf) {
      wake = wake_;
      e.url = url;
      e.leaf = share(leaf);
      e.issuer = share(issuer);
    }
  }
  SSL_CTX_set_tlsext_status_cb(ctx, staple_response);
  SSL_CTX_set_tlsext_status_arg(ctx, slot.get());
  if (wake) wake();
  return slot;
}

std::vector<ocsp_staples::subject> ocsp_staples::subjects() {
  std::lock_guard lock(mutex_);
  std::vector<subject> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.slot.expired()) {
      it = entries_.erase(it);  // no listener serves it any more
      continue;
    }
    out.push_back({it->first, it->second.url, it->second.leaf, it->second.issuer, it->second.current});
    ++it;
  }
  return out;
}

void ocsp_staples::publish(const std::string& fingerprint, std::shared_ptr<const staple> s) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(fingerprint);
  if (it == entries_.end()) return;
  it->second.current = s;
  if (auto slot = it->second.slot.lock()) slot->set(std::move(s));
}

void ocsp_staples::on_new_certificate(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
}

}  // namespace kinfra::proxy::tls
