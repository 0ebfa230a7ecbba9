#pragma once
// Inbound HL7 v2: one received message in, what became of it out. The MLLP listener and POST /$ingest
// both use it; they differ only in how they answer (ACK frames, or a transaction-response Bundle).
//
// The partner is the listener's (a bound listener accepts any sending facility) or, otherwise, the one
// whose configured sending facilities include MSH-4.1; an unknown sender is rejected.
// ADT A01 A04 A05 A08 A28 A31 are mapped to a Patient and validated on the calling thread; the write plan
// then, on the store's writer thread, finds the Patient already held (same NHS number, else the same
// partner identifier) and applies the update with v2 semantics (mappers/adt_update.hpp), or creates it.
// An update that changes nothing writes no new version. ADT A40 merges two held Patients: the one named
// by MRG-1 gets `link` replaced-by and active=false, the survivor (PID-3) gets `link` replaces.
//
// Every message is kept in the inbound log (store::InboundMessage) in the same transaction as its
// effect: applied, failed (with the error, for operators) or rejected; with `audit`, an AuditEvent
// records it there too, and the resources it writes carry the partner's supplier tag. A message whose
// (partner, MSH-4, MSH-10) was applied before is a re-send: it is answered as before and not applied again.
//
// handle_v2 is pure apart from new ids and the clock. Thread-safe (the Validator is).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/result.hpp"
#include "fhir/search_params.hpp"
#include "fhir/validator.hpp"
#include "gateway/security/security.hpp"
#include "gateway/store/writer.hpp"
#include "mappers/adt_patient.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::gateway {

struct V2Partner {
  std::string id;
  std::string name;
  std::vector<std::string> sending_facilities;  // MSH-4.1 values
  mappers::PartnerMapping mapping;
};

struct V2InboundContext {
  const fhir::Validator& validator;
  const fhir::SearchParamRegistry& registry;
  std::vector<V2Partner> partners;
  std::vector<std::string> patient_profiles;  // enforced on Patients written from v2
  bool audit = false;  // record an AuditEvent per message and tag what it writes with its supplier
  // Told of every mapped resource refused as invalid (its type), for the metrics; may be null.
  std::function<void(const std::string& type)> on_invalid = nullptr;
  // With audit (security) on: may the partner see the held record it updates (Security::may_see)? Its
  // update is applied either way; only where it may does it become a supplier of the record. Null: may.
  Security::MaySee may_see = nullptr;
};

struct V2Source {
  std::string channel;         // mllp, http
  std::string partner;         // the listener's (or token's) partner; empty = identify the sender by MSH-4
  std::string client_address;  // the sender's IP address, for the audit
  std::string purpose;         // purpose of use (HTTP header); empty = the partner's default
  std::string correlation_id;  // for the journal and the AuditEvent; empty = a new one
  std::int64_t retry_of = 0;   // the journal entry an operator retries with this message
};

// A resource a message wrote (or, for a re-send, had written).
struct V2Written {
  std::string type;
  std::string id;
  std::int64_t version = 0;
  std::string outcome;  // created, updated, unchanged
};

struct V2Outcome {
  enum class Kind {
    applied,     // stored (or nothing to change)
    duplicate,   // applied before under the same control id; not applied again
    failed,      // could not be processed (mapping, validation, unknown patient): kept in the log
    rejected,    // not accepted (unparseable, unknown sender, unsupported version or message type)
    not_stored,  // the database could not take it: the sender should resend
  };
  Kind kind = Kind::applied;
  std::vector<V2Written> written;
  Error error;                 // failed, rejected, not_stored
  std::string error_code;      // HL7 table 0357
  std::string error_location;  // v2 location for ERR-2, e.g. PID[1]-3
};

struct V2Reply {
  std::shared_ptr<const mappers::Message> message;  // null when the text did not parse
  // Logs the message and applies it; always set.
  store::WritePlan plan;
  // What became of the message, once the plan's commit outcome is known.
  std::function<V2Outcome(const Status& committed)> outcome;
};

// A message longer than the listener takes, of which only the head (its MSH segment) was kept.
struct V2TooLarge {
  std::size_t size = 0;   // bytes of the whole message
  std::size_t limit = 0;  // the most the listener takes (mllp.maxMessageBytes)
};

// With `too_large`, `text` is the message's head: the message is logged and journaled as rejected (HL7
// error 104) with its size, and answered by its MSH (AR, or CR in enhanced mode) when that parses.
V2Reply handle_v2(const V2InboundContext& context, std::string_view text, const V2Source& source,
                  const std::optional<V2TooLarge>& too_large = std::nullopt);

// The acknowledgements to send for a parsed message. Original mode (MSH-15 and MSH-16 empty): one
// application ACK, AA/AE/AR. Enhanced mode: a commit ACK (CA once the message is safely logged, CR when
// rejected, CE when it could not be stored) if MSH-15 asks for it (AL, ER, SU; empty = NE), then an
// application ACK if MSH-16 asks for it (empty = AL) and no CR/CE was sent.
std::vector<std::string> v2_acks(const mappers::Message& message, const V2Outcome& outcome);

// An AR for text that did not parse, built by hand when its MSH-10 can be read; empty otherwise.
std::string v2_raw_reject(std::string_view text, std::string_view reason);

}  // namespace fhirgate::gateway
