#pragma once
// The information sharing agreement at run time: who is asking (bearer token -> partner or role), what
// the agreement lets them do, for which purpose, and whether a patient's consent lets them see a record.
// Used by the REST API (and by HL7 v2 for supplier tags); thread-safe.
//
// Consent is re-read from the store on every decision, so a Consent written by one request governs the
// very next one; only the parsing is cached, by version (a new version is a new key, so never stale).
// Verified tokens are cached for a minute to spare the hash and the lookup.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "fhir/json.hpp"
#include "gateway/config/config.hpp"
#include "gateway/security/consent.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

inline constexpr std::string_view kSupplierTagSystem = "https://fhir.partnership.example/CodeSystem/supplier";
inline constexpr std::string_view kOdsSystem = "https://fhir.nhs.uk/Id/ods-organization-code";

class Security {
 public:
  // `config` and `store` must outlive it.
  Security(const Config& config, store::Store& store);

  bool enabled() const { return enabled_; }
  // Told of every decision made from a patient's Consents (not of "supplier" or "not patient data");
  // set-up only.
  void set_decision_observer(std::function<void(const ConsentDecision&)> observer) {
    decision_observer_ = std::move(observer);
  }
  const std::string& purpose_header() const { return purpose_header_; }

  // The holder of the bearer token in an Authorization header. Errors: unauthorized (no token, malformed,
  // unknown, or a holder no longer configured), busy (store unavailable).
  Result<const PartnerConfig*> authenticate(std::string_view authorization);
  // The agreement lets `who` perform `interaction` on `type`.
  static bool may(const PartnerConfig& who, const std::string& type, std::string_view interaction);
  // The purpose of use of a request: the header's value, or the holder's default. Errors: forbidden when
  // the holder may not claim it.
  static Result<std::string> purpose_of(const PartnerConfig& who, std::string_view header);

  // "Patient/<id>" of the patient whose data `resource` is (the Patient itself, or its patient/subject
  // reference); empty when none.
  static std::string patient_of(const fhir::Node& resource);
  // May `who` see `resource` for `purpose` (consentaction `action`)? Resources that are no patient's data
  // are always visible. Reads the patient's Consents now.
  ConsentDecision decide(const PartnerConfig& who, const std::string& purpose, const fhir::Node& resource,
                         std::string_view action, std::int64_t now_ms);

  // The same for a stored resource's JSON, parsing it only when needed (a Patient's patient is itself,
  // and the supplier tag is found in the stored text).
  ConsentDecision decide_stored(const PartnerConfig& who, const std::string& purpose, const std::string& type,
                                const std::string& id, std::string_view stored_json, std::string_view action,
                                std::int64_t now_ms);

  // Marks `resource` as supplied by `who`: the supplier tags of `held` (the version it replaces, or null)
  // plus `who` (none when empty); supplier tags the client sent are dropped.
  static void tag_supplier(fhir::Node& resource, const fhir::Node* held, const std::string& who);

  // May the configured partner `partner_id` see `held`, for its default purpose? Asked by writes that merge
  // into a held record (HL7 v2, feeds): a partner becomes a record's supplier, and so sees all of it from
  // then on, only where its patient's consent already lets it see the record.
  bool may_see(const std::string& partner_id, const fhir::Node& held, std::int64_t now_ms);
  // may_see as the merging writers are given it; null (security off): it may.
  using MaySee = std::function<bool(const std::string& partner, const fhir::Node& held)>;
  // tag_supplier for `merged`, a merge of `held` written by `who`: `who` is added only where `may_see` lets
  // it see `held`.
  static void tag_merge_supplier(fhir::Node& merged, const fhir::Node& held, const std::string& who,
                                 const MaySee& may_see) {
    tag_supplier(merged, &held, !may_see || may_see(who, held) ? who : std::string());
  }

  static std::string organization_of(const PartnerConfig& who) { return "Organization/" + who.id; }

 private:
  std::vector<std::shared_ptr<const fhir::Node>> consents_of(const std::string& patient);
  ConsentDecision decide_patient(const PartnerConfig& who, const std::string& purpose,
                                 const std::string& patient, const std::string& type, std::string_view action,
                                 std::int64_t now_ms);
  static bool supplied_by(std::string_view stored_json, const std::string& who);

  const Config& config_;
  store::Store& store_;
  bool enabled_;
  ConsentPolicy policy_;
  std::string purpose_header_;
  std::mutex tokens_mutex_;
  struct CachedToken {
    store::Credential credential;
    std::chrono::steady_clock::time_point until;
  };
  std::unordered_map<std::string, CachedToken> tokens_;
  std::mutex consents_mutex_;
  std::unordered_map<std::int64_t, std::shared_ptr<const fhir::Node>> parsed_consents_;  // by version row id
  std::function<void(const ConsentDecision&)> decision_observer_;
};

}  // namespace fhirgate::gateway
