#include "proxy/h2_channel.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstring>
#include <utility>

#include "proxy/worker.hpp"

namespace kinfra::proxy {

void h2_channel::complete(std::optional<handler>& slot, boost::system::error_code ec, std::size_t n) {
  handler h(std::move(*slot));
  slot.reset();
  complete(std::move(h), ec, n);
}

void h2_channel::complete(handler&& h, boost::system::error_code ec, std::size_t n) {
  // Never from inside the initiating call: the caller's frame may not be ready for it.
  // (Everything of a stream runs on its worker's one thread: ex_ is the handler's executor too.)
  net::post(ex_, [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); });
}

void h2_channel::notify() {
  if (owner_) owner_->touched(*this);
}

void h2_channel::read(net::mutable_buffer b, handler h) {
  if (reset_) return complete(std::move(h), net::error::connection_reset, 0);
  if (in_.size() > 0 || b.size() == 0) {
    const std::size_t n = std::min(b.size(), in_.size());
    if (n > 0) std::memcpy(b.data(), in_.data().data(), n);
    in_.consume(n);
    const std::size_t payload = std::min(n, payload_owed_);
    payload_owed_ -= payload;
    consumed_ += payload;
    if (payload > 0) notify();
    return complete(std::move(h), {}, n);
  }
  if (in_eof_) return complete(std::move(h), net::error::eof, 0);
  read_to_ = b;
  pending_read_.emplace(std::move(h));
}

std::size_t h2_channel::take_request(boost::beast::flat_buffer& into) {
  if (reset_ || pending_read_) return 0;
  const std::size_t n = in_.size();
  if (n == 0) return 0;
  auto dst = into.prepare(n);
  std::memcpy(dst.data(), in_.data().data(), n);
  into.commit(n);
  in_.consume(n);
  const std::size_t payload = std::min(n, payload_owed_);
  payload_owed_ -= payload;
  consumed_ += payload;
  if (payload > 0) notify();
  return n;
}

void h2_channel::write_parts(const net::const_buffer* parts, std::size_t count, handler h) {
  if (reset_ || closed_ || end_ != response_end::open) return complete(std::move(h), net::error::broken_pipe, 0);
  if (count == 0) return complete(std::move(h), {}, 0);
  if (out_.size() >= response_capacity) {
    write_from_ = parts[0];
    pending_write_.emplace(std::move(h));
    return;
  }
  const std::size_t n = copy_in(parts, count);
  notify();
  complete(std::move(h), {}, n);
}

std::size_t h2_channel::copy_in(const net::const_buffer* parts, std::size_t count) {
  std::size_t room = response_capacity - std::min(response_capacity, out_.size());
  std::size_t total = 0;
  for (std::size_t i = 0; i < count && room > 0; ++i) {
    const std::size_t n = std::min(room, parts[i].size());
    auto dst = out_.prepare(n);
    if (n > 0) std::memcpy(dst.data(), parts[i].data(), n);
    out_.commit(n);
    room -= n;
    total += n;
  }
  return total;
}

void h2_channel::took_response(std::size_t n) {
  out_.consume(n);
  if (pending_write_ && out_.size() < response_capacity) {
    const std::size_t written = copy_in(&write_from_, 1);
    complete(pending_write_, {}, written);
    notify();
  }
}

bool h2_channel::put_response_head(unsigned status, std::string_view fields) {
  if (reset_ || closed_ || end_ != response_end::open || out_.size() > 0 || head_status_ != 0) return false;
  head_status_ = status;
  head_fields_.assign(fields);
  notify();
  return true;
}

bool h2_channel::write_last(net::const_buffer b) {
  if (reset_ || closed_ || end_ != response_end::open || pending_write_ || out_.size() + b.size() > response_capacity)
    return false;
  copy_in(&b, 1);
  end_ = response_end::complete;
  notify();
  return true;
}

void h2_channel::cancel() {
  if (pending_read_) complete(pending_read_, net::error::operation_aborted, 0);
  if (pending_write_) complete(pending_write_, net::error::operation_aborted, 0);
}

void h2_channel::shutdown_send() {
  if (end_ != response_end::open) return;
  end_ = response_end::complete;
  notify();
}

void h2_channel::close() {
  if (closed_) return;
  closed_ = true;
  if (end_ == response_end::open) end_ = response_end::aborted;
  if (pending_read_) complete(pending_read_, net::error::operation_aborted, 0);
  if (pending_write_) complete(pending_write_, net::error::operation_aborted, 0);
  notify();
}

void h2_channel::add_request(const char* data, std::size_t size, std::size_t payload) {
  if (reset_ || closed_) return;
  auto dst = in_.prepare(size);
  if (size > 0) std::memcpy(dst.data(), data, size);
  in_.commit(size);
  payload_owed_ += payload;
  if (pending_read_) {
    handler h(std::move(*pending_read_));
    pending_read_.reset();
    read(read_to_, std::move(h));
  }
}

void h2_channel::end_request() {
  in_eof_ = true;
  if (pending_read_ && in_.size() == 0) complete(pending_read_, net::error::eof, 0);
}

void h2_channel::reset() {
  if (reset_) return;
  reset_ = true;
  owner_ = nullptr;
  if (pending_read_) complete(pending_read_, net::error::connection_reset, 0);
  if (pending_write_) complete(pending_write_, net::error::connection_reset, 0);
  // (Synchronous: it only closes sockets and cancels timers; nothing comes back here, owner_ is null.)
  if (auto* s = std::exchange(session, nullptr)) s->close_now();
}

}  // namespace kinfra::proxy
