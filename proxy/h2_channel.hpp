#pragma once
/**
 * @file One HTTP/2 stream as the request pipeline sees it: an in-memory duplex byte stream.
 *
 * The HTTP/2 connection (h2_connection) turns a stream's HEADERS and DATA into the bytes of one
 * HTTP/1.1 request and puts them here; a client_session reads them as if from a socket, serves the
 * request exactly as it serves one over HTTP/1.1 (routing, admin pages, fallback, hold, limits,
 * timeouts, metrics, access log), and writes its HTTP/1.1 response here; the connection turns
 * that back into HEADERS and DATA. Both sides run on the same worker thread.
 *
 * Memory is bounded both ways: the request side holds at most what the stream's flow-control
 * window let the client send (the window opens again only as the session reads), the response
 * side at most `response_capacity` bytes (a write waits until the connection has taken some).
 */

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kinfra::proxy {

namespace net = boost::asio;

class timed;

/** Who is at the other end of a client connection (what its requests' sessions need to know). */
struct client_address {
  std::string ip;
  bool loopback = false;
};

class h2_channel {
 public:
  using handler = net::any_completion_handler<void(boost::system::error_code, std::size_t)>;
  /**
   * Response bytes held at most. Above the largest head a session writes (a 64 KiB upstream head
   * plus kinfra's fields), since the head is parsed in one piece.
   */
  static constexpr std::size_t response_capacity = 80 * 1024;

  /** The connection side: told when the pipeline did something it must act on. */
  class owner {
   public:
    /** `ch` has news (bytes read, response bytes, the response ended); act on it soon, not now. */
    virtual void touched(h2_channel& ch) = 0;

   protected:
    ~owner() = default;
  };

  /** How the response side ended. */
  enum class response_end : std::uint8_t { open, complete, aborted };

  h2_channel(net::any_io_executor ex, owner* o, std::int32_t id) : ex_(std::move(ex)), owner_(o), id_(id) {}
  h2_channel(const h2_channel&) = delete;
  h2_channel& operator=(const h2_channel&) = delete;

  std::int32_t id() const { return id_; }
  const net::any_io_executor& executor() const { return ex_; }

  // --- The pipeline's side (through proxy::stream) ---
  /** Reads request bytes into `b`; eof once the request is complete, connection_reset if reset. */
  void read(net::mutable_buffer b, handler h);
  /** Moves the request bytes already here into `into` at once (no read to complete); @return how many. */
  std::size_t take_request(boost::beast::flat_buffer& into);
  /** Writes response bytes (as many as fit, at least one once there is room). */
  template <class ConstBuffers>
  void write(const ConstBuffers& buffers, handler h) {
    std::array<net::const_buffer, 8> parts;
    std::size_t n = 0;
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers) && n < parts.size(); ++it)
      if (net::const_buffer b(*it); b.size() > 0) parts[n++] = b;
    write_parts(parts.data(), n, std::move(h));
  }
  /**
   * Hands the response head over parsed (the status and the end-to-end fields, "Name: value\r\n"
   * each) instead of as bytes, which the connection would parse again. False when response bytes
   * are still waiting to be taken (an interim response) or the stream is over: the head is then
   * written as bytes, behind them. (`fields` is copied: the caller's string keeps its capacity
   * for the next response.)
   */
  bool put_response_head(unsigned status, std::string_view fields);
  /**
   * The last response bytes and the end at once, when they fit (else false, nothing done): the
   * connection then sends END_STREAM on the last DATA frame instead of an empty one after it.
   */
  bool write_last(net::const_buffer b);
  /** Pending operations complete with operation_aborted. */
  void cancel();
  /** The response is complete (END_STREAM). */
  void shutdown_send();
  /** The pipeline is done with the stream; a response not complete by now is reset. */
  void close();

  // --- The connection's side ---
  /** Appends request bytes (a head, a body piece, chunk framing); `payload` of them count for flow control. */
  void add_request(const char* data, std::size_t size, std::size_t payload);
  /** No more request bytes will come. */
  void end_request();
  /** The stream was reset or the connection is gone: every operation fails from now on. */
  void reset();
  /** The response bytes written and not yet taken. */
  boost::beast::flat_buffer& response() { return out_; }
  /** The status of a head handed over by put_response_head (0: none); the bytes that follow are body. */
  unsigned head_status() const { return head_status_; }
  const std::string& head_fields() const { return head_fields_; }
  /** `n` response bytes were taken: room for a waiting write. */
  void took_response(std::size_t n);
  response_end end() const { return end_; }
  bool closed() const { return closed_; }
  bool request_ended() const { return in_eof_; }
  /** Drops the request bytes nobody will read; @return their payload, for the connection window. */
  std::size_t discard_request() {
    in_.consume(in_.size());
    std::size_t n = payload_owed_;
    payload_owed_ = 0;
    return n;
  }
  /** Request payload bytes the pipeline read since the last call (to open the window again). */
  std::size_t take_consumed() {
    std::size_t n = consumed_;
    consumed_ = 0;
    return n;
  }
  /**
   * The session serving the stream (cleared when it goes): a reset closes it at once, so its
   * upstream request and any wait end with the stream.
   */
  timed* session = nullptr;
  /** Set while the channel is on its owner's to-do list. */
  bool queued = false;

  /**
   * The request's fields besides the request line and its framing, "name: value\r\n" each,
   * already checked by nghttp2 and h2_request_head: the session records them without parsing
   * them (request_parser::add_field), before it parses the rest from the request bytes.
   */
  std::string request_fields;

  // What the session asks about its "socket".
  boost::asio::ip::tcp::endpoint local_endpoint;
  bool secure = false;

 private:
  void write_parts(const net::const_buffer* parts, std::size_t count, handler h);
  std::size_t copy_in(const net::const_buffer* parts, std::size_t count);
  void complete(handler&& h, boost::system::error_code ec, std::size_t n);
  /** Completes and empties a pending slot. */
  void complete(std::optional<handler>& slot, boost::system::error_code ec, std::size_t n);
  void notify();

  net::any_io_executor ex_;
  owner* owner_;
  std::int32_t id_;
  boost::beast::flat_buffer in_;
  boost::beast::flat_buffer out_;
  bool in_eof_ = false;
  bool reset_ = false;
  bool closed_ = false;
  response_end end_ = response_end::open;
  unsigned head_status_ = 0;
  std::string head_fields_;
  std::size_t consumed_ = 0;   ///< payload bytes read, not yet reported
  std::size_t payload_owed_ = 0;  ///< payload bytes added, not yet read
  // (std::optional: Boost 1.81's any_completion_handler move assignment recurses without end;
  // only its move constructor is used.)
  std::optional<handler> pending_read_;
  net::mutable_buffer read_to_;
  std::optional<handler> pending_write_;
  net::const_buffer write_from_;
};

}  // namespace kinfra::proxy
