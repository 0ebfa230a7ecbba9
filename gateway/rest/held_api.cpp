// Writes held for a registrar (docs/security.md, the one identity rule): GET /_ops/held lists them,
// GET /_ops/held/{id} shows one with what it would write, POST /_ops/held/{id}/$release applies it to the
// record it matched, POST /_ops/held/{id}/$reject refuses it. Consent registrars and the privacy officer
// only (anyone else 403; with security off, anyone); every look and every decision is audited against the
// patient, as that registrar's. Plain JSON.
#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "gateway/rest/router.hpp"
#include "gateway/security/agreement.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

bool registrars_only(RestJob& job) {
  const PartnerConfig* who = job.ex.caller.partner;
  if (!who || is_consent_registrar(*who)) return true;
  job.ex.fail(Error::make(ErrorCode::forbidden, "Consent registrars and the privacy officer only"));
  return false;
}

Node held_json(const store::HeldWrite& h, bool whole) {
  Node out = Node::object();
  out.set("id", Node::number(std::to_string(h.id)));
  out.set("received", Node::string(fhir::format_instant(h.created_ms)));
  out.set("partner", Node::string(h.partner));
  out.set("entry", Node::string(h.entry));
  out.set("type", Node::string(h.type));
  out.set("target", Node::string(h.target));
  out.set("status", Node::string(h.status));
  out.set("correlationId", Node::string(h.correlation_id));
  if (!h.decided_by.empty()) {
    out.set("decidedBy", Node::string(h.decided_by));
    out.set("decided", Node::string(fhir::format_instant(h.decided_ms)));
  }
  if (whole) {
    // What it would write: the message as received for HL7 v2, the resource otherwise (as the journal
    // shows a payload: its text).
    out.set("patient", Node::string(h.patient));
    out.set("payload", Node::string(h.merge == "hl7v2" ? h.context : h.resource));
    out.set("resource", Node::string(h.resource));
    if (h.merge == "link") out.set("context", Node::string(h.context));
  }
  return out;
}

std::optional<std::int64_t> id_of(const std::string& text) {
  if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), ::isdigit))
    return std::nullopt;
  return std::stoll(text);
}

class HeldList final : public Interaction {
 public:
  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!registrars_only(job)) return;
    if (ex.audit) ex.audit->interaction = "search-type";
    std::string status = "held";
    int count = 100;
    std::int64_t before = INT64_MAX;
    for (const auto& [key, value] : job.query) {
      if (key == "status") {
        status = value == "any" ? "" : value;
      } else if (key == "_count" || key == "before") {
        const auto n = id_of(value);
        if (!n || *n == 0)
          return ex.fail(Error::make(ErrorCode::invalid_input, key + " must be a positive integer", key));
        if (key == "_count") count = static_cast<int>(std::min<std::int64_t>(*n, 1000));
        if (key == "before") before = *n;
      } else {
        return ex.fail(Error::make(ErrorCode::invalid_input, "Unknown parameter '" + key + "'", key));
      }
    }
    auto rows = job.services.store.held_writes(status, count, before);
    if (!rows) return ex.fail(rows.error());
    rows_ = std::move(*rows);
    if (ex.audit) {
      for (const auto& h : rows_)
        if (!h.patient.empty() &&
            std::find(ex.seen_patients.begin(), ex.seen_patients.end(), h.patient) == ex.seen_patients.end())
          ex.seen_patients.push_back(h.patient);
    }
  }

  HttpResponse respond(RestJob& job) override {
    Node list = Node::array();
    for (const auto& h : rows_) list.push(held_json(h, false));
    Node out = Node::object();
    out.set("held", std::move(list));
    return job.plain_json(200, out);
  }

 private:
  std::vector<store::HeldWrite> rows_;
};

