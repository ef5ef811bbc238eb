#pragma once
/**
 * @file One client connection: read a request, route it, forward it, relay the answer, repeat.
 *
 * The session is a single coroutine that reads top to bottom like blocking code. Timeouts are
 * not timers per operation: the session keeps one deadline that its worker's sweeper checks, and
 * when it passes the sweeper cancels the sockets, so the pending operation ends and the session
 * answers 408 or 504 or closes, as the phase requires.
 */

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "proxy/http_rules.hpp"
#include "proxy/message_parser.hpp"
#include "proxy/proxy_error.hpp"
#include "proxy/relay.hpp"
#include "proxy/router.hpp"
#include "proxy/uri_path.hpp"
#include "proxy/worker.hpp"

namespace kinfra::proxy {

class client_session final : public timed {
 public:
  /** `listener`: how connections accepted there are served, as it was when this one came. */
  client_session(worker& w, tcp::socket socket, std::shared_ptr<const listener_info> listener)
      : client_session(w, std::move(socket), std::move(listener), true) {}
  /** Takes over a keep-alive connection that a dormant_connection held (already counted as open). */
  struct resumed_t {};
  static constexpr resumed_t resumed{};
  client_session(worker& w, tcp::socket socket, std::shared_ptr<const listener_info> listener, resumed_t,
                 std::unique_ptr<tls_stream> tls, std::int64_t idle_until)
      : client_session(w, std::move(socket), std::move(listener), false) {
    client_.adopt_tls(std::move(tls));
    resumed_idle_until_ = idle_until;
  }
  /** One HTTP/2 stream (see h2_channel): serves its one request, then ends. */
  client_session(worker& w, std::shared_ptr<h2_channel> channel, std::shared_ptr<const listener_info> listener,
                 const client_address& peer);
  ~client_session() override;

  // Reuse for HTTP/2 streams (see worker::keep_spare_session).
  /** The stream ended cleanly: the session may serve another (else it is freed). */
  bool reusable() const { return stream_session_ && !closed_ && !timed_out_; }
  /** Lets go of everything of the ended stream; the worker's sweeper no longer sees it. */
  void park();
  /** Serves another stream, as a session made for it would (the buffers' capacity is kept). */
  void serve_stream(std::shared_ptr<h2_channel> channel, std::shared_ptr<const listener_info> listener,
                    const client_address& peer);

  /** Serves requests until the client leaves, an error closes the connection, or the worker stops. */
  net::awaitable<void> run();

  // timed
  void on_deadline() override;
  void close_now() override;
  void on_drain() override;
  void on_listener_closed(std::size_t id) override;

 private:
  /** A connection: a new one (`fresh`, counted as opened) or a dormant one taken over. */
  client_session(worker& w, tcp::socket socket, std::shared_ptr<const listener_info> listener, bool fresh);

  /** What the session is waiting for; decides what a timeout means. */
  enum class phase : std::uint8_t {
    handshake,        ///< TLS handshake: close quietly
    idle,             ///< between requests: close quietly
    request_header,   ///< 408
    connect,          ///< try the next target, then 504
    request_body,     ///< client too slow to send its body: 408
    response_header,  ///< upstream too slow: 504
    response_body,    ///< either side stalled mid-body: close
    tunnel,           ///< upgraded connection idle: close
    linger,           ///< draining before close
    h2,               ///< an HTTP/2 connection: its h2_connection keeps the time
  };

  /**
   * What happens to the client connection after a request. `dormant`: it stayed idle past
   * worker::rest_after, and a dormant_connection holds it from now on.
   */
  enum class outcome { keep_alive, close, linger, abort, retry, dormant };

  /** A request counted in flight to a `port: auto` instance, for as long as it lasts (tunnels too). */
  class flight {
   public:
    flight() = default;
    flight(const flight&) = delete;
    flight& operator=(const flight&) = delete;
    ~flight() { land(); }
    void board(const std::shared_ptr<std::atomic<int>>& counter) {
      land();
      counter_ = counter;
      if (counter_) counter_->fetch_add(1, std::memory_order_acq_rel);
    }
    void land() {
      if (counter_) counter_->fetch_sub(1, std::memory_order_acq_rel);
      counter_.reset();
    }

   private:
    std::shared_ptr<std::atomic<int>> counter_;
  };

