// libFuzzer target: raw request bytes → what the proxy decides before forwarding: Beast's parser
// (through kinfra's subclass), the framing and Host checks, path normalisation and the route
// match. The invariants checked are the security ones: a normalised path is canonical and a
// route prefix only ever matches at a segment boundary.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config_loader.hpp"
#include "proxy/http_rules.hpp"
#include "proxy/message_parser.hpp"
#include "proxy/router.hpp"
#include "proxy/uri_path.hpp"

namespace {

const kinfra::proxy::router& routes() {
  static const auto cfg = kinfra::load_config_string(R"(
routes:
  - { path: /api, service: api, strip_prefix: true }
  - { path: /admin, service: admin, host: "admin.example.com" }
  - { path: /static/files, service: files }
  - { path: /, service: web, host: "*.example.com" }
  - { path: /, service: web }
services:
  api: { url: "http://127.0.0.1:1" }
  admin: { url: "http://127.0.0.1:2" }
  files: { url: "http://127.0.0.1:3" }
  web: { url: "http://127.0.0.1:4" }
)", "/tmp/routes.yaml").cfg;
  static const kinfra::proxy::router r(*cfg);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kinfra::proxy;
  request_head head;
  request_parser parser(head);
  parser.header_limit(32 * 1024);
  parser.body_limit(boost::none);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  auto cl = parser.content_length();
  auto framing = check_request_framing(head, cl ? std::optional<std::uint64_t>(*cl) : std::nullopt);
  std::string host;
  const bool host_ok = check_host(head, host);
  std::string scratch;
  normalised_target nt;
  if (!normalise_target(head.target, scratch, nt)) return 0;
  // Canonical: normalising again changes nothing, and no dot segment or empty segment is left.
  std::string again_scratch;
  normalised_target again;
  std::string path(nt.path);
  if (!normalise_target(path, again_scratch, again) || again.path != nt.path) __builtin_trap();
  if (path.empty() || path[0] != '/' || path.find("//") != std::string::npos) __builtin_trap();
  if (path.find("/../") != std::string::npos || path.find("/./") != std::string::npos) __builtin_trap();
  if (path.ends_with("/..") || path.ends_with("/.")) __builtin_trap();
  if (framing.error || !host_ok) return 0;
  if (const route* r = routes().match(host, nt.path)) {
    if (!router::prefix_matches(r->prefix, nt.path)) __builtin_trap();
    if (r->strip_prefix) (void)strip_path_prefix(nt.path, r->prefix);
  }
  return 0;
}
