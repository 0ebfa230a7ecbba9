// The store's schema and its reads and writes.
//
// `resource` has one row per (type, id): its current version, a pointer (`vid`) to that version's row
// in `resource_version`, and a deleted flag. `resource_version` keeps every version's JSON in global
// write order (`vid`), which is what instance and type history read. Index rows in idx_* point at the
// stable `resource.rid`; every write brings them in step with the new version (index_rows.hpp) and a
// deletion removes them, so searches only ever see current, live resources.
//
// Ids are UUIDv7 (time-ordered), so inserts land at the end of the B-trees (see the SQLite baseline:
// random keys cost ~3x on inserts).
#include "gateway/store/store.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <utility>

#include "fhir/datetime.hpp"
#include "gateway/store/index_rows.hpp"
#include "gateway/store/journal.hpp"
#include "gateway/store/param_keys.hpp"
#include "gateway/store/search_sql.hpp"
#include "gateway/store/sqlite.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway::store {
namespace {

// Schema migrations, keyed by PRAGMA user_version: migration i takes the schema from version i to i+1.
// Append new migrations; never edit a released one.
const char* const kMigrations[] = {
    // 1: resources, their versions, search parameter ids and index tables.
    R"sql(
CREATE TABLE resource (
  rid INTEGER PRIMARY KEY,            -- stable internal key: index rows and paging refer to it
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,           -- current version number
  vid INTEGER NOT NULL,               -- resource_version row of the current version
  last_updated INTEGER NOT NULL,      -- ms since epoch
  deleted INTEGER NOT NULL DEFAULT 0,
  UNIQUE (type, id)
);
CREATE TABLE resource_version (
  vid INTEGER PRIMARY KEY,            -- global write order
  rid INTEGER NOT NULL,
  type TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  method TEXT NOT NULL,               -- POST, PUT or DELETE
  body TEXT,                          -- NULL for a deletion
  UNIQUE (rid, version)
);
CREATE INDEX resource_version_type ON resource_version (type, vid);
CREATE TABLE search_param (
  id INTEGER PRIMARY KEY,
  resource_type TEXT NOT NULL,
  code TEXT NOT NULL,
  UNIQUE (resource_type, code)
);
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE idx_string (param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_string_value ON idx_string (param, norm, rid);
CREATE INDEX idx_string_rid ON idx_string (rid);
CREATE TABLE idx_token (param INTEGER NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_token_value ON idx_token (param, code, system, rid);
CREATE INDEX idx_token_rid ON idx_token (rid);
CREATE TABLE idx_date (param INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_date_value ON idx_date (param, lo, hi, rid);
CREATE INDEX idx_date_rid ON idx_date (rid);
CREATE TABLE idx_reference (param INTEGER NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
                            rid INTEGER NOT NULL);
CREATE INDEX idx_reference_value ON idx_reference (param, target_id, target_type, rid);
CREATE INDEX idx_reference_rid ON idx_reference (rid);
CREATE TABLE idx_uri (param INTEGER NOT NULL, value TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_uri_value ON idx_uri (param, value, rid);
CREATE INDEX idx_uri_rid ON idx_uri (rid);
)sql",
    // 2: index tables keyed by (rid, param, value) without a rowid, so each index row is two B-tree
    // entries instead of three and an update can delete exactly the rows that changed; the inbound
    // message log (dedupe of re-sent messages, failed messages kept for operators).
    R"sql(
DROP TABLE idx_string;
DROP TABLE idx_token;
DROP TABLE idx_date;
DROP TABLE idx_reference;
DROP TABLE idx_uri;
CREATE TABLE idx_string (rid INTEGER NOT NULL, param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL,
                         PRIMARY KEY (rid, param, norm, exact)) WITHOUT ROWID;
CREATE INDEX idx_string_value ON idx_string (param, norm);
CREATE TABLE idx_token (rid INTEGER NOT NULL, param INTEGER NOT NULL, code TEXT NOT NULL, system TEXT NOT NULL,
                        PRIMARY KEY (rid, param, code, system)) WITHOUT ROWID;
CREATE INDEX idx_token_value ON idx_token (param, code, system);
CREATE TABLE idx_date (rid INTEGER NOT NULL, param INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
                       PRIMARY KEY (rid, param, lo, hi)) WITHOUT ROWID;
CREATE INDEX idx_date_value ON idx_date (param, lo, hi);
CREATE TABLE idx_reference (rid INTEGER NOT NULL, param INTEGER NOT NULL, target_id TEXT NOT NULL,
                            target_type TEXT NOT NULL,
                            PRIMARY KEY (rid, param, target_id, target_type)) WITHOUT ROWID;
CREATE INDEX idx_reference_value ON idx_reference (param, target_id, target_type);
CREATE TABLE idx_uri (rid INTEGER NOT NULL, param INTEGER NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (rid, param, value)) WITHOUT ROWID;
CREATE INDEX idx_uri_value ON idx_uri (param, value);
DELETE FROM store_meta WHERE key = 'index_signature';
CREATE TABLE inbound_message (
  mid INTEGER PRIMARY KEY,
  received INTEGER NOT NULL,          -- ms since epoch
  partner TEXT NOT NULL,              -- partner id
  channel TEXT NOT NULL,              -- mllp, http
  format TEXT NOT NULL,               -- hl7v2, csv, xml
  sender TEXT NOT NULL,               -- HL7 v2 MSH-4 (sending facility)
  control_id TEXT NOT NULL,           -- HL7 v2 MSH-10
  message_type TEXT NOT NULL,         -- e.g. ADT^A01
  status TEXT NOT NULL,               -- applied, failed, rejected
  detail TEXT NOT NULL,               -- applied: JSON array of the resources written; else the error
  body TEXT NOT NULL                  -- the message as received
);
CREATE UNIQUE INDEX inbound_message_applied ON inbound_message (partner, sender, control_id)
  WHERE status = 'applied';
CREATE INDEX inbound_message_problems ON inbound_message (mid) WHERE status <> 'applied';
)sql",
    // 3: bearer token hashes and the chained audit trail (audit_log.hpp).
    R"sql(
CREATE TABLE credential (
  token_id TEXT PRIMARY KEY,          -- the token's public part
  holder TEXT NOT NULL,               -- partner or role id
  salt BLOB NOT NULL,
  hash BLOB NOT NULL,                 -- SHA-256(salt || secret)
  created INTEGER NOT NULL
);
CREATE TABLE audit_event (
  seq INTEGER PRIMARY KEY,            -- chain order; the AuditEvent's id
  recorded INTEGER NOT NULL,          -- ms since epoch
  agent TEXT NOT NULL,                -- requesting partner or role id, or ''
  entity TEXT NOT NULL,               -- Type/id of the data entity, or ''
  action TEXT NOT NULL,               -- C R U D E
  outcome TEXT NOT NULL,              -- 0 4 8 12
  format TEXT NOT NULL,               -- record (the gateway's own, rendered when read) or resource (POSTed)
  body TEXT NOT NULL,
  chain BLOB NOT NULL                 -- HMAC-SHA256(key, previous chain || seq || recorded || format || body)
);
CREATE INDEX audit_event_agent ON audit_event (agent, seq);
CREATE TABLE audit_patient (           -- the patients whose data each AuditEvent touched
  patient TEXT NOT NULL,              -- Patient/<id>
  seq INTEGER NOT NULL,
  PRIMARY KEY (patient, seq)
) WITHOUT ROWID;
)sql",
    // 4: the outbox of deliveries to partners (outbox.hpp).
    R"sql(
CREATE TABLE delivery (
  id INTEGER PRIMARY KEY,             -- creation order
  created INTEGER NOT NULL,
  route TEXT NOT NULL,
  destination TEXT NOT NULL,          -- receiving partner
  format TEXT NOT NULL,               -- fhir-rest
  type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  patient TEXT NOT NULL,              -- Patient/<id> or ''
  status TEXT NOT NULL,               -- pending delivered withheld dead discarded
  attempts INTEGER NOT NULL,
  next_attempt INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  updated INTEGER NOT NULL
);
CREATE INDEX delivery_due ON delivery (destination, id) WHERE status = 'pending';
CREATE INDEX delivery_order ON delivery (destination, patient, id) WHERE status = 'pending';
)sql",
    // 5: deliveries of what is not stored: FHIR messages and resources of types not held.
    R"sql(
ALTER TABLE delivery ADD COLUMN event TEXT NOT NULL DEFAULT '';
ALTER TABLE delivery ADD COLUMN payload TEXT NOT NULL DEFAULT '';
)sql",
    // 6: the message journal (journal.hpp), and the correlation id a delivery inherits.
    R"sql(
CREATE TABLE journal (
  id INTEGER PRIMARY KEY,             -- creation order
  correlation TEXT NOT NULL,
  received INTEGER NOT NULL,          -- ms since the epoch
  partner TEXT NOT NULL,
  direction TEXT NOT NULL,            -- in out
  transport TEXT NOT NULL,
  format TEXT NOT NULL,
  type TEXT NOT NULL,
  size INTEGER NOT NULL,
  status TEXT NOT NULL,
  stages TEXT NOT NULL,               -- JSON array
  error TEXT NOT NULL,
  resources TEXT NOT NULL,            -- JSON array
  delivery INTEGER,                   -- outbound: delivery.id
  retry_of INTEGER,                   -- journal.id this entry retried
  payload TEXT,                       -- NULL once purged
  updated INTEGER NOT NULL
);
CREATE INDEX journal_received ON journal (received);
CREATE INDEX journal_correlation ON journal (correlation);
CREATE UNIQUE INDEX journal_delivery ON journal (delivery) WHERE delivery IS NOT NULL;
ALTER TABLE delivery ADD COLUMN correlation TEXT NOT NULL DEFAULT '';
)sql",
    // 7: indexes for the operators' journal filters (list_journal), newest first within each; the
    // problems (the dashboard's latest failures) in a partial index of their own; journal_received covers
    // what the counts of a time window need (count_journal).
    R"sql(
DROP INDEX journal_received;
CREATE INDEX journal_received ON journal (received, partner, direction, status);
CREATE INDEX journal_partner ON journal (partner, id);
CREATE INDEX journal_status ON journal (status, id);
CREATE INDEX journal_type ON journal (type, id);
CREATE INDEX journal_problems ON journal (id) WHERE status IN ('rejected', 'failed', 'dead-letter');
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));


