#include "gateway/security/security.hpp"

#include <algorithm>

#include "fhir/search_query.hpp"
#include "gateway/security/tokens.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

const Node* array_of(const Node& n, std::string_view key) {
  const Node* a = n.find(key);
  return a && a->is_array() ? a : nullptr;
}

}  // namespace

Security::Security(const Config& config, store::Store& store)
    : config_(config),
      store_(store),
      enabled_(config.security.enabled),
      policy_(parse_consent_policy(config.security.consent_policy).value_or(ConsentPolicy::opt_in)),
      purpose_header_(config.security.purpose_header) {}

Result<const PartnerConfig*> Security::authenticate(std::string_view authorization) {
  const std::string_view token = bearer_token(authorization);
  if (token.empty())
    return Error::make(ErrorCode::unauthorized, "This request needs Authorization: Bearer <token>");
  const auto parts = split_token(token);
  if (!parts) return Error::make(ErrorCode::unauthorized, "The bearer token is not valid");
  std::optional<store::Credential> credential;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(tokens_mutex_);
    if (auto it = tokens_.find(parts->id); it != tokens_.end() && it->second.until > now)
      credential = it->second.credential;
  }
  if (!credential) {
    auto stored = store_.credential(parts->id);
    if (!stored) return stored.error();
    if (!*stored) return Error::make(ErrorCode::unauthorized, "The bearer token is not valid");
    credential = **stored;
    std::lock_guard lock(tokens_mutex_);
    if (tokens_.size() > 10000) tokens_.clear();
    tokens_[parts->id] = CachedToken{*credential, now + std::chrono::minutes(1)};
  }
  if (!token_matches(*credential, parts->secret))
    return Error::make(ErrorCode::unauthorized, "The bearer token is not valid");
  const PartnerConfig* who = find_partner(config_, credential->holder);
  if (!who) return Error::make(ErrorCode::unauthorized, "The bearer token's holder is no longer configured");
  return who;
}

bool Security::may(const PartnerConfig& who, const std::string& type, std::string_view interaction) {
  for (const auto& key : {type, std::string("*")}) {
    auto it = who.access.find(key);
    if (it != who.access.end() && it->second.count(std::string(interaction))) return true;
  }
  return false;
}

Result<std::string> Security::purpose_of(const PartnerConfig& who, std::string_view header) {
  if (header.empty()) return who.purposes.empty() ? std::string("TREAT") : who.purposes.front();
  const std::string purpose(header);
  if (std::find(who.purposes.begin(), who.purposes.end(), purpose) == who.purposes.end())
    return Error::make(ErrorCode::forbidden, "The agreement does not allow purpose of use '" + purpose + "'");
  return purpose;
}

std::string Security::patient_of(const Node& resource) {
  const auto type = resource.string_at("resourceType");
  if (type == "Patient") return "Patient/" + std::string(resource.string_at("id"));
  for (const char* key : {"patient", "subject"}) {
    if (const Node* ref = resource.find(key); ref && ref->is_object()) {
      const std::string reference(ref->string_at("reference"));
      if (reference.rfind("Patient/", 0) == 0) return reference.substr(0, reference.find("/_history"));
    }
  }
  return {};
}

