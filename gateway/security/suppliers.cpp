#include "gateway/security/suppliers.hpp"

#include <algorithm>

namespace fhirgate::gateway {
namespace {

using fhir::Node;

const Node* tags_of(const Node& meta) {
  const Node* tags = meta.is_object() ? meta.find("tag") : nullptr;
  return tags && tags->is_array() ? tags : nullptr;
}

}  // namespace

std::vector<std::string> suppliers_in_meta(const Node& meta) {
  std::vector<std::string> out;
  if (const Node* tags = tags_of(meta))
    for (const auto& tag : tags->items())
      if (tag.string_at("system") == kSupplierTagSystem && !tag.string_at("code").empty())
        out.emplace_back(tag.string_at("code"));
  return out;
}

std::vector<std::string> suppliers_of(const Node& resource) {
  const Node* meta = resource.find("meta");
  return meta ? suppliers_in_meta(*meta) : std::vector<std::string>();
}

void set_supplier_tags(Node& resource, const Node* held, const std::string& creator) {
  std::vector<std::string> suppliers = held ? suppliers_of(*held) : std::vector<std::string>();
  if (!creator.empty() && std::find(suppliers.begin(), suppliers.end(), creator) == suppliers.end())
    suppliers.push_back(creator);

  Node meta = Node::object();
  if (Node* old = resource.find("meta"); old && old->is_object()) meta = *old;
  Node tags = Node::array();
  if (const Node* old = tags_of(meta))
    for (const auto& tag : old->items())
      if (tag.string_at("system") != kSupplierTagSystem) tags.push(tag);
  for (const auto& s : suppliers) {
    Node tag = Node::object();
    tag.set("system", Node::string(std::string(kSupplierTagSystem)));
    tag.set("code", Node::string(s));
    tags.push(std::move(tag));
  }
  meta.erase("tag");
  if (!tags.items().empty()) meta.set("tag", std::move(tags));
  if (meta.members().empty()) {
    resource.erase("meta");
  } else if (Node* old = resource.find("meta")) {
    *old = std::move(meta);
  } else {
    resource.set("meta", std::move(meta));  // the store places meta after id when stamping
  }
}

}  // namespace fhirgate::gateway
