// The store against a real SQLite database in a temporary folder.
#include "gateway/store/store.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "gateway/store/audit_file.hpp"
#include "gateway/store/journal.hpp"
#include "gateway/store/param_keys.hpp"
#include "gateway/store/search_sql.hpp"
#include "gateway/store/sqlite.hpp"
#include "gateway/store/writer.hpp"
#include "tests/support/paths.hpp"

namespace fhirgate::gateway::store {
namespace {

using testing::source_path;
using testing::temp_dir;

const fhir::SearchParamRegistry& registry() {
  static const fhir::SearchParamRegistry r = [] {
    auto text = fhir::read_file(source_path("profiles/r4/search-parameters.json.gz"));
    auto bundle = fhir::parse_json(*text);
    auto loaded = fhir::SearchParamRegistry::load(*bundle, {"Patient", "Consent", "AuditEvent"});
    return std::move(loaded).value();
  }();
  return r;
}

fhir::Node patient(const std::string& family) {
  return *fhir::parse_json(R"({"resourceType":"Patient","name":[{"family":")" + family + R"("}]})");
}

fhir::SearchQuery query(const std::string& q) {
  auto params = fhir::parse_query_string(q);
  return *fhir::parse_search(registry(), "Patient", *params, {});
}

TEST_CASE("put stamps id and meta, versions count up, and remove leaves a tombstone") {
  Store store(temp_dir() + "/s.db", registry());
  CHECK(store.created());
  Status s = store.writer().run([](WriteTxn& txn) -> Status {
    auto v1 = txn.put("Patient", "p1", patient("Alpha"), "POST");
    CHECK(v1.version == 1);
    CHECK(v1.body.rfind(R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":")",
                        0) == 0);
    auto v2 = txn.put("Patient", "p1", patient("Beta"), "PUT");
    CHECK(v2.version == 2);
    auto gone = txn.remove("Patient", "p1");
    REQUIRE(gone);
    CHECK(gone->version == 3);
    CHECK_FALSE(txn.remove("Patient", "p1"));  // already deleted
    return Ok{};
  });
  REQUIRE(s.ok());
  auto current = store.read("Patient", "p1");
  REQUIRE(current.ok());
  REQUIRE(current->has_value());
  CHECK((*current)->deleted);
  auto v1 = store.vread("Patient", "p1", 1);
  CHECK((*v1)->body.find("Alpha") != std::string::npos);
  auto history = store.history("Patient", "p1", INT64_MIN, 10, "");
  REQUIRE(history.ok());
  CHECK(history->total == 3);
  CHECK(history->versions.front().method == "DELETE");
  // Deleted resources leave the index.
  CHECK(store.search(query("family=beta"))->matches.empty());
}

TEST_CASE("an update replaces exactly the index rows that changed, in every index table") {
  Store store(temp_dir() + "/s.db", registry());
  auto put = [&](const std::string& json) {
    REQUIRE(store.writer()
                .run([&](WriteTxn& txn) -> Status {
                  txn.put("Patient", "p1", *fhir::parse_json(json), "PUT");
                  return Ok{};
                })
                .ok());
  };
  auto found = [&](const std::string& q) { return store.search(query(q))->matches.size(); };
  put(R"({"resourceType":"Patient","identifier":[{"system":"urn:a","value":"1"}],"name":[{"family":"Old","given":["Kept"]}],)"
      R"("birthDate":"1970-01-01","generalPractitioner":[{"reference":"Organization/o1"}]})");
  CHECK(found("family=old") == 1);
  put(R"({"resourceType":"Patient","identifier":[{"system":"urn:a","value":"2"}],"name":[{"family":"New","given":["Kept"]}],)"
      R"("birthDate":"1980-01-01","generalPractitioner":[{"reference":"Organization/o2"}]})");
  CHECK(found("family=old") == 0);  // string
  CHECK(found("family=new") == 1);
  CHECK(found("given=kept") == 1);          // unchanged rows stay
  CHECK(found("identifier=urn:a|1") == 0);  // token
  CHECK(found("identifier=urn:a|2") == 1);
  CHECK(found("birthdate=1970-01-01") == 0);  // date
  CHECK(found("birthdate=1980-01-01") == 1);
  CHECK(found("general-practitioner=Organization/o1") == 0);  // reference
  CHECK(found("general-practitioner=Organization/o2") == 1);
}

TEST_CASE("a failing plan is rolled back alone; the rest of its batch commits") {
  Store store(temp_dir() + "/s.db", registry());
  std::vector<std::promise<Status>> done(3);
  auto submit = [&](int i, WritePlan plan) {
    CHECK(store.writer()
              .submit(std::move(plan), [&done, i](Status st) { done[i].set_value(std::move(st)); })
              .ok());
  };
  submit(0, [](WriteTxn& txn) -> Status {
    txn.put("Patient", "ok1", patient("One"), "POST");
    return Ok{};
  });
  submit(1, [](WriteTxn& txn) -> Status {
    txn.put("Patient", "bad", patient("Half"), "POST");  // written, then the plan fails: must vanish
    return Error::make(ErrorCode::precondition_failed, "no");
  });
  submit(2, [](WriteTxn& txn) -> Status {
    txn.put("Patient", "ok2", patient("Two"), "POST");
    return Ok{};
  });
  CHECK(done[0].get_future().get().ok());
  CHECK(done[1].get_future().get().error().code == ErrorCode::precondition_failed);
  CHECK(done[2].get_future().get().ok());
  CHECK(store.read("Patient", "ok1")->has_value());
  CHECK(store.read("Patient", "ok2")->has_value());
  CHECK_FALSE(store.read("Patient", "bad")->has_value());
  CHECK(store.search(query("family=half"))->matches.empty());
}

TEST_CASE("a failing plan alone in its batch (no savepoint) leaves nothing, and the next plan commits") {
  Store store(temp_dir() + "/s.db", registry());
  // Writer::run waits for each plan, so every one is alone in its batch.
  const Status failed = store.writer().run([](WriteTxn& txn) -> Status {
    txn.put("Patient", "half", patient("Half"), "POST");
    txn.put("Patient", "half2", patient("Half"), "POST");
    return Error::make(ErrorCode::precondition_failed, "no");
  });
  CHECK(failed.error().code == ErrorCode::precondition_failed);
  CHECK_FALSE(store.read("Patient", "half")->has_value());
  CHECK(store.search(query("family=half"))->matches.empty());
  CHECK(store.writer()
            .run([](WriteTxn& txn) -> Status {
              txn.put("Patient", "whole", patient("Whole"), "POST");
              return Ok{};
            })
            .ok());
  CHECK(store.read("Patient", "whole")->has_value());
  CHECK(store.writer().stats().batches >= 2);
}

TEST_CASE("group commit: concurrent writers share transactions and every write is acknowledged") {
  Store store(temp_dir() + "/s.db", registry());
  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        Status s = store.writer().run([id](WriteTxn& txn) -> Status {
          txn.put("Patient", id, patient("Group"), "POST");
          return Ok{};
        });
        if (s.ok()) ++acknowledged;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(acknowledged == kThreads * kEach);
  const auto stats = store.writer().stats();
  CHECK(stats.plans == kThreads * kEach);
  CHECK(stats.batches < stats.plans);  // several plans per commit
  auto q = query("family=group&_summary=count");
  CHECK(*store.search(q)->total == kThreads * kEach);
}

TEST_CASE("a full queue answers busy at once instead of growing") {
  Store store(temp_dir() + "/s.db", registry());
  // A second writer over the same store's schema would be a second read-write connection; instead we
  // block the real writer with a plan that waits, then fill its queue. The plan holds its own copy of
  // the future: the writer may still be inside wait() when this scope's locals are destroyed.
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> started;
  CHECK(store.writer()
            .submit(
                [&started, released](WriteTxn&) -> Status {
                  started.set_value();
                  released.wait();
                  return Ok{};
                },
                [](Status) {})
            .ok());
  started.get_future().wait();
  int accepted = 0, busy = 0;
  for (int i = 0; i < 20000; ++i) {
    Status s = store.writer().submit([](WriteTxn&) -> Status { return Ok{}; }, [](Status) {});
    if (s.ok())
      ++accepted;
    else if (s.error().code == ErrorCode::busy)
      ++busy;
  }
  release.set_value();
  CHECK(accepted == 10000);  // the default bound
  CHECK(busy == 10000);
}

// The gateway sets its commit observer after start-up plans (seeding) ran: the writer used to read the
// observer after each batch's `done`, unsynchronized with the setter.
TEST_CASE("tsan: setting the commit observer after plans ran no longer races with the writer thread") {
  std::atomic<int> commits{0};
  Store store(temp_dir() + "/s.db", registry());
  auto put = [&store](const std::string& id) {
    return store.writer().run([id](WriteTxn& txn) -> Status {
      txn.put("Patient", id, patient("Observed"), "POST");
      return Ok{};
    });
  };
  REQUIRE(put("before").ok());
  store.writer().set_commit_observer([&commits](std::size_t plans, double) { commits += int(plans); });
  REQUIRE(put("after").ok());
  store.writer().stop();  // the observer runs after `done`: wait for the thread
  CHECK(commits == 1);
}

TEST_CASE("data and indexes survive reopening the database") {
  const std::string path = temp_dir() + "/s.db";
  {
    Store store(path, registry());
    REQUIRE(store.writer()
                .run([](WriteTxn& txn) -> Status {
                  txn.put("Patient", "keep", patient("Durable"), "POST");
                  return Ok{};
                })
                .ok());
  }
  Store reopened(path, registry());
  CHECK_FALSE(reopened.created());
  CHECK(reopened.read("Patient", "keep")->has_value());
  CHECK(reopened.search(query("family=durable"))->matches.size() == 1);
}

TEST_CASE("cursor paging walks every match exactly once in sort order") {
  Store store(temp_dir() + "/s.db", registry());
  REQUIRE(store.writer()
              .run([](WriteTxn& txn) -> Status {
                for (int i = 0; i < 25; ++i) {
                  auto p = *fhir::parse_json(
                      R"({"resourceType":"Patient","name":[{"family":"Page"}],"birthDate":")" +
                      std::to_string(1950 + (i * 7) % 25) + R"("})");
                  txn.put("Patient", "pg" + std::to_string(i), std::move(p), "POST");
                }
                return Ok{};
              })
              .ok());
  auto q = query("family=page&_sort=-birthdate&_count=4");
  std::vector<std::string> seen;
  for (int pages = 0; pages < 20; ++pages) {
    auto page = store.search(q);
    REQUIRE(page.ok());
    for (const auto& m : page->matches) seen.push_back(m.body.substr(m.body.find("birthDate") + 12, 4));
    if (page->next_cursor.empty()) break;
    q.cursor = page->next_cursor;
  }
  REQUIRE(seen.size() == 25);
  CHECK(std::is_sorted(seen.rbegin(), seen.rend()));
  q.cursor = "garbage!";
  CHECK(store.search(q).error().code == ErrorCode::invalid_input);
}

