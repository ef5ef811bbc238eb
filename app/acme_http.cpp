#include "app/acme_http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>


#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace kinfra::app::acme {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;

struct url_parts {
  bool tls = true;
  std::string host, port = "443", target = "/";
};

url_parts parse(const std::string& url) {
  url_parts p;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    p.tls = false;
    p.port = "80";
    rest = url.substr(7);
  } else {
    throw std::runtime_error("not an http(s):// URL: " + url);
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) p.target = rest.substr(slash);
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) throw std::runtime_error("bad URL: " + url);
    p.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') p.port = authority.substr(close + 2);
  } else {
    auto colon = authority.rfind(':');
    p.host = authority.substr(0, colon);
    if (colon != std::string::npos) p.port = authority.substr(colon + 1);
  }
  if (p.host.empty()) throw std::runtime_error("bad URL: " + url);
  return p;
}

/**
 * Runs one asynchronous step on `io` to completion, or abandons it (closing the socket) when the
 * deadline passes or `stop` turns true: blocking socket calls would ignore both.
 */
template <class Start>
boost::system::error_code step(net::io_context& io, beast::tcp_stream& socket, std::chrono::steady_clock::time_point deadline,
                               const std::atomic<bool>* stop, const std::string& what, Start start) {
  bool done = false;
  boost::system::error_code result;
  start([&](boost::system::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  io.restart();
  while (!done) {
    const bool stopping = stop && stop->load();
    if (stopping || std::chrono::steady_clock::now() >= deadline) {
      socket.close();
      io.restart();
      io.run();  // the abandoned operation completes (aborted)
      if (stopping) throw stopped();
      throw std::runtime_error(what + ": no answer in time");
    }
    io.run_for(std::chrono::milliseconds(100));
  }
  return result;
}

/** Sends `req` on `stream` and reads the reply (at most 1 MiB), within the deadline. */
template <class Stream>
http_reply exchange(net::io_context& io, Stream& stream, beast::tcp_stream& socket, http::request<http::string_body>& req,
                    const std::string& url, std::chrono::steady_clock::time_point deadline, const std::atomic<bool>* stop) {
  auto ec = step(io, socket, deadline, stop, "sending to " + url, [&](auto done) { http::async_write(stream, req, done); });
  if (ec) throw std::runtime_error("cannot send to " + url + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  parser.skip(req.method() == http::verb::head);
  ec = step(io, socket, deadline, stop, "waiting for " + url, [&](auto done) { http::async_read(stream, buffer, parser, done); });
  if (ec) throw std::runtime_error("no answer from " + url + ": " + ec.message());
  auto res = parser.release();
  http_reply out;
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(f.value());
  }
  out.body = std::move(res.body());
  socket.close();  // Connection: close; no TLS shutdown to wait for
  return out;
}

}  // namespace

http_reply http_request(const std::string& method, const std::string& url, const std::string& body,
                        const std::string& content_type, const std::string& ca_file, const std::atomic<bool>* stop,
                        std::chrono::seconds timeout) {
  const url_parts u = parse(url);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  net::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  boost::system::error_code ec;
  if (u.tls) {
    ctx.set_verify_mode(ssl::verify_peer);
    if (ca_file.empty()) ctx.set_default_verify_paths(ec);
    else ctx.load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("cannot load the CA file " + ca_file + ": " + ec.message());
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  auto& socket = beast::get_lowest_layer(stream);
  SSL* s = stream.native_handle();
  boost::system::error_code addr_ec;
  (void)net::ip::make_address(u.host, addr_ec);
  if (addr_ec) {
    SSL_set_tlsext_host_name(s, u.host.c_str());
    SSL_set1_host(s, u.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), u.host.c_str());
  }
  net::ip::tcp::resolver resolver(io);
  net::ip::tcp::resolver::results_type endpoints;
  ec = step(io, socket, deadline, stop, "resolving " + u.host, [&](auto done) {
    resolver.async_resolve(u.host, u.port, [&, done](boost::system::error_code e, auto results) {
      endpoints = results;
      done(e);
    });
  });
  if (ec) throw std::runtime_error("cannot resolve " + u.host + ": " + ec.message());
  // Every address in turn (a name with a broken IPv6 address still works over IPv4).
  ec = step(io, socket, deadline, stop, "connecting to " + u.host, [&](auto done) { socket.async_connect(endpoints, done); });
  if (ec) throw std::runtime_error("cannot connect to " + u.host + ":" + u.port + ": " + ec.message());
  if (u.tls) {
    ec = step(io, socket, deadline, stop, "TLS with " + u.host,
              [&](auto done) { stream.async_handshake(ssl::stream_base::client, done); });
    if (ec) {
      long v = SSL_get_verify_result(s);
      throw std::runtime_error("TLS with " + u.host + ":" + u.port + " failed: " +
                               (v != X509_V_OK ? X509_verify_cert_error_string(v) : ec.message()));
    }
  }
  http::request<http::string_body> req;
  req.method(http::string_to_verb(method));
  req.target(u.target);
  req.version(11);
  const std::string host = addr_ec || u.host.find(':') == std::string::npos ? u.host : "[" + u.host + "]";
  req.set(http::field::host, u.port == (u.tls ? "443" : "80") ? host : host + ":" + u.port);
  req.set(http::field::user_agent, "kinfra");
  req.set(http::field::connection, "close");
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  if (method == "POST") {
    req.body() = body;
    req.prepare_payload();
  }
  if (u.tls) return exchange(io, stream, socket, req, url, deadline, stop);
  return exchange(io, socket, socket, req, url, deadline, stop);
}

std::optional<std::chrono::seconds> parse_retry_after(const std::string& value, std::time_t now) {
  auto begin = value.find_first_not_of(" \t");
  if (begin == std::string::npos) return std::nullopt;
  const std::string v = value.substr(begin, value.find_last_not_of(" \t") + 1 - begin);
  if (v.find_first_not_of("0123456789") == std::string::npos) {
    if (v.size() > 9) return std::chrono::seconds(999999999);  // (longer than anyone waits)
    return std::chrono::seconds(std::stol(v));
  }
  std::tm tm{};
  const char* end = ::strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);  // IMF-fixdate
  if (!end || *end) return std::nullopt;
  const std::time_t at = ::timegm(&tm);
  return std::chrono::seconds(at > now ? at - now : 0);
}

}  // namespace kinfra::app::acme
