// Streams of an h2_connection forwarded as HTTP/2 to a service with `protocol: h2|h2c` (gRPC):
// the route decision, the connection from the worker's pool, the answers when the service cannot
// be reached, and the access log and /metrics for each. The bytes go through h2_relay.hpp.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/string.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "common/access_log.hpp"
#include "common/local_responder.hpp"
#include "proxy/h2_frames.hpp"
#include "proxy/h2_stream_state.hpp"
#include "proxy/h2_upstream.hpp"
#include "proxy/uri_path.hpp"

namespace kinfra::proxy {
namespace {

// gRPC status codes (grpc/doc/statuscodes.md).
constexpr unsigned grpc_invalid_argument = 3;
constexpr unsigned grpc_resource_exhausted = 8;
constexpr unsigned grpc_unavailable = 14;

/** The host of an authority, lower case, without its port ("[::1]:80" → "[::1]"). */
std::string host_of(std::string_view authority) {
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    if (auto close = host.find(']'); close != std::string_view::npos) host = host.substr(0, close + 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  // (As check_host: a trailing dot names the same host.)
  if (host.size() > 1 && host.back() == '.' && host.front() != '[') host.remove_suffix(1);
  std::string out(host);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"). */
std::string grpc_message(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789ABCDEF";
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/** Finds (or opens) a connection to one of the service's targets and starts the stream on it. */
net::awaitable<void> connect_relay(worker& w, std::shared_ptr<generation> gen, std::size_t service,
                                   std::shared_ptr<h2_relay> r) {
  auto& svc = gen->services[service];
  const auto& cfg = *gen->cfg;
  if (svc.dynamic) w.follow_instances(*gen, svc);
  std::string last = "no address to connect to";
  const std::size_t n = svc.targets.size();
  const std::size_t first = n ? svc.next++ % n : 0;
  // (`refused`: the client was answered while this connected, e.g. its body grew past the limit.)
  const auto wanted = [&] { return r->client && !r->refused; };
  for (std::size_t k = 0; k < n && wanted(); ++k) {
    auto& t = gen->targets[svc.targets[(first + k) % n]];
    if (!t.resolved || (svc.dynamic && t.instance == 0)) continue;
    std::erase_if(t.h2, [](const auto& c) { return !c->usable() && c.use_count() == 1; });
    for (auto& c : t.h2) {
      if (c->usable() && c->submit(r)) {
        r->upstream_name = t.name;
        co_return;
      }
    }
    auto c = std::make_shared<h2_upstream>(co_await net::this_coro::executor);
    std::string why = co_await c->connect(t, cfg.timeouts.connect);
    if (!why.empty()) {
      last = t.name + ": " + why;
      continue;
    }
    t.h2.push_back(c);
    w.adopt_h2(c);
    net::co_spawn(c->get_executor(), c->run(cfg.upstream.idle_timeout, cfg.timeouts.body), net::detached);
    if (!wanted()) co_return;
    if (c->submit(r)) {
      r->upstream_name = t.name;
      co_return;
    }
    last = t.name + ": the connection refused the stream";
  }
  if (!wanted()) co_return;
  // (The client hears that, not where: the addresses of services stay in kinfra's log.)
  spdlog::warn("service {}: no HTTP/2 connection for a request: {}", svc.name, last);
  r->client->relay_failed(r->client_id, 502, grpc_unavailable, "cannot reach service " + svc.name);
}

}  // namespace

const route* h2_connection::relay_route(const stream_state& s, const generation& gen) const {
  if (!gen.any_h2_service || listener_->admin || listener_->redirect_to_https) return nullptr;
  std::string scratch;
  normalised_target nt;
  if (!normalise_target(s.head.path(), scratch, nt)) return nullptr;
  if (local_responder::is_admin_path(nt.path)) return nullptr;
  if (!gen.cfg->admin.metrics_path.empty() && nt.path == gen.cfg->admin.metrics_path) return nullptr;
  const route* r = gen.routes->match(host_of(s.head.authority()), nt.path);
  if (!r || gen.services[r->service_index].protocol == upstream_protocol::http1) return nullptr;
  // (Another route for a lenient reading of the path: a session answers it, with a 400.)
  if (nt.disguised_separators && gen.routes->match(host_of(s.head.authority()), routing_key(nt.path)) != r)
    return nullptr;
  return r;
}

void h2_connection::start_relay(stream_state& s, const route& r) {
  auto& gen = *s.gen;
  const auto& svc = gen.services[r.service_index];
  auto relay = std::make_shared<h2_relay>();
  relay->client = this;
  relay->client_id = s.id;
  relay->request_end = s.request_ended;
  relay->max_body = r.max_body_bytes;
  s.relay = relay;
  ++streams_started_;
  // The request as the service gets it: the client's fields, the path without a stripped prefix.
  std::string scratch;
  normalised_target nt;
  normalise_target(s.head.path(), scratch, nt);
  std::string path(r.strip_prefix ? strip_path_prefix(nt.path, r.prefix) : nt.path);
  if (nt.has_query) path.append("?").append(nt.query);
  auto& f = relay->request;
  f.emplace_back(":method", s.head.method());
  f.emplace_back(":scheme", svc.protocol == upstream_protocol::h2 ? "https" : "http");
  f.emplace_back(":authority", s.head.authority());
  f.emplace_back(":path", std::move(path));
  std::string_view rest(s.head.fields());
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
    const auto colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon), value = line.substr(colon + 2);
    if (name == "content-type" && value.starts_with("application/grpc")) relay->grpc = true;
    if (name == "x-forwarded-for" || name == "x-forwarded-proto" || name == "forwarded") continue;
    f.emplace_back(std::string(name), std::string(value));
  }
  if (s.head.has_content_length()) {
    f.emplace_back("content-length", s.head.content_length());
    if (std::strtoull(s.head.content_length().c_str(), nullptr, 10) > relay->max_body)
      relay->refused = true;  // (answered below, once the kind of request is known)
  }
  if (!s.head.cookie().empty()) f.emplace_back("cookie", s.head.cookie());
  if (s.head.te_trailers()) f.emplace_back("te", "trailers");
  f.emplace_back("x-forwarded-for", peer_.ip);
  f.emplace_back("x-forwarded-proto", io_.secure() ? "https" : "http");
  // Not accepting (stopped, crashed, starting): answered at once, the gRPC way for gRPC.
  if (relay->refused) {
    relay->refused = false;
    return relay_failed(s.id, 413, grpc_resource_exhausted, "the request body is larger than this route accepts");
  }
  if (gen.cfg->limits.max_uri_bytes < s.head.path().size())
    return relay_failed(s.id, 414, grpc_invalid_argument, "the request target is too long");
  if (svc.accepting && !svc.accepting->load(std::memory_order_relaxed))
    return relay_failed(s.id, 503, grpc_unavailable, "service " + svc.name + " is not available right now");
  if (svc.stats) {
    svc.stats->began(w_.index());
    relay->active = svc.stats;
  }
  net::co_spawn(io_.get_executor(), connect_relay(w_, s.gen, r.service_index, relay), net::detached);
  update_deadline();
}

void h2_connection::relay_failed(std::int32_t id, unsigned status, unsigned grpc_status, const std::string& why) {
  auto* s = find(id);
  if (!s || !s->relay || s->relay->response_started) return;
  auto& r = *s->relay;
  r.response_started = true;
  r.refused = true;
  if (r.grpc) {
    // A gRPC client reads the status from trailers: a "trailers-only" response (HEADERS with
    // END_STREAM) with 14 UNAVAILABLE, which clients retry or report as such.
    r.status = 200;
    const std::string message = grpc_message(why);
    const std::string code = std::to_string(grpc_status);
    const nghttp2_nv nva[] = {h2_nv(":status", "200"), h2_nv("content-type", "application/grpc"),
                              h2_nv("grpc-status", code), h2_nv("grpc-message", message)};
    nghttp2_submit_response(session_, id, nva, std::size(nva), nullptr);
    s->phase = stream_state::response_phase::done;
    wake();
    return;
  }
  r.status = status;
  refuse_stream(*s, status, why + ".");
  wake();
}

void h2_connection::log_relay(const stream_state& s) {
  auto& r = *s.relay;
  if (r.logged) return;
  r.logged = true;
  if (r.active) r.active->ended(w_.index());
  r.active = nullptr;
  const auto took = std::chrono::steady_clock::now() - r.started;
  const unsigned status = r.status;
  if (s.matched && s.matched->stats) s.matched->stats->record(w_.index(), status, took, r.bytes_in, r.bytes_out);
  if (const auto& log = s.gen->log) {
    access_entry e;
    e.time = std::chrono::system_clock::now() - std::chrono::duration_cast<std::chrono::system_clock::duration>(took);
    e.client_ip = peer_.ip;
    e.method = s.head.method();
    e.target = s.head.path();
    e.version = 20;
    e.host = s.head.authority();
    if (s.matched) {
      e.service = s.matched->service;
      e.route = s.matched->label;
    }
    e.upstream = r.upstream_name;
    e.status = status;
    e.bytes_sent = r.bytes_out;
    e.body_bytes_sent = r.bytes_out;
    e.bytes_received = r.bytes_in;
    e.duration = std::chrono::duration_cast<std::chrono::microseconds>(took);
    e.tls = io_.secure();
    log->write(e);
  }
}

void h2_connection::relay_resume(std::int32_t id) {
  if (auto* s = find(id); s && s->relay && s->relay->response_started && s->relay->client_deferred) {
    s->relay->client_deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  wake();
}

void h2_connection::relay_reset(std::int32_t id, std::uint32_t code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
  wake();
}

void h2_connection::relay_consumed(std::int32_t id, std::size_t n) {
  nghttp2_session_consume(session_, id, n);
  wake();
}

void h2_connection::detach_relays() {
  for (auto& [id, s] : streams_) {
    if (!s->relay || !s->relay->client) continue;
    s->relay->client = nullptr;
    if (s->relay->up) s->relay->up->reset(s->relay->up_id, NGHTTP2_CANCEL);
    log_relay(*s);  // (the connection ends before the stream: counted and logged all the same)
  }
}

}  // namespace kinfra::proxy
