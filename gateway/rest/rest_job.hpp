#pragma once
// The FHIR REST entry point: a chain of stages per request (pipeline/chain.hpp), the same chain for every
// interaction:
//
//   admit -> route -> authorize -> work (worker) -> prepare -> commit -> respond -> finish
//
//  - admit: correlation id, base URL, query string, response format (negotiation), the caller (bearer
//    token) and its purpose of use, and the AuditEvent to fill in;
//  - route: which interaction the method and path name (rest/router.hpp): 404, 405 with Allow;
//  - authorize: the agreement lets the caller do that on that type (or it is an operators' endpoint);
//  - work, on a worker: the body parsed, validated (within the request's CPU budget) and checked storable;
//  - prepare, on the io thread: reads, searches and history through the gate;
//  - commit, on the writer: the interaction's write plan (stages/write.hpp), then the AuditEvent and the
//    journal entry (pipeline/record.hpp), in one transaction: a read's AuditEvent is durable before its
//    answer leaves; a search's (and a type history's) names what was searched for, the URL's parameters
//    and a POSTed form body's alike, refused searches too;
//  - respond: the response from the outcome (an OperationOutcome for any error);
//  - finish: the request's metrics and log line.
// Each interaction (read.cpp, search.cpp, history.cpp, write.cpp, bundle.cpp, ...) fills in the parts of
// the chain it needs; none decides consent or writes audit on its own.
#include <memory>
#include <string>
#include <vector>

#include "fhir/formats.hpp"
#include "fhir/model.hpp"
#include "fhir/search_params.hpp"
#include "fhir/search_query.hpp"
#include "fhir/validator.hpp"
#include "gateway/inbound/feed_ingest.hpp"
#include "gateway/inbound/v2_job.hpp"
#include "gateway/net/job.hpp"
#include "gateway/ops/observability.hpp"
#include "gateway/pipeline/chain.hpp"
#include "gateway/rest/negotiation.hpp"
#include "gateway/security/authenticator.hpp"
#include "gateway/security/paging_cursors.hpp"
#include "gateway/stages/write.hpp"

namespace fhirgate::gateway::rest {

using net::HttpRequest;
using net::HttpResponse;

struct RestOptions {
  std::vector<std::string> cached_types;                     // the resource types served
  std::map<std::string, std::vector<std::string>> profiles;  // type -> profile URLs enforced on write
  std::string base_url;                                      // empty: http://<Host>
  int default_count = 20;
  int max_count = 1000;
  std::string software_version;
  // Advertised in the CapabilityStatement: bearer tokens and the purpose-of-use header, when security is on.
  bool security = false;
  std::string purpose_header = "X-Purpose-Of-Use";
  unsigned validation_budget_ms = 10000;  // CPU time one request's validation may take
  // The operators' dashboard: file name -> content, served open at /_ops/<name> (index.html at /_ops/).
  std::map<std::string, std::string> dashboard;
  // The partners routes deliver to: /_ops/stats lists each one's queue, empty ones too.
  std::vector<std::string> destinations;
  // GET /metrics: the Prometheus text, rendered at each scrape; null = 404.
  std::function<std::string()> metrics;
};

// What the REST pipeline works with, built once at start-up (server/). Everything must outlive the jobs.
struct RestServices {
  RestOptions options;
  const fhir::Model& model;
  const fhir::Validator& validator;
  const fhir::SearchParamRegistry& registry;
  store::Store& store;
  Authenticator* authenticator = nullptr;  // null: security off
  const Gate& gate;
  stages::WriteServices write;
  GatewayObservers* observers = nullptr;
  const inbound::V2Service* v2 = nullptr;  // null: no HL7 v2 over $ingest
  const FeedService* feeds = nullptr;      // null: no feeds over $ingest
  std::string capability_json;             // the CapabilityStatement, made once
  const Config* config = nullptr;          // the partners, by id
  const PagingCursors* cursors = nullptr;  // null: the store's cursors go out as they are (tests only)
  bool secure() const { return authenticator != nullptr; }
};

class RestJob;

// One interaction's parts of the chain. Every part is optional but respond().
class Interaction {
 public:
  virtual ~Interaction() = default;
  // The agreement's name for it (read, vread, search-type, create, ...), checked by the authorize stage
  // for `type`; "" when the agreement is not asked (open endpoints, operators' ones, operations that
  // check their own).
  virtual const char* interaction() const { return ""; }
  // On the io thread, right after the agreement was asked: what the interaction must decide before its
  // work (an operator's action reads the journal entry it acts on).
  virtual void begin(RestJob&) {}
  // Work on a worker thread (parsing, validation); `has_work` says whether there is any.
  virtual bool has_work(const RestJob&) const { return false; }
  virtual void work(RestJob&) {}
  // Long work in the background (a feed file): instead of work().
  virtual bool background() const { return false; }
  // Reads through the gate, on the io thread.
  virtual void prepare(RestJob&) {}
  // The write, inside the commit (stages/write.hpp); null when there is none. Asked only when the
  // exchange has not failed, unless `plans_on_failure` (what must be kept of a refused message too).
  virtual store::WritePlan plan(RestJob&) { return nullptr; }
  virtual bool plans_on_failure() const { return false; }
  // The response when the exchange did not fail (a failure is answered with its OperationOutcome, to
  // which `on_failure` may add headers).
  virtual HttpResponse respond(RestJob& job) = 0;
  virtual void on_failure(RestJob&, HttpResponse&) {}
};

class RestJob final : public pipeline::Chain<RestJob, net::HttpJob> {
 public:
  RestJob(const RestServices& services, HttpRequest request);

