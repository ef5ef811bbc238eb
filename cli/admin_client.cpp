#include "cli/admin_client.hpp"
#include "cli/tables.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "common/address.hpp"
#include "common/admin_proof.hpp"
#include "common/config_loader.hpp"

namespace kinfra::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::ordered_json;  // keeps /__status__'s order (routes.yaml's)
using namespace std::chrono_literals;

struct reply {
  unsigned status = 0;
  std::string body;
  bool from_kinfra = false;  ///< the answer says `Server: kinfra`
  std::string proof;         ///< X-Kinfra-Proof, on a 401 (see common/admin_proof.hpp)
  std::string address;       ///< the address the connection reached, as kinfra writes it
};

/** Thrown when nothing answers at an address (refused, unreachable, timed out). */
struct not_running : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/** http://host[:port][/] → the address (routes.yaml's URL rules); nullopt for anything else. */
std::optional<host_port> parse_url(const std::string& url) {
  if (url.rfind("http://", 0) != 0) return std::nullopt;
  auto parsed = parse_upstream_url(url);
  if (const auto* u = std::get_if<upstream_url>(&parsed)) return u->address;
  return std::nullopt;
}

/** A wildcard bind address is asked on loopback. */
host_port reachable(const host_port& a) {
  host_port e = a;
  if (e.host == "0.0.0.0" || e.host.empty()) e.host = "127.0.0.1";
  if (e.host == "::") e.host = "::1";
  return e;
}

/** The addresses to try, in order, and the token, from the options and routes.yaml. */
struct plan {
  std::vector<host_port> candidates;
  std::string token;
  std::string note;  ///< said only when nothing answers (e.g. routes.yaml has errors)
};

plan make_plan(const client_options& o) {
  plan p;
  std::shared_ptr<const config> cfg;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!o.config.empty() && fs::exists(o.config, ec)) {
    auto loaded = load_config_file(o.config);
    if (loaded.ok()) cfg = loaded.cfg;
    else if (o.url.empty())
      p.note = o.config + " has errors, so the default addresses were tried (`kinfra check " + o.config + "` lists them)";
  }
  if (!o.url.empty()) {
    auto e = parse_url(o.url);
    if (!e) throw std::invalid_argument("--url must look like http://127.0.0.1:9000 (got \"" + o.url + "\")");
    p.candidates.push_back(*e);
  } else if (cfg) {
    if (cfg->admin.listen && cfg->admin.listen->port != 0) p.candidates.push_back(reachable(*cfg->admin.listen));
    for (const auto& l : cfg->listen)
      if (!l.tls && !l.redirect_to_https && l.address.port != 0) p.candidates.push_back(reachable(l.address));
  } else {
    p.candidates.push_back({"127.0.0.1", 9000});
    p.candidates.push_back({"127.0.0.1", 9100});
  }
  if (p.candidates.empty())
    throw std::invalid_argument(o.config + " gives no plain-HTTP address to reach kinfra at; pass --url");
  if (!o.token.empty()) p.token = o.token;
  else if (cfg && !cfg->admin.token.empty()) p.token = cfg->admin.token;
  else if (const char* env = std::getenv("KINFRA_ADMIN_TOKEN"); env && *env) p.token = env;
  return p;
}

