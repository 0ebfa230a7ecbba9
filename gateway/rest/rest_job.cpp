#include "gateway/rest/rest_job.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/json_locate.hpp"
#include "fhir/operation_outcome.hpp"
#include "fhir/storable.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/router.hpp"
#include "gateway/security/agreement.hpp"
#include "gateway/stages/read.hpp"

namespace fhirgate::gateway::rest {
namespace {

using pipeline::Stage;
using pipeline::Where;

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return parts;
}

// The caller's X-Correlation-Id (or X-Request-Id) when it is 1-64 of [A-Za-z0-9._-]; otherwise a new one.
std::string correlation_id_of(const HttpRequest& request) {
  for (const char* name : {"X-Correlation-Id", "X-Request-Id"}) {
    const std::string_view given = request.header(name);
    const bool usable =
        !given.empty() && given.size() <= 64 && std::all_of(given.begin(), given.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
        });
    if (usable) return std::string(given);
  }
  return new_resource_id();
}

// RFC 7230 5.4 (host [":" port], RFC 3986): a name or IPv4 address of unreserved, sub-delims and
// percent-encoded characters, or a bracketed IPv6 literal. The base URL of every link is made from it.
bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view literal = host.substr(1, close - 1);
    if (literal.empty() || !std::all_of(literal.begin(), literal.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        }))
      return false;
    host.remove_prefix(close + 1);
  } else {
    const std::size_t end = std::min(host.rfind(':'), host.size());
    const std::string_view name = host.substr(0, end);
    constexpr std::string_view kAllowed = "-._~!$&'()*+,;=%";
    if (name.empty() || !std::all_of(name.begin(), name.end(), [&](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || kAllowed.find(c) != std::string_view::npos;
        }))
      return false;
    host.remove_prefix(end);
  }
  if (host.empty()) return true;
  const std::string_view port = host.substr(1);
  return host.front() == ':' && port.size() <= 5 &&
         std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The endpoints open to everyone, unauthenticated and not audited: the CapabilityStatement, health, the
// dashboard's static files.
bool is_open(const RestJob& job) {
  const auto& p = job.parts;
  if (p.size() == 1 && (p[0] == "metadata" || p[0] == "healthz" || p[0] == "readyz")) return true;
  const auto& dashboard = job.services.options.dashboard;
  return job.request.method == "GET" && !p.empty() && p[0] == "_ops" && !dashboard.empty() &&
         (p.size() == 1 || (p.size() == 2 && dashboard.contains(p[1])));
}

// admit: what the request is, in which format it is answered, and who asks.
void admit(RestJob& job) {
  auto& ex = job.ex;
  const HttpRequest& request = job.request;
  const std::string_view target = request.target;
  const auto qmark = target.find('?');
  job.path = std::string(target.substr(0, qmark));
  job.parts = split_path(job.path);
  job.prefer = parse_prefer(request.header("Prefer"));
  ex.correlation_id = correlation_id_of(request);
  ex.client_address = request.remote_address;
  const auto& options = job.services.options;
  if (!options.base_url.empty()) {
    job.base_url = options.base_url;
  } else {
    const auto host = request.header("Host");
    job.base_url = "http://" + std::string(host.empty() || !valid_host(host) ? "localhost" : host);
    if (!host.empty() && !valid_host(host))
      return ex.fail(Error::make(ErrorCode::invalid_input,
                                 "The Host header is not a valid host[:port] (RFC 7230 5.4)", "Host"));
  }
  if (qmark != std::string_view::npos) {
    auto parsed = fhir::parse_query_string(target.substr(qmark + 1));
    if (!parsed) return ex.fail(parsed.error());
    job.query = std::move(*parsed);
  }
  const std::string* pretty = param_value(job.query, "_pretty");
  job.pretty = pretty && *pretty == "true";
  const std::string* format = param_value(job.query, "_format");
  auto negotiated =
      negotiate_response_format(format ? *format : std::string_view(), request.header("Accept"));
  if (!negotiated) return ex.fail(negotiated.error());
  job.format = *negotiated;
  if (!job.secure() || is_open(job)) return;

  // Every other request is audited, refused ones too: the AuditEvent starts here.
  AuditInput& audit = ex.audit.emplace();
  audit.correlation_id = ex.correlation_id;
  audit.client_address = request.remote_address;
  audit.server_address = job.base_url;
  const std::string& method = request.method;
  audit.interaction = method == "POST"     ? "create"
                      : method == "PUT"    ? "update"
                      : method == "DELETE" ? "delete"
                                           : "read";
  auto who = job.services.authenticator->authenticate(request.header("Authorization"));
  if (!who) {
    // What an unauthenticated request leaves: this AuditEvent with its method and path only, a log line
    // and a metric; none of its bytes (docs/security.md).
    const auto& issues = who.error().issues;
    audit.outcome_desc = "unauthenticated " + method + " " + job.path + ": " +
                         (issues.empty() ? std::string("no credential") : issues.front().diagnostics);
    return ex.fail(who.error());
  }
  const PartnerConfig& partner = **who;
  ex.caller.partner = &partner;
  ex.origin = partner.id;
  audit.client_id = partner.id;
  audit.client_display = partner.name;
  if (partner.role == "partner") audit.client_reference = organization_of(partner);
  auto purpose = purpose_of(partner, request.header(job.services.options.purpose_header));
  if (!purpose) return ex.fail(purpose.error());
  ex.caller.purpose = *purpose;
  audit.purpose = *purpose;
}

