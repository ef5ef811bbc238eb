#pragma once
/**
 * @file `GET /__stream__`: Server-Sent Events for the dashboard, the logs page and the fallback
 * pages, so that they change within a second of what they show (and fall back to polling when
 * the stream is refused or cut).
 *
 * Events: `status` (the `/__status__` document, when the board changed and every 2 s for the
 * request rates; for a visitor's fallback page, only the public status of its service),
 * `event` (one entry of `/__events__`), `log` (one line of `?service=NAME`'s log, with
 * `logs=1`), `resync` (the client fell behind what kinfra keeps: it should fetch again), and a
 * comment every 15 s when nothing else was sent.
 *
 * Bounded: a stream keeps only cursors into the board's rings (its "queue" is the ring itself,
 * whose oldest entries are dropped; a stream behind them gets `resync`), and one batch of at
 * most `stream_max_events` events and `stream_max_lines` lines is out at a time. The number of
 * streams is capped (`stream_max_admin`, `stream_max_public`): beyond, 503 and the pages poll.
 */

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/local_responder.hpp"
#include "common/status_board.hpp"

namespace kinfra::fallback {

inline constexpr std::size_t stream_max_events = 100;  ///< events in one batch (beyond: resync)
inline constexpr std::size_t stream_max_lines = 200;   ///< log lines in one batch (beyond: resync)
inline constexpr int stream_max_admin = 32;            ///< concurrent admin streams
inline constexpr int stream_max_public = 128;          ///< concurrent fallback-page streams
inline constexpr auto stream_status_every = std::chrono::seconds(2);
inline constexpr auto stream_status_min_gap = std::chrono::milliseconds(400);
inline constexpr auto stream_heartbeat = std::chrono::seconds(15);

/** One client's stream. */
class event_stream final : public local_stream {
 public:
  struct options {
    std::string service;  ///< "": every service (status and events); else that one's
    bool admin = false;   ///< false: a visitor's page (the public status of `service` only)
    bool logs = false;    ///< send `service`'s new log lines
    std::optional<std::uint64_t> events_after;  ///< resume events after this seq (default: from now)
    std::optional<std::uint64_t> logs_after;    ///< resume log lines after this seq (default: from now)
  };
  /** Renders the status document to send (admin: the `/__status__` document; else public). */
  using status_source = std::function<std::shared_ptr<const std::string>()>;

  /** `open` counts the streams open (this one from now until it is destroyed). */
  event_stream(const status_board& board, options opts, status_source status, std::shared_ptr<std::atomic<int>> open);
  ~event_stream() override;

  std::uint64_t version() const override;
  std::string next() override;

 private:
  void add_events(std::string& out);
  void add_logs(std::string& out);
  void add_status(std::string& out, std::chrono::steady_clock::time_point now);

  const status_board& board_;
  options opts_;
  status_source status_;
  std::shared_ptr<std::atomic<int>> open_;
  bool started_ = false;
  std::uint64_t events_seen_ = 0;
  std::uint64_t lines_seen_ = 0;
  std::uint64_t status_version_ = 0;  ///< the board's version when status was last sent (0: never)
  std::shared_ptr<const std::string> last_status_;
  std::chrono::steady_clock::time_point status_at_{}, sent_at_{};
};

/** `data` as one SSE event named `name` (each line of `data` becomes a `data:` line). */
void append_sse(std::string& out, std::string_view name, std::string_view data);

}  // namespace kinfra::fallback