int user_version(Connection& db) {
  auto stmt = db.prepare("PRAGMA user_version");
  stmt.step();
  return static_cast<int>(stmt.int64(0));
}

// Returns the version the database had before migrating.
int migrate(Connection& db) {
  const int from = user_version(db);
  if (from > kSchemaVersion) {
    throw std::runtime_error("database schema version " + std::to_string(from) +
                             " is newer than this fhirgate (" + std::to_string(kSchemaVersion) + ")");
  }
  for (int v = from; v < kSchemaVersion; ++v) {
    db.exec("BEGIN IMMEDIATE");
    db.exec(kMigrations[v]);
    db.exec("PRAGMA user_version = " + std::to_string(v + 1));
    db.exec("COMMIT");
  }
  return from;
}

std::vector<std::int64_t> map_param_keys(Connection& db, const fhir::SearchParamRegistry& registry) {
  std::vector<std::int64_t> keys(registry.all().size());
  for (const auto& param : registry.all()) {
    db.prepare("INSERT OR IGNORE INTO search_param (resource_type, code) VALUES (?, ?)")
        .bind(1, param->resource_type)
        .bind(2, param->code)
        .run();
    auto stmt = db.prepare("SELECT id FROM search_param WHERE resource_type = ? AND code = ?");
    stmt.bind(1, param->resource_type).bind(2, param->code);
    stmt.step();
    keys[param->key] = stmt.int64(0);
  }
  return keys;
}

