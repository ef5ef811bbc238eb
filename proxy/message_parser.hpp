#pragma once
/**
 * @file Beast's HTTP/1 parser, with the proxy's own callbacks.
 *
 * Beast's `basic_parser` does all the parsing (syntax, framing, limits); these subclasses only
 * receive what it found. Instead of storing every field in a container (an allocation and a
 * tree insert per field, then a pass to copy them out again), they write the fields a proxy
 * forwards straight into an output string, drop the hop-by-hop ones, and record the few facts
 * the proxy needs to decide what to do with the message. The rules applied to those facts are
 * in http_rules.hpp.
 */

#include <boost/beast/http/basic_parser.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/units.hpp"

namespace kinfra::proxy {

namespace http = boost::beast::http;
/** Beast's string view (boost::core::string_view), as its parser callbacks take it. */
using bsv = boost::beast::string_view;

/** What the proxy learns from a request head while Beast parses it. */
struct request_head {
  http::verb method = http::verb::unknown;
  std::string method_string;
  std::string target;
  unsigned version = 11;
  std::string host;                  ///< the Host value as received (may carry a port)
  unsigned host_fields = 0;
  unsigned content_length_fields = 0;
  bool content_length_list = false;  ///< a Content-Length value with a comma
  unsigned transfer_encoding_fields = 0;
  unsigned chunked_tokens = 0;       ///< how many times `chunked` appears in Transfer-Encoding
  bool chunked_last = false;         ///< the last transfer coding is `chunked`
  bool other_coding = false;         ///< a transfer coding other than `chunked`
  bool empty_coding = false;         ///< an empty Transfer-Encoding list
  bool has_expect = false;
  std::string expect;
  bool accept_json = false;          ///< Accept names JSON before HTML
  bool navigation = false;           ///< a browser loading a page (Sec-Fetch-Mode: navigate, or Accept: text/html)
  std::string origin;                ///< the Origin value (admin actions check it)
  std::string authorization;         ///< the Authorization value (admin actions check it)
  std::string fetch_site;            ///< Sec-Fetch-Site (admin actions check it)
  std::string challenge;             ///< X-Kinfra-Challenge (the CLI's, see common/admin_proof.hpp)
  std::string referer;               ///< for the access log
  std::string user_agent;            ///< for the access log
  std::string upgrade;               ///< the Upgrade value
  std::string forwarded_for;         ///< earlier X-Forwarded-For values, joined with ", "
  std::string fields;                ///< end-to-end fields to forward: "Name: value\r\n" each
  std::vector<std::string> connection_names;  ///< extra names listed in Connection (rare)

  /** Empties everything, keeping the strings' capacity for the next request. */
  void clear();
};

/** What the proxy learns from a response head. */
struct response_head {
  unsigned status = 0;
  std::string status_line;  ///< "HTTP/1.1 200 OK\r\n", always version 1.1
  std::string upgrade;      ///< the Upgrade value (for a 101)
  std::string fields;       ///< end-to-end fields to relay
  std::vector<std::string> connection_names;

  void clear();
};

/**
 * The body side shared by both parsers: Beast delivers chunk sizes and data, and with
 * `chunk_out` set they are written there in canonical chunked form (extensions and trailers
 * dropped), or as bare data without `rechunk`. Bodies with a known length or delimited by close
 * are relayed as raw bytes and never go through the parser.
 */
template <bool IsRequest>
class relay_parser : public http::basic_parser<IsRequest> {
 public:
  std::string* chunk_out = nullptr;
  bool rechunk = true;
  std::uint64_t chunk_limit = unlimited_bytes;  ///< the body may not grow past this
  std::uint64_t chunk_total = 0;
  std::uint64_t chunk_left = 0;  ///< data bytes of the current chunk still to come (0: at framing)
  bool too_large = false;

  /**
   * The parser waits for more while it is at chunk framing: true when `pending` (the bytes it has
   * not taken) cannot become framing — a line ending in a bare LF (Beast looks for CRLF and would
   * wait for it until the body timeout), or a line longer than any chunk line or trailer can be.
   */
  bool framing_cannot_complete(std::string_view pending, bool took_some);

 private:
  std::size_t framing_scanned_ = 0;  ///< bytes of `pending` already looked at (framing_cannot_complete)

 public:

 protected:
  void on_body_init_impl(const boost::optional<std::uint64_t>&, boost::system::error_code&) override {}
  std::size_t on_body_impl(bsv, boost::system::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, bsv extensions, boost::system::error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t remain, bsv body, boost::system::error_code& ec) override;
  void on_finish_impl(boost::system::error_code&) override {}
};

/** Parses a request head into a `request_head` (which it clears first). */
class request_parser final : public relay_parser<true> {
 public:
  explicit request_parser(request_head& head);

  /**
   * Records a field that does not come through the parser, exactly as if it had: an HTTP/2
   * stream's, already checked (never a framing or connection-specific field). Before put().
   */
  void add_field(std::string_view name, std::string_view value) {
    boost::system::error_code ignored;
    on_field_impl(http::string_to_field(bsv(name.data(), name.size())), bsv(name.data(), name.size()),
                  bsv(value.data(), value.size()), ignored);
  }

 private:
  void on_request_impl(http::verb method, bsv method_str, bsv target, int version,
                       boost::system::error_code& ec) override;
  void on_response_impl(int, bsv, int, boost::system::error_code&) override {}
  void on_field_impl(http::field name, bsv name_string, bsv value,
                     boost::system::error_code& ec) override;
  void on_header_impl(boost::system::error_code& ec) override;

  request_head& head_;
};

/** Parses a response head into a `response_head` (which it clears first). */
class response_parser final : public relay_parser<false> {
 public:
  explicit response_parser(response_head& head);

 private:
  void on_request_impl(http::verb, bsv, bsv, int, boost::system::error_code&) override {}
  void on_response_impl(int code, bsv reason, int version, boost::system::error_code& ec) override;
  void on_field_impl(http::field name, bsv name_string, bsv value,
                     boost::system::error_code& ec) override;
  void on_header_impl(boost::system::error_code& ec) override;

  response_head& head_;
};

}  // namespace kinfra::proxy
