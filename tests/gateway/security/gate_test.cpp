// The gate's pure parts, without a server: the agreement, the patient of a resource, supplier tags, who may
// record a patient's decision, and decisions over Consents read from a ConsentSource.
#include "gateway/security/gate.hpp"

#include <doctest/doctest.h>

#include <map>

#include "gateway/security/agreement.hpp"
#include "gateway/security/suppliers.hpp"

namespace fhirgate::gateway {
namespace {

fhir::Node node(const std::string& text) {
  return *fhir::parse_json(text);
}

// Consents held in memory, as the store would return them (a seam, not a mock: the gate only reads).
class HeldConsents final : public ConsentSource {
 public:
  std::map<std::string, std::vector<std::pair<std::int64_t, std::string>>> rows;
  bool broken = false;
  Result<std::vector<std::pair<std::int64_t, std::string>>> consents_of(const std::string& patient) override {
    if (broken) return Error::make(ErrorCode::busy, "unreadable");
    return rows[patient];
  }
};

std::string consent(const std::string& patient, const std::string& provision,
                    const std::string& status = "active") {
  return R"({"resourceType":"Consent","id":"c)" + std::to_string(std::hash<std::string>{}(provision) % 1000) +
         R"(","status":")" + status +
         R"(","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
         R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/)" +
         patient + R"("},"provision":)" + provision + "}";
}

std::string actor(const char* type, const std::string& partner) {
  return std::string(R"({"type":")") + type + R"(","actor":[{"reference":{"reference":"Organization/)" +
         partner + R"("}}]})";
}

Config secure_config() {
  Config c = default_config();
  c.security.enabled = true;
  return c;
}

TEST_CASE("security: interactions and purposes per the agreement, and who may record a decision") {
  PartnerConfig trust;
  trust.id = "acute-trust";
  trust.access["Patient"] = {"read", "search-type"};
  trust.access["*"] = {"vread"};
  trust.purposes = {"TREAT", "ETREAT"};
  CHECK(may(trust, "Patient", "read"));
  CHECK_FALSE(may(trust, "Patient", "delete"));
  CHECK(may(trust, "Consent", "vread"));  // "*" covers every type
  CHECK_FALSE(may(trust, "Consent", "read"));
  CHECK(*purpose_of(trust, "") == "TREAT");
  CHECK(*purpose_of(trust, "ETREAT") == "ETREAT");
  CHECK(purpose_of(trust, "HPAYMT").error().code == ErrorCode::forbidden);
  CHECK(may_break_glass(trust));
  CHECK_FALSE(is_consent_registrar(trust));
  trust.consent_registrar = true;
  CHECK(is_consent_registrar(trust));
  PartnerConfig officer;
  officer.id = "privacy-officer";
  officer.role = "privacy-officer";
  CHECK(is_consent_registrar(officer));
  CHECK(agent_reference(officer) == "privacy-officer");
  CHECK(agent_reference(trust) == "Organization/acute-trust");
}

