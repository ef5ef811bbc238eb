#pragma once
/**
 * @file Moving message bodies and tunnel bytes between two sockets with bounded memory.
 *
 * Each function reads a little, writes it on, and repeats; none holds more than one read's worth
 * of a body. They never throw: the outcome says which side failed, so the session can decide
 * between an error page, a closed connection or a retry.
 */

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>

#include "proxy/message_parser.hpp"
#include "proxy/worker.hpp"

namespace kinfra::proxy {

namespace beast = boost::beast;
namespace http = beast::http;

/** How a relay ended. */
enum class relay_status {
  done,          ///< the whole body went through
  source_error,  ///< the sending side closed, reset or timed out before the end
  sink_error,    ///< the receiving side could not take the bytes
  too_large,     ///< the body passed its size limit
  bad_framing,   ///< the chunked encoding was invalid
};

/** Keeps a connection's deadline moving while bytes flow: "no progress for `timeout`" fails. */
struct progress_timer {
  timed& owner;
  std::chrono::milliseconds timeout;
  void touch() const { owner.deadline = now_ms() + timeout.count(); }
};

/** Copies exactly `length` bytes from `src` (starting with what is already in `src_buf`) to `dst`. */
net::awaitable<relay_status> relay_length(stream& src, beast::flat_buffer& src_buf, stream& dst,
                                          std::uint64_t length, progress_timer timer);

/**
 * Relays a chunked body parsed by `parser` (whose header is done). With `rechunk`, the chunks are
 * written out again in canonical form (size, data, last chunk; extensions and trailers dropped);
 * without, only the data is written (for HTTP/1.0 clients, where the connection close ends it).
 * `limit` bounds the body size (unlimited_bytes for none).
 */
template <bool IsRequest>
net::awaitable<relay_status> relay_chunked(relay_parser<IsRequest>& parser, stream& src,
                                           beast::flat_buffer& src_buf, stream& dst, bool rechunk,
                                           std::uint64_t limit, progress_timer timer);

/** Relays a body delimited by the connection close, as chunks when `rechunk`, else as is. */
net::awaitable<relay_status> relay_until_eof(stream& src, beast::flat_buffer& src_buf, stream& dst,
                                             bool rechunk, progress_timer timer);

/**
 * One direction of an upgraded connection: copies until `src` ends, then half-closes `dst`.
 * @return true when `src` ended cleanly (EOF), false on an error
 */
net::awaitable<bool> pump(stream& src, beast::flat_buffer& src_buf, stream& dst, progress_timer timer);

}  // namespace kinfra::proxy
