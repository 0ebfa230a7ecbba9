// The operators' view of the outbox: GET /_ops/deliveries?status=&destination=&_count=&before=
// (operator or privacy-officer credential when security is on). Plain JSON, newest first. Also the
// dashboard's static files (GET /_ops/...) and GET /metrics.
#include <string>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "gateway/rest/exchange.hpp"

namespace fhirgate::gateway::rest {

Reply Api::ops_deliveries(Exchange& ex) const {
  Reply reply;
  if (ex.who && ex.who->role != "operator" && ex.who->role != "privacy-officer") {
    reply.response = fail(ex, Error::make(ErrorCode::forbidden, "Operators only"));
    return reply;
  }
  if (ex.audit) ex.audit->interaction = "search-type";
  store::DeliveryQuery query;
  for (const auto& [key, value] : ex.query) {
    if (key == "status") {
      query.status = value;
    } else if (key == "destination") {
      query.destination = value;
    } else if (key == "_count" || key == "before") {
      try {
        const long long n = std::stoll(value);
        if (n < 1) throw std::invalid_argument(key);
        if (key == "_count")
          query.count = static_cast<int>(std::min(n, 1000LL));
        else
          query.before_id = n;
      } catch (const std::exception&) {
        reply.response =
            fail(ex, Error::make(ErrorCode::invalid_input, key + " must be a positive integer", key));
        return reply;
      }
    } else {
      reply.response =
          fail(ex, Error::make(ErrorCode::invalid_input, "Unknown parameter '" + key + "'", key));
      return reply;
    }
  }
  auto rows = store_.deliveries(query);
  if (!rows) {
    reply.response = fail(ex, rows.error());
    return reply;
  }
  fhir::Node list = fhir::Node::array();
  for (const auto& d : *rows) {
    fhir::Node row = fhir::Node::object();
    row.set("id", fhir::Node::number(std::to_string(d.id)));
    row.set("created", fhir::Node::string(fhir::format_instant(d.created_ms)));
    row.set("route", fhir::Node::string(d.route));
    row.set("destination", fhir::Node::string(d.destination));
    row.set("format", fhir::Node::string(d.format));
    // A stored version, or what passed through unstored (a message: Bundle/<message id>, with its event).
    row.set("resource", fhir::Node::string(store::delivered_reference(d)));
    if (!d.event.empty()) row.set("event", fhir::Node::string(d.event));
    if (!d.patient.empty()) row.set("patient", fhir::Node::string(d.patient));
    row.set("status", fhir::Node::string(d.status));
    row.set("attempts", fhir::Node::number(std::to_string(d.attempts)));
    row.set("nextAttempt", fhir::Node::string(fhir::format_instant(d.next_attempt_ms)));
    if (!d.last_error.empty()) row.set("lastError", fhir::Node::string(d.last_error));
    list.push(std::move(row));
  }
  fhir::Node out = fhir::Node::object();
  out.set("deliveries", std::move(list));
  HttpResponse& r = reply.response;
  r.status = 200;
  r.body = fhir::write_json(out);
  r.set_header("Content-Type", "application/json");
  return reply;
}

// POST /_ops/deliveries/{id}/$retry: a dead, withheld or discarded delivery goes back to pending, due now,
// with a fresh count of attempts. DELETE /_ops/deliveries/{id}: a delivery not yet delivered is
// discarded. 404 for an unknown id, 409 for a delivery in the wrong state.
Reply Api::ops_delivery_action(Exchange& ex, const std::string& id_text, bool retry) const {
  Reply reply;
  if (ex.who && ex.who->role != "operator") {
    reply.response = fail(ex, Error::make(ErrorCode::forbidden, "Operators only"));
    return reply;
  }
  std::int64_t id = 0;
  try {
    std::size_t used = 0;
    id = std::stoll(id_text, &used);
    if (used != id_text.size()) throw std::invalid_argument("id");
  } catch (const std::exception&) {
    reply.response = fail(ex, Error::make(ErrorCode::not_found, "No delivery " + id_text));
    return reply;
  }
  if (ex.audit) {
    ex.audit->interaction = retry ? "operation" : "delete";
    if (retry) ex.audit->operation = "$retry";
  }
  auto result = std::make_shared<store::Delivery>();
  reply.plan = [id, retry, result](store::WriteTxn& txn) -> Status {
    auto done = txn.act_on_delivery(id, retry);
    if (!done) return done.error();
    *result = *done;
    return Ok{};
  };
  reply.after_commit = [this, result, ex = Exchange(ex)](const Status& s) {
    if (!s) return fail(ex, s.error());
    HttpResponse r;
    r.status = 200;
    r.body = R"({"id":)" + std::to_string(result->id) + R"(,"status":")" + result->status + R"("})";
    r.set_header("Content-Type", "application/json");
    return r;
  };
  return reply;
}

Reply Api::ops_dashboard(Exchange& ex, const std::string& file) const {
  Reply reply;
  (void)ex;
  const std::string& content = options_.dashboard.at(file);
  const std::string extension = file.substr(file.rfind('.') + 1);
  const char* type = extension == "html"  ? "text/html; charset=utf-8"
                     : extension == "js"  ? "text/javascript; charset=utf-8"
                     : extension == "css" ? "text/css; charset=utf-8"
                     : extension == "svg" ? "image/svg+xml"
                     : extension == "png" ? "image/png"
                                          : "application/octet-stream";
  HttpResponse& r = reply.response;
  r.status = 200;
  r.body = content;
  r.set_header("Content-Type", type);
  r.set_header("Cache-Control", "no-cache");
  r.set_header("X-Content-Type-Options", "nosniff");
  r.set_header("Content-Security-Policy",
               "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "frame-ancestors 'none'");
  return reply;
}

Reply Api::ops_metrics(Exchange& ex) const {
  Reply reply;
  if (!operators_only(ex, reply)) return reply;
  if (ex.audit) ex.audit->interaction = "read";
  HttpResponse& r = reply.response;
  r.status = 200;
  r.body = options_.metrics();
  r.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  return reply;
}

}  // namespace fhirgate::gateway::rest
