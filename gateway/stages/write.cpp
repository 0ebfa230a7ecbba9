#include "gateway/stages/write.hpp"

#include <algorithm>

#include "gateway/common/ids.hpp"
#include "gateway/security/agreement.hpp"
#include "gateway/security/suppliers.hpp"
#include "gateway/stages/identity.hpp"
#include "mappers/adt_update.hpp"

namespace fhirgate::gateway::stages {
namespace {

using fhir::Node;
using store::VersionRecord;
using Kind = WriteRequest::Kind;
using Done = WriteOutcome::Kind;

const char* merge_name(Merge merge) {
  switch (merge) {
    case Merge::replace:
      return "replace";
    case Merge::update:
      return "update";
    case Merge::hl7v2:
      return "hl7v2";
    case Merge::link:
      return "link";
  }
  return "replace";
}

std::optional<Merge> merge_named(std::string_view name) {
  for (Merge m : {Merge::replace, Merge::update, Merge::hl7v2, Merge::link})
    if (name == merge_name(m)) return m;
  return std::nullopt;
}

Error not_known(const std::string& type, const std::string& id) {
  Error e = Error::make(ErrorCode::not_found, type + "/" + id + " is not known");
  e.internal = "not known to the caller";
  return e;
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

// One write being planned: the transaction, the services, the exchange, and the Consents read in it.
class Plan {
 public:
  Plan(store::WriteTxn& txn, const WriteServices& services, pipeline::Exchange& ex)
      : txn_(txn), s_(services), ex_(ex), consents_(txn) {}

  Result<WriteOutcome> run(WriteRequest& r) {
    switch (r.kind) {
      case Kind::create:
        return create(r);
      case Kind::update:
        return update(r);
      case Kind::remove:
        return remove(r);
      case Kind::upsert:
        return upsert(r);
      case Kind::link:
        return link(r);
    }
    return Error::make(ErrorCode::internal, "unknown kind of write");
  }

  Result<WriteOutcome> release(std::int64_t held_id);

  // The ids of the records `query` matches that the caller may see (at most 100 looked at).
  Result<std::vector<VersionRecord>> visible_matches(const std::string& type,
                                                     const fhir::SearchQuery& query) {
    std::vector<VersionRecord> out;
    for (const auto& id : txn_.matching_ids(query, 100)) {
      auto rec = txn_.read(type, id);
      if (!rec || rec->deleted) continue;
      auto shown = sees(*rec);
      if (!shown) return shown.error();
      if (*shown) out.push_back(std::move(*rec));
    }
    return out;
  }

 private:
  std::string partner() const { return ex_.caller.partner ? ex_.caller.partner->id : std::string(); }
  bool secure() const { return s_.gate.enabled() && ex_.caller.partner; }

  // May the caller see this live version? Notes break-glass in the AuditEvent.
  Result<bool> sees(const VersionRecord& live) {
    auto decision = s_.gate.decide_stored(ex_.caller, live, consents_, txn_.now_ms());
    if (!decision) return decision.error();
    if (decision->permit && decision->break_glass && ex_.audit) ex_.audit->break_glass = true;
    return decision->permit;
  }

  // May the caller see the last live version before a deletion (the deletion rule of reads)?
  Result<bool> sees_deleted(const VersionRecord& deletion) {
    auto before = store::last_live_before(deletion.version,
                                          [&](std::int64_t v) -> Result<std::optional<VersionRecord>> {
                                            return txn_.vread(deletion.type, deletion.id, v);
                                          });
    if (!before) return before.error();
    if (!*before) return false;
    auto shown = sees(**before);
    if (shown && !*shown) note_stored(**before);
    return shown;
  }

  void note(const VersionRecord& rec, const Node* resource) {
    if (ex_.audit) pipeline::note_record(*ex_.audit, rec.type, rec.id, rec.version, resource);
  }
  void note_stored(const VersionRecord& rec) {
    if (!ex_.audit) return;
    if (rec.type == "Patient" || rec.body.empty()) {
      note(rec, nullptr);
    } else {
      auto parsed = fhir::parse_json(rec.body);
      note(rec, parsed ? &*parsed : nullptr);
    }
  }

  Status agreement(const WriteRequest& r, const char* interaction) {
    if (!r.check_agreement || !secure() || may(*ex_.caller.partner, r.type, interaction)) return Ok{};
    Error e = Error::make(ErrorCode::forbidden, "The sharing agreement does not allow " + partner() + " " +
                                                    interaction + " on " + r.type);
    e.internal = std::string("agreement: no ") + interaction + " on " + r.type;
    return e;
  }

  // Consents about a patient's privacy are written by registrars only (judged on old and new). A refusal is
  // audited against the patient (or patients) whose decision it would have changed.
  Status consent_rule(const std::string& type, const std::string& id, const Node* held,
                      const Node* incoming) {
    if (type != "Consent") return Ok{};
    Status allowed = s_.gate.may_record(ex_.caller, held, incoming);
    if (!allowed && ex_.audit) {
      ex_.audit->entity_reference = type + "/" + id;
      for (const Node* version : {held, incoming}) {
        const std::string patient = version ? Gate::patient_of(*version) : std::string();
        if (patient.empty()) continue;
        if (ex_.audit->patient_reference.empty())
          ex_.audit->patient_reference = patient;
        else if (patient != ex_.audit->patient_reference)
          ex_.seen_patients.push_back(patient);
      }
    }
    return allowed;
  }

  // The one identity rule: another Patient holding one of `resource`'s identifiers. Ok(nullopt) when there
  // is none; a conflict naming it when the caller may see it; otherwise the hidden record (to hold on).
  Result<std::optional<VersionRecord>> identity_clash(const std::string& type, const std::string& id,
                                                      const Node& resource) {
    if (type != "Patient") return std::optional<VersionRecord>();
    const auto query = any_identifier_query(s_.registry, type, identifiers_of(resource));
    if (!query) return std::optional<VersionRecord>();
    std::optional<VersionRecord> hidden;
    for (const auto& other : txn_.matching_ids(*query, 20)) {
      if (other == id) continue;
      auto rec = txn_.read(type, other);
      if (!rec || rec->deleted) continue;
      auto shown = sees(*rec);
      if (!shown) return shown.error();
      if (*shown) {
        Error e = Error::make(ErrorCode::conflict,
                              type + "/" + other + " already has an identifier this " + type +
                                  " gives (one Patient per identifier): to write to it, use a conditional "
                                  "create (If-None-Exist: identifier=system|value) or a conditional update "
                                  "(PUT " +
                                  type + "?identifier=system|value)");
        e.internal = "identity rule: identifier held by another Patient";
        return e;
      }
      if (!hidden) hidden = std::move(*rec);
    }
    return hidden;
  }

  // Holds the write for a registrar: the record is untouched; the exchange is answered as accepted.
  WriteOutcome hold(const WriteRequest& r, const VersionRecord& target, const Node& incoming, Merge merge,
                    std::string context) {
    store::HeldWrite h;
    h.correlation_id = ex_.correlation_id;
    h.partner = ex_.origin;
    h.entry = r.entry;
    h.type = r.type;
    h.target = target.type + "/" + target.id;
    h.merge = merge_name(merge);
    h.resource = fhir::write_json(incoming);
    h.context = std::move(context);
    if (target.type == "Patient") {
      h.patient = "Patient/" + target.id;
    } else if (auto parsed = fhir::parse_json(target.body)) {
      h.patient = Gate::patient_of(*parsed);
    }
    ex_.held_ids.push_back(txn_.append_held(h));
    ex_.held = true;
    note_stored(target);
    WriteOutcome out;
    out.kind = Done::held;
    return out;
  }

  // Stores `resource` as the next version of type/id and routes it.
  VersionRecord put(const std::string& type, const std::string& id, Node resource, const char* method) {
    VersionRecord rec = txn_.put(type, id, resource, method);
    note(rec, &resource);
    if (s_.router) s_.router->route(txn_, ex_.origin, rec, &resource);
    return rec;
  }

  // A new record (a create, an update-as-create, an upsert that matched nothing).
  Result<WriteOutcome> write_new(const WriteRequest& r, const std::string& id, Node resource,
                                 const char* method) {
    if (Status s = agreement(r, "create"); !s) return s.error();
    if (Status s = consent_rule(r.type, id, nullptr, &resource); !s) return s.error();
    auto clash = identity_clash(r.type, id, resource);
    if (!clash) return clash.error();
    if (*clash)
      return hold(r, **clash, resource, r.merge == Merge::hl7v2 ? Merge::hl7v2 : Merge::update, r.context);
    // Only a record never used before makes its writer the supplier; one re-created after a deletion keeps
    // the suppliers of its last version (a delete and re-create is no way to become a supplier).
    const Node* previous = nullptr;
    Result<Node> last = Error{};
    if (auto current = txn_.read(r.type, id); current && current->deleted && current->version > 1) {
      if (auto before = txn_.vread(r.type, id, current->version - 1); before && !before->deleted)
        last = fhir::parse_json(before->body);
      if (last) previous = &*last;
    }
    const bool fresh = !txn_.read(r.type, id);
    set_supplier_tags(resource, previous, fresh && secure() ? partner() : std::string());
    WriteOutcome out;
    out.kind = Done::created;
    out.record = put(r.type, id, std::move(resource), method);
    return out;
  }

  Result<WriteOutcome> create(WriteRequest& r) {
    if (r.condition) {
      auto matches = visible_matches(r.type, *r.condition);
      if (!matches) return matches.error();
      if (matches->size() > 1)
        return Error::make(ErrorCode::precondition_failed, "If-None-Exist matched more than one " + r.type +
                                                               "; the condition is not selective");
      if (matches->size() == 1) {
        note_stored(matches->front());
        WriteOutcome out;
        out.kind = Done::matched;
        out.record = std::move(matches->front());
        return out;
      }
    }
    return write_new(r, r.id, std::move(r.resource), "POST");
  }

  Result<WriteOutcome> update(WriteRequest& r) {
    if (r.id.empty()) {  // a conditional update: over what the caller may see
      auto matches = visible_matches(r.type, *r.condition);
      if (!matches) return matches.error();
      if (matches->size() > 1)
        return Error::make(ErrorCode::precondition_failed, "the condition matched more than one " + r.type);
      if (matches->empty()) {
        if (r.if_match)
          return Error::make(ErrorCode::precondition_failed,
                             "If-Match given but the condition matched nothing");
        r.resource.set("id", Node::string(r.id = new_resource_id()));
        return write_new(r, r.id, std::move(r.resource), "PUT");
      }
      r.id = matches->front().id;
      r.resource.set("id", Node::string(r.id));
    }
    const auto current = txn_.read(r.type, r.id);
    const bool live = current && !current->deleted;
    if (!live) {
      if (r.if_match)
        return Error::make(ErrorCode::precondition_failed,
                           "If-Match given but " + r.type + "/" + r.id + " does not exist");
      // A deleted record stays what it was to the caller: re-created only by whom could see it last.
      if (current) {
        auto shown = sees_deleted(*current);
        if (!shown) return shown.error();
        if (!*shown) return not_known(r.type, r.id);
      }
      return write_new(r, r.id, std::move(r.resource), "PUT");
    }
    auto shown = sees(*current);
    if (!shown) return shown.error();
    if (!*shown) {
      note_stored(*current);
      return not_known(r.type, r.id);
    }
    if (r.if_match && current->version != *r.if_match)
      return Error::make(ErrorCode::precondition_failed,
                         "version conflict: If-Match W/\"" + std::to_string(*r.if_match) +
                             "\" but the current version is W/\"" + std::to_string(current->version) + "\"");
    auto held = fhir::parse_json(current->body);
    if (!held) return Error::make(ErrorCode::internal, "the held " + r.type + " cannot be read");
    if (Status s = agreement(r, "update"); !s) return s.error();
    if (Status s = consent_rule(r.type, r.id, &*held, &r.resource); !s) return s.error();
    auto clash = identity_clash(r.type, r.id, r.resource);
    if (!clash) return clash.error();
    if (*clash) return hold(r, **clash, r.resource, Merge::update, {});
    set_supplier_tags(r.resource, &*held, {});
    WriteOutcome out;
    out.kind = Done::updated;
    out.record = put(r.type, r.id, std::move(r.resource), "PUT");
    return out;
  }

  Result<WriteOutcome> remove(const WriteRequest& r) {
    const auto current = txn_.read(r.type, r.id);
    const bool live = current && !current->deleted;
    if (live) {
      auto shown = sees(*current);
      if (!shown) return shown.error();
      if (!*shown) {
        note_stored(*current);
        return not_known(r.type, r.id);
      }
    }
    if (r.if_match && (!live || current->version != *r.if_match))
      return Error::make(
          ErrorCode::precondition_failed,
          "version conflict: If-Match does not match the current version of " + r.type + "/" + r.id);
    WriteOutcome out;
    out.kind = Done::absent;
    if (!live) {
      if (ex_.audit) ex_.audit->entity_reference = r.type + "/" + r.id;
      return out;
    }
    auto held = fhir::parse_json(current->body);
    if (Status s = consent_rule(r.type, r.id, held ? &*held : nullptr, nullptr); !s) return s.error();
    if (Status s = agreement(r, "delete"); !s) return s.error();
    auto rec = txn_.remove(r.type, r.id);
    if (rec) {
      out.kind = Done::deleted;
      note(*rec, held ? &*held : nullptr);
      if (s_.router) s_.router->route(txn_, ex_.origin, *rec, nullptr);
      out.record = std::move(rec);
    }
    return out;
  }

  // What an upsert writes into the held record.
  Node merged(const WriteRequest& r, const Node& held, Node incoming) {
    switch (r.merge) {
      case Merge::hl7v2:
        return mappers::apply_adt_update(held, std::move(incoming), *r.message);
      case Merge::update:
        return merge_update(held, incoming);
      case Merge::replace:
      case Merge::link:
        break;
    }
    incoming.set("id", held.find("id") ? *held.find("id") : Node::string(""));
    return incoming;
  }

  Result<WriteOutcome> upsert(WriteRequest& r) {
    const auto found = find_by_identity(txn_, r.identity);
    if (found.size() > 1) {
      Error e = Error::make(ErrorCode::conflict, "more than one " + r.type + " has this identifier");
      e.internal = "identity: ambiguous";
      return e;
    }
    if (found.empty()) {
      Node created = r.merge == Merge::hl7v2 && r.message
                         ? mappers::drop_v2_nulls(std::move(r.resource), *r.message)
                         : std::move(r.resource);
      const std::string id = r.id.empty() ? new_resource_id() : r.id;
      return write_new(r, id, std::move(created), "POST");
    }
    const std::string& id = found.front();
    const auto current = txn_.read(r.type, id);
    if (!current || current->deleted)
      return Error::make(ErrorCode::internal, "the matched " + r.type + " cannot be read");
    if (Status s = agreement(r, "update"); !s) return s.error();
    auto shown = sees(*current);
    if (!shown) return shown.error();
    if (!*shown) return hold(r, *current, r.resource, r.merge, r.context);
    auto held = fhir::parse_json(current->body);
    if (!held) return Error::make(ErrorCode::internal, "the held " + r.type + " cannot be read");
    Node updated = merged(r, *held, std::move(r.resource));
    if (Status s = consent_rule(r.type, id, &*held, &updated); !s) return s.error();
    auto clash = identity_clash(r.type, id, updated);
    if (!clash) return clash.error();
    if (*clash) return hold(r, **clash, updated, Merge::update, {});
    set_supplier_tags(updated, &*held, {});
    WriteOutcome out;
    if (updated == *held) {
      out.kind = Done::unchanged;
      note(*current, &*held);
      out.record = *current;
      return out;
    }
    out.kind = Done::updated;
    out.record = put(r.type, id, std::move(updated), "PUT");
    return out;
  }

  Result<WriteOutcome> link(const WriteRequest& r) {
    const auto survivor = find_by_identity(txn_, r.identity);
    const auto old = find_by_identity(txn_, r.replaced);
    if (old.empty())
      return Error::make(ErrorCode::not_found, "no Patient has the MRG-1 identifier", "MRG[1]-1");
    if (survivor.empty())
      return Error::make(ErrorCode::not_found, "no Patient has the PID-3 identifier", "PID[1]-3");
    if (old.size() > 1 || survivor.size() > 1)
      return Error::make(ErrorCode::conflict, "more than one Patient has this identifier",
                         old.size() > 1 ? "MRG[1]-1" : "PID[1]-3");
    if (old.front() == survivor.front())
      return Error::make(ErrorCode::conflict, "PID-3 and MRG-1 identify the same Patient", "MRG[1]-1");
    return link_records(r, survivor.front(), old.front(), true);
  }

  // The A40 writes: `survivor` replaces `retired`. With `ask`, each record must be one the caller may see
  // (otherwise the merge is held on the hidden one) and the agreement must let it update.
  Result<WriteOutcome> link_records(const WriteRequest& r, const std::string& survivor,
                                    const std::string& retired, bool ask) {
    const auto kept = txn_.read("Patient", survivor);
    const auto gone = txn_.read("Patient", retired);
    if (!kept || kept->deleted || !gone || gone->deleted)
      return Error::make(ErrorCode::conflict, "a Patient of the merge cannot be read", "MRG[1]-1");
    if (ask) {
      for (const VersionRecord* rec : {&*kept, &*gone}) {
        auto shown = sees(*rec);
        if (!shown) return shown.error();
        if (!*shown) {
          Node context = Node::object();
          context.set("survivor", Node::string(survivor));
          context.set("replaced", Node::string(retired));
          return hold(r, *rec, Node::object(), Merge::link, fhir::write_json(context));
        }
      }
      if (Status s = agreement(r, "update"); !s) return s.error();
    }
    auto kept_node = fhir::parse_json(kept->body);
    auto gone_node = fhir::parse_json(gone->body);
    if (!kept_node || !gone_node)
      return Error::make(ErrorCode::internal, "a Patient of the merge cannot be read");
    WriteOutcome out;
    out.kind = Done::unchanged;
    auto write = [&](const VersionRecord& current, const Node& before, Node after) {
      if (after == before) {
        out.also.push_back(current);
        return;
      }
      set_supplier_tags(after, &before, {});
      out.also.push_back(put("Patient", current.id, std::move(after), "PUT"));
      out.kind = Done::updated;
    };
    write(*kept, *kept_node, with_link(*kept_node, retired, "replaces"));
    Node retired_node = with_link(*gone_node, survivor, "replaced-by");
    mappers::set_patient_element(retired_node, "active", Node::boolean(false));
    write(*gone, *gone_node, std::move(retired_node));
    out.record = out.also.front();
    out.also.erase(out.also.begin());
    if (ex_.audit) pipeline::note_record(*ex_.audit, "Patient", out.record->id, out.record->version, nullptr);
    return out;
  }

  store::WriteTxn& txn_;
  const WriteServices& s_;
  pipeline::Exchange& ex_;
  TxnConsents consents_;
};

Result<WriteOutcome> Plan::release(std::int64_t held_id) {
  auto held = txn_.read_held(held_id);
  if (!held) return Error::make(ErrorCode::not_found, "No held write " + std::to_string(held_id));
  if (held->status != "held")
    return Error::make(ErrorCode::conflict, "Held write " + std::to_string(held_id) + " is " + held->status);
  const auto slash = held->target.find('/');
  const std::string type = held->target.substr(0, slash);
  const std::string id = held->target.substr(slash + 1);
  const auto merge = merge_named(held->merge);
  if (!merge) return Error::make(ErrorCode::internal, "unknown merge '" + held->merge + "'");
  // Routed as the data of the partner that sent it.
  const std::string releaser = ex_.origin;
  ex_.origin = held->partner;
  txn_.decide_held(held_id, "released", releaser);
  WriteRequest r;
  r.type = type;
  r.entry = held->entry;
  if (*merge == Merge::link) {
    auto context = fhir::parse_json(held->context);
    if (!context) return Error::make(ErrorCode::internal, "the held merge cannot be read");
    return link_records(r, std::string(context->string_at("survivor")),
                        std::string(context->string_at("replaced")), false);
  }
  const auto current = txn_.read(type, id);
  if (!current || current->deleted)
    return Error::make(ErrorCode::conflict, held->target + " is no longer there to apply the held write to");
  auto before = fhir::parse_json(current->body);
  auto incoming = fhir::parse_json(held->resource);
  if (!before || !incoming) return Error::make(ErrorCode::internal, "the held write cannot be read");
  r.merge = *merge;
  std::shared_ptr<const mappers::Message> message;
  if (*merge == Merge::hl7v2) {
    auto parsed = mappers::Message::parse(held->context);
    if (!parsed) return Error::make(ErrorCode::internal, "the held message cannot be read");
    r.message = std::make_shared<const mappers::Message>(std::move(*parsed));
  }
  Node updated = merged(r, *before, std::move(*incoming));
  updated.set("id", Node::string(id));
  set_supplier_tags(updated, &*before, {});
  WriteOutcome out;
  if (updated == *before) {
    out.kind = Done::unchanged;
    note(*current, &*before);
    out.record = *current;
    return out;
  }
  out.kind = Done::updated;
  out.record = put(type, id, std::move(updated), "PUT");
  return out;
}

}  // namespace

Node merge_update(const Node& held, const Node& incoming) {
  Node out = held;
  for (const auto& [key, value] : incoming.members()) {
    if (key == "resourceType" || key == "id" || key == "meta") continue;
    if (key == "identifier" && value.is_array()) {
      Node ids = Node::array();
      if (const Node* old = held.find("identifier"); old && old->is_array()) {
        for (const auto& id : old->items()) {
          const auto system = id.string_at("system");
          const bool replaced = std::any_of(value.items().begin(), value.items().end(),
                                            [&](const Node& n) { return n.string_at("system") == system; });
          if (!replaced) ids.push(id);
        }
      }
      for (const auto& id : value.items()) ids.push(id);
      out.set("identifier", std::move(ids));
      continue;
    }
    out.set(key, value);
  }
  return out;
}

Result<WriteOutcome> plan_write(store::WriteTxn& txn, const WriteServices& services, pipeline::Exchange& ex,
                                WriteRequest request) {
  Plan plan(txn, services, ex);
  return plan.run(request);
}

Result<std::vector<VersionRecord>> visible_matches(store::WriteTxn& txn, const WriteServices& services,
                                                   pipeline::Exchange& ex, const std::string& type,
                                                   const fhir::SearchQuery& condition) {
  Plan plan(txn, services, ex);
  return plan.visible_matches(type, condition);
}

Result<WriteOutcome> release_held(store::WriteTxn& txn, const WriteServices& services, pipeline::Exchange& ex,
                                  std::int64_t held_id) {
  Plan plan(txn, services, ex);
  return plan.release(held_id);
}

}  // namespace fhirgate::gateway::stages