// Identifies the indexing rules; when it changes (other cached types, other definitions), every stored
// resource is indexed again.
std::string index_signature(const fhir::SearchParamRegistry& registry) {
  std::string sig = "2;";
  for (const auto& p : registry.all()) {
    sig += p->resource_type + "." + p->code + ":" + fhir::to_string(p->type) + ":" + p->expression + ";";
  }
  return sig;
}

void reindex_if_needed(Connection& db, const fhir::SearchParamRegistry& registry, const ParamKeys& keys) {
  const std::string sig = index_signature(registry);
  {
    auto stmt = db.prepare("SELECT value FROM store_meta WHERE key = 'index_signature'");
    if (stmt.step() && stmt.text(0) == sig) return;
  }
  db.exec("BEGIN IMMEDIATE");
  clear_index_tables(db);
  std::vector<std::pair<std::int64_t, std::string>> rows;
  {
    auto stmt = db.prepare(
        "SELECT r.rid, v.body FROM resource r JOIN resource_version v ON v.vid = r.vid WHERE r.deleted = 0");
    while (stmt.step()) rows.emplace_back(stmt.int64(0), std::string(stmt.text(1)));
  }
  for (const auto& [rid, body] : rows) {
    auto parsed = fhir::parse_json(body);
    if (parsed) insert_index_rows(db, rid, index_rows_of(registry, keys, *parsed));
  }
  db.prepare("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('index_signature', ?)")
      .bind(1, sig)
      .run();
  db.exec("COMMIT");
}

void configure_writer(Connection& db) {
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA cache_size = -65536");
  // SQLite's default checkpoint every 1,000 WAL pages stays: checkpointing every 10,000 gave audited reads
  // +8% per second but tripled their p99 (10 -> 36 ms in bench/security.sh), since the writer stalls for
  // the length of each checkpoint.
  // Statement journals go to a temporary file: kept in memory, SQLite truncates them by walking a list
  // of 1 KB chunks from the start, which made a 1,000-row feed chunk quadratic (985 rows/s).
  db.exec("PRAGMA temp_store = FILE");
}

// Places `id` and `meta` right after resourceType (their place in every resource) and sets the server's
// meta fields.
void stamp(fhir::Node& resource, const std::string& id, std::int64_t version, std::int64_t now_ms) {
  resource.erase("id");
  fhir::Node meta = fhir::Node::object();
  if (auto* old = resource.find("meta"); old && old->is_object()) meta = std::move(*old);
  resource.erase("meta");
  meta.erase("versionId");
  meta.erase("lastUpdated");
  std::vector<fhir::Node::Member> stamped;
  stamped.emplace_back("versionId", fhir::Node::string(std::to_string(version)));
  stamped.emplace_back("lastUpdated", fhir::Node::string(fhir::format_instant(now_ms)));
  for (auto& m : meta.members()) stamped.push_back(std::move(m));
  meta.members() = std::move(stamped);

  auto& members = resource.members();
  std::vector<fhir::Node::Member> ordered;
  ordered.reserve(members.size() + 2);
  auto rest = members.begin();
  if (rest != members.end() && rest->first == "resourceType") ordered.push_back(std::move(*rest++));
  ordered.emplace_back("id", fhir::Node::string(id));
  ordered.emplace_back("meta", std::move(meta));
  for (; rest != members.end(); ++rest) ordered.push_back(std::move(*rest));
  members = std::move(ordered);
}