TEST_CASE("the audit key's MAC is standard HMAC-SHA256, so chains written before stay verifiable") {
  const std::string path = temp_dir() + "/audit.key";
  std::string key_bytes;
  for (int i = 0; i < 32; ++i) key_bytes += static_cast<char>(i * 7 + 1);
  {
    std::ofstream out(path, std::ios::binary);
    out << key_bytes;
  }
  const auto key = AuditKey::load_or_create(path);
  const std::string message = std::string("previous-chain") + '\0' + "record body";
  unsigned char expected[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_bytes.data(), 32, reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), expected, &len);
  const auto split = key.mac({"previous-", "chain", std::string_view("\0", 1), "record body"});
  CHECK(std::equal(split.begin(), split.end(), expected));
  CHECK(key.mac({"x"}) != split);
}

TEST_CASE("journal: entries follow their stages; payloads and then entries are purged by age") {
  Store store(temp_dir() + "/s.db", registry());
  auto append = [&](std::int64_t received, const std::string& partner, const std::string& direction) {
    JournalEntry e;
    e.correlation_id = "c-" + std::to_string(received);
    e.received_ms = received;
    e.partner = partner;
    e.direction = direction;
    e.transport = "http";
    e.format = "fhir-rest";
    e.type = "create Patient";
    e.status = JournalStatus::stored;
    e.stages = stages_json({{"received", 0.0}});
    e.has_payload = true;
    e.payload = "{}";
    REQUIRE(store.writer().run([&e](WriteTxn& txn) -> Status {
      txn.append_journal(e);
      return Ok{};
    }));
    return e.id;
  };
  const auto old = append(1000, "gp", "in");
  const auto middle = append(60000, "gp", "out");
  const auto recent = append(125000, "trust", "in");
  REQUIRE(store.writer().run([&](WriteTxn& txn) -> Status {
    txn.advance_journal(middle, JournalStatus::delivered, "", 12.5);
    return Ok{};
  }));
  const auto advanced = store.journal_entry(middle);
  REQUIRE((advanced && *advanced));
  CHECK((*advanced)->status == JournalStatus::delivered);
  CHECK((*advanced)->stages == R"([{"stage":"received","ms":0.0},{"stage":"delivered","ms":12.5}])");

  // Two buckets of a minute from 60 s: the old entry is outside; the rest fall in their minute.
  const auto counts = store.journal_counts(60000, 60000, 2);
  REQUIRE(counts);
  REQUIRE(counts->partners.size() == 2);
  CHECK(counts->partners[0].partner == "gp");
  CHECK(counts->partners[0].out == std::vector<std::int64_t>{1, 0});
  CHECK(counts->partners[1].in == std::vector<std::int64_t>{0, 1});

  REQUIRE(store.writer().run([](WriteTxn& txn) -> Status {
    txn.purge_journal(100000, 50000);  // payloads before 100 s, entries before 50 s
    return Ok{};
  }));
  CHECK_FALSE(*store.journal_entry(old));
  CHECK_FALSE((*store.journal_entry(middle))->has_payload);
  CHECK((*store.journal_entry(recent))->payload == "{}");
  JournalQuery q;
  q.after_id = middle;
  const auto newer = store.journal(q);
  REQUIRE(newer);
  REQUIRE(newer->size() == 1);
  CHECK(newer->front().id == recent);
}

