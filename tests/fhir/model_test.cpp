#include "fhir/model.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

const Model& model() {
  return *testing::r4_model();
}

const TypeDef& type_of(std::string_view name) {
  const TypeDef* t = model().type(name);
  REQUIRE_MESSAGE(t != nullptr, name);
  return *t;
}

const ElementDef& element_of(std::string_view type, std::string_view name) {
  const ElementDef* e = type_of(type).element(name);
  REQUIRE_MESSAGE(e != nullptr, type, ".", name);
  return *e;
}

std::vector<std::string> element_names(const TypeDef& t) {
  std::vector<std::string> names;
  for (const auto& e : t.elements) names.push_back(e.name);
  return names;
}

std::vector<std::string> codes(const ElementDef& e) {
  std::vector<std::string> out;
  for (const auto& t : e.types) out.push_back(t.code);
  return out;
}

TEST_CASE("Model: Patient's elements are its direct children in snapshot order, inherited ones first") {
  const TypeDef& patient = type_of("Patient");
  CHECK(patient.kind == TypeDef::Kind::resource);
  CHECK_FALSE(patient.abstract);
  CHECK(patient.base == "DomainResource");
  CHECK(patient.url == "http://hl7.org/fhir/StructureDefinition/Patient");
  const std::vector<std::string> expected = {"id",
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
                                             "deceased",
                                             "address",
                                             "maritalStatus",
                                             "multipleBirth",
                                             "photo",
                                             "contact",
                                             "communication",
                                             "generalPractitioner",
                                             "managingOrganization",
                                             "link"};
  CHECK(element_names(patient) == expected);
  CHECK(patient.elements[14].path == "Patient.deceased[x]");
}

TEST_CASE("Model: cardinalities") {
  const ElementDef& name = element_of("Patient", "name");
  CHECK(name.min == 0);
  CHECK(name.max == ElementDef::kUnbounded);
  CHECK(name.is_array());
  const ElementDef& birth_date = element_of("Patient", "birthDate");
  CHECK(birth_date.max == 1);
  CHECK_FALSE(birth_date.is_array());
  CHECK(codes(birth_date) == std::vector<std::string>{"date"});
  const ElementDef& gender = element_of("Patient", "gender");
  CHECK(gender.max == 1);
  CHECK(codes(gender) == std::vector<std::string>{"code"});
  CHECK(element_of("Observation", "status").min == 1);
  CHECK(element_of("Extension", "url").min == 1);
}

TEST_CASE("Model: resolve expands choice types") {
  std::string_view choice;
  const ElementDef* deceased = type_of("Patient").resolve("deceasedBoolean", &choice);
  REQUIRE(deceased != nullptr);
  CHECK(deceased->name == "deceased");
  CHECK(deceased->choice);
  CHECK(choice == "boolean");
  CHECK(type_of("Patient").resolve("deceasedDateTime", &choice) == deceased);
  CHECK(choice == "dateTime");

  const ElementDef* value = type_of("Observation").resolve("valueQuantity", &choice);
  REQUIRE(value != nullptr);
  CHECK(value->path == "Observation.value[x]");
  CHECK(choice == "Quantity");
  CHECK(type_of("Observation").resolve("effectivePeriod", &choice) ==
        type_of("Observation").element("effective"));
  CHECK(choice == "Period");

  const ElementDef* ext_value = type_of("Extension").resolve("valueCodeableConcept", &choice);
  REQUIRE(ext_value != nullptr);
  CHECK(ext_value->path == "Extension.value[x]");
  CHECK(choice == "CodeableConcept");
  CHECK(type_of("Extension").resolve("valueString", &choice) == ext_value);
  CHECK(choice == "string");
}

TEST_CASE("Model: resolve rejects unknown members and unlisted choice types") {
  std::string_view choice = "unchanged";
  CHECK(type_of("Observation").resolve("valueFoo", &choice) == nullptr);
  CHECK(choice.empty());
  CHECK(type_of("Patient").resolve("deceasedString") == nullptr);
  CHECK(type_of("Patient").resolve("deceased") == nullptr);
  CHECK(type_of("Patient").resolve("deceasedboolean") == nullptr);
  CHECK(type_of("Patient").resolve("nosuch") == nullptr);
}

TEST_CASE("Model: resolve finds plain elements exactly, without a choice type") {
  std::string_view choice = "unchanged";
  const ElementDef* name = type_of("Patient").resolve("name", &choice);
  REQUIRE(name != nullptr);
  CHECK(name->path == "Patient.name");
  CHECK(choice.empty());
  CHECK(type_of("Patient").resolve("birthDate") == type_of("Patient").element("birthDate"));
}

