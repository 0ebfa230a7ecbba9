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
#include "gateway/store/audit_file.hpp"
#include "gateway/store/held.hpp"
#include "gateway/store/index_rows.hpp"
#include "gateway/store/journal.hpp"
#include "gateway/store/param_keys.hpp"
#include "gateway/store/schema.hpp"
#include "gateway/store/search_sql.hpp"
#include "gateway/store/sqlite.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway::store {
namespace {

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
    db.exec(kSchemaMigrations[v]);
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

std::optional<VersionRecord> read_version(Connection& db, const std::string& type, const std::string& id,
                                          std::int64_t version) {
  auto stmt = db.prepare(
      "SELECT v.version, v.last_updated, v.method, v.body FROM resource r JOIN resource_version v "
      "ON v.rid = r.rid WHERE r.type = ? AND r.id = ? AND v.version = ?");
  stmt.bind(1, type).bind(2, id).bind(3, version);
  if (!stmt.step()) return std::nullopt;
  return record_from(type, id, stmt, 0);
}

// The live resources of `type` whose reference parameter `param` points at target_type/target_id: each
// one's current version row id and JSON. Throws StepError (std::invalid_argument for a parameter that is
// not an indexed reference: a programming error).
std::vector<std::pair<std::int64_t, std::string>> referencing_on(
    Connection& db, const fhir::SearchParamRegistry& registry, const ParamKeys& keys, const std::string& type,
    const std::string& param, const std::string& target_type, const std::string& target_id) {
  const fhir::SearchParamDef* def = registry.find(type, param);
  if (!def || def->type != fhir::SearchParamType::reference)
    throw std::invalid_argument(type + "." + param + " is not an indexed reference parameter");
  auto stmt = db.prepare(
      "SELECT v.vid, v.body FROM idx_reference i JOIN resource r ON r.rid = i.rid "
      "JOIN resource_version v ON v.vid = r.vid "
      "WHERE i.param = ? AND i.target_id = ? AND i.target_type = ? AND r.deleted = 0");
  stmt.bind(1, keys.of(*def)).bind(2, target_id).bind(3, target_type);
  std::vector<std::pair<std::int64_t, std::string>> rows;
  while (stmt.step()) rows.emplace_back(stmt.int64(0), std::string(stmt.text(1)));
  return rows;
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

std::optional<VersionRecord> WriteTxn::vread(const std::string& type, const std::string& id,
                                             std::int64_t version) {
  return read_version(db_, type, id, version);
}

std::vector<std::pair<std::int64_t, std::string>> WriteTxn::referencing(const std::string& type,
                                                                        const std::string& param,
                                                                        const std::string& target_type,
                                                                        const std::string& target_id) {
  return referencing_on(db_, registry_, keys_, type, param, target_type, target_id);
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
  return rec;
}

std::optional<AppliedMessage> WriteTxn::applied_message(const std::string& partner, const std::string& sender,
                                                        const std::string& control_id) {
  auto stmt = db_.prepare(
      "SELECT detail, content_hash FROM inbound_message WHERE partner = ? AND sender = ? AND control_id = ? "
      "AND status = 'applied'");
  stmt.bind(1, partner).bind(2, sender).bind(3, control_id);
  if (!stmt.step()) return std::nullopt;
  return AppliedMessage{std::string(stmt.text(0)), std::string(stmt.text(1))};
}

void WriteTxn::log_inbound(const InboundMessage& m) {
  db_.prepare(
         "INSERT INTO inbound_message (received, partner, channel, format, sender, control_id, message_type, "
         "status, detail, body, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
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
      .bind(11, m.content_hash)
      .run();
}

void WriteTxn::set_meta(const std::string& key, const std::string& value) {
  db_.prepare("INSERT OR REPLACE INTO store_meta (key, value) VALUES (?, ?)")
      .bind(1, key)
      .bind(2, value)
      .run();
}

Status WriteTxn::nested(const std::function<Status(WriteTxn&)>& plan) {
  const std::size_t written_before = written_.size();
  const std::size_t deliveries_before = deliveries_caused_;
  const AuditTail tail_before = audit_tail_ ? *audit_tail_ : AuditTail{};
  db_.prepare("SAVEPOINT nested").run();
  Status status = plan(*this);
  if (!status) {
    db_.prepare("ROLLBACK TO nested").run();
    if (audit_tail_) *audit_tail_ = tail_before;
    written_.resize(written_before);
    deliveries_caused_ = deliveries_before;
  }
  db_.prepare("RELEASE nested").run();
  return status;
}

void WriteTxn::begin_plan() {
  if (audit_tail_) plan_tail_ = *audit_tail_;
  correlation_.clear();
  written_.clear();
  deliveries_caused_ = 0;
}

void WriteTxn::rolled_back() {
  if (audit_tail_) *audit_tail_ = plan_tail_;
}

void WriteTxn::append_journal(JournalEntry& entry) {
  store::append_journal(db_, entry);
}

void WriteTxn::advance_journal(std::int64_t id, JournalStatus status, const std::string& error,
                               double stage_ms) {
  store::advance_journal(db_, id, status, error, std::string(to_string(status)), stage_ms, now_ms_);
}

std::vector<JournalEntry> WriteTxn::journal(const JournalQuery& query) {
  return store::list_journal(db_, query);
}

std::int64_t WriteTxn::append_held(const HeldWrite& held) {
  HeldWrite h = held;
  if (h.created_ms == 0) h.created_ms = now_ms_;
  return store::append_held(db_, h);
}

std::optional<HeldWrite> WriteTxn::read_held(std::int64_t id) {
  return store::read_held(db_, id);
}

void WriteTxn::decide_held(std::int64_t id, const std::string& status, const std::string& by) {
  store::decide_held(db_, id, status, by, now_ms_);
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

void WriteTxn::update_delivery(const Delivery& delivery) {
  store::update_delivery(db_, delivery, now_ms_);
}

Result<Delivery> WriteTxn::act_on_delivery(std::int64_t id, bool retry) {
  return store::act_on_delivery(db_, id, retry, now_ms_);
}

AuditRecord WriteTxn::append_audit(AuditRecord record) {
  if (!audit_tail_)
    throw StepError{SQLITE_READONLY,
                    "the audit trail belongs to the fhirgate process serving this database; this one may not "
                    "append to it"};
  chain_audit(audit_key_, record, now_ms_, *audit_tail_);
  insert_audit(db_, record);
  audit_appended_ = true;
  return record;
}

void WriteTxn::finish() {
  if (audit_appended_) write_audit_head(db_, *audit_tail_);
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

Result<std::optional<VersionRecord>> last_live_before(std::int64_t version, const VersionLookup& vread) {
  for (std::int64_t v = version - 1; v >= 1; --v) {
    auto before = vread(v);
    if (!before || !*before || !(*before)->deleted) return before;
  }
  return std::optional<VersionRecord>();
}

std::array<unsigned char, 32> Store::derived_key(std::string_view purpose) const {
  // HMAC(audit key, label || purpose): a chained AuditEvent's input starts with a 32-byte digest, never
  // with this label, so no derived key is an audit chain value.
  return audit_key_.mac({"fhirgate derived key\n", purpose});
}

Store::Store(const std::string& path, const fhir::SearchParamRegistry& registry, std::string audit_key_path,
             WriterOptions writer_options, bool must_own)
    : database_lock_(std::make_unique<DatabaseLock>(path, must_own)), path_(path), registry_(registry) {
  auto db = std::make_unique<Connection>(path, Connection::Mode::read_write);
  try {
    configure_writer(*db);
    created_ = migrate(*db) == 0;
    keys_ = std::make_unique<ParamKeys>(map_param_keys(*db, registry));
    reindex_if_needed(*db, registry, *keys_);
    // The key goes with the database's real path, as its audit log files do: every path to it finds it.
    audit_key_ =
        open_audit_key(*db, audit_key_path.empty() ? real_database_path(path) + ".audit-key" : audit_key_path,
                       audit_log_paths(path), database_lock_->owned());
  } catch (const StepError& e) {
    throw std::runtime_error("cannot prepare database " + path + ": " + e.message);
  }
  writer_ = std::make_unique<Writer>(std::move(db), path, database_lock_->owned(), registry, *keys_,
                                     audit_key_, writer_options);
}

bool Store::owns_audit_log() const {
  return writer_->owns_audit_log();
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
    return read_version(db, type, id, version);
  });
}

Result<HistoryPage> Store::history(const std::string& type, const std::string& id, std::int64_t since_ms,
                                   int count, const std::string& cursor, const Visibility& visible) {
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
    if (!visible) {
      auto stmt = db.prepare("SELECT count(*)" + from);
      stmt.bind(1, type).bind(2, id).bind(3, since_ms);
      stmt.step();
      page.total = stmt.int64(0);
    } else {
      // Only what the caller may see counts: every version is looked at, up to a bound.
      auto stmt = db.prepare("SELECT r.id, v.version, v.last_updated, v.method, v.body" + from +
                             " ORDER BY v.vid DESC LIMIT ?4");
      stmt.bind(1, type).bind(2, id).bind(3, since_ms).bind(4, std::int64_t{kMaxCountedHistory + 1});
      std::int64_t total = 0, looked = 0;
      while (stmt.step()) {
        if (++looked > kMaxCountedHistory) break;
        auto shown = visible(record_from(type, std::string(stmt.text(0)), stmt, 1));
        if (!shown) return std::move(shown).error();
        total += *shown ? 1 : 0;
      }
      if (looked <= kMaxCountedHistory) page.total = total;
    }
    // Rows are read in batches from the position reached; versions the caller may not see are skipped,
    // so a page is full whenever enough visible versions exist.
    const int batch = visible ? std::max(2 * (count + 1), 64) : count + 1;
    std::int64_t from_vid = before_vid;
    std::int64_t last_vid = 0;
    for (bool exhausted = false; !exhausted;) {
      auto stmt = db.prepare("SELECT v.vid, r.id, v.version, v.last_updated, v.method, v.body" + from +
                             " AND v.vid < ?4 ORDER BY v.vid DESC LIMIT ?5");
      stmt.bind(1, type).bind(2, id).bind(3, since_ms).bind(4, from_vid).bind(5, std::int64_t{batch});
      int rows = 0;
      while (stmt.step()) {
        ++rows;
        from_vid = stmt.int64(0);
        VersionRecord rec = record_from(type, std::string(stmt.text(1)), stmt, 2);
        if (visible) {
          auto shown = visible(rec);
          if (!shown) return std::move(shown).error();
          if (!*shown) continue;
        }
        if (static_cast<int>(page.versions.size()) == count) {
          page.next_cursor = std::to_string(last_vid);
          return page;
        }
        last_vid = from_vid;
        page.versions.push_back(std::move(rec));
      }
      exhausted = rows < batch;
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
        while (stmt.step()) {
          auto shown = visible(record_of(stmt));
          if (!shown) return std::move(shown).error();
          total += *shown ? 1 : 0;
        }
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
        from = pos;
        if (visible) {
          auto shown = visible(rec);
          if (!shown) return std::move(shown).error();
          if (!*shown) continue;
        }
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
  return with_reader([&](Connection& db) -> Result<std::vector<std::pair<std::int64_t, std::string>>> {
    return referencing_on(db, registry_, *keys_, type, param, target_type, target_id);
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

// The audit queries below see the events still in the audit log file too (read-your-writes for the
// privacy officer): the writer's list of them is taken first, then the tables are read, so an event moved
// into the tables in between is found in one or both (and counted once).
namespace {

std::vector<AuditRecord> merged(std::vector<AuditRecord> rows, std::vector<AuditRecord> logged,
                                bool newest_first, std::size_t limit) {
  for (auto& r : logged) {
    const bool present =
        std::any_of(rows.begin(), rows.end(), [&](const AuditRecord& x) { return x.seq == r.seq; });
    if (!present) rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [&](const AuditRecord& a, const AuditRecord& b) {
    return newest_first ? a.seq > b.seq : a.seq < b.seq;
  });
  if (rows.size() > limit) rows.resize(limit);
  return rows;
}

}  // namespace

Result<std::vector<AuditRecord>> Store::audits_with_correlation(const std::string& correlation_id,
                                                                std::int64_t since_ms, int limit) {
  if (correlation_id.empty()) return std::vector<AuditRecord>();
  const std::string quoted = "\"" + correlation_id + "\"";
  auto logged = writer_->logged_audits([&](const AuditRecord& r) {
    return r.recorded_ms >= since_ms && r.body.find(quoted) != std::string::npos;
  });
  auto rows = with_reader([&](Connection& db) -> Result<std::vector<AuditRecord>> {
    return store::audits_with_correlation(db, correlation_id, since_ms, limit);
  });
  if (!rows) return rows;
  return merged(std::move(*rows), std::move(logged), false, static_cast<std::size_t>(std::max(limit, 0)));
}

Result<std::vector<Delivery>> Store::due_deliveries(const std::string& destination, std::int64_t now_ms,
                                                    int limit) {
  return with_reader([&](Connection& db) -> Result<std::vector<Delivery>> {
    return store::due_deliveries(db, destination, now_ms, limit);
  });
}

Result<std::vector<HeldWrite>> Store::held_writes(const std::string& status, int count,
                                                  std::int64_t before_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<HeldWrite>> {
    return store::list_held(db, status, count, before_id);
  });
}

Result<std::optional<HeldWrite>> Store::held_write(std::int64_t id) {
  return with_reader(
      [&](Connection& db) -> Result<std::optional<HeldWrite>> { return store::read_held(db, id); });
}

Result<std::vector<AuditRecord>> Store::search_audit(const AuditQuery& query) {
  auto logged = writer_->logged_audits([&](const AuditRecord& r) { return audit_matches(r, query); });
  auto rows = with_reader(
      [&](Connection& db) -> Result<std::vector<AuditRecord>> { return store::search_audit(db, query); });
  if (!rows) return rows;
  return merged(std::move(*rows), std::move(logged), true,
                static_cast<std::size_t>(std::max(query.count, 0)));
}

Result<std::int64_t> Store::count_audit(const AuditQuery& query) {
  // The file's events first: one moved into the table after this is found there (audit_log.hpp).
  const auto logged = writer_->logged_audits([&](const AuditRecord& r) { return audit_matches(r, query); });
  return with_reader(
      [&](Connection& db) -> Result<std::int64_t> { return store::count_audit(db, query, logged); });
}

Result<std::optional<AuditRecord>> Store::read_audit(std::int64_t seq) {
  auto logged = writer_->logged_audits([&](const AuditRecord& r) { return r.seq == seq; });
  auto row = with_reader(
      [&](Connection& db) -> Result<std::optional<AuditRecord>> { return store::read_audit(db, seq); });
  if (row && !*row && !logged.empty()) return std::optional<AuditRecord>(std::move(logged.front()));
  return row;
}

Result<ChainCheck> Store::verify_audit(const DeriveColumns& derive) {
  // The reader is taken before the tables' snapshot: from then on nothing leaves the file.
  std::optional<AuditLogReader> log;
  try {
    log.emplace(audit_log_paths(path_));
  } catch (const std::runtime_error& e) {
    return Error::make(ErrorCode::internal, e.what());
  }
  return with_reader([&](Connection& db) -> Result<ChainCheck> {
    return verify_audit_chain(db, audit_key_, derive, [&] { return log->read(); });
  });
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
