#include "fhir/search_params.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "tests/support/paths.hpp"

namespace fhirgate::fhir {
namespace {

using Strings = std::vector<std::string>;
using StringSet = std::set<std::string>;

Node parse(std::string_view text) {
  Result<Node> node = parse_json(text);
  REQUIRE(node.ok());
  return std::move(node).value();
}

const Node& r4_bundle() {
  static const Node bundle = [] {
    Result<std::string> text = read_file(testing::source_path("profiles/r4/search-parameters.json.gz"));
    REQUIRE(text.ok());
    return parse(*text);
  }();
  return bundle;
}

const SearchParamRegistry& r4_registry() {
  static const SearchParamRegistry registry = [] {
    Result<SearchParamRegistry> loaded =
        SearchParamRegistry::load(r4_bundle(), {"Patient", "Consent", "AuditEvent"});
    REQUIRE(loaded.ok());
    return std::move(loaded).value();
  }();
  return registry;
}

struct Compiled {
  StringSet compiles;
  StringSet fails;
};

// Runs compile_path on every R4 definition (with an expression) whose base covers `type`.
Compiled compile_all(std::string_view type) {
  Compiled out;
  for (const Node& entry : r4_bundle().find("entry")->items()) {
    const Node& resource = *entry.find("resource");
    std::string_view expression = resource.string_at("expression");
    if (expression.empty()) continue;
    bool applies = false;
    for (const Node& base : resource.find("base")->items()) {
      applies =
          applies || base.text() == type || base.text() == "Resource" || base.text() == "DomainResource";
    }
    if (!applies) continue;
    std::string code(resource.string_at("code"));
    (compile_path(expression, type) ? out.compiles : out.fails).insert(code);
  }
  return out;
}

std::string describe(const PathStep& step) {
  switch (step.kind) {
    case PathStep::Kind::child:
      return step.name;
    case PathStep::Kind::as_type:
      return "as:" + step.name;
    case PathStep::Kind::resolve_is:
      return "resolve_is:" + step.name;
    case PathStep::Kind::where_equals:
      return "where:" + step.name + "=" + step.literal;
  }
  return "?";
}

// Each branch as its steps joined by spaces.
Strings describe(const SimplePath& path) {
  Strings out;
  for (const auto& branch : path.branches) {
    std::string text;
    for (const PathStep& step : branch) text += (text.empty() ? "" : " ") + describe(step);
    out.push_back(text);
  }
  return out;
}

Strings compiled(std::string_view expression, std::string_view type) {
  std::optional<SimplePath> path = compile_path(expression, type);
  REQUIRE(path.has_value());
  return describe(*path);
}

// code|normalized|system|exact, plus |low..high for dates.
Strings describe(const std::vector<IndexValue>& values) {
  Strings out;
  for (const IndexValue& v : values) {
    REQUIRE(v.param != nullptr);
    std::string text = v.param->code + "|" + v.normalized + "|" + v.system + "|" + v.exact;
    if (v.param->type == SearchParamType::date) {
      text += "|" + std::to_string(v.range.low) + ".." + std::to_string(v.range.high);
    } else {
      CHECK(v.range == TimeRange{});
    }
    out.push_back(text);
  }
  return out;
}

Strings index_of(const SearchParamRegistry& registry, std::string_view json) {
  return describe(extract_index(registry, parse(json)));
}

StringSet codes_of(const SearchParamRegistry& registry, std::string_view type) {
  StringSet out;
  for (const SearchParamDef* def : registry.for_type(type)) out.insert(def->code);
  return out;
}

Strings selected_texts(std::string_view expression, std::string_view type, const Node& resource) {
  std::optional<SimplePath> path = compile_path(expression, type);
  REQUIRE(path.has_value());
  Strings out;
  for (const Node* node : evaluate(*path, resource))
    out.push_back(node->is_object() ? write_json(*node) : node->text());
  return out;
}

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

}  // namespace

TEST_CASE("compile_path accepts exactly the supported R4 Patient parameters") {
  Compiled patient = compile_all("Patient");
  CHECK(patient.compiles == StringSet{"_id",
                                      "_lastUpdated",
                                      "_profile",
                                      "_security",
                                      "_source",
                                      "_tag",
                                      "active",
                                      "address",
                                      "address-city",
                                      "address-country",
                                      "address-postalcode",
                                      "address-state",
                                      "address-use",
                                      "birthdate",
                                      "death-date",
                                      "email",
                                      "family",
                                      "gender",
                                      "general-practitioner",
                                      "given",
                                      "identifier",
                                      "language",
                                      "link",
                                      "name",
                                      "organization",
                                      "phone",
                                      "phonetic",
                                      "telecom"});
  CHECK(patient.fails == StringSet{"deceased"});
}

TEST_CASE("compile_path accepts every R4 Consent and AuditEvent parameter") {
  Compiled consent = compile_all("Consent");
  CHECK(consent.compiles == StringSet{"_id",        "_lastUpdated", "_profile",       "_security",
                                      "_source",    "_tag",         "action",         "actor",
                                      "category",   "consentor",    "data",           "date",
                                      "identifier", "organization", "patient",        "period",
                                      "purpose",    "scope",        "security-label", "source-reference",
                                      "status"});
  CHECK(consent.fails.empty());

  Compiled audit = compile_all("AuditEvent");
  CHECK(audit.compiles == StringSet{"_id",         "_lastUpdated", "_profile", "_security", "_source",
                                    "_tag",        "action",       "address",  "agent",     "agent-name",
                                    "agent-role",  "altid",        "date",     "entity",    "entity-name",
                                    "entity-role", "entity-type",  "outcome",  "patient",   "policy",
                                    "site",        "source",       "subtype",  "type"});
  CHECK(audit.fails.empty());
}

TEST_CASE("compile_path keeps only the branches rooted at the type") {
  CHECK(compiled("Patient.address.city | Person.address.city | Practitioner.address.city", "Practitioner") ==
        Strings{"address city"});
  CHECK(compiled("Resource.meta.lastUpdated", "Consent") == Strings{"meta lastUpdated"});
  CHECK(compiled("DomainResource.text", "AuditEvent") == Strings{"text"});
  CHECK(
      compiled("AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Consent.patient",
               "Consent") == Strings{"patient"});
  CHECK(
      compiled("AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Consent.patient",
               "CarePlan") == Strings{"subject resolve_is:Patient"});
  CHECK(compiled("Observation.value.exists() | Patient.name", "Patient") == Strings{"name"});
  CHECK_FALSE(compile_path("Observation.code | Consent.scope", "Patient"));
  CHECK_FALSE(compile_path("Patients.name", "Patient"));
  CHECK_FALSE(compile_path("", "Patient"));
}

TEST_CASE("compile_path reads the step forms of the R4 definitions") {
  CHECK(compiled("(Patient.deceased as dateTime)", "Patient") == Strings{"deceased as:dateTime"});
  CHECK(compiled("(RiskAssessment.occurrence as dateTime)", "RiskAssessment") ==
        Strings{"occurrence as:dateTime"});
  CHECK(compiled("Observation.value.as(Quantity) | Observation.component.value.as(Quantity)",
                 "Observation") == Strings{"value as:Quantity", "component value as:Quantity"});
  CHECK(
      compiled("AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is "
               "Patient)",
               "AuditEvent") == Strings{"agent who resolve_is:Patient", "entity what resolve_is:Patient"});
  CHECK(compiled("Patient.telecom.where(system='email')", "Patient") ==
        Strings{"telecom where:system=email"});
  CHECK(compiled("  ( Patient.deceased  as  dateTime )  ", "Patient") == Strings{"deceased as:dateTime"});
  CHECK(compiled("Patient.telecom.where( system = 'a|b' ) | Patient.name", "Patient") ==
        Strings{"telecom where:system=a|b", "name"});
  CHECK(compiled("Patient.telecom.where(system='it\\'s')", "Patient") ==
        Strings{"telecom where:system=it's"});
}

TEST_CASE("compile_path rejects a kept branch with anything outside the supported forms") {
  for (const char* expression : {
           "Patient.deceased.exists() and Patient.deceased != false",
           "Patient.deceased.exists()",
           "Patient.active != false",
           "Patient.name and Patient.active",
           "Patient.extension('http://example.org/x')",
           "Patient.name[0]",
           "Patient.name.ofType(HumanName)",
           "Patient.name.where(use='official' and family='x')",
           "Patient.telecom.where(system=email)",
           "Patient.telecom.where(system='email'",
           "Patient.link.other.where(resolve() as Patient)",
           "Patient.name | Patient.name.given.first()",
           "(Patient.name).given",
           "Patient.name as",
           "Patient..name",
           "Patient.name ! x",
       }) {
    CAPTURE(expression);
    CHECK_FALSE(compile_path(expression, "Patient"));
  }
}

TEST_CASE("evaluate flattens arrays and matches choice elements by their type suffix") {
  Node patient = parse(R"({"resourceType":"Patient","activeness":"no",
    "name":[{"family":"A","given":["B","C"]},{"given":["D"]}],
    "deceasedDateTime":"2020-01-01","_deceasedDateTime":{"id":"x"}})");
  CHECK(selected_texts("Patient.name.given", "Patient", patient) == Strings{"B", "C", "D"});
  CHECK(selected_texts("Patient.name.family", "Patient", patient) == Strings{"A"});
  CHECK(selected_texts("Patient.deceased", "Patient", patient) == Strings{"2020-01-01"});
  CHECK(selected_texts("(Patient.deceased as dateTime)", "Patient", patient) == Strings{"2020-01-01"});
  CHECK(selected_texts("Patient.deceased.as(dateTime)", "Patient", patient) == Strings{"2020-01-01"});
  CHECK(selected_texts("(Patient.deceased as boolean)", "Patient", patient).empty());
  CHECK(selected_texts("Patient.active", "Patient", patient).empty());
  CHECK(selected_texts("Patient.missing.given", "Patient", patient).empty());

