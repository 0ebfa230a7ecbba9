#include "gateway/inbound/v2_inbound.hpp"

#include <chrono>
#include <ctime>
#include <optional>

#include "fhir/json.hpp"
#include "fhir/search_query.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/inbound/identity.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/security/security.hpp"
#include "gateway/store/store.hpp"
#include "mappers/adt_update.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;
using Kind = V2Outcome::Kind;

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

V2Outcome problem(Kind kind, std::string text, std::string code, std::string location) {
  V2Outcome o;
  o.kind = kind;
  o.error = Error::make(kind == Kind::rejected ? ErrorCode::invalid_input : ErrorCode::unprocessable, text,
                        location);
  o.error_code = std::move(code);
  o.error_location = std::move(location);
  return o;
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

const char* status_of(Kind kind) {
  switch (kind) {
    case Kind::applied:
    case Kind::duplicate:
      return "applied";
    case Kind::failed:
    case Kind::not_stored:
      return "failed";
    case Kind::rejected:
      return "rejected";
  }
  return "failed";
}

// What the plan does after the re-send check; fills the outcome. Returns an error only for storage
// failures (which roll the whole plan back, the log entry included).
using Apply = std::function<void(store::WriteTxn&, V2Outcome&)>;

// The AuditEvent of one message: what it did to which patient, from whom.
void audit_message(store::WriteTxn& txn, const AuditInput& base, const V2Outcome& outcome) {
  AuditInput in = base;
  in.recorded_ms = txn.now_ms();
  const bool ok = outcome.kind == Kind::applied || outcome.kind == Kind::duplicate;
  in.outcome = ok ? "0" : "4";
  if (!ok) in.outcome_desc = outcome.error_code + " " + diagnostics_of(outcome.error);
  in.interaction = "message";
  std::vector<std::string> patients;
  for (const auto& w : outcome.written) {
    if (in.entity_reference.empty()) {
      in.entity_reference = w.type + "/" + w.id + "/_history/" + std::to_string(w.version);
      in.interaction = w.outcome == "created" ? "create" : w.outcome == "updated" ? "update" : "message";
    }
    if (w.type == "Patient") patients.push_back("Patient/" + w.id);
  }
  if (!patients.empty()) in.patient_reference = patients.front();
  record_audit(txn, in, patients);
}

// When and as what a message arrived, for its journal entry.
struct V2Trace {
  std::string correlation_id;
  std::int64_t received_ms = 0;
  std::chrono::steady_clock::time_point started;
  std::int64_t retry_of = 0;
  std::size_t size = 0;  // bytes of the message as received (the log may hold only its head)
};

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// The message's journal entry (docs/operators.md), in the plan's commit.
void journal_message(store::WriteTxn& txn, const store::InboundMessage& log, const V2Outcome& outcome,
                     const V2Trace& trace, double mapped_ms) {
  store::JournalEntry e;
  e.correlation_id = trace.correlation_id;
  e.received_ms = trace.received_ms;
  e.partner = log.partner;
  e.direction = "in";
  e.transport = log.channel;
  e.format = "hl7v2";
  e.type = log.message_type.empty() ? "HL7 v2" : log.message_type;
  e.size = static_cast<std::int64_t>(trace.size);
  const bool ok = outcome.kind == Kind::applied || outcome.kind == Kind::duplicate;
  e.status = !ok ? "rejected" : txn.deliveries_caused() ? "routed" : "stored";
  if (!ok) e.error = "HL7 error " + outcome.error_code + ": " + diagnostics_of(outcome.error);
  if (outcome.kind == Kind::duplicate)
    e.error = "a re-send of message " + log.control_id + ": not applied again";
  fhir::Node resources = fhir::Node::array();
  for (const auto& w : outcome.written)
    resources.push(fhir::Node::string(w.type + "/" + w.id + "/_history/" + std::to_string(w.version)));
  e.resources = fhir::write_json(resources);
  e.stages = store::stages_json({{"received", 0.0},
                                 {ok ? "mapped" : "checked", mapped_ms},
                                 {ok ? "stored" : "logged", ms_since(trace.started)}});
  e.has_payload = true;
  e.payload = log.body;
  e.retry_of = trace.retry_of;
  txn.append_journal(e);
}

store::WritePlan logged_plan(store::InboundMessage log, std::shared_ptr<V2Outcome> state, Apply apply,
                             std::shared_ptr<const AuditInput> audit, const V2Trace& trace) {
  return [log = std::move(log), state = std::move(state), apply = std::move(apply), audit = std::move(audit),
          trace, mapped_ms = ms_since(trace.started)](store::WriteTxn& txn) mutable -> Status {
    txn.set_origin(log.partner);  // routes match the sending partner
    txn.set_correlation(trace.correlation_id);
    if (state->kind != Kind::rejected) {
      if (auto detail = txn.applied_detail(log.partner, log.sender, log.control_id)) {
        state->kind = Kind::duplicate;
        state->written = written_from_json(*detail);
        if (audit) audit_message(txn, *audit, *state);
        journal_message(txn, log, *state, trace, mapped_ms);
        return Ok{};
      }
    }
    if (apply) apply(txn, *state);
    log.status = status_of(state->kind);
    log.detail = state->kind == Kind::applied ? written_json(state->written)
                                              : state->error_code + " " + diagnostics_of(state->error);
    txn.log_inbound(log);
    if (audit) audit_message(txn, *audit, *state);
    journal_message(txn, log, *state, trace, mapped_ms);
    return Ok{};
  };
}

std::optional<std::pair<Node, std::int64_t>> read_patient(store::WriteTxn& txn, const std::string& id) {
  auto rec = txn.read("Patient", id);
  if (!rec || rec->deleted) return std::nullopt;
  auto parsed = fhir::parse_json(rec->body);
  if (!parsed) return std::nullopt;
  return std::make_pair(std::move(*parsed), rec->version);
}

// Writes `updated` unless it equals what is held; records what happened.
void write_patient(store::WriteTxn& txn, const std::string& id, const Node& held, std::int64_t held_version,
                   Node updated, V2Outcome& out) {
  if (updated == held) {
    out.written.push_back({"Patient", id, held_version, "unchanged"});
    return;
  }
  auto rec = txn.put("Patient", id, std::move(updated), "PUT");
  out.written.push_back({"Patient", id, rec.version, "updated"});
}

Apply upsert_patient(std::shared_ptr<const mappers::Message> message, Node patient,
                     std::vector<fhir::SearchQuery> queries, std::string new_id, std::string supplier,
                     Security::MaySee may_see) {
  return [message = std::move(message), patient = std::move(patient), queries = std::move(queries),
          new_id = std::move(new_id), supplier = std::move(supplier),
          may_see = std::move(may_see)](store::WriteTxn& txn, V2Outcome& out) mutable {
    const auto found = find_by_identity(txn, queries);
    if (found.size() > 1) {
      out = problem(Kind::failed, "more than one Patient has this identifier", "205", "PID[1]-3");
      return;
    }
    if (found.empty()) {
      Node created = mappers::drop_v2_nulls(std::move(patient), *message);
      if (!supplier.empty()) Security::tag_supplier(created, nullptr, supplier);
      auto rec = txn.put("Patient", new_id, std::move(created), "POST");
      out.written.push_back({"Patient", new_id, rec.version, "created"});
      return;
    }
    auto held = read_patient(txn, found.front());
    if (!held) {
      out = problem(Kind::failed, "the Patient with this identifier cannot be read", "207", "PID[1]-3");
      return;
    }
    Node updated = mappers::apply_adt_update(held->first, std::move(patient), *message);
    if (!supplier.empty()) Security::tag_merge_supplier(updated, held->first, supplier, may_see);
    write_patient(txn, found.front(), held->first, held->second, std::move(updated), out);
  };
}

// Adds a link to `patient` unless it is there already.
Node with_link(Node patient, const std::string& other_id, std::string_view type) {
  const std::string other = "Patient/" + other_id;
  Node links = Node::array();
  if (const Node* held = patient.find("link"); held && held->is_array()) {
    for (const auto& l : held->items()) {
      const Node* ref = l.find("other");
      if (ref && ref->string_at("reference") == other && l.string_at("type") == type) return patient;
      links.push(l);
    }
  }
  Node ref = Node::object();
  ref.set("reference", Node::string(other));
  Node link = Node::object();
  link.set("other", std::move(ref));
  link.set("type", Node::string(std::string(type)));
  links.push(std::move(link));
  mappers::set_patient_element(patient, "link", std::move(links));
  return patient;
}

Apply merge_patients(std::vector<fhir::SearchQuery> surviving, std::vector<fhir::SearchQuery> replaced) {
  return [surviving = std::move(surviving), replaced = std::move(replaced)](store::WriteTxn& txn,
                                                                            V2Outcome& out) {
    const auto survivor = find_by_identity(txn, surviving);
    const auto old = find_by_identity(txn, replaced);
    if (old.empty()) {
      out = problem(Kind::failed, "no Patient has the MRG-1 identifier", "204", "MRG[1]-1");
      return;
    }
    if (survivor.empty()) {
      out = problem(Kind::failed, "no Patient has the PID-3 identifier", "204", "PID[1]-3");
      return;
    }
    if (old.size() > 1 || survivor.size() > 1) {
      out = problem(Kind::failed, "more than one Patient has this identifier", "205",
                    old.size() > 1 ? "MRG[1]-1" : "PID[1]-3");
      return;
    }
    if (old.front() == survivor.front()) {
      out = problem(Kind::failed, "PID-3 and MRG-1 identify the same Patient", "205", "MRG[1]-1");
      return;
    }
    auto kept = read_patient(txn, survivor.front());
    auto gone = read_patient(txn, old.front());
    if (!kept || !gone) {
      out = problem(Kind::failed, "a Patient of the merge cannot be read", "207", "MRG[1]-1");
      return;
    }
    write_patient(txn, survivor.front(), kept->first, kept->second,
                  with_link(kept->first, old.front(), "replaces"), out);
    Node retired = with_link(gone->first, survivor.front(), "replaced-by");
    mappers::set_patient_element(retired, "active", Node::boolean(false));
    write_patient(txn, old.front(), gone->first, gone->second, std::move(retired), out);
  };
}

const V2Partner* find_partner(const V2InboundContext& context, const V2Source& source,
                              const mappers::Message& message) {
  if (!source.partner.empty()) {
    for (const auto& p : context.partners)
      if (p.id == source.partner) return &p;
    return nullptr;
  }
  const std::string facility = message.value("MSH-4.1");
  if (facility.empty()) return nullptr;
  for (const auto& p : context.partners)
    for (const auto& f : p.sending_facilities)
      if (f == facility) return &p;
  return nullptr;
}

}  // namespace