VersionRecord record_from(const std::string& type, const std::string& id, Statement& stmt, int first) {
  // columns from `first`: version, last_updated, method, body
  VersionRecord rec;
  rec.type = type;
  rec.id = id;
  rec.version = stmt.int64(first);
  rec.last_updated_ms = stmt.int64(first + 1);
  rec.method = std::string(stmt.text(first + 2));
  rec.deleted = stmt.is_null(first + 3);
  rec.body = std::string(stmt.text(first + 3));
  return rec;
}

struct Current {
  std::int64_t rid;
  std::int64_t version;
  bool deleted;
};

std::optional<Current> current_of(Connection& db, const std::string& type, const std::string& id) {
  auto stmt = db.prepare("SELECT rid, version, deleted FROM resource WHERE type = ? AND id = ?");
  stmt.bind(1, type).bind(2, id);
  if (!stmt.step()) return std::nullopt;
  return Current{stmt.int64(0), stmt.int64(1), stmt.int64(2) != 0};
}

std::optional<VersionRecord> read_current(Connection& db, const std::string& type, const std::string& id) {
  auto stmt = db.prepare(
      "SELECT v.version, v.last_updated, v.method, v.body FROM resource r JOIN resource_version v ON v.vid = "
      "r.vid "
      "WHERE r.type = ? AND r.id = ?");
  stmt.bind(1, type).bind(2, id);
  if (!stmt.step()) return std::nullopt;
  return record_from(type, id, stmt, 0);
}

std::vector<std::string> matching_ids_on(Connection& db, const fhir::SearchQuery& query,
                                         const ParamKeys& keys, int limit) {
  fhir::SearchQuery unsorted = query;
  unsorted.sort.clear();
  SqlQuery q = build_page_query(unsorted, keys, nullptr, limit);
  auto stmt = db.prepare(q.sql);
  bind_all(stmt, q.binds);
  std::vector<std::string> ids;
  while (stmt.step()) ids.emplace_back(stmt.text(1));
  return ids;
}

}  // namespace

// ---- WriteTxn ----

std::optional<VersionRecord> WriteTxn::read(const std::string& type, const std::string& id) {
  return read_current(db_, type, id);
}

std::vector<std::string> WriteTxn::matching_ids(const fhir::SearchQuery& query, int limit) {
  return matching_ids_on(db_, query, keys_, limit);
}

VersionRecord WriteTxn::put(const std::string& type, const std::string& id, fhir::Node resource,
                            const char* method) {
  const auto current = current_of(db_, type, id);
  const std::int64_t version = current ? current->version + 1 : 1;
  stamp(resource, id, version, now_ms_);
  VersionRecord rec{type, id, version, now_ms_, false, method, fhir::write_json(resource)};

  std::int64_t rid;
  if (current) {
    rid = current->rid;
  } else {
    auto stmt = db_.prepare(
        "INSERT INTO resource (type, id, version, vid, last_updated, deleted) VALUES (?, ?, ?, 0, ?, 0) "
        "RETURNING rid");
    stmt.bind(1, type).bind(2, id).bind(3, version).bind(4, now_ms_);
    stmt.step();
    rid = stmt.int64(0);
    stmt.run();
  }
  std::int64_t vid;
  {
    auto stmt = db_.prepare(
        "INSERT INTO resource_version (rid, type, version, last_updated, method, body) VALUES (?, ?, ?, ?, "
        "?, ?) "
        "RETURNING vid");
    stmt.bind(1, rid).bind(2, type).bind(3, version).bind(4, now_ms_).bind(5, method).bind(6, rec.body);
    stmt.step();
    vid = stmt.int64(0);
    stmt.run();
  }
  db_.prepare("UPDATE resource SET version = ?, vid = ?, last_updated = ?, deleted = 0 WHERE rid = ?")
      .bind(1, version)
      .bind(2, vid)
      .bind(3, now_ms_)
      .bind(4, rid)
      .run();
  const auto rows = index_rows_of(registry_, keys_, resource);
  if (current && !current->deleted)
    replace_index_rows(db_, rid, rows);
  else
    insert_index_rows(db_, rid, rows);
  written_.push_back(rec.type + "/" + rec.id + "/_history/" + std::to_string(rec.version));
  if (listener_) listener_->on_write(*this, rec, &resource);
  return rec;
}

