// POST / with a transaction or batch Bundle (R4 http.html#transaction).
//
// Design. Every entry is its own exchange, with its own AuditEvent, sharing the Bundle's caller,
// correlation id and journal entry. On a worker, each entry's request is checked first — its method and
// URL, the caller's agreement for that interaction — and for POST/PUT its resource, validated against R4
// and the type's profiles (and checked storable) after the references between entries have been
// rewritten: POST entries get their new id up front, so a reference to an entry's fullUrl (urn:uuid:...,
// urn:oid:... or an absolute URL) becomes Type/id before validation. Then one write plan, in one SQLite
// transaction, resolves the conditional creates (over what the caller may see: a match rewrites the
// references to it again), then does the writes in the order R4 prescribes — DELETE, POST, PUT, GET —
// each through stages::plan_write, and the GETs through the gate inside the same transaction (so a GET
// sees the Bundle's own writes, and a Consent the Bundle wrote governs it). For a transaction the first
// entry that fails fails the whole Bundle (nothing is stored; the OperationOutcome names
// Bundle.entry[i], and the Bundle's AuditEvent the entry's patient); for a batch each entry runs in its
// own savepoint and answers for itself.
//
// Resource types the gateway does not hold (not in cachedTypes) are validated, passed to the routes in
// the same commit (routing.hpp) and answered 202 with an outcome saying they were not stored.
#include <algorithm>
#include <map>
#include <optional>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/pipeline/record.hpp"
#include "gateway/rest/router.hpp"
#include "gateway/security/agreement.hpp"
#include "gateway/stages/read.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;
using stages::WriteOutcome;
using stages::WriteRequest;
using store::VersionRecord;

// One entry's request and, once done, its answer.
struct Op {
  std::size_t index = 0;
  std::string method;  // GET POST PUT DELETE
  std::string type;
  std::string id;                              // POST: assigned; PUT/DELETE/GET: from the URL
  std::optional<fhir::SearchQuery> condition;  // POST ifNoneExist, PUT Type?query
  std::optional<std::int64_t> if_match;
  std::string full_url;
  Node resource;
  bool cached = true;
  std::string interaction;  // for the agreement and the AuditEvent
  bool matched = false;     // a conditional create that found its match
  // The answer.
  std::optional<Error> error;
  int status = 0;
  std::optional<VersionRecord> record;
  std::string note;  // informational outcome
  bool held = false;
};

int order_of(const std::string& method) {
  if (method == "DELETE") return 0;
  if (method == "POST") return 1;
  if (method == "PUT") return 2;
  return 3;
}

Error entry_error(const Op& op, Error e) {
  const std::string where = "Bundle.entry[" + std::to_string(op.index) + "]";
  for (auto& issue : e.issues) {
    issue.diagnostics = "entry " + std::to_string(op.index) + " (" + op.method + " " + op.type +
                        (op.id.empty() ? "" : "/" + op.id) + "): " + issue.diagnostics;
    issue.expression = issue.expression.empty() ? where : where + ".resource." + issue.expression;
    issue.line = 0;
    issue.column = 0;
  }
  return e;
}

// Replaces every Reference.reference (any member named "reference") found in `targets`.
void rewrite_references(Node& node, const std::map<std::string, std::string>& targets) {
  if (node.is_object()) {
    for (auto& [key, value] : node.members()) {
      if (key == "reference" && value.is_string()) {
        if (const auto it = targets.find(value.text()); it != targets.end()) value = Node::string(it->second);
      } else {
        rewrite_references(value, targets);
      }
    }
  } else if (node.is_array()) {
    for (auto& item : node.items()) rewrite_references(item, targets);
  }
}

std::string status_line(int status) {
  switch (status) {
    case 200:
      return "200 OK";
    case 201:
      return "201 Created";
    case 202:
      return "202 Accepted";
    case 204:
      return "204 No Content";
    default:
      return std::to_string(status);
  }
}

class BundleInteraction final : public Interaction {
 public:
  bool has_work(const RestJob&) const override { return true; }

