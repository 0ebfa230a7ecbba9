// The operators' message journal over REST (docs/operators.md): GET /_ops/journal, GET /_ops/journal/{id},
// POST /_ops/journal/{id}/$retry, DELETE /_ops/journal/{id} and GET /_ops/stats. Operator credential when
// security is on; plain JSON.
//
// What operators see: lists and stats name what went wrong and where (the field), never a value a partner
// sent; an entry's own view shows its payload and the whole error, and is audited against the patients the
// entry was about, as a read by the operator.
//
// Retrying an entry: an outbound one retries its delivery. An inbound HL7 v2 message or feed file that
// was rejected or failed is processed again from its kept payload, as from the same partner and over the
// same path (the HL7 v2 stages; ingest_csv/xml), which writes a new entry naming the first (retryOf); its
// AuditEvents name the operator as the one who acted. A REST request or FHIR message is its sender's to
// send again: 409.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

// An entry as lists show it; `whole` adds the entry's own view: the full error and its patients.
Node journal_json(const store::JournalEntry& e, bool whole = false) {
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
  out.set("status", Node::string(std::string(store::to_string(e.status))));
  auto stages = fhir::parse_json(e.stages);
  out.set("stages", stages ? std::move(*stages) : Node::array());
  out.set("error", Node::string(e.error));
  if (whole) {
    out.set("detail", Node::string(e.detail));
    auto patients = fhir::parse_json(e.patients);
    out.set("patients", patients ? std::move(*patients) : Node::array());
  }
  auto resources = fhir::parse_json(e.resources);
  out.set("resources", resources ? std::move(*resources) : Node::array());
  if (e.delivery_id) out.set("deliveryId", Node::number(std::to_string(e.delivery_id)));
  if (e.retry_of) out.set("retryOf", Node::number(std::to_string(e.retry_of)));
  out.set("hasPayload", Node::boolean(e.has_payload));
  out.set("updated", Node::string(fhir::format_instant(e.updated_ms)));
  return out;
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

bool operators_only(RestJob& job) {
  const PartnerConfig* who = job.ex.caller.partner;
  if (!who || who->role == "operator") return true;
  job.ex.fail(Error::make(ErrorCode::forbidden, "Operators only"));
  return false;
}

class Journal final : public Interaction {
 public:
  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!operators_only(job)) return;
    if (ex.audit) ex.audit->interaction = "search-type";
    for (const auto& param : job.query) {
      const std::string& key = param.first;
      const std::string& value = param.second;
      auto bad = [&](const std::string& why) {
        ex.fail(Error::make(ErrorCode::invalid_input, key + ": " + why, key));
      };
      if (key == "partner") {
        q_.partner = value;
      } else if (key == "direction") {
        if (value != "in" && value != "out") return bad("in or out");
        q_.direction = value;
      } else if (key == "status") {
        q_.status = store::parse_journal_status(value);
        if (!q_.status) return bad("a journal status (stored, routed, held, rejected, failed, ...)");
      } else if (key == "type") {
        q_.type = value;
      } else if (key == "correlation") {
        q_.correlation = value;
      } else if (key == "since" || key == "until") {
        const auto range = fhir::parse_time_range(value);
        if (!range) return bad("a FHIR date or instant");
        (key == "since" ? q_.since_ms : q_.until_ms) = key == "since" ? range->low : range->high;
      } else if (key == "after" || key == "before" || key == "_count") {
        const auto n = positive(value);
        if (!n || (key == "_count" && *n == 0)) return bad("a positive integer");
        if (key == "after") q_.after_id = *n;
        if (key == "before") q_.before_id = *n;
        if (key == "_count") q_.count = static_cast<int>(std::min<std::int64_t>(*n, 1000));
      } else {
        return ex.fail(Error::make(ErrorCode::invalid_input, "Unknown parameter '" + key + "'", key));
      }
    }
    auto rows = job.services.store.journal(q_);
    if (!rows) return ex.fail(rows.error());
    rows_ = std::move(*rows);
  }

  HttpResponse respond(RestJob& job) override {
    Node list = Node::array();
    for (const auto& e : rows_) list.push(journal_json(e));
    Node out = Node::object();
    out.set("entries", std::move(list));
    if (static_cast<int>(rows_.size()) == q_.count && !rows_.empty()) {
      std::string next = job.base_url + "/_ops/journal?before=" + std::to_string(rows_.back().id);
      for (const auto& [key, value] : job.query)
        if (key != "before") next += "&" + key + "=" + fhir::url_encode(value);
      out.set("next", Node::string(next));
    }
    return job.plain_json(200, out);
  }

 private:
  store::JournalQuery q_;
  std::vector<store::JournalEntry> rows_;
};

