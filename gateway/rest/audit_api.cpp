// AuditEvent served from the chained audit trail (store/audit_log.hpp) instead of the resource tables.
// (The AuditEvent every exchange leaves is written by Api::recorded, record_api.cpp.)
//
// Who sees which AuditEvents: a privacy officer all of them (GET /AuditEvent?patient=... is the "who
// looked at my record" report); anyone else whose agreement allows reading AuditEvent only those they are
// the requesting agent of. With security off, all of them.
#include <algorithm>
#include <climits>

#include "fhir/datetime.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/bundles.hpp"
#include "gateway/rest/exchange.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;
using store::AuditRecord;

bool is_privacy_officer(const Api::Exchange& ex) {
  return !ex.who || ex.who->role == "privacy-officer";
}

std::string agent_of(const PartnerConfig& who) {
  return who.role == "partner" ? Security::organization_of(who) : who.id;
}

std::string audit_etag() {
  return "W/\"1\"";
}

store::VersionRecord version_of(const AuditRecord& r) {
  store::VersionRecord v;
  v.type = "AuditEvent";
  v.id = std::to_string(r.seq);
  v.version = 1;
  v.last_updated_ms = r.recorded_ms;
  v.method = "POST";
  v.body = render_audit_event(r).value_or("{}");
  return v;
}

std::optional<std::int64_t> seq_of(const std::string& id) {
  if (id.empty() || id.size() > 18 || !std::all_of(id.begin(), id.end(), ::isdigit)) return std::nullopt;
  return std::stoll(id);
}

// A reference parameter value as stored: "Type/id" (a bare id means the default type).
std::string reference_value(const std::string& value, const char* default_type) {
  if (value.find('/') != std::string::npos) return without_version(value);
  return std::string(default_type) + "/" + value;
}

// One page of the trail, newest first, and whether more rows follow it.
Result<std::pair<std::vector<AuditRecord>, bool>> audit_page(store::Store& store,
                                                             const store::AuditQuery& q) {
  std::vector<AuditRecord> rows;
  if (q.count > 0) {
    store::AuditQuery probe = q;
    probe.count = q.count + 1;
    auto found = store.search_audit(probe);
    if (!found) return found.error();
    rows = std::move(*found);
  }
  const bool more = static_cast<int>(rows.size()) > q.count;
  if (more) rows.resize(static_cast<std::size_t>(q.count));
  return std::make_pair(std::move(rows), more);
}

// The row AuditEvent/<id> if the caller may see it; nullopt (404) otherwise.
Result<std::optional<AuditRecord>> visible_audit(store::Store& store, const Api::Exchange& ex,
                                                 const std::string& id) {
  const auto seq = seq_of(id);
  if (!seq) return std::optional<AuditRecord>();
  auto rec = store.read_audit(*seq);
  if (!rec || !*rec) return rec;
  if (!is_privacy_officer(ex) && (*rec)->columns.agent != agent_of(*ex.who))
    return std::optional<AuditRecord>();
  return rec;
}

}  // namespace

Reply Api::audit_read(Exchange& ex, const std::string& id, const std::string& version) const {
  Reply reply;
  auto rec = version.empty() || version == "1" ? visible_audit(store_, ex, id) : std::optional<AuditRecord>();
  if (!rec) {
    reply.response = fail(ex, rec.error());
    return reply;
  }
  if (!*rec) {
    reply.response = fail(ex, Error::make(ErrorCode::not_found, "AuditEvent/" + id + " is not known"));
    return reply;
  }
  if (ex.audit) ex.audit->entity_reference = "AuditEvent/" + id + "/_history/1";
  auto body = render_audit_event(**rec);
  if (!body) {
    reply.response = fail(ex, Error::make(ErrorCode::internal, "AuditEvent/" + id + " cannot be read"));
    return reply;
  }
  reply.response = json_response(ex, 200, std::move(*body));
  reply.response.set_header("ETag", audit_etag());
  reply.response.set_header("Last-Modified", fhir::format_http_date((*rec)->recorded_ms));
  return reply;
}

