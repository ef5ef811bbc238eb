#include "common/yaml_tree.hpp"

#include <yaml.h>

#include <map>
#include <memory>

namespace kinfra::yaml {
namespace {

const std::string empty_text;
constexpr std::size_t max_depth = 64;
/** Nodes that aliases may repeat in all (aliases are shared, but the loaders read every use). */
constexpr std::size_t max_alias_nodes = 100000;

mark mark_of(const yaml_mark_t& m) { return {static_cast<int>(m.line), static_cast<int>(m.column)}; }

/** A plain scalar that YAML reads as null. */
bool is_null_text(const yaml_event_t& e) {
  if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  std::string_view v(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

/** The parser and its current event, released however the parse ends. */
class event_source {
 public:
  explicit event_source(std::string_view text) : text_(text) {
    if (!yaml_parser_initialize(&parser_)) throw parse_error({}, "out of memory");
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  }
  ~event_source() {
    if (has_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  event_source(const event_source&) = delete;
  event_source& operator=(const event_source&) = delete;

  /** The next event; throws parse_error with libyaml's problem and position. */
  const yaml_event_t& next() {
    if (has_event_) yaml_event_delete(&event_);
    has_event_ = false;
    if (!yaml_parser_parse(&parser_, &event_)) {
      std::string message = parser_.problem ? parser_.problem : "the text cannot be read as YAML";
      if (parser_.context) message += std::string(" (") + parser_.context + ")";
      // The reader (bad UTF-8, a control character) gives a byte offset, not a mark.
      const mark at = parser_.error == YAML_READER_ERROR ? mark_at(parser_.problem_offset) : mark_of(parser_.problem_mark);
      throw parse_error(at, std::move(message));
    }
    has_event_ = true;
    return event_;
  }

 private:
  /** The line and column of a byte offset into the text. */
  mark mark_at(std::size_t offset) const {
    mark m{0, 0};
    for (std::size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++m.line;
        m.column = 0;
      } else if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) {
        ++m.column;  // (a character, not a UTF-8 continuation byte)
      }
    }
    return m;
  }

  std::string_view text_;
  yaml_parser_t parser_{};
  yaml_event_t event_{};
  bool has_event_ = false;
};

}  // namespace

bool node::IsNull() const { return d_ && d_->kind == node_kind::null; }
bool node::IsScalar() const { return d_ && d_->kind == node_kind::scalar; }
bool node::IsMap() const { return d_ && d_->kind == node_kind::map; }
bool node::IsSequence() const { return d_ && d_->kind == node_kind::sequence; }
const std::string& node::Scalar() const { return IsScalar() ? d_->scalar : empty_text; }
mark node::Mark() const { return d_ ? d_->at : mark{}; }

std::size_t node::size() const {
  if (!d_) return 0;
  if (d_->kind == node_kind::map) return d_->children.size() / 2;
  if (d_->kind == node_kind::sequence) return d_->children.size();
  return 0;
}

node node::operator[](std::string_view key) const {
  if (!IsMap()) return node();
  const auto& c = d_->children;
  for (std::size_t i = 0; i + 1 < c.size(); i += 2)
    if (c[i]->kind == node_kind::scalar && c[i]->scalar == key) return node(c[i + 1]);
  return node();
}

node node::operator[](std::size_t i) const {
  if (!IsSequence() || i >= d_->children.size()) return node();
  return node(d_->children[i]);
}

node::iterator node::begin() const { return iterator(d_, 0); }

node::iterator node::end() const {
  const std::size_t n = d_ && (d_->kind == node_kind::map || d_->kind == node_kind::sequence) ? d_->children.size() : 0;
  return iterator(d_, n);
}

node::entry node::iterator::operator*() const {
  entry e;
  if (d_->kind == node_kind::map) {
    e.first = node(d_->children[at_]);
    e.second = node(d_->children[at_ + 1]);
  } else {
    e.reset(node(d_->children[at_]));
  }
  return e;
}

node::iterator& node::iterator::operator++() {
  at_ += d_->kind == node_kind::map ? 2 : 1;
  return *this;
}

node_data* document::make(node_kind kind, mark at) {
  node_data& d = arena_.emplace_back();
  d.kind = kind;
  d.at = at;
  return &d;
}

document::document(std::string_view text) {
  event_source events(text);
  /** A collection being read: its anchor is defined when it ends (so no alias inside it can
   * point to it: no cycles); `nodes` counts it and everything in it, aliases expanded. */
  struct open_collection {
    node_data* d;
    std::string anchor;
    std::size_t nodes = 1;
  };
  struct anchored {
    const node_data* d;
    std::size_t nodes;
  };
  std::vector<open_collection> open;  // innermost last
  std::map<std::string, anchored, std::less<>> anchors;
  std::size_t alias_nodes = 0;
  // A finished node goes into the collection around it, or becomes the root.
  auto place = [&](const node_data* d, std::size_t nodes) {
    if (open.empty()) {
      root_ = d;
    } else {
      open.back().d->children.push_back(d);
      open.back().nodes += nodes;
    }
  };
  for (bool done = false; !done;) {
    const yaml_event_t& e = events.next();
    const mark at = mark_of(e.start_mark);
    switch (e.type) {
      case YAML_SCALAR_EVENT: {
        node_data* d = make(is_null_text(e) ? node_kind::null : node_kind::scalar, at);
        if (d->kind == node_kind::scalar)
          d->scalar.assign(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
        if (e.data.scalar.anchor) anchors[reinterpret_cast<const char*>(e.data.scalar.anchor)] = {d, 1};
        place(d, 1);
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        // (routes.yaml is a few levels deep; libyaml's scanner slows down with every open level.)
        if (open.size() >= max_depth)
          throw parse_error(at, "nesting deeper than " + std::to_string(max_depth) + " levels");
        const bool map = e.type == YAML_MAPPING_START_EVENT;
        node_data* d = make(map ? node_kind::map : node_kind::sequence, at);
        const yaml_char_t* name = map ? e.data.mapping_start.anchor : e.data.sequence_start.anchor;
        open.push_back({d, name ? reinterpret_cast<const char*>(name) : ""});
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        const open_collection c = std::move(open.back());
        open.pop_back();
        if (!c.anchor.empty()) anchors[c.anchor] = {c.d, c.nodes};
        place(c.d, c.nodes);
        break;
      }
      case YAML_ALIAS_EVENT: {
        const char* name = reinterpret_cast<const char*>(e.data.alias.anchor);
        auto it = anchors.find(name);
        if (it == anchors.end())
          throw parse_error(at, std::string("unknown anchor '*") + name +
                                    "' (an alias must come after its '&' anchor, and outside what it names)");
        alias_nodes += it->second.nodes;
        if (alias_nodes > max_alias_nodes)
          throw parse_error(at, "aliases repeat more than " + std::to_string(max_alias_nodes) + " nodes in all");
        place(it->second.d, it->second.nodes);
        break;
      }
      case YAML_DOCUMENT_END_EVENT:  // (only the first document counts)
      case YAML_STREAM_END_EVENT: done = true; break;
      default: break;
    }
  }
  if (!root_) root_ = make(node_kind::null, {0, 0});  // an empty text: a null document
}

}  // namespace kinfra::yaml