std::optional<VersionRecord> WriteTxn::remove(const std::string& type, const std::string& id) {
  const auto current = current_of(db_, type, id);
  if (!current || current->deleted) return std::nullopt;
  const std::int64_t version = current->version + 1;
  std::int64_t vid;
  {
    auto stmt = db_.prepare(
        "INSERT INTO resource_version (rid, type, version, last_updated, method, body) "
        "VALUES (?, ?, ?, ?, 'DELETE', NULL) RETURNING vid");
    stmt.bind(1, current->rid).bind(2, type).bind(3, version).bind(4, now_ms_);
    stmt.step();
    vid = stmt.int64(0);
    stmt.run();
  }
  db_.prepare("UPDATE resource SET version = ?, vid = ?, last_updated = ?, deleted = 1 WHERE rid = ?")
      .bind(1, version)
      .bind(2, vid)
      .bind(3, now_ms_)
      .bind(4, current->rid)
      .run();
  delete_index_rows(db_, current->rid);
  VersionRecord rec{type, id, version, now_ms_, true, "DELETE", {}};
  written_.push_back(rec.type + "/" + rec.id + "/_history/" + std::to_string(rec.version));
  if (listener_) listener_->on_write(*this, rec, nullptr);
  return rec;
}

std::optional<std::string> WriteTxn::applied_detail(const std::string& partner, const std::string& sender,
                                                    const std::string& control_id) {
  auto stmt = db_.prepare(
      "SELECT detail FROM inbound_message WHERE partner = ? AND sender = ? AND control_id = ? AND status = "
      "'applied'");
  stmt.bind(1, partner).bind(2, sender).bind(3, control_id);
  if (!stmt.step()) return std::nullopt;
  return std::string(stmt.text(0));
}

void WriteTxn::log_inbound(const InboundMessage& m) {
  db_.prepare(
         "INSERT INTO inbound_message (received, partner, channel, format, sender, control_id, message_type, "
         "status, detail, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, m.received_ms ? m.received_ms : now_ms_)
      .bind(2, m.partner)
      .bind(3, m.channel)
      .bind(4, m.format)
      .bind(5, m.sender)
      .bind(6, m.control_id)
      .bind(7, m.message_type)
      .bind(8, m.status)
      .bind(9, m.detail)
      .bind(10, m.body)
      .run();
}

void WriteTxn::set_meta(const std::string& key, const std::string& value) {
  db_.prepare("INSERT OR REPLACE INTO store_meta (key, value) VALUES (?, ?)")
      .bind(1, key)
      .bind(2, value)
      .run();
}

Status WriteTxn::nested(const std::function<Status(WriteTxn&)>& plan) {
  const std::size_t journaled_before = journaled_.size();
  db_.prepare("SAVEPOINT nested").run();
  Status status = plan(*this);
  if (!status) {
    db_.prepare("ROLLBACK TO nested").run();
    audit_tail_.reset();
    journaled_.resize(journaled_before);
  }
  db_.prepare("RELEASE nested").run();
  return status;
}

void WriteTxn::begin_plan() {
  origin_.clear();
  correlation_.clear();
  written_.clear();
  deliveries_caused_ = 0;
  plan_journaled_ = journaled_.size();
}

void WriteTxn::rolled_back() {
  audit_tail_.reset();
  journaled_.resize(plan_journaled_);
}

void WriteTxn::committed() {
  if (listener_)
    for (const JournalEntry& entry : journaled_) listener_->on_journal(entry);
  journaled_.clear();
}

void WriteTxn::append_journal(JournalEntry& entry) {
  store::append_journal(db_, entry);
  if (!listener_) return;
  std::string payload = std::exchange(entry.payload, {});  // the listener is not told it
  journaled_.push_back(entry);
  entry.payload = std::move(payload);
}

void WriteTxn::advance_journal(std::int64_t id, const std::string& status, const std::string& error,
                               double stage_ms) {
  store::advance_journal(db_, id, status, error, status, stage_ms, now_ms_);
}

void WriteTxn::purge_journal(std::int64_t payloads_before_ms, std::int64_t entries_before_ms) {
  store::purge_journal(db_, payloads_before_ms, entries_before_ms);
}

void WriteTxn::enqueue_delivery(const Delivery& delivery, std::int64_t size) {
  Delivery d = delivery;
  d.correlation_id = correlation_;
  store::enqueue_delivery(db_, d, size);
  ++deliveries_caused_;
}

void WriteTxn::pass_through(const PassThrough& item) {
  if (listener_) listener_->on_pass_through(*this, item);
}

void WriteTxn::update_delivery(const Delivery& delivery) {
  store::update_delivery(db_, delivery, now_ms_);
}

Result<Delivery> WriteTxn::act_on_delivery(std::int64_t id, bool retry) {
  return store::act_on_delivery(db_, id, retry, now_ms_);
}

AuditRecord WriteTxn::append_audit(AuditRecord record) {
  if (!audit_tail_) audit_tail_ = read_audit_tail(db_);
  audit_appended_ = true;
  return store::append_audit(db_, audit_key_, std::move(record), now_ms_, *audit_tail_);
}

void WriteTxn::finish() {
  if (!audit_appended_) return;
  write_audit_head(db_, audit_tail_ ? *audit_tail_ : read_audit_tail(db_));
}

void WriteTxn::add_credential(const Credential& c) {
  db_.prepare("INSERT INTO credential (token_id, holder, salt, hash, created) VALUES (?, ?, ?, ?, ?)")
      .bind(1, c.token_id)
      .bind(2, c.holder)
      .bind_blob(3, c.salt)
      .bind_blob(4, c.hash)
      .bind(5, now_ms_)
      .run();
}

// ---- Store ----

Store::Store(const std::string& path, const fhir::SearchParamRegistry& registry, std::string audit_key_path)
    : path_(path),
      registry_(registry),
      audit_key_(AuditKey::load_or_create(audit_key_path.empty() ? path + ".audit-key" : audit_key_path)) {
  auto db = std::make_unique<Connection>(path, Connection::Mode::read_write);
  try {
    configure_writer(*db);
    created_ = migrate(*db) == 0;
    keys_ = std::make_unique<ParamKeys>(map_param_keys(*db, registry));
    reindex_if_needed(*db, registry, *keys_);
  } catch (const StepError& e) {
    throw std::runtime_error("cannot prepare database " + path + ": " + e.message);
  }
  writer_ = std::make_unique<Writer>(std::move(db), registry, *keys_, audit_key_);
}

Store::~Store() {
  if (writer_) writer_->stop();
}

class Store::ReadLease {
 public:
  explicit ReadLease(Store& store) : store_(store), db_(store.acquire_reader()) {}
  ~ReadLease() { store_.release_reader(std::move(db_)); }
  Connection& operator*() { return *db_; }

 private:
  Store& store_;
  std::unique_ptr<Connection> db_;
};

std::unique_ptr<Connection> Store::acquire_reader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!idle_readers_.empty()) {
      auto db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return db;
    }
  }
  auto db = std::make_unique<Connection>(path_, Connection::Mode::read_only);
  db->exec("PRAGMA cache_size = -16384");
  db->exec("PRAGMA mmap_size = 268435456");
  return db;
}

