#pragma once
// Inbound HL7 v2: one received message in, what became of it out, whatever way it came — an MLLP
// listener (V2Job, the chain below), POST /$ingest (rest/ingest.cpp) or an operator's retry of a kept
// message (rest/journal_api.cpp). They share the stages here and differ only in how they answer (ACK
// frames, or a transaction-response Bundle) and, for a retry, in who the AuditEvent names.
//
//   receive -> map (worker) -> commit -> acknowledge -> finish
//
//  - receive: the message parsed; its partner: the listener's (a bound listener accepts any sending
//    facility), the token's, or the one whose sending facilities include MSH-4.1 (an unknown sender is
//    rejected); version, type and event checked (ADT A01 A04 A05 A08 A28 A31 A40);
//  - map, on a worker: ADT to Patient with the partner's mapping, validated against R4 and the configured
//    Patient profiles within the budget, checked storable;
//  - commit, one transaction: a re-send is recognised by (partner, MSH-4, MSH-10) of an applied message
//    and by its content without MSH-7 and MSH-10 — the same content is acknowledged again and not
//    applied; another message under a used control id is refused (AE, ERR naming MSH-10). Otherwise the
//    Patient is upserted by identity (or A40 merged) through stages::plan_write, which asks the sending
//    partner's agreement (create, update) and the gate; a match the partner may not see is held and
//    acknowledged as applied. The message is kept in the inbound log with its outcome, with its
//    AuditEvent and journal entry (pipeline/record.hpp);
//  - acknowledge: v2_acks (original or enhanced mode); the ACK code comes from the outcome's error code
//    through the one error table (fhir/result.hpp v2_ack_code).
//
// Thread-safe: the service is immutable after start-up.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/result.hpp"
#include "fhir/search_params.hpp"
#include "fhir/validator.hpp"
#include "gateway/config/config.hpp"
#include "gateway/net/job.hpp"
#include "gateway/ops/observability.hpp"
#include "gateway/pipeline/chain.hpp"
#include "gateway/stages/write.hpp"
#include "mappers/adt_patient.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::gateway::inbound {

struct V2Partner {
  const PartnerConfig* config = nullptr;        // the configured partner (the gate's caller)
  std::vector<std::string> sending_facilities;  // MSH-4.1 values
  mappers::PartnerMapping mapping;
};

// What the HL7 v2 stages need, built once at start-up (server/). Everything must outlive the jobs.
struct V2Service {
  const fhir::Model& model;
  const fhir::Validator& validator;
  const fhir::SearchParamRegistry& registry;
  stages::WriteServices write;
  std::vector<V2Partner> partners;
  std::vector<std::string> patient_profiles;  // enforced on Patients written from v2
  bool secure = false;                        // security on: audit, supplier tags, agreement, the gate
  unsigned validation_budget_ms = 10000;
  GatewayObservers* observers = nullptr;
};

// What became of a message: the outcome vocabulary of HL7 v2, with its one to-string table.
enum class V2Status : std::uint8_t {
  applied,     // stored (or nothing to change)
  held,        // its match is one the partner may not see: held for a registrar, acknowledged as applied
  duplicate,   // applied before under the same control id with the same content: not applied again
  failed,      // could not be processed (mapping, validation, identity): kept in the log (AE)
  rejected,    // not accepted (unparseable, unknown sender, unsupported, a control id reused, the agreement)
  not_stored,  // the database could not take it: the sender should resend (AE / CE)
};
std::string_view to_string(V2Status status);

struct V2Written {
  std::string type;
  std::string id;
  std::int64_t version = 0;
  std::string outcome;  // created, updated, unchanged, held
};

struct V2Outcome {
  V2Status status = V2Status::applied;
  std::vector<V2Written> written;
  Error error;                 // failed, rejected, not_stored
  std::string error_code;      // HL7 table 0357
  std::string error_location;  // v2 location for ERR-2, e.g. PID[1]-3
};

struct V2Source {
  std::string channel;         // mllp, http
  std::string partner;         // the listener's (or token's) partner; empty = identify the sender by MSH-4
  std::string client_address;  // the sender's IP address, for the audit
  std::string purpose;         // purpose of use; empty = the partner's default
  std::int64_t retry_of = 0;   // the journal entry an operator retries with this message
  std::size_t size = 0;        // bytes of the whole message (0: the text's)
  std::size_t too_large = 0;   // when the message was longer than this limit: only its head is `text`
};

// One message's HL7 v2 state beside its Exchange.
struct V2Exchange {
  std::string text;
  V2Source source;
  std::shared_ptr<const mappers::Message> message;  // null when the text did not parse
  const V2Partner* partner = nullptr;
  bool merge = false;                         // ADT^A40
  std::optional<stages::WriteRequest> write;  // once mapped
  store::InboundMessage log;
  V2Outcome outcome;
};

// The stages, for every way a message comes in.
// receive: sets up `ex` (caller, origin, AuditEvent, journal entry) and the log row; a refusal fails `ex`.
void v2_receive(const V2Service& service, pipeline::Exchange& ex, V2Exchange& v2);
bool v2_wants_mapping(const V2Exchange& v2);
// map (worker): the write to make.
void v2_map(const V2Service& service, pipeline::Exchange& ex, V2Exchange& v2);
// The exchange's write plan: re-sends, the write, the inbound log (always written: the plan itself never
// fails; what fails is the exchange's error).
store::WritePlan v2_plan(const V2Service& service, pipeline::Exchange& ex, V2Exchange& v2);
// After the commit: the outcome the answer is made from.
void v2_settle(pipeline::Exchange& ex, V2Exchange& v2);

// The acknowledgements to send for a parsed message. Original mode (MSH-15 and MSH-16 empty): one
// application ACK, AA/AE/AR. Enhanced mode: a commit ACK (CA once the message is safely logged, CR when
// rejected, CE when it could not be stored) if MSH-15 asks for it (AL, ER, SU; empty = NE), then an
// application ACK if MSH-16 asks for it (empty = AL) and no CR/CE was sent.
std::vector<std::string> v2_acks(const mappers::Message& message, const V2Outcome& outcome);
// An AR for text that did not parse, built by hand when its MSH-10 can be read; empty otherwise.
std::string v2_raw_reject(std::string_view text, std::string_view reason);

// The MLLP entry point: a job per message (net::MllpHandler).
class V2Handler final : public net::MllpHandler {
 public:
  explicit V2Handler(const V2Service& service) : service_(service) {}
  std::unique_ptr<net::MllpJob> start(net::MllpMessage message) override;
  void framing_problem(const std::string& partner, const std::string& peer, std::uint16_t port,
                       const std::string& error) override;

 private:
  const V2Service& service_;
};

}  // namespace fhirgate::gateway::inbound