TEST_CASE("Model: inline backbone elements get their own type named by path") {
  const ElementDef& contact = element_of("Patient", "contact");
  REQUIRE(contact.inline_type != nullptr);
  CHECK(contact.inline_type == model().type("Patient.contact"));
  const TypeDef& backbone = *contact.inline_type;
  CHECK(backbone.name == "Patient.contact");
  CHECK(backbone.kind == TypeDef::Kind::backbone);
  CHECK(element_names(backbone) == std::vector<std::string>{"id", "extension", "modifierExtension",
                                                            "relationship", "name", "telecom", "address",
                                                            "gender", "organization", "period"});
  const ElementDef& contact_name = element_of("Patient.contact", "name");
  CHECK(codes(contact_name) == std::vector<std::string>{"HumanName"});
  CHECK(contact_name.inline_type == nullptr);
  CHECK(contact_name.max == 1);
  CHECK(element_of("Patient", "name").inline_type == nullptr);

  const ElementDef& repeat = element_of("Timing", "repeat");
  REQUIRE(repeat.inline_type != nullptr);
  CHECK(repeat.inline_type->name == "Timing.repeat");
  CHECK(repeat.inline_type->resolve("boundsDuration") != nullptr);
}

TEST_CASE("Model: contentReference points at the referenced path's type") {
  const ElementDef& item = element_of("Questionnaire", "item");
  REQUIRE(item.inline_type != nullptr);
  const ElementDef& nested = element_of("Questionnaire.item", "item");
  CHECK(nested.inline_type == item.inline_type);
  CHECK(nested.max == ElementDef::kUnbounded);
  CHECK(codes(nested) == std::vector<std::string>{"BackboneElement"});

  const ElementDef& exclude = element_of("ValueSet.compose", "exclude");
  CHECK(exclude.inline_type == model().type("ValueSet.compose.include"));
  CHECK(exclude.inline_type != nullptr);

  const ElementDef& entry_link = element_of("Bundle.entry", "link");
  CHECK(entry_link.inline_type == model().type("Bundle.link"));
  CHECK(entry_link.inline_type != nullptr);

  const ElementDef& part = element_of("Parameters.parameter", "part");
  CHECK(part.inline_type == model().type("Parameters.parameter"));
  CHECK(part.inline_type != nullptr);
}

TEST_CASE("Model: XML attributes and XHTML") {
  CHECK(element_of("HumanName", "id").xml_attribute);
  CHECK(element_of("Extension", "url").xml_attribute);
  CHECK(element_of("Patient.contact", "id").xml_attribute);
  CHECK_FALSE(element_of("Patient", "id").xml_attribute);
  CHECK_FALSE(element_of("Resource", "id").xml_attribute);
  CHECK_FALSE(element_of("HumanName", "family").xml_attribute);

  const ElementDef& div = element_of("Narrative", "div");
  CHECK(div.xhtml);
  CHECK(div.min == 1);
  CHECK_FALSE(element_of("Narrative", "status").xhtml);
}

TEST_CASE("Model: primitive types keep id, extension and value; System types map to FHIR types") {
  const TypeDef& string_type = type_of("string");
  CHECK(string_type.kind == TypeDef::Kind::primitive);
  CHECK(element_names(string_type) == std::vector<std::string>{"id", "extension", "value"});
  CHECK(element_of("string", "value").xml_attribute);
  CHECK(codes(element_of("string", "value")) == std::vector<std::string>{"string"});
  CHECK(codes(element_of("boolean", "value")) == std::vector<std::string>{"boolean"});
  CHECK(codes(element_of("decimal", "value")) == std::vector<std::string>{"decimal"});
  CHECK(codes(element_of("dateTime", "value")) == std::vector<std::string>{"dateTime"});
  CHECK(codes(element_of("instant", "value")) == std::vector<std::string>{"instant"});
  CHECK(codes(element_of("uri", "value")) == std::vector<std::string>{"uri"});
  // The published R4 snapshots type Resource.id as fhir-type "string", not "id".
  CHECK(codes(element_of("Patient", "id")) == std::vector<std::string>{"string"});
  CHECK(codes(element_of("HumanName", "id")) == std::vector<std::string>{"string"});
  CHECK(codes(element_of("Extension", "url")) == std::vector<std::string>{"uri"});
  CHECK(type_of("HumanName").kind == TypeDef::Kind::complex);
}

TEST_CASE("Model: JSON representation of primitives") {
  CHECK(Model::json_primitive("boolean") == JsonPrimitive::boolean);
  CHECK(Model::json_primitive("integer") == JsonPrimitive::number);
  CHECK(Model::json_primitive("positiveInt") == JsonPrimitive::number);
  CHECK(Model::json_primitive("unsignedInt") == JsonPrimitive::number);
  CHECK(Model::json_primitive("decimal") == JsonPrimitive::number);
  CHECK(Model::json_primitive("string") == JsonPrimitive::string);
  CHECK(Model::json_primitive("dateTime") == JsonPrimitive::string);
  CHECK(Model::json_primitive("integer64") == JsonPrimitive::string);
  CHECK(Model::json_primitive("code") == JsonPrimitive::string);
}

