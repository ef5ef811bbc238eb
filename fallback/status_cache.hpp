#pragma once
/**
 * @file The `/__status__` document, rendered once per change of the board and once per second
 * (uptimes, rates and the timestamp move with the clock), then served as the same bytes to every
 * request until then. Rendering 100 services takes most of a millisecond; serving the cached bytes
 * costs a lookup.
 */

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace kinfra::fallback {

class status_cache {
 public:
  /** What a rendered document was made from. */
  struct key {
    std::uint64_t board_version = 0;
    std::int64_t second = 0;  ///< system clock, whole seconds
    friend bool operator==(const key&, const key&) = default;
  };

  /** The document for `selected` ("" for the default) when it was rendered for `k`; else null. */
  std::shared_ptr<const std::string> find(std::string_view selected, const key& k) const;

  /** Keeps `body` for `selected` (replacing what was there). */
  void store(std::string_view selected, const key& k, std::shared_ptr<const std::string> body);

  /** Forgets everything (a reload may rename services). */
  void clear();

 private:
  struct entry {
    key made_for;
    std::shared_ptr<const std::string> body;
  };
  mutable std::mutex mutex_;  ///< guards entries_: a lookup and a pointer copy, never a render
  std::map<std::string, entry, std::less<>> entries_;
};

}  // namespace kinfra::fallback
