#include "gateway/security/tokens.hpp"

#include <doctest/doctest.h>

#include "gateway/security/security.hpp"

namespace fhirgate::gateway {
namespace {

TEST_CASE("tokens: shape, salted hash, constant-time match, Authorization parsing") {
  const NewToken t = make_token("acute-trust");
  CHECK(t.token.rfind("fg_", 0) == 0);
  CHECK(t.token.size() == 63);
  CHECK(t.credential.holder == "acute-trust");
  CHECK(t.credential.salt.size() == 16);
  CHECK(t.credential.hash.size() == 32);
  const auto parts = split_token(t.token);
  REQUIRE(parts);
  CHECK(parts->id == t.credential.token_id);
  CHECK(t.token.find(parts->secret) != std::string::npos);
  CHECK(t.credential.hash.find(parts->secret) == std::string::npos);  // the secret itself is not stored
  CHECK(token_matches(t.credential, parts->secret));
  std::string wrong = parts->secret;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  CHECK_FALSE(token_matches(t.credential, wrong));
  // Same secret, another salt: another hash.
  CHECK(make_token("acute-trust").credential.hash != t.credential.hash);

  CHECK_FALSE(split_token("fg_short"));
  CHECK_FALSE(split_token("xx" + t.token.substr(2)));
  CHECK_FALSE(split_token(t.token + "x"));
  CHECK(bearer_token("Bearer " + t.token) == t.token);
  CHECK(bearer_token("bearer   " + t.token + " ") == t.token);
  CHECK(bearer_token("Basic abc").empty());
  CHECK(bearer_token("").empty());
}

TEST_CASE("security: interactions and purposes per the agreement, the patient of a resource, supplier tags") {
  PartnerConfig trust;
  trust.id = "acute-trust";
  trust.access["Patient"] = {"read", "search-type"};
  trust.access["*"] = {"vread"};
  trust.purposes = {"TREAT", "ETREAT"};
  CHECK(Security::may(trust, "Patient", "read"));
  CHECK_FALSE(Security::may(trust, "Patient", "delete"));
  CHECK(Security::may(trust, "Consent", "vread"));  // "*" covers every type
  CHECK_FALSE(Security::may(trust, "Consent", "read"));
  CHECK(*Security::purpose_of(trust, "") == "TREAT");
  CHECK(*Security::purpose_of(trust, "ETREAT") == "ETREAT");
  CHECK(Security::purpose_of(trust, "HPAYMT").error().code == ErrorCode::forbidden);

  auto node = [](const char* text) { return *fhir::parse_json(text); };
  CHECK(Security::patient_of(node(R"({"resourceType":"Patient","id":"p1"})")) == "Patient/p1");
  CHECK(Security::patient_of(node(R"({"resourceType":"Consent","patient":{"reference":"Patient/p2"}})")) ==
        "Patient/p2");
  CHECK(Security::patient_of(node(R"({"resourceType":"Organization","id":"o"})")).empty());

  // The supplier tags: what was held, plus the writer; a client cannot plant another partner's tag.
  fhir::Node held = node(
      R"({"resourceType":"Patient","meta":{"tag":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"gp-practice"}]}})");
  fhir::Node incoming = node(
      R"({"resourceType":"Patient","meta":{"tag":[{"system":"https://fhir.partnership.example/CodeSystem/supplier","code":"social-care"},{"system":"http://example.org/t","code":"x"}]}})");
  Security::tag_supplier(incoming, &held, "acute-trust");
  const std::string written = fhir::write_json(incoming);
  CHECK(written.find("gp-practice") != std::string::npos);
  CHECK(written.find("acute-trust") != std::string::npos);
  CHECK(written.find("social-care") == std::string::npos);
  CHECK(written.find("http://example.org/t") != std::string::npos);
}

}  // namespace
}  // namespace fhirgate::gateway
