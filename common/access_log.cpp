#include "common/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include "common/utf8.hpp"

namespace kinfra {
namespace {

/** Opens `path` for appending (its folder created when missing); throws with the reason. */
int open_append(const std::string& path) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(std::strerror(errno));
  return fd;
}

/**
 * Writes each line with one write(2), as nginx does: nothing is buffered in the process, so a
 * line is in the file (or the pipe) once written. Its own mutex: never spdlog's console mutex,
 * which kinfra's own log shares, so a blocked stdout cannot stall kinfra's logging. A file can
 * be opened again by name (logrotate moved it): the new one is opened first, and the old stays
 * in use when that fails.
 */
class line_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  /** stdout or stderr (not owned). */
  explicit line_sink(int fd) : fd_(fd) {}
  /** A file, opened now (throws when it cannot be). */
  explicit line_sink(std::string path) : path_(std::move(path)), fd_(open_append(path_)), owned_(true) {}
  ~line_sink() override {
    if (owned_) ::close(fd_);
  }

  /** False (with the reason) when the file could not be opened again; the old one stays. */
  bool reopen(std::string& error) {
    if (!owned_) return true;
    int fresh;
    try {
      fresh = open_append(path_);
    } catch (const std::exception& e) {
      error = e.what();
      return false;
    }
    std::lock_guard lock(mutex_);
    ::close(fd_);
    fd_ = fresh;
    return true;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    line_.clear();
    line_.append(msg.payload.begin(), msg.payload.end());
    line_.push_back('\n');
    const char* p = line_.data();
    std::size_t left = line_.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk or a closed pipe loses the line, not the process
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  void flush_() override {}

 private:
  std::string path_;
  int fd_;
  bool owned_ = false;
  std::string line_;
};

std::atomic<spdlog::details::thread_pool*> started_pool{nullptr};

/** Every access log shares one writer thread, started on first use. */
std::shared_ptr<spdlog::details::thread_pool> writer_pool() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::details::thread_pool> pool;
  std::call_once(once, [] {
    pool = std::make_shared<spdlog::details::thread_pool>(16384, 1);
    started_pool.store(pool.get(), std::memory_order_release);
  });
  return pool;
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/** `[27/Nov/2026:19:48:25 +0000]`'s inside, in local time; computed once a second per thread. */
std::string_view local_time(std::chrono::system_clock::time_point t) {
  thread_local std::time_t cached = -1;
  thread_local char buf[40];
  thread_local std::size_t len = 0;
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  if (secs != cached) {
    std::tm tm{};
    localtime_r(&secs, &tm);
    len = std::strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S %z", &tm);
    cached = secs;
  }
  return {buf, len};
}

/** nginx's escaping inside a quoted combined-format field: `"`, `\` and non-printable bytes as \xHH. */
void append_quoted(std::string& out, std::string_view v) {
  if (v.empty()) {
    out += '-';
    return;
  }
  static constexpr char hex[] = "0123456789ABCDEF";
  for (unsigned char c : v) {
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
}

/** A JSON string; bytes that are not valid UTF-8 become U+FFFD, so every line parses. */
void append_json_string(std::string& out, std::string_view v) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (std::size_t n = utf8_sequence(v, i)) {
      out.append(v.substr(i, n));
      i += n - 1;
    } else {
      out += "\\ufffd";
    }
  }
  out += '"';
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, value);
}

void append_field(std::string& out, std::string_view name, std::uint64_t value) {
  out += ",\"";
  out += name;
  out += "\":";
  append_number(out, value);
}

unsigned logged_status(const access_entry& e) { return e.status == 0 ? 499 : e.status; }

}  // namespace