// One entry with its payload: audited against its patients, as the operator's read.
class JournalEntryView final : public Interaction {
 public:
  explicit JournalEntryView(std::string id) : id_text_(std::move(id)) {}

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!operators_only(job)) return;
    if (ex.audit) ex.audit->interaction = "read";
    const auto id = positive(id_text_);
    auto entry =
        id ? job.services.store.journal_entry(*id) : Result<std::optional<store::JournalEntry>>(std::nullopt);
    if (!entry) return ex.fail(entry.error());
    if (!*entry) return ex.fail(Error::make(ErrorCode::not_found, "No journal entry " + id_text_));
    const auto& e = **entry;
    out_ = journal_json(e, true);
    // The payload: as kept, or for an outbound entry what its delivery sent.
    if (e.has_payload) {
      out_.set("payload", Node::string(e.payload));
    } else if (e.delivery_id) {
      store::DeliveryQuery dq;
      dq.before_id = e.delivery_id + 1;
      dq.count = 1;
      auto found = job.services.store.deliveries(dq);
      if (found && !found->empty() && found->front().id == e.delivery_id) {
        const auto& d = found->front();
        if (!d.payload.empty()) {
          out_.set("payload", Node::string(d.payload));
        } else if (auto v = job.services.store.vread(d.type, d.resource_id, d.version);
                   v && *v && !(*v)->deleted) {
          out_.set("payload", Node::string((*v)->body));
        }
        if (!d.patient.empty()) patient(ex, d.patient);
      }
    }
    if (auto patients = fhir::parse_json(e.patients); patients && patients->is_array())
      for (const auto& p : patients->items()) patient(ex, p.text());
    Node audits = Node::array();
    if (auto rows = job.services.store.audits_with_correlation(e.correlation_id, e.received_ms - 60000, 50))
      for (const auto& row : *rows)
        if (auto text = render_audit_event(row))
          if (auto event = fhir::parse_json(*text)) audits.push(std::move(*event));
    out_.set("auditEvents", std::move(audits));
  }

  HttpResponse respond(RestJob& job) override { return job.plain_json(200, out_); }

 private:
  // Names a patient of the entry in the operator's AuditEvent.
  static void patient(pipeline::Exchange& ex, const std::string& p) {
    if (!ex.audit || p.empty()) return;
    if (ex.audit->patient_reference.empty()) {
      ex.audit->patient_reference = p;
    } else if (p != ex.audit->patient_reference &&
               std::find(ex.seen_patients.begin(), ex.seen_patients.end(), p) == ex.seen_patients.end()) {
      ex.seen_patients.push_back(p);
    }
  }

  std::string id_text_;
  Node out_;
};

class JournalAction final : public Interaction {
 public:
  JournalAction(std::string id, bool retry) : id_text_(std::move(id)), retry_(retry) {}

  bool has_work(const RestJob&) const override { return mode_ == Mode::v2; }
  bool background() const override { return mode_ == Mode::feed; }

  // What the action is, from the entry it acts on (on the io thread, before the work stages).
  void begin(RestJob& job) override {
    auto& ex = job.ex;
    if (!operators_only(job)) return;
    if (ex.audit) {
      ex.audit->interaction = retry_ ? "operation" : "delete";
      if (retry_) ex.audit->operation = "$retry";
    }
    const auto id = positive(id_text_);
    auto found =
        id ? job.services.store.journal_entry(*id) : Result<std::optional<store::JournalEntry>>(std::nullopt);
    if (!found) return ex.fail(found.error());
    if (!*found) return ex.fail(Error::make(ErrorCode::not_found, "No journal entry " + id_text_));
    entry_ = std::move(**found);
    auto conflict = [&](const std::string& why) {
      ex.fail(Error::make(ErrorCode::conflict, "Journal entry " + id_text_ + " " + why));
    };
    using store::JournalStatus;
    if (entry_.direction == "out") {
      if (!entry_.delivery_id) return conflict("has no delivery");
      mode_ = Mode::delivery;
      return;
    }
    if (entry_.status != JournalStatus::rejected && entry_.status != JournalStatus::failed)
      return conflict("is " + std::string(store::to_string(entry_.status)) +
                      ": only a rejected or failed message can be " + (retry_ ? "retried" : "discarded"));
    if (!retry_) {
      mode_ = Mode::discard;
      return;
    }
    if (!entry_.has_payload) return conflict("has no payload kept to retry");
    correlation_ = new_resource_id();
    if (entry_.format == "hl7v2" && job.services.v2) {
      mode_ = Mode::v2;
      return;
    }
    if ((entry_.format == "csv" || entry_.format == "xml") && job.services.feeds &&
        entry_.type.starts_with("feed ")) {
      const auto format =
          entry_.format == "csv" ? mappers::FeedMapping::Format::csv : mappers::FeedMapping::Format::xml;
      feed_ = find_feed(job.services.feeds->feeds, entry_.partner, entry_.type.substr(5), format);
      if (!feed_) return conflict("names a feed that is no longer configured");
      mode_ = Mode::feed;
      return;
    }
    conflict("is a " + entry_.format + " request: its sender sends it again");
  }

