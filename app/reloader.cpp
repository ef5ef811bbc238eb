#include "app/reloader.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/config_check.hpp"
#include "fallback/fallback_responder.hpp"
#include "proxy/proxy_server.hpp"
#include "supervisor/supervisor.hpp"

namespace kinfra {
namespace {

namespace fs = std::filesystem;
// Editors write a file in several steps (truncate, write, rename): wait for the last one.
constexpr int settle_ms = 200;

bool read_text(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

}  // namespace

reloader::reloader(std::string path, std::shared_ptr<const config> current, status_board& board,
                   supervisor::supervisor& services, fallback::fallback_responder& responder, source_fn source,
                   std::string baseline)
    : path_(std::move(path)),
      source_(std::move(source)),
      current_(std::move(current)),
      last_text_(std::move(baseline)),
      board_(board),
      services_(services),
      responder_(responder) {
  fs::path p = fs::absolute(path_);
  file_name_ = p.filename().string();
  dir_ = p.parent_path().string();
  if (!source_) read_text(path_, last_text_);
  board_.set_config_status([&](config_status& c) { c.path = path_; });
}

reloader::~reloader() {
  stop();
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void reloader::stop() {
  if (wake_fd_ >= 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
  if (watcher_.joinable()) watcher_.join();
  std::lock_guard lock(mutex_);
  stopped_ = true;
  proxy_ = nullptr;
}

std::shared_ptr<const config> reloader::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

reload_result reloader::reload(const std::string& by, bool wait) {
  std::unique_lock lock(mutex_, std::defer_lock);
  reload_result out;
  if (wait) {
    lock.lock();
  } else if (!lock.try_lock()) {
    out.busy = true;
    out.errors.push_back("another reload of routes.yaml is in progress; try again in a moment");
    return out;
  }
  if (stopped_) {
    out.errors.push_back("kinfra is stopping");
    return out;
  }
  auto fail = [&](std::vector<std::string> errors) {
    for (const auto& e : errors) spdlog::error("{}", e);
    spdlog::error("{} not reloaded ({}): the configuration in force stays", path_, by);
    board_.set_config_status([&](config_status& c) {
      c.errors = errors;
      c.failed_at = std::chrono::system_clock::now();
      ++c.failures;
    });
    last_failed_ = true;
    out.errors = std::move(errors);
    return out;
  };
  std::string text;
  if (source_) {
    std::string error;
    if (!source_(text, error)) return fail({error});
  } else if (!read_text(path_, text)) {
    return fail({path_ + ": cannot read: " + std::strerror(errno)});
  }
  if (text == last_text_ && !last_failed_ && by == "file change") {
    out.unchanged = true;
    return out;
  }
  auto checked = app::check_config_text(text, path_);
  if (!checked.ok()) return fail(std::move(checked.errors));
  for (const auto& w : checked.warnings) spdlog::warn("{}", w);
  auto next = checked.cfg;
  // What can fail first (binding new addresses, certificates): a failure changes nothing.
  proxy::reload_plan plan;
  if (proxy_) {
    try {
      plan = proxy_->prepare(next);
    } catch (const std::exception& e) {
      std::vector<std::string> errors;
      std::istringstream lines(e.what());
      for (std::string line; std::getline(lines, line);) errors.push_back(line);
      return fail(std::move(errors));
    }
  }
  // Then the services, so that a new one is known (and, when unchecked, already taking traffic)
  // before the first request is routed to it; then the proxy's routes.
  board_.reconfigure(*next);
  responder_.reconfigure(next);
  services_.reconfigure(next);
  if (proxy_) proxy_->commit(std::move(plan));
  current_ = next;
  last_text_ = std::move(text);
  last_failed_ = false;
  board_.set_config_status([&](config_status& c) {
    c.loaded_at = std::chrono::system_clock::now();
    c.loaded_by = by;
    c.errors.clear();
    c.failed_at.reset();
    ++c.reloads;
  });
  spdlog::info("{} reloaded ({}): {} routes, {} services", path_, by, next->routes.size(), next->services.size());
  out.applied = true;
  return out;
}

std::string reloader::reload_certificates(const std::string& by) {
  std::lock_guard lock(mutex_);
  if (stopped_ || !proxy_ || !current_) return stopped_ ? "kinfra is stopping" : "";
  try {
    proxy_->commit(proxy_->prepare(current_));
  } catch (const std::exception& e) {
    return e.what();
  }
  spdlog::info("certificates loaded again ({})", by);
  return "";
}

void reloader::watch() {
  inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (inotify_fd_ < 0 || wake_fd_ < 0 ||
      ::inotify_add_watch(inotify_fd_, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
    spdlog::warn("cannot watch {} for changes ({}); reload with SIGHUP instead", dir_, std::strerror(errno));
    return;
  }
  watcher_ = std::thread([this] { watch_loop(); });
}

void reloader::watch_loop() {
  bool pending = false;
  auto due = std::chrono::steady_clock::now();
  std::array<char, 16 * 1024> buf;
  for (;;) {
    int timeout = -1;
    if (pending) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - std::chrono::steady_clock::now()).count();
      timeout = static_cast<int>(std::max<long long>(0, left));
    }
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int r = ::poll(fds, 2, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (fds[1].revents) return;
    if (r > 0 && fds[0].revents) {
      ssize_t n = ::read(inotify_fd_, buf.data(), buf.size());
      for (ssize_t off = 0; n > 0 && off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf.data() + off);
        if (ev->len > 0 && file_name_ == ev->name) {
          pending = true;
          due = std::chrono::steady_clock::now() + std::chrono::milliseconds(settle_ms);
        }
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
      continue;
    }
    if (pending && std::chrono::steady_clock::now() >= due) {
      pending = false;
      try {
        reload("file change");
      } catch (const std::exception& e) {
        spdlog::error("reload failed: {}", e.what());
      }
    }
  }
}

}  // namespace kinfra
