#include "steady_load.hpp"

#include "http_test.hpp"

namespace kt {
namespace {

/** The sentence of kinfra's error page that says what happened. */
std::string why(const std::string& body) {
  auto at = body.find("The ");
  return at == std::string::npos ? body.substr(0, 80) : body.substr(at, body.find('<', at) - at);
}

}  // namespace

steady_load::steady_load(std::uint16_t port, int clients, bool posts, std::string expected)
    : posts_(posts), expected_(std::move(expected)) {
  for (int c = 0; c < clients; ++c) threads_.emplace_back([this, port, c] { run(port, c); });
}

steady_load::~steady_load() { stop(); }

void steady_load::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::string steady_load::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

void steady_load::run(std::uint16_t port, int c) {
  std::unique_ptr<socket_conn> conn;
  for (unsigned i = 0; !stop_; ++i) {
    if (!conn) conn = connect_to(port);
    const bool post = posts_ && (i + static_cast<unsigned>(c)) % 3 == 0;
    conn->send(post ? "POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                    : "GET /items HTTP/1.1\r\nHost: t\r\n\r\n");
    response res;
    if (!conn->read_response(res, false, 15s)) {
      note(std::string("no answer (connection closed or reset) to a ") + (post ? "POST" : "GET"));
      conn.reset();
      continue;
    }
    if (res.status == 200 && res.body == expected_) ++ok_;
    else note(std::to_string(res.status) + (post ? " POST " : " GET ") + why(res.body));
    if (res.headers.get("Connection") == "close") conn.reset();
  }
}

void steady_load::note(const std::string& what) {
  std::lock_guard lock(mutex_);
  failures_ += what + "\n";
}

}  // namespace kt
