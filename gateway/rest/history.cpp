// history-instance and history-type (R4 http.html#history): every version is shown only where the gate
// lets the caller see it, as a vread would — a deletion where the caller could see the version before it —
// filtered before paging, so pages stay full and `total` counts only what the caller may see.
#include <limits>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/bundles.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

class History final : public Interaction {
 public:
  History(std::string type, std::string id) : type_(std::move(type)), id_(std::move(id)) {}

  const char* interaction() const override { return id_.empty() ? "history-type" : "history-instance"; }

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    const auto& options = job.services.options;
    int count = options.default_count;
    std::int64_t since = std::numeric_limits<std::int64_t>::min();
    for (const auto& [k, v] : job.query) {
      if (k == "_count") {
        try {
          std::size_t used = 0;
          const long n = std::stol(v, &used);
          if (used != v.size() || n < 0) throw std::invalid_argument("count");
          count = static_cast<int>(std::min<long>(n, options.max_count));
        } catch (const std::exception&) {
          return ex.fail(
              Error::make(ErrorCode::invalid_input, "_count must be a non-negative integer", "_count"));
        }
        understood_.emplace_back(k, v);
      } else if (k == "_since") {
        const auto range = fhir::parse_time_range(v);
        if (!range)
          return ex.fail(Error::make(ErrorCode::invalid_input, "_since must be an instant", "_since"));
        since = range->low;
        understood_.emplace_back(k, v);
      } else if (k == "_cursor") {
        cursor_ = v;
      } else if (k == "_format" || k == "_pretty") {
        continue;
      } else if (job.prefer.strict) {
        return ex.fail(Error::make(ErrorCode::invalid_input, "Unknown parameter '" + k + "' for history", k));
      }
    }
    if (ex.audit && !id_.empty()) {  // a type history's query is the request (rest_job.cpp)
      ex.audit->entity_reference = type_ + "/" + id_;
      if (type_ == "Patient") ex.audit->patient_reference = "Patient/" + id_;
    }
    store::Visibility visible;
    if (job.ex.caller.partner) {
      visible = [&job, this](const store::VersionRecord& rec) -> Result<bool> {
        auto shown = job.readable(rec, false);
        if (shown && *shown && job.ex.audit && type_ != "Patient" && !rec.deleted)
          if (auto parsed = fhir::parse_json(rec.body))
            if (auto patient = Gate::patient_of(*parsed); !patient.empty()) patients_.push_back(patient);
        return shown;
      };
    }
    auto cursor = job.open_cursor(cursor_);
    if (!cursor) return ex.fail(cursor.error());
    auto page = job.services.store.history(type_, id_, since, count, *cursor, visible);
    if (!page) return ex.fail(page.error());
    if (!id_.empty() && page->total && *page->total == 0) {
      if (ex.audit && !page->versions.empty())
        ex.audit->outcome_desc = "consent: not shared with " + job.caller_id();
      return ex.fail(Error::make(ErrorCode::not_found, type_ + "/" + id_ + " is not known"));
    }
    if (ex.audit) {
      for (const auto& p : patients_)
        if (std::find(ex.seen_patients.begin(), ex.seen_patients.end(), p) == ex.seen_patients.end())
          ex.seen_patients.push_back(p);
      if (type_ == "Patient" && id_.empty())
        for (const auto& v : page->versions) {
          const std::string p = "Patient/" + v.id;
          if (std::find(ex.seen_patients.begin(), ex.seen_patients.end(), p) == ex.seen_patients.end())
            ex.seen_patients.push_back(p);
        }
      if (!id_.empty() && ex.audit->patient_reference.empty() && !ex.seen_patients.empty()) {
        ex.audit->patient_reference = ex.seen_patients.front();
        ex.seen_patients.erase(ex.seen_patients.begin());
      }
    }
    page_ = std::move(*page);
  }

  HttpResponse respond(RestJob& job) override {
    std::string self_query;
    for (const auto& [k, v] : understood_)
      self_query += (self_query.empty() ? "" : "&") + fhir::url_encode(k) + "=" + fhir::url_encode(v);
    const std::string base = job.base_url + "/" + type_ + (id_.empty() ? "" : "/" + id_) + "/_history";
    auto link = [&](const std::string& c) {
      std::string q = self_query;
      if (!c.empty()) q += (q.empty() ? "" : "&") + std::string("_cursor=") + c;
      return q.empty() ? base : base + "?" + q;
    };
    std::vector<BundleLink> links{{"self", link(cursor_)}};
    if (!page_.next_cursor.empty()) links.push_back({"next", link(job.seal_cursor(page_.next_cursor))});
    return job.json_response(200, history_bundle(new_resource_id(), job.ex.received_ms, page_.total, links,
                                                 job.base_url, page_.versions));
  }

 private:
  std::string type_, id_;
  std::string cursor_;
  fhir::QueryParams understood_;
  std::vector<std::string> patients_;
  store::HistoryPage page_;
};

}  // namespace

std::unique_ptr<Interaction> make_history(std::string type, std::string id) {
  return std::make_unique<History>(std::move(type), std::move(id));
}

}  // namespace fhirgate::gateway::rest