class HeldEntry final : public Interaction {
 public:
  explicit HeldEntry(std::string id) : id_text_(std::move(id)) {}

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!registrars_only(job)) return;
    if (ex.audit) ex.audit->interaction = "read";
    const auto id = id_of(id_text_);
    auto held =
        id ? job.services.store.held_write(*id) : Result<std::optional<store::HeldWrite>>(std::nullopt);
    if (!held) return ex.fail(held.error());
    if (!*held) return ex.fail(Error::make(ErrorCode::not_found, "No held write " + id_text_));
    held_ = std::move(**held);
    if (ex.audit) {
      ex.audit->entity_reference = held_.target;
      ex.audit->patient_reference = held_.patient;
    }
  }

  HttpResponse respond(RestJob& job) override { return job.plain_json(200, held_json(held_, true)); }

 private:
  std::string id_text_;
  store::HeldWrite held_;
};

class HeldDecision final : public Interaction {
 public:
  HeldDecision(std::string id, bool release) : id_text_(std::move(id)), release_(release) {}

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!registrars_only(job)) return;
    const auto id = id_of(id_text_);
    if (!id) return ex.fail(Error::make(ErrorCode::not_found, "No held write " + id_text_));
    id_ = *id;
    if (ex.audit) {
      ex.audit->interaction = release_ ? "update" : "operation";
      if (!release_) ex.audit->operation = "$reject";
    }
  }

  store::WritePlan plan(RestJob& job) override {
    return [this, &job](store::WriteTxn& txn) -> Status {
      auto& ex = job.ex;
      auto held = txn.read_held(id_);
      if (!held) return Error::make(ErrorCode::not_found, "No held write " + id_text_);
      if (ex.audit) {
        ex.audit->entity_reference = held->target;
        ex.audit->patient_reference = held->patient;
      }
      if (held->status != "held")
        return Error::make(ErrorCode::conflict,
                           "Held write " + id_text_ + " is " + held->status + " already");
      const std::string by = ex.caller.partner ? ex.caller.partner->id : std::string("anonymous");
      // A hold is a review: whoever made the write does not decide on it.
      if (ex.caller.partner && held->partner == by)
        return Error::make(ErrorCode::forbidden,
                           "A held write is released or rejected by another registrar or the "
                           "privacy officer, not by the partner that made it");
      // The held exchange's own journal entry follows the decision, when the entry was that one write
      // (a REST request, an HL7 v2 message; a Bundle's or a feed file's entry stays held for its others).
      auto follow = [&](store::JournalStatus status) {
        if (held->entry != "rest" && held->entry != "hl7v2") return;
        store::JournalQuery q;
        q.correlation = held->correlation_id;
        q.status = store::JournalStatus::held;
        q.count = 2;
        const auto entries = txn.journal(q);
        if (entries.size() == 1 && entries.front().type.rfind("Bundle", 0) != 0 &&
            entries.front().type != "transaction" && entries.front().type != "batch")
          txn.advance_journal(entries.front().id, status, "decided by " + by,
                              static_cast<double>(txn.now_ms() - entries.front().received_ms));
      };
      if (!release_) {
        txn.decide_held(id_, "rejected", by);
        follow(store::JournalStatus::rejected);
        status_ = "rejected";
        return Ok{};
      }
      ex.origin = by;
      auto done = stages::release_held(txn, job.services.write, ex, id_);
      if (!done) return done.error();
      follow(store::JournalStatus::released);
      status_ = "released";
      if (done->record)
        resource_ = done->record->type + "/" + done->record->id + "/_history/" +
                    std::to_string(done->record->version);
      return Ok{};
    };
  }

  HttpResponse respond(RestJob& job) override {
    Node out = Node::object();
    out.set("id", Node::number(std::to_string(id_)));
    out.set("status", Node::string(status_));
    if (!resource_.empty()) out.set("resource", Node::string(resource_));
    return job.plain_json(200, out);
  }

 private:
  std::string id_text_;
  bool release_;
  std::int64_t id_ = 0;
  std::string status_;
  std::string resource_;
};

}  // namespace

std::unique_ptr<Interaction> make_held_list() {
  return std::make_unique<HeldList>();
}
std::unique_ptr<Interaction> make_held_entry(std::string id) {
  return std::make_unique<HeldEntry>(std::move(id));
}
std::unique_ptr<Interaction> make_held_decision(std::string id, bool release) {
  return std::make_unique<HeldDecision>(std::move(id), release);
}

}  // namespace fhirgate::gateway::rest