void format_combined(const access_entry& e, std::string& out) {
  out.append(e.client_ip.empty() ? std::string_view("-") : e.client_ip);
  out += " - - [";
  out += local_time(e.time);
  out += "] \"";
  if (e.method.empty()) {
    out += '-';
  } else {
    append_quoted(out, e.method);
    out += ' ';
    append_quoted(out, e.target);
    out += e.version == 10 ? " HTTP/1.0" : e.version == 20 ? " HTTP/2.0" : " HTTP/1.1";
  }
  out += "\" ";
  append_number(out, logged_status(e));
  out += ' ';
  append_number(out, e.body_bytes_sent);
  out += " \"";
  append_quoted(out, e.referer);
  out += "\" \"";
  append_quoted(out, e.user_agent);
  out += '"';
}

void format_json(const access_entry& e, std::string& out) {
  // ISO 8601 in UTC with milliseconds: unambiguous for log pipelines.
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.time.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[40];
  std::size_t n = std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  n += static_cast<std::size_t>(std::snprintf(when + n, sizeof when - n, ".%03dZ", static_cast<int>(ms % 1000)));
  out += "{\"time\":\"";
  out.append(when, n);
  out += '"';
  append_field(out, "client", e.client_ip);
  append_field(out, "method", e.method);
  append_field(out, "target", e.target);
  append_field(out, "protocol", e.version == 10 ? "HTTP/1.0" : e.version == 20 ? "HTTP/2.0" : "HTTP/1.1");
  append_field(out, "host", e.host);
  append_field(out, "status", logged_status(e));
  append_field(out, "body_bytes_sent", e.body_bytes_sent);
  append_field(out, "bytes_sent", e.bytes_sent);
  append_field(out, "bytes_received", e.bytes_received);
  out += ",\"duration_ms\":";
  auto us = static_cast<std::uint64_t>(e.duration.count());
  append_number(out, us / 1000);
  out += '.';
  char frac[4] = {static_cast<char>('0' + us % 1000 / 100), static_cast<char>('0' + us % 100 / 10),
                  static_cast<char>('0' + us % 10), 0};
  out += frac;
  append_field(out, "route", e.route);
  append_field(out, "service", e.service);
  append_field(out, "upstream", e.upstream);
  append_field(out, "referer", e.referer);
  append_field(out, "user_agent", e.user_agent);
  out += ",\"tls\":";
  out += e.tls ? "true" : "false";
  out += '}';
}

access_log::access_log(const access_log_config& cfg) : cfg_(cfg) {
  if (cfg_.off()) return;
  spdlog::sink_ptr sink;
  if (cfg_.to == "stdout") {
    sink = std::make_shared<line_sink>(STDOUT_FILENO);
  } else if (cfg_.to == "stderr") {
    sink = std::make_shared<line_sink>(STDERR_FILENO);
  } else {
    try {
      auto file = std::make_shared<line_sink>(cfg_.to);
      sink_ = file;
      sink = file;
    } catch (const std::exception& e) {
      throw std::runtime_error("access_log: cannot open " + cfg_.to + ": " + e.what());
    }
  }
  pool_ = writer_pool();
  logger_ = std::make_shared<spdlog::async_logger>("access", std::move(sink), pool_,
                                                   spdlog::async_overflow_policy::overrun_oldest);
  logger_->set_level(spdlog::level::info);
  // Written by the background thread as each line arrives, so `tail -f` and tests see it at once.
  logger_->flush_on(spdlog::level::info);
}

access_log::~access_log() {
  if (logger_) logger_->flush();
}

void access_log::write(const access_entry& e) {
  if (!logger_) return;
  thread_local std::string line;
  line.clear();
  if (cfg_.fmt == access_log_config::format::json) format_json(e, line);
  else format_combined(e, line);
  logger_->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size()));
}

void access_log::flush() {
  if (logger_) logger_->flush();
}

bool access_log::reopen(std::string& error) {
  auto file = std::static_pointer_cast<line_sink>(sink_);
  if (!file || file->reopen(error)) return true;
  error = "access_log: cannot open " + cfg_.to + " again: " + error + " (still writing to the file it had)";
  return false;
}

std::uint64_t access_log::dropped() {
  auto* pool = started_pool.load(std::memory_order_acquire);
  return pool ? pool->overrun_counter() : 0;
}

}  // namespace kinfra
