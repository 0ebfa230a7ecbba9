// POST / with a transaction or batch Bundle (R4 http.html#transaction).
//
// Design. Every entry is checked on the io thread first: its request (method and URL), the caller's
// agreement for that interaction, and for POST/PUT its resource, validated against R4 and the type's
// profiles after the references between entries have been rewritten. POST entries get their new id up
// front, so a reference to an entry's fullUrl (urn:uuid:..., urn:oid:... or an absolute URL) becomes
// Type/id before validation; a conditional create that finds its match rewrites those references again
// at write time. Then one write plan does the writes in the order R4 prescribes (DELETE, POST, PUT) in
// one SQLite transaction: for a transaction, the first entry that fails fails the whole plan (nothing is
// stored, the OperationOutcome names Bundle.entry[i]); for a batch, each entry runs in its own savepoint
// and answers for itself. GET entries (read by id) run after the commit, through the same consent check
// as a read. Each entry that writes records its own AuditEvent in the same commit, besides the
// exchange's (interaction transaction/batch).
//
// Resource types the gateway does not hold (not in cachedTypes) are validated, passed to the routes in
// the same commit (routing.hpp) and answered 202 with an outcome saying they were not stored.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "fhir/search_query.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/exchange.hpp"
#include "gateway/security/security.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;
using store::VersionRecord;
using store::WriteTxn;

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
  // The answer.
  std::optional<Error> error;
  int status = 0;
  std::optional<VersionRecord> record;
  std::string note;  // informational outcome
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

}  // namespace