void Store::release_reader(std::unique_ptr<Connection> db) {
  if (!db) return;
  std::lock_guard lock(readers_mutex_);
  idle_readers_.push_back(std::move(db));
}

template <class F>
auto Store::with_reader(F&& f) -> decltype(f(std::declval<Connection&>())) {
  try {
    ReadLease lease(*this);
    return f(*lease);
  } catch (const StepError& e) {
    return to_error(e);
  } catch (const std::runtime_error& e) {  // a reader connection could not be opened
    Error err = Error::make(ErrorCode::busy, "The database is temporarily unavailable; retry later");
    err.internal = e.what();
    return err;
  }
}

Result<std::optional<VersionRecord>> Store::read(const std::string& type, const std::string& id) {
  return with_reader(
      [&](Connection& db) -> Result<std::optional<VersionRecord>> { return read_current(db, type, id); });
}

Result<std::optional<VersionRecord>> Store::vread(const std::string& type, const std::string& id,
                                                  std::int64_t version) {
  return with_reader([&](Connection& db) -> Result<std::optional<VersionRecord>> {
    auto stmt = db.prepare(
        "SELECT v.version, v.last_updated, v.method, v.body FROM resource r JOIN resource_version v "
        "ON v.rid = r.rid WHERE r.type = ? AND r.id = ? AND v.version = ?");
    stmt.bind(1, type).bind(2, id).bind(3, version);
    if (!stmt.step()) return std::optional<VersionRecord>();
    return std::optional<VersionRecord>(record_from(type, id, stmt, 0));
  });
}

Result<HistoryPage> Store::history(const std::string& type, const std::string& id, std::int64_t since_ms,
                                   int count, const std::string& cursor) {
  std::int64_t before_vid = std::numeric_limits<std::int64_t>::max();
  if (!cursor.empty()) {
    try {
      std::size_t used = 0;
      before_vid = std::stoll(cursor, &used);
      if (used != cursor.size()) throw std::invalid_argument("cursor");
    } catch (const std::exception&) {
      return Error::make(ErrorCode::invalid_input, "Invalid or expired paging cursor", "_cursor");
    }
  }
  return with_reader([&](Connection& db) -> Result<HistoryPage> {
    const std::string filter = id.empty() ? "v.type = ?1" : "r.type = ?1 AND r.id = ?2";
    const std::string from = " FROM resource_version v JOIN resource r ON r.rid = v.rid WHERE " + filter +
                             " AND v.last_updated >= ?3";
    HistoryPage page;
    {
      auto stmt = db.prepare("SELECT count(*)" + from);
      stmt.bind(1, type).bind(2, id).bind(3, since_ms);
      stmt.step();
      page.total = stmt.int64(0);
    }
    auto stmt = db.prepare("SELECT v.vid, r.id, v.version, v.last_updated, v.method, v.body" + from +
                           " AND v.vid < ?4 ORDER BY v.vid DESC LIMIT ?5");
    stmt.bind(1, type).bind(2, id).bind(3, since_ms).bind(4, before_vid).bind(5, count + 1);
    std::int64_t last_vid = 0;
    while (stmt.step()) {
      if (static_cast<int>(page.versions.size()) == count) {
        page.next_cursor = std::to_string(last_vid);
        break;
      }
      last_vid = stmt.int64(0);
      page.versions.push_back(record_from(type, std::string(stmt.text(1)), stmt, 2));
    }
    return page;
  });
}

