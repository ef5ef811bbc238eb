// HTTPS on kinfra's listeners and TLS to https:// services, through the real executable.
// Certificates are made at test time with the openssl command (a root, an intermediate, and
// leaves served as full chains), except the expired one, which needs a date in the past.

#include <gtest/gtest.h>
// tls_options are written with designated initializers, naming only what a test sets.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "http_test.hpp"
#include "proxy/dev_certificates.hpp"
#include "proxy/tls.hpp"
#include "websocket_test.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int tls1_1 = 0x0302;
constexpr int tls1_2 = 0x0303;

/** A root CA, an intermediate, leaves for a.test (+ localhost, 127.0.0.1) and *.b.test, and odd files. */
class certificates {
 public:
  certificates() {
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30"
       " -subj '/CN=kinfra test root' -addext 'basicConstraints=critical,CA:TRUE'"
       " -addext 'keyUsage=critical,keyCertSign,cRLSign'");
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.pem"
       " -days 30 -subj '/CN=some other root' -addext 'basicConstraints=critical,CA:TRUE'");
    dir_.write("int.ext", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
    sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr"
       " -subj '/CN=kinfra test intermediate'");
    sh("openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out int.pem"
       " -extfile int.ext");
    leaf("a", "a.test", "DNS:a.test,DNS:localhost,IP:127.0.0.1");
    leaf("b", "b.test", "DNS:*.b.test");
    kinfra::proxy::tls::make_certificate({"old.test"}, path("expired.pem"), path("expired.key"), "", "", false, -60,
                                         30);
  }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

 private:
  void sh(const std::string& command) {
    std::string out;
    if (kt::run_shell("cd " + dir_.path() + " && " + command, &out) != 0)
      throw std::runtime_error("openssl failed: " + command + "\n" + out);
  }
  /** `name`.pem is the full chain (leaf, then intermediate); `name`.key its key. */
  void leaf(const std::string& name, const std::string& cn, const std::string& san) {
    dir_.write(name + ".ext", "subjectAltName=" + san + "\nextendedKeyUsage=serverAuth\n");
    sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name + ".key -out " + name +
       ".csr -subj '/CN=" + cn + "'");
    sh("openssl x509 -req -in " + name + ".csr -CA int.pem -CAkey int.key -CAcreateserial -days 30 -out " + name +
       ".leaf.pem -extfile " + name + ".ext");
    sh("cat " + name + ".leaf.pem int.pem > " + name + ".pem");
  }
  kt::temp_dir dir_;
};

std::string fingerprint_line(const std::string& log, const std::string& cert_path) {
  std::smatch m;
  std::regex re("certificate " + cert_path + " for [^\n]*SHA-256 fingerprint ([0-9A-F:]+)");
  return std::regex_search(log, m, re) ? m[1].str() : "";
}

class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new certificates(); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }
  static std::string cert(const std::string& name) { return certs_->path(name); }

  /** routes.yaml with an HTTPS listener (a.test first, then *.b.test) and a redirecting one. */
  static std::string https_routes(const std::string& upstream_url, const std::string& extra = "") {
    return "listen:\n"
           "  - address: 127.0.0.1:0\n"
           "    tls:\n"
           "      - { cert: " + cert("a.pem") + ", key: " + cert("a.key") + " }\n"
           "      - { cert: " + cert("b.pem") + ", key: " + cert("b.key") + " }\n"
           "  - { address: 127.0.0.1:0, redirect_to_https: true, plain_paths: [/__status__] }\n"
           "admin_listen: 127.0.0.1:0\n"
           "routes: [{ path: /, service: echo }]\n"
           "services:\n"
           "  echo: { url: \"" + upstream_url + "\", health: off }\n" + extra;
  }

  static certificates* certs_;
};
certificates* Tls::certs_ = nullptr;

