#pragma once
// The one gate (../shared/DESIGN.md "One gate", docs/security.md): whether a resource may leave the
// gateway to a caller, and whether a caller may record a patient's decision. Every read, vread, history
// entry, search entry, Bundle GET entry, message, delivery and operator view asks `decide`; every write
// plan asks it too, inside its transaction, of the record it would change (stages/write.hpp), and asks
// `may_record` of every Consent it writes. No handler decides consent on its own.
//
// Design note
// -----------
// A decision is a function of the caller (partner, purpose), the resource (its patient and its supplier
// tags), the patient's Consents, and the deployment's policy; security/consent.hpp is the pure engine
// that combines them (deny first), security/suppliers.hpp says who supplied a record. The gate's own work
// is to find the patient, read its Consents through a ConsentSource and fail closed: a Consent that cannot
// be read is an error for the whole request (503), never "no Consents" (which under opt-out would share).
//
// Where Consents are read: reads use the store's read connections (StoreConsents, which reads each
// patient's Consents once per request); writes use their own transaction (TxnConsents), so that a Consent
// written earlier in the same batch — or earlier in the same Bundle — governs the next write. Parsed
// Consents are cached by their version row id and a hash of their text, which no later write can change,
// so the cache never serves a stale decision.
//
// Resources that are no patient's data (Organization, an AuditEvent served from the trail) are always
// visible; with security off (a null caller partner) everything is.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"
#include "gateway/config/config.hpp"
#include "gateway/security/consent.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

// Who asks, as the gate sees it: the authenticated partner or role (or the partner an HL7 v2 message or
// feed came from) and the purpose of use. A null partner means security is off.
struct Caller {
  const PartnerConfig* partner = nullptr;
  std::string purpose;
};

// Where the gate reads a patient's Consents. Thread-compatible: one per request or plan.
class ConsentSource {
 public:
  virtual ~ConsentSource() = default;
  // The live Consents whose patient is `patient` ("Patient/<id>"): each one's version row id and JSON.
  // Errors: whatever reading them met (the gate fails closed on it).
  virtual Result<std::vector<std::pair<std::int64_t, std::string>>> consents_of(
      const std::string& patient) = 0;
};

// Through the store's read connections; each patient's Consents read once per request (one object).
class StoreConsents final : public ConsentSource {
 public:
  explicit StoreConsents(store::Store& store) : store_(store) {}
  Result<std::vector<std::pair<std::int64_t, std::string>>> consents_of(const std::string& patient) override;

 private:
  store::Store& store_;
  std::unordered_map<std::string, std::vector<std::pair<std::int64_t, std::string>>> read_;
};

// Inside a write transaction, on the writer thread: sees what the batch wrote before. Not cached.
class TxnConsents final : public ConsentSource {
 public:
  explicit TxnConsents(store::WriteTxn& txn) : txn_(txn) {}
  Result<std::vector<std::pair<std::int64_t, std::string>>> consents_of(const std::string& patient) override;

 private:
  store::WriteTxn& txn_;
};

// The gate finds a record's patient in its `patient` or `subject` (and a Patient is its own). A type that
// R4's Patient compartment links to patients through other elements too (Appointment's actor, Observation's
// performer, ...) could be patient data the gate does not see as such: with security on, such a type is
// refused at start-up rather than served. Errors: invalid_input naming the type and its elements.
Status check_attributable(const fhir::Model& model, const std::vector<std::string>& types);

class Gate {
 public:
  // `config` must outlive it. Security off (config.security.enabled false): every decision permits.
  explicit Gate(const Config& config);

  bool enabled() const { return enabled_; }
  // Told of every decision made from a patient's Consents (for the metrics); set-up only.
  void set_decision_observer(std::function<void(const ConsentDecision&)> observer) {
    observer_ = std::move(observer);
  }

  // "Patient/<id>" of the patient whose data `resource` is: a Patient itself, or the reference in its
  // `patient` or `subject`; empty when none (or when it cannot be told, see names_unknown_patient).
  static std::string patient_of(const fhir::Node& resource);
  // Whether `resource` is some patient's data that the gate cannot attribute: its `patient` or `subject`
  // is a reference that is not a local Patient/<id> nor a local reference to another type (an absolute
  // URL, a contained #id, an identifier only). Such a record is only its supplier's: nobody's Consent can
  // be found to share it, whatever the policy.
  static bool names_unknown_patient(const fhir::Node& resource);

  // May the caller see `resource`? `action` is the consentaction asked about (access for reads, and for
  // the live record a write would change). Errors: busy when the patient's Consents cannot be read.
  Result<ConsentDecision> decide(const Caller& caller, const fhir::Node& resource, ConsentSource& consents,
                                 std::int64_t now_ms, std::string_view action = "access") const;
  // The same for a stored live version, parsing only what the decision needs (a Patient's meta).
  Result<ConsentDecision> decide_stored(const Caller& caller, const store::VersionRecord& version,
                                        ConsentSource& consents, std::int64_t now_ms) const;

  // Rule 1 of docs/security.md: a write of a patient-privacy Consent — `held` its live version (null when
  // there is none), `incoming` what it becomes (null for a deletion) — is accepted only from a consent
  // registrar or the privacy officer. Errors: forbidden. Always Ok with security off, and for writes that
  // touch no privacy Consent.
  Status may_record(const Caller& caller, const fhir::Node* held, const fhir::Node* incoming) const;
  // A Consent about a patient's privacy: its scope says patient-privacy or a category is LOINC 59284-0,
  // whatever its status (so that a status change or a change of scope is judged too).
  static bool is_privacy_consent(const fhir::Node& resource);

 private:
  Result<ConsentDecision> decide_patient(const Caller& caller, const std::string& patient,
                                         std::string_view type, bool supplier, ConsentSource& consents,
                                         std::int64_t now_ms, std::string_view action) const;
  std::shared_ptr<const fhir::Node> parsed_consent(std::int64_t version_row, const std::string& body) const;

  bool enabled_;
  ConsentPolicy policy_;
  std::function<void(const ConsentDecision&)> observer_;
  mutable std::mutex mutex_;
  // Parsed Consents by (version row id, hash of the text).
  mutable std::unordered_map<std::string, std::shared_ptr<const fhir::Node>> parsed_;
};

}  // namespace fhirgate::gateway
