#include "proxy/dev_certificates.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "proxy/openssl_util.hpp"

namespace kinfra::proxy::tls {
namespace {

namespace fs = std::filesystem;

constexpr long renew_days = 30;  ///< a CA or leaf expiring sooner than this is made again

/** Adds an X.509v3 extension written in OpenSSL's config syntax. */
void add_extension(X509* x, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw std::runtime_error("cannot build a certificate extension: " + openssl_error());
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
}

/**
 * True when the pair at `cert_path`/`key_path` can be used again: the certificate stays valid for
 * `days` more days and the key is its own (a pair half written by an interrupted run is not).
 */
bool reusable(const std::string& cert_path, const std::string& key_path, long days) {
  auto cert = read_first_cert(cert_path);
  auto key = read_private_key(key_path);
  if (!cert || !key) return false;
  std::time_t then = std::time(nullptr) + days * 86400;
  const bool ok = X509_cmp_time(X509_get0_notAfter(cert.get()), &then) > 0 && X509_check_private_key(cert.get(), key.get()) == 1;
  openssl_error();  // clears the queue
  return ok;
}

/**
 * Makes `dir` (0700) and checks it is a real folder of this user: another user's folder (or a link
 * someone planted, e.g. under /tmp) could hand kinfra a CA that is not its own.
 */
void make_private_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir + ": " + ec.message());
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw std::runtime_error("cannot use " + dir + ": " + std::strerror(errno));
  if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) throw std::runtime_error(dir + " is not a folder (a link?); refusing to use it");
  if (st.st_uid != ::geteuid())
    throw std::runtime_error(dir + " belongs to another user (uid " + std::to_string(st.st_uid) + "); refusing to use it");
  if ((st.st_mode & 0777) != 0700 && ::chmod(dir.c_str(), 0700) != 0)
    throw std::runtime_error("cannot make " + dir + " private: " + std::strerror(errno));
}

/** Holds an exclusive flock on `path` for its lifetime (another kinfra making the same files waits). */
class file_lock {
 public:
  explicit file_lock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~file_lock() { ::close(fd_); }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;

 private:
  int fd_;
};

}  // namespace

/** Who made it, so a trust store shows whose it is. */
std::string local_ca_name() {
  std::string user = "kinfra";
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) user = pw->pw_name;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  std::string name = "kinfra local CA (" + user + (host[0] ? "@" + std::string(host) : "") + ")";
  if (name.size() > 64) name = name.substr(0, 63) + ")";  // X.509's limit for a CN
  return name;
}

std::string subject_cn_of(const std::string& cert_path) {
  auto cert = read_first_cert(cert_path);
  if (!cert) return "";
  char cn[256];
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  return n > 0 ? std::string(cn, static_cast<std::size_t>(n)) : "";
}

namespace {

/** A short id of a set of names: one file pair per set. */
std::string names_id(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& n : names) joined += n + "\n";
  unsigned char md[32];
  unsigned len = 0;
  EVP_Digest(joined.data(), joined.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 6; ++i) {
    id += hex[md[i] >> 4];
    id += hex[md[i] & 15];
  }
  return id;
}

}  // namespace

ca_files local_ca_paths(const std::string& state_dir) {
  return {state_dir + "/ca/kinfra-local-ca.crt", state_dir + "/ca/kinfra-local-ca.key"};
}

bool ensure_local_ca(const std::string& state_dir) {
  const auto ca = local_ca_paths(state_dir);
  make_private_dir(state_dir + "/ca");
  file_lock lock(state_dir + "/ca/.lock");
  if (reusable(ca.cert, ca.key, renew_days)) return false;
  make_certificate({local_ca_name()}, ca.cert, ca.key, "", "", /*is_ca=*/true, 0, 3650);
  return true;
}

std::vector<std::string> development_names(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& n : names)
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  for (const char* n : {"localhost", "127.0.0.1", "::1"})
    if (std::find(out.begin(), out.end(), n) == out.end()) out.emplace_back(n);
  return out;
}

development_certificate ensure_development_certificate(const std::vector<std::string>& names,
                                                       const std::string& state_dir) {
  development_certificate out;
  const auto ca = local_ca_paths(state_dir);
  const bool had_ca = fs::exists(ca.cert);
  out.made_ca = ensure_local_ca(state_dir);
  out.replaced_ca = out.made_ca && had_ca;
  const auto all = development_names(names);
  const std::string dir = state_dir + "/tls";
  make_private_dir(dir);
  const std::string base = dir + "/dev-" + names_id(all);
  out.cert = base + ".crt";
  out.key = base + ".key";
  file_lock lock(base + ".lock");
  if (reusable(out.cert, out.key, renew_days) && signed_by(out.cert, ca.cert)) return out;
  make_certificate(all, out.cert, out.key, ca.cert, ca.key);
  out.made = true;
  return out;
}

