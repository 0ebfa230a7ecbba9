// search-type (R4 search.html), by GET and by POST _search: the store's indexed search, through the gate
// before paging (pages stay full, cursors valid, totals count only what the caller may see). Each patient
// whose data leaves is named in the AuditEvent, beside the search as received, URL and form body
// (rest_job.cpp). An entry that cannot be written in the negotiated format
// (a record stored before such input was refused) is answered as an OperationOutcome entry, so that one
// record never turns the whole search into an error.
#include <algorithm>

#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/bundles.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

constexpr std::size_t kMaxSearchTerms = 200;

// `_elements`: only the elements asked for (and resourceType, id, meta), marked SUBSETTED.
std::string subset(std::string json, const std::vector<std::string>& elements) {
  auto parsed = fhir::parse_json(json);
  if (!parsed) return json;
  Node out = Node::object();
  for (auto& [k, v] : parsed->members()) {
    const bool keep = k == "resourceType" || k == "id" || k == "meta" ||
                      std::find(elements.begin(), elements.end(), k) != elements.end();
    if (keep) out.set(k, std::move(v));
  }
  Node* meta = out.find("meta");
  if (!meta) meta = &out.set("meta", Node::object());
  Node* tags = meta->find("tag");
  if (!tags || !tags->is_array()) tags = &meta->set("tag", Node::array());
  Node tag = Node::object();
  tag.set("system", Node::string("http://terminology.hl7.org/CodeSystem/v3-ObservationValue"));
  tag.set("code", Node::string("SUBSETTED"));
  tags->push(std::move(tag));
  return fhir::write_json(out);
}

class Search final : public Interaction {
 public:
  explicit Search(std::string type) : type_(std::move(type)) {}

  const char* interaction() const override { return "search-type"; }

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    auto searched = job.search_parameters();
    if (!searched) return ex.fail(searched.error());
    const fhir::QueryParams& params = *searched;
    // Each parameter and each of its comma-separated values is a term of the SQL query; SQLite's limits
    // (expression depth, variables) are far above any real search but not above a hostile one.
    std::size_t terms = 0;
    for (const auto& [key, value] : params)
      terms += 1 + static_cast<std::size_t>(std::count(value.begin(), value.end(), ','));
    if (terms > kMaxSearchTerms)
      return ex.fail(Error::make(ErrorCode::invalid_input, "The search has " + std::to_string(terms) +
                                                               " parameters and values; at most " +
                                                               std::to_string(kMaxSearchTerms) +
                                                               " are allowed"));
    const auto& options = job.services.options;
    fhir::SearchOptions opts{job.prefer.strict, options.default_count, options.max_count, ex.received_ms};
    auto query = fhir::parse_search(job.services.registry, type_, params, opts);
    if (!query) return ex.fail(query.error());
    sealed_cursor_ = std::move(query->cursor);
    auto cursor = job.open_cursor(sealed_cursor_);
    if (!cursor) return ex.fail(cursor.error());
    query->cursor = std::move(*cursor);
    auto page = job.services.store.search(*query, job.visibility());
    if (!page) return ex.fail(page.error());
    if (ex.audit) {
      for (const auto& rec : page->matches) {
        std::string patient = type_ == "Patient" ? "Patient/" + rec.id : std::string();
        if (patient.empty())
          if (auto parsed = fhir::parse_json(rec.body)) patient = Gate::patient_of(*parsed);
        if (!patient.empty()) ex.seen_patients.push_back(std::move(patient));
      }
    }
    query_ = std::move(*query);
    page_ = std::move(*page);
  }

  HttpResponse respond(RestJob& job) override {
    std::string self_query;
    for (const auto& [k, v] : query_.understood)
      self_query += (self_query.empty() ? "" : "&") + fhir::url_encode(k) + "=" + fhir::url_encode(v);
    const std::string base = job.base_url + "/" + type_;
    auto link = [&](const std::string& cursor) {
      std::string q = self_query;
      if (!cursor.empty()) q += (q.empty() ? "" : "&") + std::string("_cursor=") + cursor;
      return q.empty() ? base : base + "?" + q;
    };
    std::vector<BundleLink> links{{"self", link(sealed_cursor_)}};
    if (!page_.next_cursor.empty()) links.push_back({"next", link(job.seal_cursor(page_.next_cursor))});
    if (!page_.previous_cursor.empty())
      links.push_back({"previous", link(job.seal_cursor(page_.previous_cursor))});
    std::vector<SearchEntry> entries;
    entries.reserve(page_.matches.size());
    for (auto& m : page_.matches) {
      SearchEntry e{base + "/" + m.id, std::move(m.body)};
      if (!query_.elements.empty()) e.resource_json = subset(std::move(e.resource_json), query_.elements);
      if (job.format != fhir::Format::json) {
        auto parsed = fhir::parse_json(e.resource_json);
        if (!parsed || !fhir::write_resource(job.services.model, *parsed, job.format, false)) {
          Error unrepresentable =
              Error::make(ErrorCode::not_acceptable, type_ + "/" + m.id +
                                                         " cannot be represented in this format; "
                                                         "read it as application/fhir+json");
          unrepresentable.issues.front().severity = "warning";
          e.resource_json = fhir::write_json(fhir::operation_outcome(unrepresentable));
        }
      }
      entries.push_back(std::move(e));
    }
    return job.json_response(
        200, searchset_bundle(new_resource_id(), job.ex.received_ms, page_.total, links, entries));
  }

 private:
  std::string type_;
  fhir::SearchQuery query_;
  std::string sealed_cursor_;  // the `_cursor` as the client sent it
  store::SearchPage page_;
};

}  // namespace

std::unique_ptr<Interaction> make_search(std::string type) {
  return std::make_unique<Search>(std::move(type));
}

}  // namespace fhirgate::gateway::rest