  void work(RestJob& job) override {
    auto& ex = job.ex;
    const PartnerConfig* operator_role = ex.caller.partner;
    if (mode_ == Mode::v2) {
      // The kept message, as from its partner over its path; the operator is the one who acted.
      v2_.text = entry_.payload;
      v2_.source.channel = entry_.transport;
      v2_.source.partner = entry_.partner;
      v2_.source.retry_of = entry_.id;
      ex.correlation_id = correlation_;
      ex.audit.reset();
      ex.journal.reset();
      ex.caller = {};
      inbound::v2_receive(*job.services.v2, ex, v2_);
      if (ex.audit && operator_role) {
        ex.audit->client_id = operator_role->id;
        ex.audit->client_reference.clear();
        ex.audit->client_display = operator_role->name;
        ex.audit->operation = "$retry";
      }
      if (!ex.failed() && inbound::v2_wants_mapping(v2_)) inbound::v2_map(*job.services.v2, ex, v2_);
      received_ = true;
      return;
    }
    // A feed file, in the background: it journals and audits itself, naming the operator.
    FeedOrigin origin;
    origin.partner = feed_->partner;
    origin.partner_name = feed_->partner_name;
    origin.actor = operator_role;
    origin.channel = entry_.transport == "http" ? "rest" : "file";
    origin.correlation_id = correlation_;
    origin.retry_of = entry_.id;
    origin.size = static_cast<std::int64_t>(entry_.payload.size());
    origin.payload = std::string_view(entry_.payload);
    auto ignore = [](const FeedRowResult&) {};
    const auto format =
        entry_.format == "csv" ? mappers::FeedMapping::Format::csv : mappers::FeedMapping::Format::xml;
    if (format == mappers::FeedMapping::Format::csv) {
      std::istringstream in(entry_.payload);
      (void)ingest_csv(job.services.feeds->context, *feed_, origin, in, ignore);
    } else {
      (void)ingest_xml(job.services.feeds->context, *feed_, origin, entry_.payload, ignore);
    }
  }

  store::WritePlan plan(RestJob& job) override {
    switch (mode_) {
      case Mode::delivery:
        return [delivery = entry_.delivery_id, retry = retry_](store::WriteTxn& txn) -> Status {
          auto done = txn.act_on_delivery(delivery, retry);
          return done ? Status(Ok{}) : Status(done.error());
        };
      case Mode::discard:
        return [id = entry_.id, received = entry_.received_ms,
                error = entry_.error](store::WriteTxn& txn) -> Status {
          txn.advance_journal(id, store::JournalStatus::discarded, error,
                              static_cast<double>(txn.now_ms() - received));
          return Ok{};
        };
      case Mode::v2:
        return received_ ? inbound::v2_plan(*job.services.v2, job.ex, v2_) : nullptr;
      default:
        return nullptr;
    }
  }
  bool plans_on_failure() const override { return mode_ == Mode::v2; }

  HttpResponse respond(RestJob& job) override {
    std::optional<store::JournalEntry> now;
    if (mode_ == Mode::v2 || mode_ == Mode::feed) {  // the retry's new entry
      store::JournalQuery q;
      q.correlation = correlation_;
      q.count = 1;
      if (auto rows = job.services.store.journal(q); rows && !rows->empty()) now = rows->front();
    } else if (auto row = job.services.store.journal_entry(entry_.id); row && *row) {
      now = **row;
    }
    if (!now) return job.fail_response(Error::make(ErrorCode::internal, "the journal entry cannot be read"));
    return job.plain_json(200, journal_json(*now));
  }

  void on_failure(RestJob& job, HttpResponse& r) override {
    // A retried message that failed again still answers with its new entry: the retry itself worked.
    if (mode_ != Mode::v2 || !received_ || !job.ex.committed) return;
    r = respond(job);
  }

 private:
  enum class Mode : std::uint8_t { none, delivery, discard, v2, feed };
  std::string id_text_;
  bool retry_;
  Mode mode_ = Mode::none;
  store::JournalEntry entry_;
  std::string correlation_;
  const PartnerFeed* feed_ = nullptr;
  inbound::V2Exchange v2_;
  bool received_ = false;
};