TEST_CASE(
    "journal: every filter, alone and with others, finds exactly its entries, newest first, by an index") {
  const std::string path = temp_dir() + "/j.db";
  Store store(path, registry());
  const std::vector<std::string> partners = {"gp", "trust", "council"};
  const std::vector<JournalStatus> statuses = {JournalStatus::stored, JournalStatus::failed,
                                               JournalStatus::rejected, JournalStatus::delivered,
                                               JournalStatus::dead_letter};
  const std::vector<std::string> types = {"ADT^A01", "create Patient", "transaction"};
  std::vector<JournalEntry> all;
  REQUIRE(store.writer().run([&](WriteTxn& txn) -> Status {
    for (int i = 0; i < 120; ++i) {
      JournalEntry e;
      e.correlation_id = "c-" + std::to_string(i % 40);
      e.received_ms = 1000 * (i + 1);
      e.partner = partners[static_cast<std::size_t>(i) % 3];
      e.direction = i % 4 == 0 ? "out" : "in";
      e.transport = "mllp";
      e.format = "hl7v2";
      e.type = types[static_cast<std::size_t>(i / 3) % 3];
      e.status = statuses[static_cast<std::size_t>(i / 2) % 5];
      txn.append_journal(e);
      all.push_back(e);
    }
    return Ok{};
  }));
  auto expected = [&](const JournalQuery& q) {
    std::vector<std::int64_t> ids;
    for (const auto& e : all) {
      const bool problem = e.status == JournalStatus::rejected || e.status == JournalStatus::failed ||
                           e.status == JournalStatus::dead_letter;
      if (e.id > q.after_id && e.id < q.before_id && e.received_ms >= q.since_ms &&
          e.received_ms <= q.until_ms && (q.partner.empty() || e.partner == q.partner) &&
          (q.direction.empty() || e.direction == q.direction) && (!q.status || e.status == *q.status) &&
          (q.type.empty() || e.type == q.type) &&
          (q.correlation.empty() || e.correlation_id == q.correlation) && (!q.problems || problem))
        ids.push_back(e.id);
    }
    std::reverse(ids.begin(), ids.end());                                  // newest first
    if (q.after_id > 0 && ids.size() > static_cast<std::size_t>(q.count))  // the oldest after the cursor
      ids.erase(ids.begin(), ids.end() - q.count);
    if (ids.size() > static_cast<std::size_t>(q.count)) ids.resize(static_cast<std::size_t>(q.count));
    return ids;
  };
  Connection plans(path, Connection::Mode::read_only);
  auto plan_of = [&](const JournalQuery& q) {
    std::string plan;
    auto stmt = plans.prepare("EXPLAIN QUERY PLAN " + journal_list_sql(q));
    while (stmt.step()) plan += std::string(stmt.text(3)) + "\n";
    return plan;
  };
  struct Case {
    std::string name;
    JournalQuery query;
    const char* index;  // the index its plan must use
  };
  auto with = [](auto set) {
    JournalQuery q;
    q.count = 7;
    set(q);
    return q;
  };
  const std::vector<Case> cases = {
      {"none", with([](JournalQuery&) {}), "PRIMARY KEY"},
      {"partner", with([](JournalQuery& q) { q.partner = "trust"; }), "journal_partner"},
      {"status", with([](JournalQuery& q) { q.status = JournalStatus::failed; }), "journal_status"},
      {"type", with([](JournalQuery& q) { q.type = "transaction"; }), "journal_type"},
      {"correlation", with([](JournalQuery& q) { q.correlation = "c-7"; }), "journal_correlation"},
      {"problems", with([](JournalQuery& q) { q.problems = true; }), "journal_problems"},
      {"problems of a partner", with([](JournalQuery& q) {
         q.problems = true;
         q.partner = "gp";
       }),
       "journal_problems"},
      {"direction and status", with([](JournalQuery& q) {
         q.direction = "out";
         q.status = JournalStatus::delivered;
       }),
       "journal_status"},
      {"partner, type and a time window", with([](JournalQuery& q) {
         q.partner = "council";
         q.type = "ADT^A01";
         q.since_ms = 20000;
         q.until_ms = 90000;
       }),
       "journal_"},
      {"a page before an id", with([](JournalQuery& q) {
         q.status = JournalStatus::stored;
         q.before_id = 60;
       }),
       "journal_status"},
      {"a page after an id", with([](JournalQuery& q) {
         q.partner = "gp";
         q.after_id = 30;
       }),
       "journal_partner"},
      {"nothing matches", with([](JournalQuery& q) {
         q.partner = "gp";
         q.correlation = "c-1";  // c-1 entries are 1, 41, 81: never a multiple of 3
       }),
       "journal_"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const auto got = store.journal(c.query);
    REQUIRE(got);
    std::vector<std::int64_t> ids;
    for (const auto& e : *got) ids.push_back(e.id);
    CHECK(ids == expected(c.query));
    const std::string plan = plan_of(c.query);
    CAPTURE(plan);
    CHECK(plan.find(c.index) != std::string::npos);
    CHECK(plan.find("SCAN journal") == std::string::npos);  // never the whole journal
  }
}

TEST_CASE("derived keys: the same from the same key file, one per purpose, none the audit key") {
  const std::string dir = temp_dir();
  const std::string key_file = dir + "/shared.audit-key";
  Store a(dir + "/a.db", registry(), key_file);
  Store b(dir + "/b.db", registry(), key_file);
  Store c(dir + "/c.db", registry());
  CHECK(a.derived_key("paging cursors") == b.derived_key("paging cursors"));
  CHECK(a.derived_key("paging cursors") != a.derived_key("something else"));
  CHECK(a.derived_key("paging cursors") != c.derived_key("paging cursors"));
  const auto text = fhir::read_file(key_file);
  REQUIRE(text);
  const auto derived = a.derived_key("paging cursors");
  CHECK(std::string(derived.begin(), derived.end()) != *text);
}

TEST_CASE(
    "a search for several values looks each one up in the index (the identity rule runs on every write)") {
  const std::string path = temp_dir() + "/plans.db";
  { Store store(path, registry()); }
  Connection db(path, Connection::Mode::read_only);
  const ParamKeys keys(std::vector<std::int64_t>(registry().all().size(), 1));
  for (const char* search :
       {"identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009,https://example.org/mrn|M1",
        "identifier=a|1,b|2,c|3&family=Smith,Jones", "family=Smith,Jones"}) {
    CAPTURE(std::string(search));
    const SqlQuery q = build_page_query(query(search), keys, nullptr, 20);
    auto stmt = db.prepare("EXPLAIN QUERY PLAN " + q.sql);
    std::string plan;
    while (stmt.step()) plan += std::string(stmt.text(3)) + "\n";
    CAPTURE(plan);
    CHECK(plan.find("(param=?)") == std::string::npos);  // never every value of a parameter
    CHECK(plan.find("SCAN idx_") == std::string::npos);
  }
}

TEST_CASE("audit verify reads one snapshot: events committed while it runs are not taken for tampering") {
  Store store(temp_dir() + "/verify.db", registry());
  auto append = [&](const std::string& patient) {
    REQUIRE(store.writer().run([&](WriteTxn& txn) -> Status {
      AuditRecord rec;
      rec.format = "resource";
      rec.columns.patients = {patient};
      rec.columns.agent = "gp-practice";
      rec.columns.action = "R";
      rec.columns.outcome = "0";
      rec.body = patient;  // what derive() below reads the patient from
      txn.append_audit(std::move(rec));
      return Ok{};
    }));
  };
  for (const char* patient : {"Patient/a", "Patient/b", "Patient/c"}) append(patient);
  auto derive = [](const AuditRecord& r) {
    AuditColumns columns = r.columns;
    columns.patients = {r.body};
    return std::optional<AuditColumns>(std::move(columns));
  };
  // The gateway goes on writing while the chain is walked: two more events land after its first row.
  bool wrote = false;
  const auto check = store.verify_audit([&](const AuditRecord& r) {
    if (!std::exchange(wrote, true)) {
      append("Patient/d");
      append("Patient/e");
    }
    return derive(r);
  });
  REQUIRE(check);
  CHECK_MESSAGE(check->intact, check->problem);
  CHECK(check->rows == 3);
  const auto after = store.verify_audit(derive);
  CHECK_MESSAGE(after->intact, after->problem);
  CHECK(after->rows == 5);
}

}  // namespace
}  // namespace fhirgate::gateway::store

