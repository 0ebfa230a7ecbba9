#include "fhir/json.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fhir/utf8.hpp"

// Reading. RapidJSON's SAX reader parses a private copy of the input in situ: strings are unescaped
// inside that buffer instead of through the reader's own stack, which is the cheaper path. The copy is
// NUL-terminated, so a string_view that is not is safe to parse; a NUL byte inside the input stops the
// reader early and is caught by comparing where it stopped with the input size. Numbers are taken as
// their source text. UTF-8 is checked here on each decoded string, not with kParseValidateEncodingFlag:
// RapidJSON validates byte by byte through its stream, which cost about a fifth of the parse, and it
// lets a lone low-surrogate escape (\uDC00) through as bytes that are not UTF-8; one check over the
// decoded string catches both.
//
// The handler keeps pending values and keys on two scratch stacks and builds each object or array when
// it closes, when RapidJSON reports its size, so every vector in the tree is allocated once at its exact
// size. The reader is recursive; its depth is bounded because the handler stops the parse at the first
// container beyond JsonLimits::max_depth.
//
// Writing. One recursive pass appending to the caller's string. Strings are copied run by run and only
// the bytes a table marks are looked at: control characters, '"' and '\' are escaped, bytes from 0x80
// are checked as UTF-8 and a malformed sequence is written as U+FFFD, so the output is valid JSON even
// when a mapper put text of another encoding into a Node. A pre-pass to size the output cost more than
// the growth it saved.

namespace fhirgate::fhir {
namespace {

constexpr unsigned kParseFlags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseInsituFlag;
constexpr std::size_t kKeyIndexThreshold = 32;
constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::size_t kNotFound = std::string_view::npos;

// Offset of the first malformed UTF-8 sequence in s, or kNotFound.
std::size_t invalid_utf8_at(std::string_view s) {
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if ((w & 0x8080808080808080ull) != 0) break;
      i += 8;
    }
    while (i < n && static_cast<unsigned char>(s[i]) < 0x80) ++i;
    if (i == n) break;
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) return i;
    i += len;
  }
  return kNotFound;
}

struct Position {
  int line = 1;
  int column = 1;
};

// 1-based line and column of a byte offset; the column counts UTF-8 characters.
Position position_of(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  Position p;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      line_start = i + 1;
    }
  }
  for (std::size_t i = line_start; i < offset; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++p.column;
  }
  return p;
}