/** One request on a new connection, with a deadline for the whole exchange. */
reply fetch(const host_port& at, http::verb method, const std::string& target, const std::string& token,
            const std::string& challenge, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  reply out;
  std::exception_ptr failure;
  bool connected = false;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        tcp::resolver resolver(ioc);
        beast::tcp_stream stream(ioc);
        stream.expires_after(timeout);
        auto addresses = co_await resolver.async_resolve(at.host, std::to_string(at.port), net::use_awaitable);
        co_await stream.async_connect(addresses, net::use_awaitable);
        connected = true;
        auto peer = stream.socket().remote_endpoint().address();
        if (peer.is_v6() && peer.to_v6().is_v4_mapped()) peer = net::ip::make_address_v4(net::ip::v4_mapped, peer.to_v6());
        out.address = host_port{peer.to_string(), stream.socket().remote_endpoint().port()}.to_string();
        http::request<http::string_body> req{method, target, 11};
        req.set(http::field::host, at.to_string());
        req.set(http::field::user_agent, "kinfra-cli");
        req.set(http::field::accept, "application/json");
        if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
        req.set("X-Kinfra-Challenge", challenge);
        req.prepare_payload();
        co_await http::async_write(stream, req, net::use_awaitable);
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        co_await http::async_read(stream, buffer, parser, net::use_awaitable);
        auto res = parser.release();
        out.status = res.result_int();
        out.from_kinfra = res[http::field::server] == "kinfra";
        out.proof = std::string(res["X-Kinfra-Proof"]);
        out.body = std::move(res.body());
      },
      [&](std::exception_ptr e) { failure = e; });
  ioc.run();
  if (failure) {
    std::string why;
    try {
      std::rethrow_exception(failure);
    } catch (const boost::system::system_error& e) {
      why = e.code() == beast::error::timeout ? "timed out after " + std::to_string(timeout.count()) + " ms"
                                              : e.code().message();
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (!connected) throw not_running(at.to_string() + ": " + why);
    throw std::runtime_error("kinfra at " + at.to_string() + " did not answer properly: " + why);
  }
  return out;
}

/**
 * A session with the running kinfra. The first candidate address that answers a `GET /__status__`
 * as kinfra is kept (a request with effects is never sent to more than one address). The token is
 * a secret: it goes out only once kinfra has answered 401 (nothing was done) *and* shown that it
 * knows the same token for the address the CLI reached (X-Kinfra-Proof, common/admin_proof.hpp) —
 * never to another program that listens where the CLI looks, never on a read that needs none.
 */
class session {
 public:
  explicit session(const client_options& o) : o_(o), plan_(make_plan(o)), challenge_(make_challenge()) {}

  reply request(http::verb method, const std::string& target) {
    if (!chosen_) {
      // A GET is its own discovery; anything else is preceded by a GET that changes nothing.
      const bool get = method == http::verb::get;
      reply first = discover(get ? target : "/__status__");
      const bool token_now = first.status == 401 && use_token(first);
      if (get && !token_now) return first;
    }
    reply r = send(method, target);
    if (r.status == 401 && r.from_kinfra && !send_token_ && use_token(r)) r = send(method, target);
    return r;
  }

 private:
  reply send(http::verb method, const std::string& target) {
    return fetch(*chosen_, method, target, send_token_ ? plan_.token : "", challenge_, o_.timeout);
  }

  /** After kinfra's 401: true when the token may go (kinfra proved it knows it); throws when not. */
  bool use_token(const reply& r) {
    if (plan_.token.empty()) return false;
    if (r.proof.empty() || !constant_time_equals(r.proof, admin_proof(plan_.token, challenge_, r.address)))
      throw std::runtime_error("the kinfra at " + r.address +
                               " asks for the admin token but could not show that it knows the same one, so it "
                               "was not sent (is --token, admin_token or KINFRA_ADMIN_TOKEN the token this kinfra uses?)");
    send_token_ = true;
    return true;
  }

  /** The first candidate that answers `GET target` as kinfra; its answer. */
  reply discover(const std::string& target) {
    std::string tried;
    for (const auto& e : plan_.candidates) {
      try {
        reply r = fetch(e, http::verb::get, target, "", challenge_, o_.timeout);
        if (!r.from_kinfra) {
          // Something else listens there (another program on :9000, say): try the next address.
          tried += std::string(tried.empty() ? "" : "; ") + e.to_string() + ": answered, but it is not kinfra";
          continue;
        }
        chosen_ = e;
        return r;
      } catch (const not_running& err) {
        tried += std::string(tried.empty() ? "" : "; ") + err.what();
      } catch (const std::runtime_error& err) {
        tried += std::string(tried.empty() ? "" : "; ") + err.what();
      }
    }
    throw not_running(plan_.note.empty() ? tried : tried + ".\n" + plan_.note);
  }