namespace fhirgate::gateway::store {
namespace {

// The audit log file (audit_file.hpp): a read's AuditEvent is durable in the file before its plan is
// done, moved into the table later with the seq and chain it was given, and verified in both places.
AuditRecord read_event(const std::string& patient) {
  AuditRecord rec;
  rec.format = "resource";
  rec.columns.patients = {patient};
  rec.columns.agent = "acute-trust";
  rec.columns.action = "R";
  rec.columns.outcome = "0";
  rec.body = patient;  // what derive_from_body reads the patient from
  return rec;
}

std::optional<AuditColumns> derive_from_body(const AuditRecord& r) {
  AuditColumns columns = r.columns;
  columns.patients = {r.body};
  return columns;
}

std::int64_t table_rows(const std::string& db_path) {
  Connection db(db_path, Connection::Mode::read_only);
  auto stmt = db.prepare("SELECT count(*) FROM audit_event");
  return stmt.step() ? stmt.int64(0) : -1;
}

void append_written(Store& store, const std::string& patient) {
  REQUIRE(store.writer().run([&](WriteTxn& txn) -> Status {
    txn.append_audit(read_event(patient));
    return Ok{};
  }));
}

void copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return;  // e.g. no -wal file
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
}

TEST_CASE(
    "audit log file: a read's event is in the file before it is done, then moved; one chain runs through "
    "both") {
  const std::string path = temp_dir() + "/log.db";
  Store store(path, registry());
  REQUIRE(store.owns_audit_log());
  append_written(store, "Patient/w1");  // a write's event: in the table at once
  for (const char* p : {"Patient/r1", "Patient/r2", "Patient/r3"})
    REQUIRE(store.writer().run(AuditOnlyPlan{{read_event(p)}}));
  append_written(store, "Patient/w2");  // chained after the logged ones
  // Right after: the reads are in the file (durable), the table has the two writes, and searches see all.
  AuditQuery newest;
  newest.count = 10;
  auto all = store.search_audit(newest);
  REQUIRE(all);
  REQUIRE(all->size() == 5);
  CHECK(all->front().seq == 5);
  CHECK(all->front().body == "Patient/w2");
  AuditQuery of_r2;
  of_r2.patient = "Patient/r2";
  auto r2 = store.search_audit(of_r2);
  REQUIRE(r2);
  REQUIRE(r2->size() == 1);
  CHECK(r2->front().seq == 3);
  auto by_seq = store.read_audit(2);
  REQUIRE(by_seq);
  REQUIRE(*by_seq);
  CHECK((*by_seq)->body == "Patient/r1");
  auto check = store.verify_audit(derive_from_body);
  REQUIRE(check);
  CHECK_MESSAGE(check->intact, check->problem);
  CHECK(check->rows == 5);
  // Within the import interval they are moved into the table, and the file is emptied.
  for (int i = 0; i < 100 && table_rows(path) < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(table_rows(path) == 5);
  CHECK(AuditLogReader(audit_log_paths(path)).read().empty());
  check = store.verify_audit(derive_from_body);
  CHECK_MESSAGE(check->intact, check->problem);
  CHECK(check->rows == 5);
}

TEST_CASE("audit count: the events a query selects, in the table and the log file alike, each once") {
  const std::string path = temp_dir() + "/count.db";
  WriterOptions kept;  // the reads' events stay in the log file until the end of the test...
  kept.spool.seal_after_ms = 600000;
  auto store = std::make_unique<Store>(path, registry(), "", kept);
  append_written(*store, "Patient/w1");
  for (const char* p : {"Patient/r1", "Patient/r2", "Patient/r1"})
    REQUIRE(store->writer().run(AuditOnlyPlan{{read_event(p)}}));
  append_written(*store, "Patient/r1");
  auto count = [](Store& s, const std::string& patient, const std::string& action = {}) {
    AuditQuery q;
    q.patient = patient;
    q.action = action;
    q.count = 1;  // the count is not a page's
    auto n = s.count_audit(q);
    REQUIRE(n);
    return *n;
  };
  CHECK(table_rows(path) == 2);
  CHECK(count(*store, "") == 5);
  CHECK(count(*store, "Patient/r1") == 3);
  CHECK(count(*store, "Patient/r1", "R") == 3);
  CHECK(count(*store, "Patient/r1", "C") == 0);
  CHECK(count(*store, "Patient/r2") == 1);
  CHECK(count(*store, "Patient/none") == 0);
  AuditQuery older;
  older.before_seq = 3;  // and within a query's paging
  CHECK(*store->count_audit(older) == 2);
  store.reset();  // ...and a clean stop moves them into the table: the same counts
  CHECK(table_rows(path) == 5);
  Store reopened(path, registry());
  CHECK(count(reopened, "") == 5);
  CHECK(count(reopened, "Patient/r1") == 3);
}

TEST_CASE(
    "audit log file: after a crash the logged events are recovered, a cut-off frame is dropped, tampering is "
    "caught") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/live.db";
  WriterOptions no_import;  // the events stay in the file until the crash
  no_import.spool.seal_after_ms = 600000;
  auto store = std::make_unique<Store>(path, registry(), "", no_import);
  append_written(*store, "Patient/w1");
  for (const char* p : {"Patient/r1", "Patient/r2"})
    REQUIRE(store->writer().run(AuditOnlyPlan{{read_event(p)}}));
  // What a SIGKILL right now leaves on disk: the database, its WAL, the key and the log file as they are.
  const std::string crashed = dir + "/crashed.db";
  for (const char* suffix : {"", "-wal", ".audit-key", ".audit-log", ".audit-log.2"})
    copy_file(path + suffix, crashed + suffix);
  store.reset();
  REQUIRE(AuditLogReader(audit_log_paths(crashed)).read().size() == 2);
  const std::string tampered = dir + "/tampered.db";
  for (const char* suffix : {"", "-wal", ".audit-key", ".audit-log", ".audit-log.2"})
    copy_file(crashed + suffix, tampered + suffix);
  {
    // As the kill left it (two events only in the file): the chain runs from the table into the file.
    Connection db(crashed, Connection::Mode::read_only);
    const AuditKey key = AuditKey::load_or_create(crashed + ".audit-key");
    const auto check = verify_audit_chain(db, key, derive_from_body,
                                          [&] { return AuditLogReader(audit_log_paths(crashed)).read(); });
    CHECK_MESSAGE(check.intact, check.problem);
    CHECK(check.rows == 3);
  }
  {
    std::ofstream torn(audit_log_paths(crashed).front(), std::ios::binary | std::ios::app);
    torn << "4 1700000000000 resource 00";  // a frame cut short by the crash: never acknowledged
  }
  {
    Store reopened(crashed, registry());
    auto check = reopened.verify_audit(derive_from_body);
    REQUIRE(check);
    CHECK_MESSAGE(check->intact, check->problem);
    CHECK(check->rows == 3);
    append_written(reopened, "Patient/w2");  // the chain goes on from the recovered end
    auto last = reopened.read_audit(4);
    REQUIRE(last);
    REQUIRE(*last);
    CHECK((*last)->body == "Patient/w2");
  }
  CHECK(table_rows(crashed) == 4);  // a clean stop moves everything into the table
  CHECK(AuditLogReader(audit_log_paths(crashed)).read().empty());
  {
    Store reopened(crashed, registry());
    auto check = reopened.verify_audit(derive_from_body);
    CHECK_MESSAGE(check->intact, check->problem);
    CHECK(check->rows == 4);
  }
  // Tampering with an event still in the file: another patient in its body.
  std::string text = *fhir::read_file(audit_log_paths(tampered).front());
  const auto at = text.rfind("Patient/r2");
  REQUIRE(at != std::string::npos);
  text.replace(at, 10, "Patient/r9");
  std::ofstream(audit_log_paths(tampered).front(), std::ios::binary | std::ios::trunc) << text;
  {
    // Verified before the gateway starts on it (a start moves the events into the table).
    Connection db(tampered, Connection::Mode::read_only);
    const AuditKey key = AuditKey::load_or_create(tampered + ".audit-key");
    const auto check = verify_audit_chain(db, key, derive_from_body,
                                          [&] { return AuditLogReader(audit_log_paths(tampered)).read(); });
    CHECK_FALSE(check.intact);
    CHECK(check.first_bad_seq == 3);
    CHECK(check.problem.find("logged event 3") != std::string::npos);
  }
}

TEST_CASE("audit log file: a second process on the same database may not append to the audit trail") {
  const std::string path = temp_dir() + "/owned.db";
  Store serving(path, registry());
  Store second(path, registry());
  CHECK(serving.owns_audit_log());
  CHECK_FALSE(second.owns_audit_log());
  const Status refused = second.writer().run([](WriteTxn& txn) -> Status {
    txn.append_audit(read_event("Patient/x"));
    return Ok{};
  });
  CHECK_FALSE(refused);
  // Its other writes still work (a CLI command adding a token while the gateway runs).
  CHECK(second.writer().run([](WriteTxn& txn) -> Status {
    txn.set_meta("probe", "1");
    return Ok{};
  }));
  append_written(serving, "Patient/w1");
  auto check = serving.verify_audit(derive_from_body);
  CHECK_MESSAGE(check->intact, check->problem);
}

TEST_CASE(
    "audit log file: reads' events moved into the table move the head, so deleting the newest is caught") {
  const std::string path = temp_dir() + "/head.db";
  {
    Store store(path, registry());
    append_written(store, "Patient/w1");  // the head is at 1 after this write
    for (const char* p : {"Patient/r1", "Patient/r2"})
      REQUIRE(store.writer().run(AuditOnlyPlan{{read_event(p)}}));
  }  // a clean stop moves them
  REQUIRE(table_rows(path) == 3);
  {
    Connection db(path, Connection::Mode::read_write);
    db.exec("DELETE FROM audit_patient WHERE seq = 3; DELETE FROM audit_event WHERE seq = 3");
  }
  Connection db(path, Connection::Mode::read_only);
  const AuditKey key = AuditKey::load_or_create(path + ".audit-key");
  const auto check = verify_audit_chain(db, key, derive_from_body);
  CHECK_FALSE(check.intact);
  CHECK(check.problem.find("deleted") != std::string::npos);
}

TEST_CASE(
    "audit log file: a damaged event is not taken for a crash's cut-off end; the store will not start over "
    "it") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/live.db";
  WriterOptions no_import;
  no_import.spool.seal_after_ms = 600000;
  auto store = std::make_unique<Store>(path, registry(), "", no_import);
  append_written(*store, "Patient/w1");
  for (const char* p : {"Patient/r1", "Patient/r2", "Patient/r3"})
    REQUIRE(store->writer().run(AuditOnlyPlan{{read_event(p)}}));
  const std::string damaged = dir + "/damaged.db";
  for (const char* suffix : {"", "-wal", ".audit-key", ".audit-log", ".audit-log.2"})
    copy_file(path + suffix, damaged + suffix);
  store.reset();
  // One byte more in the first logged event's body: its length no longer matches its header, and two
  // acknowledged events follow it.
  std::string text = *fhir::read_file(audit_log_paths(damaged).front());
  const auto at = text.find("Patient/r1\n");
  REQUIRE(at != std::string::npos);
  text.insert(at, "x");
  std::ofstream(audit_log_paths(damaged).front(), std::ios::binary | std::ios::trunc) << text;
  {
    Connection db(damaged, Connection::Mode::read_only);
    const AuditKey key = AuditKey::load_or_create(damaged + ".audit-key");
    const auto check = verify_audit_chain(db, key, derive_from_body,
                                          [&] { return AuditLogReader(audit_log_paths(damaged)).read(); });
    CHECK_FALSE(check.intact);
    CHECK(check.problem.find("damaged") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(Store(damaged, registry()), doctest::Contains("is damaged at byte"),
                       std::runtime_error);
  CHECK(*fhir::read_file(audit_log_paths(damaged).front()) == text);  // still there, untouched
}

TEST_CASE("audit log file: a second path to the same database (a symbolic link) meets the same lock") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/real.db";
  Store serving(path, registry());
  std::filesystem::create_symlink(path, dir + "/alias.db");
  Store second(dir + "/alias.db", registry(), path + ".audit-key");
  CHECK(serving.owns_audit_log());
  CHECK_FALSE(second.owns_audit_log());
}

// (A hard link, through which SQLite itself refuses a second connection in the same process, is in
// storage_test: two processes.)
TEST_CASE(
    "audit log file: the database file itself is owned: log files moved aside let no second store append") {
  const std::string path = temp_dir() + "/real.db";
  Store serving(path, registry());
  append_written(serving, "Patient/w1");
  for (const auto& log : audit_log_paths(path)) {
    std::filesystem::rename(log, log + ".old");
    std::ofstream(log).close();
  }
  Store after_rotation(path, registry());
  CHECK_FALSE(after_rotation.owns_audit_log());
  CHECK(serving.owns_audit_log());
}

TEST_CASE(
    "audit key: found through any path to the database; missing or another's, the store will not open") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/keyed.db";
  {
    Store store(path, registry());
    append_written(store, "Patient/w1");
  }
  std::filesystem::create_symlink(path, dir + "/alias.db");
  {
    Store through_link(dir + "/alias.db", registry());
    auto check = through_link.verify_audit(derive_from_body);
    REQUIRE(check);
    CHECK_MESSAGE(check->intact, check->problem);
    append_written(through_link, "Patient/w2");
  }
  CHECK_FALSE(std::filesystem::exists(dir + "/alias.db.audit-key"));