kt::response tls_get(std::uint16_t port, const std::string& target, const kt::tls_options& o,
                     const std::string& host = "a.test") {
  kt::tls_info info;
  auto c = kt::connect_tls(port, o, info);
  kt::response res;
  if (!info.ok) return res;
  c->send("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  c->read_response(res);
  return res;
}

TEST_F(Tls, ChoosesTheCertificateBySniWithADefault) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url()), false);
  auto hello = [&](const std::string& sni) {
    kt::tls_info info;
    kt::connect_tls(k.port(0), {.sni = sni}, info);
    EXPECT_TRUE(info.ok) << sni << ": " << info.error;
    return info.subject_cn;
  };
  EXPECT_EQ(hello("a.test"), "a.test");
  EXPECT_EQ(hello("x.b.test"), "b.test");   // wildcard from the certificate's SAN
  EXPECT_EQ(hello("X.B.Test"), "b.test");   // names are case-insensitive
  EXPECT_EQ(hello(""), "a.test");           // no SNI: the first certificate
  EXPECT_EQ(hello("unknown.test"), "a.test");
  EXPECT_EQ(hello("b.test"), "a.test");     // *.b.test does not cover b.test itself

  // The chain (leaf + intermediate) verifies against the root alone, by name, with curl.
  std::string out;
  int rc = kt::run_shell("curl -sS --max-time 10 --cacert " + cert("ca.pem") + " --resolve x.b.test:" +
                             std::to_string(k.port(0)) + ":127.0.0.1 https://x.b.test:" + std::to_string(k.port(0)) +
                             "/hello?x=1",
                         &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("GET /hello?x=1"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Forwarded-Proto: https"), std::string::npos) << out;

  // And with openssl s_client without SNI: the default certificate.
  out.clear();
  kt::run_shell("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(k.port(0)) +
                    " -noservername -CAfile " + cert("ca.pem"),
                &out);
  EXPECT_NE(out.find("subject=CN = a.test"), std::string::npos) << out;
  EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
}

TEST_F(Tls, AnIdleHttpsConnectionIsHeldDormantWithItsTlsStateAndGoesOn) {
  // An HTTPS connection idle past a second rests without its session, as a plain one does; its
  // TLS state goes with it, and the next request on it is answered as if nothing happened.
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url(), "timeouts: { idle: 60s }\n"), false);
  kt::tls_info info;
  auto secure = kt::connect_tls(k.port(0), {.sni = "a.test"}, info);
  ASSERT_TRUE(info.ok) << info.error;
  auto ask = [](kt::socket_conn& c) {
    c.send("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
    kt::response res;
    return c.read_response(res) ? res.status : 0;
  };
  ASSERT_EQ(ask(*secure), 200);
  auto dormant = [&] { return kt::metric_value(k.admin_port(), "kinfra_connections_dormant"); };
  ASSERT_TRUE(kt::wait_until([&] { return dormant() == 1; })) << dormant();
  EXPECT_EQ(ask(*secure), 200) << "the request after the rest, on the same TLS connection";
  EXPECT_EQ(ask(*secure), 200);
  // Dormant again, then the client goes: the connection ends there (none left open).
  ASSERT_TRUE(kt::wait_until([&] { return dormant() == 1; })) << dormant();
  const long open = kt::metric_value(k.admin_port(), "kinfra_connections_active");
  secure.reset();
  EXPECT_TRUE(kt::wait_until([&] {
    return dormant() == 0 && kt::metric_value(k.admin_port(), "kinfra_connections_active") == open - 1;
  }));
}