  Node alive = parse(R"({"resourceType":"Patient","deceasedBoolean":false})");
  CHECK(selected_texts("Patient.deceased", "Patient", alive) == Strings{"false"});
  CHECK(selected_texts("(Patient.deceased as dateTime)", "Patient", alive).empty());
  CHECK(selected_texts("(Patient.deceased as boolean)", "Patient", alive) == Strings{"false"});
}

TEST_CASE("evaluate filters references by target type and objects by a field literal") {
  Node audit = parse(R"({"resourceType":"AuditEvent",
    "agent":[{"who":{"reference":"Patient/p1"}},{"who":{"reference":"Practitioner/p1"}},
             {"who":{"reference":"https://fhir.example.org/r4/Patient/p2"}},{"who":{"reference":"#Patient"}},
             {"who":{"display":"Patient/p3"}},{"who":{"reference":"PatientX/p4"}}],
    "entity":[{"what":{"reference":"Patient/p5/_history/2"}}],
    "source":{"observer":{"reference":"Patient/p6"}}})");
  CHECK(selected_texts(
            "AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() "
            "is Patient)",
            "AuditEvent", audit) == Strings{R"({"reference":"Patient/p1"})",
                                            R"({"reference":"https://fhir.example.org/r4/Patient/p2"})",
                                            R"({"reference":"Patient/p5/_history/2"})"});

  Node patient = parse(R"({"resourceType":"Patient","telecom":[
    {"system":"phone","value":"1"},{"system":"email","value":"a@b"},{"value":"2"},{"system":"phone","value":"3"}]})");
  CHECK(selected_texts("Patient.telecom.where(system='phone')", "Patient", patient) ==
        Strings{R"({"system":"phone","value":"1"})", R"({"system":"phone","value":"3"})"});
  CHECK(selected_texts("Patient.telecom.where(system='phone').value", "Patient", patient) ==
        Strings{"1", "3"});
}