// route: which interaction the method and path name.
void route(RestJob& job) {
  std::string allow;
  auto routed = route_request(job, allow);
  if (!routed) {
    if (routed.error().code == ErrorCode::method_not_allowed) job.response.set_header("Allow", allow);
    return job.ex.fail(routed.error());
  }
  job.handler = std::move(routed->handler);
  job.interaction_name = std::move(routed->interaction);
  job.resource_type = std::move(routed->type);
}

// The interactions whose AuditEvent carries the request as its query entity (audit/audit_event.hpp).
bool records_query(const std::string& interaction) {
  return interaction == "search-type" || interaction == "search-system" || interaction == "history-type";
}

// The request as a search's AuditEvent keeps it (BALP: as received, so hostile input stays verbatim): the
// method and target, and after the target's own parameters those of a POSTed form body, so that
// `POST /Patient/_search?family=x` with the body `birthdate=y` is recorded as
// "POST /Patient/_search?family=x&birthdate=y", the same parameters in the same form as
// "GET /Patient?family=x&birthdate=y". A body that is not a form is no search criteria (and is refused).
// A search form takes as much as a search URL does by default (server.headerLimitBytes): a larger one is
// refused, and is not copied into the AuditEvent (and so into every backup of the trail) either.
constexpr std::size_t kMaxSearchFormBytes = 16 * 1024;

std::string search_as_received(const RestJob& job) {
  const HttpRequest& request = job.request;
  std::string text = request.method + " " + request.target;
  if (request.method != "POST" || request.body.empty()) return text;
  const auto kind = classify_request_body(request.header("Content-Type"));
  if (!kind || *kind != BodyKind::form) return text;
  if (request.body.size() > kMaxSearchFormBytes)
    return text + " [a form body of " + std::to_string(request.body.size()) + " bytes, over the " +
           std::to_string(kMaxSearchFormBytes) + "-byte limit: refused, not recorded]";
  if (request.target.find('?') == std::string::npos)
    text += '?';
  else if (!request.target.ends_with('?') && !request.target.ends_with('&'))
    text += '&';
  return text + request.body;
}

// A REST write: create, update, delete, or a Bundle.
bool is_rest_write(const RestJob& job) {
  const std::string& n = job.interaction_name;
  return n == "create" || n == "update" || n == "delete" || n == "bundle";
}

