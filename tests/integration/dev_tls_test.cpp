// Development HTTPS in one step: `tls: self_signed` certificates are signed by a local CA kinfra
// makes once in state_dir, name localhost, 127.0.0.1 and ::1 besides the configured names, and
// verify with curl given only that CA; `kinfra trust`/`untrust` put the CA into a store and take it
// out; a redirecting listener sends loopback hosts to a name the certificate has.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "http_test.hpp"
#include "proxy/dev_certificates.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

kt::header_list host_header(const std::string& host) {
  kt::header_list h;
  h.add("Host", host);
  return h;
}

/** True when this machine can listen on ::1 (IPv6 loopback configured). */
bool have_ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/** curl's exit code for an https GET (the body discarded), trusting only `ca` when given. */
int curl_https(const std::string& url, const std::string& ca, const std::string& resolve = "",
               std::string* output = nullptr) {
  std::string cmd = "curl -sS -o /dev/null -w '%{http_code}' --max-time 10 ";
  if (!ca.empty()) cmd += "--cacert '" + ca + "' --capath /nonexistent ";
  if (!resolve.empty()) cmd += "--resolve '" + resolve + "' ";
  return kt::run_shell(cmd + "'" + url + "' 2>&1", output);
}

std::string dev_routes(const std::string& state, const std::string& upstream, bool with_v6) {
  std::string yaml = "listen:\n  - address: 127.0.0.1:0\n    tls: { self_signed: true, names: [app.test] }\n";
  if (with_v6) yaml += "  - address: \"[::1]:0\"\n    tls: { self_signed: true, names: [app.test] }\n";
  return yaml + "state_dir: " + state + "\nadmin_listen: off\nroutes: [{ path: /, service: web }]\n"
                "services:\n  web: { url: \"" + upstream + "\", health: off }\n";
}

}  // namespace

