#include "gateway/rest/api.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>

#include "fhir/datetime.hpp"
#include "fhir/formats.hpp"
#include "fhir/json.hpp"
#include "fhir/json_locate.hpp"
#include "fhir/operation_outcome.hpp"
#include "fhir/search_query.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/bundles.hpp"
#include "gateway/rest/capability.hpp"
#include "gateway/rest/exchange.hpp"
#include "gateway/rest/negotiation.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;
using store::VersionRecord;
using store::WriteTxn;

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

// The version an If-Match header asks for: nullopt when absent. Errors: invalid_input when malformed.
Result<std::optional<std::int64_t>> if_match_version(const HttpRequest& request) {
  const auto header = request.header("If-Match");
  if (header.empty()) return std::optional<std::int64_t>();
  const auto version = parse_etag(header);
  if (!version)
    return Error::make(ErrorCode::invalid_input, "If-Match must be a version ETag such as W/\"1\"");
  return version;
}

Error error_of(const Status& s) {
  return s.error();
}

}  // namespace

Api::Api(ApiOptions options, const fhir::Model& model, const fhir::Validator& validator,
         const fhir::SearchParamRegistry& registry, store::Store& store, const V2InboundContext* v2,
         Security* security, const FeedService* feeds)
    : options_(std::move(options)),
      model_(model),
      validator_(validator),
      registry_(registry),
      store_(store),
      v2_(v2),
      security_(security && security->enabled() ? security : nullptr),
      feeds_(feeds) {
  capability_json_ = fhir::write_json(capability_statement(options_, registry_, now_ms()));
}

HttpResponse Api::json_response(const Exchange& ex, int status, std::string body) const {
  HttpResponse r;
  r.status = status;
  if (ex.pretty || ex.format != fhir::Format::json) {
    auto parsed = fhir::parse_json(body);
    auto written = parsed ? fhir::write_resource(model_, *parsed, ex.format, ex.pretty)
                          : Result<std::string>(parsed.error());
    if (!written) {
      // Only a bug can get here: everything stored was accepted through the same model.
      r.status = 500;
      r.body = fhir::write_json(fhir::operation_outcome(written.error()));
      r.set_header("Content-Type", "application/fhir+json; charset=utf-8");
      return r;
    }
    body = std::move(*written);
  }
  r.body = std::move(body);
  r.set_header("Content-Type", std::string(fhir::media_type(ex.format)) + "; charset=utf-8");
  return r;
}

HttpResponse Api::fail(const Exchange& ex, const Error& error) const {
  HttpResponse r =
      json_response(ex, http_status(error.code), fhir::write_json(fhir::operation_outcome(error)));
  if (error.code == ErrorCode::method_not_allowed) r.set_header("Allow", "GET, POST, PUT, DELETE");
  r.cause = error.internal;
  return r;
}

HttpResponse Api::error_response(const Error& error) const {
  HttpRequest none;
  Exchange ex(none);
  return fail(ex, error);
}

HttpResponse Api::resource_response(const Exchange& ex, int status, const VersionRecord& rec,
                                    bool location) const {
  HttpResponse r;
  switch (ex.prefer.return_kind) {
    case Prefer::Return::representation:
      r = json_response(ex, status, rec.body);
      break;
    case Prefer::Return::minimal:
      r.status = status;
      break;
    case Prefer::Return::operation_outcome:
      r = json_response(ex, status,
                        fhir::write_json(fhir::informational_outcome(
                            (status == 201 ? "Created " : "Stored ") + rec.type + "/" + rec.id + " version " +
                            std::to_string(rec.version))));
      break;
  }
  r.set_header("ETag", etag(rec.version));
  r.set_header("Last-Modified", fhir::format_http_date(rec.last_updated_ms));
  if (location) {
    r.set_header("Location",
                 ex.base_url + "/" + rec.type + "/" + rec.id + "/_history/" + std::to_string(rec.version));
  }
  return r;
}

Reply Api::handle(const HttpRequest& request) const {
  Exchange ex(request);
  Reply reply = recorded(ex, dispatch(ex));
  // Every answer names its correlation id, and is told to on_done.
  RequestDone done;
  done.method = request.method;
  done.path = ex.path;
  done.interaction = interaction_of(ex);
  const auto parts = split_path(ex.path);
  if (!parts.empty() && model_.is_resource(parts[0])) done.resource = parts[0];
  done.correlation_id = ex.correlation_id;
  if (ex.who) done.partner = ex.who->id;
  auto finish = [on_done = options_.on_done, done = std::move(done),
                 started = ex.started](HttpResponse& r) mutable {
    r.set_header("X-Correlation-Id", done.correlation_id);
    if (!on_done) return;
    done.status = r.status;
    done.cause = r.cause;
    done.seconds = elapsed_ms(started) / 1000.0;
    on_done(done);
  };
  if (reply.after_commit) {
    reply.after_commit = [after = std::move(reply.after_commit), finish](const Status& s) mutable {
      HttpResponse r = after(s);
      finish(r);
      return r;
    };
  } else if (reply.background) {
    reply.background = [work = std::move(reply.background), finish]() mutable {
      HttpResponse r = work();
      finish(r);
      return r;
    };
  } else {
    finish(reply.response);
  }
  return reply;
}

std::string Api::interaction_of(const Exchange& ex) const {
  if (!ex.journal_type.empty() && ex.path == "/") return ex.journal_type;  // transaction, batch
  const auto parts = split_path(ex.path);
  const std::string& method = ex.request.method;
  if (parts.empty()) return "other";
  if (parts[0] == "_ops" || parts[0] == "metrics") return "ops";
  if (parts[0] == "metadata") return "capabilities";
  if (ex.path.find('$') != std::string::npos) return "operation";
  if (!model_.is_resource(parts[0])) return "other";
  const bool history = parts.size() >= 2 && parts.back() == "_history";
  if (method == "GET") {
    if (parts.size() == 1) return "search-type";
    if (history) return parts.size() == 2 ? "history-type" : "history-instance";
    return parts.size() == 4 ? "vread" : "read";
  }
  if (method == "POST") return parts.size() == 2 && parts[1] == "_search" ? "search-type" : "create";
  if (method == "PUT") return "update";
  if (method == "DELETE") return "delete";
  if (method == "PATCH") return "patch";
  return "other";
}

namespace {

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

}  // namespace