  /**
   * A request counted in flight to its service (/metrics, the dashboard's history) from the
   * choice of an upstream to its end; ended on the worker that began it (its cell's one writer).
   */
  class activity {
   public:
    activity() = default;
    activity(const activity&) = delete;
    activity& operator=(const activity&) = delete;
    ~activity() {
      if (stats_) stats_->ended(worker_);
    }
    void begin(service_stats* stats, unsigned worker) {
      if (stats_ || !stats) return;  // (a retry is the same request)
      stats_ = stats;
      worker_ = worker;
      stats_->began(worker);
    }

   private:
    service_stats* stats_ = nullptr;
    unsigned worker_ = 0;
  };

  /** Where the request body of an exchange is: one state, set by the body relay (or its end). */
  enum class body_state : std::uint8_t {
    sending,          ///< still being relayed (or not started)
    done,             ///< read completely, or there is none
    upstream_failed,  ///< the upstream stopped reading it (it may still answer)
    client_gone,      ///< the client closed or reset while sending it
    too_large,        ///< beyond the route's max_body_bytes
    malformed,        ///< its chunked framing is broken
    abandoned,        ///< the response ended first; the relay was stopped
  };

  /** The state of one request/response exchange. */
  struct exchange {
    const route* target_route = nullptr;
    /** The end of this request's hold: one timeout for every wait of the request. */
    std::optional<std::chrono::steady_clock::time_point> hold_until;
    bool held_after_failure = false;  ///< waited once after a refused or dropped connection
    body_framing framing = body_framing::none;
    std::uint64_t body_length = 0;
    std::uint64_t max_body = 0;
    bool http10 = false;
    bool keep_alive = true;
    bool head = false;
    bool upgrade = false;
    bool expect_continue = false;
    bool retryable = false;      ///< idempotent and without a body
    body_state body = body_state::sending;
    bool response_started = false;
    bool fresh_only = false;         ///< retrying: do not take a pooled connection
    bool refused = false;            ///< a target refused the connection (not a timeout)
    bool upstream_reusable = false;  ///< the upstream connection may go back to the pool
    std::unique_ptr<upstream_connection> up;
    flight in_flight;  ///< counts it on its `port: auto` instance
    activity active;   ///< counts it on its service

    /** The request body was read completely (or there is none). */
    bool body_done() const { return body == body_state::done; }
    /** Relaying the request body stopped early, for whatever reason. */
    bool body_failed() const { return body != body_state::sending && body != body_state::done; }
    /** The request body relay stopped for a reason the response side must answer. */
    bool body_stopped() const {
      return body == body_state::client_gone || body == body_state::too_large || body == body_state::malformed;
    }
  };

  void arm(std::chrono::milliseconds d, phase p);
  void disarm() { deadline = 0; }

  /** Reads the next request header; returns how to end the connection when there is none. */
  net::awaitable<std::optional<outcome>> read_request_header();
  /**
   * Holds the request (nothing read beyond its header, nothing sent upstream) until `svc` accepts
   * again (`ready`), the request's hold time is over, the queue is full or the service is no
   * longer expected back (`waiting`), or the client hangs up (`gone`). With `after_epoch`, ready
   * only once it accepts with another epoch (it counted as accepting when its connection failed).
   * Defined in client_hold.cpp.
   */
  net::awaitable<hold_queue::waiter::outcome> hold(const service_state& svc, exchange& x,
                                                   std::optional<std::uint32_t> after_epoch = std::nullopt);
  /**
   * After a refused connection (`refused`) or a new one closed without an answer: tells the
   * supervisor (refused), and when the service is one kinfra brings back, waits for it once.
   */
  net::awaitable<hold_queue::waiter::outcome> hold_after_failure(exchange& x, bool refused);
  /** Serves the connection as HTTP/2 (ALPN h2, or the h2c preface already in in_). */
  net::awaitable<void> serve_h2();
  /** On an h2c listener: reads until the first bytes are, or cannot be, the HTTP/2 preface. */
  net::awaitable<bool> sniff_h2c_preface();
  /** The TLS handshake of an HTTPS listener; an outcome when the connection must end instead. */
  net::awaitable<std::optional<outcome>> accept_tls();
  /** On a redirecting listener: 308 to the same URL on https://. */
  net::awaitable<outcome> redirect_to_https(const exchange& x, const normalised_target& nt);
  /** Opens TLS to an https:// target; empty when it worked, else why not. */
  net::awaitable<std::string> connect_tls(upstream_connection& conn, const target_state& t);
  net::awaitable<outcome> handle_request();
  net::awaitable<outcome> forward(exchange& x);
  net::awaitable<std::optional<proxy_error>> connect_upstream(exchange& x, std::string& detail);
  net::awaitable<void> send_request_body(exchange& x);
  net::awaitable<outcome> relay_response(exchange& x);
  net::awaitable<outcome> tunnel(exchange& x);
  net::awaitable<outcome> respond_error(proxy_error error, std::string_view detail, outcome after,
                                        const exchange* x = nullptr);
  net::awaitable<outcome> send_page(local_response page, outcome after);
  /** A streamed answer (`page.stream`, Server-Sent Events) until the client leaves or kinfra stops. */
  net::awaitable<outcome> send_stream(local_response page);
  /** The client closed its side (a non-blocking peek; an HTTP/2 stream tells its session instead). */
  bool client_hung_up();
  net::awaitable<outcome> answer_locally(exchange& x, const normalised_target& nt);
  local_request describe_request(const exchange* x) const;
  net::awaitable<void> finish(outcome how);
  void release_upstream(exchange& x, bool reusable);
  /** Stops relaying the request body (when the response ended or failed first). */
  void abandon_body(exchange& x);
  /** Why Beast refused the request head: 414, 431 or 400. */
  proxy_error parse_error(const boost::system::error_code& ec) const;
  /** An HTTP/2 stream's fields, recorded in the request head without parsing (see h2_channel). */
  void take_stream_fields(h2_channel& ch);

