// Automatic HTTPS against a real ACME CA: Debian's pebble, with pebble-challtestsrv as its DNS
// (every name is 127.0.0.1), all on 127.0.0.1 with ports chosen here. kinfra gets a certificate
// for two names by HTTP-01, serves it by SNI (curl trusting only pebble's root), reuses it after a
// restart, renews it when its lifetime is (made) short, and keeps serving — saying why — when the
// CA cannot validate a name. A lone TLS listener gets its certificate by TLS-ALPN-01.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "http_test.hpp"
#include "proxy/dev_certificates.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool have(const char* program) { return kt::run_shell(std::string("command -v ") + program + " >/dev/null") == 0; }

/** pebble and its DNS, for one test. */
class pebble_ca {
 public:
  /** `ocsp_url`: the OCSP responder its certificates name (none when empty). */
  explicit pebble_ca(const std::string& ocsp_url = "") {
    // Pebble's own API is HTTPS: a certificate for 127.0.0.1 the test (and kinfra's ca_file) trusts.
    kinfra::proxy::tls::make_certificate({"127.0.0.1", "localhost"}, dir_.path() + "/api.crt", dir_.path() + "/api.key");
    std::ofstream(dir_.path() + "/pebble.json")
        << nlohmann::json{{"pebble",
                           {{"listenAddress", "127.0.0.1:" + std::to_string(api_port)},
                            {"managementListenAddress", "127.0.0.1:" + std::to_string(management_port)},
                            {"certificate", dir_.path() + "/api.crt"},
                            {"privateKey", dir_.path() + "/api.key"},
                            {"httpPort", http_port},
                            {"tlsPort", tls_port},
                            {"ocspResponderURL", ocsp_url},
                            {"externalAccountBindingRequired", false}}}}
               .dump();
    dns_ = std::make_unique<kt::child_process>(
        std::vector<std::string>{"pebble-challtestsrv", "-management", "127.0.0.1:" + std::to_string(kt::free_port()),
                                 "-dns01", "127.0.0.1:" + std::to_string(dns_port), "-http01", "", "-https01", "",
                                 "-tlsalpn01", "", "-defaultIPv6", ""},
        std::vector<std::string>{}, dir_.path() + "/dns.log");
    pebble_ = std::make_unique<kt::child_process>(
        std::vector<std::string>{"pebble", "-config", dir_.path() + "/pebble.json", "-dnsserver",
                                 "127.0.0.1:" + std::to_string(dns_port)},
        // No random sleeps or rejected nonces: the test is about kinfra, not pebble's chaos.
        std::vector<std::string>{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}, dir_.path() + "/pebble.log");
    std::string out;
    ready_ = kt::wait_until([&] {
      return kt::run_shell("curl -sf --cacert '" + api_cert() + "' https://127.0.0.1:" + std::to_string(management_port) +
                               "/roots/0 -o '" + root() + "'",
                           &out) == 0;
    }, 15s);
  }

  bool ready() const { return ready_; }
  std::string directory() const { return "https://127.0.0.1:" + std::to_string(api_port) + "/dir"; }
  std::string api_cert() const { return dir_.path() + "/api.crt"; }
  std::string api_key() const { return dir_.path() + "/api.key"; }
  /** Pebble's root (changes with each pebble): what a client trusts to verify kinfra. */
  std::string root() const { return dir_.path() + "/root.pem"; }
  std::string log() const { return pebble_->log() + dns_->log(); }
  /** GETs `path` of pebble's management API into `file`. */
  bool fetch(const std::string& path, const std::string& file) const {
    return kt::run_shell("curl -sf --cacert '" + api_cert() + "' https://127.0.0.1:" + std::to_string(management_port) +
                         path + " -o '" + file + "'") == 0;
  }

  const std::uint16_t http_port = kt::free_port();  ///< where pebble's VA asks for HTTP-01 answers
  const std::uint16_t tls_port = kt::free_port();   ///< where it makes TLS-ALPN-01 handshakes
  const std::uint16_t api_port = kt::free_port();
  const std::uint16_t management_port = kt::free_port();
  const std::uint16_t dns_port = kt::free_port();

 private:
  kt::temp_dir dir_;
  std::unique_ptr<kt::child_process> dns_;
  std::unique_ptr<kt::child_process> pebble_;
  bool ready_ = false;
};