  void work(RestJob& job) override {
    auto& ex = job.ex;
    if (ex.journal) ex.journal->type = "Bundle";
    auto parsed = parse(job);
    if (!parsed) return ex.fail(parsed.error());
    const std::string kind(parsed->string_at("type"));
    if (kind != "transaction" && kind != "batch")
      return ex.fail(Error::make(ErrorCode::invalid_input,
                                 "POST / takes a Bundle of type transaction or batch, not '" + kind + "'",
                                 "Bundle.type"));
    transaction_ = kind == "transaction";
    kind_ = kind;
    job.interaction_name = kind;
    if (ex.journal) ex.journal->type = kind;
    if (ex.audit) ex.audit->interaction = kind;
    const Node* entries = parsed->find("entry");
    if (entries && entries->is_array())
      for (std::size_t i = 0; i < entries->items().size(); ++i) {
        ops_.push_back(Op{});
        ops_.back().index = i;
      }
    // Requests first; a transaction stops at the first bad one.
    std::map<std::string, std::string> targets;  // fullUrl -> Type/id
    for (auto& op : ops_) {
      if (auto e = prepare_op(job, op, entries->items()[op.index])) {
        op.error = entry_error(op, std::move(*e));
        if (transaction_) return ex.fail(*op.error);
        continue;
      }
      if (!op.full_url.empty() && !op.id.empty() && (op.method == "POST" || op.method == "PUT")) {
        if (!targets.emplace(op.full_url, op.type + "/" + op.id).second) {  // R4 bdl-7
          op.error =
              entry_error(op, Error::make(ErrorCode::invalid_input,
                                          "fullUrl '" + op.full_url + "' is used by an earlier entry"));
          if (transaction_) return ex.fail(*op.error);
        }
      }
    }
    // References between entries, then validation.
    for (auto& op : ops_) {
      if (op.error || (op.method != "POST" && op.method != "PUT")) continue;
      rewrite_references(op.resource, targets);
      if (!op.id.empty()) op.resource.set("id", Node::string(op.id));
      if (Status valid = job.check_for_write(op.resource, op.type); !valid) {
        op.error = entry_error(op, valid.error());
        if (transaction_) return ex.fail(*op.error);
      }
    }
    for (auto& op : ops_) order_.push_back(&op);
    std::stable_sort(order_.begin(), order_.end(),
                     [](const Op* a, const Op* b) { return order_of(a->method) < order_of(b->method); });
    ex.mark("checked");
  }

  store::WritePlan plan(RestJob& job) override {
    return [this, &job](store::WriteTxn& txn) -> Status {
      std::map<std::string, std::string> targets_now;
      // Conditional creates first, so that every entry referring to one, wherever it stands, names the match.
      for (Op* op : order_) {
        if (op->error || op->method != "POST" || !op->condition || !op->cached) continue;
        if (Status s = resolve_match(txn, job, *op, targets_now); !s) {
          op->error = entry_error(*op, s.error());
          if (transaction_) return fail_transaction(job, *op);
        }
      }
      for (Op* op : order_) {
        if (op->error) continue;
        pipeline::Exchange entry = entry_exchange(job, *op);
        if (op->method == "GET") {  // answers for itself, in a transaction too
          if (Status s = read(txn, job, entry, *op); !s) {
            op->error = entry_error(*op, s.error());
            entry.fail(*op->error);
          }
          pipeline::record_audit_of(txn, entry);
          continue;
        }
        Status s =
            transaction_
                ? write(txn, job, entry, *op, targets_now)
                : txn.nested([&](store::WriteTxn& t) { return write(t, job, entry, *op, targets_now); });
        if (!s) {
          op->error = entry_error(*op, s.error());
          entry.fail(*op->error);
          if (transaction_) {
            if (job.ex.audit && entry.audit) {  // the Bundle's AuditEvent names the entry's data
              job.ex.audit->entity_reference = entry.audit->entity_reference;
              job.ex.audit->patient_reference = entry.audit->patient_reference;
            }
            return *op->error;
          }
        }
        pipeline::record_audit_of(txn, entry);
        job.ex.held_ids.insert(job.ex.held_ids.end(), entry.held_ids.begin(), entry.held_ids.end());
        if (entry.audit && !entry.held && !entry.failed() && !entry.audit->patient_reference.empty())
          job.ex.patients.push_back(entry.audit->patient_reference);
      }
      return Ok{};
    };
  }