  /** A request's first bytes arrived: its clock and byte counts start. */
  void begin_request();
  /** The request is done (answered, or the client left): counted in /metrics and logged. */
  void end_request();

  /** The configuration of the current request (see `generation`). */
  const config& cfg() const { return *gen_->cfg; }

  worker& w_;
  stream client_;
  std::shared_ptr<const listener_info> listener_;
  std::shared_ptr<generation> gen_;
  std::shared_ptr<tls::server_contexts> tls_;  ///< the certificates this connection started with
  beast::flat_buffer in_;
  request_head req_head_;    ///< what the current request's parser recorded (capacity kept)
  response_head res_head_;
  std::optional<request_parser> req_;
  std::optional<response_parser> res_;
  std::string client_ip_;
  std::string local_address_;  ///< the address this connection reached, once an admin request asked
  bool client_loopback_ = false;
  std::string host_;     ///< the current request's host, lower case, no port
  std::string scratch_;  ///< the canonical path when it differs from the target
  std::string target_;   ///< the target sent upstream when it differs from the client's
  std::string line_out_;  ///< the request line sent upstream
  std::string tail_out_;  ///< the fields the proxy adds after the relayed ones
  phase phase_ = phase::idle;
  phase timed_out_in_ = phase::idle;
  /**
   * While idle between requests on a plain connection: when the idle timeout ends (steady ms). The
   * deadline is then rest_after, when the session hands the connection over instead (0: never).
   */
  std::int64_t idle_until_ = 0;
  /**
   * Woken from dormancy: the idle deadline it had (steady ms), kept until a request starts, so
   * that bytes that are no request (a TLS KeyUpdate, part of a record) never extend the idle time.
   */
  std::int64_t resumed_idle_until_ = 0;
  bool resting_ = false;  ///< the idle read was cancelled to hand the connection over
  bool handed_over_ = false;  ///< the socket went to a dormant_connection (still open, counted there)
  bool timed_out_ = false;
  bool closed_ = false;
  unsigned requests_ = 0;
  // The request being served, for /metrics and the access log.
  bool in_request_ = false;
  unsigned status_ = 0;             ///< the status sent; 0 while none was
  const route* route_ = nullptr;    ///< the route it matched
  route_stats* stats_ = nullptr;    ///< its series when it matched no route (admin, unmatched)
  std::string_view upstream_;       ///< the target it went to (a name in gen_)
  std::uint64_t in_mark_ = 0;       ///< client_.bytes_in when it started
  std::uint64_t out_mark_ = 0;
  std::uint64_t head_out_ = 0;      ///< bytes of response heads sent (the rest is body)
  std::chrono::steady_clock::time_point started_at_;
  upstream_connection* active_up_ = nullptr;  ///< for cancellation by the sweeper
  class h2_connection* h2_ = nullptr;  ///< while this connection speaks HTTP/2
  net::steady_timer* hold_timer_ = nullptr;  ///< while the request is held (close_now ends the wait)
  bool stream_session_ = false;  ///< serves HTTP/2 streams (not counted as a connection)
};

}  // namespace kinfra::proxy