Reply Api::bundle(Exchange& ex) const {
  Reply reply;
  ex.journal_type = "Bundle";
  auto parsed = parse_body(ex, "Bundle");
  if (!parsed) {
    reply.response = fail(ex, parsed.error());
    return reply;
  }
  const std::string kind(parsed->string_at("type"));
  if (kind != "transaction" && kind != "batch") {
    reply.response =
        fail(ex, Error::make(ErrorCode::invalid_input,
                             "POST / takes a Bundle of type transaction or batch, not '" + kind + "'",
                             "Bundle.type"));
    return reply;
  }
  const bool transaction = kind == "transaction";
  ex.journal_type = kind;
  if (ex.audit) ex.audit->interaction = kind;
  auto ops = std::make_shared<std::vector<Op>>();
  const Node* entries = parsed->find("entry");
  if (entries && entries->is_array()) {
    for (std::size_t i = 0; i < entries->items().size(); ++i) {
      ops->push_back(Op{});
      ops->back().index = i;
    }
  }
  auto prepare = [&](Op& op, const Node& entry) -> std::optional<Error> {
    const Node* request = entry.find("request");
    if (!request || !request->is_object())
      return Error::make(ErrorCode::invalid_input, "the entry has no request");
    op.method = std::string(request->string_at("method"));
    std::string url(request->string_at("url"));
    if (url.starts_with(ex.base_url + "/")) url.erase(0, ex.base_url.size() + 1);
    while (url.starts_with("/")) url.erase(0, 1);
    op.full_url = std::string(entry.string_at("fullUrl"));
    const auto qmark = url.find('?');
    const std::string path = url.substr(0, qmark);
    const auto slash = path.find('/');
    op.type = path.substr(0, slash);
    if (slash != std::string::npos) op.id = path.substr(slash + 1);
    if (op.type.empty() || !model_.is_resource(op.type) || (!op.id.empty() && !fhir::is_valid_id(op.id)))
      return Error::make(ErrorCode::invalid_input,
                         "request.url '" + url + "' is not Type, Type/id or Type?query");
    if (op.type == "AuditEvent")  // the audit trail is written by POST /AuditEvent only, and read from it
      return Error::make(ErrorCode::method_not_allowed, "AuditEvent entries are not taken in a " + kind);
    op.cached = std::find(options_.cached_types.begin(), options_.cached_types.end(), op.type) !=
                options_.cached_types.end();
    auto condition_from = [&](std::string_view query) -> std::optional<Error> {
      auto params = fhir::parse_query_string(query);
      if (!params) return params.error();
      auto q =
          fhir::parse_search(registry_, op.type, *params,
                             fhir::SearchOptions{true, options_.default_count, options_.max_count, ex.now});
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
                           "only reads by id (GET Type/id) are supported in a " + kind);
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
    if (ex.who && !Security::may(*ex.who, op.type, op.interaction))
      return Error::make(ErrorCode::forbidden, "the sharing agreement does not allow " + ex.who->id + " " +
                                                   op.interaction + " on " + op.type);
    if (!op.cached && (op.method == "GET" || op.method == "DELETE"))
      return Error::make(ErrorCode::not_found, op.type + " is not held by this gateway");
    if (!op.cached && op.condition)
      return Error::make(ErrorCode::invalid_input, op.type +
                                                       " is not held by this gateway, so a condition on it "
                                                       "cannot be resolved");
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
  };

  // Requests first; a transaction stops at the first bad one.
  std::map<std::string, std::string> targets;  // fullUrl -> Type/id
  for (auto& op : *ops) {
    if (auto e = prepare(op, entries->items()[op.index])) {
      op.error = entry_error(op, std::move(*e));
      if (transaction) {
        reply.response = fail(ex, *op.error);
        return reply;
      }
      continue;
    }
    if (!op.full_url.empty() && !op.id.empty() && (op.method == "POST" || op.method == "PUT")) {
      if (!targets.emplace(op.full_url, op.type + "/" + op.id).second) {  // R4 bdl-7
        op.error = entry_error(op, Error::make(ErrorCode::invalid_input,
                                               "fullUrl '" + op.full_url + "' is used by an earlier entry"));
        if (transaction) {
          reply.response = fail(ex, *op.error);
          return reply;
        }
      }
    }
  }
  // References between entries, then validation.
  for (auto& op : *ops) {
    if (op.error || (op.method != "POST" && op.method != "PUT")) continue;
    rewrite_references(op.resource, targets);
    if (!op.id.empty()) op.resource.set("id", Node::string(op.id));
    if (Status valid = check_for_write(op.resource, op.type); !valid) {
      op.error = entry_error(op, valid.error());
      if (transaction) {
        reply.response = fail(ex, *op.error);
        return reply;
      }
    }
  }

  std::vector<Op*> order;
  for (auto& op : *ops) order.push_back(&op);
  std::stable_sort(order.begin(), order.end(),
                   [](const Op* a, const Op* b) { return order_of(a->method) < order_of(b->method); });
  const std::string supplier = ex.who ? ex.who->id : std::string();
  const std::shared_ptr<const AuditInput> audit_base = ex.audit;

  // One entry's write; an error leaves the entry's writes to be rolled back by the caller.
  auto write = [supplier, audit_base, may_change = change_check(ex)](
                   WriteTxn& txn, Op& op, std::map<std::string, std::string>& targets_now) -> Status {
    if (op.method == "GET") return Ok{};
    if (!op.cached) {  // validated already; passed on to the routes, not stored
      rewrite_references(op.resource, targets_now);
      const std::string patient = Security::patient_of(op.resource);
      txn.pass_through({op.type, op.id, "", patient, fhir::write_json(op.resource)});
      op.status = 202;
      op.note = op.type + " is not held by this gateway: validated and routed, not stored";
      return Ok{};
    }
    if (op.status != 0) return Ok{};  // a conditional create that matched (resolve_matches)
    std::optional<VersionRecord> current;
    if (op.condition) {  // PUT Type?query
      const auto ids = txn.matching_ids(*op.condition, 2);
      if (ids.size() > 1)
        return Error::make(ErrorCode::precondition_failed, "the condition matched more than one " + op.type);
      op.id = ids.empty() ? new_resource_id() : ids.front();
    }
    if (op.method == "DELETE" || op.method == "PUT") current = txn.read(op.type, op.id);
    const bool live = current && !current->deleted;
    if (live)
      if (Status allowed = may_change(*current); !allowed) return allowed;
    if (op.if_match && (!live || current->version != *op.if_match))
      return Error::make(ErrorCode::precondition_failed,
                         live ? "version conflict: ifMatch W/\"" + std::to_string(*op.if_match) +
                                    "\" but the current version is W/\"" + std::to_string(current->version) +
                                    "\""
                              : "ifMatch given but " + op.type + "/" + op.id + " does not exist");
    AuditInput in;
    if (audit_base) {
      in = *audit_base;
      in.interaction = op.interaction;
      in.outcome = "0";
      in.outcome_desc.clear();
      in.query.clear();
      in.recorded_ms = txn.now_ms();
    }
    if (op.method == "DELETE") {
      op.record = txn.remove(op.type, op.id);
      op.status = 204;
      if (audit_base) {
        in.entity_reference = op.type + "/" + op.id;
        in.patient_reference = op.type == "Patient" ? "Patient/" + op.id : std::string();
      }
    } else {
      op.resource.set("id", Node::string(op.id));
      rewrite_references(op.resource, targets_now);
      if (!supplier.empty()) {
        auto held = live ? fhir::parse_json(current->body) : Result<Node>(Error{});
        Security::tag_supplier(op.resource, held ? &*held : nullptr, supplier);
      }
      if (audit_base)
        in.patient_reference = op.type == "Patient" ? "Patient/" + op.id : Security::patient_of(op.resource);
      op.record = txn.put(op.type, op.id, op.resource, op.method.c_str());
      op.status = live ? 200 : 201;
      if (audit_base)
        in.entity_reference = op.type + "/" + op.id + "/_history/" + std::to_string(op.record->version);
    }
    if (audit_base) record_audit(txn, in);
    return Ok{};
  };

  // Conditional creates first, so that every entry referring to one, wherever it stands, names the match.
  auto resolve_match = [](WriteTxn& txn, Op& op, std::map<std::string, std::string>& targets_now) -> Status {
    const auto ids = txn.matching_ids(*op.condition, 2);
    if (ids.size() > 1)
      return Error::make(ErrorCode::precondition_failed, "ifNoneExist matched more than one " + op.type);
    if (ids.empty()) return Ok{};
    // References to this entry already name the id it was given; point them at the match.
    targets_now[op.type + "/" + op.id] = op.type + "/" + ids.front();
    op.id = ids.front();
    op.record = *txn.read(op.type, op.id);
    op.status = 200;
    op.note = "an existing " + op.type + " matched ifNoneExist: nothing created";
    return Ok{};
  };

  reply.plan = [ops, order, transaction, write, resolve_match](WriteTxn& txn) -> Status {
    std::map<std::string, std::string> targets_now;
    for (Op* op : order) {
      if (op->error || op->method != "POST" || !op->condition || !op->cached) continue;
      if (Status s = resolve_match(txn, *op, targets_now); !s) {
        if (transaction) return entry_error(*op, s.error());
        op->error = entry_error(*op, s.error());
      }
    }
    for (Op* op : order) {
      if (op->error) continue;
      if (transaction) {
        if (Status s = write(txn, *op, targets_now); !s) return entry_error(*op, s.error());
      } else {
        Status s = txn.nested([&](WriteTxn& t) { return write(t, *op, targets_now); });
        if (!s) op->error = entry_error(*op, s.error());
      }
    }
    return Ok{};
  };
  reply.after_commit = [this, ops, kind, ex = Exchange(ex)](const Status& committed) mutable {
    if (!committed) return fail(ex, committed.error());
    Node out = Node::object();
    out.set("resourceType", Node::string("Bundle"));
    out.set("id", Node::string(new_resource_id()));
    out.set("type", Node::string(kind + "-response"));
    Node& list = out.set("entry", Node::array());
    for (auto& op : *ops) {
      if (!op.error && op.method == "GET") {
        auto rec = store_.read(op.type, op.id);
        if (!rec) {
          op.error = entry_error(op, rec.error());
        } else if (!*rec || !readable(ex, **rec)) {
          op.error =
              entry_error(op, Error::make(ErrorCode::not_found, op.type + "/" + op.id + " is not known"));
        } else if ((*rec)->deleted) {  // as a read answers
          op.error = entry_error(op, Error::make(ErrorCode::gone, op.type + "/" + op.id + " was deleted"));
        } else {
          op.record = **rec;
          op.status = 200;
        }
      }
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
        if (op.record) {
          response.set("location", Node::string(op.type + "/" + op.id + "/_history/" +
                                                std::to_string(op.record->version)));
          response.set("etag", Node::string(etag(op.record->version)));
          response.set("lastModified", Node::string(fhir::format_instant(op.record->last_updated_ms)));
        }
        if (!op.note.empty()) response.set("outcome", fhir::informational_outcome(op.note));
      }
      if (op.record && (op.method == "POST" || op.method == "PUT"))
        entry.set("fullUrl", Node::string(ex.base_url + "/" + op.type + "/" + op.id));
      entry.set("response", std::move(response));
      list.push(std::move(entry));
    }
    return json_response(ex, 200, fhir::write_json(out));
  };
  return reply;
}

}  // namespace fhirgate::gateway::rest