Reply Api::dispatch(Exchange& ex) const {
  const HttpRequest& request = ex.request;
  ex.now = now_ms();
  const std::string_view target = request.target;
  const auto qmark = target.find('?');
  ex.path = std::string(target.substr(0, qmark));
  ex.prefer = parse_prefer(request.header("Prefer"));
  ex.correlation_id = correlation_id_of(request);
  Reply reply;
  if (!options_.base_url.empty()) {
    ex.base_url = options_.base_url;
  } else {
    const auto host = request.header("Host");
    if (!host.empty() && !valid_host(host)) {
      reply.response =
          fail(ex, Error::make(ErrorCode::invalid_input,
                               "The Host header is not a valid host[:port] (RFC 7230 5.4)", "Host"));
      return reply;
    }
    ex.base_url = "http://" + std::string(host.empty() ? "localhost" : host);
  }
  if (qmark != std::string_view::npos) {
    auto parsed = fhir::parse_query_string(target.substr(qmark + 1));
    if (!parsed) {
      reply.response = fail(ex, parsed.error());
      return reply;
    }
    ex.query = std::move(*parsed);
  }
  const std::string* pretty = param_value(ex.query, "_pretty");
  ex.pretty = pretty && *pretty == "true";
  const std::string* format = param_value(ex.query, "_format");
  auto negotiated =
      negotiate_response_format(format ? *format : std::string_view(), request.header("Accept"));
  if (!negotiated) {
    reply.response = fail(ex, negotiated.error());
    return reply;
  }
  ex.format = *negotiated;
  if (security_ && !admit(ex, reply)) return reply;
  return route(ex);
}

bool Api::admit(Exchange& ex, Reply& reply) const {
  const auto parts = split_path(ex.path);
  if (parts.size() == 1 && (parts[0] == "metadata" || parts[0] == "healthz" || parts[0] == "readyz"))
    return true;                                                 // open to all, and not audited
  if (is_dashboard_file(ex.request.method, parts)) return true;  // static files, no data
  ex.audit = std::make_shared<AuditInput>();
  AuditInput& audit = *ex.audit;
  audit.recorded_ms = ex.now;
  audit.correlation_id = ex.correlation_id;
  audit.client_address = ex.request.remote_address;
  audit.server_address = ex.base_url;
  const std::string& method = ex.request.method;
  audit.interaction = method == "POST"     ? "create"
                      : method == "PUT"    ? "update"
                      : method == "DELETE" ? "delete"
                                           : "read";
  auto who = security_->authenticate(ex.request.header("Authorization"));
  if (!who) {
    reply.response = fail(ex, who.error());
    if (who.error().code == ErrorCode::unauthorized) {
      reply.response.set_header("WWW-Authenticate",
                                ex.request.header("Authorization").empty()
                                    ? "Bearer realm=\"fhirgate\""
                                    : "Bearer realm=\"fhirgate\", error=\"invalid_token\"");
    }
    return false;
  }
  ex.who = *who;
  audit.client_id = ex.who->id;
  audit.client_display = ex.who->name;
  if (ex.who->role == "partner") audit.client_reference = Security::organization_of(*ex.who);
  auto purpose = Security::purpose_of(*ex.who, ex.request.header(security_->purpose_header()));
  if (!purpose) {
    reply.response = fail(ex, purpose.error());
    return false;
  }
  ex.purpose = *purpose;
  audit.purpose = *purpose;
  return true;
}

bool Api::is_dashboard_file(const std::string& method, const std::vector<std::string>& parts) const {
  return method == "GET" && !parts.empty() && parts[0] == "_ops" && !options_.dashboard.empty() &&
         (parts.size() == 1 || (parts.size() == 2 && options_.dashboard.contains(parts[1])));
}

bool Api::allowed(Exchange& ex, const std::string& type, const std::string& interaction, Reply& reply) const {
  if (!ex.audit) return true;
  ex.audit->interaction = interaction;
  if (Security::may(*ex.who, type, interaction)) return true;
  reply.response =
      fail(ex, Error::make(ErrorCode::forbidden, "The sharing agreement does not allow " + ex.who->id + " " +
                                                     interaction + " on " + type));
  return false;
}

namespace {

// Names the resource in the exchange's AuditEvent (the data entity and, when there is one, the patient).
void note_entity(Api::Exchange& ex, const std::string& type, const std::string& id, std::int64_t version,
                 const Node* resource) {
  if (!ex.audit) return;
  ex.audit->entity_reference = type + "/" + id + (version > 0 ? "/_history/" + std::to_string(version) : "");
  if (resource) ex.audit->patient_reference = Security::patient_of(*resource);
  if (ex.audit->patient_reference.empty() && type == "Patient") ex.audit->patient_reference = "Patient/" + id;
}

// Names a stored version and its patient in an AuditEvent being filled in, inside a write plan.
void note_record(AuditInput& audit, const VersionRecord& rec) {
  audit.entity_reference = rec.type + "/" + rec.id + "/_history/" + std::to_string(rec.version);
  if (rec.type == "Patient")
    audit.patient_reference = "Patient/" + rec.id;
  else if (auto held = fhir::parse_json(rec.body))
    audit.patient_reference = Security::patient_of(*held);
}

}  // namespace

bool Api::visible(Exchange& ex, const Node& resource) const {
  if (!ex.who) return true;
  const auto decision = security_->decide(*ex.who, ex.purpose, resource, "access", ex.now);
  if (decision.permit && decision.break_glass && ex.audit) ex.audit->break_glass = true;
  return decision.permit;
}

bool Api::visible_stored(Exchange& ex, const std::string& type, const std::string& id,
                         std::string_view json) const {
  if (!ex.who) return true;
  const auto decision = security_->decide_stored(*ex.who, ex.purpose, type, id, json, "access", ex.now);
  if (decision.permit && decision.break_glass && ex.audit) ex.audit->break_glass = true;
  return decision.permit;
}

bool Api::readable(Exchange& ex, const VersionRecord& rec) const {
  if (rec.deleted) return deletion_readable(ex, rec);
  if (!ex.audit || rec.type == "Patient") {
    note_entity(ex, rec.type, rec.id, rec.version, nullptr);  // a Patient is its own patient
    return visible_stored(ex, rec.type, rec.id, rec.body);
  }
  // Another type's patient is in its content: parse once, for the audit and the decision.
  auto parsed = fhir::parse_json(rec.body);
  note_entity(ex, rec.type, rec.id, rec.version, parsed ? &*parsed : nullptr);
  return parsed && visible(ex, *parsed);
}

bool Api::deletion_readable(Exchange& ex, const VersionRecord& deletion) const {
  if (!ex.who) return true;
  for (std::int64_t v = deletion.version - 1; v >= 1; --v) {
    auto before = store_.vread(deletion.type, deletion.id, v);
    if (!before || !*before) return false;
    if (!(*before)->deleted) {
      const bool shown = readable(ex, **before);  // names the patient in the AuditEvent
      if (ex.audit)
        ex.audit->entity_reference =
            deletion.type + "/" + deletion.id + "/_history/" + std::to_string(deletion.version);
      return shown;
    }
  }
  return false;
}

