#include "gateway/security/consent.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/datetime.hpp"

namespace fhirgate::gateway {
namespace {

constexpr std::string_view kAcute = "Organization/acute-trust";
constexpr std::string_view kGp = "Organization/gp-practice";
constexpr std::string_view kSocial = "Organization/social-care";
constexpr std::string_view kOds = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr std::string_view kActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr std::string_view kResourceTypes = "http://hl7.org/fhir/resource-types";
constexpr std::string_view kConsentAction = "http://terminology.hl7.org/CodeSystem/consentaction";
constexpr std::string_view kScopeSystem = "http://terminology.hl7.org/CodeSystem/consentscope";
constexpr std::string_view kLoinc = "http://loinc.org";

// Small JSON builders, so that each table row shows only what it is about.

std::string join(std::initializer_list<std::string> parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::string coding(std::string_view system, std::string_view code) {
  std::string out = "{";
  if (!system.empty()) out += R"("system":")" + std::string(system) + R"(",)";
  return out + R"("code":")" + std::string(code) + R"("})";
}

std::string scope(std::string_view system, std::string_view code) {
  return R"("scope":{"coding":[)" + coding(system, code) + "]}";
}

std::string category(std::string_view code) {
  return R"({"coding":[)" + coding(kLoinc, code) + "]}";
}

const std::string kPrivacyScope = scope(kScopeSystem, "patient-privacy");
const std::string kPrivacyCategory = R"("category":[)" + category("59284-0") + "]";

// A Consent from its members other than resourceType, id and status.
std::string resource(std::string_view id, std::initializer_list<std::string> members,
                     std::string_view status = "active") {
  return R"({"resourceType":"Consent","id":")" + std::string(id) + R"(","status":")" + std::string(status) +
         R"(",)" + join(members) + "}";
}

// A Consent that counts (active, patient-privacy scope, LOINC 59284-0 category) with `root` as its provision.
std::string consent(std::string_view id, const std::string& root, std::string_view status = "active") {
  return resource(
      id, {kPrivacyScope, kPrivacyCategory, R"("patient":{"reference":"Patient/p1"},"provision":)" + root},
      status);
}

// A provision: `type` ("" for none) and its constraints and nested provisions.
std::string prov(std::string_view type, std::initializer_list<std::string> members = {}) {
  const std::string rest = join(members);
  const std::string t = type.empty() ? "" : R"("type":")" + std::string(type) + R"(")";
  return "{" + t + (t.empty() || rest.empty() ? "" : ",") + rest + "}";
}

std::string nested(std::initializer_list<std::string> provisions) {
  return R"("provision":[)" + join(provisions) + "]";
}

std::string actor_ref(std::string_view reference) {
  return R"({"role":{"coding":[)" +
         coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP") +
         R"(]},"reference":{"reference":")" + std::string(reference) + R"("}})";
}

std::string actor_id(std::string_view system, std::string_view value) {
  return R"({"role":{"text":"recipient"},"reference":{"identifier":{"system":")" + std::string(system) +
         R"(","value":")" + std::string(value) + R"("}}})";
}

std::string actors(std::initializer_list<std::string> list) {
  return R"("actor":[)" + join(list) + "]";
}

std::string purpose(std::string_view code, std::string_view system = kActReason) {
  return R"("purpose":[)" + coding(system, code) + "]";
}

std::string klass(std::string_view code, std::string_view system = kResourceTypes) {
  return R"("class":[)" + coding(system, code) + "]";
}

std::string action(std::string_view code) {
  return R"("action":[{"coding":[)" + coding(kConsentAction, code) + "]}]";
}

std::string period(std::string_view start, std::string_view end) {
  std::string out;
  if (!start.empty()) out += R"("start":")" + std::string(start) + R"(")";
  if (!end.empty()) out += (out.empty() ? "" : ",") + (R"("end":")" + std::string(end) + R"(")");
  return R"("period":{)" + out + "}";
}

