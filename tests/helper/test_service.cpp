// kinfra-test-service: a small program the supervisor tests run as a service. It can serve HTTP
// with a health endpoint, fail in the ways real services fail, and print the kinds of output a
// log capture has to cope with. Every behaviour is chosen on the command line:
//
//   --name NAME            used in responses and in --record lines (default "svc")
//   --port N               listen on 127.0.0.1:N (default: $PORT; none when neither is set)
//   --listen-after MS      wait before listening (a slow start)
//   --health-status CODE   status of GET /health (default 200)
//   --unhealthy-after MS   GET /health answers 503 from then on
//   --crash-after MS       exit with --exit-code (default 1) after MS
//   --exit-code N          the code for --crash-after, or exit at once when given alone
//   --ignore-term          ignore SIGTERM (a stubborn service)
//   --keep-alive           keep connections open between requests (default: close after each)
//   --grandchild PIDFILE   start a child that sleeps (in the same process group) and write its pid
//   --escape PIDFILE       start a child that leaves the process group (setsid) and write its pid
//   --record FILE          append "NAME start PID" when starting and "NAME term PID" on SIGTERM
//   --print TEXT           print a line at start (repeatable); --stderr sends it to stderr
//   --print-levels         print one line per level, in several spellings
//   --print-hostile        print <script>, invalid UTF-8 and ANSI colour codes
//   --long-line N          print one line of N bytes
//   --flood N              print N lines as fast as possible
//   --print-env VAR        print "VAR=value" from the environment
//   --print-cwd            print "cwd=/the/working/directory"
//   --close-on-usr1        stop listening on SIGUSR1 (connections are refused, the process lives)
// Paths: /health (see above), /whoami ("pid N instance I"), /slow/MS (answers after MS ms),
// /echo-tunnel (101, then echoes raw bytes; header X-Pid), anything else "hello from NAME".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string name = "svc";
std::string record_file;
std::atomic<bool> unhealthy{false};
std::atomic<int> listen_fd{-1};
int health_status = 200;
bool keep_alive = false;  // --keep-alive: answer several requests per connection

void record(const std::string& what) {
  if (record_file.empty()) return;
  std::ofstream out(record_file, std::ios::app);
  out << name << " " << what << " " << getpid() << "\n";
}

/** The "term" line, prepared before any signal: the handler only calls open/write/close. */
std::string term_line;

void on_term(int) {
  if (!record_file.empty()) {
    int fd = ::open(record_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      [[maybe_unused]] auto n = ::write(fd, term_line.data(), term_line.size());
      ::close(fd);
    }
  }
  _exit(0);
}

void on_usr1(int) {
  int fd = listen_fd.exchange(-1);
  if (fd >= 0) close(fd);
}

/** The Content-Length of a request head (0 when none). */
std::size_t content_length(const std::string& head) {
  std::string lower = head;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto at = lower.find("\r\ncontent-length:");
  return at == std::string::npos ? 0 : static_cast<std::size_t>(std::atol(lower.c_str() + at + 17));
}

void serve(int client) {
  std::string req;  // bytes read and not yet answered
  char buf[4096];
  for (;;) {
    std::size_t end;
    while ((end = req.find("\r\n\r\n")) == std::string::npos ||
           req.size() < end + 4 + content_length(req.substr(0, end + 2))) {
      ssize_t n = recv(client, buf, sizeof buf, 0);
      if (n <= 0) {
        close(client);
        return;
      }
      req.append(buf, static_cast<std::size_t>(n));
    }
    const std::string head = req.substr(0, end + 2);
    req.erase(0, end + 4 + content_length(head));
    std::string path = head.substr(head.find(' ') + 1);
    path = path.substr(0, path.find(' '));
    if (path == "/echo-tunnel") {
      // An upgraded connection that echoes raw bytes, saying which process it reached.
      std::string res = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Pid: " +
                        std::to_string(getpid()) + "\r\n\r\n";
      send(client, res.data(), res.size(), MSG_NOSIGNAL);
      for (ssize_t n; (n = recv(client, buf, sizeof buf, 0)) > 0;) send(client, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
      close(client);
      return;
    }
    int status = 200;
    std::string body = "hello from " + name + "\n";
    if (path == "/health") {
      status = unhealthy ? 503 : health_status;
      body = status < 400 ? "ok\n" : "not ok\n";
    } else if (path == "/whoami") {
      const char* instance = std::getenv("INSTANCE");
      body = "pid " + std::to_string(getpid()) + " instance " + (instance ? instance : "-") + "\n";
    } else if (path.rfind("/slow/", 0) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(path.c_str() + 6)));
    }
    std::string res = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: text/plain\r\nContent-Length: " +
                      std::to_string(body.size()) + (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n") + body;
    send(client, res.data(), res.size(), MSG_NOSIGNAL);
    if (!keep_alive) break;
  }
  close(client);
}