std::string acme_routes(const pebble_ca& ca, const std::string& state, const std::string& upstream, bool plain = true,
                        std::uint16_t tls_port = 0, const std::string& directory = "") {
  std::string yaml = "listen:\n";
  if (plain) yaml += "  - 127.0.0.1:" + std::to_string(ca.http_port) + "\n";
  return yaml + "  - address: 127.0.0.1:" + std::to_string(tls_port) + "\n    tls:\n      acme: { email: ops@example.com, names: [a.example.com, "
                "b.example.com], directory: \"" + (directory.empty() ? ca.directory() : directory) + "\", ca_file: " + ca.api_cert() + " }\n"
                "state_dir: " + state + "\nadmin_listen: 127.0.0.1:0\nroutes: [{ path: /, service: web }]\n"
                "services:\n  web: { url: \"" + upstream + "\", health: off }\n";
}

/** The first certificate of /__status__ (an empty object when there is none). */
nlohmann::json certificate(const kt::kinfra_process& k) {
  auto doc = nlohmann::json::parse(kt::http_get(k.admin_port(), "/__status__").body, nullptr, false);
  if (!doc.is_object() || doc["certificates"].empty()) return nlohmann::json::object();
  return doc["certificates"][0];
}

/** curl's answer for https://NAME:PORT/ trusting only `root`. */
int curl_status(const std::string& name, std::uint16_t port, const std::string& root, std::string* out) {
  out->clear();
  const std::string p = std::to_string(port);
  return kt::run_shell("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert '" + root +
                           "' --capath /nonexistent --resolve " + name + ":" + p + ":127.0.0.1 https://" + name + ":" +
                           p + "/ 2>&1",
                       out);
}

#define NEED_PEBBLE_PROGRAMS()                                                                       \
  if (!have("pebble") || !have("pebble-challtestsrv") || !have("curl"))                            \
    GTEST_SKIP() << "pebble, pebble-challtestsrv and curl are needed (scripts/install-deps.sh --test)"
#define NEED_PEBBLE()    \
  NEED_PEBBLE_PROGRAMS(); \
  pebble_ca ca;          \
  ASSERT_TRUE(ca.ready()) << ca.log()

}  // namespace

