#pragma once
/**
 * @file Small helpers shared by kinfra's two nghttp2 sessions (h2_connection to clients,
 * h2_upstream to services). Only their .cpp files include it (it includes nghttp2.h).
 */

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace kinfra::proxy {

/** A header field for nghttp2 (which copies it when a frame is submitted). */
inline nghttp2_nv h2_nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

/** Appends what `session` wants to send to `out`, up to about `batch` bytes; false on an error. */
inline bool gather_frames(nghttp2_session* session, std::vector<std::uint8_t>& out, std::size_t batch) {
  out.clear();
  while (out.size() < batch) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session, &data);
    if (n < 0) return false;
    if (n == 0) break;
    out.insert(out.end(), data, data + n);
  }
  return true;
}

}  // namespace kinfra::proxy
