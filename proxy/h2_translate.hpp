#pragma once
/**
 * @file Translating between an HTTP/2 stream's header fields and an HTTP/1.1 message head.
 *
 * nghttp2 already rejects what RFC 9113 §8 calls malformed (pseudo-header rules, upper-case names,
 * connection-specific fields, CR/LF/NUL in values, a Content-Length the DATA contradicts). These
 * functions apply the rest of the translation rules (§8.2.3 cookies, §8.3.1 `:authority` vs Host)
 * and check once more, on every byte that goes into the HTTP/1.1 text, that nothing could end a
 * line or a token early: the translation is where request smuggling would happen.
 */

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/message_parser.hpp"

namespace kinfra::proxy {

/** Collects one request's header fields (as nghttp2 delivers them) into an HTTP/1.1 head. */
class h2_request_head {
 public:
  /** `max_bytes`: the header list limit (name + value + 32 per field, as SETTINGS counts). */
  explicit h2_request_head(std::size_t max_bytes) : max_bytes_(max_bytes) {}
  /** Ready for another request (the strings keep their capacity). */
  void reset(std::size_t max_bytes);
  /** What its strings hold allocated. */
  std::size_t capacity() const {
    return method_.capacity() + path_.capacity() + authority_.capacity() + host_.capacity() + cookie_.capacity() +
           content_length_.capacity() + fields_.capacity();
  }

  /** One field; false once the request is to be refused (see status()). */
  bool add(std::string_view name, std::string_view value);
  /**
   * Ends the head. `has_body`: DATA will follow (no END_STREAM on HEADERS).
   * @return the HTTP/1.1 head ("GET / HTTP/1.1\r\n…\r\n\r\n"), or empty with status() set
   */
  std::string finish(bool has_body);
  /**
   * The same head in two parts, for a session that takes the fields without parsing them (see
   * request_parser::add_field): `line`, the request line and the framing fields (Content-Length,
   * or chunked) with the blank line, which the parser reads; `fields`, the others, "name:
   * value\r\n" each (Host first, the cookie last). False, with status() set, when refused.
   */
  bool finish(bool has_body, std::string& line, std::string& fields);
  /** Why the request is refused: 400 (malformed) or 431 (too large); 0 when it is not. */
  unsigned status() const { return status_; }
  const char* reason() const { return reason_; }
  /** The body is sent chunked (no Content-Length was given): DATA needs chunk framing. */
  bool chunked() const { return chunked_; }

  // What was received (for a stream forwarded as HTTP/2, see h2_relay.hpp).
  const std::string& method() const { return method_; }
  const std::string& path() const { return path_; }
  /** :authority, else Host. */
  const std::string& authority() const { return authority_.empty() ? host_ : authority_; }
  /** The fields to forward, "name: value\r\n" each (no Host, no cookie, no Content-Length). */
  const std::string& fields() const { return fields_; }
  /** `te: trailers` was sent (kept for an HTTP/2 service: gRPC servers require it). */
  bool te_trailers() const { return te_trailers_; }
  /** The Content-Length value, when one was sent. */
  const std::string& content_length() const { return content_length_; }
  bool has_content_length() const { return has_length_; }
  /** The cookie fields, joined. */
  const std::string& cookie() const { return cookie_; }

 private:
  void refuse(unsigned status, const char* reason) {
    if (status_ == 0) {
      status_ = status;
      reason_ = reason;
    }
  }

  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  unsigned status_ = 0;
  const char* reason_ = "";
  bool chunked_ = false;
  bool has_length_ = false;
  bool te_trailers_ = false;
  std::string method_, path_, authority_, host_, cookie_, content_length_;
  std::string fields_;
};

/** True when `s` has a byte that may not appear in an HTTP/1.1 field value (CR, LF, NUL). */
bool has_line_break(std::string_view s);

/** One response head translated for HTTP/2: lower-case names, no connection-specific fields. */
struct h2_response_fields {
  std::string status;  ///< "200"
  /** name/value pairs, views into `storage` */
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  std::string storage;

  /**
   * From a parsed HTTP/1.1 response head: its status and end-to-end fields ("Name: value\r\n"
   * each). Content-Length goes for 1xx and 204.
   */
  void assign(unsigned code, std::string_view head_fields);
  void assign(const response_head& head) { assign(head.status, head.fields); }
  void clear() {
    status.clear();
    fields.clear();
    storage.clear();
  }
};

}  // namespace kinfra::proxy
