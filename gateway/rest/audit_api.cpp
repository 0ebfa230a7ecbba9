// AuditEvent, served from the chained audit trail (store/audit_log.hpp) instead of the resource tables.
// (The AuditEvent every exchange leaves is written by the commit stage, pipeline/record.hpp.)
//
// Who sees which AuditEvents: the privacy officer all of them (GET /AuditEvent?patient=... is the "who
// looked at my record" report); anyone else whose agreement allows reading AuditEvent only those it is the
// requesting agent of, and of those, a refused or held request's names neither its data nor its patient,
// nor is it found by its patient or entity: what the gateway refused to tell a partner must not come back
// through the partner's audit trail. With security off, all of them.
//
// Searches and history page by seq, newest first; their links carry the seq sealed, as every paging
// cursor is (rest_job.hpp), never the bare number.
#include <algorithm>
#include <climits>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/bundles.hpp"
#include "gateway/rest/router.hpp"
#include "gateway/security/agreement.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;
using store::AuditRecord;

bool is_privacy_officer(const RestJob& job) {
  return !job.ex.caller.partner || job.ex.caller.partner->role == "privacy-officer";
}

std::string audit_etag() {
  return "W/\"1\"";
}

std::string rendered(const RestJob& job, const AuditRecord& r) {
  return render_audit_event(r, !is_privacy_officer(job)).value_or("{}");
}