Result<SearchPage> Store::search(const fhir::SearchQuery& query, const Visibility& visible) {
  std::optional<Cursor> cursor;
  if (!query.cursor.empty()) {
    auto decoded = decode_cursor(query.cursor, query.sort.size());
    if (!decoded) return std::move(decoded).error();
    cursor = std::move(*decoded);
  }
  return with_reader([&](Connection& db) -> Result<SearchPage> {
    SearchPage page;
    const int sort_columns = static_cast<int>(query.sort.size());
    auto record_of = [&](Statement& stmt) {
      VersionRecord rec;
      rec.type = query.resource_type;
      rec.id = std::string(stmt.text(1));
      rec.body = std::string(stmt.text(2));
      return rec;
    };
    if (query.total_accurate || query.summary_count) {
      if (!visible) {
        SqlQuery q = build_count_query(query, *keys_);
        auto stmt = db.prepare(q.sql);
        bind_all(stmt, q.binds);
        stmt.step();
        page.total = stmt.int64(0);
      } else {
        // Only what the caller may see counts: every match is looked at.
        fhir::SearchQuery all = query;
        all.sort.clear();
        SqlQuery q = build_page_query(all, *keys_, nullptr, std::numeric_limits<int>::max());
        auto stmt = db.prepare(q.sql);
        bind_all(stmt, q.binds);
        std::int64_t total = 0;
        while (stmt.step())
          if (visible(record_of(stmt))) ++total;
        page.total = total;
      }
    }
    if (query.summary_count || query.count == 0) return page;

    // Rows are read in batches from the position reached; invisible ones are skipped, so a page is full
    // whenever enough visible rows exist, and each cursor is the position of a row that was returned.
    std::vector<Cursor> positions;
    bool more = false;
    std::optional<Cursor> from = cursor;
    const int batch = visible ? std::max(2 * (query.count + 1), 64) : query.count + 1;
    for (bool exhausted = false; !exhausted && !more;) {
      SqlQuery q = build_page_query(query, *keys_, from ? &*from : nullptr, batch);
      auto stmt = db.prepare(q.sql);
      bind_all(stmt, q.binds);
      int rows = 0;
      while (stmt.step()) {
        ++rows;
        Cursor pos;
        pos.backward = cursor && cursor->backward;
        pos.rid = stmt.int64(0);
        for (int i = 0; i < sort_columns; ++i) {
          if (stmt.is_integer(3 + i))
            pos.sort_values.emplace_back(stmt.int64(3 + i));
          else
            pos.sort_values.emplace_back(std::string(stmt.text(3 + i)));
        }
        VersionRecord rec = record_of(stmt);
        const bool shown = !visible || visible(rec);
        from = pos;
        if (!shown) continue;
        if (static_cast<int>(page.matches.size()) == query.count) {
          more = true;
          break;
        }
        page.matches.push_back(std::move(rec));
        positions.push_back(std::move(pos));
      }
      exhausted = rows < batch;
    }
    const bool backward = cursor && cursor->backward;
    if (backward) {
      std::reverse(page.matches.begin(), page.matches.end());
      std::reverse(positions.begin(), positions.end());
    }
    if (!positions.empty()) {
      // Forward pages have a next page when a row was left over and a previous one when they came from
      // a cursor; backward pages mirror that.
      if (more || backward) {
        Cursor next = positions.back();
        next.backward = false;
        page.next_cursor = encode_cursor(next);
      }
      if ((cursor && !backward) || (backward && more)) {
        Cursor previous = positions.front();
        previous.backward = true;
        page.previous_cursor = encode_cursor(previous);
      }
    }
    return page;
  });
}

Result<std::vector<std::pair<std::int64_t, std::string>>> Store::referencing(const std::string& type,
                                                                             const std::string& param,
                                                                             const std::string& target_type,
                                                                             const std::string& target_id) {
  const fhir::SearchParamDef* def = registry_.find(type, param);
  if (!def || def->type != fhir::SearchParamType::reference)
    return Error::make(ErrorCode::internal, type + "." + param + " is not an indexed reference parameter");
  const std::int64_t key = keys_->of(*def);
  return with_reader([&](Connection& db) -> Result<std::vector<std::pair<std::int64_t, std::string>>> {
    auto stmt = db.prepare(
        "SELECT v.vid, v.body FROM idx_reference i JOIN resource r ON r.rid = i.rid "
        "JOIN resource_version v ON v.vid = r.vid "
        "WHERE i.param = ? AND i.target_id = ? AND i.target_type = ? AND r.deleted = 0");
    stmt.bind(1, key).bind(2, target_id).bind(3, target_type);
    std::vector<std::pair<std::int64_t, std::string>> rows;
    while (stmt.step()) rows.emplace_back(stmt.int64(0), std::string(stmt.text(1)));
    return rows;
  });
}

