// POST /$ingest: a partner's HL7 v2 message, CSV file or XML document over HTTP, taken as its other doors
// take them.
//
// An HL7 v2 message (x-application/hl7-v2+er7) goes through the HL7 v2 stages (inbound/v2_job.hpp) as one
// exchange: its AuditEvent and journal entry are the message's (channel hl7v2, operation $ingest). The
// answer is a transaction-response Bundle with an entry per resource written (a re-send answers with what
// it wrote the first time; a held message with one 202 entry naming nothing), or an OperationOutcome:
// 400 when rejected, 422 when it could not be processed, the storage error when it could not be stored.
//
// A CSV file or XML document is the calling partner's feed (?feed= names it when the partner has several
// of that format; with security off, ?partner= names the partner), ingested row by row in the background
// (feed_ingest.hpp), which journals the file and audits each chunk itself. The answer is a batch-response
// Bundle with one entry per data row, in file order: 201 created, 200 updated or unchanged, 202 held, 204
// skipped, 403/409/422 rejected and 503 not stored, each problem in entry.response.outcome naming the row
// and line. A file that cannot be taken as a whole (header, columns, malformed XML) gets 400.
#include <algorithm>
#include <map>
#include <sstream>

#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

std::string media_type(const HttpRequest& request) {
  std::string_view content_type = request.header("Content-Type");
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  return std::string(content_type);
}

bool is_v2(const std::string& type) {
  return type == "x-application/hl7-v2+er7" || type == "application/hl7-v2" ||
         type == "application/hl7-v2+er7";
}

class IngestV2 final : public Interaction {
 public:
  bool has_work(const RestJob&) const override { return true; }

  void work(RestJob& job) override {
    auto& ex = job.ex;
    const inbound::V2Service& service = *job.services.v2;
    v2_.text = job.request.body;
    v2_.source.channel = "http";
    v2_.source.client_address = job.request.remote_address;
    if (const PartnerConfig* who = ex.caller.partner) {
      // The partner is the token's, whatever MSH-4 says; it must be one that sends HL7 v2.
      const bool sends_v2 = std::any_of(who->inbound.begin(), who->inbound.end(),
                                        [](const std::string& f) { return f.rfind("hl7v2", 0) == 0; });
      if (!sends_v2)
        return ex.fail(Error::make(
            ErrorCode::forbidden, "The sharing agreement does not let " + who->id + " send HL7 v2 messages"));
      v2_.source.partner = who->id;
      v2_.source.purpose = ex.caller.purpose;
    }
    // The message is the exchange: its own AuditEvent and journal entry replace the request's.
    ex.audit.reset();
    ex.journal.reset();
    ex.caller = {};
    received_ = true;
    inbound::v2_receive(service, ex, v2_);
    if (!ex.failed() && inbound::v2_wants_mapping(v2_)) inbound::v2_map(service, ex, v2_);
  }

  store::WritePlan plan(RestJob& job) override {
    return received_ ? inbound::v2_plan(*job.services.v2, job.ex, v2_) : nullptr;
  }
  bool plans_on_failure() const override { return true; }

  HttpResponse respond(RestJob& job) override {
    inbound::v2_settle(job.ex, v2_);
    const auto& o = v2_.outcome;
    Node entries = Node::array();
    if (o.status == inbound::V2Status::held) {
      Node response = Node::object();
      response.set("status", Node::string("202 Accepted"));
      response.set("outcome",
                   fhir::informational_outcome(
                       "The message was accepted for review: a registrar of the partnership will apply "
                       "or reject it"));
      Node entry = Node::object();
      entry.set("response", std::move(response));
      entries.push(std::move(entry));
    }
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
    return job.json_response(200, fhir::write_json(bundle));
  }

  void on_failure(RestJob& job, HttpResponse& r) override {
    if (!received_) return;
    // The OperationOutcome locates the problem by its HL7 v2 location.
    inbound::v2_settle(job.ex, v2_);
    Error error = *job.ex.error;
    for (auto& issue : error.issues)
      if (issue.expression.empty() && !v2_.outcome.error_location.empty())
        issue.expression = v2_.outcome.error_location;
    const auto cause = r.cause;
    r = job.fail_response(error);
    r.cause = cause;
  }

 private:
  inbound::V2Exchange v2_;
  bool received_ = false;
};

class IngestFeed final : public Interaction {
 public:
  explicit IngestFeed(mappers::FeedMapping::Format format) : format_(format) {}
  bool background() const override { return true; }

