// $validate (R4 resource-operation-validate): the body is the resource or a Parameters with `resource`,
// `mode` and `profile`; GET on an instance validates the stored version, when the gate lets the caller see
// it. Always 200 with an OperationOutcome listing every issue, unless the request itself is wrong or the
// validation exceeds the request's CPU budget (422, too-costly). Runs on a worker, never an io thread.
#include "fhir/formats.hpp"
#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

// The OperationOutcome of a validation: every issue with its own severity; a clean result says so.
Node validation_outcome(const fhir::ValidationResult& result) {
  Error report{ErrorCode::unprocessable, result.issues, {}};
  if (report.issues.empty()) return fhir::informational_outcome("Validation passed: no errors or warnings");
  return fhir::operation_outcome(report);
}

class Validate final : public Interaction {
 public:
  Validate(std::string type, std::string id) : type_(std::move(type)), id_(std::move(id)) {}

  // GET on an instance reads it: the agreement's read. The others validate what the caller sent.
  const char* interaction() const override { return id_.empty() ? "" : "read"; }
  bool has_work(const RestJob&) const override { return true; }

  void work(RestJob& job) override {
    auto& ex = job.ex;
    if (ex.audit) {
      ex.audit->interaction = "operation";
      ex.audit->operation = "$validate";
    }
    fhir::ValidationOptions options = job.validation_options();
    Node resource;
    if (!id_.empty()) {
      auto rec = job.services.store.read(type_, id_);
      if (!rec) return ex.fail(rec.error());
      if (!*rec || (*rec)->deleted)
        return ex.fail(Error::make(ErrorCode::not_found, type_ + "/" + id_ + " is not known"));
      auto shown = job.readable(**rec);
      if (!shown) return ex.fail(shown.error());
      if (!*shown) return ex.fail(Error::make(ErrorCode::not_found, type_ + "/" + id_ + " is not known"));
      auto parsed = fhir::parse_json((*rec)->body);
      if (!parsed) return ex.fail(Error::make(ErrorCode::internal, type_ + "/" + id_ + " cannot be read"));
      resource = std::move(*parsed);
    } else {
      auto kind = classify_request_body(job.request.header("Content-Type"));
      if (!kind || *kind == BodyKind::form)
        return ex.fail(kind ? Error::make(ErrorCode::unsupported_media_type,
                                          "$validate takes application/fhir+json or application/fhir+xml")
                            : kind.error());
      const auto format = *kind == BodyKind::fhir_xml ? fhir::Format::xml : fhir::Format::json;
      auto parsed = fhir::parse_resource(job.services.model, job.request.body, format);
      if (!parsed) {  // a body that cannot be read is itself the validation outcome
        Error unreadable = std::move(parsed).error();
        fhir::locate_issues(job.request.body, format, unreadable.issues);
        outcome_ = fhir::write_json(fhir::operation_outcome(unreadable));
        return;
      }
      resource = std::move(*parsed);
      if (resource.string_at("resourceType") == "Parameters" && type_ != "Parameters") {
        Node inner;
        static const std::vector<Node> kNone;
        const Node* parameters = resource.find("parameter");
        std::size_t index = 0;
        for (const auto& p : parameters ? parameters->items() : kNone) {
          const auto name = p.string_at("name");
          if (name == "resource" && p.find("resource")) {
            inner = *p.find("resource");
            wrapped_at_ = "Parameters.parameter[" + std::to_string(index) + "].resource";
          }
          ++index;
          if (name == "profile")
            options.profiles.emplace_back(p.string_at("valueUri").empty() ? p.string_at("valueCanonical")
                                                                          : p.string_at("valueUri"));
          if (name == "mode" && p.string_at("valueCode") == "delete") {
            outcome_ = fhir::write_json(
                fhir::informational_outcome("Validation passed: deletion is always allowed"));
            return;
          }
        }
        if (inner.is_null())
          return ex.fail(Error::make(ErrorCode::invalid_input, "Parameters has no 'resource' parameter"));
        resource = std::move(inner);
      }
      if (!type_.empty() && resource.string_at("resourceType") != type_)
        return ex.fail(Error::make(ErrorCode::unprocessable,
                                   "resourceType '" + std::string(resource.string_at("resourceType")) +
                                       "' does not match the URL's type '" + type_ + "'",
                                   "resourceType"));
    }
    for (const auto& p : job.query)
      if (p.first == "profile") options.profiles.push_back(p.second);
    const std::string resource_type(resource.string_at("resourceType"));
    const auto& profiles = job.services.options.profiles;
    if (const auto it = profiles.find(resource_type); it != profiles.end())
      options.profiles.insert(options.profiles.end(), it->second.begin(), it->second.end());
    auto result = job.services.validator.validate(resource, options);
    if (result.budget_exceeded) {
      Error costly{ErrorCode::unprocessable, {}, "validation budget exceeded"};
      for (auto& issue : result.issues)
        if (issue.code == "too-costly") costly.issues.push_back(std::move(issue));
      return ex.fail(std::move(costly));
    }
    if (id_.empty()) locate(job.request.body, resource_type, result.issues);
    outcome_ = fhir::write_json(validation_outcome(result));
  }

  HttpResponse respond(RestJob& job) override { return job.json_response(200, std::move(outcome_)); }

 private:
  // Line and column in the body, as `fhirgate validate` gives them. A resource sent inside Parameters is
  // located there: its issues' locations are rewritten to start at the parameter for the lookup.
  void locate(std::string_view body, const std::string& resource_type, std::vector<Issue>& issues) const {
    const auto format = fhir::detect_format(body);
    if (wrapped_at_.empty()) return fhir::locate_issues(body, format, issues);
    std::vector<std::string> own(issues.size());
    for (std::size_t i = 0; i < issues.size(); ++i) {
      own[i] = issues[i].expression;
      const std::string_view at = own[i];
      if (at.starts_with(resource_type) &&
          (at.size() == resource_type.size() || at[resource_type.size()] == '.'))
        issues[i].expression = wrapped_at_ + own[i].substr(resource_type.size());
    }
    fhir::locate_issues(body, format, issues);
    for (std::size_t i = 0; i < issues.size(); ++i) issues[i].expression = std::move(own[i]);
  }

  std::string type_, id_;
  std::string wrapped_at_;  // where the validated resource sits in a Parameters body
  std::string outcome_;
};

}  // namespace

std::unique_ptr<Interaction> make_validate(std::string type, std::string id) {
  return std::make_unique<Validate>(std::move(type), std::move(id));
}

}  // namespace fhirgate::gateway::rest
