#include "gateway/security/gate.hpp"

#include <algorithm>
#include <cctype>

#include "gateway/security/agreement.hpp"
#include "gateway/security/suppliers.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

bool has_code(const Node* codeable, std::string_view code, std::string_view system = {}) {
  if (!codeable || !codeable->is_object()) return false;
  const Node* codings = codeable->find("coding");
  if (!codings || !codings->is_array()) return false;
  return std::any_of(codings->items().begin(), codings->items().end(), [&](const Node& c) {
    return c.string_at("code") == code && (system.empty() || c.string_at("system") == system);
  });
}

Error unreadable_consents(const std::string& patient) {
  Error e = Error::make(ErrorCode::busy, "The patient's consent could not be read; try again");
  e.internal = "consent lookup failed for " + patient;
  return e;
}

}  // namespace

Result<std::vector<std::pair<std::int64_t, std::string>>> StoreConsents::consents_of(
    const std::string& patient) {
  if (auto it = read_.find(patient); it != read_.end()) return it->second;
  const auto slash = patient.find('/');
  auto rows = store_.referencing("Consent", "patient", patient.substr(0, slash), patient.substr(slash + 1));
  if (!rows) return rows.error();
  if (read_.size() > 1000) read_.clear();
  read_.emplace(patient, *rows);
  return rows;
}

Result<std::vector<std::pair<std::int64_t, std::string>>> TxnConsents::consents_of(
    const std::string& patient) {
  const auto slash = patient.find('/');
  return txn_.referencing("Consent", "patient", patient.substr(0, slash), patient.substr(slash + 1));
}

Status check_attributable(const fhir::Model& model, const std::vector<std::string>& types) {
  for (const auto& type : types) {
    const std::vector<std::string>* links = model.patient_compartment(type);
    if (type == "Patient" || !links) continue;
    std::string others;
    for (const auto& param : *links)
      if (param != "patient" && param != "subject") others += (others.empty() ? "" : ", ") + param;
    if (!others.empty())
      return Error::make(ErrorCode::invalid_input,
                         "cachedTypes: " + type + " is linked to patients through " + others +
                             ", which the consent gate does not follow (it reads patient and subject); with "
                             "security on it cannot be served",
                         "cachedTypes");
  }
  return Ok{};
}

Gate::Gate(const Config& config)
    : enabled_(config.security.enabled),
      policy_(parse_consent_policy(config.security.consent_policy).value_or(ConsentPolicy::opt_in)) {}

namespace {

// What a `patient` or `subject` element says of the patient: kind and, for a local Patient, its reference.
enum class Link { none, patient, other, unknown };
std::pair<Link, std::string> patient_link(const Node& resource) {
  for (const char* key : {"patient", "subject"}) {
    const Node* ref = resource.find(key);
    if (!ref || !ref->is_object()) continue;
    const std::string reference(ref->string_at("reference"));
    const auto slash = reference.find('/');
    const bool relative = slash != std::string::npos && slash > 0 &&
                          reference.find(':') == std::string::npos &&
                          std::isupper(static_cast<unsigned char>(reference[0]));
    if (relative && reference.compare(0, slash, "Patient") == 0)
      return reference.size() > slash + 1
                 ? std::pair{Link::patient, reference.substr(0, reference.find("/_history"))}
                 : std::pair{Link::unknown, std::string()};
    if (relative) return {Link::other, {}};
    const auto type = ref->string_at("type");
    if (reference.empty() && !type.empty() && type != "Patient") return {Link::other, {}};
    return {Link::unknown, {}};
  }
  return {Link::none, {}};
}

}  // namespace

std::string Gate::patient_of(const Node& resource) {
  if (resource.string_at("resourceType") == "Patient") {
    const auto id = resource.string_at("id");
    return id.empty() ? std::string() : "Patient/" + std::string(id);
  }
  auto [link, reference] = patient_link(resource);
  return link == Link::patient ? std::move(reference) : std::string();
}

bool Gate::names_unknown_patient(const Node& resource) {
  return resource.string_at("resourceType") != "Patient" && patient_link(resource).first == Link::unknown;
}

std::shared_ptr<const Node> Gate::parsed_consent(std::int64_t version_row, const std::string& body) const {
  const std::string key = std::to_string(version_row) + ":" + std::to_string(std::hash<std::string>{}(body));
  {
    std::lock_guard lock(mutex_);
    if (auto it = parsed_.find(key); it != parsed_.end()) return it->second;
  }
  auto parsed = fhir::parse_json(body);
  if (!parsed) return nullptr;
  auto shared = std::make_shared<const Node>(std::move(*parsed));
  std::lock_guard lock(mutex_);
  if (parsed_.size() >= 50000) parsed_.clear();
  parsed_.emplace(key, shared);
  return shared;
}