store::VersionRecord version_of(const RestJob& job, const AuditRecord& r) {
  store::VersionRecord v;
  v.type = "AuditEvent";
  v.id = std::to_string(r.seq);
  v.version = 1;
  v.last_updated_ms = r.recorded_ms;
  v.method = "POST";
  v.body = rendered(job, r);
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

// Paging through the trail: a cursor is the seq the next page starts below, sealed as every paging
// cursor is (security/paging_cursors.hpp) so that a link says nothing of how many events lie between two
// pages and an edited one is refused; marked as the trail's, so that no other paging's cursor opens here.
constexpr std::string_view kTrailCursor = "audit-before:";

std::string seal_trail_cursor(const RestJob& job, std::int64_t before_seq) {
  return job.seal_cursor(std::string(kTrailCursor) + std::to_string(before_seq));
}

// Errors: invalid_input ("Invalid or expired paging cursor") for anything seal_trail_cursor did not make.
Result<std::int64_t> open_trail_cursor(const RestJob& job, const std::string& sealed) {
  auto opened = job.open_cursor(sealed);
  if (!opened) return opened.error();
  const std::string_view text = *opened;
  const auto seq =
      text.starts_with(kTrailCursor) ? seq_of(std::string(text.substr(kTrailCursor.size()))) : std::nullopt;
  if (!seq) return Error::make(ErrorCode::invalid_input, "Invalid or expired paging cursor", "_cursor");
  return *seq;
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
Result<std::optional<AuditRecord>> visible_audit(const RestJob& job, const std::string& id) {
  const auto seq = seq_of(id);
  if (!seq) return std::optional<AuditRecord>();
  auto rec = job.services.store.read_audit(*seq);
  if (!rec || !*rec) return rec;
  if (!is_privacy_officer(job) && (*rec)->columns.agent != agent_reference(*job.ex.caller.partner))
    return std::optional<AuditRecord>();
  return rec;
}

class AuditRead final : public Interaction {
 public:
  AuditRead(std::string id, std::string version) : id_(std::move(id)), version_(std::move(version)) {}
  const char* interaction() const override { return version_.empty() ? "read" : "vread"; }

  void prepare(RestJob& job) override {
    auto rec = version_.empty() || version_ == "1" ? visible_audit(job, id_) : std::optional<AuditRecord>();
    if (!rec) return job.ex.fail(rec.error());
    if (!*rec) return job.ex.fail(Error::make(ErrorCode::not_found, "AuditEvent/" + id_ + " is not known"));
    if (job.ex.audit) job.ex.audit->entity_reference = "AuditEvent/" + id_ + "/_history/1";
    record_ = std::move(**rec);
  }

  HttpResponse respond(RestJob& job) override {
    HttpResponse r = job.json_response(200, rendered(job, record_));
    r.set_header("ETag", audit_etag());
    r.set_header("Last-Modified", fhir::format_http_date(record_.recorded_ms));
    return r;
  }

 private:
  std::string id_, version_;
  AuditRecord record_;
};

class AuditSearch final : public Interaction {
 public:
  const char* interaction() const override { return "search-type"; }

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    auto params = job.search_parameters();
    if (!params) return ex.fail(params.error());
    const auto& options = job.services.options;
    q_.count = options.default_count;
    for (const auto& param : *params) {
      const std::string& k = param.first;
      const std::string& v = param.second;
      auto bad = [&](const std::string& why) { ex.fail(Error::make(ErrorCode::invalid_input, why, k)); };
      if (k == "patient") {
        q_.patient = reference_value(v, "Patient");
      } else if (k == "agent") {
        // A partner's id stands for its Organization, as events name partners.
        const PartnerConfig* named = v.find('/') == std::string::npos && job.services.config
                                         ? find_partner(*job.services.config, v)
                                         : nullptr;
        q_.agent = named ? agent_reference(*named) : v;
      } else if (k == "entity") {
        q_.entity = without_version(v);
      } else if (k == "action") {
        q_.action = v;
      } else if (k == "outcome") {
        q_.outcome = v;
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
          q_.from_ms = std::max(q_.from_ms, range->low);
          q_.to_ms = std::min(q_.to_ms, range->high);
        } else if (prefix == "ge") {
          q_.from_ms = std::max(q_.from_ms, range->low);
        } else if (prefix == "gt") {
          q_.from_ms = std::max(q_.from_ms, range->high + 1);
        } else if (prefix == "le") {
          q_.to_ms = std::min(q_.to_ms, range->high);
        } else if (prefix == "lt") {
          q_.to_ms = std::min(q_.to_ms, range->low - 1);
        } else {
          return bad("AuditEvent date supports the prefixes eq, lt, le, gt and ge");
        }
      } else if (k == "_count") {
        const auto n = seq_of(v);
        if (!n) return bad("_count must be a non-negative integer");
        q_.count = static_cast<int>(std::min<std::int64_t>(*n, options.max_count));
      } else if (k == "_cursor") {
        auto before = open_trail_cursor(job, v);
        if (!before) return ex.fail(before.error());
        q_.before_seq = *before;
        sealed_cursor_ = v;
        continue;
      } else if (k == "_summary") {
        if (v != "count" && v != "false") return bad("_summary=" + v + " is not supported");
        summary_count_ = v == "count";
      } else if (k == "_format" || k == "_pretty") {
        continue;
      } else if (job.prefer.strict) {
        return bad(
            "AuditEvent search supports patient, agent, entity, date, action, outcome, _count and "
            "_summary=count");
      } else {
        continue;
      }
      understood_.emplace_back(k, v);
    }
    if (!is_privacy_officer(job)) {
      const std::string own = agent_reference(*ex.caller.partner);
      if (!q_.agent.empty() && q_.agent != own) nothing_visible_ = true;  // others' events
      q_.agent = own;
      // A refused or held request of its own is not found by the patient or the data it was about.
      if (!q_.patient.empty() || !q_.entity.empty()) {
        if (!q_.outcome.empty() && q_.outcome != "0") nothing_visible_ = true;
        q_.outcome = "0";
      }
    }
    if (ex.audit && !q_.patient.empty()) ex.audit->patient_reference = q_.patient;
    if (summary_count_) {  // R4 search.html#summary: the total alone, of what the caller may see
      auto total =
          nothing_visible_ ? Result<std::int64_t>(std::int64_t{0}) : job.services.store.count_audit(q_);
      if (!total) return ex.fail(total.error());
      total_ = *total;
      return;
    }
    if (nothing_visible_) q_.count = 0;
    auto page = audit_page(job.services.store, q_);
    if (!page) return ex.fail(page.error());
    rows_ = std::move(page->first);
    more_ = page->second;
  }

  HttpResponse respond(RestJob& job) override {
    std::string self_query;
    for (const auto& [k, v] : understood_)
      self_query += (self_query.empty() ? "" : "&") + fhir::url_encode(k) + "=" + fhir::url_encode(v);
    const std::string base = job.base_url + "/AuditEvent";
    auto link = [&](const std::string& cursor) {
      std::string query = self_query;
      if (!cursor.empty()) query += (query.empty() ? "" : "&") + std::string("_cursor=") + cursor;
      return query.empty() ? base : base + "?" + query;
    };
    std::vector<BundleLink> links{{"self", link(sealed_cursor_)}};
    if (more_ && !rows_.empty()) links.push_back({"next", link(seal_trail_cursor(job, rows_.back().seq))});
    std::vector<SearchEntry> entries;
    for (const auto& r : rows_) entries.push_back({base + "/" + std::to_string(r.seq), rendered(job, r)});
    return job.json_response(200,
                             searchset_bundle(new_resource_id(), job.ex.received_ms, total_, links, entries));
  }

 private:
  store::AuditQuery q_;
  std::string sealed_cursor_;  // the `_cursor` as the client sent it
  fhir::QueryParams understood_;
  bool nothing_visible_ = false;  // a partner asking for others' events, or its refusals by patient or data
  bool summary_count_ = false;
  std::optional<std::int64_t> total_;  // only with _summary=count: the trail is not counted otherwise
  std::vector<AuditRecord> rows_;
  bool more_ = false;
};

