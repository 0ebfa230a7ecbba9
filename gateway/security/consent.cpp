#include "gateway/security/consent.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fhir/datetime.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

constexpr std::string_view kScopeSystem = "http://terminology.hl7.org/CodeSystem/consentscope";
constexpr std::string_view kPrivacyScope = "patient-privacy";
constexpr std::string_view kLoinc = "http://loinc.org";
constexpr std::string_view kPrivacyCategory = "59284-0";
constexpr std::string_view kOdsSystem = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr std::string_view kActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr std::string_view kResourceTypes = "http://hl7.org/fhir/resource-types";
constexpr std::string_view kConsentAction = "http://terminology.hl7.org/CodeSystem/consentaction";
constexpr std::string_view kBreakGlassPurpose = "ETREAT";

// Whether a provision covers the request; `maybe` when a constraint cannot be evaluated and the rest match.
enum class Match { no, maybe, yes };

Match both(Match a, Match b) {
  return a < b ? a : b;
}

const std::vector<Node>& items_at(const Node& node, std::string_view key) {
  static const std::vector<Node> kNone;
  const Node* n = node.find(key);
  return n && n->is_array() ? n->items() : kNone;
}

bool has_coding(const Node& codeable, std::string_view system, std::string_view code) {
  for (const Node& coding : items_at(codeable, "coding")) {
    if (coding.string_at("system") == system && coding.string_at("code") == code) return true;
  }
  return false;
}

// A Coding names `code` when its code is equal and its system absent or `system`.
bool coding_names(const Node& coding, std::string_view system, std::string_view code) {
  if (code.empty() || coding.string_at("code") != code) return false;
  const Node* s = coding.find("system");
  return !s || s->text() == system;
}

bool counts(const Node& consent) {
  if (consent.string_at("status") != "active") return false;
  const Node* scope = consent.find("scope");
  if (!scope || !has_coding(*scope, kScopeSystem, kPrivacyScope)) return false;
  for (const Node& category : items_at(consent, "category")) {
    if (has_coding(category, kLoinc, kPrivacyCategory)) return true;
  }
  return false;
}

Match period_match(const Node& period, std::int64_t now_ms) {
  if (!period.is_object()) return Match::maybe;
  if (const Node* start = period.find("start")) {
    const auto range = start->is_string() ? fhir::parse_time_range(start->text()) : std::nullopt;
    if (!range) return Match::maybe;
    if (now_ms < range->low) return Match::no;
  }
  if (const Node* end = period.find("end")) {
    const auto range = end->is_string() ? fhir::parse_time_range(end->text()) : std::nullopt;
    if (!range) return Match::maybe;
    if (now_ms > range->high) return Match::no;
  }
  return Match::yes;
}

bool actor_match(const Node& actor, const ConsentRequest& request) {
  const Node* reference = actor.find("reference");
  if (!reference) return false;
  if (!request.actor.empty() && reference->string_at("reference") == request.actor) return true;
  const Node* identifier = reference->find("identifier");
  return identifier && !request.actor_ods_code.empty() && identifier->string_at("system") == kOdsSystem &&
         identifier->string_at("value") == request.actor_ods_code;
}

Match class_match(const Node& coding, const ConsentRequest& request) {
  if (coding_names(coding, kResourceTypes, request.resource_type)) return Match::yes;
  const Node* system = coding.find("system");
  return system && system->text() != kResourceTypes ? Match::maybe : Match::no;
}

Match provision_match(const Node& provision, const ConsentRequest& request) {
  if (!provision.is_object()) return Match::maybe;
  Match m = Match::yes;
  for (const char* key : {"modifierExtension", "data", "dataPeriod", "securityLabel", "code"}) {
    if (provision.find(key)) m = Match::maybe;
  }
  if (const Node* period = provision.find("period")) m = both(m, period_match(*period, request.now_ms));
  if (provision.find("actor")) {
    bool any = false;
    for (const Node& actor : items_at(provision, "actor")) any = any || actor_match(actor, request);
    if (!any) return Match::no;
  }
  if (provision.find("purpose")) {
    bool any = false;
    for (const Node& coding : items_at(provision, "purpose")) {
      any = any || coding_names(coding, kActReason, request.purpose);
    }
    if (!any) return Match::no;
  }
  if (provision.find("class")) {
    Match any = Match::no;
    for (const Node& coding : items_at(provision, "class")) any = std::max(any, class_match(coding, request));
    m = both(m, any);
  }
  if (provision.find("action")) {
    bool any = false;
    for (const Node& codeable : items_at(provision, "action")) {
      for (const Node& coding : items_at(codeable, "coding")) {
        any = any || coding_names(coding, kConsentAction, request.action);
      }
    }
    if (!any) return Match::no;
  }
  return m;
}

