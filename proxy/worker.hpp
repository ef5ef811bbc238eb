#pragma once
/**
 * @file One proxy worker: a thread with its own io_context, its own SO_REUSEPORT acceptors and
 * its own upstream connection pools. A client connection lives on one worker for its whole life,
 * so nothing on the request path takes a lock.
 */

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/intrusive/list.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "common/access_log.hpp"
#include "common/config.hpp"
#include "common/local_responder.hpp"
#include "common/status_board.hpp"
#include "proxy/hold_queue.hpp"
#include "proxy/router.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls.hpp"

namespace kinfra::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class h2_upstream;

/** Milliseconds on the steady clock; the unit of every deadline. */
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/** A connection to an upstream target, pooled between requests. */
struct upstream_connection {
  explicit upstream_connection(net::any_io_executor ex) : io(ex) {}
  stream io;
  boost::beast::flat_buffer buffer;  ///< bytes read from the upstream and not yet relayed
  std::size_t target = 0;            ///< index into worker::targets_
  std::uint64_t instance = 0;        ///< `port: auto`: the process it reaches (its target's then)
  std::int64_t idle_since = 0;
  unsigned uses = 0;                 ///< requests sent on it before the current one
};

/** One address of a service, with this worker's pool of idle connections to it. */
struct target_state {
  tcp::endpoint endpoint;
  bool resolved = false;
  std::string name;                 ///< "http://127.0.0.1:8000", for messages
  std::string authority;            ///< "127.0.0.1:8000", for Host when a 1.0 client sent none
  std::vector<std::unique_ptr<upstream_connection>> idle;  ///< most recently used last
  std::int64_t down_until = 0;      ///< passive check: skip until then after a refused connect
  std::shared_ptr<net::ssl::context> tls;  ///< for https:// targets: how to open TLS
  std::string tls_name;             ///< SNI and the name its certificate must carry
  bool tls_verify = true;
  /** `port: auto`: the process this slot reaches now (0: none), and its requests in flight. */
  std::uint64_t instance = 0;
  std::shared_ptr<std::atomic<int>> in_flight;
  /** `protocol: h2|h2c`: this worker's multiplexed connections to it. */
  std::vector<std::shared_ptr<h2_upstream>> h2;
};

/** What a listening socket is for, and how its connections start. */
struct listener_info {
  bool admin = false;  ///< the direct admin listener: every request is kinfra's own
  /** HTTPS: the certificates (replaced on reload; sessions keep the set they started with). */
  std::shared_ptr<tls::server_contexts> tls;
  bool redirect_to_https = false;
  std::uint16_t https_port = 443;
  std::vector<std::string> plain_paths;  ///< served as usual on a redirecting listener
  /**
   * Redirecting: the names of the certificate the HTTPS listener serves without SNI. A request to a
   * loopback address the certificate lacks is sent to one of these instead (localhost first).
   */
  std::vector<std::string> https_names;
  /** Plain listener: a connection starting with the HTTP/2 preface is served as HTTP/2 (h2c). */
  bool h2c = false;
  /** The worker's id of the listener (set by add_listener / update_listener). */
  std::size_t id = 0;
};

/** A service's targets as this worker sees them, with its round-robin position. */
struct service_state {
  std::string name;
  std::vector<std::size_t> targets;  ///< indexes into generation::targets
  std::size_t next = 0;
  /** The StatusBoard's "may it get traffic" flag (null: no board, always yes). */
  std::shared_ptr<const std::atomic<bool>> accepting;
  /** Its flags on the board: may a request wait for it, how many do (null: no board, never). */
  std::shared_ptr<traffic_flags> traffic;
  hold_config hold;
  /** kinfra runs and checks it: a refused or dropped connection is noticed and it comes back. */
  bool comes_back = false;
  upstream_protocol protocol = upstream_protocol::http1;
  /**
   * `port: auto`: its targets are slots that follow the board's routable instances (picked by
   * fewest requests in flight); `seen` is the instances_version they were last set from.
   */
  bool dynamic = false;
  std::uint64_t seen = ~std::uint64_t{0};
  service_stats* stats = nullptr;  ///< its /metrics counters (null without a registry)
  /** kinfra's own pages while it is stopped or in maintenance: not the service's errors. */
  route_stats* fallback_stats = nullptr;
};