class AuditHistory final : public Interaction {
 public:
  explicit AuditHistory(std::string id) : id_(std::move(id)) {}
  const char* interaction() const override { return id_.empty() ? "history-type" : "history-instance"; }

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    const std::string base = job.base_url + "/AuditEvent" + (id_.empty() ? "" : "/" + id_) + "/_history";
    if (!id_.empty()) {
      auto rec = visible_audit(job, id_);
      if (!rec || !*rec)
        return ex.fail(rec ? Error::make(ErrorCode::not_found, "AuditEvent/" + id_ + " is not known")
                           : rec.error());
      if (ex.audit) ex.audit->entity_reference = "AuditEvent/" + id_;
      versions_.push_back(version_of(job, **rec));
      links_.push_back({"self", base});
      return;
    }
    store::AuditQuery q;
    const auto& options = job.services.options;
    q.count = options.default_count;
    if (const std::string* count = param_value(job.query, "_count"))
      if (const auto n = seq_of(*count))
        q.count = static_cast<int>(std::min<std::int64_t>(*n, options.max_count));
    if (const std::string* cursor = param_value(job.query, "_cursor")) {
      auto before = open_trail_cursor(job, *cursor);
      if (!before) return ex.fail(before.error());
      q.before_seq = *before;
    }
    if (!is_privacy_officer(job)) q.agent = agent_reference(*ex.caller.partner);
    auto page = audit_page(job.services.store, q);
    if (!page) return ex.fail(page.error());
    const auto& [rows, more] = *page;
    for (const auto& r : rows) versions_.push_back(version_of(job, r));
    const std::string count_param = "_count=" + std::to_string(q.count);
    links_.push_back({"self", base + "?" + count_param});
    if (more && !rows.empty())
      links_.push_back(
          {"next", base + "?" + count_param + "&_cursor=" + seal_trail_cursor(job, rows.back().seq)});
  }

  HttpResponse respond(RestJob& job) override {
    // The total is what this page shows plus, when there is more, at least one more: the trail is not
    // counted on every request.
    const auto total = static_cast<std::int64_t>(versions_.size()) + (links_.size() > 1 ? 1 : 0);
    return job.json_response(
        200, history_bundle(new_resource_id(), job.ex.received_ms, total, links_, job.base_url, versions_));
  }

 private:
  std::string id_;
  std::vector<store::VersionRecord> versions_;
  std::vector<BundleLink> links_;
};

class AuditCreate final : public Interaction {
 public:
  const char* interaction() const override { return "create"; }
  bool has_work(const RestJob&) const override { return true; }

  void work(RestJob& job) override {
    auto kind = classify_request_body(job.request.header("Content-Type"));
    if (!kind) return job.ex.fail(kind.error());
    if (*kind == BodyKind::form || job.request.body.empty())
      return job.ex.fail(
          Error::make(ErrorCode::unsupported_media_type,
                      "A resource body must be application/fhir+json or application/fhir+xml"));
    auto resource =
        fhir::parse_resource(job.services.model, job.request.body,
                             *kind == BodyKind::fhir_xml ? fhir::Format::xml : fhir::Format::json);
    if (!resource) return job.ex.fail(resource.error());
    if (resource->string_at("resourceType") != "AuditEvent")
      return job.ex.fail(Error::make(ErrorCode::unprocessable,
                                     "resourceType '" + std::string(resource->string_at("resourceType")) +
                                         "' does not match the URL's type 'AuditEvent'",
                                     "resourceType"));
    if (Status valid = job.check_for_write(*resource, "AuditEvent", true); !valid)
      return job.ex.fail(valid.error());
    row_ = posted_audit_record(std::move(*resource));
  }

  store::WritePlan plan(RestJob& job) override {
    return [this, &job](store::WriteTxn& txn) -> Status {
      record_ = txn.append_audit(std::move(row_));
      if (job.ex.audit)
        job.ex.audit->entity_reference = "AuditEvent/" + std::to_string(record_.seq) + "/_history/1";
      return Ok{};
    };
  }

  HttpResponse respond(RestJob& job) override {
    const std::string id = std::to_string(record_.seq);
    HttpResponse r;
    switch (job.prefer.return_kind) {
      case Prefer::Return::minimal:
        r.status = 201;
        break;
      case Prefer::Return::operation_outcome:
        r = job.json_response(201, fhir::write_json(fhir::informational_outcome("Created AuditEvent/" + id)));
        break;
      default:
        r = job.json_response(201, render_audit_event(record_).value_or("{}"));
        break;
    }
    r.set_header("ETag", audit_etag());
    r.set_header("Last-Modified", fhir::format_http_date(record_.recorded_ms));
    r.set_header("Location", job.base_url + "/AuditEvent/" + id + "/_history/1");
    return r;
  }

 private:
  AuditRecord row_;
  AuditRecord record_;
};

}  // namespace

std::unique_ptr<Interaction> make_audit_read(std::string id, std::string version) {
  return std::make_unique<AuditRead>(std::move(id), std::move(version));
}
std::unique_ptr<Interaction> make_audit_search() {
  return std::make_unique<AuditSearch>();
}
std::unique_ptr<Interaction> make_audit_history(std::string id) {
  return std::make_unique<AuditHistory>(std::move(id));
}
std::unique_ptr<Interaction> make_audit_create() {
  return std::make_unique<AuditCreate>();
}

}  // namespace fhirgate::gateway::rest