// GET /_ops/stats: journal counts per partner and direction over a window, the statuses, the latest
// problems (their value-free errors) and the queues.
class Stats final : public Interaction {
 public:
  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    if (!operators_only(job)) return;
    if (ex.audit) ex.audit->interaction = "search-type";
    window_s_ = 3600;
    std::int64_t bucket_s = 60;
    for (const auto& [key, value] : job.query) {
      const auto n = positive(value);
      if ((key != "window" && key != "bucket") || !n || *n == 0)
        return ex.fail(Error::make(ErrorCode::invalid_input,
                                   key == "window" || key == "bucket"
                                       ? key + " must be a positive number of seconds"
                                       : "Unknown parameter '" + key + "'",
                                   key));
      (key == "window" ? window_s_ : bucket_s) = *n;
    }
    window_s_ = std::min<std::int64_t>(window_s_, 7 * 86400);
    bucket_s_ = std::clamp<std::int64_t>(bucket_s, 1, window_s_);
    const int buckets = static_cast<int>((window_s_ + bucket_s_ - 1) / bucket_s_);
    // Buckets end with the current one: the last starts at the latest multiple of the bucket size.
    const std::int64_t bucket_ms = bucket_s_ * 1000;
    from_ms_ = (ex.received_ms / bucket_ms - (buckets - 1)) * bucket_ms;
    auto counts = job.services.store.journal_counts(from_ms_, bucket_ms, buckets);
    store::JournalQuery problems;
    problems.problems = true;
    problems.count = 10;
    auto latest = job.services.store.journal(problems);
    auto queues = job.services.store.queues();
    if (!counts || !latest || !queues)
      return ex.fail(!counts ? counts.error() : !latest ? latest.error() : queues.error());
    counts_ = std::move(*counts);
    latest_ = std::move(*latest);
    queues_ = std::move(*queues);
  }

  HttpResponse respond(RestJob& job) override {
    const std::int64_t now = job.ex.received_ms;
    auto numbers = [](const std::vector<std::int64_t>& v) {
      Node a = Node::array();
      for (auto n : v) a.push(Node::number(std::to_string(n)));
      return a;
    };
    Node out = Node::object();
    out.set("now", Node::string(fhir::format_instant(now)));
    out.set("from", Node::string(fhir::format_instant(from_ms_)));
    out.set("windowSeconds", Node::number(std::to_string(window_s_)));
    out.set("bucketSeconds", Node::number(std::to_string(bucket_s_)));
    Node& partners = out.set("partners", Node::array());
    for (const auto& s : counts_.partners) {
      Node p = Node::object();
      p.set("partner", Node::string(s.partner));
      p.set("in", numbers(s.in));
      p.set("out", numbers(s.out));
      partners.push(std::move(p));
    }
    Node& by_status = out.set("byStatus", Node::object());
    for (const auto& [status, n] : counts_.by_status) by_status.set(status, Node::number(std::to_string(n)));
    Node& errors = out.set("latestErrors", Node::array());
    for (const auto& e : latest_) errors.push(journal_json(e));
    Node& queue_list = out.set("queues", Node::array());
    std::vector<store::Store::Queue> all = queues_;  // with the destinations that have nothing waiting
    for (const auto& destination : job.services.options.destinations)
      if (std::none_of(all.begin(), all.end(), [&](const auto& q) { return q.destination == destination; }))
        all.push_back({destination, 0, now});
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a.destination < b.destination; });
    for (const auto& q : all) {
      Node row = Node::object();
      row.set("destination", Node::string(q.destination));
      row.set("depth", Node::number(std::to_string(q.depth)));
      char age[32];
      std::snprintf(age, sizeof age, "%.1f",
                    static_cast<double>(std::max<std::int64_t>(0, now - q.oldest_ms)) / 1000.0);
      row.set("oldestAgeSeconds", Node::number(age));
      queue_list.push(std::move(row));
    }
    return job.plain_json(200, out);
  }

 private:
  std::int64_t window_s_ = 3600, bucket_s_ = 60, from_ms_ = 0;
  store::JournalCounts counts_;
  std::vector<store::JournalEntry> latest_;
  std::vector<store::Store::Queue> queues_;
};

}  // namespace

std::unique_ptr<Interaction> make_journal() {
  return std::make_unique<Journal>();
}
std::unique_ptr<Interaction> make_journal_entry(std::string id) {
  return std::make_unique<JournalEntryView>(std::move(id));
}
std::unique_ptr<Interaction> make_journal_action(std::string id, bool retry) {
  return std::make_unique<JournalAction>(std::move(id), retry);
}
std::unique_ptr<Interaction> make_stats() {
  return std::make_unique<Stats>();
}

}  // namespace fhirgate::gateway::rest
