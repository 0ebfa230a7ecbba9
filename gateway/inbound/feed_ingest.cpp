#include "gateway/inbound/feed_ingest.hpp"

#include <chrono>
#include <future>
#include <set>
#include <utility>

#include "fhir/json.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/inbound/identity.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/security/security.hpp"
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

// The mapped resource, validated; fills `row` as rejected/skipped when it cannot be written.
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
  if (const auto it = context.profiles.find(feed.mapping->resource_type); it != context.profiles.end())
    options.profiles = it->second;
  const auto validation = context.validator.validate(mapped.resource, options);
  if (validation.has_errors()) {
    if (context.on_invalid) context.on_invalid(feed.mapping->resource_type);
    row.result.status = "rejected";
    row.result.reason = "not a valid " + feed.mapping->resource_type + ": " + first_errors(validation);
    return;
  }
  row.write = true;
  row.resource = std::move(mapped.resource);
  row.lookups = std::move(mapped.lookups);
}

// The held resource updated with what the row says: the row's elements replace the held ones,
// identifiers merge by system; id, meta and the elements the row does not fill stay.
Node merged(const Node& held, const Node& incoming) {
  Node out = held;
  for (const auto& [key, value] : incoming.members()) {
    if (key == "resourceType" || key == "id" || key == "meta") continue;
    if (key == "identifier" && value.is_array()) {
      Node ids = Node::array();
      if (const Node* old = held.find("identifier"); old && old->is_array()) {
        for (const auto& id : old->items()) {
          const auto system = id.string_at("system");
          const bool replaced = std::any_of(value.items().begin(), value.items().end(),
                                            [&](const Node& n) { return n.string_at("system") == system; });
          if (!replaced) ids.push(id);
        }
      }
      for (const auto& id : value.items()) ids.push(id);
      out.set("identifier", std::move(ids));
      continue;
    }
    out.set(key, value);
  }
  return out;
}

std::string version_ref(const std::string& type, const std::string& id, std::int64_t version) {
  return type + "/" + id + "/_history/" + std::to_string(version);
}

// Writes one row inside the chunk's transaction: every check (lookups, identity) comes before the one
// write, so a row refused here has written nothing.
Status write_row(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                 store::WriteTxn& txn, PendingRow& row, std::set<std::string>& patients) {
  const std::string& type = feed.mapping->resource_type;
  for (const auto& lookup : row.lookups) {
    Node id = Node::object();
    id.set("system", Node::string(lookup.system));
    id.set("value", Node::string(lookup.value));
    const auto found = find_by_identity(txn, identity_queries(context.registry, "Patient", {id}));
    if (found.size() != 1) {
      return Error::make(ErrorCode::unprocessable,
                         found.empty()
                             ? "no Patient with identifier " + lookup.system + "|" + lookup.value +
                                   " is held (" + lookup.path + ")"
                             : "more than one Patient has identifier " + lookup.system + "|" + lookup.value);
    }
    mappers::set_at(row.resource, lookup.steps, Node::string("Patient/" + found.front()));
    patients.insert("Patient/" + found.front());
  }
  std::vector<Node> identifiers;
  if (const Node* list = row.resource.find("identifier"); list && list->is_array())
    identifiers = list->items();
  const auto queries = identity_queries(context.registry, type, identifiers);
  if (queries.empty())
    return Error::make(ErrorCode::unprocessable,
                       "the row gives the " + type + " no identifier to match it by");
  const auto found = find_by_identity(txn, queries);
  if (found.size() > 1)
    return Error::make(ErrorCode::unprocessable, "more than one " + type + " has this identifier");
  const std::string supplier = context.audit ? origin.partner : std::string();
  if (found.empty()) {
    const std::string id = new_resource_id();
    if (!supplier.empty()) Security::tag_supplier(row.resource, nullptr, supplier);
    const auto rec = txn.put(type, id, std::move(row.resource), "POST");
    row.result.status = "created";
    row.result.resource = version_ref(type, id, rec.version);
    if (type == "Patient") patients.insert("Patient/" + id);
    return Ok{};
  }
  const std::string& id = found.front();
  const auto held_rec = txn.read(type, id);
  auto held = held_rec && !held_rec->deleted ? fhir::parse_json(held_rec->body)
                                             : Result<Node>(Error::make(ErrorCode::internal, "unreadable"));
  if (!held) return Error::make(ErrorCode::internal, "the held " + type + "/" + id + " cannot be read");
  Node updated = merged(*held, row.resource);
  if (!supplier.empty()) Security::tag_merge_supplier(updated, *held, supplier, context.may_see);
  if (type == "Patient") patients.insert("Patient/" + id);
  if (updated == *held) {
    row.result.status = "unchanged";
    row.result.resource = version_ref(type, id, held_rec->version);
    return Ok{};
  }
  const auto rec = txn.put(type, id, std::move(updated), "PUT");
  row.result.status = "updated";
  row.result.resource = version_ref(type, id, rec.version);
  return Ok{};
}

