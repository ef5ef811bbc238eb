#include "proxy/message_parser.hpp"

#include <cstring>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>

#include <charconv>

namespace kinfra::proxy {
namespace {

namespace beast = boost::beast;

void append_field(std::string& out, bsv name, bsv value) {
  // The usual line, "Name: value\r\n" as it arrived (the views point into the parsed bytes):
  // one copy of the whole line.
  const char* n = name.data();
  if (value.data() == n + name.size() + 2 && n[name.size()] == ':' && n[name.size() + 1] == ' ' &&
      value.data()[value.size()] == '\r' && value.data()[value.size() + 1] == '\n') {
    out.append(n, name.size() + 2 + value.size() + 2);
    return;
  }
  out.append(name.data(), name.size());
  out.append(": ", 2);
  out.append(value.data(), value.size());
  out.append("\r\n", 2);
}

bool named(bsv name, std::string_view expected) {
  return name.size() == expected.size() && beast::iequals(name, expected);
}

/** Records the field names a Connection value lists, besides the tokens every message uses. */
void collect_connection_names(bsv value, std::vector<std::string>& out) {
  if (beast::iequals(value, "keep-alive") || beast::iequals(value, "close")) return;  // the usual case
  for (auto token : http::token_list{value}) {
    if (beast::iequals(token, "close") || beast::iequals(token, "keep-alive") || beast::iequals(token, "upgrade") ||
        beast::iequals(token, "host"))  // a client may not strip what the proxy relies on
      continue;
    out.emplace_back(token);
  }
}

/** Removes the lines of `fields` whose name is in `names`. */
void drop_named_fields(std::string& fields, const std::vector<std::string>& names) {
  std::string kept;
  kept.reserve(fields.size());
  std::string_view rest(fields);
  while (!rest.empty()) {
    auto eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol + 2);
    rest.remove_prefix(line.size());
    std::string_view name = line.substr(0, line.find(':'));
    bool drop = false;
    for (const auto& n : names) drop = drop || beast::iequals(name, n);
    if (!drop) kept.append(line);
  }
  fields.swap(kept);
}

/**
 * Records and drops the hop-by-hop fields requests and responses share (RFC 9110 §7.6.1).
 * Transfer-Encoding is left to each direction. @return false for an end-to-end field.
 */
bool take_hop_by_hop(http::field name, bsv value, std::vector<std::string>& connection_names, std::string& upgrade) {
  switch (name) {
    case http::field::connection:
    case http::field::proxy_connection:
      collect_connection_names(value, connection_names);
      return true;
    case http::field::keep_alive:
    case http::field::te:
    case http::field::trailer:
      return true;
    case http::field::upgrade:
      upgrade.assign(value.data(), value.size());
      return true;
    default:
      return false;
  }
}

/** Once the head is complete: fields named in Connection go too, wherever they appeared. */
template <class Head>
void drop_connection_named(Head& head) {
  if (!head.connection_names.empty()) drop_named_fields(head.fields, head.connection_names);
}

/** An Upgrade value without its `h2c` tokens ("" when nothing else was asked for). */
std::string without_h2c(const std::string& upgrade) {
  if (upgrade.find_first_of("hH") == std::string::npos) return upgrade;  // the usual case: websocket
  std::string kept;
  for (auto token : http::token_list{upgrade}) {
    if (beast::iequals(token, "h2c")) continue;
    if (!kept.empty()) kept += ", ";
    kept.append(token.data(), token.size());
  }
  return kept;
}

/** True when an Accept value prefers JSON to HTML. */
bool accept_prefers_json(bsv accept) {
  std::string_view v(accept.data(), accept.size());
  auto json = v.find("json");
  if (json == std::string_view::npos) return false;
  auto html = v.find("text/html");
  return html == std::string_view::npos || json < html;
}

}  // namespace

