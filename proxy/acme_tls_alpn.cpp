#include "proxy/acme_tls_alpn.hpp"

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/local_responder.hpp"
#include "proxy/openssl_util.hpp"

namespace kinfra::proxy::tls {
namespace {

constexpr std::string_view acme_protocol = "acme-tls/1";
static_assert(acme_protocol.size() == sizeof acme_tls_alpn_protocol);

/** Whether the protocol list of an ALPN extension (RFC 7301 §3.1) names `acme-tls/1`. */
bool offers_acme(const unsigned char* ext, std::size_t len) {
  if (len < 2) return false;
  std::size_t list = (std::size_t{ext[0]} << 8) | ext[1];
  if (list + 2 > len) return false;
  for (std::size_t i = 2; i < 2 + list;) {
    std::size_t n = ext[i];
    if (i + 1 + n > 2 + list) return false;
    if (std::string_view(reinterpret_cast<const char*>(ext + i + 1), n) == acme_protocol) return true;
    i += 1 + n;
  }
  return false;
}

/** The host name of a server_name extension (RFC 6066 §3), in lower case; empty when there is none. */
std::string server_name(const unsigned char* ext, std::size_t len) {
  if (len < 2) return {};
  std::size_t list = (std::size_t{ext[0]} << 8) | ext[1];
  if (list + 2 > len) return {};
  for (std::size_t i = 2; i + 3 <= 2 + list;) {
    unsigned type = ext[i];
    std::size_t n = (std::size_t{ext[i + 1]} << 8) | ext[i + 2];
    if (i + 3 + n > 2 + list) return {};
    if (type == 0) {  // host_name
      std::string name(reinterpret_cast<const char*>(ext + i + 3), n);
      for (auto& c : name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      return name;
    }
    i += 3 + n;
  }
  return {};
}

int select_acme(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void*) {
  for (unsigned i = 0; i < inlen;) {
    unsigned n = in[i];
    if (i + 1 + n > inlen) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), n) == acme_protocol) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 8737 §3: only acme-tls/1 is spoken with this certificate
}

/** The challenge context keeps its own certificate, whatever the listener's SNI callback would pick. */
int keep_context(SSL*, int*, void*) { return SSL_TLSEXT_ERR_OK; }

}  // namespace

bool use_acme_challenge(SSL* ssl, const local_responder& responder) {
  const unsigned char* alpn = nullptr;
  std::size_t alpn_len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &alpn, &alpn_len) != 1 ||
      !offers_acme(alpn, alpn_len))
    return false;
  const unsigned char* sni = nullptr;
  std::size_t sni_len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &sni, &sni_len) != 1) return false;
  const std::string name = server_name(sni, sni_len);
  if (name.empty()) return false;
  auto ctx = responder.acme_tls_alpn_context(name);
  if (!ctx) return false;
  // (SSL_set_SSL_CTX takes its own reference: the context outlives this handshake even when the
  // challenge is withdrawn meanwhile. Options come from the listener's context, set when the
  // connection was made: no session ticket for a validation is asked for here.)
  if (!SSL_set_SSL_CTX(ssl, ctx.get())) return false;
  SSL_set_options(ssl, SSL_OP_NO_TICKET);
  return true;
}

bool is_acme_challenge(SSL* ssl) {
  const unsigned char* proto = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  return proto && std::string_view(reinterpret_cast<const char*>(proto), len) == acme_protocol;
}

std::shared_ptr<SSL_CTX> make_acme_challenge_context(X509* cert, EVP_PKEY* key) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) throw std::runtime_error("cannot make a TLS context: " + openssl_error());
  SSL_CTX* c = ctx.get();
  // (Protocol versions and options are the listener's: TLS 1.2 and up, as RFC 8737 §4 asks.)
  SSL_CTX_set_alpn_select_cb(c, select_acme, nullptr);
  SSL_CTX_set_tlsext_servername_callback(c, keep_context);
  if (SSL_CTX_use_certificate(c, cert) != 1 || SSL_CTX_use_PrivateKey(c, key) != 1 || SSL_CTX_check_private_key(c) != 1)
    throw std::runtime_error("cannot use the challenge certificate: " + openssl_error());
  return ctx;
}

}  // namespace kinfra::proxy::tls
