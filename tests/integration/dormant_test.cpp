// Keep-alive connections idle past worker::rest_after are held without a session (dormant), through
// the real executable: the next request on one is served as before, and the idle timeout, the
// client's close, a reload and a shutdown all reach it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;

long metric(const kt::kinfra_process& k, const std::string& name) { return kt::metric_value(k.admin_port(), name); }

long dormant(const kt::kinfra_process& k) { return metric(k, "kinfra_connections_dormant"); }

/** One GET on `c`; its status (0 when no response came). */
unsigned get(kt::socket_conn& c, const std::string& target) {
  if (!c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")) return 0;
  kt::response res;
  return c.read_response(res) ? res.status : 0;
}

}  // namespace

TEST(Dormant, AConnectionIdlePastOneSecondIsHeldWithoutASessionAndServesItsNextRequest) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url(), "timeouts: { idle: 60s }\n"));
  auto c = kt::connect_to(k.port());
  ASSERT_EQ(get(*c, "/first"), 200u);
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 1; })) << dormant(k);
  EXPECT_EQ(metric(k, "kinfra_connections_active"), 2) << "still open (the other one asks for /metrics)";
  // Its next request wakes it: a session serves it on the same connection, and it rests again.
  const long accepted = metric(k, "kinfra_connections_total");
  ASSERT_EQ(get(*c, "/second"), 200u);
  EXPECT_EQ(up.requests().back().target, "/second");
  EXPECT_EQ(metric(k, "kinfra_connections_total"), accepted + 1) << "only the next /metrics connection is new";
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 1; })) << dormant(k);
  // A request that arrives in pieces after the rest is read as one (the header timeout applies).
  ASSERT_TRUE(c->send("GET /thi"));
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 0; })) << "the first bytes woke it";
  ASSERT_TRUE(c->send("rd HTTP/1.1\r\nHost: x\r\n\r\n"));
  kt::response res;
  ASSERT_TRUE(c->read_response(res));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(up.requests().back().target, "/third");
}

TEST(Dormant, TheIdleTimeoutAndTheClientsCloseEndADormantConnection) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url(), "timeouts: { idle: 3s }\n"));
  auto timed_out = kt::connect_to(k.port());
  ASSERT_EQ(get(*timed_out, "/"), 200u);
  auto leaving = kt::connect_to(k.port());
  ASSERT_EQ(get(*leaving, "/"), 200u);
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 2; })) << dormant(k);
  leaving->close();
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 1; })) << "the client's close is noticed";
  // The idle timeout counts from the end of the last request, not from the rest.
  EXPECT_TRUE(timed_out->wait_closed(5s)) << "closed by the idle timeout";
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 0; }));
  ASSERT_TRUE(kt::wait_until([&] { return metric(k, "kinfra_connections_active") == 1; }))
      << "only the /metrics connection is left";
}

TEST(Dormant, ARequestAfterAReloadUsesTheNewRoutes) {
  kt::test_upstream first;
  kt::test_upstream second;
  kt::kinfra_process k(kt::one_service(first.url(), "timeouts: { idle: 60s }\n"));
  auto c = kt::connect_to(k.port());
  ASSERT_EQ(get(*c, "/before"), 200u);
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 1; }));
  k.dir().write("routes.yaml", "listen: 127.0.0.1:" + std::to_string(k.port()) + "\nadmin_listen: 127.0.0.1:" +
                                   std::to_string(k.admin_port()) + "\n" +
                                   kt::one_service(second.url(), "timeouts: { idle: 60s }\n"));
  auto reload = kt::http_request(k.port(), "POST", "/__action__/reload");
  ASSERT_EQ(reload.status, 200) << reload.body;
  EXPECT_EQ(dormant(k), 1) << "a reload leaves idle connections alone";
  ASSERT_EQ(get(*c, "/after"), 200u);
  ASSERT_EQ(second.request_count(), 1u);
  EXPECT_EQ(second.requests().back().target, "/after");
  EXPECT_EQ(first.request_count(), 1u);
}

TEST(Dormant, AShutdownClosesDormantConnectionsAtOnce) {
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url(), "timeouts: { idle: 300s }\n"));
  std::vector<std::unique_ptr<kt::socket_conn>> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(kt::connect_to(k.port()));
    ASSERT_EQ(get(*idle.back(), "/"), 200u);
  }
  ASSERT_TRUE(kt::wait_until([&] { return dormant(k) == 20; })) << dormant(k);
  // (a connection that held up the shutdown would be killed after the 10 s: not exit code 0)
  EXPECT_EQ(k.stop(10s), 0) << k.log();
  for (auto& c : idle) EXPECT_TRUE(c->wait_closed(1s));
}
