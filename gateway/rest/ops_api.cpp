// The server's own endpoints: the CapabilityStatement (GET /metadata), health (GET /healthz, /readyz),
// the operators' dashboard's static files (GET /_ops/...), the metrics (GET /metrics) and the outbox
// (GET /_ops/deliveries, POST /_ops/deliveries/{id}/$retry, DELETE /_ops/deliveries/{id}).
#include <algorithm>
#include <string>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

// Operators' endpoints: the operator role (anyone with security off); `also` another role allowed.
bool roles_only(RestJob& job, const char* also = nullptr) {
  const PartnerConfig* who = job.ex.caller.partner;
  if (!who || who->role == "operator" || (also && who->role == also)) return true;
  job.ex.fail(Error::make(ErrorCode::forbidden, "Operators only"));
  return false;
}

class Capabilities final : public Interaction {
 public:
  HttpResponse respond(RestJob& job) override { return job.json_response(200, job.services.capability_json); }
};

class Health final : public Interaction {
 public:
  explicit Health(bool ready) : ready_(ready) {}
  HttpResponse respond(RestJob& job) override {
    const Status status = ready_ ? job.services.store.ping() : Status(Ok{});
    HttpResponse r;
    r.status = status ? 200 : 503;
    r.body = status ? R"({"status":"pass"})" : R"({"status":"fail"})";
    r.set_header("Content-Type", "application/json");
    return r;
  }

 private:
  bool ready_;
};

class Dashboard final : public Interaction {
 public:
  explicit Dashboard(std::string file) : file_(std::move(file)) {}
  HttpResponse respond(RestJob& job) override {
    const std::string& content = job.services.options.dashboard.at(file_);
    const std::string extension = file_.substr(file_.rfind('.') + 1);
    const char* type = extension == "html"  ? "text/html; charset=utf-8"
                       : extension == "js"  ? "text/javascript; charset=utf-8"
                       : extension == "css" ? "text/css; charset=utf-8"
                       : extension == "svg" ? "image/svg+xml"
                       : extension == "png" ? "image/png"
                                            : "application/octet-stream";
    HttpResponse r;
    r.status = 200;
    r.body = content;
    r.set_header("Content-Type", type);
    r.set_header("Cache-Control", "no-cache");
    r.set_header("X-Content-Type-Options", "nosniff");
    r.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                 "frame-ancestors 'none'");
    return r;
  }

 private:
  std::string file_;
};

class Redirect final : public Interaction {
 public:
  explicit Redirect(std::string location) : location_(std::move(location)) {}
  HttpResponse respond(RestJob&) override {
    HttpResponse r;
    r.status = 301;
    r.set_header("Location", location_);
    return r;
  }

 private:
  std::string location_;
};

class MetricsText final : public Interaction {
 public:
  void prepare(RestJob& job) override {
    if (roles_only(job) && job.ex.audit) job.ex.audit->interaction = "read";
  }
  HttpResponse respond(RestJob& job) override {
    HttpResponse r;
    r.status = 200;
    r.body = job.services.options.metrics();
    r.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return r;
  }
};

