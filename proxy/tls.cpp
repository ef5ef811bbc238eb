#include "proxy/tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/acme_tls_alpn.hpp"
#include "proxy/dev_certificates.hpp"
#include "proxy/ocsp_staples.hpp"
#include "proxy/openssl_util.hpp"

namespace kinfra::proxy::tls {
namespace {

namespace fs = std::filesystem;

// TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites all are).
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// TLS 1.3 in the same order as the TLS 1.2 list: AES-128-GCM first (OpenSSL's default puts
// AES-256-GCM with SHA-384 first, which costs more per handshake and per record for no practical gain).
constexpr const char* tls13_ciphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/** Reads a whole file, or says why it cannot. */
bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    why = "cannot read " + path + ": it is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}



/** DNS names of a certificate: its subjectAltName entries, or its common name when it has none. */
std::vector<std::string> names_of(X509* x) {
  std::vector<std::string> out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type == GEN_IPADD) {
        // Shown (and matched by SNI-less clients' Host) as text: "127.0.0.1", "::1".
        const auto* ip = gn->d.iPAddress;
        char text[INET6_ADDRSTRLEN] = {};
        int family = ASN1_STRING_length(ip) == 4 ? AF_INET : ASN1_STRING_length(ip) == 16 ? AF_INET6 : 0;
        if (family && inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text)) out.emplace_back(text);
        continue;
      }
      if (gn->type != GEN_DNS) continue;
      const auto* s = gn->d.dNSName;
      out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    if (n > 0) out.push_back(lower(std::string(cn, static_cast<std::size_t>(n))));
  }
  return out;
}


int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void* arg) {
  // The server's preference: h2 (when the listener offers it), then http/1.1. A client offering
  // neither continues without ALPN (and speaks HTTP/1.1).
  const auto* self = static_cast<const server_contexts*>(arg);
  const bool h2 = self && self->offers_h2();
  const unsigned char* http11 = nullptr;
  for (unsigned i = 0; i < inlen;) {
    unsigned len = in[i];
    if (i + 1 + len > inlen) break;
    if (h2 && len == 2 && std::memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    if (!http11 && len == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) http11 = in + i + 1;
    i += 1 + len;
  }
  if (!http11) return SSL_TLSEXT_ERR_NOACK;
  *out = http11;
  *outlen = 8;
  return SSL_TLSEXT_ERR_OK;
}

/** The modern defaults every server context gets. */
void configure_server(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // The server's order, except that a client that puts ChaCha20 first (one without AES in
  // hardware, as many phones) gets it.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_PRIORITIZE_CHACHA);
  SSL_CTX_set_cipher_list(ctx, tls12_ciphers);
  SSL_CTX_set_ciphersuites(ctx, tls13_ciphersuites);
  // Idle connections give their read/write buffers back (tens of KiB each).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Resumption: stateless tickets (on by default) and a server-side session cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx, 20000);
  static constexpr unsigned char sid_ctx[] = "kinfra";
  SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
  SSL_CTX_set_timeout(ctx, 3600);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
}





/** Loads one {cert, key} pair into a new server context; null (and problems) when it cannot. */
std::unique_ptr<ssl::context> load_pair(const std::string& cert_path, const std::string& key_path, source_mark mark,
                                        certificate_info& info, std::vector<problem>& problems, ocsp_staples* staples,
                                        std::shared_ptr<staple_slot>& slot) {
  auto fail = [&](std::string message) -> std::unique_ptr<ssl::context> {
    problems.push_back({mark, std::move(message)});
    return nullptr;
  };
  std::string cert_pem, key_pem, why;
  if (!read_file(cert_path, cert_pem, why)) return fail("tls cert: " + why);
  if (!read_file(key_path, key_pem, why)) return fail("tls key: " + why);

  std::vector<x509_ptr> chain;
  {
    bio_ptr bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) chain.emplace_back(x);
    ERR_clear_error();  // the loop ends on "no start line"
  }
  if (chain.empty()) return fail("tls cert: no PEM certificate found in " + cert_path);
  pkey_ptr key;
  {
    bio_ptr bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  }
  if (!key) {
    ERR_clear_error();
    return fail("tls key: no usable PEM private key in " + key_path +
                (key_pem.find("ENCRYPTED") != std::string::npos ? " (it is encrypted; kinfra needs it unencrypted)" : ""));
  }
  X509* leaf = chain.front().get();
  info.cert_path = cert_path;
  info.names = names_of(leaf);
  info.fingerprint = fingerprint(leaf);
  info.not_after = format_time(X509_get0_notAfter(leaf));
  info.not_after_time = to_time_t(X509_get0_notAfter(leaf));
  info.issuer = issuer_name(leaf);
  info.self_issued = X509_check_issued(leaf, leaf) == X509_V_OK;
  ERR_clear_error();
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0)
    return fail("tls cert: the certificate in " + cert_path + " expired on " + info.not_after);
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0)
    problems.push_back({mark, "tls cert: the certificate in " + cert_path + " is not valid before " +
                                  format_time(X509_get0_notBefore(leaf)), true});
  else if (X509_cmp_time(X509_get0_notAfter(leaf), nullptr) > 0 && !info.temporary) {  // (a stand-in is short on purpose)
    std::time_t soon = std::time(nullptr) + 14 * 86400;
    if (X509_cmp_time(X509_get0_notAfter(leaf), &soon) <= 0)
      problems.push_back({mark, "tls cert: the certificate in " + cert_path + " expires soon, on " + info.not_after,
                          true});
  }
  if (info.names.empty())
    problems.push_back({mark, "tls cert: the certificate in " + cert_path + " names no host (no subjectAltName or CN)",
                        true});

  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  configure_server(c);
  if (SSL_CTX_use_certificate(c, leaf) != 1) return fail("tls cert: " + cert_path + ": " + openssl_error());
  for (std::size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(c, chain[i].get()) != 1) return fail("tls cert: " + cert_path + ": " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey(c, key.get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    ERR_clear_error();
    return fail("tls key: the key in " + key_path + " does not match the certificate in " + cert_path);
  }
  if (std::string url = ocsp_url_of(leaf); staples && !url.empty()) {
    if (chain.size() > 1 && X509_check_issued(chain[1].get(), leaf) == X509_V_OK) {
      slot = staples->attach(c, leaf, chain[1].get(), info.fingerprint);
      info.ocsp_url = url;
    } else {
      problems.push_back({mark, "tls cert: the certificate in " + cert_path + " names an OCSP responder but its "
                                "issuer is not next in the file: it is served without OCSP stapling (put the chain "
                                "after the certificate)", true});
    }
  }
  ERR_clear_error();
  return ctx;
}