  // The key moved away: no new one is made, which would chain on with a key the trail does not know.
  std::filesystem::rename(path + ".audit-key", dir + "/saved-key");
  CHECK_THROWS_AS(Store(path, registry()), std::runtime_error);
  CHECK_FALSE(std::filesystem::exists(path + ".audit-key"));

  // Another database's key.
  {
    Store other(dir + "/other.db", registry());
    append_written(other, "Patient/o1");
  }
  std::filesystem::copy_file(dir + "/other.db.audit-key", path + ".audit-key");
  CHECK_THROWS_AS(Store(path, registry()), std::runtime_error);
  std::filesystem::remove(path + ".audit-key");
  std::filesystem::rename(dir + "/saved-key", path + ".audit-key");
  Store restored(path, registry());
  auto check = restored.verify_audit(derive_from_body);
  REQUIRE(check);
  CHECK_MESSAGE(check->intact, check->problem);
  CHECK(check->rows == 2);
}

TEST_CASE(
    "audit head: every database has one; deleted or unreadable, verify fails and the store will not open") {
  const std::string path = temp_dir() + "/headless.db";
  {
    Store fresh(path, registry());  // no event yet: the head is there all the same
  }
  {
    Connection db(path, Connection::Mode::read_only);
    auto head = db.prepare("SELECT value FROM store_meta WHERE key = 'audit_head'");
    REQUIRE(head.step());
    CHECK(head.text(0) == "0:");
  }
  {
    Store store(path, registry());
    append_written(store, "Patient/w1");
  }
  const AuditKey key = AuditKey::load_or_create(path + ".audit-key");
  for (const char* tamper :
       {"DELETE FROM store_meta WHERE key = 'audit_head'",
        "UPDATE store_meta SET value = '' WHERE key = 'audit_head'",
        "UPDATE store_meta SET value = '1:zz' WHERE key = 'audit_head'",
        "DELETE FROM audit_patient; DELETE FROM audit_event; DELETE FROM store_meta WHERE key "
        "= 'audit_head'"}) {
    CAPTURE(tamper);
    const std::string copy = temp_dir() + "/copy.db";
    std::filesystem::copy_file(path, copy);
    std::filesystem::copy_file(path + ".audit-key", copy + ".audit-key");
    {
      Connection db(copy, Connection::Mode::read_write);
      db.exec(tamper);
    }
    {
      Connection db(copy, Connection::Mode::read_only);
      const auto check = verify_audit_chain(db, key, derive_from_body);
      CHECK_FALSE(check.intact);
      CHECK(check.problem.find("head") != std::string::npos);
    }
    CHECK_THROWS_AS(Store(copy, registry()), std::runtime_error);
  }
}

