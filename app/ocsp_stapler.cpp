#include "app/ocsp_stapler.hpp"

#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ctime>
#include <memory>
#include <set>
#include <stdexcept>

#include "app/acme_http.hpp"
#include "common/status_board.hpp"
#include "proxy/ocsp_staples.hpp"
#include "proxy/openssl_util.hpp"

namespace kinfra::app {
namespace {

using clock = std::chrono::steady_clock;
using sys_clock = std::chrono::system_clock;
using namespace std::chrono_literals;
using proxy::tls::staple;

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* p) const { Free(p); }
};
using certid_ptr = std::unique_ptr<OCSP_CERTID, openssl_deleter<OCSP_CERTID, OCSP_CERTID_free>>;
using request_ptr = std::unique_ptr<OCSP_REQUEST, openssl_deleter<OCSP_REQUEST, OCSP_REQUEST_free>>;
using response_ptr = std::unique_ptr<OCSP_RESPONSE, openssl_deleter<OCSP_RESPONSE, OCSP_RESPONSE_free>>;
using basic_ptr = std::unique_ptr<OCSP_BASICRESP, openssl_deleter<OCSP_BASICRESP, OCSP_BASICRESP_free>>;
using store_ptr = std::unique_ptr<X509_STORE, openssl_deleter<X509_STORE, X509_STORE_free>>;

struct stack_deleter {
  void operator()(STACK_OF(X509)* s) const { sk_X509_free(s); }  // (the certificates are not ours)
};

/** The DER OCSP request for `leaf`. */
std::string make_request(OCSP_CERTID* id) {
  request_ptr req(OCSP_REQUEST_new());
  if (!req || !OCSP_request_add0_id(req.get(), OCSP_CERTID_dup(id))) throw std::runtime_error("cannot make the request");
  unsigned char* der = nullptr;
  int len = i2d_OCSP_REQUEST(req.get(), &der);
  if (len <= 0) throw std::runtime_error("cannot encode the request");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

/**
 * Checks a responder's answer and returns it as a staple: a successful response, signed by the
 * issuer (or a responder it delegated to), about this certificate, current, with a nextUpdate.
 */
staple check_response(const std::string& der, OCSP_CERTID* id, X509* issuer) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  response_ptr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
  if (!resp) throw std::runtime_error("the answer is not an OCSP response");
  const int rs = OCSP_response_status(resp.get());
  if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL)
    throw std::runtime_error(std::string("the responder answered ") + OCSP_response_status_str(rs));
  basic_ptr basic(OCSP_response_get1_basic(resp.get()));
  if (!basic) throw std::runtime_error("the response has no basic response");
  std::unique_ptr<STACK_OF(X509), stack_deleter> certs(sk_X509_new_null());
  store_ptr store(X509_STORE_new());
  if (!certs || !store || !sk_X509_push(certs.get(), issuer) || X509_STORE_add_cert(store.get(), issuer) != 1)
    throw std::runtime_error("out of memory");
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  if (OCSP_basic_verify(basic.get(), certs.get(), store.get(), OCSP_TRUSTOTHER) != 1)
    throw std::runtime_error("the response is not signed by the certificate's issuer: " + proxy::tls::openssl_error());
  int status = -1, reason = 0;
  ASN1_GENERALIZEDTIME *revoked = nullptr, *this_update = nullptr, *next_update = nullptr;
  if (OCSP_resp_find_status(basic.get(), id, &status, &reason, &revoked, &this_update, &next_update) != 1)
    throw std::runtime_error("the response is not about this certificate");
  if (!next_update) throw std::runtime_error("the response has no nextUpdate (it cannot be cached)");
  if (OCSP_check_validity(this_update, next_update, 300, -1) != 1)
    throw std::runtime_error("the response is not current: " + proxy::tls::openssl_error());
  staple out;
  out.der = der;
  out.this_update = proxy::tls::to_time_t(this_update);
  out.next_update = proxy::tls::to_time_t(next_update);
  out.status = OCSP_cert_status_str(status);
  return out;
}

/** Asks the responder about one certificate. Throws saying what failed. */
staple fetch(const proxy::tls::ocsp_staples::subject& s, const std::atomic<bool>& stop) {
  certid_ptr id(OCSP_cert_to_id(nullptr, s.leaf.get(), s.issuer.get()));
  if (!id) throw std::runtime_error("cannot identify the certificate");
  auto reply = acme::http_request("POST", s.url, make_request(id.get()), "application/ocsp-request", "", &stop, 15s);
  if (reply.status != 200) throw std::runtime_error(s.url + " answered HTTP " + std::to_string(reply.status));
  return check_response(reply.body, id.get(), s.issuer.get());
}

/** Where the response for a certificate is kept: state_dir/ocsp/FINGERPRINT.der. */
std::string cache_path(const std::string& state_dir, const std::string& fingerprint) {
  std::string hex;
  for (char c : fingerprint)
    if (c != ':') hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return state_dir + "/ocsp/" + hex + ".der";
}

/** The kept response for `s`, when there is one that still checks out. */
std::shared_ptr<const staple> read_cache(const std::string& path, const proxy::tls::ocsp_staples::subject& s) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  std::string der((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  certid_ptr id(OCSP_cert_to_id(nullptr, s.leaf.get(), s.issuer.get()));
  try {
    if (!id) return nullptr;
    auto kept = std::make_shared<const staple>(check_response(der, id.get(), s.issuer.get()));
    return kept->status == "good" ? kept : nullptr;
  } catch (const std::exception&) {
    return nullptr;  // expired, or not this certificate's: fetched anew
  }
}

/** The first name of a certificate, for the log. */
std::string name_of(X509* x) {
  char cn[256] = {};
  return X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0 ? cn : "a certificate";
}

/** Seconds until a response is fetched again: halfway through its validity (1 min … 1 day from now). */
std::time_t refresh_wait(const staple& s) {
  const auto half = s.this_update + (s.next_update - s.this_update) / 2;
  return std::clamp<std::time_t>(half - std::time(nullptr), 60, 86400);
}

void set_times(ocsp_status& status, const staple& s) {
  status.status = s.status;
  status.this_update = sys_clock::from_time_t(s.this_update);
  status.next_update = sys_clock::from_time_t(s.next_update);
}

std::string utc(std::time_t t) { return proxy::tls::format_time(t); }

}  // namespace

