#include "gateway/inbound/v2_job.hpp"

#include <openssl/evp.h>

#include <chrono>
#include <ctime>

#include "fhir/json.hpp"
#include "fhir/storable.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/pipeline/record.hpp"
#include "gateway/security/agreement.hpp"
#include "gateway/stages/identity.hpp"
#include "mappers/adt_update.hpp"

namespace fhirgate::gateway::inbound {
namespace {

using fhir::Node;
using pipeline::Exchange;

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

std::string diagnostics_of(const Error& e) {
  return e.issues.empty() ? std::string("error") : e.issues.front().diagnostics;
}

// The MSH fields of text that does not parse: [0] = "MSH", [n - 1] = MSH-n (MSH-1 is the separator).
std::vector<std::string_view> raw_msh_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  if (text.size() < 4 || text.substr(0, 3) != "MSH") return fields;
  const char sep = text[3];
  const std::string_view msh = text.substr(0, text.find_first_of("\r\n"));
  std::size_t pos = 0;
  while (pos <= msh.size()) {
    const auto next = msh.find(sep, pos);
    fields.push_back(msh.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return fields;
}

std::string written_json(const std::vector<V2Written>& written) {
  Node array = Node::array();
  for (const auto& w : written) {
    Node o = Node::object();
    o.set("type", Node::string(w.type));
    o.set("id", Node::string(w.id));
    o.set("version", Node::number(std::to_string(w.version)));
    o.set("outcome", Node::string(w.outcome));
    array.push(std::move(o));
  }
  return fhir::write_json(array);
}

std::vector<V2Written> written_from_json(std::string_view text) {
  std::vector<V2Written> out;
  auto doc = fhir::parse_json(text);
  if (!doc || !doc->is_array()) return out;
  for (const auto& o : doc->items()) {
    const Node* version = o.find("version");
    out.push_back({std::string(o.string_at("type")), std::string(o.string_at("id")),
                   version && version->is_number() ? std::stoll(version->text()) : 0,
                   std::string(o.string_at("outcome"))});
  }
  return out;
}

// What identifies a message's content apart from its re-send: SHA-256 of the message without MSH-7
// (when it was sent) and MSH-10 (its control id), in hex.
std::string content_hash(const mappers::Message& message) {
  std::string text(message.serialize());
  const auto msh_end = text.find('\r');
  std::string msh = text.substr(0, msh_end);
  if (msh.size() > 4) {
    const char sep = msh[3];
    std::vector<std::string> fields;
    std::size_t pos = 0;
    for (;;) {
      const auto next = msh.find(sep, pos);
      fields.push_back(msh.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
      if (next == std::string::npos) break;
      pos = next + 1;
    }
    // fields[0] = "MSH", fields[n - 1] = MSH-n.
    if (fields.size() > 6) fields[6].clear();  // MSH-7
    if (fields.size() > 9) fields[9].clear();  // MSH-10
    msh.clear();
    for (std::size_t i = 0; i < fields.size(); ++i) msh += (i ? std::string(1, sep) : "") + fields[i];
  }
  const std::string rest = msh_end == std::string::npos ? std::string() : text.substr(msh_end);
  const std::string canonical = msh + rest;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

// A refusal of the message: the exchange's error, with its HL7 error code and location for ERR.
void refuse(Exchange& ex, V2Exchange& v2, ErrorCode code, std::string why, std::string hl7_code,
            std::string location, std::string summary = {}) {
  Error e = Error::make(code, std::move(why), location);
  e.internal = summary.empty() ? "HL7 error " + hl7_code + (location.empty() ? "" : " at " + location)
                               : "HL7 error " + hl7_code + ": " + summary;
  v2.outcome.error_code = std::move(hl7_code);
  v2.outcome.error_location = std::move(location);
  ex.fail(std::move(e));
}

// The HL7 error code (table 0357) of an error raised while writing.
std::string hl7_code_of(const Error& e) {
  switch (e.code) {
    case ErrorCode::not_found:
      return "204";
    case ErrorCode::conflict:
    case ErrorCode::precondition_failed:
      return "205";
    default:
      return "207";
  }
}

const V2Partner* find_partner(const V2Service& service, const V2Source& source,
                              const mappers::Message& message) {
  if (!source.partner.empty()) {
    for (const auto& p : service.partners)
      if (p.config->id == source.partner) return &p;
    return nullptr;
  }
  const std::string facility = message.value("MSH-4.1");
  if (facility.empty()) return nullptr;
  for (const auto& p : service.partners)
    for (const auto& f : p.sending_facilities)
      if (f == facility) return &p;
  return nullptr;
}

// MSH-15/16 conditions (HL7 table 0155).
bool wanted(std::string_view condition, bool success) {
  if (condition == "NE") return false;
  if (condition == "ER") return !success;
  if (condition == "SU") return success;
  return true;  // AL and anything unknown
}

std::string make(const mappers::Message& in, std::string_view code, const V2Outcome& o,
                 bool application_ack) {
  mappers::AckOptions options;
  options.control_id = ack_control_id();
  options.timestamp = v2_now();
  std::string text;
  const bool success =
      o.status == V2Status::applied || o.status == V2Status::held || o.status == V2Status::duplicate;
  if (!success && code != "CA") {  // a commit accept says only that the message is safely kept
    text = diagnostics_of(o.error);
    options.error = mappers::AckError{o.error_location, o.error_code, "E"};
  }
  if (application_ack) {
    options.accept_ack_type = "NE";
    options.application_ack_type = "NE";
  }
  return mappers::make_ack(in, code, text, options);
}

}  // namespace

std::string_view to_string(V2Status status) {
  switch (status) {
    case V2Status::applied:
      return "applied";
    case V2Status::held:
      return "held";
    case V2Status::duplicate:
      return "duplicate";
    case V2Status::failed:
      return "failed";
    case V2Status::rejected:
      return "rejected";
    case V2Status::not_stored:
      return "not-stored";
  }
  return "failed";
}

void v2_receive(const V2Service& service, Exchange& ex, V2Exchange& v2) {
  const V2Source& source = v2.source;
  if (ex.correlation_id.empty()) ex.correlation_id = new_resource_id();
  ex.client_address = source.client_address;
  if (service.secure) {
    AuditInput& audit = ex.audit.emplace();
    audit.correlation_id = ex.correlation_id;
    audit.channel = "hl7v2";
    audit.interaction = "message";
    if (source.channel == "http") audit.operation = "$ingest";
    audit.client_address = source.client_address;
    audit.purpose = source.purpose.empty() ? "TREAT" : source.purpose;
  }
  v2.log.channel = source.channel;
  v2.log.format = "hl7v2";
  v2.log.partner = source.partner;
  v2.log.body = v2.text;
  auto& journal = ex.journal.emplace();
  journal.correlation_id = ex.correlation_id;
  journal.received_ms = ex.received_ms;
  journal.partner = source.partner;
  journal.direction = "in";
  journal.transport = source.channel;
  journal.format = "hl7v2";
  journal.type = "HL7 v2";
  journal.size = static_cast<std::int64_t>(source.size ? source.size : v2.text.size());
  journal.has_payload = true;
  journal.payload = v2.text;
  journal.retry_of = source.retry_of;
  ex.origin = source.partner;

  const std::string too_large_reason =
      source.too_large
          ? "message of " + std::to_string(source.size) + " bytes is longer than the " +
                std::to_string(source.too_large) + " this listener takes (mllp.maxMessageBytes); " +
                "only its first segment was kept"
          : std::string();
  auto parsed = mappers::Message::parse(v2.text);
  if (!parsed) {
    const auto fields = raw_msh_fields(v2.text);
    if (fields.size() > 3) v2.log.sender = std::string(fields[3]);
    if (fields.size() > 9) v2.log.control_id = std::string(fields[9]);
    if (source.too_large)
      return refuse(ex, v2, ErrorCode::payload_too_large, too_large_reason, "104", "", too_large_reason);
    return refuse(ex, v2, ErrorCode::invalid_input,
                  "message could not be parsed: " + diagnostics_of(parsed.error()), "102", "",
                  "message could not be parsed");
  }
  v2.message = std::make_shared<const mappers::Message>(std::move(*parsed));
  const mappers::Message& message = *v2.message;
  const mappers::MessageType type = message.message_type();
  v2.log.sender = message.value("MSH-4.1");
  v2.log.control_id = message.control_id();
  v2.log.message_type = type.code + "^" + type.trigger;
  journal.type = v2.log.message_type;

  v2.partner = find_partner(service, source, message);
  if (v2.partner) {
    const PartnerConfig& partner = *v2.partner->config;
    v2.log.partner = journal.partner = ex.origin = partner.id;
    if (service.secure) {
      ex.caller.partner = &partner;
      auto purpose = purpose_of(partner, source.purpose);
      ex.caller.purpose = purpose ? *purpose : purpose_of(partner, "").value();
    }
  }
  if (ex.audit) {
    ex.audit->message_control_id = v2.log.control_id;
    if (v2.partner) {
      ex.audit->client_id = v2.partner->config->id;
      ex.audit->client_reference = organization_of(*v2.partner->config);
      ex.audit->client_display = v2.partner->config->name;
    }
  }
  if (source.too_large)
    return refuse(ex, v2, ErrorCode::payload_too_large, too_large_reason, "104", "", too_large_reason);
  if (!mappers::is_supported_version(message.version()))
    return refuse(ex, v2, ErrorCode::invalid_input, "unsupported version", "203", "MSH[1]-12",
                  "unsupported version");
  if (!v2.partner)
    return refuse(ex, v2, ErrorCode::invalid_input, "unknown sending facility", "103", "MSH[1]-4",
                  "unknown sending facility");
  v2.merge = type.code == "ADT" && type.trigger == "A40";
  if (type.code != "ADT")
    return refuse(ex, v2, ErrorCode::invalid_input, "unsupported message type", "200", "MSH[1]-9",
                  "unsupported message type");
  if (!v2.merge && !mappers::is_patient_trigger(type.trigger))
    return refuse(ex, v2, ErrorCode::invalid_input, "unsupported event", "201", "MSH[1]-9.2",
                  "unsupported event");
}

bool v2_wants_mapping(const V2Exchange& v2) {
  return v2.message && v2.partner;
}

void v2_map(const V2Service& service, Exchange& ex, V2Exchange& v2) {
  const mappers::Message& message = *v2.message;
  stages::WriteRequest w;
  w.type = "Patient";
  w.entry = "hl7v2";
  w.check_agreement = service.secure;
  w.message = v2.message;
  w.context = v2.text;
  w.merge = stages::Merge::hl7v2;
  if (v2.merge) {
    auto request = mappers::adt_merge(message, v2.partner->mapping);
    if (!request) {
      const std::string where =
          request.error().issues.empty() ? "" : request.error().issues.front().expression;
      return refuse(ex, v2, ErrorCode::unprocessable, diagnostics_of(request.error()), "101",
                    where == "MRG" || where == "PID" ? "" : where, "a required field is missing");
    }
    w.kind = stages::WriteRequest::Kind::link;
    w.merge = stages::Merge::link;
    w.identity = stages::identity_queries(service.registry, "Patient", request->surviving_identifiers);
    w.replaced = stages::identity_queries(service.registry, "Patient", request->replaced_identifiers);
    v2.write = std::move(w);
    ex.mark("mapped");
    return;
  }
  auto patient = mappers::adt_to_patient(message, v2.partner->mapping);
  if (!patient)
    return refuse(ex, v2, ErrorCode::unprocessable, diagnostics_of(patient.error()), "100", "",
                  "not mappable");
  fhir::ValidationOptions options;
  options.profiles = service.patient_profiles;
  options.deadline = ex.started + std::chrono::milliseconds(service.validation_budget_ms);
  auto validation = service.validator.validate(*patient, options);
  if (validation.has_errors()) {
    if (service.observers && !validation.budget_exceeded) service.observers->on_invalid("Patient");
    Error invalid{ErrorCode::unprocessable, {}, "HL7 error 207: the mapped Patient is not valid"};
    for (auto& issue : validation.issues)
      if (issue.severity == "error" || issue.severity == "fatal") invalid.issues.push_back(std::move(issue));
    if (!invalid.issues.empty() && !invalid.issues.front().expression.empty())
      invalid.internal += " at " + invalid.issues.front().expression;
    v2.outcome.error_code = "207";
    return ex.fail(std::move(invalid));
  }
  if (Status storable = fhir::check_storable(service.model, *patient); !storable) {
    Error e = storable.error();
    e.internal = "HL7 error 102: a value cannot be stored as it is";
    if (!e.issues.empty() && !e.issues.front().expression.empty())
      e.internal += " at " + e.issues.front().expression;
    v2.outcome.error_code = "102";
    return ex.fail(std::move(e));
  }
  w.kind = stages::WriteRequest::Kind::upsert;
  w.identity = stages::identity_queries(service.registry, "Patient", stages::identifiers_of(*patient));
  if (w.identity.empty())
    return refuse(ex, v2, ErrorCode::unprocessable, "no usable patient identifier", "101", "PID[1]-3",
                  "no usable patient identifier");
  w.id = new_resource_id();
  w.resource = std::move(*patient);
  v2.write = std::move(w);
  ex.mark("mapped");
}

store::WritePlan v2_plan(const V2Service& service, Exchange& ex, V2Exchange& v2) {
  // What every message leaves besides its AuditEvent and journal entry: its inbound log row, whatever
  // became of it.
  ex.before_record = [&v2, &ex](store::WriteTxn& txn) {
    v2_settle(ex, v2);
    if (v2.outcome.status == V2Status::duplicate) return;
    v2.log.status = v2.outcome.status == V2Status::applied || v2.outcome.status == V2Status::held ? "applied"
                    : v2.outcome.status == V2Status::rejected                                     ? "rejected"
                                                                                                  : "failed";
    v2.log.detail = v2.log.status == "applied"
                        ? written_json(v2.outcome.written)
                        : v2.outcome.error_code + " " + diagnostics_of(v2.outcome.error);
    txn.log_inbound(v2.log);
  };
  if (!v2.write) return nullptr;
  if (v2.message) v2.log.content_hash = content_hash(*v2.message);
  return [&service, &ex, &v2](store::WriteTxn& txn) -> Status {
    if (auto applied = txn.applied_message(v2.log.partner, v2.log.sender, v2.log.control_id)) {
      if (!applied->content_hash.empty() && applied->content_hash != v2.log.content_hash) {
        Error e =
            Error::make(ErrorCode::unprocessable,
                        "control id " + v2.log.control_id +
                            " was used by an earlier message with other content: a new message needs a new "
                            "MSH-10",
                        "MSH[1]-10");
        e.internal = "HL7 error 205: control id reused for other content";
        v2.outcome.error_code = "205";
        v2.outcome.error_location = "MSH[1]-10";
        return e;
      }
      v2.outcome.status = V2Status::duplicate;
      v2.outcome.written = written_from_json(applied->detail);
      if (ex.journal) ex.journal->error = "a re-send of message " + v2.log.control_id + ": not applied again";
      return Ok{};
    }
    auto done = stages::plan_write(txn, service.write, ex, *v2.write);
    if (!done) {
      if (v2.outcome.error_code.empty()) v2.outcome.error_code = hl7_code_of(done.error());
      if (v2.outcome.error_location.empty() && !done.error().issues.empty())
        v2.outcome.error_location = done.error().issues.front().expression;
      Error e = done.error();
      if (e.issues.size() == 1 && e.issues.front().expression.find('[') != std::string::npos)
        e.issues.front().expression.clear();  // an HL7 location: ERR-2's, not a FHIRPath
      e.internal = "HL7 error " + v2.outcome.error_code + ": " +
                   (e.internal.empty() ? issue_type(e.code) : e.internal);
      return e;
    }
    using Done = stages::WriteOutcome::Kind;
    auto outcome_of = [](Done kind) {
      switch (kind) {
        case Done::created:
          return "created";
        case Done::updated:
          return "updated";
        case Done::held:
          return "held";
        default:
          return "unchanged";
      }
    };
    if (done->kind == Done::held) {
      v2.outcome.status = V2Status::held;
      return Ok{};
    }
    if (done->record)
      v2.outcome.written.push_back(
          {done->record->type, done->record->id, done->record->version, outcome_of(done->kind)});
    for (const auto& also : done->also)
      v2.outcome.written.push_back({also.type, also.id, also.version, outcome_of(done->kind)});
    if (ex.audit) {
      const bool wrote = done->kind == Done::created || done->kind == Done::updated;
      ex.audit->interaction = done->kind == Done::created ? "create" : wrote ? "update" : "message";
      for (const auto& w : v2.outcome.written)
        if (w.type == "Patient" && "Patient/" + w.id != ex.audit->patient_reference)
          ex.seen_patients.push_back("Patient/" + w.id);
    }
    return Ok{};
  };
}

void v2_settle(Exchange& ex, V2Exchange& v2) {
  V2Outcome& o = v2.outcome;
  if (ex.error) {
    o.error = *ex.error;
    const bool stored_nothing = ex.error->code == ErrorCode::busy || ex.error->code == ErrorCode::internal;
    o.status = stored_nothing && !ex.committed                         ? V2Status::not_stored
               : std::string_view(v2_ack_code(ex.error->code)) == "AR" ? V2Status::rejected
                                                                       : V2Status::failed;
    if (o.error_code.empty()) o.error_code = stored_nothing ? "207" : hl7_code_of(*ex.error);
    return;
  }
  if (o.status != V2Status::duplicate && o.status != V2Status::held) o.status = V2Status::applied;
}

std::vector<std::string> v2_acks(const mappers::Message& message, const V2Outcome& outcome) {
  const std::string accept = message.value("MSH-15");
  const std::string application = message.value("MSH-16");
  const bool success = outcome.status == V2Status::applied || outcome.status == V2Status::held ||
                       outcome.status == V2Status::duplicate;
  const std::string app_code = success ? "AA" : v2_ack_code(outcome.error.code);
  if (accept.empty() && application.empty()) return {make(message, app_code, outcome, false)};

  const char* commit_code = "CA";
  if (outcome.status == V2Status::rejected) commit_code = "CR";
  if (outcome.status == V2Status::not_stored) commit_code = "CE";
  const bool committed = std::string_view(commit_code) == "CA";
  std::vector<std::string> acks;
  const bool commit_sent = wanted(accept.empty() ? "NE" : accept, committed);
  if (commit_sent) acks.push_back(make(message, commit_code, outcome, false));
  if ((!commit_sent || committed) && wanted(application.empty() ? "AL" : application, app_code == "AA"))
    acks.push_back(make(message, app_code, outcome, true));
  return acks;
}

std::string v2_raw_reject(std::string_view text, std::string_view reason) {
  const auto fields = raw_msh_fields(text);
  if (fields.size() < 10 || fields[9].empty()) return {};
  std::string control_id(fields[9]);
  for (char& c : control_id)
    if (c == '\r' || c == '\n' || c == '|' || c == '^' || c == '~' || c == '\\' || c == '&') c = ' ';
  std::string out = "MSH|^~\\&|FHIRGW||||" + v2_now() + "||ACK|" + ack_control_id() + "|P|2.5.1\r";
  out += "MSA|AR|" + control_id + "|" + std::string(reason) + "\r";
  return out;
}

// ---- The MLLP chain ----

namespace {

class V2Job final : public pipeline::Chain<V2Job, net::MllpJob> {
 public:
  V2Job(const V2Service& service, net::MllpMessage message);
  Exchange& exchange() { return ex; }
  store::WritePlan commit_plan() {
    ex.plan = v2_plan(service, ex, v2);
    return pipeline::commit_plan(ex);
  }
  std::optional<std::vector<std::string>> take_acks() override { return std::move(acks); }

  const V2Service& service;
  Exchange ex;
  V2Exchange v2;
  std::optional<std::vector<std::string>> acks;
};

void receive(V2Job& job) {
  v2_receive(job.service, job.ex, job.v2);
}
bool wants_mapping(const V2Job& job) {
  return v2_wants_mapping(job.v2);
}
void map(V2Job& job) {
  v2_map(job.service, job.ex, job.v2);
}
void acknowledge(V2Job& job) {
  v2_settle(job.ex, job.v2);
  if (job.v2.message) {
    job.acks = v2_acks(*job.v2.message, job.v2.outcome);
    return;
  }
  std::string reject = v2_raw_reject(
      job.v2.text, job.v2.source.too_large ? "message too long" : "message could not be parsed");
  if (!reject.empty())
    job.acks = std::vector<std::string>{std::move(reject)};  // else not even MSH-10 to answer
}
void finish(V2Job& job) {
  pipeline::finish_journal(job.service.observers, job.ex);
}

constexpr pipeline::Stage<V2Job> kChain[] = {
    {"receive", pipeline::Where::io, false, receive},
    {"map", pipeline::Where::worker, false, map, wants_mapping},
    {"commit", pipeline::Where::commit, true, nullptr},
    {"acknowledge", pipeline::Where::io, true, acknowledge},
    {"finish", pipeline::Where::io, true, finish},
};

V2Job::V2Job(const V2Service& s, net::MllpMessage message) : Chain(kChain), service(s) {
  v2.text = std::move(message.text);
  v2.source.channel = "mllp";
  v2.source.partner = std::move(message.partner);
  v2.source.client_address = std::move(message.peer);
  v2.source.size = message.size;
  if (message.too_large) v2.source.too_large = message.limit;
}

}  // namespace

std::unique_ptr<net::MllpJob> V2Handler::start(net::MllpMessage message) {
  return std::make_unique<V2Job>(service_, std::move(message));
}

void V2Handler::framing_problem(const std::string& partner, const std::string& peer, std::uint16_t port,
                                const std::string& error) {
  if (service_.observers) service_.observers->on_mllp_framing(partner, peer, port, error);
}

}  // namespace fhirgate::gateway::inbound
