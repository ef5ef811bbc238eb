// /__events__, `kinfra events` and /__stream__ (issue 19), from the real executable: a crash
// becomes its events in order; the stream delivers a change within a second; a client that does
// not read neither grows kinfra's memory nor slows the others; streams are capped; a visitor's
// page gets its service's public status only.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http_test.hpp"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::string service(const std::vector<std::string>& args, const std::string& extra = "") {
  return "services:\n" + kt::test_service_entry("app", args, kt::free_port(), extra) +
         "routes:\n  - { path: /, service: app }\n";
}

json events_of(std::uint16_t port, const std::string& query = "") {
  auto res = kt::http_get(port, "/__events__" + (query.empty() ? "" : "?" + query));
  return res.status == 200 ? json::parse(res.body) : json::object();
}

/** The messages of `doc`'s events, in order. */
std::vector<std::string> messages(const json& doc) {
  std::vector<std::string> out;
  for (const auto& e : doc.value("events", json::array())) out.push_back(e["message"].get<std::string>());
  return out;
}

/** The index of the first message at or after `from` that contains `text`, or -1. */
int find_from(const std::vector<std::string>& list, const std::string& text, int from = 0) {
  for (int i = std::max(0, from); i < static_cast<int>(list.size()); ++i)
    if (list[static_cast<std::size_t>(i)].find(text) != std::string::npos) return i;
  return -1;
}

/** A client of /__stream__ on a raw socket: reads what comes, with a deadline. */
class stream_client {
 public:
  stream_client(std::uint16_t port, const std::string& target, const std::string& headers = "") : conn_(kt::connect_to(port)) {
    conn_->send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n");
  }
  /** Reads until `text` appears after `from` (or `timeout`); true when it did. */
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout = 5s, std::size_t from = 0) {
    const auto until = clock_type::now() + timeout;
    for (;;) {
      if (received_.find(text, from) != std::string::npos) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
      if (left <= 0ms) return false;
      char buf[65536];
      long n = conn_->recv_some(buf, sizeof buf, left);
      if (n <= 0) return received_.find(text, from) != std::string::npos;
      received_.append(buf, static_cast<std::size_t>(n));
    }
  }
  const std::string& received() const { return received_; }
  kt::socket_conn& conn() { return *conn_; }

 private:
  std::unique_ptr<kt::socket_conn> conn_;
  std::string received_;
};