int on_servername(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_NOACK;  // no SNI: the default certificate
  auto* self = static_cast<server_contexts*>(arg);
  std::size_t i = self->select(lower(name));
  if (i != 0) SSL_set_SSL_CTX(ssl, self->native(i));
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

int on_client_hello(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const server_contexts*>(arg);
  if (self->responder_) use_acme_challenge(ssl, *self->responder_);
  return SSL_CLIENT_HELLO_SUCCESS;
}

SSL_CTX* server_contexts::native(std::size_t i) { return contexts_.at(i)->native_handle(); }

std::size_t server_contexts::select(std::string_view host_name) const {
  std::string name(host_name);
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  auto dot = name.find('.');
  if (dot != std::string::npos) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  }
  return 0;
}

std::shared_ptr<server_contexts> load_server_contexts(const listener_tls_config& tls, const std::string& state_dir,
                                                      std::vector<problem>& problems,
                                                      const local_responder* responder, ocsp_staples* staples) {
  auto out = std::make_shared<server_contexts>();
  out->responder_ = responder;
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<source_mark> marks;
  if (tls.self_signed) {
    try {
      auto dev = ensure_development_certificate(tls.names, state_dir);
      if (dev.replaced_ca)
        spdlog::warn("made a new local CA, {}: clients that trusted an earlier one do not trust it yet "
                     "(`kinfra trust` again; `kinfra untrust` removes the earlier ones)",
                     local_ca_paths(state_dir).cert);
      else if (dev.made_ca)
        spdlog::info("made kinfra's local CA {} (once; it signs the development certificates)",
                     local_ca_paths(state_dir).cert);
      if (dev.made)
        spdlog::info("made a development certificate for {} in {}, signed by kinfra's local CA {} (`kinfra trust` "
                     "makes this machine trust it)",
                     fmt::join(development_names(tls.names), ", "), dev.cert, local_ca_paths(state_dir).cert);
      files.emplace_back(dev.cert, dev.key);
      marks.push_back(tls.mark);
    } catch (const std::exception& e) {
      problems.push_back({tls.mark, std::string("tls self_signed: ") + e.what()});
      return nullptr;
    }
  }
  bool temporary = false;
  if (tls.acme && !tls.acme->names.empty()) {
    // The CA's certificate once kinfra has one; until then a stand-in (never a failed handshake).
    std::string cert = tls.acme->cert_file(state_dir), key = tls.acme->key_file(state_dir);
    if (!usable_pair(cert, key, 0)) {
      try {
        std::tie(cert, key) = ensure_temporary_certificate(tls.acme->names, state_dir);
        temporary = true;
      } catch (const std::exception& e) {
        problems.push_back({tls.acme->mark, std::string("tls acme: ") + e.what()});
        return nullptr;
      }
    }
    files.emplace_back(cert, key);
    marks.push_back(tls.acme->mark);
  }
  for (const auto& c : tls.certificates) {
    files.emplace_back(c.cert, c.key);
    marks.push_back(c.mark);
  }
  bool ok = true;
  for (std::size_t i = 0; i < files.size(); ++i) {
    certificate_info info;
    info.development = tls.self_signed && i == 0;
    info.acme = tls.acme && i == 0 && !temporary;
    info.temporary = tls.acme && i == 0 && temporary;
    std::shared_ptr<staple_slot> slot;
    auto ctx = load_pair(files[i].first, files[i].second, marks[i], info, problems, staples, slot);
    if (!ctx) {
      ok = false;
      continue;
    }
    if (slot) out->staples_.push_back(std::move(slot));
    std::size_t index = out->contexts_.size();
    for (const auto& name : info.names) {
      // The first certificate that names a host serves it.
      if (name.rfind("*.", 0) == 0) out->wildcard_.emplace(name.substr(2), index);
      else out->exact_.emplace(name, index);
    }
    out->contexts_.push_back(std::move(ctx));
    out->info_.push_back(std::move(info));
  }
  if (!ok || out->contexts_.empty()) return nullptr;
  for (auto& ctx : out->contexts_) {
    SSL_CTX_set_tlsext_servername_callback(ctx->native_handle(), on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx->native_handle(), out.get());
    if (responder) SSL_CTX_set_client_hello_cb(ctx->native_handle(), on_client_hello, out.get());
    SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_alpn, out.get());
  }
  return out;
}