// GET /_ops/deliveries?status=&destination=&_count=&before= (operator or privacy officer). Plain JSON,
// newest first.
class Deliveries final : public Interaction {
 public:
  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!roles_only(job, "privacy-officer")) return;
    if (ex.audit) ex.audit->interaction = "search-type";
    store::DeliveryQuery query;
    for (const auto& [key, value] : job.query) {
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
          return ex.fail(Error::make(ErrorCode::invalid_input, key + " must be a positive integer", key));
        }
      } else {
        return ex.fail(Error::make(ErrorCode::invalid_input, "Unknown parameter '" + key + "'", key));
      }
    }
    auto rows = job.services.store.deliveries(query);
    if (!rows) return ex.fail(rows.error());
    rows_ = std::move(*rows);
    // The list names patients (and why consent withheld their data): audited against them.
    if (ex.audit)
      for (const auto& d : rows_)
        if (!d.patient.empty() &&
            std::find(ex.seen_patients.begin(), ex.seen_patients.end(), d.patient) == ex.seen_patients.end())
          ex.seen_patients.push_back(d.patient);
  }

  HttpResponse respond(RestJob& job) override {
    Node list = Node::array();
    for (const auto& d : rows_) {
      Node row = Node::object();
      row.set("id", Node::number(std::to_string(d.id)));
      row.set("created", Node::string(fhir::format_instant(d.created_ms)));
      row.set("route", Node::string(d.route));
      row.set("destination", Node::string(d.destination));
      row.set("format", Node::string(d.format));
      // A stored version, or what passed through unstored (a message: Bundle/<message id>, with its event).
      row.set("resource", Node::string(store::delivered_reference(d)));
      if (!d.event.empty()) row.set("event", Node::string(d.event));
      if (!d.patient.empty()) row.set("patient", Node::string(d.patient));
      row.set("status", Node::string(d.status));
      row.set("attempts", Node::number(std::to_string(d.attempts)));
      row.set("nextAttempt", Node::string(fhir::format_instant(d.next_attempt_ms)));
      if (!d.last_error.empty()) row.set("lastError", Node::string(d.last_error));
      list.push(std::move(row));
    }
    Node out = Node::object();
    out.set("deliveries", std::move(list));
    return job.plain_json(200, out);
  }

 private:
  std::vector<store::Delivery> rows_;
};

// POST /_ops/deliveries/{id}/$retry: a dead, withheld or discarded delivery goes back to pending, due now,
// with a fresh count of attempts. DELETE /_ops/deliveries/{id}: a delivery not yet delivered is
// discarded. 404 for an unknown id, 409 for a delivery in the wrong state.
class DeliveryAction final : public Interaction {
 public:
  DeliveryAction(std::string id, bool retry) : id_text_(std::move(id)), retry_(retry) {}

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!roles_only(job)) return;
    try {
      std::size_t used = 0;
      id_ = std::stoll(id_text_, &used);
      if (used != id_text_.size()) throw std::invalid_argument("id");
    } catch (const std::exception&) {
      return ex.fail(Error::make(ErrorCode::not_found, "No delivery " + id_text_));
    }
    if (ex.audit) {
      ex.audit->interaction = retry_ ? "operation" : "delete";
      if (retry_) ex.audit->operation = "$retry";
    }
  }

  store::WritePlan plan(RestJob&) override {
    return [this](store::WriteTxn& txn) -> Status {
      auto done = txn.act_on_delivery(id_, retry_);
      if (!done) return done.error();
      result_ = *done;
      return Ok{};
    };
  }

  HttpResponse respond(RestJob&) override {
    HttpResponse r;
    r.status = 200;
    r.body = R"({"id":)" + std::to_string(result_.id) + R"(,"status":")" + result_.status + R"("})";
    r.set_header("Content-Type", "application/json");
    return r;
  }

 private:
  std::string id_text_;
  bool retry_;
  std::int64_t id_ = 0;
  store::Delivery result_;
};

}  // namespace

std::unique_ptr<Interaction> make_capabilities() {
  return std::make_unique<Capabilities>();
}
std::unique_ptr<Interaction> make_health(bool ready) {
  return std::make_unique<Health>(ready);
}
std::unique_ptr<Interaction> make_dashboard(std::string file) {
  return std::make_unique<Dashboard>(std::move(file));
}
std::unique_ptr<Interaction> make_redirect(std::string location) {
  return std::make_unique<Redirect>(std::move(location));
}
std::unique_ptr<Interaction> make_metrics() {
  return std::make_unique<MetricsText>();
}
std::unique_ptr<Interaction> make_deliveries() {
  return std::make_unique<Deliveries>();
}
std::unique_ptr<Interaction> make_delivery_action(std::string id, bool retry) {
  return std::make_unique<DeliveryAction>(std::move(id), retry);
}

}  // namespace fhirgate::gateway::rest