Api::ChangeCheck Api::change_check(const Exchange& ex) const {
  if (!ex.who) return [](const VersionRecord&) -> Status { return Ok{}; };
  return [security = security_, who = ex.who, purpose = ex.purpose, now = ex.now,
          audit = ex.audit](const VersionRecord& current) -> Status {
    const auto decision =
        security->decide_stored(*who, purpose, current.type, current.id, current.body, "access", now);
    if (decision.permit && decision.break_glass && audit) audit->break_glass = true;
    if (decision.permit) return Ok{};
    if (audit) note_record(*audit, current);
    return Error::make(ErrorCode::not_found, current.type + "/" + current.id + " is not known");
  };
}

store::Store::Visibility Api::visibility(Exchange& ex) const {
  if (!ex.who) return {};
  return [this, &ex](const VersionRecord& rec) { return visible_stored(ex, rec.type, rec.id, rec.body); };
}

Reply Api::route(Exchange& ex) const {
  const auto parts = split_path(ex.path);
  const std::string& method = ex.request.method;
  Reply reply;
  auto not_allowed = [&]() {
    reply.response =
        fail(ex, Error::make(ErrorCode::method_not_allowed, method + " is not allowed on " + ex.path));
    return reply;
  };
  if (parts.empty()) {
    if (method == "POST") return bundle(ex);
    return not_allowed();
  }
  const std::string& first = parts[0];
  auto operation = [&](const char* name) {
    if (ex.audit) {
      ex.audit->interaction = "operation";
      ex.audit->operation = name;
    }
  };
  if (parts.size() == 1 && first == "$validate") {
    operation("$validate");
    return method == "POST" ? validate(ex, {}, {}) : not_allowed();
  }
  if (parts.size() == 2 && parts[1] == "$validate" && model_.is_resource(first)) {
    operation("$validate");
    return method == "POST" ? validate(ex, first, {}) : not_allowed();
  }
  if (parts.size() >= 2 && first == "_ops" && parts[1] == "journal") {
    if (parts.size() == 2) return method == "GET" ? ops_journal(ex) : not_allowed();
    if (parts.size() == 3) {
      if (method == "GET") return ops_journal_entry(ex, parts[2]);
      return method == "DELETE" ? ops_journal_action(ex, parts[2], false) : not_allowed();
    }
    if (parts.size() == 4 && parts[3] == "$retry")
      return method == "POST" ? ops_journal_action(ex, parts[2], true) : not_allowed();
  }
  if (is_dashboard_file(method, parts)) {
    if (parts.size() == 1 && !ex.path.ends_with("/")) {  // relative links need /_ops/
      reply.response.status = 301;
      reply.response.set_header("Location", "/_ops/");
      return reply;
    }
    return ops_dashboard(ex, parts.size() == 1 ? "index.html" : parts[1]);
  }
  if (parts.size() == 1 && first == "metrics" && options_.metrics)
    return method == "GET" ? ops_metrics(ex) : not_allowed();
  if (parts.size() == 2 && first == "_ops" && parts[1] == "stats")
    return method == "GET" ? ops_stats(ex) : not_allowed();
  if (parts.size() >= 2 && first == "_ops" && parts[1] == "deliveries") {
    if (parts.size() == 2) return method == "GET" ? ops_deliveries(ex) : not_allowed();
    if (parts.size() == 3)
      return method == "DELETE" ? ops_delivery_action(ex, parts[2], false) : not_allowed();
    if (parts.size() == 4 && parts[3] == "$retry")
      return method == "POST" ? ops_delivery_action(ex, parts[2], true) : not_allowed();
  }
  if (parts.size() == 1 && first == "$process-message")
    return method == "POST" ? process_message(ex) : not_allowed();
  if (parts.size() == 1 && first == "$ingest" && (v2_ || feeds_))
    return method == "POST" ? ingest(ex) : not_allowed();
  if (parts.size() == 1 && first == "metadata") return method == "GET" ? capabilities(ex) : not_allowed();
  if (parts.size() == 1 && (first == "healthz" || first == "readyz")) {
    return method == "GET" ? health(ex, first == "readyz") : not_allowed();
  }
  if (std::find(options_.cached_types.begin(), options_.cached_types.end(), first) ==
      options_.cached_types.end()) {
    reply.response = fail(ex, Error::make(ErrorCode::not_found,
                                          "Resource type '" + first + "' is not supported by this server"));
    return reply;
  }
  const std::string& type = first;
  const bool audit_trail = type == "AuditEvent";  // served from the chained audit trail
  // Checks the agreement for `interaction`, then runs the handler.
  auto guarded = [&](const char* interaction, auto handler) {
    if (!allowed(ex, type, interaction, reply)) return reply;
    return handler();
  };
  if (parts.size() == 1) {
    if (method == "GET")
      return guarded("search-type", [&] { return audit_trail ? audit_search(ex) : search(ex, type, false); });
    if (method == "POST")
      return guarded("create", [&] { return audit_trail ? audit_create(ex) : create(ex, type); });
    return not_allowed();
  }
  if (parts.size() == 2 && parts[1] == "_search") {
    if (method != "POST" && method != "GET") return not_allowed();
    return guarded("search-type",
                   [&] { return audit_trail ? audit_search(ex) : search(ex, type, method == "POST"); });
  }
  if (parts.size() == 2 && parts[1] == "_history") {
    if (method != "GET") return not_allowed();
    return guarded("history-type",
                   [&] { return audit_trail ? audit_history(ex, {}) : history(ex, type, {}); });
  }
  const std::string& id = parts[1];
  if (!fhir::is_valid_id(id)) {
    reply.response = fail(ex, Error::make(ErrorCode::invalid_input,
                                          "'" + id + "' is not a valid resource id ([A-Za-z0-9-.]{1,64})"));
    return reply;
  }
  if (parts.size() == 2) {
    if (method == "GET")
      return guarded("read", [&] { return audit_trail ? audit_read(ex, id, {}) : read(ex, type, id); });
    if (is_append_only(type) && (method == "PUT" || method == "DELETE")) return not_allowed();
    if (method == "PUT") return guarded("update", [&] { return update(ex, type, id); });
    if (method == "DELETE") return guarded("delete", [&] { return remove(ex, type, id); });
    return not_allowed();
  }
  if (parts.size() == 3 && parts[2] == "$validate") {
    if (method != "GET") return not_allowed();
    if (!allowed(ex, type, "read", reply)) return reply;
    operation("$validate");
    return audit_trail ? not_allowed() : validate(ex, type, id);
  }
  if (parts.size() == 3 && parts[2] == "_history") {
    if (method != "GET") return not_allowed();
    return guarded("history-instance",
                   [&] { return audit_trail ? audit_history(ex, id) : history(ex, type, id); });
  }
  if (parts.size() == 4 && parts[2] == "_history") {
    if (method != "GET") return not_allowed();
    return guarded(
        "vread", [&] { return audit_trail ? audit_read(ex, id, parts[3]) : vread(ex, type, id, parts[3]); });
  }
  reply.response = fail(ex, Error::make(ErrorCode::not_found, "Unknown path " + ex.path));
  return reply;
}

