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
  // The newest store wins, whatever its key: two renders that finish out of order cost one more
  // render, never a stale answer (a lookup needs the exact key), and a wall clock stepped back
  // does not keep the cache from working.
  it->second = entry{k, std::move(body)};
}

void status_cache::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
}

}  // namespace kinfra::fallback