// The writer gathers a stream of reads' AuditEvents for one fdatasync (writer.hpp, gather_reads). With a
// gather of 30 s, anything that waited for it out would show as a 30 s wait: no case below may.
TEST_CASE(
    "audit log file: gathering reads never keeps an idle read, a full group, a write or a stop waiting") {
  using Clock = std::chrono::steady_clock;
  const std::string dir = temp_dir();
  WriterOptions slow;
  slow.gather_reads = std::chrono::seconds(30);
  slow.gather_reads_up_to = 4;
  auto store = std::make_unique<Store>(dir + "/gather.db", registry(), "", slow);
  auto quickly = [](Clock::time_point since) { return Clock::now() - since < std::chrono::seconds(10); };
  auto read_async = [&](const std::string& patient, std::promise<Status>& answered) {
    REQUIRE(store->writer().submit(AuditOnlyPlan{{read_event(patient)}},
                                   [&answered](Status s) { answered.set_value(std::move(s)); }));
  };

  // A read on an idle gateway is appended at once.
  auto began = Clock::now();
  REQUIRE(store->writer().run(AuditOnlyPlan{{read_event("Patient/idle")}}));
  CHECK(quickly(began));

  // Reads that keep coming are gathered, until gather_reads_up_to of them wait.
  began = Clock::now();
  std::promise<Status> group[4];
  for (int i = 0; i < 4; ++i) read_async("Patient/g" + std::to_string(i), group[i]);
  for (auto& answered : group) CHECK(answered.get_future().get());
  CHECK(quickly(began));
  const auto after_group = store->writer().stats();

  // A write ends a gather at once; the read gathered is committed with it.
  began = Clock::now();
  std::promise<Status> read;
  read_async("Patient/r", read);
  append_written(*store, "Patient/w");
  CHECK(read.get_future().get());
  CHECK(quickly(began));

  // Stopping ends a gather; the read gathered is answered and kept.
  began = Clock::now();
  std::promise<Status> last;
  read_async("Patient/last", last);
  store.reset();
  CHECK(last.get_future().get());
  CHECK(quickly(began));
  CHECK(after_group.plans - after_group.batches == 3);  // the idle read alone, then the four in one group

  Store reopened(dir + "/gather.db", registry());
  auto check = reopened.verify_audit(derive_from_body);
  REQUIRE(check);
  CHECK_MESSAGE(check->intact, check->problem);
  CHECK(check->rows == 8);
}

}  // namespace
}  // namespace fhirgate::gateway::store