TEST_F(Tls, ADormantHttpsConnectionWokenByPartOfARecordWaitsForTheRestButNotPastItsIdleDeadline) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url(), "timeouts: { idle: 4s }\n"), false);
  auto dormant = [&] { return kt::metric_value(k.admin_port(), "kinfra_connections_dormant"); };
  auto open_one = [&] {
    kt::tls_info info;
    auto c = kt::connect_tls(k.port(0), {.sni = "a.test", .alpn = "http/1.1"}, info);
    EXPECT_TRUE(info.ok) << info.error;
    c->send("GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n");
    kt::response res;
    EXPECT_TRUE(c->read_response(res));
    return c;
  };
  // The next request's record arrives in three pieces: inside the record header, inside its
  // body, and the rest after the connection went dormant again holding half a record. The
  // session that wakes then reads it into one record and answers.
  auto c = open_one();
  ASSERT_TRUE(kt::wait_until([&] { return dormant() == 1; })) << dormant();
  const std::string record = c->seal("GET /second HTTP/1.1\r\nHost: a.test\r\n\r\n");
  ASSERT_GT(record.size(), 20u);
  ASSERT_TRUE(c->send_raw(record.substr(0, 3)));
  ASSERT_TRUE(kt::wait_until([&] { return dormant() == 0; })) << "the first bytes wake it";
  ASSERT_TRUE(c->send_raw(record.substr(3, 10)));
  ASSERT_TRUE(kt::wait_until([&] { return dormant() == 1; })) << "half a record, then a rest";
  ASSERT_TRUE(c->send_raw(record.substr(13)));
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body.rfind("GET /second\n", 0), 0u) << res.body;
  c.reset();
  ASSERT_TRUE(kt::wait_until([&] { return dormant() == 0; }));
  // A record that only ever trickles in does not keep the connection past its idle deadline
  // (4 s after its last answer), nor is it closed long before: one byte every 300 ms.
  auto slow = open_one();
  const auto answered = std::chrono::steady_clock::now();
  ASSERT_TRUE(kt::wait_until([&] { return dormant() == 1; }));
  const std::string trickle = slow->seal("GET /never HTTP/1.1\r\nHost: a.test\r\nX-Pad: " + std::string(200, 'p') +
                                         "\r\n\r\n");
  std::size_t sent = 0;
  for (; sent < trickle.size(); ++sent) {
    if (!slow->send_raw(trickle.substr(sent, 1), 1s) || slow->wait_closed(300ms)) break;
  }
  const auto closed_after = std::chrono::steady_clock::now() - answered;
  EXPECT_LT(sent, trickle.size()) << "the whole record went in: the idle deadline moved with each byte";
  EXPECT_GE(closed_after, 3500ms) << "closed before its idle deadline: the trickled bytes broke the connection";
  EXPECT_TRUE(slow->wait_closed(5s));
}