TEST_CASE("evaluate returns a node selected by two branches once") {
  Node patient = parse(R"({"resourceType":"Patient","name":[{"family":"A"}]})");
  CHECK(selected_texts("Patient.name.family | Patient.name.family", "Patient", patient) == Strings{"A"});
}

TEST_CASE("the R4 registry serves the expected parameters") {
  const SearchParamRegistry& registry = r4_registry();

  StringSet patient = codes_of(registry, "Patient");
  for (const char* code :
       {"_id", "_lastUpdated", "identifier", "family", "given", "name", "birthdate", "gender", "telecom",
        "address-postalcode", "general-practitioner", "active", "email", "phone", "death-date"}) {
    CAPTURE(code);
    CHECK(patient.count(code) == 1);
  }
  for (const char* code : {"phonetic", "deceased", "_text", "_content", "_query"}) {
    CAPTURE(code);
    CHECK(patient.count(code) == 0);
  }
  CHECK(patient.size() == 27);

  StringSet consent = codes_of(registry, "Consent");
  for (const char* code : {"_id", "patient", "status", "scope", "category", "date", "actor", "period"}) {
    CAPTURE(code);
    CHECK(consent.count(code) == 1);
  }
  CHECK(consent.count("_text") == 0);
  CHECK(consent.size() == 21);

  StringSet audit = codes_of(registry, "AuditEvent");
  for (const char* code :
       {"_id", "patient", "entity", "agent", "date", "type", "subtype", "action", "outcome", "source"}) {
    CAPTURE(code);
    CHECK(audit.count(code) == 1);
  }
  CHECK(audit.count("_content") == 0);
  CHECK(audit.size() == 24);

  CHECK(registry.all().size() == 27 + 21 + 24);
  CHECK(registry.for_type("Observation").empty());
  CHECK(registry.find("Observation", "code") == nullptr);
}

