#include "gateway/inbound/feed_ingest.hpp"

#include <chrono>
#include <future>
#include <set>
#include <utility>

#include "fhir/json.hpp"
#include "fhir/storable.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/pipeline/record.hpp"
#include "gateway/security/agreement.hpp"
#include "gateway/stages/identity.hpp"
#include "gateway/store/store.hpp"
#include "mappers/csv.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;
using mappers::MappedRecord;

// A row on its way to the store: its result (filled when it is written) and, for mapped rows, what
// to write.
struct PendingRow {
  FeedRowResult result;
  bool write = false;
  Node resource;
  std::vector<mappers::FeedLookup> lookups;
};

std::string first_errors(const fhir::ValidationResult& v) {
  std::string out;
  int n = 0;
  for (const auto& issue : v.issues) {
    if (issue.severity != "error" && issue.severity != "fatal") continue;
    if (n++ == 3) {
      out += "; ...";
      break;
    }
    if (!out.empty()) out += "; ";
    out += issue.diagnostics;
    if (!issue.expression.empty()) out += " (at " + issue.expression + ")";
  }
  return out;
}

// The mapped resource, validated (and checked storable); fills `row` as rejected/skipped when it cannot
// be written.
void prepare(const FeedContext& context, const PartnerFeed& feed, MappedRecord mapped, PendingRow& row) {
  if (mapped.kind == MappedRecord::Kind::skipped) {
    row.result.status = "skipped";
    row.result.reason = std::move(mapped.reason);
    return;
  }
  if (mapped.kind == MappedRecord::Kind::rejected) {
    row.result.status = "rejected";
    row.result.reason = std::move(mapped.reason);
    return;
  }
  fhir::ValidationOptions options;
  options.stop_at_first_error = false;
  options.deadline = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(context.config.server.validation_budget_ms);
  if (const auto it = context.profiles.find(feed.mapping->resource_type); it != context.profiles.end())
    options.profiles = it->second;
  const auto validation = context.validator.validate(mapped.resource, options);
  if (validation.has_errors()) {
    if (context.observers) context.observers->on_invalid(feed.mapping->resource_type);
    row.result.status = "rejected";
    row.result.reason = "not a valid " + feed.mapping->resource_type + ": " + first_errors(validation);
    return;
  }
  if (Status storable = fhir::check_storable(context.model, mapped.resource); !storable) {
    row.result.status = "rejected";
    const auto& issue = storable.error().issues.front();
    row.result.reason =
        issue.diagnostics + (issue.expression.empty() ? "" : " (at " + issue.expression + ")");
    return;
  }
  row.write = true;
  row.resource = std::move(mapped.resource);
  row.lookups = std::move(mapped.lookups);
}

std::string version_ref(const store::VersionRecord& rec) {
  return rec.type + "/" + rec.id + "/_history/" + std::to_string(rec.version);
}

// The AuditEvent input of a file's writes, as `origin` sent them.
AuditInput feed_audit(const FeedOrigin& origin, std::int64_t now_ms) {
  AuditInput in;
  in.correlation_id = origin.correlation_id;
  in.channel = origin.channel == "rest" ? "rest" : "file";
  in.interaction = "operation";
  in.operation = "$ingest";
  in.recorded_ms = now_ms;
  in.client_id = origin.partner;
  in.client_reference = "Organization/" + origin.partner;
  in.client_display = origin.partner_name;
  if (origin.actor) {
    in.client_id = origin.actor->id;
    in.client_reference =
        agent_reference(*origin.actor) == origin.actor->id ? std::string() : agent_reference(*origin.actor);
    in.client_display = origin.actor->name;
  }
  in.client_address = origin.client_address;
  in.purpose = origin.purpose.empty() ? "TREAT" : origin.purpose;
  return in;
}

