#include "fallback/template_renderer.hpp"

#include <fstream>
#include <sstream>

#include "fallback/embedded_assets.hpp"

namespace kinfra::fallback {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string script_safe_json(std::string_view json) {
  // '<' never needs to appear literally in JSON text: \u003c means the same to a JSON parser and
  // keeps "</script>" and "<!--" from ending or bending the script element.
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

std::string render_template(std::string_view tpl, const template_vars& vars) {
  std::string out;
  out.reserve(tpl.size() + 1024);
  std::size_t i = 0;
  while (i < tpl.size()) {
    auto open = tpl.find("{{", i);
    if (open == std::string_view::npos) {
      out.append(tpl.substr(i));
      break;
    }
    out.append(tpl.substr(i, open - i));
    bool raw = open + 2 < tpl.size() && tpl[open + 2] == '{';
    std::string_view close_mark = raw ? "}}}" : "}}";
    std::size_t name_start = open + (raw ? 3 : 2);
    auto close = tpl.find(close_mark, name_start);
    if (close == std::string_view::npos) {
      out.append(tpl.substr(open));
      break;
    }
    std::string_view name = tpl.substr(name_start, close - name_start);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (auto it = vars.find(name); it != vars.end()) out += raw ? it->second : html_escape(it->second);
    i = close + close_mark.size();
  }
  return out;
}

std::string template_store::get(std::string_view name) const {
  if (!dir_.empty()) {
    std::filesystem::path path = std::filesystem::path(dir_) / std::string(name);
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(path, ec);
    if (!ec && std::filesystem::is_regular_file(path, ec)) {
      std::lock_guard lock(mutex_);
      auto it = cache_.find(name);
      if (it != cache_.end() && it->second.mtime == mtime) return it->second.text;
      std::ifstream in(path, std::ios::binary);
      std::ostringstream text;
      if (in && (text << in.rdbuf())) {
        cache_[std::string(name)] = {mtime, text.str()};
        return text.str();
      }
      // Unreadable: the embedded page is better than none.
    }
  }
  return std::string(embedded_asset(name));
}

}  // namespace kinfra::fallback