ocsp_stapler::ocsp_stapler(proxy::tls::ocsp_staples& staples, status_board& board, std::function<std::string()> state_dir)
    : staples_(staples), board_(board), state_dir_(std::move(state_dir)), loop_([this] { return round(); }) {}

ocsp_stapler::~ocsp_stapler() { stop(); }

void ocsp_stapler::start() {
  staples_.on_new_certificate([this] { wake(); });
  loop_.start();
}

void ocsp_stapler::stop() {
  staples_.on_new_certificate(nullptr);
  loop_.stop();
}

void ocsp_stapler::wake() { loop_.wake(); }

void ocsp_stapler::restore(const proxy::tls::ocsp_staples::subject& s, fetch_state& st, const std::string& dir) {
  auto kept = read_cache(cache_path(dir, s.fingerprint), s);
  if (!kept) return;
  staples_.publish(s.fingerprint, kept);
  spdlog::info("ocsp: stapling the kept answer for {}: good (valid until {})", name_of(s.leaf.get()), utc(kept->next_update));
  st.due = clock::now() + std::chrono::seconds(refresh_wait(*kept));
  ocsp_status status;
  set_times(status, *kept);
  status.next_fetch = sys_clock::now() + std::chrono::duration_cast<sys_clock::duration>(st.due - clock::now());
  board_.set_config_status([&](config_status& c) { c.ocsp[s.fingerprint] = status; });
}

void ocsp_stapler::refresh(const proxy::tls::ocsp_staples::subject& s, fetch_state& st, const std::string& dir) {
  ocsp_status status;
  const std::string name = name_of(s.leaf.get());
  try {
    auto got = std::make_shared<const staple>(fetch(s, loop_.stopping()));
    // (A responder may not know a certificate for minutes after it was issued: a failed fetch.)
    if (got->status == "unknown") throw std::runtime_error("the responder does not know this certificate (yet)");
    st.due = clock::now() + std::chrono::seconds(refresh_wait(*got));
    st.failures = 0;
    set_times(status, *got);
    if (got->status == "revoked") {
      // Stapled by no one: no earlier "good" either.
      staples_.publish(s.fingerprint, nullptr);
      std::error_code ec;
      std::filesystem::remove(cache_path(dir, s.fingerprint), ec);
      status.last_error = "the responder says this certificate is revoked: replace it";
      spdlog::error("ocsp: the responder says the certificate for {} is REVOKED: nothing is stapled; replace it", name);
    } else {
      staples_.publish(s.fingerprint, got);
      try {
        std::filesystem::create_directories(dir + "/ocsp");
        proxy::tls::write_file_atomically(cache_path(dir, s.fingerprint), got->der, 0644);
      } catch (const std::exception& e) {
        spdlog::warn("ocsp: cannot keep the answer in {}/ocsp: {}", dir, e.what());
      }
      spdlog::info("ocsp: stapling the responder's answer for {}: good (valid until {})", name, utc(got->next_update));
    }
  } catch (const acme::stopped&) {
    throw;
  } catch (const std::exception& e) {
    ++st.failures;
    const auto backoff = std::min<clock::duration>(60s * (1u << std::min(st.failures - 1, 6u)), 1h);
    st.due = clock::now() + backoff;
    status.last_error = e.what();
    auto held = s.current;
    if (!held) held = read_cache(cache_path(dir, s.fingerprint), s);
    if (held && held->next_update > std::time(nullptr)) set_times(status, *held);
    spdlog::warn("ocsp: no answer for {} from {} ({}); trying again in {} s{}", name, s.url, e.what(),
                 std::chrono::duration_cast<std::chrono::seconds>(backoff).count(),
                 status.status.empty() ? "" : "; the answer already held is stapled meanwhile");
  }
  status.failures = st.failures;
  status.next_fetch = sys_clock::now() + std::chrono::duration_cast<sys_clock::duration>(st.due - clock::now());
  board_.set_config_status([&](config_status& c) { c.ocsp[s.fingerprint] = status; });
}

clock::time_point ocsp_stapler::round() {
  auto next = clock::now() + 10min;
  std::set<std::string> in_use;
  for (const auto& s : staples_.subjects()) {
    in_use.insert(s.fingerprint);
    const bool first = !states_.count(s.fingerprint);
    auto& st = states_[s.fingerprint];
    const std::string dir = state_dir_();
    // After a restart: the kept answer is stapled at once, and fetched again when half used.
    if (first && !s.current) restore(s, st, dir);
    if (clock::now() >= st.due) {
      if (loop_.stopping().load()) return next;
      try {
        refresh(s, st, dir);
      } catch (const acme::stopped&) {
        return next;
      }
    }
    next = std::min(next, st.due);
  }
  // Certificates no listener serves any more are forgotten.
  for (auto it = states_.begin(); it != states_.end();) it = in_use.count(it->first) ? std::next(it) : states_.erase(it);
  board_.set_config_status([&](config_status& c) {
    for (auto it = c.ocsp.begin(); it != c.ocsp.end();) it = in_use.count(it->first) ? std::next(it) : c.ocsp.erase(it);
  });
  return next;
}

}  // namespace kinfra::app
