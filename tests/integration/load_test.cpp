// Many and slow clients against the real executable: slowloris connections do not delay a
// normal client, and ten thousand idle keep-alive connections are held.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "http_test.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/** Raises this process's descriptor limit to at least `want`; false when the system does not allow it. */
bool raise_fd_limit(rlim_t want) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= want) return true;
  if (lim.rlim_max < want) return false;
  lim.rlim_cur = lim.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

/** Median time of `n` GET requests on new connections, in microseconds. */
long median_request_us(std::uint16_t port, int n) {
  std::vector<long> times;
  for (int i = 0; i < n; ++i) {
    auto t0 = clock_type::now();
    auto res = kt::http_get(port, "/probe");
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count();
    EXPECT_EQ(res.status, 200);
    times.push_back(us);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

TEST(Load, AThousandSlowlorisConnectionsDoNotDelayANormalClient) {
  ASSERT_TRUE(raise_fd_limit(4096)) << "this test needs 4096 descriptors";
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url(), "timeouts: { header: 30s }\n"));
  const long alone = median_request_us(k.port(), 20);
  std::vector<std::unique_ptr<kt::socket_conn>> slow;
  for (int i = 0; i < 1000; ++i) {
    slow.push_back(kt::connect_to(k.port()));
    slow.back()->send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // and never the rest
  }
  // Another trickle of bytes on each, as slowloris does.
  for (auto& c : slow) c->send("a");
  const long crowded = median_request_us(k.port(), 20);
  // "A few milliseconds": allow for a noisy shared machine, far below anything a visitor notices.
  EXPECT_LT(crowded, alone + 20000) << "alone " << alone << " µs, with 1000 slowloris " << crowded << " µs";
  RecordProperty("median_us_alone", static_cast<int>(alone));
  RecordProperty("median_us_with_1000_slowloris", static_cast<int>(crowded));
  EXPECT_EQ(up.request_count(), 40u) << "no slowloris request reached the upstream";
}

TEST(Load, TenThousandIdleKeepAliveConnectionsAreHeld) {
  constexpr int count = 10000;
  ASSERT_TRUE(raise_fd_limit(count + 1024)) << "this test needs " << count + 1024 << " descriptors";
  kt::test_upstream up;
  kt::kinfra_process k(kt::one_service(up.url(), "timeouts: { idle: 120s }\n"));
  const long rss_before = k.rss_kib();
  std::vector<std::unique_ptr<kt::socket_conn>> idle;
  idle.reserve(count);
  for (int i = 0; i < count; ++i) {
    auto c = kt::connect_to(k.port());
    c->send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    kt::response res;
    ASSERT_TRUE(c->read_response(res)) << "connection " << i;
    ASSERT_EQ(res.status, 200) << "connection " << i;
    idle.push_back(std::move(c));
  }
  const long rss_after = k.rss_kib();
  std::this_thread::sleep_for(1s);
  // All of them are still open and usable...
  int usable = 0;
  for (int i = 0; i < count; i += 97) {
    idle[i]->send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
    kt::response res;
    if (idle[i]->read_response(res) && res.status == 200) ++usable;
  }
  EXPECT_EQ(usable, (count + 96) / 97);
  // ...and a newcomer is served at once.
  EXPECT_LT(median_request_us(k.port(), 10), 50000);
  const double per_connection = static_cast<double>(rss_after - rss_before) * 1024.0 / count;
  RecordProperty("bytes_per_idle_connection", static_cast<int>(per_connection));
  std::printf("kinfra RSS: %ld KiB before, %ld KiB with %d idle keep-alive connections (%.0f bytes each)\n",
              rss_before, rss_after, count, per_connection);
  EXPECT_LT(per_connection, 64 * 1024.0 * kt::memory_slack) << "memory per idle connection";
}