// authorize: the agreement lets the caller do this on this type.
void authorize(RestJob& job) {
  const char* interaction = job.handler->interaction();
  if (job.ex.audit && *interaction) job.ex.audit->interaction = interaction;
  if (job.ex.caller.partner && *interaction && !may(*job.ex.caller.partner, job.resource_type, interaction)) {
    const PartnerConfig& who = *job.ex.caller.partner;
    return job.ex.fail(Error::make(ErrorCode::forbidden, "The sharing agreement does not allow " + who.id +
                                                             " " + interaction + " on " + job.resource_type));
  }
  // What a partner sends is listed in its agreement (`inbound`): a partner listing formats but not
  // fhir-rest writes nothing over REST (its feeds and messages have their own doors).
  if (const PartnerConfig* who = job.ex.caller.partner;
      who && !who->inbound.empty() && is_rest_write(job) &&
      std::find(who->inbound.begin(), who->inbound.end(), "fhir-rest") == who->inbound.end())
    return job.ex.fail(Error::make(
        ErrorCode::forbidden, "The sharing agreement does not let " + who->id + " send FHIR REST writes"));
  job.handler->begin(job);
}

bool has_work(const RestJob& job) {
  return job.handler && !job.handler->background() && job.handler->has_work(job);
}
void work(RestJob& job) {
  job.handler->work(job);
}
bool has_background(const RestJob& job) {
  return job.handler && job.handler->background();
}
void prepare(RestJob& job) {
  job.handler->prepare(job);
}

// The journal entry of a request that carries data into the gateway: writes, Bundles and FHIR messages;
// not reads, searches ($validate, POST _search), operators' requests, nor an unauthenticated request
// (which leaves none of its bytes). Interactions that journal in their own way replace or drop it.
void journal_entry(RestJob& job) {
  const std::string& method = job.request.method;
  auto& ex = job.ex;
  if (method == "GET" || method == "HEAD" || job.path.starts_with("/_ops") ||
      job.path.find("$validate") != std::string::npos || job.path.ends_with("/_search") ||
      (job.secure() && !ex.caller.partner))
    return;
  auto& e = ex.journal.emplace();
  e.correlation_id = ex.correlation_id;
  e.received_ms = ex.received_ms;
  e.partner = ex.origin;
  e.direction = "in";
  e.transport = "http";
  e.format = "fhir-rest";
  const std::string interaction = method == "POST"     ? "create"
                                  : method == "PUT"    ? "update"
                                  : method == "DELETE" ? "delete"
                                                       : method;
  e.type = interaction + " " + (job.path.size() > 1 ? job.path.substr(1) : job.path);
  e.size = static_cast<std::int64_t>(job.request.body.size());
  e.has_payload = true;
  e.payload = job.request.body;
}

void respond(RestJob& job) {
  auto& ex = job.ex;
  HttpResponse r;
  if (ex.error) {
    r = job.fail_response(*ex.error);
    if (ex.error->code == ErrorCode::unauthorized)
      r.set_header("WWW-Authenticate", job.request.header("Authorization").empty()
                                           ? "Bearer realm=\"fhirgate\""
                                           : "Bearer realm=\"fhirgate\", error=\"invalid_token\"");
    for (const auto& [name, value] : job.response.headers) r.set_header(name, value);  // Allow, set by route
    if (job.handler) job.handler->on_failure(job, r);
  } else {
    r = job.handler->respond(job);
  }
  r.set_header("X-Correlation-Id", ex.correlation_id);
  job.response = std::move(r);
}

void finish(RestJob& job) {
  auto* observers = job.services.observers;
  pipeline::finish_journal(observers, job.ex);
  if (!observers) return;
  RequestLine line;
  line.method = job.request.method;
  line.path = job.path;
  line.interaction = job.interaction_name;
  line.resource = job.resource_type;
  line.status = job.response.status;
  line.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - job.ex.started).count();
  line.correlation_id = job.ex.correlation_id;
  if (job.ex.caller.partner) line.partner = job.ex.caller.partner->id;
  if (job.ex.error) line.cause = job.ex.error->internal;
  observers->on_request(line);
}