TEST_CASE("Model: only concrete resources are resources") {
  CHECK(model().is_resource("Patient"));
  CHECK(model().is_resource("Bundle"));
  CHECK_FALSE(model().is_resource("Resource"));
  CHECK_FALSE(model().is_resource("DomainResource"));
  CHECK_FALSE(model().is_resource("HumanName"));
  CHECK_FALSE(model().is_resource("Patient.contact"));
  CHECK_FALSE(model().is_resource("MetadataResource"));
  CHECK_FALSE(model().is_resource("Nope"));
  CHECK(type_of("Resource").abstract);
  CHECK(type_of("DomainResource").abstract);
  CHECK(type_of("Resource").base.empty());
  CHECK(type_of("Element").base.empty());
  CHECK(type_of("BackboneElement").base == "Element");

  const auto names = model().resource_names();
  CHECK(names.size() == 146);
  CHECK(std::is_sorted(names.begin(), names.end()));
  for (std::string_view n : {"Patient", "Bundle", "Parameters", "Observation", "Binary"}) {
    CHECK_MESSAGE(std::find(names.begin(), names.end(), n) != names.end(), n);
  }
  CHECK(std::find(names.begin(), names.end(), "DomainResource") == names.end());
}

TEST_CASE("Model: constraint profiles and logical models are not types") {
  CHECK(model().type("SimpleQuantity") == nullptr);
  CHECK(model().type("MoneyQuantity") == nullptr);
  CHECK(model().type("MetadataResource") == nullptr);
  CHECK(model().type("Quantity") != nullptr);
}

TEST_CASE("Model: Reference target profiles are kept") {
  const ElementDef& gp = element_of("Patient", "generalPractitioner");
  REQUIRE(gp.types.size() == 1);
  CHECK(gp.types[0].code == "Reference");
  CHECK(gp.types[0].target_profiles ==
        std::vector<std::string>{"http://hl7.org/fhir/StructureDefinition/Organization",
                                 "http://hl7.org/fhir/StructureDefinition/Practitioner",
                                 "http://hl7.org/fhir/StructureDefinition/PractitionerRole"});
}

TEST_CASE("Model: load skips other resources and reports definitions it cannot place") {
  auto bundle = parse_json(R"({"resourceType":"Bundle","entry":[
    {"resource":{"resourceType":"OperationDefinition","id":"x"}},
    {"resource":{"resourceType":"StructureDefinition","id":"Thing","type":"Thing","kind":"complex-type",
      "derivation":"specialization","snapshot":{"element":[
        {"path":"Thing","min":0,"max":"*"},
        {"path":"Thing.part","min":1,"max":"3","type":[{"code":"BackboneElement"}]},
        {"path":"Thing.part.label","min":0,"max":"1","type":[{"code":"string"}]},
        {"path":"Thing.again","min":0,"max":"*","contentReference":"#Thing.part"}]}}}]})");
  REQUIRE(bundle.ok());
  auto loaded = Model::load({&*bundle});
  REQUIRE(loaded.ok());
  const Model& m = **loaded;
  REQUIRE(m.type("Thing") != nullptr);
  CHECK(m.type("x") == nullptr);
  const ElementDef* part = m.type("Thing")->element("part");
  REQUIRE(part != nullptr);
  CHECK(part->min == 1);
  CHECK(part->max == 3);
  CHECK(part->inline_type == m.type("Thing.part"));
  CHECK(m.type("Thing")->element("again")->inline_type == m.type("Thing.part"));

  auto orphan = parse_json(R"({"resourceType":"Bundle","entry":[
    {"resource":{"resourceType":"StructureDefinition","id":"Bad","type":"Bad","kind":"complex-type",
      "derivation":"specialization","snapshot":{"element":[
        {"path":"Bad","min":0,"max":"*"},
        {"path":"Bad.a.b","min":0,"max":"1","type":[{"code":"string"}]}]}}}]})");
  REQUIRE(orphan.ok());
  auto failed = Model::load({&*orphan});
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == ErrorCode::invalid_input);
  CHECK(failed.error().issues.front().diagnostics.find("Bad") != std::string::npos);

  auto dangling = parse_json(R"({"resourceType":"Bundle","entry":[
    {"resource":{"resourceType":"StructureDefinition","id":"Dang","type":"Dang","kind":"complex-type",
      "derivation":"specialization","snapshot":{"element":[
        {"path":"Dang","min":0,"max":"*"},
        {"path":"Dang.x","min":0,"max":"1","contentReference":"#Dang.nowhere"}]}}}]})");
  REQUIRE(dangling.ok());
  CHECK_FALSE(Model::load({&*dangling}).ok());
}

TEST_CASE("Model: load_from reports a missing directory") {
  auto missing = Model::load_from(fhirgate::testing::temp_dir());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::not_found);
}

}  // namespace
}  // namespace fhirgate::fhir