TEST_CASE("registry entries carry their definition and a dense key") {
  const SearchParamRegistry& registry = r4_registry();
  for (std::size_t i = 0; i < registry.all().size(); ++i) CHECK(registry.all()[i]->key == i);

  const SearchParamDef* general = registry.find("Patient", "general-practitioner");
  REQUIRE(general != nullptr);
  CHECK(general->resource_type == "Patient");
  CHECK(general->type == SearchParamType::reference);
  CHECK(general->url == "http://hl7.org/fhir/SearchParameter/Patient-general-practitioner");
  CHECK(general->expression == "Patient.generalPractitioner");
  CHECK_FALSE(general->description.empty());
  CHECK(StringSet(general->targets.begin(), general->targets.end()) ==
        StringSet{"Organization", "Practitioner", "PractitionerRole"});

  const SearchParamDef* consent_date = registry.find("Consent", "date");
  REQUIRE(consent_date != nullptr);
  CHECK(consent_date->type == SearchParamType::date);
  CHECK(describe(consent_date->path) == Strings{"dateTime"});

  const SearchParamDef* patient_id = registry.find("Patient", "_id");
  const SearchParamDef* consent_id = registry.find("Consent", "_id");
  REQUIRE(patient_id != nullptr);
  REQUIRE(consent_id != nullptr);
  CHECK(patient_id != consent_id);
  CHECK(patient_id->key != consent_id->key);
  CHECK(patient_id->type == SearchParamType::token);
  CHECK(describe(patient_id->path) == Strings{"id"});
  CHECK(consent_id->resource_type == "Consent");

  CHECK(registry.find("Patient", "email")->type == SearchParamType::token);
  CHECK(registry.find("Patient", "family")->type == SearchParamType::string);
  CHECK(registry.find("AuditEvent", "policy")->type == SearchParamType::uri);
  CHECK(registry.find("Patient", "Family") == nullptr);
  CHECK(registry.find("Patien", "family") == nullptr);
}

TEST_CASE("for_type lists a type's parameters in code order") {
  std::vector<const SearchParamDef*> params = r4_registry().for_type("AuditEvent");
  Strings codes;
  for (const SearchParamDef* def : params) {
    CHECK(def->resource_type == "AuditEvent");
    codes.push_back(def->code);
  }
  CHECK(codes == Strings{"_id",     "_lastUpdated", "_profile",    "_security",   "_source",     "_tag",
                         "action",  "address",      "agent",       "agent-name",  "agent-role",  "altid",
                         "date",    "entity",       "entity-name", "entity-role", "entity-type", "outcome",
                         "patient", "policy",       "site",        "source",      "subtype",     "type"});
}