Reply Api::capabilities(Exchange& ex) const {
  Reply reply;
  reply.response = json_response(ex, 200, capability_json_);
  return reply;
}

Reply Api::health(Exchange& ex, bool ready) const {
  Reply reply;
  Status status = ready ? store_.ping() : Status(Ok{});
  HttpResponse r;
  r.status = status ? 200 : 503;
  r.body = status ? R"({"status":"pass"})" : R"({"status":"fail"})";
  r.set_header("Content-Type", "application/json");
  (void)ex;
  reply.response = std::move(r);
  return reply;
}

Reply Api::read(Exchange& ex, const std::string& type, const std::string& id) const {
  Reply reply;
  auto rec = store_.read(type, id);
  if (!rec) {
    reply.response = fail(ex, rec.error());
    return reply;
  }
  if (!*rec || !readable(ex, **rec)) {
    reply.response = fail(ex, Error::make(ErrorCode::not_found, type + "/" + id + " is not known"));
    if (*rec && ex.audit) ex.audit->outcome_desc = "consent: not shared with " + ex.who->id;
  } else if ((*rec)->deleted) {
    reply.response = fail(ex, Error::make(ErrorCode::gone, type + "/" + id + " was deleted"));
    reply.response.set_header("ETag", etag((*rec)->version));
  } else {
    Prefer representation;
    Exchange read_ex = ex;
    read_ex.prefer = representation;
    reply.response = resource_response(read_ex, 200, **rec, false);
  }
  return reply;
}

Reply Api::vread(Exchange& ex, const std::string& type, const std::string& id,
                 const std::string& version) const {
  Reply reply;
  const auto number = parse_etag(version);
  if (!number) {
    reply.response =
        fail(ex, Error::make(ErrorCode::invalid_input, "'" + version + "' is not a version number"));
    return reply;
  }
  auto rec = store_.vread(type, id, *number);
  if (!rec) {
    reply.response = fail(ex, rec.error());
    return reply;
  }
  if (!*rec || !readable(ex, **rec)) {
    reply.response = fail(
        ex, Error::make(ErrorCode::not_found, type + "/" + id + "/_history/" + version + " is not known"));
    if (*rec && ex.audit) ex.audit->outcome_desc = "consent: not shared with " + ex.who->id;
  } else if ((*rec)->deleted) {
    reply.response =
        fail(ex, Error::make(ErrorCode::gone, type + "/" + id + " version " + version + " is a deletion"));
  } else {
    Exchange read_ex = ex;
    read_ex.prefer = Prefer{};
    reply.response = resource_response(read_ex, 200, **rec, false);
  }
  return reply;
}

namespace {

// The body as a resource of `type`: parsed from JSON or XML, FHIR JSON rules checked, resourceType
// matching the URL.
Result<Node> parse_resource_body(const fhir::Model& model, const HttpRequest& request,
                                 const std::string& type) {
  auto kind = classify_request_body(request.header("Content-Type"));
  if (!kind) return std::move(kind).error();
  if (*kind == BodyKind::form) {
    return Error::make(ErrorCode::unsupported_media_type,
                       "A resource body must be application/fhir+json or application/fhir+xml");
  }
  if (request.body.empty()) return Error::make(ErrorCode::invalid_input, "The request has no body");
  const auto format = *kind == BodyKind::fhir_xml ? fhir::Format::xml : fhir::Format::json;
  auto node = fhir::parse_resource(model, request.body, format);
  if (!node) return node;
  if (const auto rt = node->string_at("resourceType"); rt != type) {
    return Error::make(ErrorCode::unprocessable,
                       "resourceType '" + std::string(rt) + "' does not match the URL's type '" + type + "'",
                       "resourceType");
  }
  return node;
}

}  // namespace

Reply Api::create(Exchange& ex, const std::string& type) const {
  Reply reply;
  auto resource = accept_resource(ex, type);
  if (!resource) {
    reply.response = fail(ex, resource.error());
    return reply;
  }
  std::optional<fhir::SearchQuery> condition;
  if (const auto if_none_exist = ex.request.header("If-None-Exist"); !if_none_exist.empty()) {
    std::string_view q = if_none_exist;
    if (const auto pos = q.find('?'); pos != std::string_view::npos) q.remove_prefix(pos + 1);
    auto params = fhir::parse_query_string(q);
    if (!params) {
      reply.response = fail(ex, params.error());
      return reply;
    }
    fhir::SearchOptions opts{true, options_.default_count, options_.max_count, ex.now};
    auto parsed = fhir::parse_search(registry_, type, *params, opts);
    if (!parsed) {
      reply.response = fail(ex, parsed.error());
      return reply;
    }
    if (parsed->clauses.empty()) {
      reply.response = fail(ex, Error::make(ErrorCode::invalid_input, "If-None-Exist needs search criteria"));
      return reply;
    }
    condition = std::move(*parsed);
  }

  struct State {
    VersionRecord record;
    bool existed = false;
  };
  auto state = std::make_shared<State>();
  const std::string id = new_resource_id();
  const std::string supplier = ex.who ? ex.who->id : std::string();
  reply.plan = [state, type, id, supplier, audit = ex.audit, condition = std::move(condition),
                resource = std::move(*resource)](WriteTxn& txn) mutable -> Status {
    if (condition) {
      const auto ids = txn.matching_ids(*condition, 2);
      if (ids.size() > 1) {
        return Error::make(ErrorCode::precondition_failed, "If-None-Exist matched more than one " + type +
                                                               "; the condition is not selective");
      }
      if (ids.size() == 1) {
        state->existed = true;
        state->record = *txn.read(type, ids.front());
        if (audit) note_record(*audit, state->record);  // the record the caller learns of
        return Ok{};
      }
    }
    if (!supplier.empty()) Security::tag_supplier(resource, nullptr, supplier);
    if (audit) {
      audit->entity_reference = type + "/" + id + "/_history/1";
      audit->patient_reference = type == "Patient" ? "Patient/" + id : Security::patient_of(resource);
    }
    state->record = txn.put(type, id, std::move(resource), "POST");
    return Ok{};
  };
  reply.after_commit = [this, state, type, ex = Exchange(ex)](const Status& s) mutable {
    if (!s) return fail(ex, error_of(s));
    // A match is shown only to whom it is shared with: the condition must not be a way around consent.
    if (state->existed && ex.who && !visible_stored(ex, type, state->record.id, state->record.body)) {
      return json_response(ex, 200,
                           fhir::write_json(fhir::informational_outcome(
                               "An existing " + type +
                               " matched If-None-Exist, so nothing was created; it is "
                               "not shared with " +
                               ex.who->id)));
    }
    return resource_response(ex, state->existed ? 200 : 201, state->record, !state->existed);
  };
  return reply;
}