  pipeline::Exchange& exchange() { return ex; }
  store::WritePlan commit_plan();
  HttpResponse take_response() override { return std::move(response); }

  // Responses, in the negotiated format.
  HttpResponse fail_response(const Error& error) const;
  HttpResponse json_response(int status, std::string body) const;
  HttpResponse resource_response(int status, const store::VersionRecord& rec, bool location) const;
  HttpResponse plain_json(int status, const fhir::Node& body) const;

  // The validation of a resource for a write: base R4, the type's configured profiles, within this
  // request's budget; then what FHIR XML could not carry (fhir::check_storable). Errors: unprocessable
  // with every error located (line and column too, for a JSON body).
  Status check_for_write(const fhir::Node& resource, const std::string& type,
                         bool locate_in_body = false) const;
  fhir::ValidationOptions validation_options() const;
  // The caller's search in the store through the gate (consent), in this request.
  store::Visibility visibility();
  // May the caller see this stored version? Deletions: only whoever could see the version before. Names
  // the version and its patient in the AuditEvent (when `note`), and notes break-glass.
  Result<bool> readable(const store::VersionRecord& rec, bool note = true);
  // A search's parameters: the URL's, then for a POST those of its form body (R4 search.html: both
  // count). Errors: unsupported_media_type for a body that is not application/x-www-form-urlencoded,
  // invalid_input for a malformed one.
  Result<fhir::QueryParams> search_parameters() const;
  // A paging cursor as links carry it (sealed), and back (invalid_input on `_cursor` when it does not open).
  std::string seal_cursor(std::string_view cursor) const;
  Result<std::string> open_cursor(std::string_view sealed) const;
  // The caller as the gate sees it.
  const Caller& caller() const { return ex.caller; }
  bool secure() const { return services.secure(); }
  const std::string& caller_id() const;

  const RestServices& services;
  HttpRequest request;
  pipeline::Exchange ex;
  // The request as admitted.
  std::string path;
  std::vector<std::string> parts;  // path segments
  fhir::QueryParams query;
  fhir::Format format = fhir::Format::json;
  bool pretty = false;
  Prefer prefer;
  std::string base_url;
  std::string interaction_name = "other";  // for metrics: read, search-type, create, transaction, ops, ...
  std::string resource_type;               // for metrics: the type addressed, or ""
  std::unique_ptr<Interaction> handler;
  std::unique_ptr<StoreConsents> consents;  // the Consents read in this request, once per patient
  HttpResponse response;
};

class RestHandler final : public net::HttpHandler {
 public:
  explicit RestHandler(const RestServices& services) : services_(services) {}
  std::unique_ptr<net::HttpJob> start(HttpRequest request) override;
  HttpResponse error_response(const Error& error) override;

 private:
  const RestServices& services_;
};

// Milliseconds since the epoch; the version number in an ETag or If-Match value (W/"3", "3" or 3);
// a parameter's first value.
std::string etag(std::int64_t version);
std::optional<std::int64_t> parse_etag(std::string_view v);
const std::string* param_value(const fhir::QueryParams& params, std::string_view name);

}  // namespace fhirgate::gateway::rest
