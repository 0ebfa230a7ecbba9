// create, update and delete (R4 http.html#create, #update, #delete), conditional create (If-None-Exist)
// and conditional update (PUT Type?criteria). The body is parsed, validated and checked storable on a
// worker; the write itself is stages::plan_write inside the commit, which owns every rule of a write
// (consent, the identity rule, If-Match, supplier tags, audit entity, routing). A write held for a
// registrar is answered 202 with an OperationOutcome that names nothing of the record it matched.
#include "fhir/formats.hpp"
#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;
using stages::WriteOutcome;
using stages::WriteRequest;

// The body as a resource of `type`: parsed from JSON or XML, FHIR JSON rules checked, resourceType
// matching the URL.
Result<Node> parse_resource_body(const fhir::Model& model, const HttpRequest& request,
                                 const std::string& type) {
  auto kind = classify_request_body(request.header("Content-Type"));
  if (!kind) return std::move(kind).error();
  if (*kind == BodyKind::form)
    return Error::make(ErrorCode::unsupported_media_type,
                       "A resource body must be application/fhir+json or application/fhir+xml");
  if (request.body.empty()) return Error::make(ErrorCode::invalid_input, "The request has no body");
  const auto format = *kind == BodyKind::fhir_xml ? fhir::Format::xml : fhir::Format::json;
  auto node = fhir::parse_resource(model, request.body, format);
  if (!node) return node;
  if (const auto rt = node->string_at("resourceType"); rt != type)
    return Error::make(ErrorCode::unprocessable,
                       "resourceType '" + std::string(rt) + "' does not match the URL's type '" + type + "'",
                       "resourceType");
  return node;
}

// The version an If-Match header asks for: nullopt when absent. Errors: invalid_input when malformed.
Result<std::optional<std::int64_t>> if_match_version(const HttpRequest& request) {
  const auto header = request.header("If-Match");
  if (header.empty()) return std::optional<std::int64_t>();
  const auto version = parse_etag(header);
  if (!version)
    return Error::make(ErrorCode::invalid_input, "If-Match must be a version ETag such as W/\"1\"");
  return version;
}

// Search criteria of a condition (If-None-Exist, a conditional update's query); _format and _pretty are
// the response's, not criteria.
Result<fhir::SearchQuery> condition_of(const RestJob& job, const std::string& type, fhir::QueryParams params,
                                       const char* what) {
  std::erase_if(params, [](const auto& p) { return p.first == "_format" || p.first == "_pretty"; });
  const auto& options = job.services.options;
  auto parsed = fhir::parse_search(
      job.services.registry, type, params,
      fhir::SearchOptions{true, options.default_count, options.max_count, job.ex.received_ms});
  if (!parsed) return parsed.error();
  if (parsed->clauses.empty())
    return Error::make(ErrorCode::invalid_input, std::string(what) + " needs search criteria");
  return parsed;
}

// The answer to a write held for a registrar: the same whatever the record it matched holds.
HttpResponse held_response(RestJob& job) {
  return job.json_response(202,
                           fhir::write_json(fhir::informational_outcome(
                               "The write was accepted for review: a registrar of the partnership will apply "
                               "or reject it")));
}

class Write : public Interaction {
 public:
  Write(std::string type, std::string id, WriteRequest::Kind kind)
      : type_(std::move(type)), id_(std::move(id)), kind_(kind) {}

  const char* interaction() const override {
    return kind_ == WriteRequest::Kind::create   ? "create"
           : kind_ == WriteRequest::Kind::update ? "update"
                                                 : "delete";
  }
  bool has_work(const RestJob&) const override { return kind_ != WriteRequest::Kind::remove; }

