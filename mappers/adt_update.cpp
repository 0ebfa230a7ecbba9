#include "mappers/adt_update.hpp"

#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <vector>

namespace fhirgate::mappers {
namespace {

using fhir::Node;

// R4 Patient's elements in StructureDefinition order.
constexpr std::array<std::string_view, 26> kPatientOrder = {"resourceType",
                                                            "id",
                                                            "meta",
                                                            "implicitRules",
                                                            "language",
                                                            "text",
                                                            "contained",
                                                            "extension",
                                                            "modifierExtension",
                                                            "identifier",
                                                            "active",
                                                            "name",
                                                            "telecom",
                                                            "gender",
                                                            "birthDate",
                                                            "deceasedBoolean",
                                                            "deceasedDateTime",
                                                            "address",
                                                            "maritalStatus",
                                                            "multipleBirthBoolean",
                                                            "multipleBirthInteger",
                                                            "photo",
                                                            "contact",
                                                            "communication",
                                                            "generalPractitioner",
                                                            "managingOrganization"};

std::size_t rank(std::string_view key) {
  if (key == "link") return kPatientOrder.size();
  auto it = std::find(kPatientOrder.begin(), kPatientOrder.end(), key);
  return it == kPatientOrder.end() ? kPatientOrder.size() + 1
                                   : static_cast<std::size_t>(it - kPatientOrder.begin());
}

// An ADT-carried element and the v2 fields it comes from.
struct Carried {
  std::string_view element;  // for deceased[x], the prefix "deceased"
  std::vector<std::string_view> fields;
};
const std::vector<Carried>& carried() {
  static const std::vector<Carried> table = {
      {"name", {"PID-5"}},           {"telecom", {"PID-13", "PID-14"}},           {"gender", {"PID-8"}},
      {"birthDate", {"PID-7"}},      {"deceased", {"PID-29", "PID-30"}},          {"address", {"PID-11"}},
      {"maritalStatus", {"PID-16"}}, {"generalPractitioner", {"PD1-3", "PD1-4"}},
  };
  return table;
}

bool is_null_value(const Message& adt, std::string_view field) {
  const std::string segment(field.substr(0, 3));
  const auto seg = adt.segment(segment);
  if (!seg) return false;
  return seg->field(std::stoul(std::string(field.substr(4)))).raw() == "\"\"";
}

bool all_null(const Message& adt, const Carried& c) {
  return std::all_of(c.fields.begin(), c.fields.end(), [&](auto f) { return is_null_value(adt, f); });
}

bool matches(std::string_view key, std::string_view element) {
  return key == element || (element == "deceased" && key.substr(0, 8) == "deceased");
}

void erase_element(Node& patient, std::string_view element) {
  auto& members = patient.members();
  members.erase(std::remove_if(members.begin(), members.end(),
                               [&](const Node::Member& m) { return matches(m.first, element); }),
                members.end());
}

const Node* find_element(const Node& patient, std::string_view element) {
  for (const auto& m : patient.members())
    if (matches(m.first, element)) return &m.second;
  return nullptr;
}

}  // namespace

void set_patient_element(Node& patient, std::string_view key, Node value) {
  auto& members = patient.members();
  for (auto& m : members) {
    if (m.first == key) {
      m.second = std::move(value);
      return;
    }
  }
  const std::size_t r = rank(key);
  auto at =
      std::find_if(members.begin(), members.end(), [&](const Node::Member& m) { return rank(m.first) > r; });
  members.insert(at, Node::Member(std::string(key), std::move(value)));
}

Node drop_v2_nulls(Node mapped, const Message& adt) {
  for (const auto& c : carried())
    if (all_null(adt, c)) erase_element(mapped, c.element);
  return mapped;
}

Node apply_adt_update(const Node& existing, Node mapped, const Message& adt) {
  Node out = existing;
  for (const auto& c : carried()) {
    if (all_null(adt, c)) {
      erase_element(out, c.element);
      continue;
    }
    const Node* value = find_element(mapped, c.element);
    if (!value) continue;  // empty in the message: keep what is held
    // deceasedBoolean and deceasedDateTime replace each other.
    std::string key;
    for (const auto& m : mapped.members())
      if (matches(m.first, c.element)) key = m.first;
    erase_element(out, c.element);
    set_patient_element(out, key, *value);
  }

  // Identifiers: the message's, then those held under systems the message does not use.
  if (const Node* ids = mapped.find("identifier"); ids && ids->is_array()) {
    std::set<std::string> systems;
    Node merged = Node::array();
    for (const auto& id : ids->items()) {
      systems.insert(std::string(id.string_at("system")));
      merged.push(id);
    }
    if (const Node* held = existing.find("identifier"); held && held->is_array())
      for (const auto& id : held->items())
        if (!systems.count(std::string(id.string_at("system")))) merged.push(id);
    set_patient_element(out, "identifier", std::move(merged));
  }
  return out;
}

}  // namespace fhirgate::mappers
