#pragma once
/**
 * @file Live reload of routes.yaml: one place that loads the file, validates it completely, and
 * hands the new configuration to every module, or keeps the old one and says why.
 *
 * Part of the composition root (app/), the only code that sees every module.
 * Triggers: a change of the file (inotify on its folder, so saves by rename are seen), SIGHUP,
 * and the dashboard's `POST /__action__/reload`. Reloads are serialised.
 */

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/config.hpp"
#include "common/service_control.hpp"
#include "common/status_board.hpp"

namespace kinfra {
namespace proxy {
class proxy_server;
}
namespace supervisor {
class supervisor;
}
namespace fallback {
class fallback_responder;
}

class reloader final : public config_control {
 public:
  /**
   * Produces the text of the configuration to load: the file's bytes, or (embedded) YAML made by
   * the host program's service_manager. False with `error` set when it cannot.
   */
  using source_fn = std::function<bool(std::string& text, std::string& error)>;

  /**
   * @param path the routes.yaml (watched, named in messages and used for relative paths)
   * @param source where the text comes from; empty: read `path`
   * @param baseline with a source: the text in force now (a change event that leaves it as it is
   *        applies nothing). The source is not asked here: it may need its caller's lock.
   */
  reloader(std::string path, std::shared_ptr<const config> current, status_board& board,
           supervisor::supervisor& services, fallback::fallback_responder& responder, source_fn source = {},
           std::string baseline = {});
  ~reloader() override;
  reloader(const reloader&) = delete;
  reloader& operator=(const reloader&) = delete;

  /** The proxy is made after the reloader (the responder needs the reloader first). */
  void attach(proxy::proxy_server* proxy) { proxy_ = proxy; }

  /** Starts watching the file's folder; a change is applied about 200 ms after the last write. */
  void watch();

  reload_result reload(const std::string& by, bool wait = true) override;

  /**
   * Loads every listener's certificates again for the configuration in force (not the file on
   * disk, which may be mid-edit): for a certificate kinfra just obtained. Waits for a reload in
   * progress. Returns why it failed (empty: done).
   */
  std::string reload_certificates(const std::string& by);

  /** No more reloads (kinfra is stopping): ends the watcher; later requests are refused. */
  void stop();

  std::shared_ptr<const config> current() const;

 private:
  void watch_loop();

  std::string path_;
  source_fn source_;
  std::string file_name_;
  std::string dir_;
  mutable std::mutex mutex_;  ///< one reload at a time; guards current_ and last_text_
  std::shared_ptr<const config> current_;
  std::string last_text_;  ///< the bytes of the file in force, to skip writes that change nothing
  bool last_failed_ = false;
  bool stopped_ = false;
  status_board& board_;
  supervisor::supervisor& services_;
  fallback::fallback_responder& responder_;
  proxy::proxy_server* proxy_ = nullptr;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  ///< eventfd that ends the watch thread
  std::thread watcher_;
};

}  // namespace kinfra
