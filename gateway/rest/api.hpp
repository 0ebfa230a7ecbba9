#pragma once
// The FHIR REST API as a function from request to reply, with no network I/O: the network layer reads a
// request, calls handle(), commits the reply's write plan when it has one, and writes the response.
//
// Bodies are FHIR JSON or FHIR XML by Content-Type; responses (errors and /metadata too) are JSON or XML
// by _format and Accept. Internally everything is the JSON element tree; stored resources are JSON.
//
// Threads: handle() runs on io threads, concurrently; it reads through the store's pooled read
// connections and never blocks on a write. after_commit runs on the requester's io thread.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fhir/model.hpp"
#include "fhir/search_params.hpp"
#include "fhir/validator.hpp"
#include "gateway/inbound/feed_ingest.hpp"
#include "gateway/rest/http_message.hpp"
#include "gateway/security/security.hpp"
#include "gateway/store/store.hpp"
#include "gateway/store/writer.hpp"
#include "gateway/inbound/v2_inbound.hpp"

namespace fhirgate::gateway::rest {

// One answered request, for metrics and the request log.
struct RequestDone {
  std::string method;
  std::string path;
  std::string interaction;  // read, search-type, create, ..., transaction, operation, ops, other
  std::string resource;     // the resource type addressed, or "" (operations on the system, _ops)
  int status = 0;
  double seconds = 0;  // from the request's dispatch to its answer
  std::string correlation_id;
  std::string partner;  // the caller, when known
  std::string cause;    // the internal cause of a failure (HttpResponse::cause), or ""
};

struct ApiOptions {
  std::vector<std::string> cached_types;                     // the resource types served
  std::map<std::string, std::vector<std::string>> profiles;  // type -> profile URLs enforced on write
  std::string base_url;                                      // empty: http://<Host>
  int default_count = 20;
  int max_count = 1000;
  std::string software_version;
  // Advertised in the CapabilityStatement: bearer tokens and the purpose-of-use header, when security is on.
  bool security = false;
  std::string purpose_header = "X-Purpose-Of-Use";
  // The operators' dashboard: file name -> content, served open at /_ops/<name> (index.html at /_ops/).
  std::map<std::string, std::string> dashboard;
  // The partners routes deliver to: /_ops/stats lists each one's queue, empty ones too.
  std::vector<std::string> destinations;
  // GET /metrics: the Prometheus text, rendered at each scrape; null = 404.
  std::function<std::string()> metrics;
  // Told of every answer (metrics and the request log) and of every resource refused as invalid on
  // write, from the thread that answers; may be null.
  std::function<void(const RequestDone&)> on_done;
  std::function<void(const std::string& type)> on_invalid;
};

// What handle() produced: a response now, or a write to commit first.
struct Reply {
  HttpResponse response;                                    // valid when no plan
  store::WritePlan plan;                                    // commit this first ...
  std::function<HttpResponse(const Status&)> after_commit;  // ... then build the response from its outcome
  // Long work (a CSV or XML feed): run on a worker thread, off the io threads; it may wait on the writer.
  std::function<HttpResponse()> background;
};

class Api {
 public:
  // The model, validator, registry, v2 context and security must outlive the Api. Without a v2 context,
  // POST /$ingest answers 404; without security (or with it disabled) nobody is authenticated, consent is
  // not enforced and nothing is audited.
  Api(ApiOptions options, const fhir::Model& model, const fhir::Validator& validator,
      const fhir::SearchParamRegistry& registry, store::Store& store, const V2InboundContext* v2 = nullptr,
      Security* security = nullptr, const FeedService* feeds = nullptr);

  Reply handle(const HttpRequest& request) const;
  // The response for a failure found outside handle(): body too large, malformed HTTP, internal errors.
  HttpResponse error_response(const Error& error) const;

  struct Exchange;  // per-request state (rest/exchange.hpp)