TEST_F(Tls, SpeaksOnlyTls12And13WithForwardSecrecy) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url()), false);
  kt::tls_info info;
  kt::connect_tls(k.port(0), {.sni = "a.test", .max_version = tls1_1}, info);
  EXPECT_FALSE(info.ok) << "TLS 1.1 was accepted";
  // CBC suites (forward secret, but not AEAD): refused.
  kt::connect_tls(k.port(0), {.sni = "a.test", .max_version = tls1_2, .ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256"}, info);
  EXPECT_FALSE(info.ok) << "a CBC suite was accepted";
  kt::connect_tls(k.port(0), {.sni = "a.test", .max_version = tls1_2}, info);
  EXPECT_TRUE(info.ok) << info.error;
  EXPECT_EQ(info.version, "TLSv1.2");
  kt::connect_tls(k.port(0), {.sni = "a.test"}, info);
  EXPECT_TRUE(info.ok) << info.error;
  EXPECT_EQ(info.version, "TLSv1.3");
  // TLS 1.3 suites in the server's order (AES-128-GCM first), whatever the client's order…
  kt::connect_tls(k.port(0), {.sni = "a.test", .ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"}, info);
  EXPECT_EQ(info.cipher, "TLS_AES_128_GCM_SHA256") << info.error;
  kt::connect_tls(k.port(0), {.sni = "a.test", .ciphersuites = "TLS_AES_256_GCM_SHA384"}, info);
  EXPECT_EQ(info.cipher, "TLS_AES_256_GCM_SHA384") << info.error;
  // …except ChaCha20 for a client that puts it first (one without AES in hardware).
  kt::connect_tls(k.port(0), {.sni = "a.test", .ciphersuites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"},
                  info);
  EXPECT_EQ(info.cipher, "TLS_CHACHA20_POLY1305_SHA256") << info.error;
  kt::connect_tls(k.port(0), {.sni = "a.test", .max_version = tls1_2}, info);
  EXPECT_EQ(info.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256") << info.error;

  std::string out;
  int rc = kt::run_shell("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(k.port(0)) +
                             " -tls1_1 -cipher DEFAULT@SECLEVEL=0",
                         &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("alert protocol version"), std::string::npos) << out;
}

TEST_F(Tls, NegotiatesH2ThenHttp11WithAlpn) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url()), false);
  kt::tls_info info;
  auto c = kt::connect_tls(k.port(0), {.sni = "a.test", .alpn = "h2,http/1.1"}, info);
  ASSERT_TRUE(info.ok) << info.error;
  EXPECT_EQ(info.alpn, "h2");
  // The server's preference decides, whatever the client's order.
  kt::connect_tls(k.port(0), {.sni = "a.test", .alpn = "http/1.1,h2"}, info);
  EXPECT_EQ(info.alpn, "h2");
  kt::connect_tls(k.port(0), {.sni = "a.test", .alpn = "http/1.1"}, info);
  EXPECT_EQ(info.alpn, "http/1.1");
  // A client that offers nothing kinfra speaks gets no ALPN answer and can still speak HTTP/1.1.
  auto res = tls_get(k.port(0), "/only-other", {.sni = "a.test", .alpn = "spdy/3"});
  EXPECT_EQ(res.status, 200);
  kt::connect_tls(k.port(0), {.sni = "a.test", .alpn = "spdy/3"}, info);
  EXPECT_TRUE(info.ok);
  EXPECT_EQ(info.alpn, "");
}

TEST_F(Tls, ResumesSessions) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url()), false);
  // TLS 1.3 tickets arrive after the handshake: take the session after a response.
  kt::tls_info first;
  auto c = kt::connect_tls(k.port(0), {.sni = "a.test"}, first);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_FALSE(first.resumed);
  c->send("GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  auto session = c->tls_session();
  ASSERT_TRUE(session);
  kt::tls_info second;
  auto c2 = kt::connect_tls(k.port(0), {.sni = "a.test", .session = session}, second);
  ASSERT_TRUE(second.ok) << second.error;
  EXPECT_TRUE(second.resumed) << "TLS 1.3 session was not resumed";

  // TLS 1.2 with openssl s_client: the session written by the first run is reused by the second.
  std::string sess = k.dir().path() + "/tls12.session";
  std::string connect = "timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(k.port(0)) +
                        " -servername a.test -tls1_2 ";
  std::string out;
  kt::run_shell("echo | " + connect + "-sess_out " + sess, &out);
  ASSERT_NE(out.find("New, TLSv1.2"), std::string::npos) << out;
  out.clear();
  kt::run_shell("echo | " + connect + "-sess_in " + sess, &out);
  EXPECT_NE(out.find("Reused, TLSv1.2"), std::string::npos) << out;
}

TEST_F(Tls, AnswersPlainHttpOnTheTlsPortWith400) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url()), false);
  auto c = kt::connect_to(k.port(0));
  c->send("GET /plain HTTP/1.1\r\nHost: a.test\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(c->read_response(res, false, 5s));
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("HTTPS"), std::string::npos) << res.body;
  EXPECT_EQ(res.headers.get("Connection"), "close");
  EXPECT_TRUE(c->wait_closed(5s));
  EXPECT_EQ(up.request_count(), 0u);
}

TEST_F(Tls, AFailedHandshakeDisturbsNoOtherConnection) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url()), false);
  // A stalled handshake (one byte of a record) and a garbage record, while others work.
  auto stalled = kt::connect_to(k.port(0));
  stalled->send(std::string("\x16", 1));
  auto garbage = kt::connect_to(k.port(0));
  garbage->send(std::string("\x16\x03\x01\x00\x05hello", 10));
  EXPECT_TRUE(garbage->wait_closed(5s));
  for (int i = 0; i < 5; ++i) {
    auto res = tls_get(k.port(0), "/ok" + std::to_string(i), {.sni = "a.test"});
    EXPECT_EQ(res.status, 200);
  }
  // A client that does not trust the certificate gives up; the next one is served.
  kt::tls_info info;
  kt::connect_tls(k.port(0), {.sni = "a.test", .ca_file = cert("other-ca.pem")}, info);
  EXPECT_FALSE(info.ok);
  EXPECT_EQ(tls_get(k.port(0), "/after", {.sni = "a.test"}).status, 200);
  EXPECT_TRUE(kt::process_alive(k.pid()));
}