TEST(Acme, GetsACertificateByHttp01ServesItBySniAndReusesItAfterARestart) {
  NEED_PEBBLE();
  kt::test_upstream up;
  kt::temp_dir state;
  const std::string routes = acme_routes(ca, state.path(), up.url());
  std::string fingerprint;
  {
    kt::kinfra_process k(routes, false);
    ASSERT_TRUE(kt::wait_until([&] { return certificate(k).value("source", "") == "ACME"; }, 30s)) << k.log() << ca.log();
    auto cert = certificate(k);
    EXPECT_EQ(cert["names"], nlohmann::json({"a.example.com", "b.example.com"}));
    EXPECT_EQ(cert["acme"]["last_error"], "");
    EXPECT_FALSE(cert["acme"]["next_renewal"].is_null());
    fingerprint = cert["fingerprint"];
    std::string out;
    for (const char* name : {"a.example.com", "b.example.com"}) {
      EXPECT_EQ(curl_status(name, k.port(1), ca.root(), &out), 0) << name << ": " << out;
      EXPECT_EQ(out, "200");
    }
    // /metrics: when it expires, and how the ACME requests went.
    const std::string metrics = kt::http_get(k.admin_port(), "/metrics").body;
    EXPECT_NE(metrics.find("kinfra_tls_certificate_expiry_seconds{name=\"a.example.com\""), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("kinfra_acme_certificates_total{name=\"a.example.com\",result=\"success\"} 1"),
              std::string::npos)
        << metrics;
    // The account key and the certificate's key are kept private.
    for (const auto& e : fs::directory_iterator(state.path() + "/acme")) {
      if (e.path().extension() == ".key") {
        EXPECT_EQ(fs::status(e.path()).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
      }
    }
    EXPECT_EQ(fs::status(state.path() + "/acme/certificates/a.example.com.pem").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
  }
  {
    kt::kinfra_process again(routes, false);
    EXPECT_EQ(certificate(again).value("source", ""), "ACME") << "served from state_dir at once";
    EXPECT_EQ(certificate(again).value("fingerprint", ""), fingerprint);
    EXPECT_EQ(again.log().find("ordered a certificate"), std::string::npos) << again.log();
  }
  // Another key_type: a new certificate (with an RSA key) at once, not at the next renewal.
  std::string rsa_routes = routes;
  rsa_routes.replace(rsa_routes.find("ca_file:"), 0, "key_type: rsa2048, ");
  kt::kinfra_process rsa(rsa_routes, false);
  ASSERT_TRUE(kt::wait_until([&] {
    auto c = certificate(rsa);
    return c.value("source", "") == "ACME" && c.value("fingerprint", "") != fingerprint;
  }, 30s)) << rsa.log();
  std::string out;
  kt::run_shell("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(rsa.port(1)) +
                    " -servername a.example.com 2>/dev/null | openssl x509 -noout -text | grep 'Public Key Algorithm'",
                &out);
  EXPECT_NE(out.find("rsaEncryption"), std::string::npos) << out;
}

/** The lines of `openssl s_client` (with `flags`, for `name`) that match the regular expression `lines`. */
std::string s_client(const std::string& name, std::uint16_t port, const std::string& flags, const std::string& lines) {
  std::string out;
  kt::run_shell("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -servername " + name +
                    " " + flags + " 2>&1 | grep -E '" + lines + "'",
                &out);
  return out;
}

/** The ALPN protocol the listener chose for a ClientHello offering only `acme-tls/1` for `name`, and the subject. */
std::string alpn_handshake(const std::string& name, std::uint16_t port) {
  return s_client(name, port, "-alpn acme-tls/1", "^(ALPN protocol|No ALPN)|^subject=");
}

TEST(Acme, ALoneTlsListenerGetsItsCertificateByTlsAlpn01) {
  NEED_PEBBLE();
  kt::test_upstream up;
  kt::temp_dir state;
  // No plain listener at all: the CA's validation is a handshake on the TLS listener (RFC 8737).
  kt::kinfra_process k(acme_routes(ca, state.path(), up.url(), /*plain=*/false, ca.tls_port), false);
  ASSERT_TRUE(kt::wait_until([&] { return certificate(k).value("source", "") == "ACME"; }, 30s)) << k.log() << ca.log();
  EXPECT_NE(k.log().find("the CA validated a.example.com (tls-alpn-01)"), std::string::npos) << k.log();
  EXPECT_NE(k.log().find("the CA validated b.example.com (tls-alpn-01)"), std::string::npos) << k.log();
  std::string out;
  for (const char* name : {"a.example.com", "b.example.com"}) {
    EXPECT_EQ(curl_status(name, ca.tls_port, ca.root(), &out), 0) << name << ": " << out;
    EXPECT_EQ(out, "200");
  }
  // The challenge certificates are gone with the validation: a client offering acme-tls/1 now
  // gets the listener's certificate and no acme-tls/1.
  const std::string after = alpn_handshake("a.example.com", ca.tls_port);
  EXPECT_NE(after.find("No ALPN"), std::string::npos) << after;
  EXPECT_EQ(after.find("acme-tls/1"), std::string::npos) << after;
}

TEST(Acme, RenewsWhenTheRemainingLifetimeIsShort) {
  NEED_PEBBLE();
  kt::test_upstream up;
  kt::temp_dir state;
  const std::string routes = acme_routes(ca, state.path(), up.url());
  std::string first;
  {
    kt::kinfra_process k(routes, false);
    ASSERT_TRUE(kt::wait_until([&] { return certificate(k).value("source", "") == "ACME"; }, 30s)) << k.log();
    first = certificate(k)["fingerprint"];
  }
  // Renew after a billionth of the lifetime (pebble's are five years: a fraction of a second): the
  // certificate in state_dir is due, and is replaced while it is served.
  ::setenv("KINFRA_ACME_RENEW_AT", "0.000000001", 1);
  kt::kinfra_process k(routes, false);
  ::unsetenv("KINFRA_ACME_RENEW_AT");
  ASSERT_TRUE(kt::wait_until([&] {
    auto c = certificate(k);
    return c.value("source", "") == "ACME" && c.value("fingerprint", "") != first;
  }, 30s)) << k.log();
  EXPECT_NE(k.log().find("renewing the certificate"), std::string::npos) << k.log();
  std::string out;
  EXPECT_EQ(curl_status("a.example.com", k.port(1), ca.root(), &out), 0) << out;
}

TEST(Acme, RenewsInsideTheWindowTheCaSuggestsByRenewalInformation) {
  NEED_PEBBLE();
  kt::test_upstream up;
  kt::temp_dir state;
  // Pebble 2.4 has no ARI: a directory in front of it adds renewalInfo (everything else is pebble's).
  const std::uint16_t port = kt::free_port();
  kt::child_process ari({"python3", std::string(KINFRA_SOURCE_DIR) + "/tests/helper/ari_directory.py",
                         std::to_string(port), ca.api_cert(), ca.api_key(), ca.directory(),
                         state.path() + "/acme/certificates/a.example.com.pem"},
                        {}, state.path() + "/ari.log");
  const std::string directory = "https://127.0.0.1:" + std::to_string(port) + "/dir";
  ASSERT_TRUE(kt::wait_until([&] {
    return kt::run_shell("curl -sf --cacert '" + ca.api_cert() + "' " + directory + " -o /dev/null") == 0;
  }, 20s)) << ari.log();
  const std::string routes = acme_routes(ca, state.path(), up.url(), true, 0, directory);
  std::string first;
  {
    kt::kinfra_process k(routes, false);
    ASSERT_TRUE(kt::wait_until([&] { return certificate(k).value("source", "") == "ACME"; }, 30s)) << k.log();
    first = certificate(k)["fingerprint"];
  }
  // At the next start kinfra asks about its certificate; the CA's window is already over: renewed now
  // (two thirds of pebble's five years are far away).
  kt::kinfra_process k(routes, false);
  ASSERT_TRUE(kt::wait_until([&] {
    auto c = certificate(k);
    return c.value("source", "") == "ACME" && c.value("fingerprint", "") != first;
  }, 30s)) << k.log() << ari.log();
  EXPECT_NE(k.log().find("the CA suggests renewing the certificate for a.example.com between"), std::string::npos)
      << k.log();
  EXPECT_NE(k.log().find("https://ca.example/incident"), std::string::npos) << k.log();
  EXPECT_EQ(k.log().find("refused the order as a replacement"), std::string::npos) << k.log();
  EXPECT_EQ(ari.log().find("unknown certificate"), std::string::npos) << "the ARI id kinfra sent: " << ari.log();
  std::string out;
  EXPECT_EQ(curl_status("a.example.com", k.port(1), ca.root(), &out), 0) << out;
}

TEST(Acme, ACaThatCannotValidateLeavesKinfraServingAndSaysWhy) {
  NEED_PEBBLE();
  kt::test_upstream up;
  kt::temp_dir state;
  // No plain listener, and the TLS listener is not on the port pebble checks: every validation fails.
  kt::kinfra_process k(acme_routes(ca, state.path(), up.url(), /*plain=*/false), false);
  ASSERT_TRUE(kt::wait_until([&] {
    auto c = certificate(k);
    return c.contains("acme") && c["acme"].is_object() && !c["acme"].value("last_error", "").empty();
  }, 30s)) << k.log();
  auto cert = certificate(k);
  EXPECT_EQ(cert["source"], "temporary (waiting for ACME)");
  EXPECT_NE(cert["acme"]["last_error"].get<std::string>().find("could not validate"), std::string::npos) << cert.dump();
  EXPECT_GE(cert["acme"]["failures"].get<int>(), 1);
  // `kinfra routes` says it too.
  auto routes = kt::run_kinfra({"routes", "--url", "http://127.0.0.1:" + std::to_string(k.admin_port())});
  EXPECT_NE(routes.out.find("ACME failed: "), std::string::npos) << routes.out << routes.err;
  EXPECT_NE(k.log().find("acme: no certificate for a.example.com"), std::string::npos) << k.log();
  EXPECT_EQ(kt::http_get(k.admin_port(), "/metrics").body.find("kinfra_acme_certificates_total{name=\"a.example.com\",result=\"failure\"} 0"),
            std::string::npos);
  // Visitors still get an answer over HTTPS (the temporary certificate), not a handshake failure.
  std::string out;
  EXPECT_EQ(kt::run_shell("curl -sk -o /dev/null -w '%{http_code}' --max-time 10 https://127.0.0.1:" +
                              std::to_string(k.port(0)) + "/ 2>&1",
                          &out),
            0)
      << out;
  EXPECT_EQ(out, "200");
}

TEST(Acme, StoppingKinfraDoesNotWaitForACaThatStalls) {
  // A "CA" that accepts connections and never answers: kinfra's order is abandoned at once on stop.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  kt::test_upstream up;
  kt::temp_dir state;
  kt::kinfra_process k("listen:\n  - address: 127.0.0.1:0\n    tls: { acme: { names: [a.example.com], directory: "
                       "\"https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/dir\" } }\nstate_dir: " +
                           state.path() + "\nadmin_listen: off\nroutes: [{ path: /, service: web }]\n"
                           "services:\n  web: { url: \"" + up.url() + "\", health: off }\n",
                       false);
  ASSERT_TRUE(kt::wait_until([&] { return k.log().find("acme: getting a certificate") != std::string::npos; }, 10s));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(k.stop(20s), 0) << k.log();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s) << "the stop waited for the CA";
  ::close(fd);
}

/** What `openssl s_client -status` says about the stapled OCSP response for `name`. */
std::string stapled(const std::string& name, std::uint16_t port) {
  return s_client(name, port, "-status", "OCSP response:|OCSP Response Status|Cert Status");
}

bool have_python_cryptography() { return kt::run_shell("python3 -c 'import cryptography' 2>/dev/null") == 0; }

/** Pebble whose certificates name an OCSP responder, and that responder (tests/helper/ocsp_responder.py). */
struct ocsp_setup {
  const std::uint16_t responder_port = kt::free_port();
  pebble_ca ca{"http://127.0.0.1:" + std::to_string(responder_port) + "/"};
  kt::temp_dir dir;
  const std::string state = dir.path() + "/state";
  std::unique_ptr<kt::child_process> responder;

  /** Starts the responder answering `mode` (good, revoked, unknown, stranger); false when it does not listen. */
  bool start(const std::string& mode) {
    set_mode(mode);
    if (!ca.fetch("/intermediates/0", dir.path() + "/issuer.pem") ||
        !ca.fetch("/intermediate-keys/0", dir.path() + "/issuer.key"))
      return false;
    responder = std::make_unique<kt::child_process>(
        std::vector<std::string>{"python3", std::string(KINFRA_SOURCE_DIR) + "/tests/helper/ocsp_responder.py",
                                 std::to_string(responder_port), dir.path() + "/issuer.pem", dir.path() + "/issuer.key",
                                 state + "/acme/certificates/a.example.com.pem", dir.path() + "/mode"},
        std::vector<std::string>{}, dir.path() + "/responder.log");
    return kt::wait_until([&] {  // (any answer: it listens)
      return kt::run_shell("curl -s -o /dev/null http://127.0.0.1:" + std::to_string(responder_port) + "/") == 0;
    }, 20s);
  }
  void set_mode(const std::string& mode) { std::ofstream(dir.path() + "/mode") << mode; }
};

#define NEED_OCSP_SETUP(setup)                                                                                  \
  NEED_PEBBLE_PROGRAMS();                                                                                       \
  if (!have_python_cryptography()) GTEST_SKIP() << "python3-cryptography is needed (scripts/install-deps.sh --test)"; \
  ocsp_setup setup;                                                                                             \
  ASSERT_TRUE(setup.ca.ready()) << setup.ca.log()

TEST(Acme, TheCertificatesOcspResponseIsStapledAndAResponderThatIsDownBlocksNothing) {
  NEED_OCSP_SETUP(o);
  auto& ca = o.ca;
  const std::string& state = o.state;
  const std::uint16_t responder_port = o.responder_port;
  ASSERT_TRUE(o.start("good")) << (o.responder ? o.responder->log() : "");
  auto& responder = o.responder;
  kt::test_upstream up;
  const std::string routes = acme_routes(ca, state, up.url());
  {
    kt::kinfra_process k(routes, false);
    ASSERT_TRUE(kt::wait_until([&] { return certificate(k).value("source", "") == "ACME"; }, 30s)) << k.log();
    ASSERT_TRUE(kt::wait_until([&] {
      auto c = certificate(k);
      return c["ocsp"].is_object() && c["ocsp"].value("status", "") == "good";
    }, 20s)) << k.log() << responder->log() << certificate(k).dump();
    auto ocsp = certificate(k)["ocsp"];
    EXPECT_EQ(ocsp["url"], "http://127.0.0.1:" + std::to_string(responder_port) + "/");
    EXPECT_EQ(ocsp["last_error"], "");
    EXPECT_FALSE(ocsp["next_update"].is_null());
    const std::string s = stapled("a.example.com", k.port(1));
    EXPECT_NE(s.find("OCSP Response Status: successful"), std::string::npos) << s;
    EXPECT_NE(s.find("Cert Status: good"), std::string::npos) << s;
    EXPECT_NE(k.log().find("ocsp: stapling the responder's answer for a.example.com: good"), std::string::npos)
        << k.log();
  }
  // The responder is gone. After a restart the answer kept in state_dir is stapled at once.
  responder.reset();
  {
    kt::kinfra_process k(routes, false);
    ASSERT_TRUE(kt::wait_until([&] { return certificate(k)["ocsp"].value("status", "") == "good"; }, 20s)) << k.log();
    const std::string s = stapled("a.example.com", k.port(1));
    EXPECT_NE(s.find("Cert Status: good"), std::string::npos) << s;
    EXPECT_NE(k.log().find("ocsp: stapling the kept answer"), std::string::npos) << k.log();
  }
  // Without it, kinfra starts, serves, says why there is no staple, and never waits for one.
  fs::remove_all(state + "/ocsp");
  kt::kinfra_process k(routes, false);
  ASSERT_TRUE(kt::wait_until([&] {
    auto c = certificate(k);
    return c["ocsp"].is_object() && !c["ocsp"].value("last_error", "").empty();
  }, 20s)) << k.log();
  EXPECT_FALSE(certificate(k)["ocsp"]["next_fetch"].is_null());
  std::string out;
  EXPECT_EQ(curl_status("a.example.com", k.port(1), ca.root(), &out), 0) << out;
  EXPECT_EQ(out, "200");
  const std::string none = stapled("a.example.com", k.port(1));
  EXPECT_NE(none.find("no response sent"), std::string::npos) << none;
}

TEST(Acme, OcspAnswersThatAreNotGoodOrNotFromTheIssuerAreNotStapled) {
  NEED_OCSP_SETUP(o);
  ASSERT_TRUE(o.start("stranger")) << (o.responder ? o.responder->log() : "");
  kt::test_upstream up;
  const std::string routes = acme_routes(o.ca, o.state, up.url());
  auto ocsp_of = [](const kt::kinfra_process& k) { return certificate(k)["ocsp"]; };
  auto wait_error = [&](const kt::kinfra_process& k) {
    return kt::wait_until([&] {
      auto c = ocsp_of(k);
      return c.is_object() && !c.value("last_error", "").empty();
    }, 30s);
  };
  for (const std::string mode : {"stranger", "unknown", "revoked"}) {
    o.set_mode(mode);
    fs::remove_all(o.state + "/ocsp");
    kt::kinfra_process k(routes, false);
    ASSERT_TRUE(wait_error(k)) << mode << "\n" << k.log() << o.responder->log();
    const std::string error = ocsp_of(k).value("last_error", "");
    const std::string s = stapled("a.example.com", k.port(1));
    EXPECT_NE(s.find("no response sent"), std::string::npos) << mode << ": " << s;
    if (mode == "stranger") {
      EXPECT_NE(error.find("not signed by the certificate's issuer"), std::string::npos) << error;
    }
    if (mode == "unknown") {
      EXPECT_NE(error.find("does not know this certificate"), std::string::npos) << error;
    }
    if (mode == "revoked") {
      EXPECT_NE(error.find("revoked"), std::string::npos) << error;
      EXPECT_EQ(ocsp_of(k).value("status", ""), "revoked");
      EXPECT_NE(k.log().find("is REVOKED"), std::string::npos) << k.log();
    }
    EXPECT_FALSE(fs::exists(o.state + "/ocsp")) << mode << ": nothing is kept";
  }
}

TEST(Acme, ACaThatRateLimitsIsNotAskedAgainBeforeItsRetryAfter) {
  if (!have("python3") || !have("curl")) GTEST_SKIP() << "python3 and curl are needed";
  kt::temp_dir dir;
  kinfra::proxy::tls::make_certificate({"127.0.0.1"}, dir.path() + "/ca.crt", dir.path() + "/ca.key");
  const std::uint16_t port = kt::free_port();
  kt::child_process ca({"python3", std::string(KINFRA_SOURCE_DIR) + "/tests/helper/busy_ca.py", std::to_string(port),
                        dir.path() + "/ca.crt", dir.path() + "/ca.key"},
                       {}, dir.path() + "/ca.log");
  const std::string directory = "https://127.0.0.1:" + std::to_string(port) + "/dir";
  ASSERT_TRUE(kt::wait_until([&] {
    return kt::run_shell("curl -sf --cacert '" + dir.path() + "/ca.crt' " + directory + " -o /dev/null") == 0;
  }, 10s)) << ca.log();
  kt::test_upstream up;
  kt::kinfra_process k("listen:\n  - address: 127.0.0.1:0\n    tls: { acme: { names: [a.example.com], directory: \"" +
                           directory + "\", ca_file: " + dir.path() + "/ca.crt } }\nstate_dir: " + dir.path() +
                           "/state\nadmin_listen: 127.0.0.1:0\nroutes: [{ path: /, service: web }]\n"
                           "services:\n  web: { url: \"" + up.url() + "\", health: off }\n",
                       false);
  ASSERT_TRUE(kt::wait_until([&] {
    auto c = certificate(k);
    return c.contains("acme") && c["acme"].is_object() && !c["acme"].value("last_error", "").empty();
  }, 20s)) << k.log() << ca.log();
  auto acme = certificate(k)["acme"];
  EXPECT_NE(acme["last_error"].get<std::string>().find("rateLimited"), std::string::npos) << acme.dump();
  // The next attempt is two hours away (the CA's HTTP-date), not the 30 s backoff.
  std::tm tm{};
  const std::string next = acme.value("next_attempt", "");
  ASSERT_NE(::strptime(next.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), nullptr) << acme.dump();
  const auto wait = ::timegm(&tm) - std::time(nullptr);
  EXPECT_GT(wait, 7000) << acme.dump();
  EXPECT_LE(wait, 7201) << acme.dump();
  EXPECT_NE(k.log().find("trying again in 7"), std::string::npos) << k.log();
}

TEST(AcmeConfig, NamesACaCannotIssueForAndOverlappingListenersAreRefused) {
  kt::temp_dir dir;
  auto check = [&](const std::string& names, const std::string& second = "") {
    std::string yaml = "listen:\n  - address: 127.0.0.1:0\n    tls: { acme: { names: " + names + " } }\n";
    if (!second.empty()) yaml += "  - address: 127.0.0.1:0\n    tls: { acme: { names: " + second + " } }\n";
    return kt::run_kinfra({"check", dir.write("routes.yaml", yaml + "routes: []\nservices: {}\n")});
  };
  for (const char* bad : {"[\"*.example.com\"]", "[1.2.3.4]", "[example.com.]", "[a_b.example.com]", "[localhost]",
                          "[example.com, example.com]"}) {
    auto r = check(bad);
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.err.find("acme name"), std::string::npos) << bad << ": " << r.err;
  }
  EXPECT_EQ(check("[a.example.com, b.example.com]").exit_code, 0);
  // HTTP-01 is asked on a plain listener: without one, it cannot work.
  auto http01 = check("[a.example.com], challenge: http-01");
  EXPECT_EQ(http01.exit_code, 1);
  EXPECT_NE(http01.err.find("needs a plain HTTP listener"), std::string::npos) << http01.err;
  EXPECT_EQ(check("[a.example.com], challenge: tls-alpn-01").exit_code, 0);
  // The plain listener may come after the TLS one.
  auto later = kt::run_kinfra({"check", dir.write("later.yaml", "listen:\n  - address: 127.0.0.1:0\n    tls: { acme: { names: "
                                                                 "[a.example.com], challenge: http-01 } }\n  - 127.0.0.1:0\n"
                                                                 "routes: []\nservices: {}\n")});
  EXPECT_EQ(later.exit_code, 0) << later.err;
  auto unknown = check("[a.example.com], challenge: dns-01");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("acme challenge must be"), std::string::npos) << unknown.err;
  EXPECT_EQ(check("[a.example.com, b.example.com]", "[b.example.com, a.example.com]").exit_code, 0) << "the same set";
  auto overlap = check("[a.example.com, b.example.com]", "[a.example.com, c.example.com]");
  EXPECT_EQ(overlap.exit_code, 1);
  EXPECT_NE(overlap.err.find("also in another listener"), std::string::npos) << overlap.err;
}