// Offset of the opening quote of the string literal whose closing quote is at end - 1.
std::size_t string_start(std::string_view text, std::size_t end) {
  if (end < 2) return 0;
  for (std::size_t i = std::min(end, text.size()) - 1; i-- > 0;) {
    if (text[i] != '"') continue;
    std::size_t backslashes = 0;
    while (backslashes < i && text[i - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return i;
  }
  return 0;
}

// The stream concept RapidJSON needs for in-situ parsing. Unlike rapidjson::InsituStringStream it has no
// copy optimisation, so Tell() is current inside handler calls.
class InsituStream {
 public:
  using Ch = char;
  explicit InsituStream(char* begin) : src_(begin), head_(begin) {}
  char Peek() const { return *src_; }
  char Take() { return *src_++; }
  std::size_t Tell() const { return static_cast<std::size_t>(src_ - head_); }
  char* PutBegin() { return dst_ = src_; }
  void Put(char c) { *dst_++ = c; }
  std::size_t PutEnd(char* begin) { return static_cast<std::size_t>(dst_ - begin); }
  void Flush() {}

 private:
  char* src_;
  char* dst_ = nullptr;
  char* head_;
};

struct BuildError {
  std::string message;
  std::size_t offset = 0;
};

class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
 public:
  TreeBuilder(std::string_view text, const InsituStream& stream, std::size_t max_depth)
      : text_(text), stream_(stream), max_depth_(max_depth) {
    values_.reserve(64);
    keys_.reserve(64);
  }

  bool Null() { return add(Node::null()); }
  bool Bool(bool b) { return add(Node::boolean(b)); }

  // With a stream that has no copy optimisation RapidJSON 1.1.0 passes a pointer past the number in
  // situ, so the text is taken from the input, which ends where the stream stands.
  bool RawNumber(const char*, rapidjson::SizeType n, bool) {
    const std::string_view lexical = text_.substr(stream_.Tell() - n, n);
    assert(!lexical.empty() &&
           (lexical.front() == '-' || (lexical.front() >= '0' && lexical.front() <= '9')));
    return add(Node::number(std::string(lexical)));
  }

  bool String(const char* s, rapidjson::SizeType n, bool) {
    const std::string_view value(s, n);
    if (invalid_utf8_at(value) != kNotFound) return fail_encoding();
    return add(Node::string(std::string(value)));
  }

  bool Key(const char* s, rapidjson::SizeType n, bool) {
    const std::string_view key(s, n);
    if (invalid_utf8_at(key) != kNotFound) return fail_encoding();
    Frame& top = frames_.back();
    bool duplicate = false;
    if (top.index) {
      duplicate = !top.index->emplace(key).second;
    } else {
      const auto first = keys_.begin() + static_cast<std::ptrdiff_t>(top.first_key);
      duplicate = std::find(first, keys_.end(), key) != keys_.end();
      if (!duplicate && keys_.size() - top.first_key + 1 >= kKeyIndexThreshold) {
        top.index = std::make_unique<std::unordered_set<std::string>>(first, keys_.end());
        top.index->emplace(key);
      }
    }
    if (duplicate) {
      error_.message = "duplicate key ";
      append_json_string(error_.message, key);
      error_.message += " in JSON object";
      error_.offset = string_start(text_, stream_.Tell());
      return false;
    }
    keys_.emplace_back(key);
    return true;
  }

  bool StartObject() { return open(); }
  bool StartArray() { return open(); }

  bool EndObject(rapidjson::SizeType count) {
    Node object = Node::object();
    auto& members = object.members();
    members.reserve(count);
    const std::size_t first_value = values_.size() - count;
    const std::size_t first_key = keys_.size() - count;
    for (std::size_t i = 0; i < count; ++i) {
      members.emplace_back(std::move(keys_[first_key + i]), std::move(values_[first_value + i]));
    }
    keys_.resize(first_key);
    values_.resize(first_value);
    frames_.pop_back();
    return add(std::move(object));
  }

  bool EndArray(rapidjson::SizeType count) {
    Node array = Node::array();
    const auto first = values_.begin() + static_cast<std::ptrdiff_t>(values_.size() - count);
    array.items().assign(std::make_move_iterator(first), std::make_move_iterator(values_.end()));
    values_.erase(first, values_.end());
    frames_.pop_back();
    return add(std::move(array));
  }

  Node take_root() {
    assert(values_.size() == 1 && frames_.empty());
    return std::move(values_.front());
  }
  const BuildError& error() const { return error_; }
  bool failed() const { return !error_.message.empty(); }

 private:
  struct Frame {
    std::size_t first_key;
    std::unique_ptr<std::unordered_set<std::string>> index;
  };

  bool add(Node&& value) {
    values_.push_back(std::move(value));
    return true;
  }

  bool open() {
    if (frames_.size() >= max_depth_) {
      error_.message = "JSON nesting deeper than " + std::to_string(max_depth_);
      error_.offset = stream_.Tell() - 1;
      return false;
    }
    frames_.push_back(Frame{keys_.size(), nullptr});
    return true;
  }

  // Raw input is checked first to point at the offending byte; when the raw bytes are fine, the bad
  // sequence came from an escape, which can only be a lone low surrogate.
  bool fail_encoding() {
    const std::size_t end = stream_.Tell();
    const std::size_t start = string_start(text_, end);
    const std::size_t bad = invalid_utf8_at(text_.substr(start, end - start));
    if (bad != kNotFound) {
      error_.message = rapidjson::GetParseError_En(rapidjson::kParseErrorStringInvalidEncoding);
      error_.offset = start + bad;
    } else {
      error_.message = rapidjson::GetParseError_En(rapidjson::kParseErrorStringUnicodeSurrogateInvalid);
      error_.offset = start;
    }
    return false;
  }

  std::string_view text_;
  const InsituStream& stream_;
  std::size_t max_depth_;
  std::vector<Frame> frames_;
  std::vector<Node> values_;
  std::vector<std::string> keys_;
  BuildError error_;
};

// RapidJSON 1.1.0 reports a raw control character in a string as an invalid escape.
const char* reason(std::string_view text, const rapidjson::ParseResult& result) {
  if (result.Code() == rapidjson::kParseErrorStringEscapeInvalid && result.Offset() < text.size() &&
      static_cast<unsigned char>(text[result.Offset()]) < 0x20) {
    return "Control character in string must be escaped.";
  }
  return rapidjson::GetParseError_En(result.Code());
}

Error parse_error(std::string_view text, std::string_view why, std::size_t offset) {
  const Position p = position_of(text, offset);
  const std::string where = "line " + std::to_string(p.line) + ", column " + std::to_string(p.column);
  Error e = Error::make(ErrorCode::invalid_input, "invalid JSON at " + where + ": " + std::string(why));
  e.issues.front().line = p.line;
  e.issues.front().column = p.column;
  e.internal = "JSON parse error at byte " + std::to_string(offset) + ": " + std::string(why);
  return e;
}

// Per byte: 0 = copy as is, 'u' = write as \u00XX, 'x' = check as the start of a UTF-8 sequence,
// anything else = the letter to write after a backslash.
constexpr std::array<char, 256> make_escape_table() {
  std::array<char, 256> t{};
  for (std::size_t c = 0; c < 0x20; ++c) t[c] = 'u';
  for (std::size_t c = 0x80; c < 0x100; ++c) t[c] = 'x';
  t['\b'] = 'b';
  t['\f'] = 'f';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}
constexpr std::array<char, 256> kEscape = make_escape_table();

void newline(std::string& out, int depth) {
  out.push_back('\n');
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
}

template <bool kPretty>
void write_value(const Node& node, std::string& out, int depth) {
  switch (node.kind()) {
    case Node::Kind::null:
      out.append("null");
      return;
    case Node::Kind::boolean:
      out.append(node.as_bool() ? "true" : "false");
      return;
    case Node::Kind::number:
      out.append(node.text());
      return;
    case Node::Kind::string:
      append_json_string(out, node.text());
      return;
    case Node::Kind::object: {
      if (node.members().empty()) {
        out.append("{}");
        return;
      }
      out.push_back('{');
      bool first = true;
      for (const auto& [key, value] : node.members()) {
        if (!first) out.push_back(',');
        first = false;
        if constexpr (kPretty) newline(out, depth + 1);
        append_json_string(out, key);
        out.append(kPretty ? ": " : ":");
        write_value<kPretty>(value, out, depth + 1);
      }
      if constexpr (kPretty) newline(out, depth);
      out.push_back('}');
      return;
    }
    case Node::Kind::array: {
      if (node.items().empty()) {
        out.append("[]");
        return;
      }
      out.push_back('[');
      bool first = true;
      for (const auto& item : node.items()) {
        if (!first) out.push_back(',');
        first = false;
        if constexpr (kPretty) newline(out, depth + 1);
        write_value<kPretty>(item, out, depth + 1);
      }
      if constexpr (kPretty) newline(out, depth);
      out.push_back(']');
      return;
    }
  }
}

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

bool is_type_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

bool has_resource_type(const Node& node) {
  const Node* type = node.find("resourceType");
  return type != nullptr && type->is_string();
}

// The `_name` member beside `name`, or `name` beside `_name`.
const Node* find_sibling(const Node& object, std::string_view key) {
  if (key.empty()) return nullptr;
  for (const auto& [name, value] : object.members()) {
    if (key.front() == '_') {
      if (name == key.substr(1)) return &value;
    } else if (name.size() == key.size() + 1 && name.front() == '_' &&
               std::string_view(name).substr(1) == key) {
      return &value;
    }
  }
  return nullptr;
}

// One traversal that stops at the first offence. The location is kept as a stack of segments and
// rendered only when something is wrong.
class ResourceChecker {
 public:
  Status run(const Node& root) {
    if (!root.is_object())
      return Error::make(ErrorCode::unprocessable, "a FHIR resource must be a JSON object");
    const Node* type = root.find("resourceType");
    if (type == nullptr || !type->is_string() || type->text().empty()) {
      return Error::make(ErrorCode::unprocessable, "resource has no resourceType");
    }
    path_.push_back(Segment{type->text(), 0, false});
    if (!check_object(root)) return std::move(*error_);
    return Ok{};
  }

 private:
  struct Segment {
    std::string_view name;
    std::size_t index;
    bool is_index;
  };

  std::string location() const {
    std::string out;
    for (const auto& s : path_) {
      if (s.is_index) {
        out.push_back('[');
        out.append(std::to_string(s.index));
        out.push_back(']');
      } else {
        if (!out.empty()) out.push_back('.');
        out.append(s.name);
      }
    }
    return out;
  }

  bool fail(std::string diagnostics) {
    error_ = Error::make(ErrorCode::unprocessable, std::move(diagnostics), location());
    return false;
  }

  bool check_object(const Node& object) {
    if (object.members().empty()) return fail("empty object is not allowed in FHIR JSON");
    const bool resource = has_resource_type(object);
    if (resource && !is_type_name(object.string_at("resourceType"))) {
      path_.push_back(Segment{"resourceType", 0, false});
      return fail("resourceType must be a resource type name");
    }
    for (const auto& [key, value] : object.members()) {
      path_.push_back(Segment{key, 0, false});
      if (value.is_null()) return fail("null is not allowed here");
      if (resource && key == "id" && (!value.is_string() || !is_valid_id(value.text()))) {
        return fail("id is not a valid FHIR id (1 to 64 characters from A-Z, a-z, 0-9, '-' and '.')");
      }
      const bool ok = value.is_array() ? check_member_array(value, object, key) : check_value(value);
      if (!ok) return false;
      path_.pop_back();
    }
    return true;
  }

  bool check_member_array(const Node& array, const Node& parent, std::string_view key) {
    const auto& items = array.items();
    if (items.empty()) return fail("empty array is not allowed in FHIR JSON");
    const bool underscore = !key.empty() && key.front() == '_';
    const Node* sibling = find_sibling(parent, key);
    if (sibling != nullptr && !sibling->is_array()) sibling = nullptr;
    if (sibling != nullptr && underscore && sibling->items().size() != items.size()) {
      return fail("arrays " + std::string(key.substr(1)) + " and " + std::string(key) +
                  " must have the same number of items");
    }
    const bool contained = key == "contained";
    for (std::size_t i = 0; i < items.size(); ++i) {
      const Node& item = items[i];
      path_.push_back(Segment{{}, i, true});
      if (item.is_null()) {
        const bool matched =
            sibling != nullptr && i < sibling->items().size() && !sibling->items()[i].is_null();
        if (!matched) {
          const std::string other = underscore ? std::string(key.substr(1)) : "_" + std::string(key);
          return fail("null is only allowed in an array as a placeholder for a value at the same index in " +
                      other);
        }
      } else {
        if (contained && !has_resource_type(item)) return fail("contained resource has no resourceType");
        if (!check_value(item)) return false;
      }
      path_.pop_back();
    }
    return true;
  }

  bool check_value(const Node& value) {
    switch (value.kind()) {
      case Node::Kind::string:
        if (value.text().empty()) return fail("empty string is not allowed in FHIR JSON");
        if (is_blank(value.text())) return fail("a string of only whitespace is not allowed in FHIR JSON");
        return true;
      case Node::Kind::object:
        return check_object(value);
      case Node::Kind::array:
        if (value.items().empty()) return fail("empty array is not allowed in FHIR JSON");
        for (std::size_t i = 0; i < value.items().size(); ++i) {
          path_.push_back(Segment{{}, i, true});
          if (!check_value(value.items()[i])) return false;
          path_.pop_back();
        }
        return true;
      case Node::Kind::null:
        return fail("null is not allowed here");
      case Node::Kind::boolean:
      case Node::Kind::number:
        return true;
    }
    return true;
  }

  std::vector<Segment> path_;
  std::optional<Error> error_;
};

}  // namespace