Result<std::vector<InboundMessage>> Store::inbound_problems(int limit) {
  return with_reader([limit](Connection& db) -> Result<std::vector<InboundMessage>> {
    auto stmt = db.prepare(
        "SELECT mid, received, partner, channel, format, sender, control_id, message_type, status, detail, "
        "body FROM inbound_message WHERE status <> 'applied' ORDER BY mid DESC LIMIT ?");
    stmt.bind(1, std::int64_t{limit});
    std::vector<InboundMessage> out;
    while (stmt.step()) {
      InboundMessage m;
      m.mid = stmt.int64(0);
      m.received_ms = stmt.int64(1);
      m.partner = std::string(stmt.text(2));
      m.channel = std::string(stmt.text(3));
      m.format = std::string(stmt.text(4));
      m.sender = std::string(stmt.text(5));
      m.control_id = std::string(stmt.text(6));
      m.message_type = std::string(stmt.text(7));
      m.status = std::string(stmt.text(8));
      m.detail = std::string(stmt.text(9));
      m.body = std::string(stmt.text(10));
      out.push_back(std::move(m));
    }
    return out;
  });
}

Result<std::vector<Delivery>> Store::deliveries(const DeliveryQuery& query) {
  return with_reader(
      [&](Connection& db) -> Result<std::vector<Delivery>> { return store::list_deliveries(db, query); });
}

Result<std::vector<Store::Queue>> Store::queues() {
  return with_reader([&](Connection& db) -> Result<std::vector<Queue>> {
    auto stmt = db.prepare(
        "SELECT destination, count(*), min(created) FROM delivery WHERE status = 'pending' GROUP BY "
        "destination "
        "ORDER BY destination");
    std::vector<Queue> out;
    while (stmt.step()) out.push_back({std::string(stmt.text(0)), stmt.int64(1), stmt.int64(2)});
    return out;
  });
}

Result<std::vector<JournalEntry>> Store::journal(const JournalQuery& query) {
  return with_reader(
      [&](Connection& db) -> Result<std::vector<JournalEntry>> { return store::list_journal(db, query); });
}

Result<std::optional<JournalEntry>> Store::journal_entry(std::int64_t id) {
  return with_reader(
      [&](Connection& db) -> Result<std::optional<JournalEntry>> { return store::read_journal(db, id); });
}

Result<JournalCounts> Store::journal_counts(std::int64_t from_ms, std::int64_t bucket_ms, int buckets) {
  return with_reader([&](Connection& db) -> Result<JournalCounts> {
    return store::count_journal(db, from_ms, bucket_ms, buckets);
  });
}

Result<std::vector<AuditRecord>> Store::audits_with_correlation(const std::string& correlation_id,
                                                                std::int64_t since_ms, int limit) {
  return with_reader([&](Connection& db) -> Result<std::vector<AuditRecord>> {
    return store::audits_with_correlation(db, correlation_id, since_ms, limit);
  });
}

Result<std::vector<Delivery>> Store::due_deliveries(const std::string& destination, std::int64_t now_ms,
                                                    int limit) {
  return with_reader([&](Connection& db) -> Result<std::vector<Delivery>> {
    return store::due_deliveries(db, destination, now_ms, limit);
  });
}

void Store::set_write_listener(const WriteListener* listener) {
  writer_->set_write_listener(listener);
}

Result<std::vector<AuditRecord>> Store::search_audit(const AuditQuery& query) {
  return with_reader(
      [&](Connection& db) -> Result<std::vector<AuditRecord>> { return store::search_audit(db, query); });
}

Result<std::optional<AuditRecord>> Store::read_audit(std::int64_t seq) {
  return with_reader(
      [&](Connection& db) -> Result<std::optional<AuditRecord>> { return store::read_audit(db, seq); });
}

Result<ChainCheck> Store::verify_audit(const DeriveColumns& derive) {
  return with_reader(
      [&](Connection& db) -> Result<ChainCheck> { return verify_audit_chain(db, audit_key_, derive); });
}

Result<std::optional<std::string>> Store::meta(const std::string& key) {
  return with_reader([&](Connection& db) -> Result<std::optional<std::string>> {
    auto stmt = db.prepare("SELECT value FROM store_meta WHERE key = ?");
    stmt.bind(1, key);
    if (!stmt.step()) return std::optional<std::string>();
    return std::optional<std::string>(std::string(stmt.text(0)));
  });
}

Result<std::optional<Credential>> Store::credential(const std::string& token_id) {
  return with_reader([&](Connection& db) -> Result<std::optional<Credential>> {
    auto stmt = db.prepare("SELECT holder, salt, hash, created FROM credential WHERE token_id = ?");
    stmt.bind(1, token_id);
    if (!stmt.step()) return std::optional<Credential>();
    return std::optional<Credential>(Credential{token_id, std::string(stmt.text(0)),
                                                std::string(stmt.text(1)), std::string(stmt.text(2)),
                                                stmt.int64(3)});
  });
}

Status Store::ping() {
  return with_reader([](Connection& db) -> Status {
    auto stmt = db.prepare("SELECT count(*) FROM sqlite_master");
    stmt.step();
    return Ok{};
  });
}

}  // namespace fhirgate::gateway::store
