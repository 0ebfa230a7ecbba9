#include "gateway/store/audit_log.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "fhir/datetime.hpp"
#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

using Digest = std::array<unsigned char, 32>;

void append_le64(std::string& out, std::int64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>(static_cast<std::uint64_t>(v) >> (8 * i));
}

std::string_view as_text(const Digest& d);

Digest chain_of(const AuditKey& key, const Digest& previous, const AuditRecord& r) {
  std::string numbers;
  append_le64(numbers, r.seq);
  append_le64(numbers, r.recorded_ms);
  return key.mac({as_text(previous), numbers, r.format, std::string_view("\0", 1), r.body});
}

Digest digest_from(std::string_view blob) {
  Digest d{};
  if (blob.size() == d.size()) std::memcpy(d.data(), blob.data(), d.size());
  return d;
}

std::string_view as_text(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

// The head: "<seq>:<chain hex>" of the newest event, kept in store_meta. Every database has one from its
// creation ("0:" while the trail is empty); `present` is false when it is missing or does not read.
struct Head {
  bool present = false;
  std::int64_t seq = 0;
  Digest chain{};
};

Head read_head(Connection& db) {
  Head head;
  auto stmt = db.prepare("SELECT value FROM store_meta WHERE key = 'audit_head'");
  if (!stmt.step()) return head;
  const std::string_view v = stmt.text(0);
  const auto colon = v.find(':');
  if (colon == std::string_view::npos || colon == 0) return head;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + colon, head.seq);
  if (ec != std::errc() || end != v.data() + colon || head.seq < 0) return Head{};
  const std::string_view hex = v.substr(colon + 1);
  if (hex.size() != 2 * head.chain.size() && !(head.seq == 0 && hex.empty())) return Head{};
  for (std::size_t i = 0; 2 * i + 1 < hex.size(); ++i) {
    unsigned value = 0;
    const auto [at, bad] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, value, 16);
    if (bad != std::errc() || at != hex.data() + 2 * i + 2) return Head{};
    head.chain[i] = static_cast<unsigned char>(value);
  }
  head.present = true;
  return head;
}

void write_head(Connection& db, std::int64_t seq, const Digest& chain) {
  static const char* kHex = "0123456789abcdef";
  std::string value = std::to_string(seq) + ":";
  for (unsigned char c : chain) {
    value += kHex[c >> 4];
    value += kHex[c & 15];
  }
  db.prepare("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('audit_head', ?)").bind(1, value).run();
}

AuditRecord record_from(Statement& stmt) {
  AuditRecord r;
  r.seq = stmt.int64(0);
  r.recorded_ms = stmt.int64(1);
  r.columns.agent = std::string(stmt.text(2));
  r.columns.entity = std::string(stmt.text(3));
  r.columns.action = std::string(stmt.text(4));
  r.columns.outcome = std::string(stmt.text(5));
  r.format = std::string(stmt.text(6));
  r.body = std::string(stmt.text(7));
  return r;
}

constexpr const char* kColumns =
    "e.seq, e.recorded, e.agent, e.entity, e.action, e.outcome, e.format, e.body";

bool has_patient_row(Connection& db, const std::string& patient, std::int64_t seq) {
  return db.prepare("SELECT 1 FROM audit_patient WHERE patient = ? AND seq = ?")
      .bind(1, patient)
      .bind(2, seq)
      .step();
}

std::int64_t count_patient_rows(Connection& db) {
  auto stmt = db.prepare("SELECT count(*) FROM audit_patient");
  return stmt.step() ? stmt.int64(0) : 0;
}

// The columns an AuditQuery may ask to equal a value, and the value (empty: any).
std::array<std::pair<const char*, const std::string*>, 4> equal_columns(const AuditQuery& q) {
  return {{{"agent", &q.agent}, {"entity", &q.entity}, {"action", &q.action}, {"outcome", &q.outcome}}};
}