constexpr Stage<RestJob> kChain[] = {
    {"admit", Where::io, false, admit},
    {"route", Where::io, false, route},
    {"authorize", Where::io, false, authorize},
    {"journal", Where::io, true, journal_entry},
    {"work", Where::worker, false, work, has_work},
    {"background", Where::background, false, work, has_background},
    {"prepare", Where::io, false, prepare},
    {"commit", Where::commit, true, nullptr},
    {"respond", Where::io, true, respond},
    {"finish", Where::io, true, finish},
};

}  // namespace

RestJob::RestJob(const RestServices& s, HttpRequest r)
    : Chain(kChain), services(s), request(std::move(r)), consents(std::make_unique<StoreConsents>(s.store)) {}

store::WritePlan RestJob::commit_plan() {
  if (handler && (!ex.failed() || handler->plans_on_failure())) ex.plan = handler->plan(*this);
  if (ex.audit && records_query(ex.audit->interaction)) ex.audit->query = search_as_received(*this);
  return pipeline::commit_plan(ex);
}

const std::string& RestJob::caller_id() const {
  static const std::string kNobody;
  return ex.caller.partner ? ex.caller.partner->id : kNobody;
}

HttpResponse RestJob::json_response(int status, std::string body) const {
  HttpResponse r;
  r.status = status;
  if (pretty || format != fhir::Format::json) {
    auto parsed = fhir::parse_json(body);
    auto written = parsed ? fhir::write_resource(services.model, *parsed, format, pretty)
                          : Result<std::string>(parsed.error());
    if (!written) {
      // A stored record FHIR XML cannot carry (written before the gateway refused such input): not a 500,
      // but an answer in a format that can carry it.
      Error e = Error::make(ErrorCode::not_acceptable,
                            "This content cannot be represented in the requested format; ask for "
                            "application/fhir+json");
      e.internal = "unrepresentable in the negotiated format";
      r.status = http_status(e.code);
      r.body = fhir::write_json(fhir::operation_outcome(e));
      r.set_header("Content-Type", "application/fhir+json; charset=utf-8");
      return r;
    }
    body = std::move(*written);
  }
  r.body = std::move(body);
  r.set_header("Content-Type", std::string(fhir::media_type(format)) + "; charset=utf-8");
  return r;
}

HttpResponse RestJob::plain_json(int status, const fhir::Node& body) const {
  HttpResponse r;
  r.status = status;
  r.body = fhir::write_json(body);
  r.set_header("Content-Type", "application/json");
  return r;
}

HttpResponse RestJob::fail_response(const Error& error) const {
  HttpResponse r = json_response(http_status(error.code), fhir::write_json(fhir::operation_outcome(error)));
  if (r.status != http_status(error.code)) {  // the outcome itself not in the format asked for
    r = HttpResponse{};
    r.status = http_status(error.code);
    r.body = fhir::write_json(fhir::operation_outcome(error));
    r.set_header("Content-Type", "application/fhir+json; charset=utf-8");
  }
  r.cause = error.internal;
  return r;
}

HttpResponse RestJob::resource_response(int status, const store::VersionRecord& rec, bool location) const {
  HttpResponse r;
  switch (prefer.return_kind) {
    case Prefer::Return::representation:
      r = json_response(status, rec.body);
      break;
    case Prefer::Return::minimal:
      r.status = status;
      break;
    case Prefer::Return::operation_outcome:
      r = json_response(status, fhir::write_json(fhir::informational_outcome(
                                    (status == 201 ? "Created " : "Stored ") + rec.type + "/" + rec.id +
                                    " version " + std::to_string(rec.version))));
      break;
  }
  r.set_header("ETag", etag(rec.version));
  r.set_header("Last-Modified", fhir::format_http_date(rec.last_updated_ms));
  if (location)
    r.set_header("Location",
                 base_url + "/" + rec.type + "/" + rec.id + "/_history/" + std::to_string(rec.version));
  return r;
}

fhir::ValidationOptions RestJob::validation_options() const {
  fhir::ValidationOptions options;
  options.deadline = ex.started + std::chrono::milliseconds(services.options.validation_budget_ms);
  return options;
}