TEST(DevTls, CurlTrustingOnlyTheLocalCaVerifiesLocalhostAndTheLoopbackAddresses) {
  if (kt::run_shell("command -v curl >/dev/null") != 0) GTEST_SKIP() << "curl is not installed";
  kt::test_upstream up;
  kt::temp_dir state;
  const bool v6 = have_ipv6_loopback();
  kt::kinfra_process k(dev_routes(state.path(), up.url(), v6), false);
  const std::string ca = state.path() + "/ca/kinfra-local-ca.crt";
  ASSERT_TRUE(fs::exists(ca)) << k.log();
  const std::string port = std::to_string(k.port(0));
  std::string out;
  EXPECT_EQ(curl_https("https://127.0.0.1:" + port + "/", ca, "", &out), 0) << out;
  EXPECT_EQ(out, "200");
  EXPECT_EQ(curl_https("https://localhost:" + port + "/", ca, "localhost:" + port + ":127.0.0.1", &out), 0) << out;
  EXPECT_EQ(curl_https("https://app.test:" + port + "/", ca, "app.test:" + port + ":127.0.0.1", &out), 0) << out;
  if (v6) {
    const std::string port6 = std::to_string(k.port(1));
    EXPECT_EQ(curl_https("https://[::1]:" + port6 + "/", ca, "", &out), 0) << out;
  }
  // Verification is real: a name the certificate lacks fails, and so does not trusting the CA.
  EXPECT_NE(curl_https("https://other.test:" + port + "/", ca, "other.test:" + port + ":127.0.0.1", &out), 0) << out;
  EXPECT_NE(curl_https("https://127.0.0.1:" + port + "/", state.path() + "/tls/none.crt", "", &out), 0) << out;
  // The CA's key never leaves state_dir and only its owner may read it.
  EXPECT_EQ(fs::status(state.path() + "/ca/kinfra-local-ca.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST(DevTls, ALeafSignedByAnotherCaIsMadeAgain) {
  if (kt::run_shell("command -v curl >/dev/null") != 0) GTEST_SKIP() << "curl is not installed";
  kt::test_upstream up;
  kt::temp_dir state;
  const std::string routes = dev_routes(state.path(), up.url(), false);
  std::string first;
  {
    kt::kinfra_process k(routes, false);
    first = slurp(state.path() + "/ca/kinfra-local-ca.crt");
  }
  {
    kt::kinfra_process again(routes, false);  // the same CA and leaf are reused
    EXPECT_EQ(slurp(state.path() + "/ca/kinfra-local-ca.crt"), first);
    EXPECT_EQ(again.log().find("made a development certificate"), std::string::npos) << again.log();
  }
  fs::remove_all(state.path() + "/ca");  // e.g. someone removed it: a new CA, and the leaf follows
  kt::kinfra_process k(routes, false);
  const std::string ca = state.path() + "/ca/kinfra-local-ca.crt";
  EXPECT_NE(slurp(ca), first);
  EXPECT_NE(k.log().find("made a development certificate"), std::string::npos) << k.log();
  std::string out;
  EXPECT_EQ(curl_https("https://127.0.0.1:" + std::to_string(k.port(0)) + "/", ca, "", &out), 0) << out;
}

TEST(DevTls, TrustPutsTheCaIntoAStoreAndUntrustTakesItOut) {
  kt::temp_dir dir;
  kt::temp_dir store;
  store.write("someone-else.crt", "not ours\n");
  const std::string routes = dir.write("routes.yaml", "state_dir: " + dir.path() + "/state\n"
                                                      "routes: [{ path: /, service: a }]\n"
                                                      "services:\n  a: { url: http://127.0.0.1:1 }\n");
  auto r = kt::run_kinfra({"trust", routes, "--store", store.path()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string ca = dir.path() + "/state/ca/kinfra-local-ca.crt";
  ASSERT_TRUE(fs::exists(ca)) << "trust makes the CA when there is none yet";
  std::vector<std::string> ours;
  for (const auto& e : fs::directory_iterator(store.path()))
    if (e.path().filename().string().rfind("kinfra-local-ca-", 0) == 0) ours.push_back(e.path().string());
  ASSERT_EQ(ours.size(), 1u);
  EXPECT_EQ(slurp(ours[0]), slurp(ca));
  EXPECT_NE(r.out.find(ours[0]), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Firefox"), std::string::npos) << "says how to add it to a browser:\n" << r.out;
  // Again: the same file, not a second one.
  ASSERT_EQ(kt::run_kinfra({"trust", routes, "--store", store.path()}).exit_code, 0);
  EXPECT_EQ(std::distance(fs::directory_iterator(store.path()), fs::directory_iterator{}), 2);
  // The copy is a CA that verifies the leaf kinfra makes for development.
  auto dev = kinfra::proxy::tls::ensure_development_certificate({"app.test"}, dir.path() + "/state");
  EXPECT_TRUE(dev.made);
  EXPECT_FALSE(dev.made_ca) << "trust made it already";
  std::string verify;
  EXPECT_EQ(kt::run_shell("openssl verify -CAfile '" + ours[0] + "' '" + dev.cert + "' 2>&1", &verify), 0) << verify;

  r = kt::run_kinfra({"untrust", routes, "--store", store.path()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(fs::exists(ours[0]));
  EXPECT_TRUE(fs::exists(store.path() + "/someone-else.crt")) << "untrust removes only kinfra's CA";
  r = kt::run_kinfra({"untrust", routes, "--store", store.path()});
  EXPECT_EQ(r.exit_code, 0) << "removing it twice is not an error: " << r.err;
  EXPECT_NE(r.out.find("nothing to remove"), std::string::npos) << r.out;
}

TEST(DevTls, TrustReadsOnlyTheStateDirOfRoutesYaml) {
  kt::temp_dir dir;
  // The rest of the file may be broken (or another machine's): only state_dir matters.
  const std::string broken = dir.write("routes.yaml", "state_dir: ./mine\nroutes: [{ path: /, service: ghost }]\n");
  auto r = kt::run_kinfra({"trust", broken, "--store", dir.path() + "/store"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.path() + "/mine/ca/kinfra-local-ca.crt")) << "state_dir is relative to routes.yaml";
  // --state-dir wins over the file.
  r = kt::run_kinfra({"trust", broken, "--state-dir", dir.path() + "/other", "--store", dir.path() + "/store"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.path() + "/other/ca/kinfra-local-ca.crt"));
  // A file that is not YAML is named, and nothing is made.
  const std::string garbage = dir.write("bad.yaml", "state_dir: [\n");
  r = kt::run_kinfra({"trust", garbage, "--store", dir.path() + "/store2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(garbage), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() + "/store2"));
}

TEST(DevTls, UntrustAlsoRemovesTheCaItReplaced) {
  kt::temp_dir dir;
  const std::string routes = dir.write("routes.yaml", "state_dir: ./state\n");
  ASSERT_EQ(kt::run_kinfra({"trust", routes, "--store", dir.path() + "/store"}).exit_code, 0);
  fs::remove_all(dir.path() + "/state/ca");  // a new CA is made: both are in the store now
  ASSERT_EQ(kt::run_kinfra({"trust", routes, "--store", dir.path() + "/store"}).exit_code, 0);
  dir.write("store/someone-elses.crt", "x\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path() + "/store"), fs::directory_iterator{}), 3);
  auto r = kt::run_kinfra({"untrust", routes, "--store", dir.path() + "/store"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path() + "/store"), fs::directory_iterator{}), 1) << r.out;
}

TEST(DevTls, AHalfWrittenPairIsMadeAgainNotReusedForever) {
  kt::temp_dir dir;
  const std::string state = dir.path() + "/state";
  auto first = kinfra::proxy::tls::ensure_development_certificate({"app.test"}, state);
  ASSERT_TRUE(first.made);
  // Another key next to the certificate (a run killed between writing the two files).
  kinfra::proxy::tls::make_certificate({"x"}, dir.path() + "/x.crt", dir.path() + "/x.key");
  fs::copy_file(dir.path() + "/x.key", first.key, fs::copy_options::overwrite_existing);
  auto again = kinfra::proxy::tls::ensure_development_certificate({"app.test"}, state);
  EXPECT_TRUE(again.made);
  std::string out;
  EXPECT_EQ(kt::run_shell("openssl x509 -noout -pubkey -in '" + again.cert + "' > '" + dir.path() +
                              "/a' && openssl pkey -pubout -in '" + again.key + "' > '" + dir.path() + "/b' && cmp '" +
                              dir.path() + "/a' '" + dir.path() + "/b' 2>&1",
                          &out),
            0)
      << out;
  // The same for the CA: a CA whose key is not its own is made again, and the leaf follows.
  fs::copy_file(dir.path() + "/x.key", state + "/ca/kinfra-local-ca.key", fs::copy_options::overwrite_existing);
  auto third = kinfra::proxy::tls::ensure_development_certificate({"app.test"}, state);
  EXPECT_TRUE(third.replaced_ca);
  EXPECT_TRUE(third.made);
  EXPECT_TRUE(kinfra::proxy::tls::signed_by(third.cert, state + "/ca/kinfra-local-ca.crt"));
}

TEST(DevTls, AStateDirThatIsALinkIsRefused) {
  kt::temp_dir dir;
  fs::create_directories(dir.path() + "/elsewhere");
  fs::create_directory_symlink(dir.path() + "/elsewhere", dir.path() + "/ca");
  // state_dir/ca planted as a link: kinfra neither follows nor uses it.
  EXPECT_THROW(kinfra::proxy::tls::ensure_local_ca(dir.path()), std::runtime_error);
  EXPECT_FALSE(fs::exists(dir.path() + "/elsewhere/kinfra-local-ca.crt"));
}

TEST(DevTls, RedirectSendsLoopbackHostsToANameTheCertificateHas) {
  kt::test_upstream up;
  kt::temp_dir dir;
  // A real certificate for app.test only (as a production one would be).
  kinfra::proxy::tls::make_certificate({"app.test"}, dir.path() + "/app.crt", dir.path() + "/app.key");
  kt::kinfra_process k("listen:\n  - address: 127.0.0.1:0\n    tls: [{ cert: " + dir.path() + "/app.crt, key: " +
                           dir.path() + "/app.key }]\n  - address: 127.0.0.1:0\n    redirect_to_https: true\n"
                           "state_dir: " + dir.path() + "/state\nadmin_listen: off\n"
                           "routes: [{ path: /, service: web }]\nservices:\n  web: { url: \"" + up.url() +
                           "\", health: off }\n",
                       false);
  const std::string https_port = std::to_string(k.port(0));
  auto location = [&](const std::string& host) {
    auto r = kt::http_get(k.port(1), "/some/path?q=1", host_header(host));
    EXPECT_EQ(r.status, 308);
    return r.headers.get("Location");
  };
  EXPECT_EQ(location("127.0.0.1:" + std::to_string(k.port(1))), "https://app.test:" + https_port + "/some/path?q=1");
  EXPECT_EQ(location("[::1]"), "https://app.test:" + https_port + "/some/path?q=1");
  // A name is kept as it is: the certificate may be wrong for it, but it is what the visitor typed.
  EXPECT_EQ(location("shop.example"), "https://shop.example:" + https_port + "/some/path?q=1");
}

TEST(DevTls, RedirectKeepsLoopbackHostsTheDevelopmentCertificateNames) {
  kt::test_upstream up;
  kt::temp_dir dir;
  kt::kinfra_process k("listen:\n  - address: 127.0.0.1:0\n    tls: { self_signed: true }\n"
                       "  - address: 127.0.0.1:0\n    redirect_to_https: true\n"
                       "state_dir: " + dir.path() + "/state\nadmin_listen: off\n"
                       "routes: [{ path: /, service: web }]\nservices:\n  web: { url: \"" + up.url() +
                           "\", health: off }\n",
                       false);
  const std::string https_port = std::to_string(k.port(0));
  auto r = kt::http_get(k.port(1), "/", host_header("127.0.0.1:" + std::to_string(k.port(1))));
  EXPECT_EQ(r.headers.get("Location"), "https://127.0.0.1:" + https_port + "/");
  r = kt::http_get(k.port(1), "/", host_header("[::1]:1"));
  EXPECT_EQ(r.headers.get("Location"), "https://[::1]:" + https_port + "/");
}

TEST(DevTls, AReloadKeepsEachListenerWrittenAlikeOnItsOwnPort) {
  // Three listeners written the same (127.0.0.1:0): a reload must pair each with its own socket,
  // or the redirect would point at the plain port and the Listeners table show one address thrice.
  kt::test_upstream up;
  kt::temp_dir state;
  auto routes = [&](const std::string& name) {
    return "listen:\n  - 127.0.0.1:0\n  - address: 127.0.0.1:0\n    tls: { self_signed: true, names: [" + name +
           "] }\n  - address: 127.0.0.1:0\n    redirect_to_https: true\nstate_dir: " + state.path() +
           "\nadmin_listen: off\nroutes: [{ path: /, service: web }]\nservices:\n  web: { url: \"" + up.url() +
           "\", health: off }\n";
  };
  kt::kinfra_process k(routes("one.test"), false);
  auto listeners = [&] {
    auto doc = nlohmann::json::parse(kt::http_get(k.port(0), "/__status__").body, nullptr, false);
    std::vector<std::string> out;
    if (doc.is_object())
      for (const auto& l : doc["listeners"]) out.push_back(l["kind"].get<std::string>() + " " + l["address"].get<std::string>());
    return std::make_pair(out, doc.is_object() ? doc["config"]["reloads"].get<int>() : -1);
  };
  const auto before = listeners().first;
  ASSERT_EQ(before.size(), 3u);
  std::ofstream(k.dir().path() + "/routes.yaml") << routes("two.test");
  ASSERT_TRUE(kt::wait_until([&] { return listeners().second == 1; }, 10s)) << k.log();
  EXPECT_EQ(listeners().first, before);
  auto r = kt::http_get(k.port(2), "/x", host_header("127.0.0.1"));
  EXPECT_EQ(r.headers.get("Location"), "https://127.0.0.1:" + std::to_string(k.port(1)) + "/x");
}