TEST_CASE("load adds _id when missing, keeps the first of duplicate definitions, skips unsupported ones") {
  Node bundle = parse(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"SearchParameter","code":"family","base":["Patient","Practitioner"],"type":"string",
                 "expression":"Patient.name.family | Practitioner.name.family","url":"http://x/family"}},
    {"resource":{"resourceType":"SearchParameter","code":"length","base":["Patient"],"type":"quantity",
                 "expression":"Patient.length"}},
    {"resource":{"resourceType":"SearchParameter","code":"phonetic","base":["Patient"],"type":"string",
                 "expression":"Patient.name"}},
    {"resource":{"resourceType":"SearchParameter","code":"noexpr","base":["Patient"],"type":"string"}},
    {"resource":{"resourceType":"SearchParameter","code":"other","base":["Observation"],"type":"token",
                 "expression":"Observation.code"}},
    {"resource":{"resourceType":"StructureDefinition","code":"sd","base":["Patient"],"type":"string",
                 "expression":"Patient.name"}},
    {"resource":{"resourceType":"SearchParameter","code":"_tag","base":["Resource"],"type":"token",
                 "expression":"Resource.meta.tag"}},
    {"resource":{"resourceType":"SearchParameter","code":"family","base":["Patient"],"type":"string",
                 "expression":"Patient.name.given","url":"http://x/duplicate"}}]})");
  Result<SearchParamRegistry> loaded = SearchParamRegistry::load(bundle, {"Patient", "Practitioner"});
  REQUIRE(loaded.ok());
  const SearchParamRegistry& registry = *loaded;
  CHECK(codes_of(registry, "Patient") == StringSet{"_id", "_tag", "family"});
  CHECK(codes_of(registry, "Practitioner") == StringSet{"_id", "_tag", "family"});
  CHECK(registry.all().size() == 6);

  const SearchParamDef* patient_family = registry.find("Patient", "family");
  const SearchParamDef* practitioner_family = registry.find("Practitioner", "family");
  REQUIRE(patient_family != nullptr);
  REQUIRE(practitioner_family != nullptr);
  CHECK(patient_family != practitioner_family);
  CHECK(describe(patient_family->path) == Strings{"name family"});
  CHECK(describe(practitioner_family->path) == Strings{"name family"});
  CHECK(patient_family->url == "http://x/family");

  const SearchParamDef* id = registry.find("Practitioner", "_id");
  REQUIRE(id != nullptr);
  CHECK(id->type == SearchParamType::token);
  CHECK(id->expression == "Resource.id");
  CHECK(describe(id->path) == Strings{"id"});
  for (std::size_t i = 0; i < registry.all().size(); ++i) CHECK(registry.all()[i]->key == i);
}

TEST_CASE("load rejects a document that is not a Bundle") {
  for (const char* json : {R"({"resourceType":"Patient"})", R"([])", R"("Bundle")", R"({"entry":[]})"}) {
    CAPTURE(json);
    Result<SearchParamRegistry> loaded = SearchParamRegistry::load(parse(json), {"Patient"});
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().code == ErrorCode::invalid_input);
  }
  Result<SearchParamRegistry> empty =
      SearchParamRegistry::load(parse(R"({"resourceType":"Bundle"})"), {"Patient"});
  REQUIRE(empty.ok());
  CHECK(codes_of(*empty, "Patient") == StringSet{"_id"});
}

TEST_CASE("to_string names each parameter type") {
  CHECK(std::string(to_string(SearchParamType::string)) == "string");
  CHECK(std::string(to_string(SearchParamType::token)) == "token");
  CHECK(std::string(to_string(SearchParamType::date)) == "date");
  CHECK(std::string(to_string(SearchParamType::reference)) == "reference");
  CHECK(std::string(to_string(SearchParamType::uri)) == "uri");
}