TEST(EventsApi, ACrashBecomesItsEventsInOrder) {
  kt::kinfra_process k(service({"--crash-after", "1500", "--exit-code", "3"}, "    restart: always\n"));
  // Started, became healthy, crashed with code 3, restarted by the policy, started again.
  std::vector<std::string> list;
  ASSERT_TRUE(kt::wait_until(
      [&] {
        list = messages(events_of(k.port(), "service=app"));
        const int exited = find_from(list, "exited with code 3");
        return exited >= 0 && find_from(list, "process started", exited) >= 0;
      },
      15s))
      << events_of(k.port()).dump(1);
  const int started = find_from(list, "process started (pid");
  const int running = find_from(list, "starting → running");
  const int exited = find_from(list, "exited with code 3");
  const int failed = find_from(list, "running → error");
  const int restarted = find_from(list, "restarted after a failure");
  const int again = find_from(list, "process started", exited);
  EXPECT_TRUE(started >= 0 && started < running && running < exited && exited < failed && failed < restarted &&
              restarted <= again + 1)
      << json(list).dump(1);
  auto doc = events_of(k.port(), "service=app");
  const auto& crash = doc["events"][exited];
  EXPECT_EQ(crash["kind"], "exited");
  EXPECT_EQ(crash["level"], "error");
  EXPECT_EQ(crash["service"], "app");
  EXPECT_EQ(doc["events"][restarted]["by"], "crash");
  // kinfra's own events: its start (service null).
  auto all = events_of(k.port());
  EXPECT_EQ(all["events"][0]["kind"], "config_loaded") << all.dump(1);
  EXPECT_TRUE(all["events"][0]["service"].is_null());
  // after= gives only what is newer; limit the latest ones.
  const auto last = all["last_seq"].get<std::uint64_t>();
  EXPECT_TRUE(events_of(k.port(), "after=" + std::to_string(last))["events"].empty());
  EXPECT_EQ(events_of(k.port(), "limit=1")["events"].size(), 1u);
  EXPECT_EQ(kt::http_get(k.port(), "/__events__?after=x").status, 400);
  // A cursor of an earlier kinfra process (beyond what this one has): the reader is told to start again.
  EXPECT_EQ(events_of(k.port(), "after=999999").value("reset", false), true);
  EXPECT_FALSE(events_of(k.port(), "after=" + std::to_string(last)).contains("reset"));
  auto logs = json::parse(kt::http_get(k.port(), "/__logs__/app?format=json&after=999999").body);
  EXPECT_EQ(logs.value("reset", false), true) << logs.dump();
  // Both name this process, so that a reader sees a restart even when the new seqs overtook its cursor.
  EXPECT_EQ(logs.value("boot", ""), all.value("boot", "-"));
  EXPECT_EQ(all.value("boot", "").size(), 16u);
  EXPECT_EQ(kt::http_get(k.port(), "/__events__?service=nope").status, 404);
  // An action says who asked.
  kt::header_list cli;
  cli.add("User-Agent", "kinfra-cli/test");
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/stop/app", cli).status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return find_from(messages(events_of(k.port(), "service=app")), "stop requested (CLI)") >= 0; }));
  // `kinfra events` shows them too.
  auto r = kt::run_kinfra({"events", "--url", "http://127.0.0.1:" + std::to_string(k.port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("exited with code 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stop requested (CLI)"), std::string::npos) << r.out;
  // The admin read rules: a foreign Host gets nothing.
  kt::header_list foreign;
  foreign.add("Host", "attacker.example");
  EXPECT_EQ(kt::http_get(k.port(), "/__events__", foreign).status, 421);
  // With every service down, the dashboard and the service's page still answer.
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "app") == "stopped"; }));
  EXPECT_EQ(kt::http_get(k.port(), "/kinfra").status, 200);
  EXPECT_EQ(kt::http_get(k.port(), "/kinfra/service/app").status, 200);
  EXPECT_EQ(kt::http_get(k.port(), "/kinfra/service/nope").status, 404);
}

TEST(EventsApi, ARefusedReloadCarriesItsErrorsAndAnAppliedOneSaysWhoAsked) {
  const std::string head = "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n";
  const std::string body = service({});
  kt::kinfra_process k(body);
  k.dir().write("routes.yaml", head + body + "bogus_key: 1\n");
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 422);
  json refused;
  ASSERT_TRUE(kt::wait_until([&] {
    const json doc = events_of(k.port());
    for (const auto& e : doc.value("events", json::array()))
      if (e["kind"] == "config_refused") refused = e;
    return !refused.is_null();
  }));
  EXPECT_EQ(refused["level"], "error");
  EXPECT_NE(refused["detail"].get<std::string>().find("unknown key 'bogus_key'"), std::string::npos) << refused.dump();
  EXPECT_NE(refused["detail"].get<std::string>().find("routes.yaml:"), std::string::npos) << "file:line:col";
  k.dir().write("routes.yaml", head + body + "# a comment changes the file\n");
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] {
    auto list = messages(events_of(k.port()));
    return find_from(list, "configuration reloaded (API)") >= 0 || find_from(list, "configuration reloaded (file change)") >= 0;
  })) << events_of(k.port()).dump(1);
}

