#pragma once
/**
 * @file One request forwarded from a client's HTTP/2 stream to a service's HTTP/2 stream (a service
 * with `protocol: h2` or `h2c`, such as a gRPC server): header fields, body and trailers go across
 * as they are, both ways, each direction through a bounded buffer whose flow-control window opens
 * again only as the other side takes the bytes.
 *
 * Both connections run on the same worker thread; each side holds the relay and tells the other
 * when there is something for it (h2_connection's relay_* calls, h2_upstream's).
 */

#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kinfra {
class service_stats;
}

namespace kinfra::proxy {

class h2_connection;
class h2_upstream;

/** Header fields in order, pseudo-headers first. */
using h2_fields = std::vector<std::pair<std::string, std::string>>;

struct h2_relay {
  /** The client's side: null once its stream is gone. */
  h2_connection* client = nullptr;
  std::int32_t client_id = 0;
  /** The service's side: null until a connection took the stream, and once its stream is gone. */
  std::shared_ptr<h2_upstream> up;
  std::int32_t up_id = -1;

  // Client → service.
  h2_fields request;  ///< :method, :scheme, :authority, :path, then the fields to forward
  boost::beast::flat_buffer request_body;
  bool request_end = false;
  h2_fields request_trailers;
  bool up_deferred = false;  ///< the service-side provider waits for request bytes

  // Service → client.
  h2_fields response;  ///< :status first
  bool response_head_done = false;  ///< `response` is complete (what follows are trailers)
  boost::beast::flat_buffer response_body;
  bool response_end = false;
  h2_fields response_trailers;
  bool response_started = false;  ///< the client has the response HEADERS
  bool client_deferred = false;   ///< the client-side provider waits for response bytes

  // For the access log and /metrics.
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  unsigned status = 0;
  std::size_t route_index = 0;
  std::string upstream_name;
  bool grpc = false;
  std::uint64_t max_body = 0;  ///< the route's max_body_bytes
  bool refused = false;        ///< answered with an error: what the client still sends is dropped
  service_stats* active = nullptr;  ///< counts it in flight to its service until it is logged
  bool logged = false;  ///< its access log line and /metrics count are written  ///< content-type application/grpc…: failures are answered the gRPC way
};

}  // namespace kinfra::proxy