/** What proxy_server prepares for every worker at start-up or reload (each worker copies it). */
struct resolved_targets {
  std::vector<target_state> targets;
  std::vector<service_state> services;
  std::shared_ptr<access_log> log;  ///< null when access_log is off
};

/**
 * One configuration as one worker uses it: the config, the route table, the targets with their
 * keep-alive pools. A session takes the current generation when a request starts and keeps it
 * until the request is done, so a reload never changes a request (or a tunnel) in flight.
 */
struct generation {
  std::shared_ptr<const config> cfg;
  std::shared_ptr<const router> routes;
  std::vector<target_state> targets;
  std::vector<service_state> services;
  std::shared_ptr<access_log> log;  ///< null when access_log is off
  /** Some service has `protocol: h2|h2c` (HTTP/2 streams look for such a route only then). */
  bool any_h2_service = false;
};

/** Something with a deadline, checked by the worker's sweeper (see client_session). */
class timed : public boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
 public:
  virtual ~timed() = default;
  std::int64_t deadline = 0;  ///< steady ms; 0 when nothing is timed
  /** Called once when the deadline has passed. */
  virtual void on_deadline() = 0;
  /** Called when the worker stops: close the connection now. */
  virtual void close_now() = 0;
  /** Called when the worker starts draining: close now if idle, else after the current exchange. */
  virtual void on_drain() = 0;
  /** Listener `id` was removed (a reload): HTTP/2 connections accepted there say GOAWAY. */
  virtual void on_listener_closed(std::size_t /*id*/) {}
};

class client_session;
class dormant_set;

class worker {
 public:
  /**
   * @param index this worker's number (0…workers-1): the cell it writes in `metrics`
   * @param metrics request counters; may be null
   */
  worker(std::shared_ptr<const config> cfg, std::shared_ptr<const router> routes, const resolved_targets& targets,
         const local_responder* responder, status_board* board, unsigned index = 0,
         metrics_registry* metrics = nullptr);
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;
  ~worker();

  /**
   * Adopts an already bound and listening socket (native handle), to be served as `info` says.
   * Before start(), or from any thread after (then it starts accepting at once).
   * @return the listener's id, stable for its life
   */
  std::size_t add_listener(int fd, listener_info info);
  /** New settings for listener `id`, for connections accepted from now on. Thread-safe. */
  void update_listener(std::size_t id, listener_info info);
  /**
   * Stops accepting on listener `id`; its established HTTP/1.1 connections go on, its HTTP/2
   * connections get GOAWAY (their streams finish). Thread-safe.
   */
  void close_listener(std::size_t id);
  /**
   * A reloaded configuration for new requests. Requests in flight finish on the generation they
   * started with. Idle upstream connections to targets that stay are kept. Thread-safe.
   */
  void reconfigure(std::shared_ptr<const config> cfg, std::shared_ptr<const router> routes,
                   const resolved_targets& targets);

  void start();
  /**
   * Graceful shutdown, first step: stop accepting, close idle connections, and let the others
   * finish the exchange they are in (their response says `Connection: close`). Thread-safe.
   */
  void drain();
  /** True once drain() began (worker thread). */
  bool draining() const { return draining_; }
  /** Client connections open now. Thread-safe. */
  std::size_t connections() const { return connections_.load(std::memory_order_acquire); }
  void connection_opened() {
    connections_.fetch_add(1, std::memory_order_acq_rel);
    if (conn_stats_) conn_stats_->opened.add(1);
  }
  void connection_closed() {
    connections_.fetch_sub(1, std::memory_order_acq_rel);
    if (conn_stats_) conn_stats_->closed.add(1);
  }
  unsigned index() const { return index_; }
  /** Request counters; null when nothing collects them. */
  metrics_registry* metrics() const { return metrics_; }
  /** Closes the listeners and every connection, then stops the thread. Thread-safe. */
  void stop();
  void join();

  net::io_context& context() { return ioc_; }
  /** The generation new requests use (worker thread only). */
  const std::shared_ptr<generation>& current() const { return gen_; }
  const local_responder* responder() const { return responder_; }
  /**
   * Where admin work that may block or grow runs (a reload, logs, the dashboard), so that this
   * worker's other connections never wait behind it. Set before start(); empty: on the worker.
   */
  void set_control_executor(net::any_io_executor ex) { control_ = std::move(ex); }
  const net::any_io_executor& control_executor() const { return control_; }
  /** For passive checks; null when nothing watches the services. */
  status_board* board() const { return board_; }