std::shared_ptr<ssl::context> make_client_context(const upstream_tls_config& tls, std::vector<problem>& problems) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_protos(c, alpn_http11, sizeof alpn_http11);
  if (tls.insecure_skip_verify) {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  if (!tls.ca_file.empty()) {
    std::string pem, why;
    if (!read_file(tls.ca_file, pem, why)) {
      problems.push_back({tls.mark, "tls ca_file: " + why});
      return nullptr;
    }
    if (SSL_CTX_load_verify_locations(c, tls.ca_file.c_str(), nullptr) != 1) {
      ERR_clear_error();
      problems.push_back({tls.mark, "tls ca_file: no PEM certificate found in " + tls.ca_file});
      return nullptr;
    }
  } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
    ERR_clear_error();
    problems.push_back({tls.mark, "tls: the system's certificate store cannot be loaded (is ca-certificates installed?)",
                        true});
  }
  return ctx;
}

std::vector<problem> check_config(const config& cfg) {
  std::vector<problem> problems;
  for (const auto& l : cfg.listen) {
    if (l.tls && l.tls->acme && !l.tls->acme->ca_file.empty()) {
      std::string pem, why;
      if (!read_file(l.tls->acme->ca_file, pem, why)) problems.push_back({l.tls->acme->mark, "tls acme ca_file: " + why});
    }
    if (!l.tls || l.tls->certificates.empty()) continue;
    listener_tls_config files_only = *l.tls;
    files_only.self_signed = false;  // made at start-up, not by a check
    files_only.acme.reset();         // obtained at run time
    load_server_contexts(files_only, cfg.state_dir, problems);
  }
  for (const auto& svc : cfg.services) {
    bool https = std::any_of(svc.targets.begin(), svc.targets.end(), [](const upstream_url& u) { return u.tls(); });
    if (https) make_client_context(svc.tls, problems);
  }
  return problems;
}

bool prepare_client(SSL* ssl, const std::string& server_name, bool verify) {
  const bool ip = is_ip_literal(server_name);
  if (!ip && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) return false;
  if (!verify) return true;
  if (ip) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str()) == 1;
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set1_host(ssl, server_name.c_str()) == 1;
}

std::string describe_handshake_error(SSL* ssl, const boost::system::error_code& ec) {
  long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  ERR_clear_error();
  if (v != X509_V_OK) return std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
  return ec.message();
}



}  // namespace kinfra::proxy::tls