bool usable_pair(const std::string& cert_path, const std::string& key_path, long days) {
  return reusable(cert_path, key_path, days);
}

std::pair<std::string, std::string> ensure_temporary_certificate(const std::vector<std::string>& names,
                                                                 const std::string& state_dir) {
  const std::string dir = state_dir + "/acme/temporary";
  make_private_dir(state_dir + "/acme");
  make_private_dir(dir);
  const std::string base = dir + "/" + names.front();
  file_lock lock(base + ".lock");
  std::pair<std::string, std::string> out{base + ".crt", base + ".key"};
  if (!reusable(out.first, out.second, 1)) make_certificate(names, out.first, out.second, "", "", false, 0, 7);
  return out;
}

bool signed_by(const std::string& cert_path, const std::string& ca_path) {
  auto cert = read_first_cert(cert_path);
  auto ca = read_first_cert(ca_path);
  if (!cert || !ca) return false;
  EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
  bool ok = ca_key && X509_verify(cert.get(), ca_key) == 1;
  openssl_error();  // clears the queue
  return ok;
}

void make_certificate(const std::vector<std::string>& names, const std::string& cert_path, const std::string& key_path,
                      const std::string& issuer_cert, const std::string& issuer_key, bool is_ca, long valid_from_days,
                      long valid_days) {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("cannot make a key: " + openssl_error());
  x509_ptr issuer;
  pkey_ptr signer;
  if (!issuer_cert.empty()) {
    issuer = read_first_cert(issuer_cert);
    if (!issuer) throw std::runtime_error("cannot read the certificate in " + issuer_cert);
    signer = read_private_key(issuer_key);
    if (!signer) throw std::runtime_error("cannot read the private key in " + issuer_key);
  }
  x509_ptr x(X509_new());
  X509_set_version(x.get(), 2);
  {
    BIGNUM* serial = BN_new();
    BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x.get()));
    BN_free(serial);
  }
  // An hour of slack before "now" for clocks that differ a little.
  X509_gmtime_adj(X509_getm_notBefore(x.get()), valid_from_days * 86400 - 3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), (valid_from_days + valid_days) * 86400);
  std::string cn = names.empty() ? "kinfra" : names.front();
  X509_NAME* subject = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("kinfra"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1)
    throw std::runtime_error("cannot name the certificate '" + cn + "': " + openssl_error());
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer.get()) : subject);
  X509_set_pubkey(x.get(), key.get());
  X509* ext_issuer = issuer ? issuer.get() : x.get();
  add_extension(x.get(), ext_issuer, NID_subject_key_identifier, "hash");
  if (issuer) add_extension(x.get(), ext_issuer, NID_authority_key_identifier, "keyid");
  if (is_ca) {
    add_extension(x.get(), ext_issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_extension(x.get(), ext_issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(x.get(), ext_issuer, NID_basic_constraints, "CA:FALSE");
    add_extension(x.get(), ext_issuer, NID_key_usage, "critical,digitalSignature");
    add_extension(x.get(), ext_issuer, NID_ext_key_usage, "serverAuth");
  }
  if (!names.empty() && !is_ca) {
    std::string san;
    for (const auto& n : names) san += (san.empty() ? "" : ",") + std::string(is_ip_literal(n) ? "IP:" : "DNS:") + n;
    add_extension(x.get(), ext_issuer, NID_subject_alt_name, san);
  }
  if (!X509_sign(x.get(), signer ? signer.get() : key.get(), EVP_sha256()))
    throw std::runtime_error("cannot sign the certificate: " + openssl_error());

  auto to_pem = [](auto write) {
    bio_ptr mem(BIO_new(BIO_s_mem()));
    write(mem.get());
    BUF_MEM* buf = nullptr;
    BIO_get_mem_ptr(mem.get(), &buf);
    return std::string(buf->data, buf->length);
  };
  write_file_atomically(key_path, to_pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); }),
             0600);
  write_file_atomically(cert_path, to_pem([&](BIO* b) { PEM_write_bio_X509(b, x.get()); }), 0644);
}

std::string fingerprint_of(const std::string& cert_path) {
  auto cert = read_first_cert(cert_path);
  return cert ? fingerprint(cert.get()) : "";
}

}  // namespace kinfra::proxy::tls
