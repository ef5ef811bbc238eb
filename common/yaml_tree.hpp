#pragma once
/**
 * @file A read-only YAML tree for routes.yaml, built from libyaml's event parser.
 *
 * The loaders walk routes.yaml once and report every problem with its line and column; they
 * need little of a YAML library: scalars, mappings, sequences, aliases and positions. yaml-cpp's
 * tree gave them that at about 10 µs a route (a regex scanner, a shared_ptr per node); this one
 * keeps every node of a document in one arena and hands out plain pointers into it, so loading
 * 10,000 routes takes milliseconds. Its member names follow yaml-cpp's, which the loaders were
 * written against.
 *
 * A node is a view: it is valid while the `document` it came from lives.
 */

#include <cstddef>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kinfra::yaml {

/** A position in the text, 0-based (as yaml-cpp's); null for a node that is not there. */
struct mark {
  int line = -1;
  int column = -1;
  bool is_null() const { return line < 0; }
  static mark null_mark() { return {}; }
};

struct node_data;

class node {
 public:
  /** One step of iterating a node: for a mapping, `first` is the key and `second` the value; for a
   * sequence, the entry is the item itself. */
  struct entry;
  class iterator;

  node() = default;
  explicit node(const node_data* d) : d_(d) {}

  /** There is such a node (a missing key gives one that is not). */
  bool IsDefined() const { return d_ != nullptr; }
  explicit operator bool() const { return d_ != nullptr; }
  /** Empty, `~` or `null` (unquoted). */
  bool IsNull() const;
  bool IsScalar() const;
  bool IsMap() const;
  bool IsSequence() const;
  /** The text of a scalar (empty for anything else). */
  const std::string& Scalar() const;
  yaml::mark Mark() const;
  /** Entries of a mapping, items of a sequence, 0 otherwise. */
  std::size_t size() const;
  /** The value of the first entry with this (scalar) key; undefined when none or not a mapping. */
  node operator[](std::string_view key) const;
  node operator[](const char* key) const { return (*this)[std::string_view(key)]; }
  node operator[](const std::string& key) const { return (*this)[std::string_view(key)]; }
  /** The `i`th item of a sequence; undefined past its end or when not a sequence. */
  node operator[](std::size_t i) const;
  node operator[](int i) const { return i < 0 ? node() : (*this)[static_cast<std::size_t>(i)]; }
  /** Refers to `other` from now on. */
  void reset(const node& other) { d_ = other.d_; }

  iterator begin() const;
  iterator end() const;

 private:
  const node_data* d_ = nullptr;
};

struct node::entry : node {
  node first, second;
};

class node::iterator {
 public:
  iterator(const node_data* d, std::size_t at) : d_(d), at_(at) {}
  entry operator*() const;
  iterator& operator++();
  bool operator==(const iterator& o) const { return at_ == o.at_ && d_ == o.d_; }
  bool operator!=(const iterator& o) const { return !(*this == o); }

 private:
  const node_data* d_;
  std::size_t at_;
};

enum class node_kind : std::uint8_t { null, scalar, sequence, map };

struct node_data {
  node_kind kind = node_kind::null;
  yaml::mark at;
  std::string scalar;
  /** A sequence's items, or a mapping's keys and values alternately. */
  std::vector<const node_data*> children;
};

/** What could not be parsed, and where. */
class parse_error : public std::runtime_error {
 public:
  parse_error(yaml::mark m, std::string message) : std::runtime_error(message), mark(m), msg(std::move(message)) {}
  yaml::mark mark;
  std::string msg;
};

/** The first document of a YAML text, parsed whole. */
class document {
 public:
  /** Throws parse_error (also for collections nested deeper than 64 levels). */
  explicit document(std::string_view text);
  document(const document&) = delete;
  document& operator=(const document&) = delete;
  node root() const { return node(root_); }

 private:
  node_data* make(node_kind kind, yaml::mark at);

  std::deque<node_data> arena_;
  const node_data* root_ = nullptr;
};

}  // namespace kinfra::yaml
