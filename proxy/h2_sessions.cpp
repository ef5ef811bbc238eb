// The sessions that serve an h2_connection's streams over the HTTP/1.1 pipeline: started once a
// read's frames are all taken, and handed back to the worker for later streams when they end.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>

#include "proxy/client_session.hpp"
#include "proxy/h2_connection.hpp"
#include "proxy/h2_stream_state.hpp"

namespace kinfra::proxy {

void h2_connection::start_sessions() {
  for (const std::int32_t id : starting_) {
    auto* s = find(id);
    if (s == nullptr || !s->chan || s->chan->closed()) continue;
    auto session = w_.take_spare_session();
    if (session) session->serve_stream(s->chan, listener_, peer_);
    else session = std::make_unique<client_session>(w_, s->chan, listener_, peer_);
    auto* raw = session.get();
    net::co_spawn(io_.get_executor(), raw->run(), [owner = std::move(session), &w = w_](std::exception_ptr e) mutable {
      if (!e) {
        if (owner->reusable()) w.keep_spare_session(std::move(owner));
        return;
      }
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("HTTP/2 stream ended by an internal error: {}", ex.what());
      }
    });
  }
  starting_.clear();
}

}  // namespace kinfra::proxy