// The request, with defaults every row can override by name.
struct Req {
  std::string_view actor = kAcute;
  std::string ods = "RXX";
  std::string purpose = "TREAT";
  std::string type = "Observation";
  std::string action = "access";
  std::string now = "2026-03-01T12:00:00Z";
  bool supplier = false;
  bool may_break_glass = false;
};

ConsentRequest to_request(const Req& r) {
  ConsentRequest c;
  c.actor = std::string(r.actor);
  c.actor_ods_code = r.ods;
  c.purpose = r.purpose;
  c.resource_type = r.type;
  c.action = r.action;
  const auto now = fhir::parse_time_range(r.now);
  REQUIRE(now.has_value());
  c.now_ms = now->low;
  c.supplied_by_requester = r.supplier;
  c.may_break_glass = r.may_break_glass;
  return c;
}

std::vector<fhir::Node> parse_all(const std::vector<std::string>& texts) {
  std::vector<fhir::Node> nodes;
  for (const std::string& text : texts) {
    auto parsed = fhir::parse_json(text);
    REQUIRE_MESSAGE(parsed.ok(), text);
    nodes.push_back(std::move(parsed).value());
  }
  return nodes;
}

struct Case {
  std::string name;
  ConsentPolicy policy;
  std::vector<std::string> consents;
  Req req;
  bool permit;
  bool break_glass = false;
  std::string consent_id =
      "";  // the deciding Consent expected; empty when a policy or the supplier rule decides
};

constexpr ConsentPolicy kIn = ConsentPolicy::opt_in;
constexpr ConsentPolicy kOut = ConsentPolicy::opt_out;