// Writes one row inside the chunk's transaction: the lookups, then the one write (stages::plan_write).
// A row refused here has written nothing (plan_write decides before its write; the caller's savepoint
// undoes a failure). A row refused by the gate or held records an AuditEvent of its own.
Status write_row(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                 const Caller& caller, store::WriteTxn& txn, PendingRow& row, std::set<std::string>& patients,
                 std::optional<pipeline::Exchange>& refusal) {
  const std::string& type = feed.mapping->resource_type;
  for (const auto& lookup : row.lookups) {
    Node id = Node::object();
    id.set("system", Node::string(lookup.system));
    id.set("value", Node::string(lookup.value));
    const auto found =
        stages::find_by_identity(txn, stages::identity_queries(context.registry, "Patient", {id}));
    if (found.size() != 1) {
      return Error::make(ErrorCode::unprocessable,
                         found.empty()
                             ? "no Patient with identifier " + lookup.system + "|" + lookup.value +
                                   " is held (" + lookup.path + ")"
                             : "more than one Patient has identifier " + lookup.system + "|" + lookup.value);
    }
    mappers::set_at(row.resource, lookup.steps, Node::string("Patient/" + found.front()));
  }
  const auto queries = stages::identity_queries(context.registry, type, stages::identifiers_of(row.resource));
  if (queries.empty())
    return Error::make(ErrorCode::unprocessable,
                       "the row gives the " + type + " no identifier to match it by");
  pipeline::Exchange ex;
  ex.correlation_id = origin.correlation_id;
  ex.caller = caller;
  ex.origin = origin.partner;
  if (context.secure) ex.audit = feed_audit(origin, txn.now_ms());
  stages::WriteRequest w;
  w.kind = stages::WriteRequest::Kind::upsert;
  w.type = type;
  w.resource = std::move(row.resource);
  w.identity = queries;
  w.merge = stages::Merge::update;
  w.entry = "feed";
  w.check_agreement = context.secure;
  auto done = stages::plan_write(txn, context.write, ex, std::move(w));
  if (ex.audit) row.result.patient = ex.audit->patient_reference;
  if (!done) {
    ex.fail(done.error());
    if (ex.audit && !ex.audit->patient_reference.empty()) refusal = std::move(ex);  // audited by the caller
    return done.error();
  }
  using Done = stages::WriteOutcome::Kind;
  if (done->kind == Done::held) {
    row.result.status = "held";
    row.result.reason = "held for review: a registrar of the partnership will apply or reject it";
    pipeline::record_audit_of(txn, ex);
    return Ok{};
  }
  row.result.status = done->kind == Done::created   ? "created"
                      : done->kind == Done::updated ? "updated"
                                                    : "unchanged";
  row.result.resource = version_ref(*done->record);
  if (ex.audit && !ex.audit->patient_reference.empty()) patients.insert(ex.audit->patient_reference);
  return Ok{};
}

void audit_chunk(store::WriteTxn& txn, const FeedOrigin& origin, const std::vector<PendingRow>& rows,
                 const std::set<std::string>& patients_set) {
  AuditInput in = feed_audit(origin, txn.now_ms());
  std::size_t refused = 0;
  for (const auto& row : rows) {
    if (row.result.status == "created" || row.result.status == "updated") {
      if (in.entity_reference.empty()) in.entity_reference = row.result.resource;
    } else if (row.result.status == "rejected") {
      ++refused;
    }
  }
  in.outcome = refused == 0 ? AuditOutcome::success : AuditOutcome::minor_failure;
  if (refused > 0)
    in.outcome_desc = std::to_string(refused) + " of " + std::to_string(rows.size()) + " rows rejected";
  std::vector<std::string> patients(patients_set.begin(), patients_set.end());
  if (!patients.empty()) in.patient_reference = patients.front();
  record_audit(txn, in, patients);
}

// Commits chunks on the writer while the caller maps the next one; reports rows in order.
class ChunkWriter {
 public:
  ChunkWriter(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
              const RowSink& sink, FeedSummary& summary)
      : context_(context), feed_(feed), origin_(origin), sink_(sink), summary_(summary) {
    // The gate's caller: the partner that sent the file, for its default purpose (security on).
    if (context.secure) {
      caller_.partner = find_partner(context.config, origin.partner);
      if (caller_.partner) caller_.purpose = purpose_of(*caller_.partner, "").value();
    }
  }

