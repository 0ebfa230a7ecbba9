#pragma once
// FHIR JSON: a generic element tree and its reader/writer.
//
// A Node is one JSON value. Numbers keep their exact lexical form (`1.50` stays `1.50`); object members
// keep document order. The reader is RapidJSON's SAX parser with numbers parsed as strings; parse errors
// carry line and column. Everything here is pure and thread-compatible.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fhir/result.hpp"

namespace fhirgate::fhir {

class Node {
 public:
  enum class Kind : std::uint8_t { null, boolean, number, string, object, array };
  using Member = std::pair<std::string, Node>;

  Node() = default;
  static Node null() { return Node(Kind::null); }
  static Node boolean(bool b) {
    Node n(Kind::boolean);
    n.text_ = b ? "true" : "false";
    return n;
  }
  static Node number(std::string lexical) {
    Node n(Kind::number);
    n.text_ = std::move(lexical);
    return n;
  }
  static Node string(std::string s) {
    Node n(Kind::string);
    n.text_ = std::move(s);
    return n;
  }
  static Node object() { return Node(Kind::object); }
  static Node array() { return Node(Kind::array); }

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::null; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_number() const { return kind_ == Kind::number; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_object() const { return kind_ == Kind::object; }
  bool is_array() const { return kind_ == Kind::array; }

  // String value, number lexical form, or "true"/"false"; empty for other kinds.
  const std::string& text() const { return text_; }
  bool as_bool() const { return kind_ == Kind::boolean && text_ == "true"; }

  // Objects: members in document order.
  const std::vector<Member>& members() const { return members_; }
  std::vector<Member>& members() { return members_; }
  const Node* find(std::string_view key) const;
  Node* find(std::string_view key);
  // The string value of member `key`, or empty when absent or not a string.
  std::string_view string_at(std::string_view key) const;
  // Replaces member `key` in place, or appends it. Returns the stored node.
  Node& set(std::string_view key, Node value);
  void erase(std::string_view key);

  // Arrays.
  const std::vector<Node>& items() const { return items_; }
  std::vector<Node>& items() { return items_; }
  Node& push(Node value) {
    items_.push_back(std::move(value));
    return items_.back();
  }

  bool operator==(const Node& other) const = default;

 private:
  explicit Node(Kind k) : kind_(k) {}
  Kind kind_ = Kind::null;
  std::string text_;
  std::vector<Member> members_;
  std::vector<Node> items_;
};

struct JsonLimits {
  std::size_t max_depth = 128;
};

// Parses one JSON document. Errors: invalid_input with the RapidJSON reason and line/column; depth
// beyond the limit is invalid_input too. Duplicate object keys are invalid_input (FHIR forbids them).
Result<Node> parse_json(std::string_view text, const JsonLimits& limits = {});

// The value of the top-level member `key` of a JSON object document, parsed as parse_json parses it, without
// building the rest: parsing stops once that member has been read. For documents the gateway wrote itself
// (stored resources, whose `meta` comes third), so that one member costs a fraction of the whole. nullopt
// when the object has no such member. Errors: as parse_json, for the part read, and invalid_input when the
// document is not an object.
Result<std::optional<Node>> parse_json_member(std::string_view text, std::string_view key);

// Serialises compactly, or indented by two spaces when `pretty`.
std::string write_json(const Node& node, bool pretty = false);
void write_json(const Node& node, std::string& out, bool pretty = false);

// Appends `s` as a JSON string literal (with quotes) to out.
void append_json_string(std::string& out, std::string_view s);

// Checks the FHIR JSON representation rules that hold for every resource, before any typed validation:
// a JSON object with a string `resourceType`; no `null` except as an array placeholder matched by a
// value in the sibling `_name` array (and vice versa); no empty strings, objects or arrays; `id`, when
// present, matches [A-Za-z0-9\-\.]{1,64}. Errors: unprocessable, with the FHIRPath-style location of
// the first offence (e.g. Patient.name[0].given[1]).
Status check_resource_json(const Node& resource);

// True for a valid FHIR id: [A-Za-z0-9\-\.]{1,64}.
bool is_valid_id(std::string_view id);

}  // namespace fhirgate::fhir