V2Reply handle_v2(const V2InboundContext& context, std::string_view text, const V2Source& source,
                  const std::optional<V2TooLarge>& too_large) {
  V2Reply reply;
  auto state = std::make_shared<V2Outcome>();
  reply.outcome = [state](const Status& committed) {
    if (!committed) {
      V2Outcome o;
      o.kind = Kind::not_stored;
      o.error = committed.error();
      o.error_code = "207";
      return o;
    }
    return *state;
  };
  const V2Trace trace{source.correlation_id.empty() ? new_resource_id() : source.correlation_id,
                      std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count(),
                      std::chrono::steady_clock::now(), source.retry_of,
                      too_large ? too_large->size : text.size()};
  std::shared_ptr<AuditInput> audit;
  if (context.audit) {
    audit = std::make_shared<AuditInput>();
    audit->correlation_id = trace.correlation_id;
    audit->channel = "hl7v2";
    if (source.channel == "http") audit->operation = "$ingest";
    audit->client_address = source.client_address;
    audit->purpose = source.purpose.empty() ? "TREAT" : source.purpose;
  }
  store::InboundMessage log;
  log.channel = source.channel;
  log.format = "hl7v2";
  log.partner = source.partner;
  log.body = std::string(text);

  const std::string too_large_reason =
      too_large ? "message of " + std::to_string(too_large->size) + " bytes is longer than the " +
                      std::to_string(too_large->limit) + " this listener takes (mllp.maxMessageBytes); " +
                      "only its first segment was kept"
                : std::string();
  auto parsed = mappers::Message::parse(text);
  if (!parsed) {
    const auto fields = raw_msh_fields(text);
    if (fields.size() > 3) log.sender = std::string(fields[3]);
    if (fields.size() > 9) log.control_id = std::string(fields[9]);
    *state = too_large ? problem(Kind::rejected, too_large_reason, "104", "")
                       : problem(Kind::rejected,
                                 "message could not be parsed: " + diagnostics_of(parsed.error()), "102", "");
    reply.plan = logged_plan(std::move(log), state, nullptr, audit, trace);
    return reply;
  }
  auto message = std::make_shared<const mappers::Message>(std::move(*parsed));
  reply.message = message;
  const mappers::MessageType type = message->message_type();
  log.sender = message->value("MSH-4.1");
  log.control_id = message->control_id();
  log.message_type = type.code + "^" + type.trigger;

  const V2Partner* partner = find_partner(context, source, *message);
  if (partner) log.partner = partner->id;
  if (audit) {
    audit->message_control_id = log.control_id;
    if (partner) {
      audit->client_id = partner->id;
      audit->client_reference = "Organization/" + partner->id;
      audit->client_display = partner->name;
    }
  }
  auto reject = [&](std::string why, std::string code, std::string location) {
    *state = problem(Kind::rejected, std::move(why), std::move(code), std::move(location));
    reply.plan = logged_plan(std::move(log), state, nullptr, audit, trace);
    return std::move(reply);
  };
  auto fail = [&](Error error, std::string code, std::string location) {
    state->kind = Kind::failed;
    state->error = std::move(error);
    state->error_code = std::move(code);
    state->error_location = std::move(location);
    reply.plan = logged_plan(std::move(log), state, nullptr, audit, trace);
    return std::move(reply);
  };

  if (too_large) return reject(too_large_reason, "104", "");
  if (!mappers::is_supported_version(message->version()))
    return reject("unsupported version", "203", "MSH[1]-12");
  if (!partner) return reject("unknown sending facility", "103", "MSH[1]-4");
  const bool merge = type.code == "ADT" && type.trigger == "A40";
  if (type.code != "ADT") return reject("unsupported message type", "200", "MSH[1]-9");
  if (!merge && !mappers::is_patient_trigger(type.trigger))
    return reject("unsupported event", "201", "MSH[1]-9.2");

  if (merge) {
    auto request = mappers::adt_merge(*message, partner->mapping);
    if (!request) {
      const std::string where =
          request.error().issues.empty() ? "" : request.error().issues.front().expression;
      return fail(request.error(), "101", where == "MRG" || where == "PID" ? "" : where);
    }
    reply.plan = logged_plan(
        std::move(log), state,
        merge_patients(identity_queries(context.registry, "Patient", request->surviving_identifiers),
                       identity_queries(context.registry, "Patient", request->replaced_identifiers)),
        audit, trace);
    return reply;
  }

  auto patient = mappers::adt_to_patient(*message, partner->mapping);
  if (!patient) return fail(patient.error(), "100", "");
  fhir::ValidationOptions options;
  options.profiles = context.patient_profiles;
  auto validation = context.validator.validate(*patient, options);
  if (validation.has_errors()) {
    if (context.on_invalid) context.on_invalid("Patient");
    Error invalid{ErrorCode::unprocessable, {}, "validation failed"};
    for (auto& issue : validation.issues)
      if (issue.severity == "error" || issue.severity == "fatal") invalid.issues.push_back(std::move(issue));
    return fail(std::move(invalid), "207", "");
  }
  std::vector<Node> ids;
  if (const Node* list = patient->find("identifier"); list && list->is_array()) ids = list->items();
  auto queries = identity_queries(context.registry, "Patient", ids);
  if (queries.empty())
    return fail(Error::make(ErrorCode::invalid_input, "no usable patient identifier", "PID[1]-3"), "101",
                "PID[1]-3");
  reply.plan = logged_plan(std::move(log), state,
                           upsert_patient(message, std::move(*patient), std::move(queries), new_resource_id(),
                                          context.audit ? partner->id : std::string(), context.may_see),
                           audit, trace);
  return reply;
}

namespace {

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
  if (o.kind != Kind::applied && o.kind != Kind::duplicate) {
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

std::vector<std::string> v2_acks(const mappers::Message& message, const V2Outcome& outcome) {
  const std::string accept = message.value("MSH-15");
  const std::string application = message.value("MSH-16");
  const char* app_code = "AA";
  if (outcome.kind == Kind::failed || outcome.kind == Kind::not_stored) app_code = "AE";
  if (outcome.kind == Kind::rejected) app_code = "AR";
  if (accept.empty() && application.empty()) return {make(message, app_code, outcome, false)};

  const char* commit_code = "CA";
  if (outcome.kind == Kind::rejected) commit_code = "CR";
  if (outcome.kind == Kind::not_stored) commit_code = "CE";
  const bool committed = std::string_view(commit_code) == "CA";
  std::vector<std::string> acks;
  const bool commit_sent = wanted(accept.empty() ? "NE" : accept, committed);
  if (commit_sent) acks.push_back(make(message, commit_code, outcome, false));
  if ((!commit_sent || committed) &&
      wanted(application.empty() ? "AL" : application, std::string_view(app_code) == "AA"))
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

}  // namespace fhirgate::gateway