// " FROM ... WHERE ..." selecting the rows of `q` (its count aside), with a parameter per criterion that
// bind_audit_filter binds, from index 1; it returns the next index.
std::string audit_filter_sql(const AuditQuery& q) {
  std::string sql = " FROM audit_event e";
  if (!q.patient.empty()) sql += " JOIN audit_patient p ON p.seq = e.seq AND p.patient = ?";
  sql += " WHERE e.seq < ?";
  for (const auto& [column, value] : equal_columns(q))
    if (!value->empty()) sql += std::string(" AND e.") + column + " = ?";
  return sql + " AND e.recorded BETWEEN ? AND ?";
}

int bind_audit_filter(Statement& stmt, const AuditQuery& q) {
  int i = 1;
  if (!q.patient.empty()) stmt.bind(i++, q.patient);
  stmt.bind(i++, q.before_seq);
  for (const auto& [column, value] : equal_columns(q))
    if (!value->empty()) stmt.bind(i++, *value);
  stmt.bind(i++, q.from_ms);
  stmt.bind(i++, q.to_ms);
  return i;
}

}  // namespace

std::optional<AuditKey> AuditKey::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return std::nullopt;
    throw std::runtime_error("cannot read the audit key file " + path);
  }
  AuditKey key;
  in.read(reinterpret_cast<char*>(key.bytes_.data()), key.bytes_.size());
  if (in.gcount() != static_cast<std::streamsize>(key.bytes_.size()) || in.peek() != EOF)
    throw std::runtime_error("audit key file " + path + " is not 32 bytes");
  key.precompute();
  return key;
}

AuditKey AuditKey::random() {
  AuditKey key;
  if (RAND_bytes(key.bytes_.data(), static_cast<int>(key.bytes_.size())) != 1)
    throw std::runtime_error("cannot generate an audit key");
  key.precompute();
  return key;
}

AuditKey AuditKey::load_or_create(const std::string& path) {
  if (auto loaded = load(path)) return std::move(*loaded);
  AuditKey key = random();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error("cannot create audit key file " + path + ": " + std::strerror(errno));
  const bool ok =
      ::write(fd, key.bytes_.data(), key.bytes_.size()) == static_cast<ssize_t>(key.bytes_.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write audit key file " + path);
  return key;
}

void AuditKey::precompute() {
  constexpr std::size_t kBlock = 64;  // SHA-256 block size; the 32-byte key is zero-padded to it
  auto pad_state = [&](unsigned char pad) {
    std::array<unsigned char, kBlock> block{};
    for (std::size_t i = 0; i < kBlock; ++i) block[i] = (i < bytes_.size() ? bytes_[i] : 0) ^ pad;
    std::shared_ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), block.data(), block.size()) != 1)
      throw std::runtime_error("cannot initialise SHA-256 for the audit key");
    return ctx;
  };
  inner_ = pad_state(0x36);
  outer_ = pad_state(0x5c);
}

AuditKey::Digest AuditKey::mac(std::initializer_list<std::string_view> parts) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  Digest inner{}, out{};
  unsigned int len = 0;
  bool ok = ctx && EVP_MD_CTX_copy_ex(ctx.get(), inner_.get()) == 1;
  for (auto part : parts) ok = ok && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx.get(), inner.data(), &len) == 1 &&
       EVP_MD_CTX_copy_ex(ctx.get(), outer_.get()) == 1 &&
       EVP_DigestUpdate(ctx.get(), inner.data(), inner.size()) == 1 &&
       EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1;
  if (!ok) throw std::runtime_error("HMAC-SHA256 failed");
  return out;
}

AuditTail read_audit_head(Connection& db) {
  const Head head = read_head(db);
  if (!head.present)
    throw std::runtime_error(
        "the audit trail's head is missing or does not read (it, and perhaps the newest events, were "
        "deleted or changed behind the gateway's back); run fhirgate audit verify");
  AuditTail tail{head.seq, head.chain};
  // The spool's events moved without their head (a crash between the two): the last row.
  auto stmt = db.prepare("SELECT seq, chain FROM audit_event ORDER BY seq DESC LIMIT 1");
  if (stmt.step() && stmt.int64(0) > tail.seq) {
    tail.seq = stmt.int64(0);
    tail.chain = digest_from(stmt.text(1));
  }
  return tail;
}