std::vector<std::shared_ptr<const Node>> Security::consents_of(const std::string& patient) {
  std::vector<std::shared_ptr<const Node>> out;
  const auto slash = patient.find('/');
  auto rows = store_.referencing("Consent", "patient", patient.substr(0, slash), patient.substr(slash + 1));
  if (!rows) return out;  // unreadable: no Consent counts, so the policy default (fail closed under opt-in)
  for (const auto& [vid, body] : *rows) {
    // Parsed versions are kept by their version row id: a changed Consent is a new version, a new key.
    {
      std::lock_guard lock(consents_mutex_);
      if (auto it = parsed_consents_.find(vid); it != parsed_consents_.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    auto parsed = fhir::parse_json(body);
    if (!parsed) continue;
    auto shared = std::make_shared<const Node>(std::move(*parsed));
    out.push_back(shared);
    std::lock_guard lock(consents_mutex_);
    if (parsed_consents_.size() >= 50000) parsed_consents_.clear();
    parsed_consents_.emplace(vid, std::move(shared));
  }
  return out;
}

bool Security::supplied_by(std::string_view stored_json, const std::string& who) {
  // Stored resources are written by fhir::write_json from tags tag_supplier made (system, then code):
  // the tag appears verbatim, and clients cannot plant one (tag_supplier drops theirs).
  const std::string tag =
      std::string("{\"system\":\"") + std::string(kSupplierTagSystem) + "\",\"code\":\"" + who + "\"}";
  return stored_json.find(tag) != std::string_view::npos;
}

ConsentDecision Security::decide_stored(const PartnerConfig& who, const std::string& purpose,
                                        const std::string& type, const std::string& id,
                                        std::string_view stored_json, std::string_view action,
                                        std::int64_t now_ms) {
  if (type != "Patient") {
    auto parsed = fhir::parse_json(stored_json);
    if (!parsed) return ConsentDecision{false, false, "unreadable resource", {}, {}};
    return decide(who, purpose, *parsed, action, now_ms);
  }
  if (supplied_by(stored_json, who.id)) return ConsentDecision{true, false, "supplier", {}, {}};
  return decide_patient(who, purpose, "Patient/" + id, type, action, now_ms);
}

ConsentDecision Security::decide_patient(const PartnerConfig& who, const std::string& purpose,
                                         const std::string& patient, const std::string& type,
                                         std::string_view action, std::int64_t now_ms) {
  ConsentRequest request;
  request.actor = organization_of(who);
  request.actor_ods_code = who.ods_code;
  request.purpose = purpose;
  request.resource_type = type;
  request.action = std::string(action);
  request.now_ms = now_ms;
  request.may_break_glass =
      std::find(who.purposes.begin(), who.purposes.end(), "ETREAT") != who.purposes.end();
  const auto consents = consents_of(patient);
  std::vector<const Node*> pointers;
  for (const auto& c : consents) pointers.push_back(c.get());
  ConsentDecision decision = gateway::decide(policy_, pointers, request);
  if (decision_observer_) decision_observer_(decision);
  return decision;
}

ConsentDecision Security::decide(const PartnerConfig& who, const std::string& purpose, const Node& resource,
                                 std::string_view action, std::int64_t now_ms) {
  const std::string patient = patient_of(resource);
  if (patient.empty()) return ConsentDecision{true, false, "not patient data", {}, {}};
  if (const Node* meta = resource.find("meta"))
    if (const Node* tags = array_of(*meta, "tag"))
      for (const auto& tag : tags->items())
        if (tag.string_at("system") == kSupplierTagSystem && tag.string_at("code") == who.id)
          return ConsentDecision{true, false, "supplier", {}, {}};
  return decide_patient(who, purpose, patient, std::string(resource.string_at("resourceType")), action,
                        now_ms);
}

bool Security::may_see(const std::string& partner_id, const Node& held, std::int64_t now_ms) {
  for (const auto& p : config_.partners) {
    if (p.id != partner_id) continue;
    return decide(p, *purpose_of(p, ""), held, "access", now_ms).permit;
  }
  return false;
}

void Security::tag_supplier(Node& resource, const Node* held, const std::string& who) {
  std::vector<std::string> suppliers;
  if (held)
    if (const Node* meta = held->find("meta"))
      if (const Node* tags = array_of(*meta, "tag"))
        for (const auto& tag : tags->items())
          if (tag.string_at("system") == kSupplierTagSystem) suppliers.emplace_back(tag.string_at("code"));
  if (!who.empty() && std::find(suppliers.begin(), suppliers.end(), who) == suppliers.end())
    suppliers.push_back(who);

  Node meta = Node::object();
  if (Node* old = resource.find("meta"); old && old->is_object()) meta = *old;
  Node tags = Node::array();
  if (const Node* old = array_of(meta, "tag"))
    for (const auto& tag : old->items())
      if (tag.string_at("system") != kSupplierTagSystem) tags.push(tag);
  for (const auto& s : suppliers) {
    Node tag = Node::object();
    tag.set("system", Node::string(std::string(kSupplierTagSystem)));
    tag.set("code", Node::string(s));
    tags.push(std::move(tag));
  }
  // meta's elements in R4 order: versionId, lastUpdated, source, profile, security, tag.
  meta.erase("tag");
  meta.set("tag", std::move(tags));
  if (!resource.find("meta")) {
    // Place meta after id (or resourceType); the store re-places it anyway when stamping.
    resource.set("meta", std::move(meta));
  } else {
    *resource.find("meta") = std::move(meta);
  }
}

}  // namespace fhirgate::gateway