TEST_CASE("extract_index on a Patient") {
  Strings rows = index_of(r4_registry(), R"({
    "resourceType": "Patient", "id": "p1",
    "meta": {"lastUpdated": "2024-01-02T03:04:05Z", "profile": ["http://example.org/StructureDefinition/p"],
             "tag": [{"system": "http://example.org/tags", "code": "t1"}]},
    "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1234567890123"},
                   {"system": "http://hospital.example/mrn", "value": "MRN-42"}, {"value": "nosys"}],
    "active": true,
    "name": [{"use": "official", "family": "Dupré", "given": ["Élodie", "Marie"]},
             {"use": "maiden", "family": "Lefèvre", "given": ["Élodie"], "prefix": ["Mme"]}],
    "telecom": [{"system": "email", "value": "elodie@example.org", "use": "home"},
                {"system": "phone", "value": "+33 6 12 34 56 78"}],
    "gender": "female",
    "birthDate": "1970-03",
    "deceasedDateTime": "2020-05-06T10:00:00Z",
    "address": [{"use": "home", "line": ["12 Rue de la Paix"], "city": "Paris", "postalCode": "75002",
                 "country": "FR"}],
    "generalPractitioner": [{"reference": "Practitioner/dr1"},
                            {"reference": "https://other.example/fhir/Practitioner/dr2/_history/3"},
                            {"reference": "#gp"}, {"display": "Dr Nobody"}],
    "managingOrganization": {"reference": "Organization/org1"},
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr-FR"}],
                                    "text": "French"}}]
  })");
  CHECK(rows == Strings{
                    "_id|||p1",
                    "_lastUpdated||||1704164645000..1704164645999",
                    "_profile|||http://example.org/StructureDefinition/p",
                    "_tag||http://example.org/tags|t1",
                    "active|||true",
                    "address|12 rue de la paix||12 Rue de la Paix",
                    "address|paris||Paris",
                    "address|75002||75002",
                    "address|fr||FR",
                    "address-city|paris||Paris",
                    "address-country|fr||FR",
                    "address-postalcode|75002||75002",
                    "address-use|||home",
                    "birthdate||||5097600000..7775999999",
                    "death-date||||1588759200000..1588759200999",
                    "email|||elodie@example.org",
                    "family|dupre||Dupré",
                    "family|lefevre||Lefèvre",
                    "gender|||female",
                    "general-practitioner||Practitioner|dr1",
                    "general-practitioner||Practitioner|dr2",
                    "general-practitioner|||#gp",
                    "given|elodie||Élodie",
                    "given|marie||Marie",
                    "identifier||urn:oid:1.2.250.1.213.1.4.8|1234567890123",
                    "identifier||http://hospital.example/mrn|MRN-42",
                    "identifier|||nosys",
                    "language||urn:ietf:bcp:47|fr-FR",
                    "name|dupre||Dupré",
                    "name|elodie||Élodie",
                    "name|marie||Marie",
                    "name|lefevre||Lefèvre",
                    "name|mme||Mme",
                    "organization||Organization|org1",
                    "phone|||+33 6 12 34 56 78",
                    "telecom|||elodie@example.org",
                    "telecom|||+33 6 12 34 56 78",
                });
}

TEST_CASE("extract_index on a Consent") {
  Strings rows = index_of(r4_registry(), R"({
    "resourceType": "Consent", "id": "c1", "status": "active",
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                          "code": "patient-privacy"}]},
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"},
                             {"system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes",
                              "code": "hipaa-auth"}]},
                 {"text": "free text only"}],
    "patient": {"reference": "Patient/p1"},
    "dateTime": "2023-06-15",
    "performer": [{"reference": "Patient/p1"}],
    "organization": [{"reference": "Organization/org1"}],
    "sourceReference": {"reference": "DocumentReference/doc1"},
    "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
    "provision": {
      "type": "permit",
      "period": {"start": "2023-06-15", "end": "2024-06-14"},
      "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                      "code": "PRCP"}]},
                 "reference": {"reference": "Practitioner/dr1"}},
                {"role": {"text": "custodian"}, "reference": {"reference": "Organization/org2"}}],
      "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
      "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
      "data": [{"meaning": "instance", "reference": {"reference": "Observation/o1"}}]
    }
  })");
  CHECK(rows == Strings{
                    "_id|||c1",
                    "action||http://terminology.hl7.org/CodeSystem/consentaction|access",
                    "actor||Practitioner|dr1",
                    "actor||Organization|org2",
                    "category||http://loinc.org|59284-0",
                    "category||http://terminology.hl7.org/CodeSystem/consentcategorycodes|hipaa-auth",
                    "consentor||Patient|p1",
                    "data||Observation|o1",
                    "date||||1686787200000..1686873599999",
                    "organization||Organization|org1",
                    "patient||Patient|p1",
                    "period||||1686787200000..1718409599999",
                    "purpose||http://terminology.hl7.org/CodeSystem/v3-ActReason|TREAT",
                    "scope||http://terminology.hl7.org/CodeSystem/consentscope|patient-privacy",
                    "source-reference||DocumentReference|doc1",
                    "status|||active",
                });
}

TEST_CASE("extract_index leaves a Period's open ends unbounded and skips unparseable dates") {
  const SearchParamRegistry& registry = r4_registry();
  CHECK(index_of(registry, R"({"resourceType":"Consent","provision":{"period":{"start":"2023-06-15"}}})") ==
        Strings{"period||||1686787200000.." + std::to_string(kMax)});
  CHECK(index_of(registry, R"({"resourceType":"Consent","provision":{"period":{"end":"2024-06-14"}}})") ==
        Strings{"period||||" + std::to_string(kMin) + "..1718409599999"});
  CHECK(index_of(registry, R"({"resourceType":"Consent","dateTime":"2023-13-01",
                              "provision":{"period":{"start":"yesterday","end":"2024-06-14"}}})")
            .empty());
  CHECK(index_of(registry, R"({"resourceType":"Patient","birthDate":"1970-02-30"})").empty());
  CHECK(index_of(registry, R"({"resourceType":"Consent","provision":{"period":{}}})").empty());
}