TEST_CASE("gate: the patient of a resource; privacy Consents by scope or category, any status") {
  CHECK(Gate::patient_of(node(R"({"resourceType":"Patient","id":"p1"})")) == "Patient/p1");
  CHECK(Gate::patient_of(
            node(R"({"resourceType":"Consent","patient":{"reference":"Patient/p2/_history/3"}})")) ==
        "Patient/p2");
  CHECK(Gate::patient_of(node(R"({"resourceType":"Observation","subject":{"reference":"Patient/p3"}})")) ==
        "Patient/p3");
  CHECK(Gate::patient_of(node(R"({"resourceType":"Organization","id":"o"})")).empty());
  // A patient the gate cannot attribute: an absolute URL, a contained patient, an identifier only, a
  // lower-case type; but a local reference to another type is no patient's.
  for (const char* subject :
       {R"({"reference":"https://elsewhere.example/fhir/Patient/p3"})", R"({"reference":"#p"})",
        R"({"reference":"patient/p3"})",
        R"({"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}})",
        R"({"type":"Patient","identifier":{"value":"x"}})", R"({"reference":"Patient/"})"}) {
    const auto resource = node(std::string(R"({"resourceType":"Observation","subject":)") + subject + "}");
    CAPTURE(std::string(subject));
    CHECK(Gate::patient_of(resource).empty());
    CHECK(Gate::names_unknown_patient(resource));
  }
  CHECK_FALSE(Gate::names_unknown_patient(
      node(R"({"resourceType":"Observation","subject":{"reference":"Group/g"}})")));
  CHECK_FALSE(
      Gate::names_unknown_patient(node(R"({"resourceType":"Observation","subject":{"type":"Device"}})")));
  CHECK_FALSE(Gate::names_unknown_patient(
      node(R"({"resourceType":"Observation","subject":{"reference":"Patient/p3"}})")));
  CHECK_FALSE(Gate::names_unknown_patient(node(R"({"resourceType":"Organization","id":"o"})")));
  CHECK(Gate::is_privacy_consent(node(consent("p", R"({"type":"permit"})", "inactive"))));
  CHECK(Gate::is_privacy_consent(node(
      R"({"resourceType":"Consent","category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}]})")));
  CHECK(Gate::is_privacy_consent(
      node(R"({"resourceType":"Consent","scope":{"coding":[{"code":"patient-privacy"}]}})")));
  CHECK_FALSE(Gate::is_privacy_consent(node(
      R"({"resourceType":"Consent","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]}})")));
}

