// `tls: { acme: … }` of a listener: which names to get certificates for, from which CA.

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/address.hpp"
#include "common/yaml_reader.hpp"

namespace kinfra::detail {
namespace {

namespace fs = std::filesystem;

source_mark mark_of(const yaml::node& n) {
  auto m = n.Mark();
  return m.is_null() ? source_mark{} : source_mark{m.line + 1, m.column + 1};
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/** "1.2.3.4": all labels numeric (a CA does not issue for IP addresses by HTTP-01 here). */
bool is_ip_literal(const std::string& n) {
  return n.find_first_not_of("0123456789.") == std::string::npos || n.find(':') != std::string::npos;
}

bool base64url(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '=';
  });
}

void read_names(yaml_reader& r, const yaml::node& names, acme_config& acme) {
  if (!names.IsSequence() || names.size() == 0) return r.error(names, "acme names must be a list of host names");
  for (const auto& nm : names) {
    auto name = r.string(nm, "acme name");
    if (!name) continue;
    const std::string n = lower(*name);
    if (n.find('*') != std::string::npos)
      r.error(nm, "acme name \"" + *name + "\": wildcards need the DNS-01 challenge, which kinfra does not do");
    else if (!is_valid_host_name(n) || n.find('.') == std::string::npos || n == "localhost" || n.back() == '.' ||
             n.find('_') != std::string::npos || is_ip_literal(n))
      r.error(nm, "acme name \"" + *name + "\" is not a public host name (a CA issues only for those)");
    else if (std::find(acme.names.begin(), acme.names.end(), n) != acme.names.end())
      r.error(nm, "acme name \"" + *name + "\" is listed twice");
    else
      acme.names.push_back(n);
  }
}

}  // namespace

std::optional<acme_config> read_acme(yaml_reader& r, const yaml::node& n, const std::string& source_path) {
  if (!r.check_map(n, "acme", {"email", "names", "directory", "ca_file", "key_type", "challenge", "eab"})) return std::nullopt;
  acme_config acme;
  acme.mark = mark_of(n);
  if (auto e = n["email"]) {
    if (auto s = r.string(e, "acme email")) {
      const auto at = s->find('@');
      if (at == std::string::npos || at == 0 || at + 1 == s->size() || s->find_first_of(" \t\r\n<>,") != std::string::npos)
        r.error(e, "acme email \"" + *s + "\" is not an e-mail address");
      else
        acme.email = *s;
    }
  }
  if (auto names = n["names"]) read_names(r, names, acme);
  else r.error(n, "acme needs names: the host names to get a certificate for");
  if (auto d = n["directory"]) {
    if (auto s = r.string(d, "acme directory")) {
      if (*s == "production" || *s == "letsencrypt") acme.directory = acme_config::lets_encrypt;
      else if (*s == "staging") acme.directory = acme_config::lets_encrypt_staging;
      else if (s->rfind("https://", 0) != 0)
        r.error(d, "acme directory must be an https:// URL (or production / staging), not \"" + *s + "\"");
      else
        acme.directory = *s;
    }
  }
  if (auto c = n["ca_file"]) {
    if (auto s = r.string(c, "acme ca_file")) {
      fs::path p(*s);
      acme.ca_file = (p.is_absolute() ? p : fs::absolute(fs::path(source_path)).parent_path() / p).lexically_normal().string();
    }
  }
  if (auto k = n["key_type"]) {
    if (auto s = r.string(k, "acme key_type")) {
      if (*s == "ecdsa-p256") acme.key_type = acme_config::key::ecdsa_p256;
      else if (*s == "rsa2048") acme.key_type = acme_config::key::rsa2048;
      else r.error(k, "acme key_type must be ecdsa-p256 or rsa2048, not \"" + *s + "\"");
    }
  }
  if (auto c = n["challenge"]) {
    if (auto s = r.string(c, "acme challenge")) {
      if (*s == "http-01") acme.challenge_type = acme_config::challenge::http01;
      else if (*s == "tls-alpn-01") acme.challenge_type = acme_config::challenge::tls_alpn01;
      else if (*s == "auto") acme.challenge_type = acme_config::challenge::automatic;
      else r.error(c, "acme challenge must be http-01, tls-alpn-01 or auto, not \"" + *s + "\"");
    }
  }
  if (auto eab = n["eab"]) {
    if (r.check_map(eab, "acme eab", {"kid", "hmac"})) {
      auto kid = eab["kid"] ? r.string(eab["kid"], "acme eab kid") : std::nullopt;
      auto hmac = eab["hmac"] ? r.string(eab["hmac"], "acme eab hmac") : std::nullopt;
      if (!kid || !hmac || kid->empty()) r.error(eab, "acme eab needs both kid: and hmac: (from the CA)");
      else if (!base64url(*hmac)) r.error(eab["hmac"], "acme eab hmac must be base64url, as the CA gives it");
      else {
        acme.eab_kid = *kid;
        acme.eab_hmac = *hmac;
      }
    }
  }
  return acme;
}

}  // namespace kinfra::detail
