#include "cli/tables.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <vector>

namespace kinfra::cli {

std::string printable(std::string_view text, bool keep_newlines) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' && keep_newlines) {
      out += '\n';
    } else if (c == '\t') {
      out += ' ';
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      const auto d = static_cast<unsigned char>(text[++i]);  // U+0080…U+009F: the C1 controls
      out += "\\u00";
      out += hex[d >> 4];
      out += hex[d & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string str(const nlohmann::json& j, const char* key, const char* fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (j[key].is_string()) return printable(j[key].get_ref<const std::string&>());
  return j[key].dump();
}

namespace {

using json = nlohmann::json;


/** Columns padded to their widest cell, two spaces apart; no trailing blanks. */
std::string aligned(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(head.size());
  for (std::size_t c = 0; c < head.size(); ++c) {
    widths[c] = head[c].size();
    for (const auto& r : rows) widths[c] = std::max(widths[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size()) out += std::string(widths[c] - cells[c].size() + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(head);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string joined(const json& list, const char* sep = ", ") {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& v : list) out += (out.empty() ? "" : sep) + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

std::string rate_text(const json& j) {
  if (!j.contains("requests_per_second") || !j["requests_per_second"].is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", j["requests_per_second"].get<double>());
  return buf;
}

std::string share_text(const json& j) {
  if (!j.contains("error_rate") || !j["error_rate"].is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", j["error_rate"].get<double>() * 100);
  return buf;
}

/** ACME and OCSP in a few words: when it renews or why it could not, what the responder said. */
std::string certificate_note(const json& c) {
  std::vector<std::string> parts;
  if (c.contains("acme") && c["acme"].is_object()) {
    const auto& a = c["acme"];
    if (!a.value("last_error", "").empty()) {
      std::string next = a.contains("next_attempt") && a["next_attempt"].is_string() ? a["next_attempt"].get<std::string>() : "";
      parts.push_back("ACME failed: " + a.value("last_error", "") + (next.empty() ? "" : " (next attempt " + next + ")"));
    } else if (a.contains("next_renewal") && a["next_renewal"].is_string()) {
      parts.push_back("renews " + a["next_renewal"].get<std::string>().substr(0, 10));
    }
  }
  if (c.contains("ocsp") && c["ocsp"].is_object()) {
    const auto& o = c["ocsp"];
    if (!o.value("status", "").empty()) parts.push_back("OCSP " + o.value("status", ""));
    if (!o.value("last_error", "").empty()) parts.push_back("OCSP fetch failed: " + o.value("last_error", ""));
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

std::string format_status_table(const std::string& status_json) {
  auto doc = json::parse(status_json);
  const std::vector<std::string> head = {"NAME", "STATE", "HEALTH", "PID", "UPTIME", "RESTARTS", "PORT", "REQ/S", "ERRORS",
                                         "MESSAGE"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, s] : doc["services"].items()) {
    const std::string rps = rate_text(s), errors = share_text(s);
    std::string state = str(s, "state");
    if (s.contains("maintenance") && s["maintenance"].value("on", false)) state += " (maintenance)";
    rows.push_back({name, state, str(s, "health_status"), str(s, "pid"), str(s, "uptime"),
                    str(s, "restarts", "0"), str(s, "port"), rps, errors, str(s, "status_message", "")});
    // Several processes (instances: N, or a start-first restart under way): one row each, NAME/INSTANCE.
    const json instances = s.contains("instances") && s["instances"].is_array() ? s["instances"] : json::array();
    if (instances.size() < 2) continue;
    for (const auto& i : instances) {
      const std::string role = str(i, "role", "serving");
      std::string note = role == "starting" ? "new process (start-first restart)"
                         : role == "draining" ? "replaced; finishing " + str(i, "in_flight", "0") + " request(s)"
                                              : str(i, "health_detail", "");
      rows.push_back({name + "/" + str(i, "instance"), str(i, "state"), str(i, "health_status"), str(i, "pid"),
                      str(i, "uptime"), str(i, "restarts", "0"), str(i, "port"), "", "", note});
    }
  }
  std::string out = aligned(head, rows);
  for (const auto& [name, s] : doc["services"].items())
    if (s.contains("last_restart") && s["last_restart"].is_object() && str(s["last_restart"], "result") == "failed")
      out += "\n" + name + ": " + str(s["last_restart"], "message") + " (" + str(s["last_restart"], "at") + ")\n";
  if (doc.contains("config") && doc["config"].contains("errors") && !doc["config"]["errors"].empty()) {
    out += "\nroutes.yaml was not reloaded; the configuration in force stays:\n";
    for (const auto& e : doc["config"]["errors"]) out += "  " + e.get<std::string>() + "\n";
  }
  return out;
}

std::string format_routes_table(const std::string& status_json) {
  auto doc = json::parse(status_json, nullptr, false);
  if (!doc.is_object()) return "kinfra answered something that is not a status document\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : doc.value("routes", json::array())) {
    std::string state = str(r, "state");
    if (r.value("maintenance", false)) state += " (maintenance)";
    rows.push_back({str(r, "host", "").empty() ? "*" : str(r, "host"), str(r, "path"), r.value("strip_prefix", false) ? "yes" : "no",
                    str(r, "service"), state, rate_text(r), share_text(r)});
  }
  std::string out = "ROUTES (first match by host, then longest path)\n";
  out += rows.empty() ? "  none\n" : aligned({"HOST", "PATH", "STRIP", "SERVICE", "STATE", "REQ/S", "5XX"}, rows);
  rows.clear();
  for (const auto& l : doc.value("listeners", json::array())) {
    std::string kind = str(l, "kind");
    std::string note;
    if (kind == "redirect") note = "to https port " + str(l, "https_port") +
                                   (l.contains("plain_paths") && !l["plain_paths"].empty() ? "; plain: " + joined(l["plain_paths"]) : "");
    if (kind == "admin") note = "dashboard and admin API only";
    rows.push_back({str(l, "address"), kind, joined(l.value("protocols", json::array())), note});
  }
  out += "\nLISTENERS\n";
  out += rows.empty() ? "  none\n" : aligned({"ADDRESS", "KIND", "PROTOCOLS", "NOTE"}, rows);
  rows.clear();
  for (const auto& c : doc.value("certificates", json::array()))
    rows.push_back({str(c, "listener"), joined(c.value("names", json::array())), str(c, "issuer"), str(c, "not_after"),
                    str(c, "days_left"), str(c, "source"), certificate_note(c)});
  if (!rows.empty()) {
    out += "\nCERTIFICATES\n";
    out += aligned({"LISTENER", "NAMES", "ISSUER", "NOT AFTER", "DAYS", "SOURCE", "NOTE"}, rows);
  }
  return out;
}

std::string format_events(const std::string& events_json) {
  const json doc = json::parse(events_json);
  std::string out;
  for (const auto& e : doc.value("events", json::array())) {
    // "2026-11-30T09:45:31Z" → "2026-11-30 09:45:31" (UTC, as sent: the CLI may run elsewhere).
    std::string when = str(e, "time", "");
    if (when.size() >= 19) when = when.substr(0, 10) + " " + when.substr(11, 8);
    std::string level = str(e, "level", "info");
    for (auto& c : level) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out += when + "  " + level + std::string(level.size() < 5 ? 5 - level.size() : 0, ' ') + "  " +
           str(e, "service", "kinfra") + "  " + str(e, "message", "");
    if (const std::string by = str(e, "by", ""); !by.empty() && str(e, "message", "").find("(" + by + ")") == std::string::npos)
      out += "  [" + by + "]";
    out += "\n";
    std::string detail = e.is_object() && e.contains("detail") && e["detail"].is_string()
                             ? printable(e["detail"].get_ref<const std::string&>(), true)
                             : std::string();
    for (std::size_t at = 0; !detail.empty() && at < detail.size();) {
      const auto nl = detail.find('\n', at);
      out += "    " + detail.substr(at, nl == std::string::npos ? std::string::npos : nl - at) + "\n";
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
  }
  return out;
}

}  // namespace kinfra::cli
