#include "app/acme_client.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "app/acme_crypto.hpp"
#include "app/acme_http.hpp"
#include "proxy/acme_tls_alpn.hpp"
#include "proxy/openssl_util.hpp"

namespace kinfra::app::acme {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

/** An exclusive flock for as long as it lives: two kinfra processes sharing state_dir take turns. */
class lock_file {
 public:
  lock_file(const std::string& path, const std::atomic<bool>& stop)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path);
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (stop.load()) {
        ::close(fd_);
        throw stopped();
      }
      std::this_thread::sleep_for(100ms);
    }
  }
  ~lock_file() { ::close(fd_); }
  lock_file(const lock_file&) = delete;
  lock_file& operator=(const lock_file&) = delete;

 private:
  int fd_;
};

/** "urn:ietf:params:acme:error:badNonce: …" from a problem document, or the status. */
std::string problem_of(const http_reply& r) {
  auto doc = json::parse(r.body, nullptr, false);
  if (doc.is_object() && doc.contains("type"))
    return doc.value("type", "") + (doc.contains("detail") ? ": " + doc.value("detail", "") : "");
  return "HTTP " + std::to_string(r.status);
}

/**
 * Throws `message` for a reply the CA refused: as ca_busy when it is a rate limit or an overload
 * that says when to come back (Retry-After), so that kinfra does not ask again before then.
 */
[[noreturn]] void refuse(const http_reply& r, const std::string& message) {
  if (r.status == 429 || r.status == 503 || problem_of(r).find(":rateLimited") != std::string::npos) {
    if (auto wait = parse_retry_after(r.header("retry-after"), std::time(nullptr)))
      throw ca_busy(message + " (the CA asks to wait " + std::to_string(wait->count()) + " s)", *wait);
  }
  throw std::runtime_error(message);
}

/** The account and its session with the CA: nonces, signed requests. */
class session {
 public:
  session(const acme_config& cfg, const std::string& state_dir, const std::atomic<bool>& stop) : cfg_(cfg), stop_(stop) {
    auto dir = http_request("GET", cfg.directory, "", "", cfg.ca_file, &stop_);
    if (dir.status != 200) refuse(dir, "the ACME directory " + cfg.directory + " answered " + problem_of(dir));
    directory_ = json::parse(dir.body);
    // One account key per CA, made once.
    const std::string key_path = state_dir + "/acme/account-" + base64url(sha256(cfg.directory)).substr(0, 12) + ".key";
    key_ = read_key(key_path);
    if (!key_) {
      key_ = make_key();
      proxy::tls::write_file_atomically(key_path, key_to_pem(key_.get()), 0600);
    }
  }

  EVP_PKEY* key() const { return key_.get(); }
  const std::atomic<bool>& stop() const { return stop_; }
  const json& directory() const { return directory_; }

  /** A signed POST (`payload` empty: POST-as-GET); retries once on badNonce. */
  http_reply post(const std::string& url, const std::string& payload, bool with_jwk = false) {
    require_https(url);
    for (int attempt = 0;; ++attempt) {
      if (nonce_.empty()) fetch_nonce();
      json header = {{"alg", "ES256"}, {"nonce", nonce_}, {"url", url}};
      if (with_jwk) header["jwk"] = json::parse(jwk_json(key_.get()));
      else header["kid"] = account_;
      const std::string protected64 = base64url(header.dump());
      const std::string payload64 = base64url(payload);
      json jws = {{"protected", protected64},
                  {"payload", payload64},
                  {"signature", base64url(sign_es256(key_.get(), protected64 + "." + payload64))}};
      nonce_.clear();
      auto r = http_request("POST", url, jws.dump(), "application/jose+json", cfg_.ca_file, &stop_);
      nonce_ = r.header("replay-nonce");
      if (r.status == 400 && problem_of(r).find("badNonce") != std::string::npos && attempt < 3) continue;
      return r;
    }
  }

