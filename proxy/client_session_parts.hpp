#pragma once
/**
 * @file What the files that implement client_session share (client_session.cpp: the connection
 * and the request head; client_upstream.cpp: picking and connecting a target; client_forward.cpp:
 * the request and response bodies; client_request_log.cpp: counting and logging). Not for other
 * modules.
 */

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace kinfra::proxy::session_parts {

inline constexpr auto tok = boost::asio::as_tuple(boost::asio::use_awaitable);
// Heads are read 4 KiB at a time: big enough for almost every head, small enough that thousands of
// connections do not spread their hot bytes over many pages.
inline constexpr std::size_t read_size = 4096;
inline constexpr std::uint32_t max_response_header = 64 * 1024;
// A target that refused a connection is skipped for this long (passive health check).
inline constexpr std::int64_t passive_down_ms = 2000;

/** "5s" or "1500ms", for messages. */
inline std::string describe_ms(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s" : std::to_string(d.count()) + "ms";
}

}  // namespace kinfra::proxy::session_parts