  HttpResponse respond(RestJob& job) override {
    Node out = Node::object();
    out.set("resourceType", Node::string("Bundle"));
    out.set("id", Node::string(new_resource_id()));
    out.set("type", Node::string(kind_ + "-response"));
    Node& list = out.set("entry", Node::array());
    for (auto& op : ops_) {
      Node entry = Node::object();
      Node response = Node::object();
      if (op.error) {
        response.set("status", Node::string(std::to_string(http_status(op.error->code))));
        response.set("outcome", fhir::operation_outcome(*op.error));
      } else {
        if (op.method == "GET" && op.record) {
          auto body = fhir::parse_json(op.record->body);
          if (body) entry.set("resource", std::move(*body));
        }
        response.set("status", Node::string(status_line(op.status)));
        if (op.record && !op.held) {
          response.set("location", Node::string(op.type + "/" + op.id + "/_history/" +
                                                std::to_string(op.record->version)));
          response.set("etag", Node::string(etag(op.record->version)));
          response.set("lastModified", Node::string(fhir::format_instant(op.record->last_updated_ms)));
        }
        if (!op.note.empty()) response.set("outcome", fhir::informational_outcome(op.note));
      }
      if (op.record && !op.held && (op.method == "POST" || op.method == "PUT"))
        entry.set("fullUrl", Node::string(job.base_url + "/" + op.type + "/" + op.id));
      entry.set("response", std::move(response));
      list.push(std::move(entry));
    }
    return job.json_response(200, fhir::write_json(out));
  }

 private:
  static Result<Node> parse(const RestJob& job) {
    auto kind = classify_request_body(job.request.header("Content-Type"));
    if (!kind) return std::move(kind).error();
    if (*kind == BodyKind::form)
      return Error::make(ErrorCode::unsupported_media_type,
                         "A Bundle must be application/fhir+json or application/fhir+xml");
    if (job.request.body.empty()) return Error::make(ErrorCode::invalid_input, "The request has no body");
    auto node = fhir::parse_resource(job.services.model, job.request.body,
                                     *kind == BodyKind::fhir_xml ? fhir::Format::xml : fhir::Format::json);
    if (!node) return node;
    if (const auto rt = node->string_at("resourceType"); rt != "Bundle")
      return Error::make(ErrorCode::unprocessable, "resourceType '" + std::string(rt) + "' is not Bundle",
                         "resourceType");
    return node;
  }

