#include "gateway/routing/delivery_formats.hpp"

#include <cstdio>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "mappers/adt_patient.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

Node reference(const std::string& to) {
  Node r = Node::object();
  r.set("reference", Node::string(to));
  return r;
}

Node request(const std::string& method, const std::string& url) {
  Node r = Node::object();
  r.set("method", Node::string(method));
  r.set("url", Node::string(url));
  return r;
}

}  // namespace

std::string delivery_message_id(const store::Delivery& d) {
  return "delivery-" + std::to_string(d.id) + "-" + std::to_string(d.created_ms);
}

std::string resource_message(const store::Delivery& d, const DeliveryItem& item,
                             const PartnerConfig& receiver, const std::string& gateway_url) {
  const std::string id = delivery_message_id(d);
  const std::string reference_to = d.type + "/" + d.resource_id;
  Node header = Node::object();
  header.set("resourceType", Node::string("MessageHeader"));
  header.set("id", Node::string(id));
  Node& event = header.set("eventCoding", Node::object());
  event.set("system", Node::string(std::string(kResourceEventSystem)));
  event.set("code", Node::string(item.deleted ? "delete" : "update"));
  Node destination = Node::object();
  destination.set("name", Node::string(receiver.name.empty() ? receiver.id : receiver.name));
  destination.set("endpoint", Node::string(receiver.endpoint.fhir_base_url + "/$process-message"));
  header.set("destination", Node::array()).push(std::move(destination));
  Node& source = header.set("source", Node::object());
  source.set("name", Node::string("fhirgate"));
  source.set("endpoint", Node::string(gateway_url));
  header.set("focus", Node::array()).push(reference(reference_to));

  Node out = Node::object();
  out.set("resourceType", Node::string("Bundle"));
  out.set("id", Node::string(id));
  out.set("type", Node::string("message"));
  out.set("timestamp", Node::string(fhir::format_instant(d.created_ms)));
  Node& entries = out.set("entry", Node::array());
  Node first = Node::object();
  first.set("fullUrl", Node::string(gateway_url + "/MessageHeader/" + id));
  first.set("resource", std::move(header));
  entries.push(std::move(first));
  if (!item.deleted) {
    auto resource = fhir::parse_json(item.body);
    Node second = Node::object();
    second.set("fullUrl", Node::string(gateway_url + "/" + reference_to));
    second.set("resource", resource ? std::move(*resource) : Node::object());
    entries.push(std::move(second));
  }
  return fhir::write_json(out);
}

ReceiverVerdict read_message_response(int http_status, const std::string& body) {
  if (http_status < 200 || http_status >= 300) return {false, false, "HTTP " + std::to_string(http_status)};
  auto answer = fhir::parse_json(body);
  const Node* entries = answer ? answer->find("entry") : nullptr;
  const Node* header = entries && entries->is_array() && !entries->items().empty()
                           ? entries->items().front().find("resource")
                           : nullptr;
  // A receiver that answers 2xx without a response message took the message.
  if (!header || header->string_at("resourceType") != "MessageHeader" || !header->find("response"))
    return {true, false, ""};
  const std::string code(header->find("response")->string_at("code"));
  if (code == "ok") return {true, false, ""};
  return {false, code == "fatal-error", "response message: " + (code.empty() ? "no code" : code)};
}

Result<std::string> patient_adt(const store::Delivery& d, const DeliveryItem& item,
                                const PartnerConfig& receiver) {
  if (d.type != "Patient" || item.deleted)
    return Error::make(ErrorCode::invalid_input, item.deleted ? "a deletion has no HL7 v2 ADT^A31 form"
                                                              : d.type + " has no HL7 v2 ADT form");
  auto patient = fhir::parse_json(item.body);
  if (!patient) return patient.error();
  mappers::AdtHeader header;
  header.sending_application = "FHIRGATE";
  header.sending_facility = "FHIRGATE";
  header.receiving_application = receiver.endpoint.receiving_application;
  header.receiving_facility =
      receiver.endpoint.receiving_facility.empty() ? receiver.ods_code : receiver.endpoint.receiving_facility;
  header.control_id = "FG" + std::to_string(d.id);  // the same for every attempt: a resend, not a new event
  header.timestamp = mappers::fhir_to_v2_date_time(fhir::format_instant(d.created_ms));
  return mappers::patient_to_adt(*patient, "A31", header,
                                 {receiver.nhs_number_authority, receiver.local_identifier_system});
}

ReceiverVerdict read_ack(const std::string& ack) {
  auto message = mappers::Message::parse(ack);
  if (!message) return {false, false, "unreadable ACK: " + message.error().issues.front().diagnostics};
  const std::string code = message->value("MSA-1");
  if (code == "AA" || code == "CA") return {true, false, ""};
  const std::string text = message->value("MSA-3");
  const std::string error =
      code.empty() ? "ACK without MSA-1" : "ACK " + code + (text.empty() ? "" : ": " + text);
  return {false, code == "AR" || code == "CR", error};
}

std::string drop_file_name(const store::Delivery& d) {
  char number[24];
  std::snprintf(number, sizeof number, "%012lld", static_cast<long long>(d.id));
  return std::string(number) + "-" + (is_message(d) ? "message" : d.type) + "-" + d.resource_id + ".json";
}

std::string drop_file_content(const store::Delivery& d, const DeliveryItem& item) {
  if (is_message(d)) return item.body;
  Node out = Node::object();
  out.set("resourceType", Node::string("Bundle"));
  out.set("id", Node::string(delivery_message_id(d)));
  out.set("type", Node::string("transaction"));
  out.set("timestamp", Node::string(fhir::format_instant(d.created_ms)));
  Node entry = Node::object();
  const std::string url = d.type + "/" + d.resource_id;
  if (!item.deleted) {
    auto resource = fhir::parse_json(item.body);
    entry.set("resource", resource ? std::move(*resource) : Node::object());
  }
  entry.set("request", request(item.deleted ? "DELETE" : "PUT", url));
  out.set("entry", Node::array()).push(std::move(entry));
  return fhir::write_json(out);
}

}  // namespace fhirgate::gateway
