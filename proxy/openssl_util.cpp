#include "proxy/openssl_util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace kinfra::proxy::tls {

std::string openssl_error() {
  unsigned long e = ERR_peek_last_error();
  std::string out;
  if (e) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(e);
    out = reason ? reason : buf;
  }
  ERR_clear_error();
  return out.empty() ? "unknown OpenSSL error" : out;
}

int no_password(char*, int, int, void*) { return 0; }

namespace {
std::string format_tm(const std::tm& tm) {
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}
}  // namespace

std::string format_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (!ASN1_TIME_to_tm(t, &tm)) return "?";
  return format_tm(tm);
}

std::string format_time(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  return format_tm(tm);
}

std::time_t to_time_t(const ASN1_TIME* t) {
  std::tm tm{};
  if (!ASN1_TIME_to_tm(t, &tm)) return 0;
  return timegm(&tm);
}

std::string fingerprint(X509* x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!X509_digest(x, EVP_sha256(), md, &len)) return "";
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    if (i) out += ':';
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string issuer_name(X509* x) {
  X509_NAME* name = X509_get_issuer_name(x);
  char cn[256];
  int n = X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof cn);
  if (n > 0) return std::string(cn, static_cast<std::size_t>(n));
  char* line = X509_NAME_oneline(name, nullptr, 0);
  std::string out = line ? line : "";
  OPENSSL_free(line);
  return out;
}

x509_ptr read_first_cert(const std::string& path) {
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  x509_ptr out(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr) : nullptr);
  ERR_clear_error();
  return out;
}

pkey_ptr read_private_key(const std::string& path) {
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  pkey_ptr out(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
  ERR_clear_error();
  return out;
}

void write_file_atomically(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, mode);
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace kinfra::proxy::tls
