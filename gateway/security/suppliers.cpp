#include "gateway/security/suppliers.hpp"

#include <algorithm>
#include <cctype>

namespace fhirgate::gateway {
namespace {

using fhir::Node;

const Node* tags_of(const Node& meta) {
  const Node* tags = meta.is_object() ? meta.find("tag") : nullptr;
  return tags && tags->is_array() ? tags : nullptr;
}

// A client's coding that looks like a supplier tag (any case, a trailing slash), which consumers of the
// record might take for one: dropped with the real ones.
bool looks_like_supplier(std::string_view system) {
  while (!system.empty() && system.back() == '/') system.remove_suffix(1);
  if (system.size() != kSupplierTagSystem.size()) return false;
  for (std::size_t i = 0; i < system.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(system[i])) !=
        std::tolower(static_cast<unsigned char>(kSupplierTagSystem[i])))
      return false;
  return true;
}

// meta.security codings that look like supplier tags, dropped.
void drop_look_alikes(Node& meta, const char* key) {
  Node* list = meta.find(key);
  if (!list || !list->is_array()) return;
  std::erase_if(list->items(),
                [](const Node& coding) { return looks_like_supplier(coding.string_at("system")); });
  if (list->items().empty()) meta.erase(key);
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
      if (!looks_like_supplier(tag.string_at("system"))) tags.push(tag);
  if (meta.is_object()) drop_look_alikes(meta, "security");
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
