#include "proxy/relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <charconv>
#include <memory>
#include <string>

namespace kinfra::proxy {
namespace {

constexpr auto tok = net::as_tuple(net::use_awaitable);
constexpr std::size_t relay_chunk = 64 * 1024;

/** The sending side ended its stream: EOF, or TLS closed without close_notify (common practice). */
bool is_end(const boost::system::error_code& ec) {
  return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
}

bool harmless_close(const boost::system::error_code& ec) {
  return is_end(ec) || ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

}  // namespace

net::awaitable<relay_status> relay_length(stream& src, beast::flat_buffer& src_buf, stream& dst,
                                          std::uint64_t length, progress_timer timer) {
  // What arrived together with the header goes first.
  if (src_buf.size() > 0 && length > 0) {
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(src_buf.size(), length));
    timer.touch();
    auto [ec, n] = co_await net::async_write(dst, net::buffer(src_buf.data().data(), take), tok);
    dst.bytes_out += n;
    if (ec) co_return relay_status::sink_error;
    src_buf.consume(take);
    length -= take;
  }
  if (length == 0) co_return relay_status::done;
  std::unique_ptr<char[]> buf(new char[relay_chunk]);
  while (length > 0) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(relay_chunk, length));
    timer.touch();
    auto [rec, n] = co_await src.async_read_some(net::buffer(buf.get(), want), tok);
    src.bytes_in += n;
    if (rec) co_return relay_status::source_error;
    timer.touch();
    auto [wec, m] = co_await net::async_write(dst, net::buffer(buf.get(), n), tok);
    dst.bytes_out += m;
    if (wec) co_return relay_status::sink_error;
    length -= n;
  }
  co_return relay_status::done;
}

template <bool IsRequest>
net::awaitable<relay_status> relay_chunked(relay_parser<IsRequest>& parser, stream& src,
                                           beast::flat_buffer& src_buf, stream& dst, bool rechunk,
                                           std::uint64_t limit, progress_timer timer) {
  // Beast parses the chunk framing; the parser's callbacks write the canonical form to `out`.
  std::string out;
  parser.chunk_out = &out;
  parser.rechunk = rechunk;
  parser.chunk_limit = limit;
  parser.eager(true);
  for (;;) {
    boost::system::error_code ec;
    std::size_t used = 0;
    if (src_buf.size() > 0) {
      used = parser.put(src_buf.data(), ec);
      src_buf.consume(used);
      if (ec && ec != http::error::need_more)
        co_return parser.too_large ? relay_status::too_large : relay_status::bad_framing;
      // A chunk line ending in a bare LF never completes for Beast: refused now, not at the timeout.
      if (ec == http::error::need_more &&
          parser.framing_cannot_complete({static_cast<const char*>(src_buf.data().data()), src_buf.size()}, used > 0))
        co_return relay_status::bad_framing;
    }
    if (parser.is_done() && rechunk) out += "0\r\n\r\n";
    if (!out.empty()) {
      timer.touch();
      auto [wec, n] = co_await net::async_write(dst, net::buffer(out), tok);
      dst.bytes_out += n;
      if (wec) co_return relay_status::sink_error;
      out.clear();
    }
    if (parser.is_done()) {
      // A long chunked body grew the connection's buffer; give the memory back while idle.
      if (src_buf.size() == 0 && src_buf.capacity() > 16 * 1024) src_buf.shrink_to_fit();
      co_return relay_status::done;
    }
    if (!ec && used > 0 && src_buf.size() > 0) continue;  // the parser wants another pass over what is left
    timer.touch();
    auto [rec, n] = co_await src.async_read_some(src_buf.prepare(relay_chunk), tok);
    src.bytes_in += n;
    if (rec) co_return relay_status::source_error;
    src_buf.commit(n);
  }
}

template net::awaitable<relay_status> relay_chunked<true>(relay_parser<true>&, stream&, beast::flat_buffer&,
                                                          stream&, bool, std::uint64_t, progress_timer);
template net::awaitable<relay_status> relay_chunked<false>(relay_parser<false>&, stream&, beast::flat_buffer&,
                                                           stream&, bool, std::uint64_t, progress_timer);

net::awaitable<relay_status> relay_until_eof(stream& src, beast::flat_buffer& src_buf, stream& dst,
                                             bool rechunk, progress_timer timer) {
  std::unique_ptr<char[]> buf(new char[relay_chunk]);
  std::array<char, 20> head;
  auto send = [&](const char* data, std::size_t size) -> net::awaitable<bool> {
    timer.touch();
    if (!rechunk) {
      auto [ec, n] = co_await net::async_write(dst, net::buffer(data, size), tok);
      dst.bytes_out += n;
      co_return !ec;
    }
    auto [end, _] = std::to_chars(head.data(), head.data() + head.size() - 2, size, 16);
    *end++ = '\r';
    *end++ = '\n';
    std::array<net::const_buffer, 3> parts{net::buffer(head.data(), end - head.data()), net::buffer(data, size),
                                           net::buffer("\r\n", 2)};
    auto [ec, n] = co_await net::async_write(dst, parts, tok);
    dst.bytes_out += n;
    co_return !ec;
  };
  if (src_buf.size() > 0) {
    if (!co_await send(static_cast<const char*>(src_buf.data().data()), src_buf.size()))
      co_return relay_status::sink_error;
    src_buf.consume(src_buf.size());
  }
  for (;;) {
    timer.touch();
    auto [rec, n] = co_await src.async_read_some(net::buffer(buf.get(), relay_chunk), tok);
    src.bytes_in += n;
    if (is_end(rec)) break;
    if (rec) co_return relay_status::source_error;
    if (!co_await send(buf.get(), n)) co_return relay_status::sink_error;
  }
  if (rechunk) {
    timer.touch();
    auto [ec, n] = co_await net::async_write(dst, net::buffer("0\r\n\r\n", 5), tok);
    dst.bytes_out += n;
    if (ec) co_return relay_status::sink_error;
  }
  co_return relay_status::done;
}

net::awaitable<bool> pump(stream& src, beast::flat_buffer& src_buf, stream& dst, progress_timer timer) {
  if (src_buf.size() > 0) {
    timer.touch();
    auto [ec, n] = co_await net::async_write(dst, src_buf.data(), tok);
    dst.bytes_out += n;
    if (ec) co_return false;
    src_buf.consume(src_buf.size());
  }
  std::unique_ptr<char[]> buf(new char[relay_chunk]);
  for (;;) {
    timer.touch();
    auto [rec, n] = co_await src.async_read_some(net::buffer(buf.get(), relay_chunk), tok);
    src.bytes_in += n;
    if (rec) {
      if (is_end(rec)) {
        dst.shutdown_send();
        co_return true;
      }
      // A reset or timeout on one side ends the tunnel on both.
      dst.close();
      src.close();
      co_return harmless_close(rec);
    }
    timer.touch();
    auto [wec, m] = co_await net::async_write(dst, net::buffer(buf.get(), n), tok);
    dst.bytes_out += m;
    if (wec) {
      src.close();
      dst.close();
      co_return false;
    }
  }
}

}  // namespace kinfra::proxy