TEST_CASE("extract_index on an AuditEvent") {
  Strings rows = index_of(r4_registry(), R"({
    "resourceType": "AuditEvent", "id": "a1",
    "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110", "display": "Patient Record"},
    "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"},
                {"system": "http://hl7.org/fhir/restful-interaction", "code": "search"}],
    "action": "R",
    "recorded": "2024-02-03T04:05:06.789+01:00",
    "outcome": "0",
    "agent": [
      {"who": {"reference": "Patient/p1"}, "requestor": true, "name": "Élodie Dupré", "altId": "ed"},
      {"who": {"reference": "Practitioner/dr1"}, "requestor": false,
       "role": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PROV"}]}],
       "network": {"address": "10.0.0.1", "type": "2"}, "policy": ["http://example.org/policy/1"]}
    ],
    "source": {"site": "fhirgate", "observer": {"reference": "Device/gw1"},
               "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}]},
    "entity": [
      {"what": {"reference": "Patient/p1"},
       "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
       "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}, "name": "Chart"},
      {"what": {"reference": "https://other.example/fhir/Patient/p2"}},
      {"what": {"reference": "Consent/c1"}}
    ]
  })");
  CHECK(rows == Strings{
                    "_id|||a1",
                    "action|||R",
                    "address|10.0.0.1||10.0.0.1",
                    "agent||Patient|p1",
                    "agent||Practitioner|dr1",
                    "agent-name|elodie dupre||Élodie Dupré",
                    "agent-role||http://terminology.hl7.org/CodeSystem/v3-RoleClass|PROV",
                    "altid|||ed",
                    "date||||1706929506789..1706929506789",
                    "entity||Patient|p1",
                    "entity||Patient|p2",
                    "entity||Consent|c1",
                    "entity-name|chart||Chart",
                    "entity-role||http://terminology.hl7.org/CodeSystem/object-role|1",
                    "entity-type||http://terminology.hl7.org/CodeSystem/audit-entity-type|1",
                    "outcome|||0",
                    "patient||Patient|p1",
                    "patient||Patient|p2",
                    "policy|||http://example.org/policy/1",
                    "site|||fhirgate",
                    "source||Device|gw1",
                    "subtype||http://hl7.org/fhir/restful-interaction|read",
                    "subtype||http://hl7.org/fhir/restful-interaction|search",
                    "type||http://dicom.nema.org/resources/ontology/DCM|110110",
                });
}

TEST_CASE("extract_index keeps the first of repeated values, also for many values") {
  std::string identifiers;
  Strings expected{"_id|||many"};
  for (int i = 0; i < 40; ++i) {
    int n = i < 20 ? 19 - i : i - 20;
    if (!identifiers.empty()) identifiers += ",";
    identifiers += R"({"system":"urn:s","value":"v)" + std::to_string(n) + R"("})";
    if (i < 20) expected.push_back("identifier||urn:s|v" + std::to_string(n));
  }
  CHECK(index_of(r4_registry(),
                 R"({"resourceType":"Patient","id":"many","identifier":[)" + identifiers + "]}") == expected);

  CHECK(index_of(r4_registry(), R"({"resourceType":"Patient","identifier":[
      {"system":"urn:a","value":"1"},{"system":"urn:b","value":"1"},{"value":"1"},{"system":"urn:a","value":"1"},
      {"system":"urn:b","value":"1"}]})") ==
        Strings{"identifier||urn:a|1", "identifier||urn:b|1", "identifier|||1"});
}

TEST_CASE("extract_index skips values of the wrong shape") {
  CHECK(index_of(r4_registry(), R"({"resourceType":"Patient",
      "name":[{"use":"official"}], "gender":1, "active":null,
      "generalPractitioner":[{"display":"Dr"}], "identifier":[{"system":"urn:a"}],
      "telecom":[{"system":"email"}], "birthDate":1970,
      "communication":[{"language":{"text":"French"}}]})") == Strings{});
  CHECK(index_of(r4_registry(), R"({"resourceType":"Observation","id":"o1","status":"final"})").empty());
  CHECK(extract_index(r4_registry(), parse("[]")).empty());
}

}  // namespace fhirgate::fhir
