// The operators' message journal over REST (docs/operators.md): GET /_ops/journal, GET /_ops/journal/{id},
// POST /_ops/journal/{id}/$retry, DELETE /_ops/journal/{id} and GET /_ops/stats. Operator credential when
// security is on; plain JSON.
//
// Retrying an entry: an outbound one retries its delivery. An inbound HL7 v2 message or feed file that
// was rejected or failed is processed again from its kept payload, as from the same partner and over the
// same path (handle_v2, ingest_csv/xml), which writes a new entry naming the first (retryOf). A REST
// request or FHIR message is its sender's to send again: 409.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/search_query.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/exchange.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

Node journal_json(const store::JournalEntry& e) {
  Node out = Node::object();
  out.set("id", Node::number(std::to_string(e.id)));
  out.set("correlationId", Node::string(e.correlation_id));
  out.set("received", Node::string(fhir::format_instant(e.received_ms)));
  out.set("partner", Node::string(e.partner));
  out.set("direction", Node::string(e.direction));
  out.set("transport", Node::string(e.transport));
  out.set("format", Node::string(e.format));
  out.set("type", Node::string(e.type));
  out.set("size", Node::number(std::to_string(e.size)));
  out.set("status", Node::string(e.status));
  auto stages = fhir::parse_json(e.stages);
  out.set("stages", stages ? std::move(*stages) : Node::array());
  out.set("error", Node::string(e.error));
  auto resources = fhir::parse_json(e.resources);
  out.set("resources", resources ? std::move(*resources) : Node::array());
  if (e.delivery_id) out.set("deliveryId", Node::number(std::to_string(e.delivery_id)));
  if (e.retry_of) out.set("retryOf", Node::number(std::to_string(e.retry_of)));
  out.set("hasPayload", Node::boolean(e.has_payload));
  out.set("updated", Node::string(fhir::format_instant(e.updated_ms)));
  return out;
}

HttpResponse plain_json(int status, const Node& body) {
  HttpResponse r;
  r.status = status;
  r.body = fhir::write_json(body);
  r.set_header("Content-Type", "application/json");
  return r;
}