Result<ConsentDecision> Gate::decide_patient(const Caller& caller, const std::string& patient,
                                             std::string_view type, bool supplier, ConsentSource& consents,
                                             std::int64_t now_ms, std::string_view action) const {
  auto rows = consents.consents_of(patient);
  if (!rows) return unreadable_consents(patient);
  std::vector<std::shared_ptr<const Node>> held;
  std::vector<const Node*> pointers;
  held.reserve(rows->size());
  for (const auto& [version_row, body] : *rows) {
    auto consent = parsed_consent(version_row, body);
    if (!consent) return unreadable_consents(patient);  // stored JSON that does not parse: fail closed
    pointers.push_back(consent.get());
    held.push_back(std::move(consent));
  }
  const PartnerConfig& who = *caller.partner;
  ConsentRequest request;
  request.actor = organization_of(who);
  request.actor_ods_code = who.ods_code;
  request.purpose = caller.purpose;
  request.resource_type = std::string(type);
  request.action = std::string(action);
  request.now_ms = now_ms;
  request.supplied_by_requester = supplier;
  request.may_break_glass = may_break_glass(who);
  ConsentDecision decision = gateway::decide(policy_, pointers, request);
  if (observer_) observer_(decision);
  return decision;
}

Result<ConsentDecision> Gate::decide(const Caller& caller, const Node& resource, ConsentSource& consents,
                                     std::int64_t now_ms, std::string_view action) const {
  if (!enabled_ || !caller.partner) return ConsentDecision{true, false, "security off", {}, {}};
  // Who records patients' decisions sees them (and may amend them): a registrar, the privacy officer.
  if (is_consent_registrar(*caller.partner) && is_privacy_consent(resource))
    return ConsentDecision{true, false, "consent registrar", {}, {}};
  const std::string patient = patient_of(resource);
  const bool unknown = patient.empty() && names_unknown_patient(resource);
  if (patient.empty() && !unknown) return ConsentDecision{true, false, "not patient data", {}, {}};
  const auto suppliers = suppliers_of(resource);
  const bool supplier = std::find(suppliers.begin(), suppliers.end(), caller.partner->id) != suppliers.end();
  // No patient's Consent can be found for it, whatever the policy says of none: its supplier's alone.
  if (unknown)
    return ConsentDecision{supplier, false, supplier ? "supplier" : "patient not identifiable", {}, {}};
  return decide_patient(caller, patient, resource.string_at("resourceType"), supplier, consents, now_ms,
                        action);
}

Result<ConsentDecision> Gate::decide_stored(const Caller& caller, const store::VersionRecord& version,
                                            ConsentSource& consents, std::int64_t now_ms) const {
  if (!enabled_ || !caller.partner) return ConsentDecision{true, false, "security off", {}, {}};
  if (version.type != "Patient") {
    auto parsed = fhir::parse_json(version.body);
    if (!parsed) return ConsentDecision{false, false, "unreadable resource", {}, {}};
    return decide(caller, *parsed, consents, now_ms);
  }
  // A Patient is its own patient: only its meta (the supplier tags) need be read.
  auto meta = fhir::parse_json_member(version.body, "meta");
  if (!meta) return ConsentDecision{false, false, "unreadable resource", {}, {}};
  const auto suppliers = *meta ? suppliers_in_meta(**meta) : std::vector<std::string>();
  const bool supplier = std::find(suppliers.begin(), suppliers.end(), caller.partner->id) != suppliers.end();
  return decide_patient(caller, "Patient/" + version.id, "Patient", supplier, consents, now_ms, "access");
}

bool Gate::is_privacy_consent(const Node& resource) {
  if (resource.string_at("resourceType") != "Consent") return false;
  if (has_code(resource.find("scope"), "patient-privacy")) return true;
  if (const Node* categories = resource.find("category"); categories && categories->is_array())
    for (const Node& category : categories->items())
      if (has_code(&category, "59284-0", "http://loinc.org")) return true;
  return false;
}

Status Gate::may_record(const Caller& caller, const Node* held, const Node* incoming) const {
  if (!enabled_ || !caller.partner) return Ok{};
  const bool privacy = (held && is_privacy_consent(*held)) || (incoming && is_privacy_consent(*incoming));
  if (!privacy || is_consent_registrar(*caller.partner)) return Ok{};
  Error e = Error::make(ErrorCode::forbidden,
                        "Only a consent registrar or the privacy officer may record a "
                        "patient's sharing decision (a patient-privacy Consent); " +
                            caller.partner->id + " is not one");
  e.internal = "consent write refused: not a registrar";
  return e;
}

}  // namespace fhirgate::gateway