TEST(EventsApi, EveryRestartSaysWhyOrWhoAskedForIt) {
  const std::string head = "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n";
  const std::uint16_t port = kt::free_port();
  auto body = [&](const std::string& name) {
    return "services:\n" + kt::test_service_entry("app", {"--name", name}, port) + "routes:\n  - { path: /, service: app }\n";
  };
  kt::kinfra_process k(body("one"));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "app") == "running"; }));
  // The `restarted` events of app, by `by`, in order.
  auto restarts = [&] {
    std::vector<std::string> out;
    for (const auto& e : events_of(k.port(), "service=app").value("events", json::array()))
      if (e["kind"] == "restarted") out.push_back(e["by"].get<std::string>());
    return out;
  };
  auto restart_as = [&](const std::string& agent, std::size_t before) {
    kt::header_list h;
    if (!agent.empty()) h.add("User-Agent", agent);
    EXPECT_EQ(kt::http_request(k.port(), "POST", "/__action__/restart/app", h).status, 200);
    EXPECT_TRUE(kt::wait_until([&] { return restarts().size() > before; })) << events_of(k.port()).dump(1);
    EXPECT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "app") == "running"; }));
  };
  restart_as("Mozilla/5.0 (X11; Linux x86_64)", 0);
  restart_as("kinfra-cli/test", 1);
  restart_as("", 2);
  // A reload that changes the command restarts it too, and says so.
  k.dir().write("routes.yaml", head + body("two"));
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return restarts().size() > 3; })) << events_of(k.port()).dump(1);
  EXPECT_EQ(restarts(), (std::vector<std::string>{"dashboard", "CLI", "API", "reload"}));
  auto list = messages(events_of(k.port(), "service=app"));
  EXPECT_GE(find_from(list, "restarted on request (CLI) (restart 2)"), 0) << json(list).dump(1);
  EXPECT_GE(find_from(list, "restarted with its new entry in routes.yaml (restart 4)"), 0) << json(list).dump(1);
  // Another shape (a fixed port to `port: auto`): everything stops and starts anew, a restart too.
  k.dir().write("routes.yaml", head + "services:\n" +
                                   kt::test_service_entry("app", {"--name", "two"}, std::nullopt, "    port: auto\n") +
                                   "routes:\n  - { path: /, service: app }\n");
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/reload").status, 200);
  ASSERT_TRUE(kt::wait_until([&] { return restarts().size() > 4; })) << events_of(k.port()).dump(1);
  EXPECT_EQ(restarts().back(), "reload");
  // The new process's start is recorded after the restart event, once it has been spawned.
  EXPECT_TRUE(kt::wait_until([&] {
    list = messages(events_of(k.port(), "service=app"));
    const int reshaped = find_from(list, "(restart 5)");
    return reshaped >= 0 && find_from(list, "process started", reshaped) > reshaped;
  })) << json(list).dump(1);
  EXPECT_TRUE(kt::wait_until([&] { return kt::get_status(k.port())["services"]["app"]["restarts"] == 5; }))
      << "the count on the board grows with it";
  // Each restart's event comes after its process ended and before the new one started.
  const int asked = find_from(list, "restart requested (dashboard)");
  const int exited = find_from(list, "exited", asked);
  const int restarted = find_from(list, "restarted on request (dashboard)", asked);
  const int started = find_from(list, "process started", asked);
  EXPECT_TRUE(asked >= 0 && asked < exited && exited < restarted && restarted < started) << json(list).dump(1);
}

TEST(EventStream, DeliversAChangeWithinASecond) {
  kt::kinfra_process k(service({}));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "app") == "running"; }));
  stream_client s(k.port(), "/__stream__");
  ASSERT_TRUE(s.wait_for("event: status")) << s.received();
  EXPECT_NE(s.received().find("Content-Type: text/event-stream"), std::string::npos) << s.received();
  EXPECT_NE(s.received().find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(s.received().find("retry: 2000"), std::string::npos);
  const std::size_t mark = s.received().size();
  const auto asked = clock_type::now();
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/maintenance/app?on=true").status, 200);
  ASSERT_TRUE(s.wait_for("maintenance on", 3s, mark)) << s.received().substr(mark);
  EXPECT_LT(clock_type::now() - asked, 1s * kt::memory_slack) << "the stream looks at the board four times a second";
  // A status event after it shows the service in maintenance.
  ASSERT_TRUE(kt::wait_until([&] {
    s.wait_for("event: status", 500ms, s.received().rfind("maintenance on"));
    const auto at = s.received().rfind("event: status\ndata: ");
    if (at == std::string::npos || at < mark) return false;
    const auto end = s.received().find("\n\n", at);
    if (end == std::string::npos) return false;
    const std::string data = s.received().substr(at + 20, end - at - 20);
    return data.find("\n") == std::string::npos &&
           json::parse(data)["services"]["app"]["maintenance"]["on"] == true;
  }, 5s)) << s.received().substr(mark, 3000);
  // kinfra stops: the stream ends (the chunked body's last chunk), it does not hang.
  EXPECT_EQ(k.stop(), 0);
  EXPECT_TRUE(s.wait_for("\r\n0\r\n\r\n", 5s, mark)) << "the chunked body's end, then the close";
}