void audit_chunk(store::WriteTxn& txn, const FeedOrigin& origin, const std::vector<PendingRow>& rows,
                 const std::set<std::string>& patients_set) {
  AuditInput in;
  in.correlation_id = origin.correlation_id;
  in.channel = origin.channel == "rest" ? "rest" : "file";
  in.interaction = "operation";
  in.operation = "$ingest";
  in.recorded_ms = txn.now_ms();
  in.client_id = origin.partner;
  in.client_reference = "Organization/" + origin.partner;
  in.client_display = origin.partner_name;
  in.client_address = origin.client_address;
  in.purpose = origin.purpose.empty() ? "TREAT" : origin.purpose;
  std::size_t written = 0, refused = 0;
  for (const auto& row : rows) {
    if (row.result.status == "created" || row.result.status == "updated") {
      ++written;
      if (in.entity_reference.empty()) in.entity_reference = row.result.resource;
    } else if (row.result.status == "rejected") {
      ++refused;
    }
  }
  in.outcome = refused == 0 ? "0" : "4";
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
      : context_(context), feed_(feed), origin_(origin), sink_(sink), summary_(summary) {}

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
    if (!any_write && !context_.audit) {
      promise->set_value(Ok{});
      return true;
    }
    const FeedContext& context = context_;
    const PartnerFeed& feed = feed_;
    const FeedOrigin& origin = origin_;
    store::WritePlan plan = [&context, &feed, &origin, chunk](store::WriteTxn& txn) -> Status {
      txn.set_origin(origin.partner);  // routes match the sending partner
      txn.set_correlation(origin.correlation_id);
      std::set<std::string> patients;
      for (auto& row : *chunk) {
        if (!row.write) continue;
        // No savepoint per row: write_row decides everything before its one write, and a failing write
        // (the store itself) fails the whole chunk.
        Status status = write_row(context, feed, origin, txn, row, patients);
        if (!status) {
          row.result.status = "rejected";
          row.result.reason =
              status.error().issues.empty() ? "not stored" : status.error().issues.front().diagnostics;
        }
      }
      if (context.audit) audit_chunk(txn, origin, *chunk, patients);
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
      if (first_problem_.empty() && row.status == "rejected")
        first_problem_ =
            "row " + std::to_string(row.row) + " (line " + std::to_string(row.line) + "): " + row.reason;
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
      e.status = summary.storage_failed ? "failed" : "rejected";
      e.error = summary.failure->issues.empty() ? "failed" : summary.failure->issues.front().diagnostics;
    } else {
      e.status = "stored";
      std::string counts;
      for (const auto& [status, n] : summary.by_status)
        counts += (counts.empty() ? "" : ", ") + status + " " + std::to_string(n);
      const auto rejected = summary.by_status.find("rejected");
      if (rejected != summary.by_status.end() && rejected->second > 0)
        e.error = std::to_string(rejected->second) + " of " + std::to_string(summary.rows) +
                  " rows rejected; first: " + first_problem_;
      e.stages = store::stages_json({{"received", 0.0}, {"stored (" + counts + ")", ms_since(started_)}});
    }
    if (e.stages == "[]") e.stages = store::stages_json({{"received", 0.0}, {"checked", ms_since(started_)}});
    e.resources = fhir::write_json(resources_);
    e.retry_of = origin_.retry_of;
    if (origin_.payload) {
      e.has_payload = true;
      e.payload = std::string(*origin_.payload);
    }
    const std::string correlation = origin_.correlation_id;
    (void)context_.writer.run([&e, &correlation](store::WriteTxn& txn) -> Status {
      txn.set_correlation(correlation);
      txn.append_journal(e);
      return Ok{};
    });  // a journal entry that cannot be written does not undo the rows stored
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
  std::string first_problem_;
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