  /** A pooled connection to target `target` of `gen`, or nullptr when none is idle. */
  std::unique_ptr<upstream_connection> take_idle(generation& gen, std::size_t target);
  /**
   * Returns a connection that finished a response cleanly to its pool; closes it when the pool
   * is full or `gen` is no longer current (its targets may be gone).
   */
  void put_idle(generation& gen, std::unique_ptr<upstream_connection> conn);

  void track(timed& t) { timed_.push_back(t); }
  /** `port: auto`: points `svc`'s slots at the instances the board says are routable now. */
  void follow_instances(generation& gen, service_state& svc);
  /**
   * `port: auto`: writes the filled slots of `svc` to `order` (room for all its targets), fewest
   * requests in flight first, those passed over for a refusal last, round-robin among equals.
   * @return how many
   */
  std::size_t order_instances(generation& gen, service_state& svc, std::size_t* order, std::int64_t now);
  /** A new HTTP/2 connection to a service: closed when the worker stops, whatever its generation. */
  void adopt_h2(const std::shared_ptr<h2_upstream>& c);
  /**
   * Sessions of ended HTTP/2 streams, kept to serve later ones without allocating a session and
   * its buffers for every stream (see client_session::park). Worker thread only.
   */
  std::unique_ptr<client_session> take_spare_session();
  void keep_spare_session(std::unique_ptr<client_session> s);
  /** Requests waiting for their service to accept again (client_session::hold). */
  hold_queue& held() { return held_; }

  /**
   * How long an HTTP/1.1 keep-alive connection (plain or TLS) waits for its next request with its session
   * before the session ends and a dormant_connection holds it instead (when the idle timeout is
   * longer). Short enough that idle browser connections cost little, long enough that a client
   * that sends its next request at once never pays for the hand-over.
   */
  static constexpr std::chrono::milliseconds rest_after{1000};
  /**
   * An idle keep-alive connection whose session ends: held dormant (see dormant_set) until it is
   * readable or `idle_deadline` (steady ms). Worker thread.
   */
  void rest(tcp::socket socket, std::shared_ptr<const listener_info> listener, std::int64_t idle_deadline,
            std::unique_ptr<tls_stream> tls);
  /**
   * A dormant connection's client sent something: a new session serves it (worker thread), with
   * the idle deadline it had (steady ms) until a request starts.
   */
  void wake(tcp::socket socket, std::shared_ptr<const listener_info> listener, std::unique_ptr<tls_stream> tls,
            std::int64_t idle_until);
  /** A dormant connection began (+1) or ended (-1) (worker thread). */
  void dormant_changed(int delta);
  /** Connections held dormant now. Thread-safe. */
  std::size_t dormant() const { return dormant_.load(std::memory_order_relaxed); }

 private:
  /** A listening socket; never moves, so its accept loop can hold it. */
  struct listener_slot {
    tcp::acceptor acceptor;
    std::shared_ptr<const listener_info> info;
  };

  void accept_loop(listener_slot& slot);
  /** Runs `session` until its connection ends; the coroutine owns it. */
  void spawn(std::unique_ptr<client_session> session);
  void sweep();
  std::shared_ptr<generation> make_generation(std::shared_ptr<const config> cfg, std::shared_ptr<const router> routes,
                                              const resolved_targets& targets) const;

  const local_responder* responder_;
  net::any_io_executor control_;
  status_board* board_;
  const unsigned index_;
  metrics_registry* metrics_;
  connection_cell* conn_stats_;
  // One thread runs this context and uses its sockets, so the reactor needs no per-socket locks.
  net::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::vector<std::unique_ptr<listener_slot>> listeners_;
  std::shared_ptr<generation> gen_;
  bool started_ = false;
  bool draining_ = false;
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> dormant_{0};
  std::size_t listener_count_ = 0;  ///< ids handed out by add_listener (its caller's thread)
  boost::intrusive::list<timed, boost::intrusive::constant_time_size<false>> timed_;
  net::steady_timer sweeper_;
  hold_queue held_{ioc_};
  std::vector<std::weak_ptr<h2_upstream>> h2_upstreams_;
  std::vector<std::unique_ptr<client_session>> spare_sessions_;  ///< (after ioc_: they hold sockets of it)
  std::unique_ptr<dormant_set> dormant_set_;  ///< (after timed_: its entries are in that list)
  std::thread thread_;
  bool stopping_ = false;
};

}  // namespace kinfra::proxy