void request_head::clear() {
  method = http::verb::unknown;
  method_string.clear();
  target.clear();
  version = 11;
  host.clear();
  host_fields = content_length_fields = transfer_encoding_fields = chunked_tokens = 0;
  content_length_list = chunked_last = other_coding = empty_coding = has_expect = accept_json = navigation = false;
  expect.clear();
  origin.clear();
  authorization.clear();
  fetch_site.clear();
  challenge.clear();
  referer.clear();
  user_agent.clear();
  upgrade.clear();
  forwarded_for.clear();
  fields.clear();
  connection_names.clear();
}

void response_head::clear() {
  status = 0;
  status_line.clear();
  upgrade.clear();
  fields.clear();
  connection_names.clear();
}

// ---- relay_parser ------------------------------------------------------------------------------

template <bool IsRequest>
std::size_t relay_parser<IsRequest>::on_body_impl(bsv, boost::system::error_code& ec) {
  // Bodies with a length are relayed as raw bytes, never fed to the parser.
  ec = http::error::unexpected_body;
  return 0;
}

template <bool IsRequest>
void relay_parser<IsRequest>::on_chunk_header_impl(std::uint64_t size, bsv, boost::system::error_code& ec) {
  chunk_left = size;
  chunk_total += size;
  if (chunk_limit != unlimited_bytes && chunk_total > chunk_limit) {
    too_large = true;
    ec = http::error::body_limit;
    return;
  }
  if (chunk_out && rechunk && size > 0) {
    char hex[20];
    auto [end, _] = std::to_chars(hex, hex + sizeof hex, size, 16);
    chunk_out->append(hex, end);
    chunk_out->append("\r\n", 2);
  }
}

template <bool IsRequest>
std::size_t relay_parser<IsRequest>::on_chunk_body_impl(std::uint64_t remain, bsv body,
                                                        boost::system::error_code& ec) {
  if (!chunk_out) {
    ec = http::error::unexpected_body;
    return 0;
  }
  chunk_out->append(body.data(), body.size());
  if (rechunk && remain == body.size()) chunk_out->append("\r\n", 2);
  chunk_left = remain - body.size();
  return body.size();
}

template <bool IsRequest>
bool relay_parser<IsRequest>::framing_cannot_complete(std::string_view pending, bool took_some) {
  // Chunk lines and trailers are small; a chunk-size line with extensions is at most a few hundred
  // bytes in practice, trailers are bounded like header fields.
  constexpr std::size_t max_framing = 64 * 1024;
  if (chunk_left != 0) return false;  // in chunk data: anything goes
  if (pending.size() > max_framing) return true;
  // Only the bytes not looked at yet (from the one before them, which may be a CR): linear even
  // when the line comes a byte at a time. (The CRLF that ends the previous chunk's data is still
  // there: Beast takes it with the next line.)
  if (took_some || framing_scanned_ > pending.size()) framing_scanned_ = 0;
  for (std::size_t i = framing_scanned_; i < pending.size(); ++i) {
    const void* lf = std::memchr(pending.data() + i, '\n', pending.size() - i);
    if (!lf) break;
    i = static_cast<std::size_t>(static_cast<const char*>(lf) - pending.data());
    if (i == 0 || pending[i - 1] != '\r') return true;
  }
  framing_scanned_ = pending.size();
  return false;
}

template class relay_parser<true>;
template class relay_parser<false>;

// ---- request_parser ----------------------------------------------------------------------------

request_parser::request_parser(request_head& head) : head_(head) { head_.clear(); }

void request_parser::on_request_impl(http::verb method, bsv method_str, bsv target, int version,
                                     boost::system::error_code&) {
  head_.method = method;
  head_.method_string.assign(method_str.data(), method_str.size());
  head_.target.assign(target.data(), target.size());
  head_.version = static_cast<unsigned>(version);
}