  void work(RestJob& job) override {
    auto resource = parse_resource_body(job.services.model, job.request, type_);
    if (!resource) return job.ex.fail(resource.error());
    if (kind_ == WriteRequest::Kind::update && !id_.empty()) {
      const std::string_view body_id = resource->string_at("id");
      if (body_id.empty())
        return job.ex.fail(Error::make(
            ErrorCode::invalid_input, "The resource must have an id matching the URL ('" + id_ + "')", "id"));
      if (body_id != id_)
        return job.ex.fail(Error::make(
            ErrorCode::unprocessable,
            "The resource id '" + std::string(body_id) + "' does not match the URL id '" + id_ + "'",
            type_ + ".id"));
    }
    if (Status valid = job.check_for_write(*resource, type_, true); !valid) return job.ex.fail(valid.error());
    resource_ = std::move(*resource);
    job.ex.mark("checked");
  }

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    request_.kind = kind_;
    request_.type = type_;
    request_.id = id_;
    request_.resource = std::move(resource_);
    if (kind_ == WriteRequest::Kind::create) {
      request_.id = new_resource_id();
      if (std::string_view none_exist = job.request.header("If-None-Exist"); !none_exist.empty()) {
        if (const auto pos = none_exist.find('?'); pos != std::string_view::npos)
          none_exist.remove_prefix(pos + 1);
        auto params = fhir::parse_query_string(none_exist);
        if (!params) return ex.fail(params.error());
        auto condition = condition_of(job, type_, std::move(*params), "If-None-Exist");
        if (!condition) return ex.fail(condition.error());
        request_.condition = std::move(*condition);
      }
    } else if (kind_ == WriteRequest::Kind::update && id_.empty()) {
      // PUT Type?criteria: the criteria are the request's query.
      auto condition = condition_of(job, type_, job.query, "A conditional update");
      if (!condition) return ex.fail(condition.error());
      request_.condition = std::move(*condition);
    }
    auto expected = if_match_version(job.request);
    if (!expected) return ex.fail(expected.error());
    request_.if_match = *expected;
    if (ex.audit && kind_ == WriteRequest::Kind::remove) {
      ex.audit->entity_reference = type_ + "/" + id_;
      if (type_ == "Patient") ex.audit->patient_reference = "Patient/" + id_;
    }
  }

  store::WritePlan plan(RestJob& job) override {
    return [this, &job](store::WriteTxn& txn) -> Status {
      auto done = stages::plan_write(txn, job.services.write, job.ex, std::move(request_));
      if (!done) return done.error();
      outcome_ = std::move(*done);
      return Ok{};
    };
  }

  HttpResponse respond(RestJob& job) override {
    using Done = WriteOutcome::Kind;
    switch (outcome_.kind) {
      case Done::held:
        return held_response(job);
      case Done::matched:
        return job.resource_response(200, *outcome_.record, false);
      case Done::created:
        return job.resource_response(201, *outcome_.record, true);
      case Done::updated:
      case Done::unchanged:
        return job.resource_response(200, *outcome_.record, false);
      case Done::deleted:
      case Done::absent: {
        HttpResponse r;
        if (job.prefer.return_kind == Prefer::Return::operation_outcome) {
          r = job.json_response(200, fhir::write_json(fhir::informational_outcome(
                                         outcome_.kind == Done::deleted
                                             ? "Deleted " + type_ + "/" + id_
                                             : type_ + "/" + id_ + " did not exist or was already deleted")));
        } else {
          r.status = 204;
        }
        if (outcome_.record) r.set_header("ETag", etag(outcome_.record->version));
        return r;
      }
    }
    return job.fail_response(Error::make(ErrorCode::internal, "unknown write outcome"));
  }

 private:
  std::string type_, id_;
  WriteRequest::Kind kind_;
  Node resource_;
  WriteRequest request_;
  WriteOutcome outcome_;
};

}  // namespace

std::unique_ptr<Interaction> make_create(std::string type) {
  return std::make_unique<Write>(std::move(type), std::string(), WriteRequest::Kind::create);
}
std::unique_ptr<Interaction> make_update(std::string type, std::string id) {
  return std::make_unique<Write>(std::move(type), std::move(id), WriteRequest::Kind::update);
}
std::unique_ptr<Interaction> make_delete(std::string type, std::string id) {
  return std::make_unique<Write>(std::move(type), std::move(id), WriteRequest::Kind::remove);
}

}  // namespace fhirgate::gateway::rest