// One row per case reads better than one field per line.
// clang-format off
std::vector<Case> cases() {
  const std::string acute = actors({actor_ref(kAcute)});
  const std::string social = actors({actor_ref(kSocial)});
  const std::string permit_acute = consent("c-permit", prov("permit", {acute}));
  const std::string deny_all = consent("c-deny", prov("deny"));
  const std::string permit_all = consent("c-all", prov("permit"));
  const std::string data = R"("data":[{"meaning":"instance","reference":{"reference":"Observation/o1"}}])";
  const std::string root_deny = R"("provision":{"type":"deny"})";
  const std::string two_categories =
      R"("category":[)" + category("64292-6") + "," + category("59284-0") + "]";
  const std::string optin_rule =
      R"("policyRule":{"coding":[)" + coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN") +
      "]}";
  return {
      // Policy defaults and a plain consent.
      {"opt-in without consent denies", kIn, {}, {}, false},
      {"opt-in with a permit for the partner permits", kIn, {permit_acute}, {}, true, false, "c-permit"},
      {"opt-in: a permit for another partner does not count", kIn, {permit_acute},
       {.actor = kGp, .ods = "GP1"}, false},
      {"opt-out without consent permits", kOut, {}, {}, true},
      {"opt-out with an objection denies", kOut, {deny_all}, {}, false, false, "c-deny"},
      {"a Consent without provision decides nothing; policyRule is not read", kIn,
       {resource("c0", {kPrivacyScope, kPrivacyCategory, optin_rule})},
       {}, false},
      {"a provision without type decides nothing", kOut, {consent("c0", prov("", {acute}))}, {}, true},

      // Period.
      {"expired period", kIn, {consent("c1", prov("permit", {period("2025-01-01", "2026-02-28")}))}, {},
       false},
      {"period not yet started", kIn, {consent("c1", prov("permit", {period("2026-04", "")}))}, {}, false},
      {"a partial start covers its whole month", kIn,
       {consent("c1", prov("permit", {period("2026-03", "")}))}, {.now = "2026-03-01T00:00:00Z"}, true, false,
       "c1"},
      {"open start; a partial end covers its whole month", kIn,
       {consent("c1", prov("permit", {period("", "2026-03")}))}, {}, true, false, "c1"},
      {"a seconds-precision end covers its whole second", kIn,
       {consent("c1", prov("permit", {period("", "2026-03-01T12:00:00Z")}))},
       {.now = "2026-03-01T12:00:00.500Z"}, true, false, "c1"},
      {"period start with a time zone", kIn,
       {consent("c1", prov("permit", {period("2026-03-01T13:00:00+02:00", "")}))}, {}, true, false, "c1"},

      // Actor.
      {"deny for one named partner denies it", kOut, {consent("c2", prov("deny", {acute}))}, {}, false, false,
       "c2"},
      {"deny for one named partner leaves another unaffected", kOut,
       {consent("c2", prov("deny", {acute}))}, {.actor = kGp, .ods = "GP1"}, true},
      {"any of several actors matches", kIn,
       {consent("c2", prov("permit", {actors({actor_ref(kGp), actor_ref(kAcute)})}))}, {}, true, false, "c2"},
      {"actor by ODS identifier", kOut, {consent("c3", prov("deny", {actors({actor_id(kOds, "RXX")})}))}, {},
       false, false, "c3"},
      {"actor by ODS identifier: another ODS code is unaffected", kOut,
       {consent("c3", prov("deny", {actors({actor_id(kOds, "RXX")})}))}, {.ods = "RYY"}, true},
      {"actor by identifier in another system does not match", kOut,
       {consent("c3", prov("deny", {actors({actor_id("https://example.org/orgs", "RXX")})}))}, {}, true},
      {"an empty ODS code never matches an identifier", kIn,
       {consent("c3", prov("permit", {actors({actor_id(kOds, "")})}))}, {.ods = ""}, false},

      // Purpose.
      {"purpose permitted", kIn, {consent("c4", prov("permit", {purpose("TREAT")}))}, {}, true, false, "c4"},
      {"purpose not permitted", kIn, {consent("c4", prov("permit", {purpose("TREAT")}))},
       {.purpose = "HPAYMT"}, false},
      {"purpose from another code system does not match", kIn,
       {consent("c4", prov("permit", {purpose("TREAT", "https://example.org/why")}))}, {}, false},
      {"purpose without system matches by code", kIn, {consent("c4", prov("permit", {purpose("TREAT", "")}))},
       {}, true, false, "c4"},

      // Class and action.
      {"class restriction excludes other types", kIn, {consent("c5", prov("permit", {klass("Patient")}))}, {},
       false},
      {"class restriction includes its type", kIn, {consent("c5", prov("permit", {klass("Patient")}))},
       {.type = "Patient"}, true, false, "c5"},
      {"action restriction excludes other actions", kIn, {consent("c6", prov("permit", {action("access")}))},
       {.action = "correct"}, false},
      {"action restriction includes its action", kIn, {consent("c6", prov("permit", {action("access")}))}, {},
       true, false, "c6"},

      // Nested provisions.
      {"permit all except one partner: the partner is denied", kIn,
       {consent("c7", prov("permit", {nested({prov("deny", {social})})}))}, {.actor = kSocial, .ods = "SC1"},
       false, false, "c7"},
      {"permit all except one partner: others are permitted", kIn,
       {consent("c7", prov("permit", {nested({prov("deny", {social})})}))}, {}, true, false, "c7"},
      {"deny all except one purpose: that purpose is permitted", kIn,
       {consent("c8", prov("deny", {nested({prov("permit", {purpose("TREAT")})})}))}, {}, true, false, "c8"},
      {"deny all except one purpose: other purposes are denied", kOut,
       {consent("c8", prov("deny", {nested({prov("permit", {purpose("TREAT")})})}))}, {.purpose = "HPAYMT"},
       false, false, "c8"},
      {"a nested provision applies only when its parent matches", kIn,
       {consent("c9", prov("", {social, nested({prov("permit", {purpose("TREAT")})})}))}, {}, false},
      {"a typeless parent still holds its exceptions", kIn,
       {consent("c9", prov("", {acute, nested({prov("permit", {purpose("TREAT")})})}))}, {}, true, false,
       "c9"},

      // Several consents.
      {"conflict at the same depth: deny wins (permit first)", kIn, {permit_all, deny_all}, {}, false, false,
       "c-deny"},
      {"conflict at the same depth: deny wins (deny first)", kIn, {deny_all, permit_all}, {}, false, false,
       "c-deny"},
      // Across consents deny wins, however specific a permit of another consent is (a patient's "no" is
      // never outweighed); within one consent the deepest provision decides.
      {"a shallower deny of another consent beats a deeper permit", kOut,
       {deny_all, consent("c10", prov("deny", {nested({prov("permit", {acute})})}))}, {}, false, false,
       "c-deny"},
      {"a deeper permit beats a shallower deny of the same consent", kOut,
       {consent("c10", prov("deny", {nested({prov("permit", {acute})})}))}, {}, true, false, "c10"},
      {"a deeper deny beats a shallower permit of another consent", kIn,
       {consent("c11", prov("permit", {nested({prov("deny", {acute})})})), permit_all}, {}, false, false,
       "c11"},

      // Break-glass.
      {"break-glass over a deny", kIn, {deny_all}, {.purpose = "ETREAT", .may_break_glass = true}, true, true,
       "c-deny"},
      {"break-glass over the opt-in default", kIn, {}, {.purpose = "ETREAT", .may_break_glass = true}, true,
       true},
      {"break-glass needs the partner to be allowed", kIn, {deny_all}, {.purpose = "ETREAT"}, false, false,
       "c-deny"},
      {"break-glass needs purpose ETREAT", kIn, {deny_all}, {.may_break_glass = true}, false, false,
       "c-deny"},
      {"ETREAT permitted by consent is not break-glass", kOut,
       {consent("c12", prov("deny", {nested({prov("permit", {purpose("ETREAT")})})}))},
       {.purpose = "ETREAT", .may_break_glass = true}, true, false, "c12"},

      // Supplier: an implicit permit, which the patient's deny overrides.
      {"the supplier sees its own data where the patient said nothing", kIn, {}, {.supplier = true}, true},
      {"the supplier sees its own data beside a permit", kIn, {permit_all}, {.supplier = true}, true, false,
       "c-all"},
      {"the patient's deny hides the data from its own supplier", kIn,
       {consent("c13", prov("deny", {acute}))}, {.supplier = true}, false, false, "c13"},

      // Consents that do not count.
      {"an inactive permit is ignored", kIn, {consent("c14", prov("permit"), "inactive")}, {}, false},
      {"a draft deny is ignored", kOut, {consent("c14", prov("deny"), "draft")}, {}, true},
      {"a rejected deny is ignored", kOut, {consent("c14", prov("deny"), "rejected")}, {}, true},
      {"another scope is ignored", kOut,
       {resource("c15", {scope(kScopeSystem, "research"), kPrivacyCategory, root_deny})},
       {}, true},
      {"a scope code without system is ignored", kOut,
       {resource("c15", {scope("", "patient-privacy"), kPrivacyCategory, root_deny})},
       {}, true},
      {"a missing category is ignored", kOut, {resource("c16", {kPrivacyScope, root_deny})}, {}, true},
      {"another category is ignored", kOut,
       {resource("c16", {kPrivacyScope, R"("category":[)" + category("64292-6") + "]", root_deny})},
       {}, true},
      {"59284-0 among other categories counts", kOut,
       {resource("c16", {kPrivacyScope, two_categories, root_deny})},
       {}, false, false, "c16"},

      // Fail closed on what cannot be evaluated.
      {"a permit with a data constraint is not applied", kIn, {consent("c17", prov("permit", {data}))}, {},
       false},
      {"a deny with a data constraint is applied", kOut, {consent("c17", prov("deny", {data}))}, {}, false,
       false, "c17"},
      {"a deny with a security label is applied", kOut,
       {consent("c17", prov("deny", {R"("securityLabel":[)" +
                                     coding("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R") +
                                     "]"}))},
       {}, false, false, "c17"},
      {"an unevaluable deny still needs its other constraints to match", kOut,
       {consent("c17", prov("deny", {actors({actor_ref(kGp)}), R"("code":[{"text":"HIV"}])"}))}, {}, true},
      {"a permit nested in an unevaluable provision is not applied", kIn,
       {consent("c18", prov("", {R"("dataPeriod":{"start":"2020"})", nested({prov("permit")})}))}, {}, false},
      {"a deny by profile class is applied to any type", kOut,
       {consent("c19", prov("deny", {klass("https://example.org/StructureDefinition/sensitive",
                                           "urn:ietf:rfc:3986")}))},
       {}, false, false, "c19"},
      {"an unparseable period does not permit", kIn,
       {consent("c20", prov("permit", {period("1st March", "")}))}, {}, false},
      {"an unparseable period still denies", kOut, {consent("c20", prov("deny", {period("", "soon")}))}, {},
       false, false, "c20"},
      {"a modifierExtension on the Consent blocks its permits", kIn,
       {resource("c21", {R"("modifierExtension":[{"url":"https://example.org/unknown","valueBoolean":true}])",
                         kPrivacyScope, kPrivacyCategory, R"("provision":{"type":"permit"})"})},
       {}, false},
  };
}
// clang-format on

