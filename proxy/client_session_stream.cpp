// The session of an HTTP/2 stream (see h2_channel): made for a stream, or a parked one reused.
#include <string_view>

#include "proxy/client_session.hpp"

namespace kinfra::proxy {
namespace {

/** Above this, a parked session lets go of a buffer instead of keeping it for the next stream. */
constexpr std::size_t max_kept_capacity = 16 * 1024;

void release_if_large(std::string& s) {
  if (s.capacity() > max_kept_capacity) std::string().swap(s);
}

}  // namespace

client_session::client_session(worker& w, std::shared_ptr<h2_channel> channel,
                               std::shared_ptr<const listener_info> listener, const client_address& peer)
    : w_(w), client_(channel->executor()), stream_session_(true) {
  in_.reserve(1024);
  serve_stream(std::move(channel), std::move(listener), peer);
}

void client_session::serve_stream(std::shared_ptr<h2_channel> channel, std::shared_ptr<const listener_info> listener,
                                  const client_address& peer) {
  // Everything a keep-alive connection does not reset between requests itself (see run()).
  client_.rebind(std::move(channel));
  client_.channel()->session = this;
  listener_ = std::move(listener);
  gen_ = w_.current();
  client_ip_ = peer.ip;
  client_loopback_ = peer.loopback;
  local_address_.clear();
  host_.clear();
  in_.clear();
  req_.reset();
  res_.reset();
  phase_ = timed_out_in_ = phase::idle;
  timed_out_ = closed_ = in_request_ = false;
  requests_ = 0;
  active_up_ = nullptr;
  hold_timer_ = nullptr;
  deadline = 0;
  w_.track(*this);
  // The request head is there already: parsed at once, without a read to wait for.
  client_.bytes_in += client_.channel()->take_request(in_);
}

void client_session::park() {
  if (auto* ch = client_.channel()) ch->session = nullptr;
  client_.rebind(nullptr);
  unlink();
  deadline = 0;
  listener_.reset();
  gen_.reset();  // (an old configuration is not kept alive by a spare session)
  // What one large request or response made grow is not kept for every later stream.
  if (in_.capacity() > max_kept_capacity) in_ = beast::flat_buffer();
  for (auto* s : {&req_head_.fields, &req_head_.target, &req_head_.authorization, &req_head_.forwarded_for,
                  &res_head_.fields, &scratch_, &target_, &line_out_, &tail_out_})
    release_if_large(*s);
}

void client_session::take_stream_fields(h2_channel& ch) {
  // Counted like the bytes they stand for (the request line and framing are counted as read).
  client_.bytes_in += ch.request_fields.size();
  std::string_view rest(ch.request_fields);
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
    if (const auto colon = line.find(": "); colon != std::string_view::npos)
      req_->add_field(line.substr(0, colon), line.substr(colon + 2));
  }
}

}  // namespace kinfra::proxy
