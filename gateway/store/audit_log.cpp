#include "gateway/store/audit_log.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "fhir/datetime.hpp"
#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

using Digest = std::array<unsigned char, 32>;

Digest chain_of(const AuditKey& key, const Digest& previous, std::int64_t seq, std::string_view body) {
  unsigned char seq_bytes[8];
  for (int i = 0; i < 8; ++i) seq_bytes[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(seq) >> (8 * i));
  std::string data;
  data.reserve(previous.size() + sizeof seq_bytes + body.size());
  data.append(reinterpret_cast<const char*>(previous.data()), previous.size());
  data.append(reinterpret_cast<const char*>(seq_bytes), sizeof seq_bytes);
  data.append(body);
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.bytes().data(), static_cast<int>(key.bytes().size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

Digest digest_from(std::string_view blob) {
  Digest d{};
  if (blob.size() == d.size()) std::memcpy(d.data(), blob.data(), d.size());
  return d;
}

std::string_view as_text(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

// The head: "<seq>" and the chain of the last row, kept in store_meta.
struct Head {
  std::int64_t seq = 0;
  Digest chain{};
};

Head read_head(Connection& db) {
  Head head;
  auto stmt = db.prepare("SELECT value FROM store_meta WHERE key = 'audit_head'");
  if (!stmt.step()) return head;
  const std::string_view v = stmt.text(0);
  const auto colon = v.find(':');
  if (colon == std::string_view::npos) return head;
  head.seq = std::stoll(std::string(v.substr(0, colon)));
  const std::string_view hex = v.substr(colon + 1);
  for (std::size_t i = 0; i < head.chain.size() && 2 * i + 1 < hex.size(); ++i)
    head.chain[i] = static_cast<unsigned char>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
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
  r.body = std::string(stmt.text(6));
  return r;
}

constexpr const char* kColumns = "e.seq, e.recorded, e.agent, e.entity, e.action, e.outcome, e.body";

}  // namespace

AuditKey AuditKey::load_or_create(const std::string& path) {
  AuditKey key;
  std::ifstream in(path, std::ios::binary);
  if (in) {
    in.read(reinterpret_cast<char*>(key.bytes_.data()), key.bytes_.size());
    if (in.gcount() != static_cast<std::streamsize>(key.bytes_.size()))
      throw std::runtime_error("audit key file " + path + " is not 32 bytes");
    return key;
  }
  if (RAND_bytes(key.bytes_.data(), static_cast<int>(key.bytes_.size())) != 1)
    throw std::runtime_error("cannot generate an audit key");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error("cannot create audit key file " + path + ": " + std::strerror(errno));
  const bool ok = ::write(fd, key.bytes_.data(), key.bytes_.size()) == static_cast<ssize_t>(key.bytes_.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write audit key file " + path);
  return key;
}

AuditRecord append_audit(Connection& db, const AuditKey& key, fhir::Node event, const AuditColumns& columns,
                         std::int64_t now_ms) {
  const Head head = read_head(db);
  AuditRecord rec;
  rec.seq = head.seq + 1;
  rec.recorded_ms = columns.recorded_ms ? columns.recorded_ms : now_ms;
  rec.columns = columns;
  // id and meta right after resourceType, as in every stored resource.
  fhir::Node meta = fhir::Node::object();
  meta.set("versionId", fhir::Node::string("1"));
  meta.set("lastUpdated", fhir::Node::string(fhir::format_instant(now_ms)));
  if (const fhir::Node* old = event.find("meta"); old && old->is_object())
    for (const auto& [k, v] : old->members())
      if (k != "versionId" && k != "lastUpdated") meta.set(k, v);
  event.erase("id");
  event.erase("meta");
  auto& members = event.members();
  std::vector<fhir::Node::Member> ordered;
  auto rest = members.begin();
  if (rest != members.end() && rest->first == "resourceType") ordered.push_back(std::move(*rest++));
  ordered.emplace_back("id", fhir::Node::string(std::to_string(rec.seq)));
  ordered.emplace_back("meta", std::move(meta));
  for (; rest != members.end(); ++rest) ordered.push_back(std::move(*rest));
  members = std::move(ordered);
  rec.body = fhir::write_json(event);

  const Digest chain = chain_of(key, head.chain, rec.seq, rec.body);
  db.prepare(
        "INSERT INTO audit_event (seq, recorded, agent, entity, action, outcome, body, chain) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, rec.seq)
      .bind(2, rec.recorded_ms)
      .bind(3, columns.agent)
      .bind(4, columns.entity)
      .bind(5, columns.action)
      .bind(6, columns.outcome)
      .bind(7, rec.body)
      .bind_blob(8, as_text(chain))
      .run();
  for (const auto& patient : columns.patients)
    db.prepare("INSERT OR IGNORE INTO audit_patient (patient, seq) VALUES (?, ?)").bind(1, patient).bind(2, rec.seq).run();
  write_head(db, rec.seq, chain);
  return rec;
}

std::vector<AuditRecord> search_audit(Connection& db, const AuditQuery& q) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM audit_event e";
  std::vector<std::string> texts;
  if (!q.patient.empty()) {
    sql += " JOIN audit_patient p ON p.seq = e.seq AND p.patient = ?";
    texts.push_back(q.patient);
  }
  sql += " WHERE e.seq < ?";
  std::vector<std::string> filters;
  auto text_clause = [&](const std::string& column, const std::string& value) {
    if (value.empty()) return;
    sql += " AND e." + column + " = ?";
    filters.push_back(value);
  };
  text_clause("agent", q.agent);
  text_clause("entity", q.entity);
  text_clause("action", q.action);
  text_clause("outcome", q.outcome);
  sql += " AND e.recorded BETWEEN ? AND ? ORDER BY e.seq DESC LIMIT ?";
  auto stmt = db.prepare(sql);
  int i = 1;
  for (const auto& t : texts) stmt.bind(i++, t);
  stmt.bind(i++, q.before_seq);
  for (const auto& t : filters) stmt.bind(i++, t);
  stmt.bind(i, q.from_ms);
  stmt.bind(i + 1, q.to_ms);
  stmt.bind(i + 2, std::int64_t{q.count});
  std::vector<AuditRecord> out;
  while (stmt.step()) out.push_back(record_from(stmt));
  return out;
}

std::optional<AuditRecord> read_audit(Connection& db, std::int64_t seq) {
  auto stmt = db.prepare(std::string("SELECT ") + kColumns + " FROM audit_event e WHERE e.seq = ?");
  stmt.bind(1, seq);
  if (!stmt.step()) return std::nullopt;
  return record_from(stmt);
}

ChainCheck verify_audit_chain(Connection& db, const AuditKey& key) {
  ChainCheck check;
  Digest previous{};
  std::int64_t expected = 1;
  auto stmt = db.prepare("SELECT seq, body, chain FROM audit_event ORDER BY seq");
  while (stmt.step()) {
    const std::int64_t seq = stmt.int64(0);
    ++check.rows;
    if (seq != expected) {
      check.intact = false;
      check.first_bad_seq = expected;
      check.problem = seq > expected ? "row " + std::to_string(expected) +
                                           (seq - expected > 1 ? " to " + std::to_string(seq - 1) : std::string()) +
                                           " deleted"
                                     : "row " + std::to_string(seq) + " out of order (inserted)";
      return check;
    }
    const Digest stored = digest_from(stmt.text(2));
    const Digest computed = chain_of(key, previous, seq, stmt.text(1));
    if (CRYPTO_memcmp(stored.data(), computed.data(), stored.size()) != 0) {
      check.intact = false;
      check.first_bad_seq = seq;
      check.problem = "row " + std::to_string(seq) + " changed or inserted (its chain does not match)";
      return check;
    }
    previous = stored;
    ++expected;
  }
  const Head head = read_head(db);
  if (head.seq != expected - 1 ||
      (head.seq > 0 && CRYPTO_memcmp(head.chain.data(), previous.data(), previous.size()) != 0)) {
    check.intact = false;
    check.first_bad_seq = expected;
    check.problem = head.seq > expected - 1 ? "rows " + std::to_string(expected) + " to " +
                                                  std::to_string(head.seq) + " deleted (the chain head is " +
                                                  std::to_string(head.seq) + ")"
                                            : "the chain head does not match the last row";
  }
  return check;
}

}  // namespace fhirgate::gateway::store