  std::optional<Error> prepare_op(const RestJob& job, Op& op, const Node& entry) {
    const Node* request = entry.find("request");
    if (!request || !request->is_object())
      return Error::make(ErrorCode::invalid_input, "the entry has no request");
    op.method = std::string(request->string_at("method"));
    std::string url(request->string_at("url"));
    if (url.starts_with(job.base_url + "/")) url.erase(0, job.base_url.size() + 1);
    while (url.starts_with("/")) url.erase(0, 1);
    op.full_url = std::string(entry.string_at("fullUrl"));
    const auto qmark = url.find('?');
    const std::string path = url.substr(0, qmark);
    const auto slash = path.find('/');
    op.type = path.substr(0, slash);
    if (slash != std::string::npos) op.id = path.substr(slash + 1);
    if (op.type.empty() || !job.services.model.is_resource(op.type) ||
        (!op.id.empty() && !fhir::is_valid_id(op.id)))
      return Error::make(ErrorCode::invalid_input,
                         "request.url '" + url + "' is not Type, Type/id or Type?query");
    if (op.type == "AuditEvent")  // the audit trail is written by POST /AuditEvent only, and read from it
      return Error::make(ErrorCode::method_not_allowed, "AuditEvent entries are not taken in a " + kind_);
    const auto& types = job.services.options.cached_types;
    op.cached = std::find(types.begin(), types.end(), op.type) != types.end();
    auto condition_from = [&](std::string_view query) -> std::optional<Error> {
      auto params = fhir::parse_query_string(query);
      if (!params) return params.error();
      const auto& options = job.services.options;
      auto q = fhir::parse_search(
          job.services.registry, op.type, *params,
          fhir::SearchOptions{true, options.default_count, options.max_count, job.ex.received_ms});
      if (!q) return q.error();
      if (q->clauses.empty())
        return Error::make(ErrorCode::invalid_input, "a condition needs search criteria");
      op.condition = std::move(*q);
      return std::nullopt;
    };
    if (const auto if_match = request->string_at("ifMatch"); !if_match.empty()) {
      op.if_match = parse_etag(if_match);
      if (!op.if_match)
        return Error::make(ErrorCode::invalid_input,
                           "request.ifMatch must be a version ETag such as W/\"1\"");
    }
    if (op.method == "GET") {
      op.interaction = "read";
      if (op.id.empty() || qmark != std::string::npos)
        return Error::make(ErrorCode::method_not_allowed,
                           "only reads by id (GET Type/id) are supported in a " + kind_);
    } else if (op.method == "DELETE") {
      op.interaction = "delete";
      if (op.id.empty() || qmark != std::string::npos)
        return Error::make(ErrorCode::method_not_allowed,
                           "DELETE needs Type/id (conditional delete is not supported)");
    } else if (op.method == "POST") {
      op.interaction = "create";
      if (!op.id.empty() || qmark != std::string::npos)
        return Error::make(ErrorCode::invalid_input, "POST takes the type alone as its url");
      if (const auto none_exist = request->string_at("ifNoneExist"); !none_exist.empty()) {
        std::string_view q = none_exist;
        if (const auto pos = q.find('?'); pos != std::string_view::npos) q.remove_prefix(pos + 1);
        if (auto e = condition_from(q)) return e;
      }
      op.id = new_resource_id();
    } else if (op.method == "PUT") {
      op.interaction = "update";
      if (qmark != std::string::npos) {
        if (!op.id.empty()) return Error::make(ErrorCode::invalid_input, "a conditional PUT is Type?query");
        if (auto e = condition_from(std::string_view(url).substr(qmark + 1))) return e;
      } else if (op.id.empty()) {
        return Error::make(ErrorCode::invalid_input, "PUT needs Type/id or Type?query");
      }
    } else {
      return Error::make(ErrorCode::method_not_allowed,
                         "request.method '" + op.method + "' is not supported");
    }
    if (const PartnerConfig* who = job.ex.caller.partner; who && !may(*who, op.type, op.interaction))
      return Error::make(ErrorCode::forbidden, "the sharing agreement does not allow " + who->id + " " +
                                                   op.interaction + " on " + op.type);
    if (!op.cached && (op.method == "GET" || op.method == "DELETE"))
      return Error::make(ErrorCode::not_found, op.type + " is not held by this gateway");
    if (!op.cached && op.condition)
      return Error::make(ErrorCode::invalid_input,
                         op.type + " is not held by this gateway, so a condition on it cannot be resolved");
    if (op.method == "POST" || op.method == "PUT") {
      const Node* resource = entry.find("resource");
      if (!resource || resource->string_at("resourceType") != op.type)
        return Error::make(ErrorCode::invalid_input, "the entry needs a " + op.type + " resource");
      op.resource = *resource;
      if (op.method == "PUT" && !op.id.empty()) {
        const auto body_id = op.resource.string_at("id");
        if (!body_id.empty() && body_id != op.id)
          return Error::make(ErrorCode::unprocessable, "the resource id '" + std::string(body_id) +
                                                           "' does not match the url's '" + op.id + "'");
      }
    }
    return std::nullopt;
  }

  // An entry's own exchange: the Bundle's caller and correlation, its own AuditEvent.
  static pipeline::Exchange entry_exchange(const RestJob& job, const Op& op) {
    pipeline::Exchange entry;
    entry.correlation_id = job.ex.correlation_id;
    entry.received_ms = job.ex.received_ms;
    entry.caller = job.ex.caller;
    entry.origin = job.ex.origin;
    entry.client_address = job.ex.client_address;
    if (job.ex.audit) {
      entry.audit = *job.ex.audit;
      entry.audit->interaction = op.interaction;
      entry.audit->outcome = AuditOutcome::success;
      entry.audit->outcome_desc.clear();
      entry.audit->query.clear();
      entry.audit->entity_reference.clear();
      entry.audit->patient_reference.clear();
      entry.audit->break_glass = false;
      entry.audit->recorded_ms = 0;
    }
    return entry;
  }

  static Status fail_transaction(RestJob&, const Op& op) { return *op.error; }

