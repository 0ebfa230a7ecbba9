#pragma once
// What a delivery puts on the wire in each route format, and how a receiver's answer is read. Pure: no
// I/O; the delivery workers (delivery.hpp) do the sending.
//  - fhir-rest: the resource itself (PUT <base>/<type>/<id>, DELETE for a deletion).
//  - fhir-message: a FHIR message is passed on as it came. A resource becomes a message of its own:
//    MessageHeader (event `update` or `delete` of the code system kResourceEventSystem, focus the
//    resource) then the resource; POST <base>/$process-message. The receiver's response message must
//    say ok.
//  - hl7v2-mllp: a Patient becomes ADT^A31 (mappers/adt_patient.hpp); MSA-1 of the ACK decides.
//  - file: a one-entry transaction Bundle (PUT with the resource, or DELETE) that the receiver can POST
//    to its own server; a FHIR message as it came.
// Ids and timestamps of what is built are derived from the delivery (its id, and its creation: when the
// event happened), so a retry sends the same bytes again and a receiver can recognise it.
#include <string>
#include <string_view>

#include "fhir/result.hpp"
#include "gateway/config/config.hpp"
#include "gateway/store/outbox.hpp"

namespace fhirgate::gateway {

inline constexpr std::string_view kResourceEventSystem = "urn:fhirgate:resource-event";

// The version or message a delivery is about: the stored version's JSON or the delivery's payload.
struct DeliveryItem {
  std::string body;  // JSON; empty for a deletion
  bool deleted = false;
};

// How a receiver's answer counts.
struct ReceiverVerdict {
  bool accepted = false;
  bool permanent = false;  // refused for good (retrying the same content will not help)
  std::string error;       // why not accepted, for the operator
};

// A FHIR message passed on (its payload is the message), rather than a resource.
inline bool is_message(const store::Delivery& delivery) {
  return !delivery.event.empty();
}

// The stable id of what a delivery builds: delivery-<id>-<created>.
std::string delivery_message_id(const store::Delivery& delivery);

// fhir-message for a resource: the message Bundle. `gateway_url` names the gateway as source.
std::string resource_message(const store::Delivery& delivery, const DeliveryItem& item,
                             const PartnerConfig& receiver, const std::string& gateway_url);
// The HTTP answer to POST $process-message: 2xx with a response message whose code is ok. A fatal-error
// response is permanent; transient-error and other failures are retried.
ReceiverVerdict read_message_response(int http_status, const std::string& body);

// hl7v2-mllp: ADT^A31 for the Patient, control id from the delivery. Errors: invalid_input for what has no
// ADT form (a deletion, another type).
Result<std::string> patient_adt(const store::Delivery& delivery, const DeliveryItem& item,
                                const PartnerConfig& receiver);
// The ACK: AA/CA accepted; AR/CR refused for good; AE/CE and anything unreadable retried.
ReceiverVerdict read_ack(const std::string& ack);

// file: the file's name in the drop folder and its content.
std::string drop_file_name(const store::Delivery& delivery);
std::string drop_file_content(const store::Delivery& delivery, const DeliveryItem& item);

}  // namespace fhirgate::gateway