Reply Api::update(Exchange& ex, const std::string& type, const std::string& id) const {
  Reply reply;
  auto resource = accept_resource(ex, type);
  if (!resource) {
    reply.response = fail(ex, resource.error());
    return reply;
  }
  const std::string_view body_id = resource->string_at("id");
  if (body_id.empty()) {
    reply.response =
        fail(ex, Error::make(ErrorCode::invalid_input,
                             "The resource must have an id matching the URL ('" + id + "')", "id"));
    return reply;
  }
  if (body_id != id) {
    reply.response = fail(ex, Error::make(ErrorCode::unprocessable,
                                          "The resource id '" + std::string(body_id) +
                                              "' does not match the URL id '" + id + "'",
                                          type + ".id"));
    return reply;
  }
  auto expected = if_match_version(ex.request);
  if (!expected) {
    reply.response = fail(ex, expected.error());
    return reply;
  }
  struct State {
    VersionRecord record;
    bool created = false;
  };
  auto state = std::make_shared<State>();
  const std::string supplier = ex.who ? ex.who->id : std::string();
  reply.plan = [state, type, id, supplier, audit = ex.audit, expected = *expected,
                may_change = change_check(ex),
                resource = std::move(*resource)](WriteTxn& txn) mutable -> Status {
    const auto current = txn.read(type, id);
    const bool live = current && !current->deleted;
    if (live)
      if (Status allowed = may_change(*current); !allowed) return allowed;
    if (expected && (!live || current->version != *expected)) {
      return Error::make(ErrorCode::precondition_failed,
                         live ? "Version conflict: If-Match W/\"" + std::to_string(*expected) +
                                    "\" but the current version is W/\"" + std::to_string(current->version) +
                                    "\""
                              : "If-Match given but " + type + "/" + id + " does not exist");
    }
    state->created = !live;
    if (!supplier.empty()) {
      auto held = live ? fhir::parse_json(current->body) : Result<Node>(Error{});
      Security::tag_supplier(resource, held ? &*held : nullptr, supplier);
    }
    if (audit)
      audit->patient_reference = type == "Patient" ? "Patient/" + id : Security::patient_of(resource);
    state->record = txn.put(type, id, std::move(resource), "PUT");
    if (audit)
      audit->entity_reference = type + "/" + id + "/_history/" + std::to_string(state->record.version);
    return Ok{};
  };
  reply.after_commit = [this, state, ex = Exchange(ex)](const Status& s) {
    if (!s) return fail(ex, error_of(s));
    return resource_response(ex, state->created ? 201 : 200, state->record, state->created);
  };
  return reply;
}

Reply Api::remove(Exchange& ex, const std::string& type, const std::string& id) const {
  Reply reply;
  auto expected = if_match_version(ex.request);
  if (!expected) {
    reply.response = fail(ex, expected.error());
    return reply;
  }
  auto deleted = std::make_shared<std::optional<VersionRecord>>();
  if (ex.audit) ex.audit->entity_reference = type + "/" + id;
  if (ex.audit && type == "Patient") ex.audit->patient_reference = "Patient/" + id;
  reply.plan = [deleted, type, id, expected = *expected,
                may_change = change_check(ex)](WriteTxn& txn) -> Status {
    const auto current = txn.read(type, id);
    if (current && !current->deleted)
      if (Status allowed = may_change(*current); !allowed) return allowed;
    if (expected) {
      if (!current || current->deleted || current->version != *expected) {
        return Error::make(ErrorCode::precondition_failed,
                           "Version conflict: If-Match does not match the current "
                           "version of " +
                               type + "/" + id);
      }
    }
    *deleted = txn.remove(type, id);
    return Ok{};
  };
  reply.after_commit = [this, deleted, type, id, ex = Exchange(ex)](const Status& s) {
    if (!s) return fail(ex, error_of(s));
    HttpResponse r;
    if (ex.prefer.return_kind == Prefer::Return::operation_outcome) {
      r = json_response(ex, 200,
                        fhir::write_json(fhir::informational_outcome(
                            *deleted ? "Deleted " + type + "/" + id
                                     : type + "/" + id + " did not exist or was already deleted")));
    } else {
      r.status = 204;
    }
    if (*deleted) r.set_header("ETag", etag((*deleted)->version));
    return r;
  };
  return reply;
}

constexpr std::size_t kMaxSearchTerms = 200;

Reply Api::search(Exchange& ex, const std::string& type, bool post) const {
  Reply reply;
  fhir::QueryParams params = ex.query;
  if (post) {
    auto kind = classify_request_body(ex.request.header("Content-Type"));
    if (!ex.request.body.empty() || !ex.request.header("Content-Type").empty()) {
      if (!kind || *kind != BodyKind::form) {
        reply.response = fail(ex, Error::make(ErrorCode::unsupported_media_type,
                                              "POST _search takes application/x-www-form-urlencoded"));
        return reply;
      }
      auto form = fhir::parse_query_string(ex.request.body);
      if (!form) {
        reply.response = fail(ex, form.error());
        return reply;
      }
      params.insert(params.end(), form->begin(), form->end());
    }
  }
  // Each parameter and each of its comma-separated values is a term of the SQL query; SQLite's limits
  // (expression depth, variables) are far above any real search but not above a hostile one.
  std::size_t terms = 0;
  for (const auto& [key, value] : params)
    terms += 1 + static_cast<std::size_t>(std::count(value.begin(), value.end(), ','));
  if (terms > kMaxSearchTerms) {
    reply.response =
        fail(ex, Error::make(ErrorCode::invalid_input, "The search has " + std::to_string(terms) +
                                                           " parameters and values; at most " +
                                                           std::to_string(kMaxSearchTerms) + " are allowed"));
    return reply;
  }
  fhir::SearchOptions opts{ex.prefer.strict, options_.default_count, options_.max_count, ex.now};
  auto query = fhir::parse_search(registry_, type, params, opts);
  if (!query) {
    reply.response = fail(ex, query.error());
    return reply;
  }
  if (ex.audit) ex.audit->query = ex.request.method + " " + ex.request.target;
  auto page = store_.search(*query, visibility(ex));
  if (!page) {
    reply.response = fail(ex, page.error());
    return reply;
  }
  if (ex.audit) {
    for (const auto& rec : page->matches) {
      std::string patient = type == "Patient" ? "Patient/" + rec.id : std::string();
      if (patient.empty())
        if (auto parsed = fhir::parse_json(rec.body)) patient = Security::patient_of(*parsed);
      if (!patient.empty()) ex.seen_patients.push_back(std::move(patient));
    }
  }

  std::string self_query;
  for (const auto& [k, v] : query->understood) {
    self_query += (self_query.empty() ? "" : "&") + fhir::url_encode(k) + "=" + fhir::url_encode(v);
  }
  const std::string base = ex.base_url + "/" + type;
  auto link = [&](const std::string& cursor) {
    std::string q = self_query;
    if (!cursor.empty()) q += (q.empty() ? "" : "&") + std::string("_cursor=") + cursor;
    return q.empty() ? base : base + "?" + q;
  };
  std::vector<BundleLink> links{{"self", link(query->cursor)}};
  if (!page->next_cursor.empty()) links.push_back({"next", link(page->next_cursor)});
  if (!page->previous_cursor.empty()) links.push_back({"previous", link(page->previous_cursor)});

  std::vector<SearchEntry> entries;
  entries.reserve(page->matches.size());
  for (auto& m : page->matches) {
    SearchEntry e{base + "/" + m.id, std::move(m.body)};
    if (!query->elements.empty()) {
      auto parsed = fhir::parse_json(e.resource_json);
      if (parsed) {
        Node subset = Node::object();
        for (auto& [k, v] : parsed->members()) {
          const bool keep =
              k == "resourceType" || k == "id" || k == "meta" ||
              std::find(query->elements.begin(), query->elements.end(), k) != query->elements.end();
          if (keep) subset.set(k, std::move(v));
        }
        Node* meta = subset.find("meta");
        if (!meta) meta = &subset.set("meta", Node::object());
        Node* tags = meta->find("tag");
        if (!tags || !tags->is_array()) tags = &meta->set("tag", Node::array());
        Node tag = Node::object();
        tag.set("system", Node::string("http://terminology.hl7.org/CodeSystem/v3-ObservationValue"));
        tag.set("code", Node::string("SUBSETTED"));
        tags->push(std::move(tag));
        e.resource_json = fhir::write_json(subset);
      }
    }
    entries.push_back(std::move(e));
  }
  reply.response =
      json_response(ex, 200, searchset_bundle(new_resource_id(), ex.now, page->total, links, entries));
  return reply;
}

