#include "app/acme_crypto.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace kinfra::app::acme {
namespace {

std::string ossl_error(const char* what) {
  char buf[256] = {};
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  ERR_clear_error();
  return std::string(what) + ": " + buf;
}

std::string bn_bytes(EVP_PKEY* key, const char* param) {
  BIGNUM* bn = nullptr;
  if (!EVP_PKEY_get_bn_param(key, param, &bn)) throw std::runtime_error(ossl_error("cannot read the account key"));
  std::string out(32, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32);
  BN_free(bn);
  return out;
}

}  // namespace

std::string base64url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string base64url_decode(std::string_view text) {
  std::string s(text);
  for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  std::string out(s.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(s.data()),
                          static_cast<int>(s.size()));
  if (n < 0) throw std::runtime_error("not base64url");
  std::size_t pad = 0;
  for (auto it = s.rbegin(); it != s.rend() && *it == '='; ++it) ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string sha256(std::string_view bytes) {
  unsigned char md[32];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

pkey make_key(bool rsa) {
  pkey key(rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error(ossl_error("cannot make a key"));
  return key;
}

std::string key_to_pem(EVP_PKEY* key) {
  BIO* mem = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(mem, key, nullptr, nullptr, 0, nullptr, nullptr);
  BUF_MEM* buf = nullptr;
  BIO_get_mem_ptr(mem, &buf);
  std::string out(buf->data, buf->length);
  BIO_free(mem);
  return out;
}

pkey read_key(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (!bio) {
    ERR_clear_error();
    return nullptr;
  }
  pkey key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  ERR_clear_error();
  return key;
}

std::string jwk_json(EVP_PKEY* key) {
  return R"({"crv":"P-256","kty":"EC","x":")" + base64url(bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_X)) + R"(","y":")" +
         base64url(bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_Y)) + R"("})";
}

std::string jwk_thumbprint(EVP_PKEY* key) { return base64url(sha256(jwk_json(key))); }

std::string sign_es256(EVP_PKEY* key, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error(ossl_error("cannot sign"));
  // JWS wants r‖s, each 32 bytes, not DER.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) throw std::runtime_error(ossl_error("cannot read the signature"));
  std::string out(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(out.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view input) {
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                 reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, sizeof out, &len))
    throw std::runtime_error(ossl_error("cannot compute the HMAC"));
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string make_csr_der(EVP_PKEY* key, const std::vector<std::string>& names) {
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_version(req, 0);
  X509_NAME* subject = X509_REQ_get_subject_name(req);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(names.front().c_str()),
                             -1, -1, 0);
  X509_REQ_set_pubkey(req, key);
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  bool ok = ext != nullptr;
  if (ok) {
    sk_X509_EXTENSION_push(exts, ext);
    ok = X509_REQ_add_extensions(req, exts) == 1 && X509_REQ_sign(req, key, EVP_sha256()) > 0;
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  std::string der;
  if (ok) {
    int len = i2d_X509_REQ(req, nullptr);
    der.resize(static_cast<std::size_t>(len));
    unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_X509_REQ(req, &p);
  }
  X509_REQ_free(req);
  if (!ok) throw std::runtime_error(ossl_error("cannot make the certificate request"));
  return der;
}

x509 make_tls_alpn_certificate(EVP_PKEY* key, const std::string& name, const std::string& key_authorization) {
  x509 cert(X509_new());
  auto fail = [](const char* what) -> x509 { throw std::runtime_error(ossl_error(what)); };
  if (!cert) return fail("cannot make the challenge certificate");
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, subject);
  X509_set_pubkey(x, key);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, ("DNS:" + name).c_str());
  bool ok = san && X509_add_ext(x, san, -1) == 1;
  X509_EXTENSION_free(san);
  // id-pe-acmeIdentifier (1.3.6.1.5.5.7.1.31), critical: extnValue is the DER OCTET STRING of the digest.
  const std::string digest = sha256(key_authorization);
  ASN1_OCTET_STRING* inner = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
  ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
  unsigned char* der = nullptr;
  int der_len = -1;
  if (ok && inner && value && oid &&
      ASN1_OCTET_STRING_set(inner, reinterpret_cast<const unsigned char*>(digest.data()),
                            static_cast<int>(digest.size())) == 1)
    der_len = i2d_ASN1_OCTET_STRING(inner, &der);
  ok = ok && der_len > 0 && ASN1_OCTET_STRING_set(value, der, der_len) == 1;
  if (ok) {
    X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, oid, 1, value);
    ok = ext && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  OPENSSL_free(der);
  ASN1_OBJECT_free(oid);
  ASN1_OCTET_STRING_free(value);
  ASN1_OCTET_STRING_free(inner);
  if (!ok || X509_sign(x, key, EVP_sha256()) <= 0) return fail("cannot make the challenge certificate");
  return cert;
}

}  // namespace kinfra::app::acme