void write_audit_head(Connection& db, const AuditTail& tail) {
  write_head(db, tail.seq, tail.chain);
}

void advance_audit_head(Connection& db, const AuditTail& tail) {
  if (read_head(db).seq < tail.seq) write_head(db, tail.seq, tail.chain);
}

void chain_audit(const AuditKey& key, AuditRecord& rec, std::int64_t now_ms, AuditTail& tail) {
  rec.seq = tail.seq + 1;
  if (rec.recorded_ms == 0) rec.recorded_ms = now_ms;
  rec.chain = chain_of(key, tail.chain, rec);
  tail.seq = rec.seq;
  tail.chain = rec.chain;
}

AuditKey open_audit_key(Connection& db, const std::string& path, const std::vector<std::string>& log_paths,
                        bool owner) {
  auto newest = db.prepare(std::string("SELECT ") + kColumns +
                           ", e.chain FROM audit_event e ORDER BY e.seq DESC LIMIT 2");
  std::vector<AuditRecord> last;
  while (newest.step()) {
    last.push_back(record_from(newest));
    last.back().chain = digest_from(newest.text(8));
  }
  std::optional<AuditKey> key = AuditKey::load(path);
  if (!key && !owner) return AuditKey::random();  // it may not append AuditEvents: nothing is chained with it
  if (!key) {
    bool logged = false;
    for (const auto& log : log_paths) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(log, ec);
      logged = logged || (!ec && size > 0);
    }
    if (!last.empty() || read_head(db).seq > 0 || logged)
      throw std::runtime_error(
          "the audit key file " + path +
          " is missing, but the database has an audit trail chained with it: restore the "
          "key from the backup taken with the database (a new key would make every event "
          "look forged)");
    return AuditKey::load_or_create(path);
  }
  // The newest event's chain, from the one before it (or from nothing, for the first).
  if (!last.empty() && (last.size() == 2 ? last[1].seq == last[0].seq - 1 : last[0].seq == 1)) {
    const Digest previous = last.size() == 2 ? last[1].chain : Digest{};
    const Digest computed = chain_of(*key, previous, last[0]);
    if (CRYPTO_memcmp(computed.data(), last[0].chain.data(), computed.size()) != 0)
      throw std::runtime_error("the audit key file " + path + " does not match the audit trail (event " +
                               std::to_string(last[0].seq) +
                               "): another database's key, or a changed trail; run fhirgate audit verify");
  }
  return std::move(*key);
}

void insert_audit(Connection& db, const AuditRecord& rec, bool import) {
  static const std::string insert =
      "INSERT INTO audit_event (seq, recorded, agent, entity, action, outcome, format, body, chain) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
  static const std::string insert_or_ignore = "INSERT OR IGNORE" + insert.substr(6);
  db.prepare(import ? insert_or_ignore : insert)
      .bind(1, rec.seq)
      .bind(2, rec.recorded_ms)
      .bind(3, rec.columns.agent)
      .bind(4, rec.columns.entity)
      .bind(5, rec.columns.action)
      .bind(6, rec.columns.outcome)
      .bind(7, rec.format)
      .bind(8, rec.body)
      .bind_blob(9, as_text(rec.chain))
      .run();
  static const std::string insert_patient =
      "INSERT OR IGNORE INTO audit_patient (patient, seq) VALUES (?, ?)";
  for (const auto& patient : rec.columns.patients)
    db.prepare(insert_patient).bind(1, patient).bind(2, rec.seq).run();
}

bool audit_matches(const AuditRecord& r, const AuditQuery& q) {
  auto same = [](const std::string& wanted, const std::string& value) {
    return wanted.empty() || wanted == value;
  };
  return r.seq < q.before_seq && r.recorded_ms >= q.from_ms && r.recorded_ms <= q.to_ms &&
         same(q.agent, r.columns.agent) && same(q.entity, r.columns.entity) &&
         same(q.action, r.columns.action) && same(q.outcome, r.columns.outcome) &&
         (q.patient.empty() || std::find(r.columns.patients.begin(), r.columns.patients.end(), q.patient) !=
                                   r.columns.patients.end());
}

