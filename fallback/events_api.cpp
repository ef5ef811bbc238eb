#include "fallback/events_api.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "fallback/responses.hpp"
#include "fallback/status_json.hpp"

namespace kinfra::fallback {
namespace {

/** A decimal query parameter; `fallback` when absent, nullopt when not a number. */
std::optional<std::uint64_t> number(std::string_view query, std::string_view key, std::uint64_t fallback) {
  const std::string v = query_param(query, key);
  return v.empty() ? std::optional<std::uint64_t>(fallback) : parse_decimal(v);
}

}  // namespace

nlohmann::ordered_json event_json(const event& e) {
  nlohmann::ordered_json j;
  j["seq"] = e.seq;
  j["time"] = format_utc(e.at);
  j["service"] = e.service.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.service);
  j["kind"] = std::string(to_string(e.kind));
  j["level"] = std::string(to_string(e.level));
  j["message"] = e.message;
  j["detail"] = e.detail;
  j["by"] = e.by;
  return j;
}

local_response render_events_answer(const status_board& board, std::string_view query) {
  const auto after = number(query, "after", 0);
  const auto limit = number(query, "limit", events_default_limit);
  if (!after || !limit) return json_error(400, "after and limit are whole numbers");
  const std::string service = query_param(query, "service");
  const std::size_t max = static_cast<std::size_t>(std::clamp<std::uint64_t>(*limit, 1, events_max_limit));
  // (Read first: an event recorded meanwhile is in the list or comes after last_seq, never lost.)
  std::uint64_t last = board.events().last_seq();
  auto events = board.events().since(*after, max, service);
  if (!events.empty()) last = std::max(last, events.back().seq);
  // A name that is neither a service now nor in any kept event is a mistake, not an empty history.
  if (!service.empty() && events.empty() && board.index_of(service) < 0 &&
      board.events().since(0, events_max_limit, service).empty())
    return json_error(404, "unknown service");
  nlohmann::ordered_json body;
  body["boot"] = process_boot_id();
  body["last_seq"] = last;
  // A cursor beyond the last event is an earlier kinfra process's: the reader should start again.
  if (*after > last) body["reset"] = true;
  body["first_seq"] = board.events().first_seq();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& e : events) list.push_back(event_json(e));
  body["events"] = std::move(list);
  return json_response(200, dump(body));
}

}  // namespace kinfra::fallback