TEST_CASE("suppliers: read from meta.tag only; only a create adds the writer; a client cannot plant one") {
  fhir::Node held = node(
      R"({"resourceType":"Patient","meta":{"tag":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"gp-practice"}]}})");
  fhir::Node incoming = node(
      R"({"resourceType":"Patient","maritalStatus":{"coding":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"acute-trust"}]},"meta":{"tag":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"social-care"},{"system":"http://example.org/t","code":"x"}]}})");
  CHECK(suppliers_of(held) == std::vector<std::string>{"gp-practice"});
  set_supplier_tags(incoming, &held, {});  // an update: the held version's suppliers, nobody added
  CHECK(suppliers_of(incoming) == std::vector<std::string>{"gp-practice"});
  const std::string written = fhir::write_json(incoming);
  CHECK(written.find("social-care") == std::string::npos);
  CHECK(written.find("http://example.org/t") != std::string::npos);
  fhir::Node created = node(R"({"resourceType":"Patient"})");
  set_supplier_tags(created, nullptr, "acute-trust");
  CHECK(suppliers_of(created) == std::vector<std::string>{"acute-trust"});
  // A Coding elsewhere that looks like a supplier tag is not one.
  CHECK(
      suppliers_of(
          node(
              R"({"resourceType":"Patient","maritalStatus":{"coding":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"acute-trust"}]}})"))
          .empty());
}

TEST_CASE("gate: deny first across Consents, the supplier's implicit permit, break-glass, fail closed") {
  const Config config = secure_config();
  Gate gate(config);
  PartnerConfig trust;
  trust.id = "acute-trust";
  trust.purposes = {"TREAT", "ETREAT"};
  PartnerConfig gp;
  gp.id = "gp-practice";
  gp.purposes = {"TREAT"};
  HeldConsents consents;
  const fhir::Node patient = node(
      R"({"resourceType":"Patient","id":"p","meta":{"tag":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"gp-practice"}]}})");
  const Caller as_trust{&trust, "TREAT"};
  const Caller as_gp{&gp, "TREAT"};

  CHECK_FALSE(gate.decide(as_trust, patient, consents, 0)->permit);  // opt-in: nothing said
  CHECK(gate.decide(as_gp, patient, consents, 0)->permit);           // the supplier
  CHECK(gate.decide(as_gp, patient, consents, 0)->reason == "supplier");
  // A deeper permit in one Consent does not outweigh another Consent's deny.
  consents.rows["Patient/p"] = {
      {1, consent("p", R"({"type":"deny","provision":[)" + actor("permit", "acute-trust") + "]}")},
      {2, consent("p", actor("deny", "acute-trust"))}};
  const auto denied = gate.decide(as_trust, patient, consents, 0);
  CHECK_FALSE(denied->permit);
  CHECK(denied->reason.find("deny") != std::string::npos);
  // Within one Consent the exception still wins.
  consents.rows["Patient/p"] = {
      {1, consent("p", R"({"type":"deny","provision":[)" + actor("permit", "acute-trust") + "]}")}};
  CHECK(gate.decide(as_trust, patient, consents, 0)->permit);
  // The patient's deny of its supplier hides the record from it too.
  CHECK_FALSE(gate.decide(as_gp, patient, consents, 0)->permit);
  // Break-glass overrides a deny, and says so.
  const auto glass = gate.decide(Caller{&trust, "ETREAT"}, patient, consents = HeldConsents{}, 0);
  CHECK(glass->permit);
  CHECK(glass->break_glass);
  // Consents that cannot be read: an error, never "no Consents".
  consents.broken = true;
  CHECK(gate.decide(as_gp, patient, consents, 0).error().code == ErrorCode::busy);
  // Not patient data: visible.
  CHECK(gate.decide(as_trust, node(R"({"resourceType":"Organization","id":"o"})"), consents, 0)->permit);
  // Some patient's data that names no local Patient: its supplier's alone, even where no patient has
  // objected (opt-out), and without asking for Consents at all.
  Config opt_out = secure_config();
  opt_out.security.consent_policy = "opt-out";
  Gate open_gate(opt_out);
  const fhir::Node unattributed = node(
      R"({"resourceType":"Observation","subject":{"reference":"https://elsewhere.example/Patient/p"},"meta":{"tag":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"gp-practice"}]}})");
  for (const Gate* g : {&gate, &open_gate}) {
    const auto refused = g->decide(as_trust, unattributed, consents, 0);
    REQUIRE(refused);
    CHECK_FALSE(refused->permit);
    CHECK(refused->reason == "patient not identifiable");
    CHECK(g->decide(as_gp, unattributed, consents, 0)->permit);
  }
}

TEST_CASE("gate: only a registrar or the privacy officer records a patient-privacy Consent, old or new") {
  const Config config = secure_config();
  Gate gate(config);
  PartnerConfig trust;
  trust.id = "acute-trust";
  PartnerConfig council;
  council.id = "social-care";
  council.consent_registrar = true;
  const fhir::Node privacy = node(consent("p", R"({"type":"permit"})"));
  const fhir::Node research = node(
      R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]}})");
  CHECK(gate.may_record(Caller{&trust, "TREAT"}, nullptr, &privacy).error().code == ErrorCode::forbidden);
  CHECK(gate.may_record(Caller{&trust, "TREAT"}, &privacy, &research).error().code == ErrorCode::forbidden);
  CHECK(gate.may_record(Caller{&trust, "TREAT"}, &privacy, nullptr).error().code == ErrorCode::forbidden);
  CHECK(gate.may_record(Caller{&trust, "TREAT"}, nullptr, &research).ok());
  CHECK(gate.may_record(Caller{&council, "COC"}, &privacy, nullptr).ok());
  CHECK(gate.may_record(Caller{}, nullptr, &privacy).ok());  // security off
}

TEST_CASE("gate: a type linked to patients through elements the gate does not read is refused at start-up") {
  // R4's Patient compartment, in part (the gateway reads it from profiles-resources).
  const fhir::Node bundle =
      node(R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"CompartmentDefinition",
    "code":"Patient","resource":[{"code":"Appointment","param":["actor"]},{"code":"Consent","param":["patient"]},
    {"code":"Observation","param":["subject","performer"]},{"code":"Encounter","param":["patient"]},
    {"code":"Patient","param":["link"]},{"code":"Organization"}]}}]})");
  auto model = fhir::Model::load({&bundle});
  REQUIRE(model);
  CHECK((*model)->patient_compartment("Observation")->size() == 2);
  CHECK((*model)->patient_compartment("Organization") == nullptr);
  CHECK(check_attributable(**model, {"Patient", "Consent", "Encounter", "Organization", "AuditEvent"}));
  const auto refused = check_attributable(**model, {"Patient", "Appointment"});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().issues.front().diagnostics.find("Appointment is linked to patients through actor") !=
        std::string::npos);
  CHECK(check_attributable(**model, {"Observation"}).error().issues.front().diagnostics.find("performer") !=
        std::string::npos);
}

}  // namespace
}  // namespace fhirgate::gateway