void request_parser::on_field_impl(http::field name, bsv name_string, bsv value, boost::system::error_code&) {
  if (take_hop_by_hop(name, value, head_.connection_names, head_.upgrade)) return;
  switch (name) {
    case http::field::http2_settings:
      return;  // belongs to an h2c upgrade, which is never passed on (see on_header_impl)
    case http::field::host:
      ++head_.host_fields;
      head_.host.assign(value.data(), value.size());
      break;
    case http::field::content_length:
      ++head_.content_length_fields;
      if (value.find(',') != bsv::npos) head_.content_length_list = true;
      break;
    case http::field::transfer_encoding: {
      ++head_.transfer_encoding_fields;
      http::token_list tokens{value};
      if (tokens.begin() == tokens.end()) head_.empty_coding = true;
      for (auto t : tokens) {
        bool chunked = beast::iequals(t, "chunked");
        head_.chunked_tokens += chunked;
        head_.chunked_last = chunked;
        if (!chunked) head_.other_coding = true;
      }
      return;  // the proxy writes its own framing
    }
    case http::field::expect:
      head_.has_expect = true;
      head_.expect.assign(value.data(), value.size());
      return;  // the proxy answers 100-continue itself
    case http::field::accept:
      head_.accept_json = accept_prefers_json(value);
      if (value.find("text/html") != std::string_view::npos) head_.navigation = true;
      break;
    case http::field::sec_fetch_mode:
      if (value == "navigate") head_.navigation = true;
      break;
    case http::field::origin:
      head_.origin.assign(value.data(), value.size());
      break;
    case http::field::authorization:
      head_.authorization.assign(value.data(), value.size());
      break;
    case http::field::sec_fetch_site:
      head_.fetch_site.assign(value.data(), value.size());
      break;
    case http::field::referer:
      head_.referer.assign(value.data(), value.size());
      break;
    case http::field::user_agent:
      head_.user_agent.assign(value.data(), value.size());
      break;
    case http::field::unknown:
      if (named(name_string, "X-Forwarded-For")) {
        if (!head_.forwarded_for.empty()) head_.forwarded_for.append(", ", 2);
        head_.forwarded_for.append(value.data(), value.size());
        return;
      }
      if (named(name_string, "X-Kinfra-Challenge")) head_.challenge.assign(value.data(), value.size());
      // The proxy states these itself; a client's own would be a lie passed on.
      if (named(name_string, "X-Forwarded-Proto") || named(name_string, "X-Forwarded-Host")) return;
      break;
    default:
      break;
  }
  append_field(head_.fields, name_string, value);
}

void request_parser::on_header_impl(boost::system::error_code&) {
  drop_connection_named(head_);
  // `Upgrade: h2c` is never passed on: an upstream that accepts it would take HTTP/2 past the
  // proxy (h2c smuggling). Without it the request is served as plain HTTP/1.1.
  if (!head_.upgrade.empty()) head_.upgrade = without_h2c(head_.upgrade);
}

// ---- response_parser ---------------------------------------------------------------------------

response_parser::response_parser(response_head& head) : head_(head) { head_.clear(); }

void response_parser::on_response_impl(int code, bsv reason, int version, boost::system::error_code& ec) {
  if (version / 10 != 1) {
    ec = http::error::bad_version;
    return;
  }
  head_.status = static_cast<unsigned>(code);
  head_.status_line.assign("HTTP/1.1 ");
  char digits[3] = {static_cast<char>('0' + code / 100 % 10), static_cast<char>('0' + code / 10 % 10),
                    static_cast<char>('0' + code % 10)};
  head_.status_line.append(digits, 3);
  head_.status_line += ' ';
  if (reason.empty()) reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(code)));
  head_.status_line.append(reason.data(), reason.size());
  head_.status_line.append("\r\n", 2);
}

void response_parser::on_field_impl(http::field name, bsv name_string, bsv value, boost::system::error_code&) {
  if (take_hop_by_hop(name, value, head_.connection_names, head_.upgrade)) return;
  if (name == http::field::transfer_encoding) return;  // the proxy writes its own framing
  append_field(head_.fields, name_string, value);
}

void response_parser::on_header_impl(boost::system::error_code&) { drop_connection_named(head_); }

}  // namespace kinfra::proxy