pid_t sleeper(bool escape, const std::string& pidfile) {
  pid_t pid = fork();
  if (pid == 0) {
    if (escape) setsid();
    for (;;) pause();
  }
  std::ofstream(pidfile) << pid << "\n";
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int port = 0;
  if (const char* p = std::getenv("PORT")) port = std::atoi(p);
  long listen_after = 0, unhealthy_after = -1, crash_after = -1, long_line = -1, flood = -1;
  int exit_code = 1;
  bool exit_code_given = false, ignore_term = false, to_stderr = false, levels = false, hostile = false;
  std::vector<std::string> prints;
  std::string grandchild, escape;
  std::vector<std::string> env_vars;
  bool print_cwd = false, close_on_usr1 = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--name") name = next();
    else if (a == "--port") port = std::atoi(next().c_str());
    else if (a == "--listen-after") listen_after = std::atol(next().c_str());
    else if (a == "--health-status") health_status = std::atoi(next().c_str());
    else if (a == "--unhealthy-after") unhealthy_after = std::atol(next().c_str());
    else if (a == "--crash-after") crash_after = std::atol(next().c_str());
    else if (a == "--exit-code") { exit_code = std::atoi(next().c_str()); exit_code_given = true; }
    else if (a == "--ignore-term") ignore_term = true;
    else if (a == "--keep-alive") keep_alive = true;
    else if (a == "--grandchild") grandchild = next();
    else if (a == "--escape") escape = next();
    else if (a == "--record") record_file = next();
    else if (a == "--print") prints.push_back(next());
    else if (a == "--stderr") to_stderr = true;
    else if (a == "--print-levels") levels = true;
    else if (a == "--print-hostile") hostile = true;
    else if (a == "--long-line") long_line = std::atol(next().c_str());
    else if (a == "--flood") flood = std::atol(next().c_str());
    else if (a == "--print-env") env_vars.push_back(next());
    else if (a == "--print-cwd") print_cwd = true;
    else if (a == "--close-on-usr1") close_on_usr1 = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  record("start");
  term_line = name + " term " + std::to_string(getpid()) + "\n";
  signal(SIGTERM, ignore_term ? SIG_IGN : on_term);
  FILE* out = to_stderr ? stderr : stdout;
  for (const auto& p : prints) std::fprintf(out, "%s\n", p.c_str());
  for (const auto& v : env_vars) {
    const char* value = std::getenv(v.c_str());
    std::printf("%s=%s\n", v.c_str(), value ? value : "(unset)");
  }
  if (print_cwd) {
    char buf[4096];
    std::printf("cwd=%s\n", getcwd(buf, sizeof buf) ? buf : "?");
  }
  if (close_on_usr1) signal(SIGUSR1, on_usr1);
  if (levels) {
    std::puts("ERROR something failed");
    std::puts("2024-01-01 12:00:00 [warn] disk almost full");
    std::puts("level=info msg=\"listening\"");
    std::puts("{\"level\":\"debug\",\"msg\":\"cache miss\"}");
    std::puts("WARNING: deprecated option");
    std::puts("[error] upstream timed out");
    std::puts("DEBUG verbose detail");
    std::puts("{\"level\":50,\"msg\":\"pino error\"}");
    std::puts("a plain line");
  }
  if (hostile) {
    std::puts("<script>alert(1)</script>");
    static const char bad_utf8[] = "bad \xff\xfe utf8 \xc3\x28 end\n";
    std::fwrite(bad_utf8, 1, sizeof bad_utf8 - 1, stdout);
    std::puts("\x1b[31mERROR\x1b[0m coloured \x1b[1;32mgreen\x1b[0m");
  }
  if (long_line >= 0) std::printf("%s\n", std::string(static_cast<std::size_t>(long_line), 'L').c_str());
  if (flood >= 0)
    for (long i = 0; i < flood; ++i) std::printf("flood line %ld\n", i);
  std::fflush(stdout);
  if (!grandchild.empty()) sleeper(false, grandchild);
  if (!escape.empty()) sleeper(true, escape);
  if (exit_code_given && crash_after < 0) return exit_code;
  if (crash_after >= 0) {
    std::thread([crash_after, exit_code] {
      std::this_thread::sleep_for(std::chrono::milliseconds(crash_after));
      std::fprintf(stderr, "ERROR crashing on purpose with code %d\n", exit_code);
      std::fflush(stderr);
      _exit(exit_code);
    }).detach();
  }
  if (unhealthy_after >= 0) {
    std::thread([unhealthy_after] {
      std::this_thread::sleep_for(std::chrono::milliseconds(unhealthy_after));
      unhealthy = true;
    }).detach();
  }
  if (port <= 0) {
    for (;;) pause();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(listen_after));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A port a test picked may be held for a moment by an outgoing connection of the suite's load
  // tests (they share the ephemeral range): try again for a few seconds before giving up.
  int bound = -1;
  for (int tries = 0; (bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr)) != 0 && errno == EADDRINUSE &&
                      tries < 100;
       ++tries)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (bound != 0 || listen(fd, 64) != 0) {
    std::fprintf(stderr, "ERROR cannot listen on port %d: %s\n", port, std::strerror(errno));
    return 3;
  }
  std::printf("INFO %s listening on port %d\n", name.c_str(), port);
  listen_fd = fd;
  for (;;) {
    int lfd = listen_fd.load();
    if (lfd < 0) {
      pause();
      continue;
    }
    int c = accept(lfd, nullptr, nullptr);
    if (c < 0) continue;
    std::thread(serve, c).detach();
  }
}