TEST(EventStream, ASlowClientNeitherGrowsMemoryNorSlowsOthers) {
  kt::kinfra_process k(service({}, "    log_lines: 200\n"));
  ASSERT_TRUE(kt::wait_until([&] { return kt::state_of(k.port(), "app") == "running"; }));
  // One client that reads nothing after its first bytes; one that reads.
  stream_client slow(k.port(), "/__stream__?service=app&logs=1");
  ASSERT_TRUE(slow.wait_for("event: status"));
  stream_client fast(k.port(), "/__stream__?service=app&logs=1");
  ASSERT_TRUE(fast.wait_for("event: status"));
  const long before = k.rss_kib();
  // 48 MB of log lines (pushes of 60 KB: an admin body's bound is 64 KB), far beyond what the
  // slow client's socket buffers take, and beyond the memory bound below: a queue per client
  // would hold them.
  const std::string text(4000, 'x');
  json push = {{"logs", json::array()}};
  for (int i = 0; i < 15; ++i) push["logs"].push_back({{"message", text}, {"level", "info"}});
  const std::string body = push.dump();
  for (int round = 0; round < 800; ++round)
    ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/status/app", {}, body).status, 200);
  // The fast one keeps up and sees a change promptly while the slow one is stuck.
  const std::size_t mark = fast.received().size();
  ASSERT_EQ(kt::http_request(k.port(), "POST", "/__action__/maintenance/app?on=true").status, 200);
  EXPECT_TRUE(fast.wait_for("maintenance on", 3s, mark));
  EXPECT_NE(fast.received().find("event: log"), std::string::npos);
  // Memory: the log ring (200 lines of 4 KB, 0.8 MB) and one batch (500 lines, 2 MB) per stream
  // at most, plus what the allocator keeps.
  // (Not under a sanitizer: its quarantine keeps up to 256 MB of what the 800 pushes freed.)
  const long grown = k.rss_kib() - before;
  if (kt::memory_slack == 1) {
    EXPECT_LT(grown, 24 * 1024) << "KiB";
  }
  // The slow one, reading at last, learns that it missed lines.
  EXPECT_TRUE(slow.wait_for("\"what\": \"logs\", \"lost\": ", 10s)) << slow.received().size();
}

TEST(EventStream, StreamsAreCappedAndVisitorsGetThePublicStatusOnly) {
  kt::kinfra_process k(service({}) + "admin_token: s3cret-token-0123456789\n");
  // Without the token: the whole stream is refused, one service's public status is not.
  EXPECT_EQ(kt::http_get(k.port(), "/__stream__").status, 401);
  stream_client visitor(k.port(), "/__stream__?service=app");
  ASSERT_TRUE(visitor.wait_for("event: status")) << visitor.received();
  EXPECT_EQ(visitor.received().find("\"pid\""), std::string::npos) << "no admin detail for visitors";
  EXPECT_EQ(visitor.received().find("event: event"), std::string::npos);
  stream_client no_lines(k.port(), "/__stream__?service=app&logs=1");
  ASSERT_TRUE(no_lines.wait_for("event: status")) << "logs=1 without the token: the public stream, without lines";
  EXPECT_EQ(no_lines.received().rfind("HTTP/1.1 200", 0), 0u);
  // A page of another site cannot hold streams open (it could not read them anyway).
  stream_client cross(k.port(), "/__stream__?service=app", "Sec-Fetch-Site: cross-site\r\n");
  ASSERT_TRUE(cross.wait_for("\r\n\r\n"));
  EXPECT_EQ(cross.received().rfind("HTTP/1.1 403", 0), 0u) << cross.received();
  // With it: at most 32 admin streams at once; the 33rd is told to poll.
  const std::string auth = "Authorization: Bearer s3cret-token-0123456789\r\n";
  std::vector<std::unique_ptr<stream_client>> open;
  for (int i = 0; i < 32; ++i) {
    open.push_back(std::make_unique<stream_client>(k.port(), "/__stream__", auth));
    ASSERT_TRUE(open.back()->wait_for("event: status")) << i;
  }
  stream_client extra(k.port(), "/__stream__", auth);
  ASSERT_TRUE(extra.wait_for("\r\n\r\n"));
  EXPECT_EQ(extra.received().rfind("HTTP/1.1 503", 0), 0u) << extra.received();
  // One closes: a new one is taken again.
  open.pop_back();
  ASSERT_TRUE(kt::wait_until([&] {
    stream_client again(k.port(), "/__stream__", auth);
    return again.wait_for("event: status", 1s);
  }));
}

}  // namespace
