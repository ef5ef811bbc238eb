#include "fallback/event_stream.hpp"

#include <gtest/gtest.h>

#include "common/config_loader.hpp"

namespace {

using kinfra::fallback::event_stream;

std::shared_ptr<const kinfra::config> one_service() {
  auto r = kinfra::load_config_string("services:\n  api: { command: \"sleep 1\", port: 8000, log_lines: 1000 }\n",
                                      "/tmp/routes.yaml");
  if (!r.ok()) throw std::runtime_error(r.errors.at(0).message);
  return r.cfg;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/** A place counted in, as the responder does before it makes a stream. */
std::shared_ptr<std::atomic<int>> one_open() { return std::make_shared<std::atomic<int>>(1); }
auto generation = std::make_shared<std::atomic<std::uint64_t>>(0);

kinfra::event ev(std::string message) {
  kinfra::event e;
  e.service = "api";
  e.message = std::move(message);
  return e;
}

}  // namespace

TEST(SseBatches, EachLineOfDataIsADataLine) {
  std::string out;
  kinfra::fallback::append_sse(out, "status", "{\n  \"a\": 1\n}\n");
  EXPECT_EQ(out, "event: status\ndata: {\ndata:   \"a\": 1\ndata: }\n\n");
}

TEST(SseBatches, StatusFirstThenEventsAndAResyncWhenTooManyCameAtOnce) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  auto open = one_open();
  event_stream::options opts;
  opts.admin = true;
  {
    event_stream s(board, opts, [] { return std::make_shared<const std::string>("{\"doc\": 1}\n"); }, open, generation, 0);
      const std::string first = s.next();
    EXPECT_EQ(first.rfind("retry: 2000\n\n", 0), 0u);
    EXPECT_NE(first.find("event: hello\ndata: {\"boot\": \"" + kinfra::process_boot_id() + "\"}\n\n"), std::string::npos);
    EXPECT_EQ(kinfra::process_boot_id().size(), 16u);
    EXPECT_NE(first.find("event: status\ndata: {\"doc\": 1}\n\n"), std::string::npos);
    EXPECT_EQ(first.find("event: event"), std::string::npos) << "events from before it opened are not replayed";
    EXPECT_EQ(s.next(), "") << "nothing new, no status before its time";
    board.events().record(ev("one"));
    const auto v = s.version();
    board.events().record(ev("two"));
    EXPECT_NE(s.version(), v) << "a new event changes the version";
    std::string batch = s.next();
    EXPECT_EQ(count(batch, "event: event\n"), 2u);
    EXPECT_LT(batch.find("\"one\""), batch.find("\"two\""));
    EXPECT_EQ(batch.find("resync"), std::string::npos);
    for (int i = 0; i < 150; ++i) board.events().record(ev("e" + std::to_string(i)));
    batch = s.next();
    EXPECT_NE(batch.find("event: resync\ndata: {\"what\": \"events\"}"), std::string::npos);
    EXPECT_EQ(count(batch, "event: event\n"), kinfra::fallback::stream_max_events);
    EXPECT_NE(batch.find("\"e149\""), std::string::npos) << "the latest ones";
    EXPECT_EQ(s.next().find("event: event"), std::string::npos) << "the cursor moved past them";
  }
  EXPECT_EQ(open->load(), 0) << "a stream counts itself out when it goes";
}

TEST(SseBatches, LogLinesOfItsServiceWithAResyncWhenTheRingOverranIt) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  auto line = [](std::string m) { return kinfra::log_entry{std::chrono::system_clock::now(), {}, kinfra::log_level::warn, std::move(m), 0}; };
  board.append_log("api", line("before"));
  event_stream::options opts;
  opts.admin = true;
  opts.service = "api";
  opts.logs = true;
  event_stream s(board, opts, [] { return std::make_shared<const std::string>("{}"); }, one_open(), generation, 0);
  EXPECT_EQ(s.next().find("before"), std::string::npos) << "from now on";
  board.append_log("api", line("bad \xff byte\nsecond line"));
  std::string batch = s.next();
  EXPECT_EQ(count(batch, "event: log\n"), 1u);
  EXPECT_NE(batch.find("\"level\":\"warn\""), std::string::npos) << batch;
  EXPECT_NE(batch.find("\\nsecond line"), std::string::npos) << "a newline in a message stays inside the JSON";
  // 1,200 lines into a ring of 1,000: 200 are lost (said once), the rest come oldest first, a batch at a time.
  for (int i = 0; i < 1200; ++i) board.append_log("api", line("l" + std::to_string(i)));
  const auto v = s.version();
  batch = s.next();
  EXPECT_NE(batch.find("event: resync\ndata: {\"what\": \"logs\", \"lost\": 200}"), std::string::npos) << batch.substr(0, 200);
  EXPECT_EQ(count(batch, "event: log\n"), kinfra::fallback::stream_max_lines);
  EXPECT_NE(batch.find("\"l200\""), std::string::npos) << "the oldest kept first";
  EXPECT_NE(s.version(), v) << "more lines wait: asked for again at once";
  batch = s.next();
  EXPECT_EQ(batch.find("resync"), std::string::npos);
  EXPECT_EQ(count(batch, "event: log\n"), 1000 - kinfra::fallback::stream_max_lines);
  EXPECT_NE(batch.find("\"l1199\""), std::string::npos);
}

TEST(SseBatches, ACursorFromAnEarlierProcessIsResetAndAReloadEndsTheStream) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  board.append_log("api", {std::chrono::system_clock::now(), {}, kinfra::log_level::info, "one", 0});
  auto gen = std::make_shared<std::atomic<std::uint64_t>>(7);
  event_stream::options opts;
  opts.admin = true;
  opts.service = "api";
  opts.logs = true;
  opts.events_after = 350;  // (this process has a handful)
  opts.logs_after = 900;
  event_stream s(board, opts, [] { return std::make_shared<const std::string>("{}"); }, one_open(), gen, 7);
  const std::string first = s.next();
  EXPECT_NE(first.find("{\"what\": \"events\", \"reset\": true}"), std::string::npos) << first;
  EXPECT_NE(first.find("{\"what\": \"logs\", \"reset\": true}"), std::string::npos);
  board.events().record(ev("after the reset"));
  EXPECT_NE(s.next().find("after the reset"), std::string::npos) << "and from now on, it misses nothing";
  EXPECT_FALSE(s.done());
  gen->fetch_add(1);
  EXPECT_TRUE(s.done()) << "a reload ends it";
}

TEST(SseBatches, AVisitorGetsItsServicesStatusOnlyAndOnlyWhenItChanges) {
  auto cfg = one_service();
  kinfra::status_board board(*cfg);
  event_stream::options opts;
  opts.service = "api";
  auto doc = std::make_shared<std::string>("{\"state\": \"stopped\"}");
  event_stream s(board, opts, [&] { return std::make_shared<const std::string>(*doc); }, one_open(), generation, 0);
  EXPECT_NE(s.next().find("event: status"), std::string::npos);
  board.events().record(ev("secret"));
  board.append_log("api", {std::chrono::system_clock::now(), {}, kinfra::log_level::info, "secret line", 0});
  EXPECT_EQ(s.next().find("secret"), std::string::npos) << "no events or lines for a visitor";
}