struct Found {
  bool deny = false;
  int depth = 0;
  std::string path;
  std::size_t consent_index = 0;
};

// True when `candidate` overrides `best`: deeper, or as deep and a deny over a permit.
bool overrides(const Found& candidate, const std::optional<Found>& best) {
  if (!best) return true;
  if (candidate.depth != best->depth) return candidate.depth > best->depth;
  return candidate.deny && !best->deny;
}

void walk(const Node& provision, const ConsentRequest& request, int depth, bool certain,
          const std::string& path, std::size_t consent_index, std::optional<Found>& best) {
  const Match m = provision_match(provision, request);
  if (m == Match::no) return;
  certain = certain && m == Match::yes;
  if (const Node* type = provision.find("type")) {
    Found f{type->text() != "permit", depth, path, consent_index};
    if ((f.deny || certain) && overrides(f, best)) best = std::move(f);
  }
  const std::vector<Node>& nested = items_at(provision, "provision");
  for (std::size_t i = 0; i < nested.size(); ++i) {
    walk(nested[i], request, depth + 1, certain, path + ".provision[" + std::to_string(i) + "]",
         consent_index, best);
  }
}

std::string describe(const Node& consent, std::size_t index) {
  const std::string_view id = consent.string_at("id");
  return id.empty() ? "consent #" + std::to_string(index) : "consent " + std::string(id);
}

ConsentDecision evaluate(ConsentPolicy policy, const std::vector<const Node*>& consents,
                         const ConsentRequest& request) {
  // Each Consent's own decision, then deny first across them.
  std::optional<Found> deny, permit;
  for (std::size_t i = 0; i < consents.size(); ++i) {
    const Node& consent = *consents[i];
    if (!counts(consent)) continue;
    const Node* root = consent.find("provision");
    if (!root) continue;
    const bool certain = consent.find("modifierExtension") == nullptr;
    std::optional<Found> own;
    walk(*root, request, 0, certain, "Consent.provision", i, own);
    if (!own) continue;
    std::optional<Found>& slot = own->deny ? deny : permit;
    if (!slot) slot = std::move(own);
  }
  ConsentDecision d;
  const std::optional<Found>& best = deny ? deny : permit;
  if (!best) {
    if (request.supplied_by_requester) {
      d.permit = true;
      d.reason = "supplier";
      return d;
    }
    d.permit = policy == ConsentPolicy::opt_out;
    d.reason = d.permit ? "policy opt-out: no objection" : "policy opt-in: no consent";
    return d;
  }
  const Node& consent = *consents[best->consent_index];
  d.permit = !best->deny;
  d.consent_id = std::string(consent.string_at("id"));
  d.provision = best->path;
  d.reason = describe(consent, best->consent_index) + " " + best->path + (d.permit ? ": permit" : ": deny");
  return d;
}

}  // namespace

ConsentDecision decide(ConsentPolicy policy, const std::vector<fhir::Node>& consents,
                       const ConsentRequest& request) {
  std::vector<const fhir::Node*> pointers;
  pointers.reserve(consents.size());
  for (const auto& c : consents) pointers.push_back(&c);
  return decide(policy, pointers, request);
}

ConsentDecision decide(ConsentPolicy policy, const std::vector<const fhir::Node*>& consents,
                       const ConsentRequest& request) {
  ConsentDecision d = evaluate(policy, consents, request);
  if (!d.permit && request.purpose == kBreakGlassPurpose && request.may_break_glass) {
    d.permit = true;
    d.break_glass = true;
    d.reason = "break-glass ETREAT over " + d.reason;
  }
  return d;
}

std::optional<ConsentPolicy> parse_consent_policy(std::string_view text) {
  if (text == "opt-in") return ConsentPolicy::opt_in;
  if (text == "opt-out") return ConsentPolicy::opt_out;
  return std::nullopt;
}

}  // namespace fhirgate::gateway
