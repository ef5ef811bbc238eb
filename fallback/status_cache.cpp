#include "fallback/status_cache.hpp"

namespace kinfra::fallback {

std::shared_ptr<const std::string> status_cache::find(std::string_view selected, const key& k) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(selected);
  if (it == entries_.end() || !(it->second.made_for == k)) return nullptr;
  return it->second.body;
}

void status_cache::store(std::string_view selected, const key& k, std::shared_ptr<const std::string> body) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(selected);
  if (it == entries_.end()) {
    entries_.emplace(std::string(selected), entry{k, std::move(body)});
    return;
  }
  auto& e = it->second;
  if (k.board_version < e.made_for.board_version || k.second < e.made_for.second) return;
  e = entry{k, std::move(body)};
}

void status_cache::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
}

}  // namespace kinfra::fallback
