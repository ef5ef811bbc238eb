#include "supervisor/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <variant>

extern char** environ;

namespace kinfra::supervisor {
namespace {

/**
 * Sets close-on-exec on every descriptor from `first` on. In a forked child of a threaded process:
 * system calls only (no allocation). close_range on Linux 5.11 and later; else the descriptors
 * listed in /proc/self/fd (never a loop up to the descriptor limit, which may be a million).
 */
void mark_close_on_exec_from(int first) {
  if (close_range(static_cast<unsigned>(first), ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  const int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(dirent64) char buf[4096];
  for (;;) {
    const long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const dirent64*>(buf + off);
      int fd = 0;
      bool digits = d->d_name[0] != '\0';
      for (const char* c = d->d_name; *c && digits; ++c) {
        digits = *c >= '0' && *c <= '9';
        fd = fd * 10 + (*c - '0');
      }
      if (digits && fd >= first && fd != dir) fcntl(fd, F_SETFD, FD_CLOEXEC);
      off += d->d_reclen;
    }
  }
  close(dir);
}

}  // namespace

std::string exit_status::describe() const {
  if (signal != 0) return "Killed by signal " + std::to_string(signal);
  return "Process exited with code " + std::to_string(code);
}

std::variant<pid_t, std::string> spawn_process(const spawn_options& opts) {
  if (opts.argv.empty()) return std::string("Failed to start: empty command");

  // Everything the child needs is prepared before fork: after fork only async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && opts.env.count(std::string(kv.substr(0, eq)))) continue;
    env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : opts.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = opts.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // A pipe with O_CLOEXEC tells the parent whether exec worked: it closes silently on success,
  // and carries errno on failure.
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) return std::string("Failed to start: ") + std::strerror(errno);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(status_pipe[0]);
    close(status_pipe[1]);
    return std::string("Failed to start: ") + std::strerror(err);
  }
  if (pid == 0) {
    close(status_pipe[0]);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // kinfra died between fork and prctl
    // Undo kinfra's signal dispositions: the service gets default handling and an empty mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT}) signal(s, SIG_DFL);
    if (opts.stdout_fd >= 0) dup2(opts.stdout_fd, STDOUT_FILENO);
    if (opts.stderr_fd >= 0) dup2(opts.stderr_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    // Nothing else of kinfra's crosses the exec: Asio opens and accepts sockets without
    // close-on-exec, and a service holding a copy of a client's connection would keep it open
    // after kinfra closed it (and a listener of kinfra's bound in the service).
    mark_close_on_exec_from(3);
    if (!opts.cwd.empty() && chdir(opts.cwd.c_str()) != 0) {
      int err = errno;
      (void)!write(status_pipe[1], &err, sizeof err);
      _exit(127);
    }
    environ = envp.data();
    execvp(argv[0], argv.data());
    int err = errno;
    (void)!write(status_pipe[1], &err, sizeof err);
    _exit(127);
  }
  close(status_pipe[1]);
  setpgid(pid, pid);  // also from the parent, so the group exists before we ever signal it
  int child_errno = 0;
  ssize_t n;
  do n = read(status_pipe[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  close(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return std::string("Failed to start: ") + std::strerror(child_errno);
  }
  return pid;
}

void signal_group(pid_t pid, int sig) {
  if (pid > 0) ::kill(-pid, sig);
}

}  // namespace kinfra::supervisor

namespace kinfra::supervisor {

std::optional<std::uint16_t> pick_free_port() {
  // 20000–32767: under Linux's default ephemeral range (32768–60999), where bind(0) and outgoing
  // connections take their ports. A random start keeps two kinfras from trying the same ports.
  constexpr unsigned first = 20000, count = 12768;
  static std::atomic<unsigned> seed{static_cast<unsigned>(::getpid()) * 2654435761u ^
                                    static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count())};
  const unsigned start = seed.fetch_add(7919) % count;
  for (unsigned i = 0; i < count; ++i) {
    const auto port = static_cast<std::uint16_t>(first + (start + i) % count);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);  // free on every address, loopback included
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return port;
  }
  return std::nullopt;
}

}  // namespace kinfra::supervisor