std::vector<AuditRecord> audits_with_correlation(Connection& db, const std::string& correlation_id,
                                                 std::int64_t since_ms, int limit) {
  std::vector<std::int64_t> seqs;
  if (correlation_id.empty()) return {};
  auto stmt = db.prepare("SELECT seq, recorded, instr(body, ?) > 0 FROM audit_event ORDER BY seq DESC");
  stmt.bind(1, "\"" + correlation_id + "\"");
  while (stmt.step() && stmt.int64(1) >= since_ms) {
    if (stmt.int64(2)) seqs.push_back(stmt.int64(0));
  }
  std::vector<AuditRecord> out;
  for (auto it = seqs.rbegin(); it != seqs.rend() && static_cast<int>(out.size()) < limit; ++it)
    if (auto row = read_audit(db, *it)) out.push_back(std::move(*row));
  return out;
}

std::vector<AuditRecord> search_audit(Connection& db, const AuditQuery& q) {
  auto stmt =
      db.prepare(std::string("SELECT ") + kColumns + audit_filter_sql(q) + " ORDER BY e.seq DESC LIMIT ?");
  stmt.bind(bind_audit_filter(stmt, q), std::int64_t{q.count});
  std::vector<AuditRecord> out;
  while (stmt.step()) out.push_back(record_from(stmt));
  return out;
}

std::int64_t count_audit(Connection& db, const AuditQuery& q, const std::vector<AuditRecord>& logged) {
  // One statement, so one snapshot: the rows `q` selects, less those of `logged` already among them.
  std::string logged_seqs = "[";
  for (const auto& r : logged) logged_seqs += (logged_seqs.size() > 1 ? "," : "") + std::to_string(r.seq);
  logged_seqs += ']';
  auto stmt =
      db.prepare("SELECT (SELECT count(*)" + audit_filter_sql(q) +
                 ") - (SELECT count(*) FROM audit_event WHERE seq IN (SELECT value FROM json_each(?)))");
  stmt.bind(bind_audit_filter(stmt, q), logged_seqs);
  return (stmt.step() ? stmt.int64(0) : 0) + static_cast<std::int64_t>(logged.size());
}

std::optional<AuditRecord> read_audit(Connection& db, std::int64_t seq) {
  auto stmt = db.prepare(std::string("SELECT ") + kColumns + " FROM audit_event e WHERE e.seq = ?");
  stmt.bind(1, seq);
  if (!stmt.step()) return std::nullopt;
  return record_from(stmt);
}

