// libFuzzer target: raw bytes after the HTTP/2 preface, into a real client connection on an h2c
// listener (a socketpair), served by the real session: nghttp2's framing and HPACK, kinfra's
// callbacks, the flood limits, the HTTP/1.1 translation through the in-memory channel and the
// response translation. There are no routes, so every request that gets through is answered
// 404 by the pipeline; what is checked is that nothing crashes, leaks or hangs (ASan/UBSan with
// the fuzz build) whatever the frames.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/config_loader.hpp"
#include "proxy/client_session.hpp"
#include "proxy/router.hpp"
#include "proxy/worker.hpp"

namespace {

using namespace kinfra;
using namespace kinfra::proxy;

worker& the_worker() {
  static const auto cfg = load_config_string("routes: []\n", "/tmp/routes.yaml").cfg;
  static const auto routes = std::make_shared<const router>(*cfg);
  static worker w(cfg, routes, resolved_targets{}, nullptr, nullptr);
  return w;
}

void drain(int fd) {
  char sink[65536];
  while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& w = the_worker();
  auto& ioc = w.context();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  tcp::socket socket(ioc);
  socket.assign(tcp::v4(), sv[0]);
  auto info = std::make_shared<listener_info>();
  info->h2c = true;
  bool done = false;
  {
    auto session = std::make_unique<client_session>(w, std::move(socket), info);
    auto* raw = session.get();
    net::co_spawn(ioc, raw->run(), [&done, owner = std::move(session)](std::exception_ptr) mutable {
      owner.reset();
      done = true;
    });
  }
  static constexpr char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::size_t sent = 0;
  const auto write_some = [&](const void* p, std::size_t n) {
    ssize_t r = ::send(sv[1], p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return r > 0 ? static_cast<std::size_t>(r) : 0;
  };
  std::size_t preface_sent = 0;
  const auto start = std::chrono::steady_clock::now();
  bool shut = false;
  // Feed, serve and read back until the connection is over (bounded: 2 s per input at most).
  while (!done && std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    if (preface_sent < sizeof preface - 1) preface_sent += write_some(preface + preface_sent, sizeof preface - 1 - preface_sent);
    else if (sent < size) sent += write_some(data + sent, size - sent);
    else if (!shut) {
      ::shutdown(sv[1], SHUT_WR);
      shut = true;
    }
    ioc.restart();
    ioc.poll();
    drain(sv[1]);
  }
  ::close(sv[1]);
  // Whatever is still running (a connection that would not end) is closed; the streams finish.
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(50));
  ioc.restart();
  if (!done) __builtin_trap();  // the connection must end once its client is gone
  return 0;
}