TEST_F(Tls, RedirectsPlainHttpToHttpsExceptPlainPaths) {
  kt::test_upstream up;
  kt::kinfra_process k(https_routes(up.url()), false);
  const std::string https_port = std::to_string(k.port(0));
  auto res = kt::http_get(k.port(1), "/some/page?q=1&r=%2F", {{{"Host", "a.test:" + std::to_string(k.port(1))}}});
  EXPECT_EQ(res.status, 308);
  EXPECT_EQ(res.headers.get("Location"), "https://a.test:" + https_port + "/some/page?q=1&r=%2F");
  // A request with a body is redirected too (308 keeps the method and body for the client).
  res = kt::http_request(k.port(1), "POST", "/form", {{{"Host", "Shop.B.Test"}}}, "a=1");
  EXPECT_EQ(res.status, 308);
  EXPECT_EQ(res.headers.get("Location"), "https://shop.b.test:" + https_port + "/form");
  // The dashboard is redirected as well; /__status__ stays on plain HTTP as configured.
  EXPECT_EQ(kt::http_get(k.port(1), "/kinfra").status, 308);
  auto status = kt::http_get(k.port(1), "/__status__");
  EXPECT_EQ(status.status, 200);
  EXPECT_NE(status.body.find("\"service_name\""), std::string::npos);
  EXPECT_EQ(up.request_count(), 0u);
  // Following the redirect with curl lands on the HTTPS listener.
  std::string out;
  int rc = kt::run_shell("curl -sS -L --max-time 10 --cacert " + cert("ca.pem") + " --resolve a.test:" + https_port +
                             ":127.0.0.1 --resolve a.test:" + std::to_string(k.port(1)) + ":127.0.0.1 http://a.test:" +
                             std::to_string(k.port(1)) + "/followed",
                         &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("GET /followed"), std::string::npos) << out;
}

TEST_F(Tls, CarriesWebSockets) {
  kt::test_upstream up(kt::websocket_echo);
  kt::kinfra_process k(https_routes(up.url()), false);
  auto echoes = kt::websocket_roundtrip_tls(k.port(0), "/ws", {"hello", std::string(100000, 'x'), "bye"});
  ASSERT_EQ(echoes.size(), 3u);
  EXPECT_EQ(echoes[0], "hello");
  EXPECT_EQ(echoes[1].size(), 100000u);
  EXPECT_EQ(echoes[2], "bye");
}