  Status resolve_match(store::WriteTxn& txn, RestJob& job, Op& op,
                       std::map<std::string, std::string>& targets_now) {
    pipeline::Exchange probe = entry_exchange(job, op);
    auto matches = stages::visible_matches(txn, job.services.write, probe, op.type, *op.condition);
    if (!matches) return matches.error();
    if (matches->size() > 1)
      return Error::make(ErrorCode::precondition_failed, "ifNoneExist matched more than one " + op.type);
    if (matches->empty()) {
      op.condition.reset();  // evaluated: the create goes ahead (the identity rule still applies)
      return Ok{};
    }
    // References to this entry already name the id it was given; point them at the match.
    targets_now[op.type + "/" + op.id] = op.type + "/" + matches->front().id;
    op.id = matches->front().id;
    op.record = std::move(matches->front());
    op.matched = true;
    op.status = 200;
    op.note = "an existing " + op.type + " matched ifNoneExist: nothing created";
    return Ok{};
  }

  // One entry's work; an error leaves the entry's writes to be rolled back by the caller.
  Status write(store::WriteTxn& txn, RestJob& job, pipeline::Exchange& entry, Op& op,
               const std::map<std::string, std::string>& targets_now) {
    const auto& services = job.services;
    if (!op.cached) {  // validated already; passed on to the routes, not stored
      rewrite_references(op.resource, targets_now);
      if (services.write.router)
        services.write.router->route(
            txn, job.ex.origin,
            PassThrough{op.type, op.id, "", Gate::patient_of(op.resource), fhir::write_json(op.resource)});
      op.status = 202;
      op.note = op.type + " is not held by this gateway: validated and routed, not stored";
      return Ok{};
    }
    if (op.matched) {
      if (entry.audit) pipeline::note_record(*entry.audit, op.type, op.id, op.record->version, nullptr);
      return Ok{};
    }
    WriteRequest r;
    r.type = op.type;
    r.id = op.id;
    r.if_match = op.if_match;
    if (op.method == "DELETE") {
      r.kind = WriteRequest::Kind::remove;
    } else {
      r.kind = op.method == "POST" ? WriteRequest::Kind::create : WriteRequest::Kind::update;
      if (op.method == "PUT" && op.condition) {
        r.id.clear();
        r.condition = op.condition;
      }
      op.resource.set("id", Node::string(op.id));
      rewrite_references(op.resource, targets_now);
      r.resource = op.resource;
    }
    auto done = stages::plan_write(txn, services.write, entry, std::move(r));
    if (!done) return done.error();
    using Done = WriteOutcome::Kind;
    switch (done->kind) {
      case Done::held:
        op.held = true;
        op.status = 202;
        op.note = "The write was accepted for review: a registrar of the partnership will apply or reject it";
        return Ok{};
      case Done::created:
        op.status = 201;
        break;
      case Done::deleted:
      case Done::absent:
        op.status = 204;
        break;
      default:
        op.status = 200;
        break;
    }
    op.record = std::move(done->record);
    if (op.record) op.id = op.record->id;
    return Ok{};
  }

  // A GET entry, inside the transaction and through the gate, audited as a read of its own.
  Status read(store::WriteTxn& txn, RestJob& job, pipeline::Exchange& entry, Op& op) {
    auto rec = txn.read(op.type, op.id);
    if (!rec) return Error::make(ErrorCode::not_found, op.type + "/" + op.id + " is not known");
    TxnConsents consents(txn);
    auto shown = stages::may_see_version(
        job.services.gate, entry, consents, *rec,
        [&txn, &op](std::int64_t v) -> Result<std::optional<VersionRecord>> {
          return txn.vread(op.type, op.id, v);
        },
        true);
    if (!shown) return shown.error();
    if (!*shown) return Error::make(ErrorCode::not_found, op.type + "/" + op.id + " is not known");
    if (rec->deleted) return Error::make(ErrorCode::gone, op.type + "/" + op.id + " was deleted");
    op.record = std::move(*rec);
    op.status = 200;
    return Ok{};
  }

  bool transaction_ = false;
  std::string kind_;
  std::vector<Op> ops_;
  std::vector<Op*> order_;
};

}  // namespace

std::unique_ptr<Interaction> make_bundle() {
  return std::make_unique<BundleInteraction>();
}

}  // namespace fhirgate::gateway::rest
