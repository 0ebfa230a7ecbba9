#pragma once
// CSV and XML partner feeds into the store, row by row, through the partner's declarative mapping
// (mappers/feed_mapping.hpp).
//
// Every row ends in exactly one result, reported in file order: created, updated, unchanged (what is
// held already says the same: no new version), skipped (a skipWhen condition), rejected (malformed,
// unmappable, invalid against the profiles, or naming a Patient the gateway does not hold) or
// not-stored (the store failed; ingestion stops there and says so). A bad row never blocks good rows.
//
// Idempotent by identifier: a row's resource is matched to the held one by its identifiers (NHS number
// first), updated in place (the elements the mapping fills replace the held ones, identifiers merge by
// system, everything else is kept), and not written at all when nothing changed. Re-ingesting a file
// therefore changes nothing.
//
// Streaming and speed: CSV is read from a stream in chunks of rows; each chunk's rows are mapped and
// validated on the calling thread and written by one write plan (a row refused at write time, e.g. for
// an unknown Patient, has written nothing), and the next chunk is mapped while the previous one commits.
// Memory is bounded by two chunks. XML documents are parsed whole (bounded by the body limit).
//
// Every row is written through stages::plan_write (the one write: the partner's agreement for create or
// update, the gate, the identity rule, supplier tags, routing). With security on, each chunk records one
// AuditEvent (operation $ingest) naming the patients it touched; a row refused by the gate or held for a
// registrar (its match is a record the partner may not see) records one of its own, against that
// patient.
#include <cstddef>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/model.hpp"
#include "fhir/result.hpp"
#include "fhir/search_params.hpp"
#include "fhir/validator.hpp"
#include "gateway/config/config.hpp"
#include "gateway/ops/observability.hpp"
#include "gateway/stages/write.hpp"
#include "gateway/store/writer.hpp"
#include "mappers/feed_mapping.hpp"

namespace fhirgate::gateway {

// A feed a partner sends, with its loaded mapping.
struct PartnerFeed {
  std::string partner;
  std::string partner_name;
  std::string id;
  std::string folder;  // watched inbound folder; empty = REST only
  std::shared_ptr<const mappers::FeedMapping> mapping;
};

// Loads every partner's feed mappings (paths relative to the configuration file's folder). Errors:
// invalid_input "file:line: reason" for the first mapping with a mistake.
Result<std::vector<PartnerFeed>> load_partner_feeds(const Config& config, const fhir::Model& model);

// The partner's feed for a format: the one named `id`, or its only feed of that format. Null when none
// (or several and no id).
const PartnerFeed* find_feed(const std::vector<PartnerFeed>& feeds, std::string_view partner,
                             std::string_view id, mappers::FeedMapping::Format format);

struct FeedRowResult {
  std::size_t row = 0;   // data row (CSV: 1 = the first row after the header) or XML record, from 1
  std::size_t line = 0;  // where it starts in the file
  std::string status;    // created updated unchanged held skipped rejected not-stored
  int http_status = 0;   // rejected: why, as HTTP says it (422 invalid, 403 not allowed, 409 identity)
  std::string resource;  // Type/id/_history/version when written or unchanged
  std::string patient;   // Patient/<id> the row was about, when known (written, held or refused by the gate)
  std::string reason;    // skipped, rejected, not-stored: why
};

struct FeedSummary {
  std::size_t rows = 0;
  std::map<std::string, std::size_t> by_status;
  // The file as a whole could not be taken (no header, missing columns, malformed XML), or the store
  // failed part-way (then the rows before it are stored and reported).
  std::optional<Error> failure;
  bool storage_failed = false;
};

struct FeedContext {
  const fhir::Model& model;
  const fhir::Validator& validator;
  const fhir::SearchParamRegistry& registry;
  store::Writer& writer;
  stages::WriteServices write;
  const Config& config;
  std::map<std::string, std::vector<std::string>> profiles;  // enforced per resource type
  bool secure = false;  // security on: the agreement, the gate, supplier tags, AuditEvents
  std::size_t chunk_rows = 1000;
  GatewayObservers* observers = nullptr;  // invalid rows and the file's journal entry are told to it
};

// Who sent the file and how, for the supplier tag and the AuditEvent.
struct FeedOrigin {
  std::string partner;
  std::string partner_name;
  // Who the AuditEvents name as the one who acted, when not the partner (an operator's retry).
  const PartnerConfig* actor = nullptr;
  std::string channel = "rest";  // rest ($ingest) or file (watched folder)
  std::string client_address;
  std::string purpose;
  // The sender's declared character set (Content-Type charset), over the mapping's csv.encoding.
  std::optional<mappers::TextEncoding> encoding;
  // For the journal entry of the file (docs/operators.md): its correlation id (empty: a new one), size,
  // and content when it is at hand (the file is not kept in the journal otherwise).
  std::string correlation_id;
  std::int64_t size = 0;
  std::optional<std::string_view> payload;
  std::int64_t retry_of = 0;  // the journal entry an operator retries with this file
};

using RowSink = std::function<void(const FeedRowResult&)>;

// What the REST API and the folder watcher need: the context and every partner's feeds.
struct FeedService {
  FeedContext context;
  std::vector<PartnerFeed> feeds;
};

// Blocks on the writer: call from a worker thread, never an io thread. Each writes the file's journal
// entry when done: stored (routed), or rejected with the first problem, and up to 100 resources.
FeedSummary ingest_csv(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                       std::istream& in, const RowSink& sink);
FeedSummary ingest_xml(const FeedContext& context, const PartnerFeed& feed, const FeedOrigin& origin,
                       std::string_view xml, const RowSink& sink);

}  // namespace fhirgate::gateway