  client_options o_;
  plan plan_;
  std::string challenge_;
  std::optional<host_port> chosen_;
  bool send_token_ = false;
};

/** The `error` of a JSON answer, or the status line when there is none. */
std::string error_of(const reply& r) {
  auto j = json::parse(r.body, nullptr, false);
  std::string msg;
  if (j.is_object() && j.contains("error") && j["error"].is_string()) msg = j["error"].get<std::string>();
  if (j.is_object() && j.contains("errors") && j["errors"].is_array())
    for (const auto& e : j["errors"]) msg += (msg.empty() ? "" : "\n") + e.get<std::string>();
  if (msg.empty()) msg = "HTTP " + std::to_string(r.status);
  if (r.status == 401) msg += " (pass --token, or set KINFRA_ADMIN_TOKEN)";
  return msg;
}

int report_not_running(const not_running& e, const client_options& o) {
  std::cerr << "kinfra is not running (nothing answered: " << e.what() << ").\n"
            << "Start it with `kinfra run " << o.config << "`, or say where it is with --url http://HOST:PORT.\n";
  return exit_not_running;
}

/** Runs `body`, turning failures into messages and exit codes. */
template <class F>
int guarded(const client_options& o, F&& body) {
  try {
    return body();
  } catch (const not_running& e) {
    return report_not_running(e, o);
  } catch (const std::invalid_argument& e) {
    std::cerr << "kinfra: " << e.what() << "\n";
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "kinfra: " << e.what() << "\n";
    return exit_failed;
  }
}