  /** newAccount (or finds the existing one for this key). */
  void login() {
    json payload = {{"termsOfServiceAgreed", true}};
    if (!cfg_.email.empty()) payload["contact"] = json::array({"mailto:" + cfg_.email});
    const std::string url = directory_.value("newAccount", "");
    if (!cfg_.eab_kid.empty()) {
      // External Account Binding (RFC 8555 §7.3.4): the account key, signed with the CA's MAC key.
      const std::string protected64 =
          base64url(json({{"alg", "HS256"}, {"kid", cfg_.eab_kid}, {"url", url}}).dump());
      const std::string payload64 = base64url(jwk_json(key_.get()));
      payload["externalAccountBinding"] = {
          {"protected", protected64},
          {"payload", payload64},
          {"signature", base64url(hmac_sha256(base64url_decode(cfg_.eab_hmac), protected64 + "." + payload64))}};
    }
    auto r = post(url, payload.dump(), true);
    if (r.status != 200 && r.status != 201) refuse(r, "the CA refused the account: " + problem_of(r));
    account_ = r.header("location");
    if (account_.empty()) throw std::runtime_error("the CA gave the account no URL");
  }

 private:
  /** RFC 8555 §6.1: every ACME request is HTTPS (a URL from the CA saying otherwise is refused). */
  static void require_https(const std::string& url) {
    if (url.rfind("https://", 0) != 0) throw std::runtime_error("the CA gave a URL that is not https://: " + url);
  }

  void fetch_nonce() {
    require_https(directory_.value("newNonce", ""));
    auto r = http_request("HEAD", directory_.value("newNonce", ""), "", "", cfg_.ca_file, &stop_);
    nonce_ = r.header("replay-nonce");
    if (nonce_.empty()) throw std::runtime_error("the CA gave no nonce");
  }

  const acme_config& cfg_;
  const std::atomic<bool>& stop_;
  json directory_;
  pkey key_;
  std::string nonce_;
  std::string account_;
};

/** Polls `url` (POST-as-GET) until its status is not `pending`/`processing`, at most `limit`. */
json poll(session& s, const std::string& url, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto r = s.post(url, "");
    if (r.status != 200) refuse(r, "the CA answered " + problem_of(r) + " for " + url);
    json doc = json::parse(r.body);
    const std::string status = doc.value("status", "");
    if (status != "pending" && status != "processing") return doc;
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error(url + " is still " + status);
    auto wait = 1s;
    if (auto ra = r.header("retry-after"); !ra.empty() && std::isdigit(static_cast<unsigned char>(ra[0])))
      wait = std::chrono::seconds(std::min(10L, std::stol(ra)));
    for (auto until = std::chrono::steady_clock::now() + wait; std::chrono::steady_clock::now() < until;) {
      if (s.stop().load()) throw stopped();
      std::this_thread::sleep_for(100ms);
    }
  }
}

/** The JSON body of a 200/201 reply, or why there is none. */
json body_of(const http_reply& r, const std::string& what) {
  if (r.status != 200 && r.status != 201) refuse(r, what + ": the CA answered " + problem_of(r));
  json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object()) throw std::runtime_error(what + ": the CA's answer is not a JSON object");
  return doc;
}

std::string error_of(const json& doc) {
  if (doc.contains("error") && doc["error"].is_object())
    return doc["error"].value("type", "") + ": " + doc["error"].value("detail", "");
  return "status " + doc.value("status", "?");
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

/**
 * A challenge answer, published for as long as it lives: HTTP-01 as the key authorization under
 * its token, TLS-ALPN-01 as a context with the challenge certificate under the name.
 */
class published_challenge {
 public:
  published_challenge(acme_challenges& challenges, const std::string& type, const std::string& name,
                      const std::string& key_authorization)
      : challenges_(challenges) {
    if (type == "http-01") {
      token_ = key_authorization.substr(0, key_authorization.find('.'));
      challenges_.put(token_, key_authorization);
    } else {
      auto key = make_key();
      auto cert = make_tls_alpn_certificate(key.get(), name, key_authorization);
      name_ = name;
      challenges_.put_certificate(name_, proxy::tls::make_acme_challenge_context(cert.get(), key.get()));
    }
  }
  ~published_challenge() {
    if (!token_.empty()) challenges_.remove(token_);
    if (!name_.empty()) challenges_.remove_certificate(name_);
  }
  published_challenge(const published_challenge&) = delete;
  published_challenge& operator=(const published_challenge&) = delete;

 private:
  acme_challenges& challenges_;
  std::string token_, name_;
};

}  // namespace

client::client(const acme_config& cfg, std::string state_dir, acme_challenges& challenges,
               std::function<void(const std::string&)> log, const std::atomic<bool>& stop)
    : cfg_(cfg), state_dir_(std::move(state_dir)), challenges_(challenges), log_(std::move(log)), stop_(stop) {}