std::optional<std::int64_t> positive(const std::string& text) {
  try {
    std::size_t used = 0;
    const long long n = std::stoll(text, &used);
    if (used != text.size() || n < 0) return std::nullopt;
    return n;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

bool Api::operators_only(Exchange& ex, Reply& reply) const {
  if (!ex.who || ex.who->role == "operator") return true;
  reply.response = fail(ex, Error::make(ErrorCode::forbidden, "Operators only"));
  return false;
}

Reply Api::ops_journal(Exchange& ex) const {
  Reply reply;
  if (!operators_only(ex, reply)) return reply;
  if (ex.audit) ex.audit->interaction = "search-type";
  store::JournalQuery q;
  for (const auto& param : ex.query) {
    const std::string& key = param.first;  // named: clang 14 cannot capture structured bindings
    const std::string& value = param.second;
    auto bad = [&](const std::string& why) {
      reply.response = fail(ex, Error::make(ErrorCode::invalid_input, key + ": " + why, key));
      return reply;
    };
    if (key == "partner") {
      q.partner = value;
    } else if (key == "direction") {
      if (value != "in" && value != "out") return bad("in or out");
      q.direction = value;
    } else if (key == "status") {
      q.status = value;
    } else if (key == "type") {
      q.type = value;
    } else if (key == "correlation") {
      q.correlation = value;
    } else if (key == "since" || key == "until") {
      const auto range = fhir::parse_time_range(value);
      if (!range) return bad("a FHIR date or instant");
      (key == "since" ? q.since_ms : q.until_ms) = key == "since" ? range->low : range->high;
    } else if (key == "after" || key == "before" || key == "_count") {
      const auto n = positive(value);
      if (!n || (key == "_count" && *n == 0)) return bad("a positive integer");
      if (key == "after") q.after_id = *n;
      if (key == "before") q.before_id = *n;
      if (key == "_count") q.count = static_cast<int>(std::min<std::int64_t>(*n, 1000));
    } else {
      reply.response =
          fail(ex, Error::make(ErrorCode::invalid_input, "Unknown parameter '" + key + "'", key));
      return reply;
    }
  }
  auto rows = store_.journal(q);
  if (!rows) {
    reply.response = fail(ex, rows.error());
    return reply;
  }
  Node list = Node::array();
  for (const auto& e : *rows) list.push(journal_json(e));
  Node out = Node::object();
  out.set("entries", std::move(list));
  if (static_cast<int>(rows->size()) == q.count && !rows->empty()) {
    std::string next = ex.base_url + "/_ops/journal?before=" + std::to_string(rows->back().id);
    for (const auto& [key, value] : ex.query)
      if (key != "before") next += "&" + key + "=" + fhir::url_encode(value);
    out.set("next", Node::string(next));
  }
  reply.response = plain_json(200, out);
  return reply;
}

Reply Api::ops_journal_entry(Exchange& ex, const std::string& id_text) const {
  Reply reply;
  if (!operators_only(ex, reply)) return reply;
  if (ex.audit) ex.audit->interaction = "read";
  const auto id = positive(id_text);
  auto entry = id ? store_.journal_entry(*id) : Result<std::optional<store::JournalEntry>>(std::nullopt);
  if (!entry) {
    reply.response = fail(ex, entry.error());
    return reply;
  }
  if (!*entry) {
    reply.response = fail(ex, Error::make(ErrorCode::not_found, "No journal entry " + id_text));
    return reply;
  }
  const auto& e = **entry;
  Node out = journal_json(e);
  // The payload: as kept, or for an outbound entry what its delivery sent.
  if (e.has_payload) {
    out.set("payload", Node::string(e.payload));
  } else if (e.delivery_id) {
    store::DeliveryQuery dq;
    dq.before_id = e.delivery_id + 1;
    dq.count = 1;
    auto found = store_.deliveries(dq);
    if (found && !found->empty() && found->front().id == e.delivery_id) {
      const auto& d = found->front();
      if (!d.payload.empty()) {
        out.set("payload", Node::string(d.payload));
      } else if (auto v = store_.vread(d.type, d.resource_id, d.version); v && *v && !(*v)->deleted) {
        out.set("payload", Node::string((*v)->body));
      }
    }
  }
  Node audits = Node::array();
  if (auto rows = store_.audits_with_correlation(e.correlation_id, e.received_ms - 60000, 50))
    for (const auto& row : *rows)
      if (auto text = render_audit_event(row))
        if (auto event = fhir::parse_json(*text)) audits.push(std::move(*event));
  out.set("auditEvents", std::move(audits));
  reply.response = plain_json(200, out);
  return reply;
}

Reply Api::ops_journal_action(Exchange& ex, const std::string& id_text, bool retry) const {
  Reply reply;
  if (!operators_only(ex, reply)) return reply;
  if (ex.audit) {
    ex.audit->interaction = retry ? "operation" : "delete";
    if (retry) ex.audit->operation = "$retry";
  }
  const auto id = positive(id_text);
  auto found = id ? store_.journal_entry(*id) : Result<std::optional<store::JournalEntry>>(std::nullopt);
  if (!found || !*found) {
    reply.response =
        fail(ex, found ? Error::make(ErrorCode::not_found, "No journal entry " + id_text) : found.error());
    return reply;
  }
  const store::JournalEntry entry = std::move(**found);
  auto conflict = [&](const std::string& why) {
    reply.response = fail(ex, Error::make(ErrorCode::conflict, "Journal entry " + id_text + " " + why));
    return reply;
  };
  auto answer_with = [this, ex = Exchange(ex)](std::int64_t journal_id, const std::string& correlation) {
    return [this, ex, journal_id, correlation](const Status& s) {
      if (!s) return fail(ex, s.error());
      std::optional<store::JournalEntry> now;
      if (!correlation.empty()) {  // a retry's new entry
        store::JournalQuery q;
        q.correlation = correlation;
        q.count = 1;
        if (auto rows = store_.journal(q); rows && !rows->empty()) now = rows->front();
      } else if (auto row = store_.journal_entry(journal_id); row && *row) {
        now = **row;
      }
      if (!now) return fail(ex, Error::make(ErrorCode::internal, "the journal entry cannot be read"));
      return plain_json(200, journal_json(*now));
    };
  };

  if (entry.direction == "out") {
    if (!entry.delivery_id) return conflict("has no delivery");
    reply.plan = [delivery = entry.delivery_id, retry](store::WriteTxn& txn) -> Status {
      auto done = txn.act_on_delivery(delivery, retry);
      return done ? Status(Ok{}) : Status(done.error());
    };
    reply.after_commit = answer_with(entry.id, "");
    return reply;
  }
  if (entry.status != "rejected" && entry.status != "failed")
    return conflict("is " + entry.status + ": only a rejected or failed message can be " +
                    (retry ? "retried" : "discarded"));
  if (!retry) {
    reply.plan = [journal_id = entry.id, received = entry.received_ms,
                  error = entry.error](store::WriteTxn& txn) -> Status {
      txn.advance_journal(journal_id, "discarded", error, static_cast<double>(txn.now_ms() - received));
      return Ok{};
    };
    reply.after_commit = answer_with(entry.id, "");
    return reply;
  }
  if (!entry.has_payload) return conflict("has no payload kept to retry");
  const std::string correlation = new_resource_id();
  if (entry.format == "hl7v2" && v2_) {
    V2Source source{entry.transport, entry.partner, "", "", correlation, entry.id};
    V2Reply v2 = handle_v2(*v2_, entry.payload, source);
    reply.plan = std::move(v2.plan);
    reply.after_commit = answer_with(0, correlation);
    return reply;
  }
  if ((entry.format == "csv" || entry.format == "xml") && feeds_ && entry.type.starts_with("feed ")) {
    const auto format =
        entry.format == "csv" ? mappers::FeedMapping::Format::csv : mappers::FeedMapping::Format::xml;
    const PartnerFeed* feed = find_feed(feeds_->feeds, entry.partner, entry.type.substr(5), format);
    if (!feed) return conflict("names a feed that is no longer configured");
    reply.background = [this, feed, format, entry, correlation, answer = answer_with(0, correlation)]() {
      FeedOrigin origin;
      origin.partner = feed->partner;
      origin.partner_name = feed->partner_name;
      origin.channel = entry.transport == "http" ? "rest" : "file";
      origin.correlation_id = correlation;
      origin.retry_of = entry.id;
      origin.size = static_cast<std::int64_t>(entry.payload.size());
      origin.payload = std::string_view(entry.payload);
      auto ignore = [](const FeedRowResult&) {};
      if (format == mappers::FeedMapping::Format::csv) {
        std::istringstream in(entry.payload);
        (void)ingest_csv(feeds_->context, *feed, origin, in, ignore);
      } else {
        (void)ingest_xml(feeds_->context, *feed, origin, entry.payload, ignore);
      }
      return answer(Ok{});
    };
    return reply;
  }
  return conflict("is a " + entry.format + " request: its sender sends it again");
}

Reply Api::ops_stats(Exchange& ex) const {
  Reply reply;
  if (!operators_only(ex, reply)) return reply;
  if (ex.audit) ex.audit->interaction = "search-type";
  std::int64_t window_s = 3600, bucket_s = 60;
  for (const auto& [key, value] : ex.query) {
    const auto n = positive(value);
    if ((key != "window" && key != "bucket") || !n || *n == 0) {
      reply.response = fail(
          ex, Error::make(ErrorCode::invalid_input,
                          key == "window" || key == "bucket" ? key + " must be a positive number of seconds"
                                                             : "Unknown parameter '" + key + "'",
                          key));
      return reply;
    }
    (key == "window" ? window_s : bucket_s) = *n;
  }
  window_s = std::min<std::int64_t>(window_s, 7 * 86400);
  bucket_s = std::clamp<std::int64_t>(bucket_s, 1, window_s);
  const int buckets = static_cast<int>((window_s + bucket_s - 1) / bucket_s);
  // Buckets end with the current one: the last starts at the latest multiple of the bucket size.
  const std::int64_t bucket_ms = bucket_s * 1000;
  const std::int64_t from_ms = (ex.now / bucket_ms - (buckets - 1)) * bucket_ms;
  auto counts = store_.journal_counts(from_ms, bucket_ms, buckets);
  store::JournalQuery problems;
  problems.problems = true;
  problems.count = 10;
  auto latest = store_.journal(problems);
  auto queues = store_.queues();
  if (!counts || !latest || !queues) {
    reply.response = fail(ex, !counts ? counts.error() : !latest ? latest.error() : queues.error());
    return reply;
  }
  auto numbers = [](const std::vector<std::int64_t>& v) {
    Node a = Node::array();
    for (auto n : v) a.push(Node::number(std::to_string(n)));
    return a;
  };
  Node out = Node::object();
  out.set("now", Node::string(fhir::format_instant(ex.now)));
  out.set("from", Node::string(fhir::format_instant(from_ms)));
  out.set("windowSeconds", Node::number(std::to_string(window_s)));
  out.set("bucketSeconds", Node::number(std::to_string(bucket_s)));
  Node& partners = out.set("partners", Node::array());
  for (const auto& s : counts->partners) {
    Node p = Node::object();
    p.set("partner", Node::string(s.partner));
    p.set("in", numbers(s.in));
    p.set("out", numbers(s.out));
    partners.push(std::move(p));
  }
  Node& by_status = out.set("byStatus", Node::object());
  for (const auto& [status, n] : counts->by_status) by_status.set(status, Node::number(std::to_string(n)));
  Node& errors = out.set("latestErrors", Node::array());
  for (const auto& e : *latest) errors.push(journal_json(e));
  Node& queue_list = out.set("queues", Node::array());
  std::vector<store::Store::Queue> all = *queues;  // with the destinations that have nothing waiting
  for (const auto& destination : options_.destinations)
    if (std::none_of(all.begin(), all.end(), [&](const auto& q) { return q.destination == destination; }))
      all.push_back({destination, 0, ex.now});
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.destination < b.destination; });
  for (const auto& q : all) {
    Node row = Node::object();
    row.set("destination", Node::string(q.destination));
    row.set("depth", Node::number(std::to_string(q.depth)));
    char age[32];
    std::snprintf(age, sizeof age, "%.1f",
                  static_cast<double>(std::max<std::int64_t>(0, ex.now - q.oldest_ms)) / 1000.0);
    row.set("oldestAgeSeconds", Node::number(age));
    queue_list.push(std::move(row));
  }
  reply.response = plain_json(200, out);
  return reply;
}

}  // namespace fhirgate::gateway::rest