namespace {

// The OperationOutcome of a validation: every issue with its own severity; a clean result says so.
Node validation_outcome(const fhir::ValidationResult& result) {
  Error report{ErrorCode::unprocessable, result.issues, {}};
  if (report.issues.empty()) {
    return fhir::informational_outcome("Validation passed: no errors or warnings");
  }
  return fhir::operation_outcome(report);
}

}  // namespace

Result<Node> Api::parse_body(const Exchange& ex, const std::string& type) const {
  return parse_resource_body(model_, ex.request, type);
}

Result<Node> Api::accept_resource(const Exchange& ex, const std::string& type) const {
  auto resource = parse_resource_body(model_, ex.request, type);
  if (!resource) return resource;
  Status valid = check_for_write(*resource, type);
  if (!valid) {
    Error invalid = valid.error();
    if (fhir::detect_format(ex.request.body) == fhir::Format::json)
      fhir::locate_issues(ex.request.body, invalid.issues);
    return invalid;
  }
  return resource;
}

Status Api::check_for_write(const Node& resource, const std::string& type) const {
  fhir::ValidationOptions options;
  if (const auto it = options_.profiles.find(type); it != options_.profiles.end())
    options.profiles = it->second;
  auto result = validator_.validate(resource, options);
  if (!result.has_errors()) return Ok{};
  if (options_.on_invalid) options_.on_invalid(type);
  Error invalid{ErrorCode::unprocessable, {}, "validation failed"};
  for (auto& issue : result.issues) {
    if (issue.severity == "error" || issue.severity == "fatal") invalid.issues.push_back(std::move(issue));
  }
  return invalid;
}

// $validate (R4 resource-operation-validate): the body is the resource or a Parameters with `resource`,
// `mode` and `profile`; GET on an instance validates the stored version. Always 200 with an
// OperationOutcome listing every issue, unless the request itself is wrong.
Reply Api::validate(Exchange& ex, const std::string& type, const std::string& id) const {
  Reply reply;
  fhir::ValidationOptions options;
  Node resource;
  if (!id.empty()) {
    auto rec = store_.read(type, id);
    if (!rec) {
      reply.response = fail(ex, rec.error());
      return reply;
    }
    if (!*rec || (*rec)->deleted) {
      reply.response = fail(ex, Error::make(ErrorCode::not_found, type + "/" + id + " is not known"));
      return reply;
    }
    resource = *fhir::parse_json((*rec)->body);
    note_entity(ex, type, id, (*rec)->version, &resource);
    if (!visible(ex, resource)) {
      reply.response = fail(ex, Error::make(ErrorCode::not_found, type + "/" + id + " is not known"));
      return reply;
    }
  } else {
    auto kind = classify_request_body(ex.request.header("Content-Type"));
    if (!kind || *kind == BodyKind::form) {
      reply.response =
          fail(ex, kind ? Error::make(ErrorCode::unsupported_media_type,
                                      "$validate takes application/fhir+json or application/fhir+xml")
                        : kind.error());
      return reply;
    }
    const auto format = *kind == BodyKind::fhir_xml ? fhir::Format::xml : fhir::Format::json;
    auto parsed = fhir::parse_resource(model_, ex.request.body, format);
    if (!parsed) {
      // A body that cannot be read is itself the validation outcome.
      reply.response = json_response(ex, 200, fhir::write_json(fhir::operation_outcome(parsed.error())));
      return reply;
    }
    resource = std::move(*parsed);
    if (resource.string_at("resourceType") == "Parameters" && type != "Parameters") {
      Node inner;
      static const std::vector<Node> kNone;
      const Node* parameters = resource.find("parameter");
      for (const auto& p : parameters ? parameters->items() : kNone) {
        const auto name = p.string_at("name");
        if (name == "resource" && p.find("resource")) inner = *p.find("resource");
        if (name == "profile")
          options.profiles.emplace_back(p.string_at("valueUri").empty() ? p.string_at("valueCanonical")
                                                                        : p.string_at("valueUri"));
        if (name == "mode" && p.string_at("valueCode") == "delete") {
          reply.response = json_response(
              ex, 200,
              fhir::write_json(fhir::informational_outcome("Validation passed: deletion is always allowed")));
          return reply;
        }
      }
      if (inner.is_null()) {
        reply.response =
            fail(ex, Error::make(ErrorCode::invalid_input, "Parameters has no 'resource' parameter"));
        return reply;
      }
      resource = std::move(inner);
    }
    if (!type.empty() && resource.string_at("resourceType") != type) {
      reply.response =
          fail(ex, Error::make(ErrorCode::unprocessable,
                               "resourceType '" + std::string(resource.string_at("resourceType")) +
                                   "' does not match the URL's type '" + type + "'",
                               "resourceType"));
      return reply;
    }
  }
  for (const auto& p : ex.query) {
    if (p.first == "profile") options.profiles.push_back(p.second);
  }
  const std::string resource_type(resource.string_at("resourceType"));
  if (const auto it = options_.profiles.find(resource_type); it != options_.profiles.end()) {
    options.profiles.insert(options.profiles.end(), it->second.begin(), it->second.end());
  }
  auto result = validator_.validate(resource, options);
  if (id.empty() && fhir::detect_format(ex.request.body) == fhir::Format::json) {
    fhir::locate_issues(ex.request.body, result.issues);
  }
  reply.response = json_response(ex, 200, fhir::write_json(validation_outcome(result)));
  return reply;
}

