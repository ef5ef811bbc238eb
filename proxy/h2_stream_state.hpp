#pragma once
/**
 * @file The state of one client stream of an h2_connection (shared by h2_connection.cpp and
 * h2_forward.cpp; nothing else includes it).
 */

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "proxy/h2_channel.hpp"
#include "proxy/h2_connection.hpp"
#include "proxy/h2_relay.hpp"
#include "proxy/h2_translate.hpp"
#include "proxy/message_parser.hpp"
#include "proxy/router.hpp"

namespace kinfra::proxy {

/** One request stream: its head while it arrives, then its channel and response translation. */
struct h2_connection::stream_state {
  stream_state(std::int32_t id, std::size_t max_header) : id(id), head(max_header) {}
  enum class response_phase : std::uint8_t { head, body, done };

  /** The capacity its buffers keep for the next stream. */
  std::size_t retained() const {
    return head.capacity() + res.storage.capacity() + res_head.fields.capacity() + line.capacity() + fields.capacity();
  }

  /** Ready to serve another stream: as if new, with the buffers' capacity kept. */
  void reuse(std::int32_t new_id, std::size_t max_header) {
    id = new_id;
    head.reset(max_header);
    chan.reset();
    chunked = request_ended = false;
    phase = response_phase::head;
    res_head.clear();
    parser.reset();
    res.clear();
    refusal.clear();
    refusal_sent = 0;
    orphan_deadline = 0;
    relay.reset();
    gen.reset();
    matched = nullptr;
  }

  std::int32_t id;
  h2_request_head head;
  std::shared_ptr<h2_channel> chan;  ///< once the head is complete and a session serves it
  bool chunked = false;              ///< the request body goes out in chunks (no Content-Length)
  bool request_ended = false;        ///< END_STREAM came from the client
  response_phase phase = response_phase::head;
  response_head res_head;
  std::optional<response_parser> parser;
  h2_response_fields res;
  std::string refusal;  ///< the body of a response the connection makes itself (400, 431)
  std::string line, fields;  ///< the request head as the session gets it (see h2_request_head::finish)
  std::size_t refusal_sent = 0;
  /** When nobody (no session, no relay) keeps this stream's time: when it is reset (0: not so). */
  std::int64_t orphan_deadline = 0;
  // Forwarded as HTTP/2 instead (a `protocol: h2|h2c` service): see h2_relay.hpp.
  std::shared_ptr<h2_relay> relay;
  std::shared_ptr<generation> gen;  ///< keeps `route` alive
  const route* matched = nullptr;  ///< the route of a relayed stream
};

}  // namespace kinfra::proxy
