#pragma once
/**
 * @file An HTTP/2 connection from a client (ALPN `h2` on TLS, or prior-knowledge h2c), framed by
 * libnghttp2.
 *
 * nghttp2 does the framing, HPACK, flow control and the protocol's own validation; this class
 * moves bytes between it and the socket, and gives every request stream to a client_session of
 * its own through an h2_channel, so that a request over HTTP/2 is served by exactly the code that
 * serves one over HTTP/1.1 and is forwarded over the same HTTP/1.1 upstream pools.
 *
 * Two loops share the connection: one reads and feeds nghttp2, one takes what nghttp2 wants to
 * send (after applying what the streams' sessions did) and writes it. Limits against the known
 * attacks (rapid reset, CONTINUATION, SETTINGS/PING/empty-DATA floods) end the connection with
 * GOAWAY ENHANCE_YOUR_CALM; see docs/http2.md.
 */

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/h2_channel.hpp"
#include "proxy/h2_relay.hpp"
#include "proxy/stream.hpp"
#include "proxy/worker.hpp"

struct nghttp2_session;

namespace kinfra::proxy {

class h2_connection final : public h2_channel::owner {
 public:
  /**
   * @param io the client connection, TLS already established (or plain, for h2c)
   * @param already bytes read from `io` that belong to HTTP/2 (the h2c preface); taken
   * @param clock the connection's deadline, kept by this class while it runs
   */
  h2_connection(worker& w, stream& io, boost::beast::flat_buffer& already, std::shared_ptr<const listener_info> listener,
                client_address peer, timed& clock);
  ~h2_connection();
  h2_connection(const h2_connection&) = delete;
  h2_connection& operator=(const h2_connection&) = delete;

  /** Serves the connection until it ends; every stream's channel is reset by then. */
  net::awaitable<void> run();

  /** The connection's deadline passed: idle (GOAWAY, close) or a client that stopped reading (close). */
  void on_deadline();
  /** The worker stops: close now. */
  void close_now();
  /** The worker drains: GOAWAY; the streams in flight finish, then the connection closes. */
  void on_drain();

  // h2_channel::owner
  void touched(h2_channel& ch) override;

  // A stream forwarded as HTTP/2 (see h2_relay.hpp); the service's connection calls these.
  /** The response head is in the relay: send it. */
  void relay_response(std::int32_t id);
  /** More response bytes, or its end (and trailers). */
  void relay_resume(std::int32_t id);
  /** The service reset its stream after the response started. */
  void relay_reset(std::int32_t id, std::uint32_t code);
  /**
   * No response will come (no connection, refused, reset early, a body too large): an error
   * answer, `status` for HTTP, a trailers-only `grpc_status` for gRPC.
   */
  void relay_failed(std::int32_t id, unsigned status, unsigned grpc_status, const std::string& why);
  /** The service took `n` request bytes: the client's window opens by as much. */
  void relay_consumed(std::int32_t id, std::size_t n);

  struct stream_state;
  struct callbacks;

 private:
  /** How long a closing connection waits for the client to read the GOAWAY and close. */
  static constexpr std::chrono::milliseconds closing_time{2000};
  /** Between the shutdown notice and the final GOAWAY when draining: a round trip, generously. */
  static constexpr std::chrono::milliseconds notice_time{500};

  /** A token bucket: `take` fails once more than `burst` came faster than `per_second`. */
  struct bucket {
    double tokens;
    double burst;
    double per_second;
    std::int64_t last_ms = 0;
    bool take(std::int64_t now);
  };

  net::awaitable<void> read_loop();
  net::awaitable<void> write_loop();
  /** Applies what the streams' sessions did (bytes read, response heads and bodies, ends). */
  void apply_touched();
  void apply(stream_state& s);
  void start_stream(stream_state& s, bool end_stream);
  /** Starts the sessions of the streams start_stream prepared during the last read. */
  void start_sessions();
  void refuse_stream(stream_state& s, unsigned status, const std::string& reason);
  /** The route a stream takes when its service speaks HTTP/2 (`protocol: h2|h2c`), else null. */
  const route* relay_route(const stream_state& s, const generation& gen) const;
  void start_relay(stream_state& s, const route& r);
  /** The relayed stream is over: counted in /metrics and written to the access log. */
  void log_relay(const stream_state& s);
  /** Every relay of this connection lets go of it (the connection ends). */
  void detach_relays();
  void submit_response_head(stream_state& s);
  /** Submits the final response head in `s.res` (with its body to come, or without one). */
  void submit_final_head(stream_state& s);
  /** Ends the connection for misbehaving: GOAWAY ENHANCE_YOUR_CALM. */
  void calm_down(const char* why);
  void wake();
  void update_deadline();
  stream_state* find(std::int32_t id);

  worker& w_;
  stream& io_;
  boost::beast::flat_buffer& in_;
  std::shared_ptr<const listener_info> listener_;
  client_address peer_;
  timed& clock_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::unique_ptr<stream_state>> streams_;
  std::vector<std::unique_ptr<stream_state>> spare_;  ///< ended streams, reused (see stream_state::reuse)
  std::vector<std::int32_t> touched_;
  std::vector<std::int32_t> starting_;  ///< streams whose session starts after this read
  std::vector<std::uint8_t> out_;  ///< frames gathered for one write
  net::steady_timer wake_;
  bool waiting_ = false;
  bool wake_pending_ = false;
  bool writing_ = false;
  bool reading_done_ = false;
  bool closing_ = false;    ///< GOAWAY sent (drain, idle, misbehaviour): close once streams are done
  bool draining_ = false;  ///< the shutdown notice went (the final GOAWAY follows)
  bool write_failed_ = false;
  std::int64_t drain_started_ = 0;
  std::int64_t closing_since_ = 0;
  std::int64_t idle_since_ = now_ms();  ///< when the last stream ended (or the connection began)
  std::size_t conn_consume_ = 0;  ///< request bytes of gone streams, for the connection window
  unsigned streams_started_ = 0;
  bucket resets_{200, 200, 20};        ///< streams the client reset (CVE-2023-44487)
  bucket control_{1000, 1000, 100};    ///< SETTINGS, PING, PRIORITY, WINDOW_UPDATE, empty DATA
  std::int64_t write_started_ = 0;
};

}  // namespace kinfra::proxy
