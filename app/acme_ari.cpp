#include "app/acme_ari.hpp"

#include <openssl/x509v3.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "app/acme_crypto.hpp"
#include "app/acme_http.hpp"

namespace kinfra::app::acme {

using json = nlohmann::json;

std::string ari_cert_id(X509* cert) {
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert);
  if (!aki) return "";
  // The serial's DER INTEGER contents (two's complement, as encoded), without tag and length.
  unsigned char* der = nullptr;
  int len = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &der);
  std::string serial;
  if (len > 2) {
    int header = (der[1] & 0x80) ? 2 + (der[1] & 0x7f) : 2;
    if (header < len) serial.assign(reinterpret_cast<char*>(der) + header, static_cast<std::size_t>(len - header));
  }
  OPENSSL_free(der);
  if (serial.empty()) return "";
  return base64url(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(aki)),
                               static_cast<std::size_t>(ASN1_STRING_length(aki)))) +
         "." + base64url(serial);
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < text.size() && text[i] == '.') {  // fractional seconds: dropped
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  }
  long offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int h = 0, m = 0;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &h, &m) != 2) return std::nullopt;
    offset = (text[i] == '+' ? 1 : -1) * (h * 3600L + m * 60L);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  return std::chrono::system_clock::from_time_t(::timegm(&tm) - offset);
}

renewal_info fetch_renewal_info(const std::string& directory, const std::string& ca_file, X509* cert,
                                const std::atomic<bool>& stop) {
  renewal_info out;
  auto dir = http_request("GET", directory, "", "", ca_file, &stop);
  if (dir.status != 200) throw std::runtime_error("the ACME directory answered HTTP " + std::to_string(dir.status));
  auto doc = json::parse(dir.body, nullptr, false);
  const std::string base = doc.is_object() ? doc.value("renewalInfo", "") : "";
  if (base.empty()) {
    out.ask_again = std::chrono::hours(24);  // (a CA may start offering it)
    return out;
  }
  if (base.rfind("https://", 0) != 0) throw std::runtime_error("the CA's renewalInfo is not https://: " + base);
  const std::string id = ari_cert_id(cert);
  if (id.empty()) throw std::runtime_error("the certificate has no authority key identifier for ARI");
  auto r = http_request("GET", base + (base.back() == '/' ? "" : "/") + id, "", "", ca_file, &stop);
  if (r.status != 200) throw std::runtime_error("the CA's renewal information answered HTTP " + std::to_string(r.status));
  auto info = json::parse(r.body, nullptr, false);
  if (!info.is_object() || !info.contains("suggestedWindow") || !info["suggestedWindow"].is_object())
    throw std::runtime_error("the CA's renewal information has no suggestedWindow");
  const auto& w = info["suggestedWindow"];
  auto start = parse_rfc3339(w.value("start", "")), end = parse_rfc3339(w.value("end", ""));
  if (!start || !end || *end < *start) throw std::runtime_error("the CA's suggestedWindow is not a window");
  out.window = renewal_window{*start, *end, info.value("explanationURL", "")};
  // RFC 9773 §4.3: ask again after Retry-After, kept within an hour and a day.
  if (auto wait = parse_retry_after(r.header("retry-after"), std::time(nullptr)))
    out.ask_again = std::clamp(*wait, std::chrono::seconds(3600), std::chrono::seconds(86400));
  return out;
}

}  // namespace kinfra::app::acme