TEST_F(Tls, MakesASelfSignedCertificateOnceAndReusesIt) {
  kt::test_upstream up;
  kt::temp_dir state;
  std::string routes = "listen:\n  - address: 127.0.0.1:0\n    tls: { self_signed: true, names: [localhost, dev.test] }\n"
                       "state_dir: " + state.path() + "\nadmin_listen: off\n"
                       "routes: [{ path: /, service: echo }]\nservices:\n  echo: { url: \"" + up.url() +
                       "\", health: off }\n";
  std::string first_fp;
  std::string cert_path;
  {
    kt::kinfra_process k(routes, false);
    for (const auto& e : fs::directory_iterator(state.path() + "/tls")) {
      if (e.path().extension() == ".crt") cert_path = e.path().string();
    }
    ASSERT_FALSE(cert_path.empty());
    std::string key_path = cert_path.substr(0, cert_path.size() - 4) + ".key";
    struct stat st{};
    ASSERT_EQ(::stat(key_path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    first_fp = fingerprint_line(k.log(), cert_path);
    ASSERT_FALSE(first_fp.empty()) << k.log();
    kt::tls_info info;
    // Valid for the configured name, against kinfra's local CA only.
    kt::connect_tls(k.port(0), {.sni = "dev.test", .ca_file = state.path() + "/ca/kinfra-local-ca.crt"}, info);
    ASSERT_TRUE(info.ok) << info.error;
    EXPECT_EQ(info.fingerprint, first_fp);
    EXPECT_EQ(tls_get(k.port(0), "/", {.sni = "localhost"}, "localhost").status, 200);
  }
  kt::kinfra_process again(routes, false);
  kt::tls_info info;
  kt::connect_tls(again.port(0), {.sni = "localhost"}, info);
  ASSERT_TRUE(info.ok) << info.error;
  EXPECT_EQ(info.fingerprint, first_fp) << "the certificate was made again instead of reused";
  EXPECT_EQ(fingerprint_line(again.log(), cert_path), first_fp);
  EXPECT_EQ(again.log().find("made a development certificate"), std::string::npos);
}

TEST_F(Tls, BadCertificateFilesAreNamedByCheckAndAtStartUp) {
  kt::test_upstream up;
  kt::temp_dir dir;
  auto routes_with = [&](const std::string& cert_file, const std::string& key_file) {
    return "listen:\n  - address: 127.0.0.1:0\n    tls:\n      - { cert: " + cert_file + ", key: " + key_file +
           " }\nroutes: [{ path: /, service: echo }]\nservices:\n  echo: { url: \"" + up.url() + "\" }\n";
  };
  struct bad_case {
    std::string cert, key, message;
  };
  std::vector<bad_case> cases = {
      {dir.path() + "/missing.pem", cert("a.key"), "tls cert: cannot read " + dir.path() + "/missing.pem: No such file"},
      {cert("a.pem"), cert("b.key"), "tls key: the key in " + cert("b.key") + " does not match the certificate in " +
                                         cert("a.pem")},
      {cert("expired.pem"), cert("expired.key"), "tls cert: the certificate in " + cert("expired.pem") + " expired on"},
      {cert("a.key"), cert("a.key"), "tls cert: no PEM certificate found in " + cert("a.key")},
      {cert("a.pem"), cert("a.pem"), "tls key: no usable PEM private key in " + cert("a.pem")},
  };
  for (const auto& c : cases) {
    std::string path = dir.write("routes.yaml", routes_with(c.cert, c.key));
    auto r = kt::run_kinfra({"check", path});
    EXPECT_EQ(r.exit_code, 1) << c.message;
    EXPECT_NE(r.err.find(path + ":4:9: " + c.message), std::string::npos) << r.err;
    auto run = kt::run_kinfra({"run", path}, 10s);
    EXPECT_EQ(run.exit_code, 1) << c.message;
    EXPECT_NE((run.out + run.err).find(c.message), std::string::npos) << run.out << run.err;
  }
}

TEST_F(Tls, SighupReloadsCertificatesWithoutDroppingConnections) {
  kt::test_upstream up;
  kt::temp_dir dir;
  fs::copy_file(cert("a.pem"), dir.path() + "/site.pem");
  fs::copy_file(cert("a.key"), dir.path() + "/site.key");
  std::string routes = "listen:\n  - address: 127.0.0.1:0\n    tls: { cert: " + dir.path() + "/site.pem, key: " +
                       dir.path() + "/site.key }\nadmin_listen: off\nroutes: [{ path: /, service: echo }]\n"
                       "services:\n  echo: { url: \"" + up.url() + "\", health: off }\n";
  kt::kinfra_process k(routes, false);
  kt::tls_info before;
  auto open = kt::connect_tls(k.port(0), {.sni = "a.test"}, before);
  ASSERT_TRUE(before.ok);
  EXPECT_EQ(before.subject_cn, "a.test");

  fs::copy_file(cert("b.pem"), dir.path() + "/site.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(cert("b.key"), dir.path() + "/site.key", fs::copy_options::overwrite_existing);
  ::kill(k.pid(), SIGHUP);
  ASSERT_TRUE(kt::wait_until([&] { return k.log().find("reloaded (SIGHUP)") != std::string::npos; }, 5s)) << k.log();
  kt::tls_info after;
  kt::connect_tls(k.port(0), {.sni = "a.test"}, after);
  ASSERT_TRUE(after.ok) << after.error;
  EXPECT_EQ(after.subject_cn, "b.test");
  // The connection opened before the reload still works.
  open->send("GET /still-here HTTP/1.1\r\nHost: a.test\r\n\r\n");
  kt::response res;
  ASSERT_TRUE(open->read_response(res));
  EXPECT_EQ(res.status, 200);

  // A broken file on the next reload changes nothing.
  dir.write("site.key", "not a key\n");
  ::kill(k.pid(), SIGHUP);
  ASSERT_TRUE(kt::wait_until([&] { return k.log().find("not reloaded (SIGHUP)") != std::string::npos; }, 5s))
      << k.log();
  EXPECT_NE(k.log().find("no usable PEM private key in " + dir.path() + "/site.key"), std::string::npos);
  kt::tls_info still;
  kt::connect_tls(k.port(0), {.sni = "a.test"}, still);
  ASSERT_TRUE(still.ok) << still.error;
  EXPECT_EQ(still.subject_cn, "b.test");
}

TEST_F(Tls, VerifiesHttpsServices) {
  kt::test_upstream up;
  // The "service": a kinfra serving HTTPS with the a.test chain in front of the echo upstream.
  kt::kinfra_process service(https_routes(up.url()), false);
  const std::string sp = std::to_string(service.port(0));
  std::string routes =
      "routes:\n"
      "  - { path: /good, service: good }\n  - { path: /wrongca, service: wrongca }\n"
      "  - { path: /wrongname, service: wrongname }\n  - { path: /insecure, service: insecure }\n"
      "  - { path: /byip, service: byip }\n"
      "services:\n"
      "  good:\n    url: https://localhost:" + sp + "\n    tls: { ca_file: " + cert("ca.pem") +
      " }\n    health: { http: /health, interval: 200ms }\n"
      "  wrongca: { url: \"https://localhost:" + sp + "\", tls: { ca_file: " + cert("other-ca.pem") + " }, health: off }\n"
      "  wrongname: { url: \"https://127.0.0.1:" + sp + "\", tls: { ca_file: " + cert("ca.pem") +
      ", server_name: c.test }, health: off }\n"
      "  insecure: { url: \"https://127.0.0.1:" + sp + "\", tls: { insecure_skip_verify: true }, health: off }\n"
      "  byip: { url: \"https://127.0.0.1:" + sp + "\", tls: { ca_file: " + cert("ca.pem") + " }, health: off }\n";
  kt::kinfra_process k(routes);
  EXPECT_NE(k.log().find("insecure_skip_verify"), std::string::npos) << k.log();

  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "good") == "running"; }, 10s))
      << "the HTTP health check over TLS did not pass: " << kt::get_status(k.port(), "good").dump();
  auto res = kt::http_get(k.port(), "/good/x", {{{"Host", "shop.example"}}});
  EXPECT_EQ(res.status, 200);
  EXPECT_NE(res.body.find("GET /good/x"), std::string::npos);
  EXPECT_NE(res.body.find("X-Forwarded-Proto: https"), std::string::npos) << "second hop over TLS";
  res = kt::http_get(k.port(), "/byip");  // the certificate names 127.0.0.1 as an IP address
  EXPECT_EQ(res.status, 200) << res.body;

  res = kt::http_get(k.port(), "/wrongca", {{{"Accept", "application/json"}}});
  EXPECT_EQ(res.status, 502);
  EXPECT_NE(res.body.find("certificate verify failed"), std::string::npos) << res.body;
  res = kt::http_get(k.port(), "/wrongname", {{{"Accept", "application/json"}}});
  EXPECT_EQ(res.status, 502);
  EXPECT_NE(res.body.find("hostname mismatch"), std::string::npos) << res.body;
  EXPECT_EQ(kt::http_get(k.port(), "/insecure").status, 200);
  // Only verified requests reached the upstream (good ×1 + probes, byip, insecure).
  for (const auto& r : up.requests()) EXPECT_EQ(r.target.find("/wrong"), std::string::npos) << r.target;
}

}  // namespace