const Node* Node::find(std::string_view key) const {
  for (const auto& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Node* Node::find(std::string_view key) {
  return const_cast<Node*>(std::as_const(*this).find(key));
}

std::string_view Node::string_at(std::string_view key) const {
  const Node* n = find(key);
  return n != nullptr && n->is_string() ? std::string_view(n->text()) : std::string_view();
}

Node& Node::set(std::string_view key, Node value) {
  assert(kind_ == Kind::object);
  if (Node* existing = find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  members_.emplace_back(std::string(key), std::move(value));
  return members_.back().second;
}

void Node::erase(std::string_view key) {
  std::erase_if(members_, [&](const Member& m) { return m.first == key; });
}

Result<Node> parse_json(std::string_view text, const JsonLimits& limits) {
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  std::string buffer(text);
  InsituStream stream(buffer.data());
  TreeBuilder builder(text, stream, limits.max_depth);
  rapidjson::Reader reader;
  const rapidjson::ParseResult result = reader.Parse<kParseFlags>(stream, builder);
  if (builder.failed()) return parse_error(text, builder.error().message, builder.error().offset);
  if (result.IsError()) return parse_error(text, reason(text, result), result.Offset());
  if (stream.Tell() != text.size()) {
    return parse_error(text, rapidjson::GetParseError_En(rapidjson::kParseErrorDocumentRootNotSingular),
                       stream.Tell());
  }
  return builder.take_root();
}

namespace {

// Reads a document's events and builds only the top-level member `key`, with a TreeBuilder; stops the
// reader (a handler returning false) once that member is complete.
class MemberBuilder {
 public:
  using Ch = char;
  MemberBuilder(std::string_view text, const InsituStream& stream, std::string_view key)
      : key_(key), builder_(text, stream, JsonLimits{}.max_depth) {}

  bool Null() { return capturing() ? value(builder_.Null()) : scalar(); }
  bool Bool(bool b) { return capturing() ? value(builder_.Bool(b)) : scalar(); }
  bool Int(int) { return scalar(); }
  bool Uint(unsigned) { return scalar(); }
  bool Int64(std::int64_t) { return scalar(); }
  bool Uint64(std::uint64_t) { return scalar(); }
  bool Double(double) { return scalar(); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return capturing() ? value(builder_.RawNumber(s, n, copy)) : scalar();
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return capturing() ? value(builder_.String(s, n, copy)) : scalar();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    if (capturing()) return builder_.Key(s, n, copy);
    if (depth_ == 1 && std::string_view(s, n) == key_) capture_depth_ = 1;
    return true;
  }
  bool StartObject() {
    ++depth_;
    if (depth_ == 1) root_is_object_ = true;
    return capturing() && depth_ > capture_depth_ ? builder_.StartObject() : true;
  }
  bool StartArray() {
    ++depth_;
    return capturing() && depth_ > capture_depth_ ? builder_.StartArray() : true;
  }
  bool EndObject(rapidjson::SizeType count) {
    --depth_;
    if (!capturing() || depth_ < capture_depth_) return true;
    return value(builder_.EndObject(count));
  }
  bool EndArray(rapidjson::SizeType count) {
    --depth_;
    if (!capturing() || depth_ < capture_depth_) return true;
    return value(builder_.EndArray(count));
  }

  bool done() const { return done_; }
  bool root_is_object() const { return root_is_object_; }
  const TreeBuilder& builder() const { return builder_; }
  Node take() { return builder_.take_root(); }

 private:
  bool capturing() const { return capture_depth_ > 0 && !done_; }
  bool scalar() const { return true; }
  // After a value of the captured member's subtree: the member is complete when we are back at its level.
  bool value(bool ok) {
    if (!ok) return false;
    if (depth_ == capture_depth_) {
      done_ = true;
      return false;  // stops the reader: the rest is not needed
    }
    return true;
  }

  std::string_view key_;
  TreeBuilder builder_;
  int depth_ = 0;
  int capture_depth_ = 0;  // the depth of the object holding the member, once its key is seen
  bool done_ = false;
  bool root_is_object_ = false;
};

}  // namespace

Result<std::optional<Node>> parse_json_member(std::string_view text, std::string_view key) {
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  std::string buffer(text);
  InsituStream stream(buffer.data());
  MemberBuilder handler(text, stream, key);
  rapidjson::Reader reader;
  const rapidjson::ParseResult result = reader.Parse<kParseFlags>(stream, handler);
  if (handler.done()) return std::optional<Node>(handler.take());
  if (handler.builder().failed())
    return parse_error(text, handler.builder().error().message, handler.builder().error().offset);
  if (result.IsError()) return parse_error(text, reason(text, result), result.Offset());
  if (!handler.root_is_object())
    return Error::make(ErrorCode::invalid_input, "the JSON document is not an object");
  return std::optional<Node>();
}

std::string write_json(const Node& node, bool pretty) {
  std::string out;
  write_json(node, out, pretty);
  return out;
}

void write_json(const Node& node, std::string& out, bool pretty) {
  out.reserve(out.size() + 1024);
  if (pretty) {
    write_value<true>(node, out, 0);
  } else {
    write_value<false>(node, out, 0);
  }
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const char e = kEscape[static_cast<unsigned char>(s[i])];
    if (e == 0) {
      ++i;
      continue;
    }
    if (e == 'x') {
      const std::size_t len = utf8_sequence_length(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    if (e == 'x') {
      out.append("\xEF\xBF\xBD");
    } else if (e == 'u') {
      const auto c = static_cast<unsigned char>(s[i]);
      const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(escaped, sizeof escaped);
    } else {
      const char escaped[] = {'\\', e};
      out.append(escaped, sizeof escaped);
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

Status check_resource_json(const Node& resource) {
  return ResourceChecker().run(resource);
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

}  // namespace fhirgate::fhir