bool client::obtain(const std::function<bool()>& still_needed, const std::vector<std::string>& challenge_order,
                    const std::string& replaces) {
  fs::create_directories(state_dir_ + "/acme/certificates");
  ::chmod((state_dir_ + "/acme").c_str(), 0700);
  lock_file lock(state_dir_ + "/acme/.lock", stop_);
  if (!still_needed()) return false;  // another kinfra sharing state_dir just got it
  session s(cfg_, state_dir_, stop_);
  s.login();
  json ids = json::array();
  for (const auto& n : cfg_.names) ids.push_back({{"type", "dns"}, {"value", n}});
  json new_order = {{"identifiers", ids}};
  if (!replaces.empty()) new_order["replaces"] = replaces;
  auto created = s.post(s.directory().value("newOrder", ""), new_order.dump());
  const std::string refusal = created.status == 201 ? "" : problem_of(created);
  if (!replaces.empty() && (created.status == 409 || refusal.find("alreadyReplaced") != std::string::npos ||
                            (created.status == 400 && refusal.find("eplace") != std::string::npos))) {
    // (A CA that will not take `replaces` — already replaced, or not understood — still takes the
    // order; any other refusal, a rate limit above all, is not followed by a second request.)
    log_("the CA refused the order as a replacement (" + problem_of(created) + "); ordering anew");
    new_order.erase("replaces");
    created = s.post(s.directory().value("newOrder", ""), new_order.dump());
  }
  json order = body_of(created, "the order");
  const std::string order_url = created.header("location");
  if (order_url.empty() || !order["authorizations"].is_array()) throw std::runtime_error("the CA's order has no authorizations");
  log_("ordered a certificate for " + cfg_.names.front() + (cfg_.names.size() > 1 ? " and others" : "") + " from " +
       cfg_.directory);
  const std::string thumbprint = jwk_thumbprint(s.key());
  for (const auto& authz_ref : order["authorizations"]) {
    const std::string authz_url = authz_ref.is_string() ? authz_ref.get<std::string>() : "";
    json authz = body_of(s.post(authz_url, ""), "an authorization");
    if (authz.value("status", "") == "valid") continue;
    const std::string name = authz.contains("identifier") ? authz["identifier"].value("value", "") : "";
    json chosen;
    for (const auto& type : challenge_order) {
      if (authz["challenges"].is_array())
        for (const auto& c : authz["challenges"])
          if (c.is_object() && c.value("type", "") == type) chosen = c;
      if (!chosen.is_null()) break;
    }
    if (chosen.is_null())
      throw std::runtime_error("the CA offers no " + join(challenge_order, " or ") + " challenge for " + name);
    const std::string type = chosen.value("type", "");
    published_challenge answer(challenges_, type, name, chosen.value("token", "") + "." + thumbprint);
    body_of(s.post(chosen.value("url", ""), "{}"), "the challenge for " + name);
    json done = poll(s, authz_url, 90s);
    if (done.value("status", "") != "valid") {
      std::string why = error_of(done);
      if (done["challenges"].is_array())
        for (const auto& c : done["challenges"])
          if (c.is_object() && c.contains("error")) why = c["error"].value("type", "") + ": " + c["error"].value("detail", "");
      throw std::runtime_error("the CA could not validate " + name + " (" + type + "): " + why);
    }
    log_("the CA validated " + name + " (" + type + ")");
  }
  auto cert_key = make_key(cfg_.key_type == acme_config::key::rsa2048);
  body_of(s.post(order.value("finalize", ""), json({{"csr", base64url(make_csr_der(cert_key.get(), cfg_.names))}}).dump()),
          "finalizing the order");
  order = poll(s, order_url, 90s);
  if (order.value("status", "") != "valid") throw std::runtime_error("the order failed: " + error_of(order));
  auto cert = s.post(order.value("certificate", ""), "");
  if (cert.status != 200 || cert.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    refuse(cert, "the CA gave no certificate: " + problem_of(cert));
  // Key and chain in one file, replaced at once: never a new key next to an old certificate.
  proxy::tls::write_file_atomically(cfg_.cert_file(state_dir_), key_to_pem(cert_key.get()) + cert.body, 0600);
  log_("got the certificate for " + cfg_.names.front() + ": " + cfg_.cert_file(state_dir_));
  return true;
}

}  // namespace kinfra::app::acme