 private:
  Reply dispatch(Exchange& ex) const;
  // The interaction a request is, for metrics: read, search-type, create, transaction, operation, ops...
  std::string interaction_of(const Exchange& ex) const;
  Reply route(Exchange& ex) const;
  // Who is asking (bearer token) and for which purpose; false with the reply set when refused.
  bool admit(Exchange& ex, Reply& reply) const;
  // The agreement lets the caller do `interaction` on `type`; false with a 403 reply otherwise. Also names
  // the interaction in the AuditEvent.
  bool allowed(Exchange& ex, const std::string& type, const std::string& interaction, Reply& reply) const;
  // Consent: may the caller see this stored resource? Records break-glass in the AuditEvent.
  bool visible(Exchange& ex, const fhir::Node& resource) const;
  bool visible_stored(Exchange& ex, const std::string& type, const std::string& id,
                      std::string_view json) const;
  // A stored version for a read or vread: names it in the AuditEvent and decides consent. A deletion is
  // readable (410) only by a caller who could read the last version before it; to others the resource is
  // not known (404), as it was while it lived, so that a 410 cannot tell them it existed.
  bool readable(Exchange& ex, const store::VersionRecord& rec) const;
  bool deletion_readable(Exchange& ex, const store::VersionRecord& deletion) const;  // readable's part
  store::Store::Visibility visibility(Exchange& ex) const;
  // Consent for changing a held record, for a write plan to ask of the live version it reads: a caller may
  // update or delete only what it could read (break-glass included, and noted in the AuditEvent). One it
  // may not gets the error a read would (404, not known), and the AuditEvent names the record and its
  // patient. Always Ok with security off.
  using ChangeCheck = std::function<Status(const store::VersionRecord& current)>;
  ChangeCheck change_check(const Exchange& ex) const;
  // Adds the exchange's AuditEvent and, for a request that carries data, its journal entry to the reply:
  // written in the same commit as its write plan, or, for a reply without one, committed before the
  // response goes out.
  Reply recorded(Exchange& ex, Reply reply) const;
  // AuditEvent, served from the audit trail (audit_api.cpp).
  Reply audit_read(Exchange& ex, const std::string& id, const std::string& version) const;
  Reply audit_search(Exchange& ex) const;
  Reply audit_history(Exchange& ex, const std::string& id) const;
  Reply audit_create(Exchange& ex) const;
  Reply capabilities(Exchange& ex) const;
  Reply health(Exchange& ex, bool ready) const;
  Reply read(Exchange& ex, const std::string& type, const std::string& id) const;
  Reply vread(Exchange& ex, const std::string& type, const std::string& id, const std::string& version) const;
  Reply create(Exchange& ex, const std::string& type) const;
  Reply update(Exchange& ex, const std::string& type, const std::string& id) const;
  Reply remove(Exchange& ex, const std::string& type, const std::string& id) const;
  Reply search(Exchange& ex, const std::string& type, bool post) const;
  Reply history(Exchange& ex, const std::string& type, const std::string& id) const;
  Reply validate(Exchange& ex, const std::string& type, const std::string& id) const;
  Reply ingest(Exchange& ex) const;
  Reply ingest_feed(Exchange& ex, mappers::FeedMapping::Format format) const;
  // The body as a resource of `type` (JSON or XML by Content-Type), not validated.
  Result<fhir::Node> parse_body(const Exchange& ex, const std::string& type) const;
  // Parses a create/update body and validates it (base R4 and the type's configured profiles).
  Result<fhir::Node> accept_resource(const Exchange& ex, const std::string& type) const;
  // Validation for a write: base R4 and the type's configured profiles; unprocessable with the errors.
  Status check_for_write(const fhir::Node& resource, const std::string& type) const;
  // POST /: a transaction or batch Bundle (bundle_api.cpp).
  Reply bundle(Exchange& ex) const;
  // POST /$process-message: a FHIR message (message_api.cpp).
  Reply process_message(Exchange& ex) const;
  // GET /_ops/deliveries: the outbox, for operators (ops_api.cpp).
  // Operators' endpoints (ops_api.cpp, journal_api.cpp): false with a 403 reply for anyone else.
  bool operators_only(Exchange& ex, Reply& reply) const;
  // GET /_ops/ or /_ops/<a dashboard file>: open, like /metadata.
  bool is_dashboard_file(const std::string& method, const std::vector<std::string>& parts) const;
  Reply ops_journal(Exchange& ex) const;
  Reply ops_journal_entry(Exchange& ex, const std::string& id) const;
  Reply ops_journal_action(Exchange& ex, const std::string& id, bool retry) const;
  Reply ops_stats(Exchange& ex) const;
  Reply ops_dashboard(Exchange& ex, const std::string& file) const;
  Reply ops_metrics(Exchange& ex) const;
  Reply ops_deliveries(Exchange& ex) const;
  Reply ops_delivery_action(Exchange& ex, const std::string& id, bool retry) const;

  HttpResponse fail(const Exchange& ex, const Error& error) const;
  HttpResponse json_response(const Exchange& ex, int status, std::string body) const;
  HttpResponse resource_response(const Exchange& ex, int status, const store::VersionRecord& rec,
                                 bool location) const;

  ApiOptions options_;
  const fhir::Model& model_;
  const fhir::Validator& validator_;
  const fhir::SearchParamRegistry& registry_;
  store::Store& store_;
  const V2InboundContext* v2_;
  Security* security_;
  const FeedService* feeds_;
  std::string capability_json_;
};

}  // namespace fhirgate::gateway::rest