std::string percent_encode(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

namespace {

/** GETs /__status__ and hands its body to `print`; the error kinfra gave otherwise. */
template <class Print>
int with_status_document(const client_options& o, Print print) {
  return guarded(o, [&] {
    session s(o);
    reply r = s.request(http::verb::get, "/__status__");
    if (r.status != 200) {
      std::cerr << "kinfra: " << error_of(r) << "\n";
      return exit_failed;
    }
    print(r.body);
    return exit_ok;
  });
}

}  // namespace

int status_command(const client_options& o, bool as_json) {
  return with_status_document(o, [&](const std::string& body) {
    std::cout << (as_json ? body : format_status_table(body));
  });
}

int routes_command(const client_options& o, bool as_json) {
  return with_status_document(o, [&](const std::string& body) {
    if (!as_json) {
      std::cout << format_routes_table(body);
      return;
    }
    auto doc = json::parse(body, nullptr, false);
    json part = json::object();
    for (const char* key : {"routes", "listeners", "certificates"})
      part[key] = doc.is_object() && doc.contains(key) ? doc[key] : json::array();
    std::cout << part.dump(2) << "\n";
  });
}

int action_command(const client_options& o, const std::string& verb, const std::string& name, bool wait,
                   std::chrono::milliseconds wait_for) {
  return guarded(o, [&] {
    session s(o);
    auto service_status = [&]() -> std::optional<json> {
      // The whole document: a service's public part (what a client without the token gets for
      // ?service=NAME) has no pid or restart count to see a new process by.
      reply st = s.request(http::verb::get, "/__status__");
      auto doc = json::parse(st.body, nullptr, false);
      if (st.status == 200 && doc.is_object() && doc.contains("services") && doc["services"].contains(name))
        return doc["services"][name];
      return std::nullopt;
    };
    // The service before the action: only what happens after it counts (a poll may come before
    // kinfra's control thread took the action).
    std::string state_before, pid_before, restarts_before, rollout_before;
    bool rolling_before = false;  // one was under way: ours comes after it
    // A start-first restart (`port: auto`) says how it went in last_restart, once it is over.
    auto rollout = [](const json& svc) -> json {
      return svc.contains("last_restart") && svc["last_restart"].is_object() ? svc["last_restart"] : json(nullptr);
    };
    if (wait)
      if (auto before = service_status()) {
        state_before = str(*before, "state");
        pid_before = str(*before, "pid");
        restarts_before = str(*before, "restarts", "0");
        if (auto r = rollout(*before); r.is_object()) {
          rollout_before = str(r, "id", "");
          rolling_before = str(r, "result", "") == "in progress";
        }
      }
    reply r = s.request(http::verb::post, "/__action__/" + verb + "/" + percent_encode(name));
    if (r.status != 200) {
      std::cerr << "kinfra: " << verb << " " << name << ": " << error_of(r) << "\n";
      return exit_failed;
    }
    if (!wait) {
      std::cout << name << ": " << verb << " requested\n";
      return exit_ok;
    }
    // Done when the service reaches the state the verb leads to; for a restart, with a new
    // process. An error counts only once something changed since the action.
    const std::string goal = verb == "stop" ? "stopped" : "running";
    const auto deadline = std::chrono::steady_clock::now() + wait_for;
    std::string last_state, message;
    bool changed = false;
    for (;;) {
      if (auto svc = service_status()) {
        last_state = str(*svc, "state");
        message = str(*svc, "status_message", "");
        bool rolling = false;
        auto roll = rollout(*svc);
        if (verb == "restart" && rolling_before && roll.is_object() && str(roll, "id", "") == rollout_before) {
          // The restart under way when we asked: ours follows it (unless it failed).
          rolling = true;
          if (str(roll, "result", "") == "failed") {
            std::cerr << "kinfra: " << name << ": " << str(roll, "message", "restart failed") << "\n";
            return exit_failed;
          }
        } else if (verb == "restart" && roll.is_object() && str(roll, "id", "") != rollout_before) {
          const std::string result = str(roll, "result", "");
          if (result == "done") {
            std::cout << name << ": restarted start-first (pid " << str(*svc, "pid") << ")\n";
            return exit_ok;
          }
          if (result == "failed") {
            std::cerr << "kinfra: " << name << ": " << str(roll, "message", "restart failed") << "\n";
            if (roll.contains("lines") && roll["lines"].is_array() && !roll["lines"].empty()) {
              std::cerr << "its last lines:\n";
              for (const auto& l : roll["lines"]) std::cerr << "  | " << (l.is_string() ? l.get<std::string>() : "") << "\n";
            }
            return exit_failed;
          }
          rolling = true;  // in progress: the first new pid is not the end of it
          message = str(roll, "message", message.c_str());
        }
        const std::string pid = str(*svc, "pid");
        const bool new_process = pid != pid_before || str(*svc, "restarts", "0") != restarts_before;
        if (last_state != state_before || new_process) changed = true;
        const bool reached = !rolling && last_state == goal && (verb != "restart" || new_process);
        if (reached) {
          std::cout << name << ": " << last_state << (pid != "-" ? " (pid " + pid + ")" : "") << "\n";
          return exit_ok;
        }
        if (changed && last_state == "error") {
          std::cerr << "kinfra: " << name << " failed: " << message << "\n";
          return exit_failed;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        std::cerr << "kinfra: " << name << " is " << (last_state.empty() ? "unknown" : last_state) << " after "
                  << wait_for.count() / 1000.0 << " s, not " << goal << (message.empty() ? "" : ": " + message) << "\n";
        return exit_failed;
      }
      std::this_thread::sleep_for(200ms);
    }
  });
}

int logs_command(const client_options& o, const std::string& name, std::size_t lines, bool follow) {
  return guarded(o, [&] {
    session s(o);
    const std::string base = "/__logs__/" + percent_encode(name) + "?format=json";
    // First the last `lines` lines (at most 10,000), or every kept line page by page; then, when
    // following, whatever comes after the last one printed.
    std::string next_query = lines > 0 ? "&tail=" + std::to_string(std::min<std::size_t>(lines, 10000)) : "&after=0";
    std::uint64_t after = 0;
    std::string boot;  // the kinfra process that answered (its line numbers are its own)
    bool first = true;
    for (;;) {
      reply r;
      try {
        r = s.request(http::verb::get, base + next_query);
      } catch (const not_running&) {
        if (first) throw;
        std::cerr << "kinfra: the connection to kinfra was lost (it stopped?)\n";
        return exit_failed;
      }
      if (r.status != 200) {
        std::cerr << "kinfra: logs " << name << ": " << error_of(r) << "\n";
        return exit_failed;
      }
      auto doc = json::parse(r.body);
      const std::string this_boot = doc.value("boot", "");
      if (!first && (doc.value("reset", false) || this_boot != boot)) {
        // Another kinfra process answers now, or a reload made the service anew: its line
        // numbers began again, so its log from the start.
        std::cout << (this_boot != boot ? "-- kinfra restarted --\n" : "-- the log started again --\n") << std::flush;
        boot = this_boot;
        after = 0;
        next_query = "&after=0";
        continue;
      }
      boot = this_boot;
      const auto& arr = doc["lines"];
      std::string out;
      for (const auto& l : arr) {
        out += str(l, "timestamp", "") + " " + upper(str(l, "level", "info")) + " " + str(l, "message", "") + "\n";
      }
      std::cout << out << std::flush;
      after = std::max<std::uint64_t>(after, doc.value("next", after));
      const bool more = doc.value("more", false);
      first = false;
      next_query = "&after=" + std::to_string(after);
      if (more) continue;
      if (!follow) return exit_ok;
      std::this_thread::sleep_for(500ms);
    }
  });
}

int events_command(const client_options& o, const std::string& service, std::size_t count, bool follow) {
  return guarded(o, [&] {
    session s(o);
    const std::string filter = service.empty() ? "" : "&service=" + percent_encode(service);
    std::string query = "?limit=" + std::to_string(std::clamp<std::size_t>(count, 1, 2000)) + filter;
    std::string boot;  // the kinfra process that answered (its event seqs are its own)
    bool first = true;
    for (;;) {
      reply r;
      try {
        r = s.request(http::verb::get, "/__events__" + query);
      } catch (const not_running&) {
        if (first) throw;
        std::cerr << "kinfra: the connection to kinfra was lost (it stopped?)\n";
        return exit_failed;
      }
      if (r.status != 200) {
        std::cerr << "kinfra: events: " << error_of(r) << "\n";
        return exit_failed;
      }
      const auto doc = json::parse(r.body);
      const std::string this_boot = doc.value("boot", "");
      if (!first && (doc.value("reset", false) || this_boot != boot)) {
        // Another kinfra process answers now (its seqs began again): its events from the start.
        std::cout << "-- kinfra restarted --\n" << std::flush;
        boot = this_boot;
        query = "?limit=2000" + filter;
        continue;
      }
      boot = this_boot;
      std::cout << format_events(r.body) << std::flush;
      if (!follow) return exit_ok;
      const auto last = doc.value("last_seq", std::uint64_t{0});
      first = false;
      query = "?limit=2000&after=" + std::to_string(last) + filter;
      std::this_thread::sleep_for(500ms);
    }
  });
}

int reload_command(const client_options& o) {
  return guarded(o, [&] {
    session s(o);
    // kinfra answers 409 at once while another reload runs (a file save, SIGHUP): ask again
    // until that one is done.
    reply r = s.request(http::verb::post, "/__action__/reload");
    if (r.status == 409) std::cerr << "kinfra: another reload is running; waiting for it\n";
    for (auto until = std::chrono::steady_clock::now() + 60s; r.status == 409 && std::chrono::steady_clock::now() < until;) {
      std::this_thread::sleep_for(200ms);
      r = s.request(http::verb::post, "/__action__/reload");
    }
    if (r.status != 200) {
      std::cerr << "kinfra: routes.yaml was not reloaded:\n" << error_of(r) << "\n";
      return exit_failed;
    }
    auto doc = json::parse(r.body, nullptr, false);
    bool applied = doc.is_object() && doc.value("applied", false);
    std::cout << (applied ? "routes.yaml reloaded\n" : "routes.yaml unchanged\n");
    return exit_ok;
  });
}

}  // namespace kinfra::cli