  // Adds a row to the chunk being filled; a full chunk goes to the writer. False once the store failed.
  bool add(PendingRow row) {
    chunk_.push_back(std::move(row));
    if (chunk_.size() < context_.chunk_rows) return true;
    return submit(std::exchange(chunk_, {}));
  }

  // Writes the last chunk and reports every row left.
  void finish() {
    if (!chunk_.empty() && !submit(std::exchange(chunk_, {}))) return;
    finish_previous();
  }

 private:
  // Hands the chunk to the writer after the previous one is reported. False once the store failed.
  bool submit(std::vector<PendingRow> rows) {
    if (!finish_previous()) return false;
    auto chunk = std::make_shared<std::vector<PendingRow>>(std::move(rows));
    auto promise = std::make_shared<std::promise<Status>>();
    in_flight_ = promise->get_future();
    in_flight_rows_ = chunk;
    const bool any_write =
        std::any_of(chunk->begin(), chunk->end(), [](const PendingRow& r) { return r.write; });
    if (!any_write && !context_.secure) {
      promise->set_value(Ok{});
      return true;
    }
    const FeedContext& context = context_;
    const PartnerFeed& feed = feed_;
    const FeedOrigin& origin = origin_;
    const Caller caller = caller_;
    store::WritePlan plan = [&context, &feed, &origin, chunk, caller](store::WriteTxn& txn) -> Status {
      txn.set_correlation(origin.correlation_id);
      std::set<std::string> patients;
      for (auto& row : *chunk) {
        if (!row.write) continue;
        // Each row in its own savepoint: a row refused at write time leaves nothing behind but its
        // AuditEvent (written after the savepoint is rolled back).
        std::optional<pipeline::Exchange> refusal;
        const Status status = txn.nested([&](store::WriteTxn& t) {
          return write_row(context, feed, origin, caller, t, row, patients, refusal);
        });
        if (!status) {
          row.result.status = "rejected";
          row.result.http_status = http_status(status.error().code);
          row.result.reason =
              status.error().issues.empty() ? "not stored" : status.error().issues.front().diagnostics;
          if (refusal) pipeline::record_audit_of(txn, *refusal);
        }
      }
      if (context.secure) audit_chunk(txn, origin, *chunk, patients);
      return Ok{};
    };
    Status queued =
        context_.writer.submit(std::move(plan), [promise](Status s) { promise->set_value(std::move(s)); });
    if (!queued) promise->set_value(std::move(queued));
    return true;
  }

  // Waits for the chunk in flight and reports its rows. False when the store failed.
  bool finish_previous() {
    if (!in_flight_rows_) return !summary_.storage_failed;
    Status committed = in_flight_.get();
    auto rows = std::move(in_flight_rows_);
    for (auto& row : *rows) {
      if (!committed && row.write) {
        row.result.status = "not-stored";
        row.result.reason = "the store failed: " + (committed.error().issues.empty()
                                                        ? std::string("unknown error")
                                                        : committed.error().issues.front().diagnostics);
      }
      report(row.result);
    }
    if (!committed) {
      summary_.storage_failed = true;
      summary_.failure = committed.error();
      return false;
    }
    return true;
  }

  void report(const FeedRowResult& result) {
    ++summary_.rows;
    ++summary_.by_status[result.status];
    if (sink_) sink_(result);
  }

  const FeedContext& context_;
  const PartnerFeed& feed_;
  const FeedOrigin& origin_;
  const RowSink& sink_;
  FeedSummary& summary_;
  Caller caller_;
  std::vector<PendingRow> chunk_;
  std::future<Status> in_flight_;
  std::shared_ptr<std::vector<PendingRow>> in_flight_rows_;
};

}  // namespace

Result<std::vector<PartnerFeed>> load_partner_feeds(const Config& config, const fhir::Model& model) {
  std::vector<PartnerFeed> feeds;
  for (const auto& partner : config.partners) {
    for (const auto& f : partner.feeds) {
      auto mapping = mappers::load_feed_mapping_file(model, f.mapping);
      if (!mapping) return mapping.error();
      feeds.push_back(PartnerFeed{partner.id, partner.name, f.id, f.folder, std::move(*mapping)});
    }
  }
  return feeds;
}