ChainCheck verify_audit_chain(Connection& db, const AuditKey& key, const DeriveColumns& derive,
                              const LoggedAudits& logged) {
  // One snapshot for every read below: rows the gateway commits meanwhile would otherwise look like rows
  // added behind its back (a patient row without its event, a head beyond the last row read).
  struct ReadSnapshot {
    Connection& db;
    explicit ReadSnapshot(Connection& c) : db(c) { db.exec("BEGIN"); }
    ~ReadSnapshot() {
      try {
        db.exec("COMMIT");
      } catch (...) {  // StepError too: a read-only transaction, nothing to lose (and no throw from here)
      }
    }
  } snapshot(db);
  const Head head = read_head(db);  // opens the snapshot; the log is read after it
  ChainCheck check;
  if (!head.present) {
    check.intact = false;
    check.first_bad_seq = 1;
    check.problem =
        "the chain head is missing or does not read: it (and perhaps every event after some point) was "
        "deleted or changed";
    return check;
  }
  std::vector<AuditRecord> log;
  try {
    if (logged) log = logged();
  } catch (const std::runtime_error& e) {  // a damaged audit log file
    check.intact = false;
    check.problem = e.what();
    return check;
  }
  Digest previous{};
  std::int64_t expected = 1;
  bool head_seen = head.seq == 0;
  auto fail = [&](std::int64_t seq, std::string problem) {
    check.intact = false;
    check.first_bad_seq = seq;
    check.problem = std::move(problem);
    return check;
  };
  std::int64_t patient_rows = 0;
  // One event, in chain order: where it is (`in_table`), then seq, chain, columns and patient rows.
  auto next = [&](const AuditRecord& r, const Digest& stored, bool in_table) -> std::optional<ChainCheck> {
    const std::string what = (in_table ? "row " : "logged event ") + std::to_string(r.seq);
    ++check.rows;
    if (r.seq != expected) {
      if (r.seq < expected) return fail(r.seq, what + " out of order (inserted)");
      return fail(expected, "row " + std::to_string(expected) +
                                (r.seq - expected > 1 ? " to " + std::to_string(r.seq - 1) : std::string()) +
                                " deleted");
    }
    const Digest computed = chain_of(key, previous, r);
    if (CRYPTO_memcmp(stored.data(), computed.data(), stored.size()) != 0)
      return fail(r.seq, what + " changed or inserted (its chain does not match)");
    const auto derived = derive ? derive(r) : std::optional<AuditColumns>(r.columns);
    bool columns_match = derived && derived->agent == r.columns.agent &&
                         derived->entity == r.columns.entity && derived->action == r.columns.action &&
                         derived->outcome == r.columns.outcome;
    if (columns_match && derive && in_table) {
      for (const auto& patient : derived->patients) {
        columns_match = columns_match && has_patient_row(db, patient, r.seq);
        ++patient_rows;
      }
    } else if (columns_match && derive) {
      columns_match = derived->patients == r.columns.patients;
    }
    if (!columns_match) return fail(r.seq, what + " changed: its search columns or patients do not match it");
    if (r.seq == head.seq) {
      if (CRYPTO_memcmp(head.chain.data(), stored.data(), stored.size()) != 0)
        return fail(r.seq, "the chain head does not match " + what);
      head_seen = true;
    }
    previous = stored;
    ++expected;
    return std::nullopt;
  };
  std::size_t li = 0;
  auto stmt = db.prepare(std::string("SELECT ") + kColumns + ", e.chain FROM audit_event e ORDER BY e.seq");
  while (stmt.step()) {
    AuditRecord r = record_from(stmt);
    r.chain = digest_from(stmt.text(8));
    for (; li < log.size() && log[li].seq <= r.seq; ++li) {
      const AuditRecord& l = log[li];
      if (l.seq < r.seq) {
        if (auto failed = next(l, l.chain, false)) return *failed;
      } else if (l.chain != r.chain || l.body != r.body) {
        return fail(r.seq, "row " + std::to_string(r.seq) + " differs from its copy in the audit log file");
      }
    }
    if (auto failed = next(r, r.chain, true)) return *failed;
  }
  for (; li < log.size(); ++li)
    if (auto failed = next(log[li], log[li].chain, false)) return *failed;
  // Every derived patient row exists; any row beyond those was inserted behind the gateway's back.
  if (const std::int64_t stored_rows = derive ? count_patient_rows(db) : patient_rows;
      stored_rows != patient_rows) {
    std::int64_t first_bad = -1;
    auto rows = db.prepare("SELECT patient, seq FROM audit_patient");
    while (rows.step()) {
      const std::int64_t seq = rows.int64(1);
      if (first_bad != -1 && seq >= first_bad) continue;
      auto event = db.prepare(std::string("SELECT ") + kColumns + " FROM audit_event e WHERE e.seq = ?");
      event.bind(1, seq);
      const auto derived = event.step() ? derive(record_from(event)) : std::nullopt;
      const std::string patient(rows.text(0));
      if (!derived ||
          std::find(derived->patients.begin(), derived->patients.end(), patient) == derived->patients.end())
        first_bad = seq;
    }
    if (first_bad == -1)
      return fail(expected, "the access index holds " + std::to_string(stored_rows) +
                                " patient rows where the " + "events name " + std::to_string(patient_rows));
    return fail(first_bad, "row " + std::to_string(first_bad) + " changed: a patient was added to it");
  }
  // The head is the end of the chain at the last commit; events logged since may follow it.
  if (!head_seen)
    return fail(expected, "rows " + std::to_string(expected) + " to " + std::to_string(head.seq) +
                              " deleted (the chain head is " + std::to_string(head.seq) + ")");
  return check;
}

}  // namespace fhirgate::gateway::store
