#pragma once
/**
 * @file `GET /__stream__`: Server-Sent Events for the dashboard, the logs page and the fallback
 * pages, so that they change within a second of what they show (and fall back to polling when
 * the stream is refused or cut).
 *
 * Events: `hello` first (`{"boot": "…"}`: this kinfra process, see process_boot_id), `status` (the `/__status__` document, when the board changed and every 2 s for the
 * request rates; for a visitor's fallback page, only the public status of its service),
 * `event` (one entry of `/__events__`), `log` (one line of `?service=NAME`'s log, with
 * `logs=1`), `resync` (`{"what": "events"|"logs"}`: some were lost — the ring dropped lines the
 * client had not had, or too many events came at once —; with `"reset": true`, the client's
 * cursor belongs to an earlier kinfra process: it should start again), and a comment every 15 s
 * when nothing else was sent.
 *
 * Bounded: a stream keeps only cursors into the board's rings (its "queue" is the ring itself,
 * whose oldest entries are dropped), and one batch of at most `stream_max_events` events and
 * `stream_max_lines` lines is out at a time (more lines follow in the next batches). The number
 * of streams is capped (`stream_max_admin`, `stream_max_public`): beyond, 503 and the pages poll.
 * A reload ends every stream (the client opens it again, under the new admin settings).
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
inline constexpr std::size_t stream_max_lines = 500;   ///< log lines in one batch (more: the next batch)
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

  /**
   * `open` counts the streams open: the caller counted this one in, it counts itself out when
   * destroyed. The stream ends once `generation` is no longer `generation_at_open` (read before
   * the request's rights were decided, so that a reload in between ends it too).
   */
  event_stream(const status_board& board, options opts, status_source status, std::shared_ptr<std::atomic<int>> open,
               std::shared_ptr<const std::atomic<std::uint64_t>> generation, std::uint64_t generation_at_open);
  ~event_stream() override;

  std::uint64_t version() const override;
  std::string next() override;
  bool done() const override;

 private:
  /** What changes the status document this stream sends. */
  std::uint64_t board_changes() const;
  void add_events(std::string& out);
  void add_logs(std::string& out);
  void add_status(std::string& out, std::chrono::steady_clock::time_point now);

  const status_board& board_;
  options opts_;
  status_source status_;
  std::shared_ptr<std::atomic<int>> open_;
  std::shared_ptr<const std::atomic<std::uint64_t>> generation_;
  std::uint64_t generation_at_open_ = 0;
  bool started_ = false;
  bool reset_events_ = false, reset_logs_ = false;  ///< the client's cursor was an earlier process's
  std::atomic<bool> finished_{false};               ///< its service is gone
  std::atomic<std::uint64_t> pending_{0};           ///< grows while lines wait for the next batch
  std::atomic<std::int64_t> status_due_{0};         ///< steady ns when a held-back status may go; 0: none
  std::uint64_t events_seen_ = 0;
  std::uint64_t lines_seen_ = 0;
  std::uint64_t status_version_ = 0;  ///< the board's version when status was last sent (0: never)
  std::shared_ptr<const std::string> last_status_;
  std::chrono::steady_clock::time_point status_at_{}, sent_at_{};
};

/** `data` as one SSE event named `name` (each line of `data` becomes a `data:` line). */
void append_sse(std::string& out, std::string_view name, std::string_view data);

}  // namespace kinfra::fallback