Status RestJob::check_for_write(const fhir::Node& resource, const std::string& type,
                                bool locate_in_body) const {
  fhir::ValidationOptions options = validation_options();
  if (const auto it = services.options.profiles.find(type); it != services.options.profiles.end())
    options.profiles = it->second;
  auto result = services.validator.validate(resource, options);
  Error invalid{ErrorCode::unprocessable, {}, "validation failed"};
  if (result.budget_exceeded) invalid.internal = "validation budget exceeded";
  if (result.has_errors()) {
    if (services.observers && !result.budget_exceeded) services.observers->on_invalid(type);
    for (auto& issue : result.issues)
      if (issue.severity == "error" || issue.severity == "fatal") invalid.issues.push_back(std::move(issue));
  } else if (Status storable = fhir::check_storable(services.model, resource); !storable) {
    invalid = storable.error();
    if (invalid.internal.empty()) invalid.internal = "not storable in every format";
  } else {
    return Ok{};
  }
  if (locate_in_body && fhir::detect_format(request.body) == fhir::Format::json)
    fhir::locate_issues(request.body, invalid.issues);
  return invalid;
}

std::string RestJob::seal_cursor(std::string_view cursor) const {
  return services.cursors ? services.cursors->seal(cursor) : std::string(cursor);
}

Result<fhir::QueryParams> RestJob::search_parameters() const {
  fhir::QueryParams params = query;
  const auto content_type = request.header("Content-Type");
  if (request.method != "POST" || (request.body.empty() && content_type.empty())) return params;
  const auto kind = classify_request_body(content_type);
  if (!kind || *kind != BodyKind::form)
    return Error::make(ErrorCode::unsupported_media_type,
                       "POST _search takes application/x-www-form-urlencoded");
  if (request.body.size() > kMaxSearchFormBytes)
    return Error::make(ErrorCode::payload_too_large, "A POST _search form takes at most " +
                                                         std::to_string(kMaxSearchFormBytes) +
                                                         " bytes, as a search URL does; this one has " +
                                                         std::to_string(request.body.size()));
  auto form = fhir::parse_query_string(request.body);
  if (!form) return form.error();
  params.insert(params.end(), std::make_move_iterator(form->begin()), std::make_move_iterator(form->end()));
  return params;
}

Result<std::string> RestJob::open_cursor(std::string_view sealed) const {
  if (!services.cursors || sealed.empty()) return std::string(sealed);
  if (auto opened = services.cursors->open(sealed)) return std::move(*opened);
  return Error::make(ErrorCode::invalid_input, "Invalid or expired paging cursor", "_cursor");
}

Result<bool> RestJob::readable(const store::VersionRecord& rec, bool note) {
  auto& store = services.store;
  return stages::may_see_version(
      services.gate, ex, *consents, rec,
      [&store, &rec](std::int64_t version) { return store.vread(rec.type, rec.id, version); }, note);
}

store::Visibility RestJob::visibility() {
  if (!ex.caller.partner) return {};
  return [this](const store::VersionRecord& rec) -> Result<bool> {
    auto decision = services.gate.decide_stored(ex.caller, rec, *consents, ex.received_ms);
    if (!decision) return decision.error();
    if (decision->permit && decision->break_glass && ex.audit) ex.audit->break_glass = true;
    return decision->permit;
  };
}

std::unique_ptr<net::HttpJob> RestHandler::start(HttpRequest request) {
  return std::make_unique<RestJob>(services_, std::move(request));
}

HttpResponse RestHandler::error_response(const Error& error) {
  RestJob job(services_, HttpRequest{});
  return job.fail_response(error);
}

std::string etag(std::int64_t version) {
  return "W/\"" + std::to_string(version) + "\"";
}

std::optional<std::int64_t> parse_etag(std::string_view v) {
  if (v.substr(0, 2) == "W/") v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 18) return std::nullopt;
  std::int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

const std::string* param_value(const fhir::QueryParams& params, std::string_view name) {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

}  // namespace fhirgate::gateway::rest
