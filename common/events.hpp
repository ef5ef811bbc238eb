#pragma once
/**
 * @file What happened, in order: a bounded log of events for the dashboard's timeline,
 * `GET /__events__`, `kinfra events` and the `/__stream__` push.
 *
 * Most events are derived by comparing two board snapshots (`observe`, called by the board each
 * time it publishes one): a process started or exited, a state or health change, maintenance, a
 * configuration loaded or refused, a certificate loaded or renewed. Events whose cause only the
 * caller knows (a restart and who asked for it or why, an action asked for by the dashboard or the
 * CLI) are recorded by it. Nothing here is on a request's path.
 */

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kinfra {

struct board_snapshot;

enum class event_kind {
  started,          ///< a process started (pid)
  exited,           ///< a process ended (code or signal)
  state,            ///< a service's state changed
  health,           ///< its health changed while its state did not
  restarted,        ///< started again: by its restart policy after a failure, a reload, or on request
  action,           ///< a start, stop or restart asked for (by the dashboard, the CLI…)
  maintenance,      ///< maintenance turned on or off
  config_loaded,    ///< routes.yaml loaded (start-up, file change, SIGHUP, dashboard, CLI)
  config_refused,   ///< a routes.yaml that was not applied, with its errors
  certificate,      ///< a certificate loaded, replaced or renewed
  service_added,    ///< by a reload
  service_removed,  ///< by a reload
};
std::string_view to_string(event_kind k);

enum class event_level { info, warn, error };
std::string_view to_string(event_level l);

struct event {
  std::uint64_t seq = 0;  ///< increasing from 1 for kinfra's life
  std::chrono::system_clock::time_point at;
  std::string service;  ///< empty: kinfra itself
  event_kind kind = event_kind::state;
  event_level level = event_level::info;
  std::string message;  ///< one line for people: "exited with code 1"
  std::string detail;   ///< more, when there is: a health check's result, a reload's errors
  std::string by;       ///< who asked, when someone did: "dashboard", "CLI", "crash", "reload"
};

/**
 * This kinfra process's identity (16 hex digits, random, fixed at its first use): seqs of events
 * and log lines start again at each start, so readers keep it beside their cursors and start
 * again when it changes.
 */
const std::string& process_boot_id();

/** The last `capacity` events. Thread-safe. */
class event_log {
 public:
  explicit event_log(std::size_t capacity = 2000) : capacity_(capacity) {}

  /** Adds `e` (its seq is set here; its time too, when not given). */
  void record(event e);

  /**
   * Events with seq > `after`, oldest first, at most `max` (the latest `max` when more);
   * of one service only, when `service` is given. `upto`, when given, is set to the last seq that
   * existed while they were read: a reader that continues after it misses nothing.
   */
  std::vector<event> since(std::uint64_t after, std::size_t max, std::string_view service = {},
                           std::uint64_t* upto = nullptr) const;

  /** The seq of the last event (0: none yet); cheap. */
  std::uint64_t last_seq() const { return last_.load(std::memory_order_acquire); }
  /** The seq of the oldest event still kept (last_seq()+1 when none): a reader behind it lost some. */
  std::uint64_t first_seq() const;

  /** Records what changed from `before` to `after` (before null: the first snapshot, nothing). */
  void observe(const board_snapshot* before, const board_snapshot& after);

 private:
  void record_locked(event e);

  mutable std::mutex mutex_;
  std::deque<event> events_;
  std::size_t capacity_;
  std::uint64_t next_seq_ = 1;
  std::atomic<std::uint64_t> last_{0};
};

}  // namespace kinfra
