#pragma once
// Inbound HL7 v2 (the MLLP listener's logic, without I/O): one received message in, one ACK out.
//
// ADT A01 A04 A05 A08 A28 A31 are mapped to a Patient, validated and stored: an existing Patient with the
// same NHS number (else the same first local identifier) is updated, otherwise a new one is created, so
// repeated feeds never duplicate. Every other message type or trigger (A40 merges included, for now) is
// answered AR "unsupported message type". A message that does not parse gets a hand-built AR when its
// MSH-10 can be found; otherwise the connection is closed.
//
// handle_v2 is pure apart from new ids and the clock; the write happens in the returned plan on the store's
// writer thread, and the ACK for a stored message is built by after_commit once the outcome is durable.
// Thread-safe: handle_v2 may run concurrently (the Validator is thread-safe).
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/result.hpp"
#include "fhir/search_params.hpp"
#include "fhir/validator.hpp"
#include "gateway/store/writer.hpp"
#include "mappers/adt_patient.hpp"

namespace fhirgate::gateway {

struct V2InboundContext {
  const fhir::Validator& validator;
  const fhir::SearchParamRegistry& registry;
  mappers::PartnerMapping mapping;
  std::vector<std::string> patient_profiles;  // enforced on Patients written from v2
};

struct V2Reply {
  std::string ack;     // the ACK to send when there is no plan
  bool close = false;  // nothing could be acknowledged: close the connection
  store::WritePlan plan;
  std::function<std::string(const Status&)> after_commit;  // the ACK once the plan's outcome is known
};

V2Reply handle_v2(const V2InboundContext& context, std::string_view text);

}  // namespace fhirgate::gateway