// POST /$ingest: one HL7 v2 message (ER7) in, handled exactly as on an MLLP listener (handle_v2, logged
// and applied in one commit); the answer is a transaction-response Bundle with an entry per resource
// written (a re-sent message answers with what it wrote the first time), or an OperationOutcome: 400 when
// rejected, 422 when it could not be processed, the storage error when it could not be stored.
Reply Api::ingest(Exchange& ex) const {
  Reply reply;
  std::string_view content_type = ex.request.header("Content-Type");
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  if (content_type == "text/csv" && feeds_) return ingest_feed(ex, mappers::FeedMapping::Format::csv);
  if ((content_type == "application/xml" || content_type == "text/xml") && feeds_)
    return ingest_feed(ex, mappers::FeedMapping::Format::xml);
  if ((content_type != "x-application/hl7-v2+er7" && content_type != "application/hl7-v2" &&
       content_type != "application/hl7-v2+er7") ||
      !v2_) {
    reply.response =
        fail(ex, Error::make(ErrorCode::unsupported_media_type,
                             "$ingest takes an HL7 v2 message (x-application/hl7-v2+er7), a CSV file "
                             "(text/csv) or an XML document (application/xml)"));
    return reply;
  }
  if (ex.request.body.empty()) {
    reply.response = fail(ex, Error::make(ErrorCode::invalid_input, "$ingest needs a message in the body"));
    return reply;
  }
  ex.journaled = false;  // handle_v2 journals the message
  V2Source source{"http", "", ex.request.remote_address, "", ex.correlation_id, 0};
  if (ex.who) {
    // The partner is the token's, whatever MSH-4 says; it must be one that sends HL7 v2.
    const bool sends_v2 = std::any_of(ex.who->inbound.begin(), ex.who->inbound.end(),
                                      [](const std::string& f) { return f.rfind("hl7v2", 0) == 0; });
    if (!sends_v2) {
      reply.response = fail(ex, Error::make(ErrorCode::forbidden, "The sharing agreement does not let " +
                                                                      ex.who->id + " send HL7 v2 messages"));
      return reply;
    }
    source.partner = ex.who->id;
    source.purpose = ex.purpose;
    ex.audit.reset();  // the message's own AuditEvent (handle_v2) records this exchange
  }
  V2Reply v2 = handle_v2(*v2_, ex.request.body, source);
  reply.plan = std::move(v2.plan);
  reply.after_commit = [this, outcome = std::move(v2.outcome), ex = Exchange(ex)](const Status& s) {
    const V2Outcome o = outcome(s);
    if (o.kind == V2Outcome::Kind::not_stored) return fail(ex, o.error);
    if (o.kind == V2Outcome::Kind::rejected || o.kind == V2Outcome::Kind::failed) {
      Error error = o.error;
      error.code = o.kind == V2Outcome::Kind::rejected ? ErrorCode::invalid_input : ErrorCode::unprocessable;
      for (auto& issue : error.issues)
        if (issue.expression.empty() && !o.error_location.empty()) issue.expression = o.error_location;
      return fail(ex, error);
    }
    Node entries = Node::array();
    for (const auto& w : o.written) {
      Node response = Node::object();
      response.set("status", Node::string(w.outcome == "created" ? "201 Created" : "200 OK"));
      response.set("location", Node::string(w.type + "/" + w.id + "/_history/" + std::to_string(w.version)));
      response.set("etag", Node::string(etag(w.version)));
      Node entry = Node::object();
      entry.set("response", std::move(response));
      entries.push(std::move(entry));
    }
    Node bundle = Node::object();
    bundle.set("resourceType", Node::string("Bundle"));
    bundle.set("type", Node::string("transaction-response"));
    if (!entries.items().empty()) bundle.set("entry", std::move(entries));
    return json_response(ex, 200, fhir::write_json(bundle));
  };
  return reply;
}

