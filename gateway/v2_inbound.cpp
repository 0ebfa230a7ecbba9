#include "gateway/v2_inbound.hpp"

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>

#include "fhir/search_query.hpp"
#include "gateway/ids.hpp"
#include "gateway/store/store.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

std::string v2_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

std::string ack_control_id() {
  return new_resource_id().substr(0, 20);
}

std::string ack(const mappers::Message& in, const Error& error, const std::string& error_code) {
  mappers::AckOptions options{ack_control_id(), v2_now(), mappers::AckError{}};
  options.error->code = error_code;
  if (!error.issues.empty()) options.error->location = error.issues.front().expression;
  if (options.error->location.find('-') == std::string::npos) options.error->location.clear();
  const std::string text = error.issues.empty() ? std::string("error") : error.issues.front().diagnostics;
  return mappers::make_ack(in, v2_ack_code(error.code), text, options);
}

std::string ack_ok(const mappers::Message& in) {
  return mappers::make_ack(in, "AA", "", mappers::AckOptions{ack_control_id(), v2_now(), std::nullopt});
}

// For text that does not parse: an AR built by hand when MSH-10 is readable.
std::optional<std::string> raw_reject(std::string_view text, std::string_view reason) {
  if (text.size() < 4 || text.substr(0, 3) != "MSH") return std::nullopt;
  const char sep = text[3];
  const auto end = text.find_first_of("\r\n");
  const std::string_view msh = text.substr(0, end);
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (pos <= msh.size()) {
    const auto next = msh.find(sep, pos);
    fields.push_back(msh.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  // fields[0] = "MSH", fields[n - 1] = MSH-n (MSH-1 is the separator itself).
  if (fields.size() < 10 || fields[9].empty()) return std::nullopt;
  std::string control_id(fields[9]);
  for (char& c : control_id)
    if (c == '\r' || c == '\n' || c == '|' || c == '^' || c == '~' || c == '\\' || c == '&') c = ' ';
  std::string out = "MSH|^~\\&|FHIRGW||||" + v2_now() + "||ACK|" + ack_control_id() + "|P|2.5.1\r";
  out += "MSA|AR|" + control_id + "|" + std::string(reason) + "\r";
  return out;
}

bool is_patient_trigger(const mappers::MessageType& type) {
  if (type.code != "ADT") return false;
  for (const char* t : {"A01", "A04", "A05", "A08", "A28", "A31"})
    if (type.trigger == t) return true;
  return false;
}

std::optional<fhir::SearchQuery> identifier_query(const fhir::SearchParamRegistry& registry,
                                                  const std::string& system, const std::string& value) {
  const std::string token = system.empty() ? value : system + "|" + value;
  auto params = fhir::parse_query_string("identifier=" + fhir::url_encode(token));
  if (!params) return std::nullopt;
  auto query = fhir::parse_search(registry, "Patient", *params, fhir::SearchOptions{true, 2, 2, 0});
  if (!query || query->clauses.empty()) return std::nullopt;
  return std::move(*query);
}

}  // namespace

V2Reply handle_v2(const V2InboundContext& context, std::string_view text) {
  V2Reply reply;
  auto parsed = mappers::Message::parse(text);
  if (!parsed) {
    auto rejected = raw_reject(text, "message could not be parsed");
    if (rejected)
      reply.ack = std::move(*rejected);
    else
      reply.close = true;
    return reply;
  }
  auto message = std::make_shared<const mappers::Message>(std::move(*parsed));
  if (!mappers::is_supported_version(message->version())) {
    reply.ack = mappers::make_ack(
        *message, "AR", "unsupported version",
        mappers::AckOptions{ack_control_id(), v2_now(), mappers::AckError{"MSH[1]-12", "203", "E"}});
    return reply;
  }
  if (!is_patient_trigger(message->message_type())) {
    reply.ack = mappers::make_ack(
        *message, "AR", "unsupported message type",
        mappers::AckOptions{ack_control_id(), v2_now(), mappers::AckError{"MSH[1]-9", "200", "E"}});
    return reply;
  }
  auto patient = mappers::adt_to_patient(*message, context.mapping);
  if (!patient) {
    reply.ack = ack(*message, patient.error(), "207");
    return reply;
  }
  fhir::ValidationOptions options;
  options.profiles = context.patient_profiles;
  auto validation = context.validator.validate(*patient, options);
  if (validation.has_errors()) {
    Error invalid{ErrorCode::unprocessable, {}, "validation failed"};
    for (auto& issue : validation.issues)
      if (issue.severity == "error" || issue.severity == "fatal") invalid.issues.push_back(std::move(issue));
    reply.ack = ack(*message, invalid, "207");
    return reply;
  }

  std::optional<fhir::SearchQuery> by_nhs, by_local;
  if (const Node* ids = patient->find("identifier"); ids && ids->is_array()) {
    for (const auto& id : ids->items()) {
      const std::string system(id.string_at("system"));
      const std::string value(id.string_at("value"));
      if (value.empty()) continue;
      if (system == mappers::kNhsNumberSystem) {
        if (!by_nhs) by_nhs = identifier_query(context.registry, system, value);
      } else if (!by_local) {
        by_local = identifier_query(context.registry, system, value);
      }
    }
  }
  if (!by_nhs && !by_local) {
    reply.ack = ack(*message,
                    Error::make(ErrorCode::invalid_input, "no usable patient identifier", "PID[1]-3"), "101");
    return reply;
  }

  const std::string new_id = new_resource_id();
  reply.plan = [by_nhs = std::move(by_nhs), by_local = std::move(by_local), new_id,
                resource = std::move(*patient)](store::WriteTxn& txn) mutable -> Status {
    std::vector<std::string> found;
    if (by_nhs) found = txn.matching_ids(*by_nhs, 2);
    if (found.empty() && by_local) found = txn.matching_ids(*by_local, 2);
    if (found.size() > 1) {
      return Error::make(ErrorCode::conflict, "more than one Patient has this identifier", "PID[1]-3");
    }
    if (found.empty())
      txn.put("Patient", new_id, std::move(resource), "POST");
    else
      txn.put("Patient", found.front(), std::move(resource), "PUT");
    return Ok{};
  };
  reply.after_commit = [message](const Status& status) {
    if (status) return ack_ok(*message);
    return ack(*message, status.error(), "207");
  };
  return reply;
}

}  // namespace fhirgate::gateway