Reply Api::audit_search(Exchange& ex) const {
  Reply reply;
  fhir::QueryParams params = ex.query;
  if (ex.request.method == "POST" && !ex.request.body.empty()) {
    auto form = fhir::parse_query_string(ex.request.body);
    if (!form) {
      reply.response = fail(ex, form.error());
      return reply;
    }
    params.insert(params.end(), form->begin(), form->end());
  }
  store::AuditQuery q;
  q.count = options_.default_count;
  fhir::QueryParams understood;
  for (const auto& param : params) {
    const std::string& k = param.first;  // named: clang 14 cannot capture structured bindings
    const std::string& v = param.second;
    auto bad = [&](const std::string& why) {
      reply.response = fail(ex, Error::make(ErrorCode::invalid_input, why, k));
      return reply;
    };
    if (k == "patient") {
      q.patient = reference_value(v, "Patient");
    } else if (k == "agent") {
      q.agent = v;
    } else if (k == "entity") {
      q.entity = without_version(v);
    } else if (k == "action") {
      q.action = v;
    } else if (k == "outcome") {
      q.outcome = v;
    } else if (k == "date") {
      std::string_view value = v;
      std::string prefix = "eq";
      if (value.size() > 2 && std::isalpha(static_cast<unsigned char>(value[0])) &&
          std::isalpha(static_cast<unsigned char>(value[1]))) {
        prefix = std::string(value.substr(0, 2));
        value.remove_prefix(2);
      }
      const auto range = fhir::parse_time_range(value);
      if (!range) return bad("date must be a FHIR date or dateTime, optionally with eq, lt, le, gt or ge");
      if (prefix == "eq") {
        q.from_ms = std::max(q.from_ms, range->low);
        q.to_ms = std::min(q.to_ms, range->high);
      } else if (prefix == "ge") {
        q.from_ms = std::max(q.from_ms, range->low);
      } else if (prefix == "gt") {
        q.from_ms = std::max(q.from_ms, range->high + 1);
      } else if (prefix == "le") {
        q.to_ms = std::min(q.to_ms, range->high);
      } else if (prefix == "lt") {
        q.to_ms = std::min(q.to_ms, range->low - 1);
      } else {
        return bad("AuditEvent date supports the prefixes eq, lt, le, gt and ge");
      }
    } else if (k == "_count") {
      const auto n = seq_of(v);
      if (!n) return bad("_count must be a non-negative integer");
      q.count = static_cast<int>(std::min<std::int64_t>(*n, options_.max_count));
    } else if (k == "_cursor") {
      const auto n = seq_of(v);
      if (!n) return bad("_cursor is not a cursor of this search");
      q.before_seq = *n;
      continue;
    } else if (k == "_format" || k == "_pretty") {
      continue;
    } else if (ex.prefer.strict) {
      return bad("AuditEvent search supports patient, agent, entity, date, action, outcome and _count");
    } else {
      continue;
    }
    understood.emplace_back(k, v);
  }
  if (!is_privacy_officer(ex)) {
    if (!q.agent.empty() && q.agent != agent_of(*ex.who)) q.count = 0;  // others' events: none to show
    q.agent = agent_of(*ex.who);
  }
  if (ex.audit) {
    ex.audit->query = ex.request.method + " " + ex.request.target;
    if (!q.patient.empty()) ex.audit->patient_reference = q.patient;
  }
  auto page = audit_page(store_, q);
  if (!page) {
    reply.response = fail(ex, page.error());
    return reply;
  }
  auto& [rows, more] = *page;

  std::string self_query;
  for (const auto& [k, v] : understood)
    self_query += (self_query.empty() ? "" : "&") + fhir::url_encode(k) + "=" + fhir::url_encode(v);
  const std::string base = ex.base_url + "/AuditEvent";
  auto link = [&](const std::string& cursor) {
    std::string query = self_query;
    if (!cursor.empty()) query += (query.empty() ? "" : "&") + std::string("_cursor=") + cursor;
    return query.empty() ? base : base + "?" + query;
  };
  std::vector<BundleLink> links{
      {"self", link(q.before_seq == INT64_MAX ? "" : std::to_string(q.before_seq))}};
  if (more && !rows.empty()) links.push_back({"next", link(std::to_string(rows.back().seq))});
  std::vector<SearchEntry> entries;
  for (const auto& r : rows)
    entries.push_back({base + "/" + std::to_string(r.seq), render_audit_event(r).value_or("{}")});
  reply.response =
      json_response(ex, 200, searchset_bundle(new_resource_id(), ex.now, std::nullopt, links, entries));
  return reply;
}