  void work(RestJob& job) override {
    auto& ex = job.ex;
    const FeedService& feeds = *job.services.feeds;
    const std::string* feed_id = param_value(job.query, "feed");
    const std::string* partner_param = param_value(job.query, "partner");
    const std::string partner = ex.caller.partner ? ex.caller.partner->id
                                : partner_param   ? *partner_param
                                                  : std::string();
    const char* format_name = format_ == mappers::FeedMapping::Format::csv ? "csv" : "xml";
    if (const PartnerConfig* who = ex.caller.partner;
        who && std::find(who->inbound.begin(), who->inbound.end(), format_name) == who->inbound.end())
      return ex.fail(Error::make(ErrorCode::forbidden, "The sharing agreement does not let " + who->id +
                                                           " send " + format_name + " feeds"));
    if (partner.empty())
      return ex.fail(Error::make(ErrorCode::invalid_input, "name the sending partner: ?partner=", "partner"));
    const PartnerFeed* feed = find_feed(feeds.feeds, partner, feed_id ? *feed_id : "", format_);
    if (!feed)
      return ex.fail(
          Error::make(ErrorCode::invalid_input,
                      "partner '" + partner + "' has no " + format_name + " feed" +
                          (feed_id ? " '" + *feed_id + "'" : " (or several: name one with ?feed=)"),
                      "feed"));
    FeedOrigin origin;
    if (format_ == mappers::FeedMapping::Format::csv) {
      // Content-Type: text/csv; charset=... overrides the mapping's encoding.
      std::string type(job.request.header("Content-Type"));
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
          return ex.fail(
              Error::make(ErrorCode::unsupported_media_type,
                          "charset '" + charset + "' is not supported: use utf-8 or windows-1252"));
        }
      }
    }
    origin.partner = feed->partner;
    origin.partner_name = feed->partner_name;
    origin.client_address = job.request.remote_address;
    origin.purpose = ex.caller.purpose;
    origin.correlation_id = ex.correlation_id;
    origin.size = static_cast<std::int64_t>(job.request.body.size());
    origin.payload = std::string_view(job.request.body);
    // The feed journals the file and audits each chunk itself.
    ex.audit.reset();
    ex.journal.reset();
    auto sink = [this](const FeedRowResult& row) {
      static const std::map<std::string, std::string, std::less<>> statuses = {
          {"created", "201 Created"},
          {"updated", "200 OK"},
          {"unchanged", "200 OK"},
          {"held", "202 Accepted"},
          {"skipped", "204 No Content"},
          {"rejected", "422 Unprocessable Entity"},
          {"not-stored", "503 Service Unavailable"}};
      static const std::map<int, std::string> rejected = {{403, "403 Forbidden"},
                                                          {404, "404 Not Found"},
                                                          {409, "409 Conflict"},
                                                          {412, "412 Precondition Failed"}};
      Node response = Node::object();
      std::string status = statuses.at(row.status);
      if (row.status == "rejected" && rejected.contains(row.http_status))
        status = rejected.at(row.http_status);
      response.set("status", Node::string(status));
      if (!row.resource.empty()) response.set("location", Node::string(row.resource));
      if (!row.reason.empty() || row.status == "unchanged") {
        Error note = Error::make(ErrorCode::invalid_input,
                                 "row " + std::to_string(row.row) + " (line " + std::to_string(row.line) +
                                     "): " + (row.reason.empty() ? row.status : row.reason));
        auto& issue = note.issues.front();
        issue.line = static_cast<int>(row.line);
        if (row.status == "unchanged" || row.status == "skipped" || row.status == "held") {
          issue.severity = "information";
          issue.code = "informational";
        }
        response.set("outcome", fhir::operation_outcome(note));
      }
      Node entry = Node::object();
      entry.set("response", std::move(response));
      if (!entries_.empty()) entries_ += ',';
      entries_ += fhir::write_json(entry);  // as text: a Node tree of 100,000 rows would cost ~400 MB
    };
    if (format_ == mappers::FeedMapping::Format::csv) {
      std::istringstream in(job.request.body);
      summary_ = ingest_csv(feeds.context, *feed, origin, in, sink);
    } else {
      summary_ = ingest_xml(feeds.context, *feed, origin, job.request.body, sink);
    }
    if (summary_.failure && !summary_.storage_failed) ex.fail(*summary_.failure);
  }

  HttpResponse respond(RestJob& job) override {
    std::string bundle = R"({"resourceType":"Bundle","type":"batch-response")";
    if (!entries_.empty()) bundle += R"(,"entry":[)" + std::move(entries_) + "]";
    bundle += "}";
    HttpResponse response = job.json_response(summary_.storage_failed ? 503 : 200, std::move(bundle));
    std::string counts;
    for (const auto& [status, n] : summary_.by_status)
      counts += (counts.empty() ? "" : ", ") + status + "=" + std::to_string(n);
    response.headers.emplace_back(
        "X-Ingest-Summary", "rows=" + std::to_string(summary_.rows) + (counts.empty() ? "" : ", " + counts));
    return response;
  }

 private:
  mappers::FeedMapping::Format format_;
  std::string entries_;
  FeedSummary summary_;
};

// $ingest with a body it cannot take: refused on the worker, as its body's media type says.
class Refused final : public Interaction {
 public:
  explicit Refused(Error error) : error_(std::move(error)) {}
  bool has_work(const RestJob&) const override { return true; }
  void work(RestJob& job) override { job.ex.fail(error_); }
  HttpResponse respond(RestJob& job) override { return job.fail_response(error_); }

 private:
  Error error_;
};

}  // namespace

std::unique_ptr<Interaction> make_ingest(const RestJob& job) {
  const std::string type = media_type(job.request);
  const auto& services = job.services;
  if (type == "text/csv" && services.feeds)
    return std::make_unique<IngestFeed>(mappers::FeedMapping::Format::csv);
  if ((type == "application/xml" || type == "text/xml") && services.feeds)
    return std::make_unique<IngestFeed>(mappers::FeedMapping::Format::xml);
  if (is_v2(type) && services.v2) {
    if (job.request.body.empty())
      return std::make_unique<Refused>(
          Error::make(ErrorCode::invalid_input, "$ingest needs a message in the body"));
    return std::make_unique<IngestV2>();
  }
  return std::make_unique<Refused>(Error::make(
      ErrorCode::unsupported_media_type,
      "$ingest takes an HL7 v2 message (x-application/hl7-v2+er7), a CSV file (text/csv) or an XML "
      "document (application/xml)"));
}

}  // namespace fhirgate::gateway::rest
