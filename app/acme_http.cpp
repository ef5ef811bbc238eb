#include "app/acme_http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <sys/socket.h>
#include <sys/time.h>

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
  std::string host, port = "443", target = "/";
};

url_parts parse(const std::string& url) {
  if (url.rfind("https://", 0) != 0) throw std::runtime_error("not an https:// URL: " + url);
  url_parts p;
  std::string rest = url.substr(8);
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

void set_timeouts(int fd, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

http_reply https_request(const std::string& method, const std::string& url, const std::string& body,
                         const std::string& content_type, const std::string& ca_file, std::chrono::seconds timeout) {
  const url_parts u = parse(url);
  net::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  if (ca_file.empty()) ctx.set_default_verify_paths(ec);
  else ctx.load_verify_file(ca_file, ec);
  if (ec) throw std::runtime_error("cannot load the CA file " + ca_file + ": " + ec.message());
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  SSL* s = stream.native_handle();
  boost::system::error_code addr_ec;
  auto literal = net::ip::make_address(u.host, addr_ec);
  if (addr_ec) {
    SSL_set_tlsext_host_name(s, u.host.c_str());
    SSL_set1_host(s, u.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), u.host.c_str());
  }
  net::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(u.host, u.port, ec);
  if (ec) throw std::runtime_error("cannot resolve " + u.host + ": " + ec.message());
  beast::get_lowest_layer(stream).socket().open(endpoints.begin()->endpoint().protocol(), ec);
  if (!ec) set_timeouts(beast::get_lowest_layer(stream).socket().native_handle(), timeout);
  beast::get_lowest_layer(stream).socket().connect(endpoints.begin()->endpoint(), ec);
  if (ec) throw std::runtime_error("cannot connect to " + u.host + ":" + u.port + ": " + ec.message());
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) {
    long v = SSL_get_verify_result(s);
    throw std::runtime_error("TLS with " + u.host + ":" + u.port + " failed: " +
                             (v != X509_V_OK ? X509_verify_cert_error_string(v) : ec.message()));
  }
  http::request<http::string_body> req;
  req.method(http::string_to_verb(method));
  req.target(u.target);
  req.version(11);
  req.set(http::field::host, u.port == "443" ? u.host : u.host + ":" + u.port);
  req.set(http::field::user_agent, "kinfra-acme");
  req.set(http::field::connection, "close");
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  if (method == "POST") {
    req.body() = body;
    req.prepare_payload();
  }
  http::write(stream, req, ec);
  if (ec) throw std::runtime_error("cannot send to " + url + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  parser.skip(method == "HEAD");
  http::read(stream, buffer, parser, ec);
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
  stream.shutdown(ec);  // the CA may just close: not an error here
  return out;
}

}  // namespace kinfra::app::acme