const PartnerFeed* find_feed(const std::vector<PartnerFeed>& feeds, std::string_view partner,
                             std::string_view id, mappers::FeedMapping::Format format) {
  const PartnerFeed* only = nullptr;
  int count = 0;
  for (const auto& feed : feeds) {
    if (feed.partner != partner) continue;
    if (!id.empty()) {
      if (feed.id == id) return feed.mapping->format == format ? &feed : nullptr;
      continue;
    }
    if (feed.mapping->format == format) {
      only = &feed;
      ++count;
    }
  }
  return count == 1 ? only : nullptr;
}

namespace {

FeedSummary ingest_csv_rows(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                            std::istream& in, const RowSink& sink) {
  FeedSummary summary;
  const auto& mapping = *feed.mapping;
  mappers::CsvOptions options = mapping.csv;
  if (origin.encoding) options.encoding = *origin.encoding;
  mappers::CsvReader reader(in, options);
  mappers::CsvRecord record;
  if (!reader.next(record)) {
    summary.failure = Error::make(ErrorCode::invalid_input, "the file is empty: a header row is expected");
    return summary;
  }
  if (!record.error.empty()) {
    summary.failure = Error::make(ErrorCode::invalid_input, "the header row is malformed: " + record.error);
    return summary;
  }
  auto header = mappers::CsvHeader::bind(mapping, record.fields);
  if (!header) {
    summary.failure = header.error();
    return summary;
  }
  ChunkWriter writer(context, feed, origin, sink, summary);
  std::size_t row_number = 0;
  while (reader.next(record)) {
    PendingRow row;
    row.result.row = ++row_number;
    row.result.line = record.line;
    if (!record.error.empty()) {
      row.result.status = "rejected";
      row.result.reason = record.error;
    } else if (record.fields.size() != header->width()) {
      row.result.status = "rejected";
      row.result.reason = "line " + std::to_string(record.line) + ": " +
                          std::to_string(record.fields.size()) + " fields where the header has " +
                          std::to_string(header->width());
    } else {
      prepare(context, feed, mappers::map_record(mapping, mappers::CsvFeedRecord(*header, record.fields)),
              row);
    }
    if (!writer.add(std::move(row))) return summary;
  }
  writer.finish();
  return summary;
}

FeedSummary ingest_xml_rows(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                            std::string_view xml, const RowSink& sink) {
  FeedSummary summary;
  auto doc = mappers::XmlFeedDocument::parse(*feed.mapping, xml);
  if (!doc) {
    summary.failure = doc.error();
    return summary;
  }
  ChunkWriter writer(context, feed, origin, sink, summary);
  for (std::size_t i = 0; i < (*doc)->size(); ++i) {
    PendingRow row;
    row.result.row = i + 1;
    row.result.line = static_cast<std::size_t>(std::max(0L, (*doc)->line(i)));
    prepare(context, feed, (*doc)->map(i), row);
    if (!writer.add(std::move(row))) return summary;
  }
  writer.finish();
  if (summary.rows == 0)
    summary.failure = Error::make(ErrorCode::invalid_input, "xml.record '" + feed.mapping->record_xpath +
                                                                "' selects nothing in this document");
  return summary;
}

// A file's journal entry: collects what its rows resulted in through the sink, then records the outcome.
class FileJournal {
 public:
  FileJournal(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
              const RowSink& sink)
      : context_(context), feed_(feed), origin_(origin), sink_(sink) {
    if (origin_.correlation_id.empty()) origin_.correlation_id = new_resource_id();
  }
  const FeedOrigin& origin() const { return origin_; }
  RowSink sink() {
    return [this](const FeedRowResult& row) {
      if (!row.resource.empty() && resources_.items().size() < 100)
        resources_.push(fhir::Node::string(row.resource));
      if (first_problem_.empty() && row.status == "rejected") {
        // The list's text names the row; its reason (which may quote a value) is the entry's detail.
        first_problem_ = "row " + std::to_string(row.row) + " (line " + std::to_string(row.line) + ")";
        first_reason_ = first_problem_ + ": " + row.reason;
      }
      std::string patient = row.patient;
      if (patient.empty() && row.resource.rfind("Patient/", 0) == 0)
        patient = row.resource.substr(0, row.resource.find("/_history"));
      if (!patient.empty() && patients_.items().size() < 100 &&
          std::none_of(patients_.items().begin(), patients_.items().end(),
                       [&](const fhir::Node& p) { return p.text() == patient; }))
        patients_.push(fhir::Node::string(patient));
      sink_(row);
    };
  }
  void finish(const FeedSummary& summary) {
    store::JournalEntry e;
    e.correlation_id = origin_.correlation_id;
    e.received_ms = received_ms_;
    e.partner = origin_.partner;
    e.direction = "in";
    e.transport = origin_.channel == "rest" ? "http" : "folder";
    e.format = feed_.mapping->format == mappers::FeedMapping::Format::csv ? "csv" : "xml";
    e.type = "feed " + feed_.id;
    e.size = origin_.size;
    if (summary.failure) {
      e.status = summary.storage_failed ? store::JournalStatus::failed : store::JournalStatus::rejected;
      e.error = pipeline::error_summary(*summary.failure);
      e.detail =
          summary.failure->issues.empty() ? std::string() : summary.failure->issues.front().diagnostics;
    } else {
      // A file with rows held for a registrar is held as a whole in the journal: it needs a decision.
      e.status =
          summary.by_status.contains("held") ? store::JournalStatus::held : store::JournalStatus::stored;
      std::string counts;
      for (const auto& [status, n] : summary.by_status)
        counts += (counts.empty() ? "" : ", ") + status + " " + std::to_string(n);
      const auto rejected = summary.by_status.find("rejected");
      if (rejected != summary.by_status.end() && rejected->second > 0) {
        e.error = std::to_string(rejected->second) + " of " + std::to_string(summary.rows) +
                  " rows rejected; first: " + first_problem_;
        e.detail = first_reason_;
      }
      e.stages = store::stages_json({{"received", 0.0}, {"stored (" + counts + ")", ms_since(started_)}});
    }
    if (e.stages == "[]") e.stages = store::stages_json({{"received", 0.0}, {"checked", ms_since(started_)}});
    e.resources = fhir::write_json(resources_);
    e.patients = fhir::write_json(patients_);
    e.retry_of = origin_.retry_of;
    if (origin_.payload) {
      e.has_payload = true;
      e.payload = std::string(*origin_.payload);
    }
    const std::string correlation = origin_.correlation_id;
    const Status written = context_.writer.run([&e, &correlation](store::WriteTxn& txn) -> Status {
      txn.set_correlation(correlation);
      txn.append_journal(e);
      return Ok{};
    });  // a journal entry that cannot be written does not undo the rows stored
    if (written && context_.observers) context_.observers->on_journal(e);
  }

 private:
  static double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  }
  const FeedContext& context_;
  const PartnerFeed& feed_;
  FeedOrigin origin_;
  const RowSink& sink_;
  fhir::Node resources_ = fhir::Node::array();
  fhir::Node patients_ = fhir::Node::array();
  std::string first_problem_;
  std::string first_reason_;
  std::int64_t received_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace

FeedSummary ingest_csv(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                       std::istream& in, const RowSink& sink) {
  FileJournal journal(context, feed, origin, sink);
  FeedSummary summary = ingest_csv_rows(context, feed, journal.origin(), in, journal.sink());
  journal.finish(summary);
  return summary;
}

FeedSummary ingest_xml(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                       std::string_view xml, const RowSink& sink) {
  FileJournal journal(context, feed, origin, sink);
  FeedSummary summary = ingest_xml_rows(context, feed, journal.origin(), xml, journal.sink());
  journal.finish(summary);
  return summary;
}

}  // namespace fhirgate::gateway