// POST /$ingest with a CSV file or an XML document: the calling partner's feed (?feed= names it when
// the partner has several of that format; with security off, ?partner= names the partner), ingested
// row by row on a worker thread (feed_ingest.hpp). The answer is a batch-response Bundle with one entry
// per data row, in file order: 201 created, 200 updated or unchanged (with the version's location),
// 204 skipped, 422 rejected and 503 not stored, each problem in entry.response.outcome naming the row and
// line. A file that cannot be taken as a whole (header, columns, malformed XML) gets 400.
Reply Api::ingest_feed(Exchange& ex, mappers::FeedMapping::Format format) const {
  Reply reply;
  const std::string* feed_id = param_value(ex.query, "feed");
  const std::string* partner_param = param_value(ex.query, "partner");
  std::string partner = ex.who ? ex.who->id : partner_param ? *partner_param : std::string();
  const char* format_name = format == mappers::FeedMapping::Format::csv ? "csv" : "xml";
  if (ex.who &&
      std::find(ex.who->inbound.begin(), ex.who->inbound.end(), format_name) == ex.who->inbound.end()) {
    reply.response =
        fail(ex, Error::make(ErrorCode::forbidden, "The sharing agreement does not let " + ex.who->id +
                                                       " send " + format_name + " feeds"));
    return reply;
  }
  if (partner.empty()) {
    reply.response =
        fail(ex, Error::make(ErrorCode::invalid_input, "name the sending partner: ?partner=", "partner"));
    return reply;
  }
  const PartnerFeed* feed = find_feed(feeds_->feeds, partner, feed_id ? *feed_id : "", format);
  if (!feed) {
    reply.response =
        fail(ex, Error::make(ErrorCode::invalid_input,
                             "partner '" + partner + "' has no " + format_name + " feed" +
                                 (feed_id ? " '" + *feed_id + "'" : " (or several: name one with ?feed=)"),
                             "feed"));
    return reply;
  }
  FeedOrigin origin;
  if (format == mappers::FeedMapping::Format::csv) {
    // Content-Type: text/csv; charset=... overrides the mapping's encoding.
    std::string type(ex.request.header("Content-Type"));
    for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const auto at = type.find("charset="); at != std::string::npos) {
      std::string charset = type.substr(at + 8);
      charset = charset.substr(0, charset.find(';'));
      std::erase(charset, '"');
      std::erase(charset, ' ');
      if (charset == "windows-1252" || charset == "cp1252" || charset == "iso-8859-1" ||
          charset == "latin1") {
        origin.encoding = mappers::TextEncoding::windows1252;
      } else if (charset == "utf-8" || charset == "utf8" || charset == "us-ascii") {
        origin.encoding = mappers::TextEncoding::utf8;
      } else {
        reply.response =
            fail(ex, Error::make(ErrorCode::unsupported_media_type,
                                 "charset '" + charset + "' is not supported: use utf-8 or windows-1252"));
        return reply;
      }
    }
  }
  origin.partner = feed->partner;
  origin.partner_name = feed->partner_name;
  origin.client_address = ex.request.remote_address;
  origin.purpose = ex.purpose;
  origin.correlation_id = ex.correlation_id;
  origin.size = static_cast<std::int64_t>(ex.request.body.size());
  origin.payload = std::string_view(ex.request.body);
  ex.audit.reset();      // each chunk records its own AuditEvent
  ex.journaled = false;  // and the feed journals the file
  reply.background = [this, feed, origin, format, ex = Exchange(ex)]() {
    // The entries as JSON text, one by one: a Node tree of 100,000 rows would cost ~400 MB.
    std::string entries;
    auto sink = [&](const FeedRowResult& row) {
      static const std::map<std::string, std::string, std::less<>> statuses = {
          {"created", "201 Created"},
          {"updated", "200 OK"},
          {"unchanged", "200 OK"},
          {"skipped", "204 No Content"},
          {"rejected", "422 Unprocessable Entity"},
          {"not-stored", "503 Service Unavailable"}};
      Node response = Node::object();
      response.set("status", Node::string(statuses.at(row.status)));
      if (!row.resource.empty()) response.set("location", Node::string(row.resource));
      if (!row.reason.empty() || row.status == "unchanged") {
        Error note = Error::make(ErrorCode::invalid_input,
                                 "row " + std::to_string(row.row) + " (line " + std::to_string(row.line) +
                                     "): " + (row.reason.empty() ? row.status : row.reason));
        auto& issue = note.issues.front();
        issue.line = static_cast<int>(row.line);
        if (row.status == "unchanged" || row.status == "skipped") {
          issue.severity = "information";
          issue.code = "informational";
        }
        response.set("outcome", fhir::operation_outcome(note));
      }
      Node entry = Node::object();
      entry.set("response", std::move(response));
      if (!entries.empty()) entries += ',';
      entries += fhir::write_json(entry);
    };
    FeedSummary summary;
    if (format == mappers::FeedMapping::Format::csv) {
      std::istringstream in(ex.request.body);
      summary = ingest_csv(feeds_->context, *feed, origin, in, sink);
    } else {
      summary = ingest_xml(feeds_->context, *feed, origin, ex.request.body, sink);
    }
    if (summary.failure && !summary.storage_failed) return fail(ex, *summary.failure);
    std::string bundle = R"({"resourceType":"Bundle","type":"batch-response")";
    if (!entries.empty()) bundle += R"(,"entry":[)" + std::move(entries) + "]";
    bundle += "}";
    HttpResponse response = json_response(ex, summary.storage_failed ? 503 : 200, std::move(bundle));
    std::string counts;
    for (const auto& [status, n] : summary.by_status)
      counts += (counts.empty() ? "" : ", ") + status + "=" + std::to_string(n);
    response.headers.emplace_back(
        "X-Ingest-Summary", "rows=" + std::to_string(summary.rows) + (counts.empty() ? "" : ", " + counts));
    return response;
  };
  return reply;
}

Reply Api::history(Exchange& ex, const std::string& type, const std::string& id) const {
  Reply reply;
  int count = options_.default_count;
  std::int64_t since = std::numeric_limits<std::int64_t>::min();
  std::string cursor;
  fhir::QueryParams understood;
  for (const auto& [k, v] : ex.query) {
    if (k == "_count") {
      try {
        std::size_t used = 0;
        const long n = std::stol(v, &used);
        if (used != v.size() || n < 0) throw std::invalid_argument("count");
        count = static_cast<int>(std::min<long>(n, options_.max_count));
      } catch (const std::exception&) {
        reply.response = fail(
            ex, Error::make(ErrorCode::invalid_input, "_count must be a non-negative integer", "_count"));
        return reply;
      }
      understood.emplace_back(k, v);
    } else if (k == "_since") {
      const auto range = fhir::parse_time_range(v);
      if (!range) {
        reply.response =
            fail(ex, Error::make(ErrorCode::invalid_input, "_since must be an instant", "_since"));
        return reply;
      }
      since = range->low;
      understood.emplace_back(k, v);
    } else if (k == "_cursor") {
      cursor = v;
    } else if (k == "_format" || k == "_pretty") {
      continue;
    } else if (ex.prefer.strict) {
      reply.response =
          fail(ex, Error::make(ErrorCode::invalid_input, "Unknown parameter '" + k + "' for history", k));
      return reply;
    }
  }
  auto page = store_.history(type, id, since, count, cursor);
  if (!page) {
    reply.response = fail(ex, page.error());
    return reply;
  }
  if (!id.empty() && page->total == 0) {
    reply.response = fail(ex, Error::make(ErrorCode::not_found, type + "/" + id + " is not known"));
    return reply;
  }
  if (ex.who) {
    if (!id.empty()) {
      // An instance's history is one patient's: the newest readable version decides.
      note_entity(ex, type, id, 0, nullptr);
      auto latest = store_.read(type, id);
      std::optional<Node> current;
      if (latest && *latest && !(*latest)->deleted)
        if (auto parsed = fhir::parse_json((*latest)->body)) current = std::move(*parsed);
      if (current) note_entity(ex, type, id, 0, &*current);
      if (!current || !visible(ex, *current)) {
        reply.response = fail(ex, Error::make(ErrorCode::not_found, type + "/" + id + " is not known"));
        return reply;
      }
    } else {
      if (ex.audit) ex.audit->query = ex.request.method + " " + ex.request.target;
      std::vector<VersionRecord> shown;
      for (auto& v : page->versions) {
        if (v.deleted) continue;
        auto parsed = fhir::parse_json(v.body);
        if (parsed && visible(ex, *parsed)) shown.push_back(std::move(v));
      }
      page->versions = std::move(shown);
    }
  }
  std::string self_query;
  for (const auto& [k, v] : understood) {
    self_query += (self_query.empty() ? "" : "&") + fhir::url_encode(k) + "=" + fhir::url_encode(v);
  }
  const std::string base = ex.base_url + "/" + type + (id.empty() ? "" : "/" + id) + "/_history";
  auto link = [&](const std::string& c) {
    std::string q = self_query;
    if (!c.empty()) q += (q.empty() ? "" : "&") + std::string("_cursor=") + c;
    return q.empty() ? base : base + "?" + q;
  };
  std::vector<BundleLink> links{{"self", link(cursor)}};
  if (!page->next_cursor.empty()) links.push_back({"next", link(page->next_cursor)});
  reply.response = json_response(
      ex, 200, history_bundle(new_resource_id(), ex.now, page->total, links, ex.base_url, page->versions));
  return reply;
}

}  // namespace fhirgate::gateway::rest