Reply Api::audit_history(Exchange& ex, const std::string& id) const {
  Reply reply;
  std::vector<store::VersionRecord> versions;
  std::vector<BundleLink> links;
  const std::string base = ex.base_url + "/AuditEvent" + (id.empty() ? "" : "/" + id) + "/_history";
  if (!id.empty()) {
    auto rec = visible_audit(store_, ex, id);
    if (!rec || !*rec) {
      reply.response = fail(
          ex, rec ? Error::make(ErrorCode::not_found, "AuditEvent/" + id + " is not known") : rec.error());
      return reply;
    }
    if (ex.audit) ex.audit->entity_reference = "AuditEvent/" + id;
    versions.push_back(version_of(**rec));
    links.push_back({"self", base});
  } else {
    store::AuditQuery q;
    q.count = options_.default_count;
    if (const std::string* count = param_value(ex.query, "_count"))
      if (const auto n = seq_of(*count))
        q.count = static_cast<int>(std::min<std::int64_t>(*n, options_.max_count));
    if (const std::string* cursor = param_value(ex.query, "_cursor"))
      if (const auto n = seq_of(*cursor)) q.before_seq = *n;
    if (!is_privacy_officer(ex)) q.agent = agent_of(*ex.who);
    if (ex.audit) ex.audit->query = ex.request.method + " " + ex.request.target;
    auto page = audit_page(store_, q);
    if (!page) {
      reply.response = fail(ex, page.error());
      return reply;
    }
    const auto& [rows, more] = *page;
    for (const auto& r : rows) versions.push_back(version_of(r));
    const std::string count_param = "_count=" + std::to_string(q.count);
    links.push_back({"self", base + "?" + count_param});
    if (more && !rows.empty())
      links.push_back({"next", base + "?" + count_param + "&_cursor=" + std::to_string(rows.back().seq)});
  }
  // The total is what this page shows plus, when there is more, at least one more: the trail is not
  // counted on every request.
  const auto total = static_cast<std::int64_t>(versions.size()) + (links.size() > 1 ? 1 : 0);
  reply.response =
      json_response(ex, 200, history_bundle(new_resource_id(), ex.now, total, links, ex.base_url, versions));
  return reply;
}

Reply Api::audit_create(Exchange& ex) const {
  Reply reply;
  auto resource = accept_resource(ex, "AuditEvent");
  if (!resource) {
    reply.response = fail(ex, resource.error());
    return reply;
  }
  // Stored as sent; the search columns come from the event itself.
  struct State {
    AuditRecord record;
  };
  auto state = std::make_shared<State>();
  reply.plan = [state, audit = ex.audit,
                row = posted_audit_record(std::move(*resource))](store::WriteTxn& txn) mutable -> Status {
    state->record = txn.append_audit(std::move(row));
    if (audit) audit->entity_reference = "AuditEvent/" + std::to_string(state->record.seq) + "/_history/1";
    return Ok{};
  };
  reply.after_commit = [this, state, ex = Exchange(ex)](const Status& s) {
    if (!s) return fail(ex, s.error());
    const std::string id = std::to_string(state->record.seq);
    HttpResponse r;
    switch (ex.prefer.return_kind) {
      case Prefer::Return::minimal:
        r.status = 201;
        break;
      case Prefer::Return::operation_outcome:
        r = json_response(ex, 201, fhir::write_json(fhir::informational_outcome("Created AuditEvent/" + id)));
        break;
      default:
        r = json_response(ex, 201, render_audit_event(state->record).value_or("{}"));
        break;
    }
    r.set_header("ETag", audit_etag());
    r.set_header("Last-Modified", fhir::format_http_date(state->record.recorded_ms));
    r.set_header("Location", ex.base_url + "/AuditEvent/" + id + "/_history/1");
    return r;
  };
  return reply;
}

}  // namespace fhirgate::gateway::rest
