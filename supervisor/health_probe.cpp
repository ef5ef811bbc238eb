#include "supervisor/health_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "common/units.hpp"

namespace kinfra::supervisor {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto tok = net::as_tuple(net::use_awaitable);

std::string describe(const boost::system::error_code& ec) {
  if (ec == net::error::connection_refused) return "connection refused";
  if (ec == net::error::eof) return "connection closed without an answer";
  return ec.message();
}

/** Sends the check's GET on `stream` and reads the answer's status. */
template <class Stream>
net::awaitable<probe_result> http_check(Stream& stream, const host_port& address, const std::string& path) {
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + address.to_string() +
                        "\r\nUser-Agent: kinfra-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  auto [wec, wn] = co_await net::async_write(stream, net::buffer(request), tok);
  if (wec) co_return probe_result{false, describe(wec)};
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.header_limit(16 * 1024);
  auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, tok);
  if (hec) co_return probe_result{false, hec == http::error::end_of_stream ? "connection closed without an answer"
                                                                            : "invalid answer: " + hec.message()};
  unsigned status = parser.get().result_int();
  co_return probe_result{status >= 200 && status < 400, "HTTP " + std::to_string(status)};
}

net::ssl::context& probe_tls_context() {
  static net::ssl::context ctx = [] {
    net::ssl::context c(net::ssl::context::tls_client);
    c.set_verify_mode(net::ssl::verify_none);
    return c;
  }();
  return ctx;
}

net::awaitable<probe_result> probe_once(health_config::kind kind, host_port address, std::string path, bool tls) {
  auto ex = co_await net::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(address.host, std::to_string(address.port), tok);
  if (rec) co_return probe_result{false, "cannot resolve " + address.host + ": " + rec.message()};
  tcp::socket socket(ex);
  auto [cec, ep] = co_await net::async_connect(socket, endpoints, tok);
  if (cec) co_return probe_result{false, describe(cec)};
  if (kind != health_config::kind::http) co_return probe_result{true, "port " + std::to_string(address.port) + " open"};

  if (!tls) co_return co_await http_check(socket, address, path);
  net::ssl::stream<tcp::socket&> secure(socket, probe_tls_context());
  if (!address.host.empty() && address.host.find(':') == std::string::npos &&
      !std::isdigit(static_cast<unsigned char>(address.host.front())))
    SSL_set_tlsext_host_name(secure.native_handle(), address.host.c_str());
  auto [sec] = co_await secure.async_handshake(net::ssl::stream_base::client, tok);
  if (sec) co_return probe_result{false, "TLS handshake failed: " + sec.message()};
  co_return co_await http_check(secure, address, path);
}

}  // namespace

net::awaitable<probe_result> run_probe(health_config::kind kind, host_port address, std::string path,
                                       std::chrono::milliseconds timeout, bool tls) {
  using namespace net::experimental::awaitable_operators;
  auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  timer.expires_after(timeout);
  try {
    auto winner = co_await (probe_once(kind, std::move(address), std::move(path), tls) || timer.async_wait(tok));
    if (winner.index() == 0) co_return std::get<0>(winner);
  } catch (const std::exception& e) {
    co_return probe_result{false, e.what()};
  }
  co_return probe_result{false, "timed out after " + format_duration(timeout)};
}

}  // namespace kinfra::supervisor