TEST_CASE("consent decisions: table") {
  for (const Case& c : cases()) {
    const ConsentDecision d = decide(c.policy, parse_all(c.consents), to_request(c.req));
    CAPTURE(c.name);
    CAPTURE(d.reason);
    CHECK(d.permit == c.permit);
    CHECK(d.break_glass == c.break_glass);
    CHECK(d.consent_id == c.consent_id);
    CHECK_FALSE(d.reason.empty());
  }
}

TEST_CASE("consent decisions: the reason names the deciding consent and provision") {
  const auto consents = parse_all({consent(
      "c7", prov("permit", {nested({prov("permit"), prov("deny", {actors({actor_ref(kSocial)})})})}))});
  ConsentRequest social = to_request({.actor = kSocial});
  ConsentDecision d = decide(ConsentPolicy::opt_in, consents, social);
  CHECK(d.provision == "Consent.provision.provision[1]");
  CHECK(d.reason == "consent c7 Consent.provision.provision[1]: deny");

  social.purpose = "ETREAT";
  social.may_break_glass = true;
  d = decide(ConsentPolicy::opt_in, consents, social);
  CHECK(d.break_glass);
  CHECK(d.reason == "break-glass ETREAT over consent c7 Consent.provision.provision[1]: deny");

  CHECK(decide(ConsentPolicy::opt_in, std::vector<fhir::Node>{}, to_request({})).reason ==
        "policy opt-in: no consent");
  CHECK(decide(ConsentPolicy::opt_out, std::vector<fhir::Node>{}, to_request({})).reason ==
        "policy opt-out: no objection");
  const ConsentDecision supplier =
      decide(ConsentPolicy::opt_in, std::vector<fhir::Node>{}, to_request({.supplier = true}));
  CHECK(supplier.reason == "supplier");
  CHECK(supplier.consent_id.empty());
}

TEST_CASE("parse_consent_policy") {
  CHECK(parse_consent_policy("opt-in") == ConsentPolicy::opt_in);
  CHECK(parse_consent_policy("opt-out") == ConsentPolicy::opt_out);
  CHECK_FALSE(parse_consent_policy("optin"));
  CHECK_FALSE(parse_consent_policy("OPT-IN"));
  CHECK_FALSE(parse_consent_policy(""));
}

}  // namespace
}  // namespace fhirgate::gateway
