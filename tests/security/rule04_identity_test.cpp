// Issue 17, rule 4: one identity rule. At most one Patient per identifier, matched over every record; a
// write whose match the writer may not see is held for review: answered 202 (or as an applied HL7 v2
// message), naming nothing, the same whatever the hidden record holds, changing nothing, journaled
// `held` with its payload, audited against the matched patient, and released or rejected through
// /_ops/held by the privacy officer or a registrar.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// A REST answer that says "held": 202, no Location, no ETag, the informational outcome naming nothing.
void check_held(const std::string& what, const Response& r, const std::string& hidden_id) {
  INFO(what << " answered " << r.status << ": " << r.body);
  CHECK(r.status == 202);
  CHECK(r.header("Location").empty());
  CHECK(r.header("ETag").empty());
  CHECK(r.body.find(hidden_id) == std::string::npos);
  if (r.status == 202) check_held_outcome(json(r.body), hidden_id);
}

// A Bundle entry's answer that says "held": 202 Accepted, no location, the informational outcome.
void check_held_entry(const std::string& what, const fhir::Node& entry, const std::string& hidden_id) {
  INFO(what << ": " << fhir::write_json(entry));
  CHECK(text_at(entry, "response.status") == "202 Accepted");
  CHECK(at(entry, "response.location") == nullptr);
  CHECK(fhir::write_json(entry).find(hidden_id) == std::string::npos);
  const auto* outcome = at(entry, "response.outcome");
  CHECK(outcome != nullptr);
  if (outcome) check_held_outcome(*outcome, hidden_id);
}

std::string by_nhs(const std::string& nhs) {
  return std::string("identifier=") + kNhsSystem + "|" + nhs;
}

TEST_CASE(
    "rule 4: a REST write matching a patient the writer may not see is held: 202, naming nothing, changing "
    "nothing") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  // A hidden record per door, so that each door's answer stands on its own. The first two hold different
  // things, so that any difference between their answers would leak it.
  const std::string nhs_one = nhs_number(401), nhs_two = nhs_number(402), nhs_cond = nhs_number(403),
                    nhs_put = nhs_number(404), nhs_added = nhs_number(405), nhs_shared = nhs_number(406),
                    nhs_own = nhs_number(407);
  const std::string hidden_one = create_patient(*gp, "Hiddenone", nhs_one);
  const auto second = gp->send_json(
      "POST", "/Patient",
      R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
          nhs_two +
          R"("}],"active":true,"name":[{"family":"Hiddentwo","given":["Beatrix","Maud"]}],"telecom":[{"system":"phone","value":"01632 960001"}],"gender":"male","birthDate":"1985-06-15"})");
  REQUIRE_MESSAGE(second.status == 201, second.body);
  const std::string hidden_two(json(second.body).string_at("id"));
  const std::string hidden_cond = create_patient(*gp, "Hiddencond", nhs_cond);  // born 1970-01-01
  const std::string hidden_put = create_patient(*gp, "Hiddenput", nhs_put);
  const std::string hidden_added = create_patient(*gp, "Hiddenadded", nhs_added);
  const std::string shared = create_patient(*gp, "Sharedone", nhs_shared);
  record_consent(*gp, shared, permit("acute-trust"));
  const std::string own = create_patient(*trust, "Trustown", nhs_own);
  std::map<std::string, std::string> before;
  for (const std::string& id : {hidden_one, hidden_two, hidden_cond, hidden_put, hidden_added, shared})
    before[id] = snapshot(*gp, "/Patient/" + id);
  const std::string own_before = snapshot(*trust, "/Patient/" + own);

  // A plain create with either hidden patient's NHS number: held, and answered byte for byte the same.
  const auto create_one = trust->send_json("POST", "/Patient", patient_json("Probe", nhs_one));
  const auto create_two = trust->send_json("POST", "/Patient", patient_json("Probe", nhs_two));
  check_held("POST with the first hidden NHS number", create_one, hidden_one);
  check_held("POST with the second hidden NHS number", create_two, hidden_two);
  CHECK(create_one.body == create_two.body);

  // A conditional create: its criteria see only what the trust may see, so the hidden record's birth date
  // and another one give the same answer.
  const auto same_birth = trust->send_json("POST", "/Patient", patient_json("Probe", nhs_cond),
                                           {{"If-None-Exist", by_nhs(nhs_cond) + "&birthdate=1970-01-01"}});
  const auto other_birth = trust->send_json("POST", "/Patient", patient_json("Probe", nhs_cond),
                                            {{"If-None-Exist", by_nhs(nhs_cond) + "&birthdate=1999-09-09"}});
  check_held("If-None-Exist with the hidden birth date", same_birth, hidden_cond);
  check_held("If-None-Exist with another birth date", other_birth, hidden_cond);
  CHECK(same_birth.body == other_birth.body);

  // A conditional update, and an update of the trust's own record that adds a hidden NHS number.
  check_held("PUT Patient?identifier=",
             trust->send_json("PUT", "/Patient?" + by_nhs(nhs_put), patient_json("Probe", nhs_put)),
             hidden_put);
  const std::string own_with_hidden =
      R"({"resourceType":"Patient","id":")" + own +
      R"(","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs_own +
      R"("},{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs_added +
      R"("}],"name":[{"family":"Trustown"}],"gender":"female","birthDate":"1970-01-01"})";
  check_held("PUT of its own record adding a hidden NHS number",
             trust->send_json("PUT", "/Patient/" + own, own_with_hidden), hidden_added);

  // An update by id of a hidden record itself is not a match: 404 as ever, not held.
  const auto put_hidden =
      trust->send_json("PUT", "/Patient/" + hidden_one, patient_json("Overwritten", nhs_one, hidden_one));
  CHECK(put_hidden.status == 404);

  // A plain create colliding with a patient the trust may see: 409, pointing to a conditional write.
  const auto duplicate = trust->send_json("POST", "/Patient", patient_json("Duplicate", nhs_shared));
  CHECK_MESSAGE(duplicate.status == 409, duplicate.body);
  if (duplicate.status == 409) CHECK(first_issue(duplicate).find("conditional") != std::string::npos);

  // Nothing was changed or added: one Patient per NHS number, every record as it was.
  for (const auto& [id, body] : before) {
    INFO("Patient/" << id);
    CHECK(snapshot(*gp, "/Patient/" + id) == body);
  }
  CHECK(snapshot(*trust, "/Patient/" + own) == own_before);
  for (const std::string& nhs : {nhs_one, nhs_two, nhs_cond, nhs_put, nhs_added, nhs_shared, nhs_own}) {
    INFO(nhs);
    CHECK(stored_with(p, "Patient", nhs) == 1);
  }
  CHECK(stored_with(p, "Patient", "Probe") == 0);
  CHECK(stored_with(p, "Patient", "Duplicate") == 0);

  // Journaled held, with the payload, for the operator; audited against the matched patient.
  const auto held = journal_entries(p, "status=held");
  CHECK(held.size() == 6);
  for (const auto& e : held) {
    CHECK(e.string_at("partner") == "acute-trust");
    CHECK(text_at(e, "hasPayload") == "true");
  }
  if (!held.empty()) {
    const auto opened = p.client("operator")->get("/_ops/journal/" + text_at(held.front(), "id"));
    REQUIRE(opened.status == 200);
    CHECK(text_at(json(opened.body), "payload").find("\"resourceType\":\"Patient\"") != std::string::npos);
  }
  // hidden_one: its held create and the refused PUT by id.
  for (const auto& [id, writes] : std::vector<std::pair<std::string, int>>{
           {hidden_one, 2}, {hidden_two, 1}, {hidden_cond, 2}, {hidden_put, 1}, {hidden_added, 1}}) {
    INFO("Patient/" << id);
    CHECK(officer_events_with(*officer, id, {"\"Organization/acute-trust\""}) >= writes);
  }
}

TEST_CASE(
    "rule 4: in a transaction or a batch, an entry matching a hidden patient is answered 202 Accepted with "
    "no location") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string nhs_txn = nhs_number(411), nhs_ine = nhs_number(412), nhs_cond = nhs_number(413),
                    nhs_plain = nhs_number(414), nhs_added = nhs_number(415), nhs_own = nhs_number(416);
  std::map<std::string, std::string> hidden;  // NHS number -> id
  for (const std::string& nhs : {nhs_txn, nhs_ine, nhs_cond, nhs_plain, nhs_added})
    hidden[nhs] = create_patient(*gp, "Bundlehidden", nhs);
  const std::string own = create_patient(*trust, "Bundleown", nhs_own);
  std::map<std::string, std::string> before;
  for (const auto& [nhs, id] : hidden) before[id] = snapshot(*gp, "/Patient/" + id);
  const std::string own_before = snapshot(*trust, "/Patient/" + own);
  auto names_hidden = [&](const std::string& body) {
    return std::any_of(hidden.begin(), hidden.end(),
                       [&](const auto& h) { return body.find(h.second) != std::string::npos; });
  };

  const auto transaction = trust->send_json(
      "POST", "/",
      bundle_json("transaction", {bundle_entry("POST", "Patient", patient_json("Txnprobe", nhs_txn))}));
  REQUIRE_MESSAGE(transaction.status == 200, transaction.body);
  CHECK_FALSE(names_hidden(transaction.body));
  const auto transaction_answer = json(transaction.body);
  REQUIRE(at(transaction_answer, "entry[0]"));
  check_held_entry("transaction POST", *at(transaction_answer, "entry[0]"), hidden[nhs_txn]);

  const std::string own_with_hidden =
      R"({"resourceType":"Patient","id":")" + own +
      R"(","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs_own +
      R"("},{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs_added +
      R"("}],"name":[{"family":"Bundleown"}],"gender":"female","birthDate":"1970-01-01"})";
  const auto batch = trust->send_json(
      "POST", "/",
      bundle_json("batch",
                  {bundle_entry("POST", "Patient", patient_json("Batchprobe", nhs_ine),
                                R"(,"ifNoneExist":")" + by_nhs(nhs_ine) + "\""),
                   bundle_entry("PUT", "Patient?" + by_nhs(nhs_cond), patient_json("Batchprobe", nhs_cond)),
                   bundle_entry("POST", "Patient", patient_json("Batchprobe", nhs_plain)),
                   bundle_entry("PUT", "Patient/" + own, own_with_hidden)}));
  REQUIRE_MESSAGE(batch.status == 200, batch.body);
  CHECK_FALSE(names_hidden(batch.body));
  const auto answers = json(batch.body);
  const std::pair<const char*, std::string> entries[] = {
      {"batch conditional create", nhs_ine},
      {"batch conditional update", nhs_cond},
      {"batch create", nhs_plain},
      {"batch update adding a hidden NHS number", nhs_added}};
  for (int i = 0; i < 4; ++i) {
    const auto* entry = at(answers, "entry[" + std::to_string(i) + "]");
    REQUIRE(entry);
    check_held_entry(entries[i].first, *entry, hidden[entries[i].second]);
  }

  for (const auto& [id, body] : before) {
    INFO("Patient/" << id);
    CHECK(snapshot(*gp, "/Patient/" + id) == body);
  }
  CHECK(snapshot(*trust, "/Patient/" + own) == own_before);
  for (const auto& [nhs, id] : hidden) CHECK(stored_with(p, "Patient", nhs) == 1);
  CHECK(stored_with(p, "Patient", "Txnprobe") == 0);
  CHECK(stored_with(p, "Patient", "Batchprobe") == 0);
  CHECK(journal_entries(p, "status=held&partner=acute-trust").size() >= 2);  // one per Bundle at least
}

TEST_CASE(
    "rule 4: an HL7 v2 message or a feed row matching a hidden patient is acknowledged as usual, held, and "
    "changes nothing") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto officer = p.client("privacy-officer");
  const std::string nhs_a08 = nhs_number(421), nhs_enhanced = nhs_number(422), nhs_ingest = nhs_number(423),
                    nhs_merged = nhs_number(424), nhs_feed = nhs_number(425), nhs_own = nhs_number(426),
                    nhs_new = nhs_number(427);
  std::map<std::string, std::string> hidden, before;  // NHS number -> id, id -> body
  for (const std::string& nhs : {nhs_a08, nhs_enhanced, nhs_ingest, nhs_merged, nhs_feed}) {
    hidden[nhs] = create_patient(*gp, "Vtwohidden", nhs);
    before[hidden[nhs]] = snapshot(*gp, "/Patient/" + hidden[nhs]);
  }
  auto untouched = [&](const std::string& nhs) {
    return snapshot(*gp, "/Patient/" + hidden[nhs]) == before[hidden[nhs]];
  };
  // The trust registers its own patient, the survivor of the merge below.
  REQUIRE(msa(send_v2(p.mllp_port(1), adt("A01", "HT1", "RX1", nhs_own, "Trustsurvivor"))) == "AA|HT1");

  // A08 over MLLP: AA exactly as for an applied message, yet nothing changes.
  CHECK(msa(send_v2(p.mllp_port(1), adt("A08", "HV1", "RX1", nhs_a08, "Heldupdate"))) == "AA|HV1");
  CHECK(untouched(nhs_a08));
  // The same in enhanced mode: the commit ACK.
  CHECK(msa(send_v2(p.mllp_port(1), enhanced_mode(adt("A08", "HV2", "RX1", nhs_enhanced, "Heldenhanced")))) ==
        "CA|HV2");
  CHECK(untouched(nhs_enhanced));
  // A01 over POST /$ingest: a transaction-response whose entry is 202 Accepted, with no location.
  const auto ingested = ingest_v2(p, "acute-trust", adt("A01", "HV3", "RX1", nhs_ingest, "Heldingest"));
  REQUIRE_MESSAGE(ingested.status == 200, ingested.body);
  CHECK(ingested.body.find(hidden[nhs_ingest]) == std::string::npos);
  const auto response = json(ingested.body);
  CHECK(text_at(response, "type") == "transaction-response");
  CHECK(text_at(response, "entry[0].response.status") == "202 Accepted");
  CHECK(at(response, "entry[0].response.location") == nullptr);
  CHECK(untouched(nhs_ingest));
  // A40 merging a hidden patient into the trust's own.
  CHECK(msa(send_v2(p.mllp_port(1), adt_merge("HV4", "RX1", nhs_own, nhs_merged))) == "AA|HV4");
  CHECK(untouched(nhs_merged));
  // A feed row: 202 Accepted and counted held; the other row of the file is taken as usual.
  const auto fed = ingest_feed(p, "acute-trust", "clients",
                               std::string(kClientsHeader) + client_row("HF-1", nhs_feed, "Heldfeed") +
                                   client_row("HF-2", nhs_new, "Newfeed"));
  REQUIRE_MESSAGE(fed.status == 200, fed.body);
  CHECK(fed.body.find(hidden[nhs_feed]) == std::string::npos);
  const auto rows = json(fed.body);
  CHECK(entry_statuses(rows) == "202 Accepted; 201 Created");
  CHECK(at(rows, "entry[0].response.location") == nullptr);
  CHECK(fed.header("X-Ingest-Summary").find("held=1") != std::string::npos);
  CHECK(fed.header("X-Ingest-Summary").find("created=1") != std::string::npos);
  CHECK(untouched(nhs_feed));

  for (const auto& [nhs, id] : hidden) CHECK(stored_with(p, "Patient", nhs) == 1);
  for (const char* family : {"Heldupdate", "Heldenhanced", "Heldingest", "Heldfeed"})
    CHECK(stored_with(p, "Patient", family) == 0);

  // Each journaled held with its payload, and audited against its hidden patient as the trust.
  int held_v2 = 0, held_feed = 0;
  for (const auto& e : journal_entries(p, "status=held&partner=acute-trust")) {
    CHECK(text_at(e, "hasPayload") == "true");
    held_v2 += e.string_at("format") == "hl7v2";
    held_feed += e.string_at("format") == "csv";
  }
  CHECK(held_v2 == 4);
  CHECK(held_feed >= 1);
  for (const auto& [nhs, id] : hidden) {
    INFO("Patient/" << id);
    CHECK(officer_events_with(*officer, id, {"\"Organization/acute-trust\""}) >= 1);
  }
}

TEST_CASE(
    "rule 4: held writes wait in /_ops/held for the privacy officer or a registrar, who release or reject "
    "each once") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string nhs_hidden = nhs_number(431);
  const std::string hidden = create_patient(*gp, "Queuehidden", nhs_hidden);
  const std::string before = snapshot(*gp, "/Patient/" + hidden);

  // Three held writes, one per kind of entry: REST, HL7 v2, feed.
  check_held("REST create", trust->send_json("POST", "/Patient", patient_json("Queuerest", nhs_hidden)),
             hidden);
  CHECK(msa(send_v2(p.mllp_port(1), adt("A08", "Q1", "RX1", nhs_hidden, "Queuevtwo"))) == "AA|Q1");
  const auto fed = ingest_feed(p, "acute-trust", "clients",
                               std::string(kClientsHeader) + client_row("Q-1", nhs_hidden, "Queuefeed"));
  REQUIRE_MESSAGE(fed.status == 200, fed.body);
  CHECK(entry_statuses(json(fed.body)) == "202 Accepted");
  CHECK(snapshot(*gp, "/Patient/" + hidden) == before);

  // Who may look: the privacy officer and the registrars; not the writer, not others, not the operator.
  for (const char* holder : {"acute-trust", "mental-health", "operator"}) {
    INFO(holder);
    CHECK(p.client(holder)->get("/_ops/held").status == 403);
  }
  CHECK(gp->get("/_ops/held").status == 200);
  CHECK(p.client("social-care")->get("/_ops/held").status == 200);

  const auto listed = officer->get("/_ops/held");
  REQUIRE_MESSAGE(listed.status == 200, listed.body);
  const auto queue = json(listed.body);
  const auto* items = at(queue, "held");
  REQUIRE(items);
  REQUIRE(items->items().size() == 3);
  // Newest first: the feed row, the message, the REST create.
  const char* kinds[] = {"feed", "hl7v2", "rest"};
  std::vector<long long> ids;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& item = items->items()[i];
    INFO(fhir::write_json(item));
    ids.push_back(std::stoll(text_at(item, "id")));
    CHECK(item.string_at("entry") == kinds[i]);
    CHECK(item.string_at("partner") == "acute-trust");
    CHECK(item.string_at("type") == "Patient");
    CHECK(item.string_at("target") == "Patient/" + hidden);
    CHECK(item.string_at("status") == "held");
    CHECK_FALSE(item.string_at("received").empty());
  }
  CHECK(ids[0] > ids[1]);
  CHECK(ids[1] > ids[2]);
  const std::string feed_id = std::to_string(ids[0]), v2_id = std::to_string(ids[1]),
                    rest_id = std::to_string(ids[2]);
  const auto rest_entry = officer->get("/_ops/held/" + rest_id);
  REQUIRE(rest_entry.status == 200);
  CHECK(text_at(json(rest_entry.body), "payload").find("Queuerest") != std::string::npos);
  CHECK(text_at(json(rest_entry.body), "target") == "Patient/" + hidden);
  const auto v2_entry = officer->get("/_ops/held/" + v2_id);
  REQUIRE(v2_entry.status == 200);
  CHECK(text_at(json(v2_entry.body), "payload").find("Queuevtwo") != std::string::npos);

  // The writer cannot decide on its own held write.
  const auto self_release = trust->request("POST", "/_ops/held/" + feed_id + "/$release");
  CHECK((self_release.status == 403 || self_release.status == 404));
  CHECK(snapshot(*gp, "/Patient/" + hidden) == before);

  // Released: applied to the target record as its next version.
  const auto released = officer->request("POST", "/_ops/held/" + rest_id + "/$release");
  REQUIRE_MESSAGE(released.status == 200, released.body);
  const auto release = json(released.body);
  CHECK(text_at(release, "id") == rest_id);
  CHECK(text_at(release, "status") == "released");
  CHECK(text_at(release, "resource") == "Patient/" + hidden + "/_history/2");
  const std::string after_release = snapshot(*gp, "/Patient/" + hidden);
  CHECK(text_at(json(after_release), "meta.versionId") == "2");
  CHECK(after_release.find("Queuerest") != std::string::npos);

  // Rejected: nothing changes.
  const auto rejected = officer->request("POST", "/_ops/held/" + v2_id + "/$reject");
  REQUIRE_MESSAGE(rejected.status == 200, rejected.body);
  CHECK(text_at(json(rejected.body), "id") == v2_id);
  CHECK(text_at(json(rejected.body), "status") == "rejected");
  CHECK(snapshot(*gp, "/Patient/" + hidden) == after_release);

  // One decision per held write.
  CHECK(officer->request("POST", "/_ops/held/" + rest_id + "/$reject").status == 409);
  CHECK(officer->request("POST", "/_ops/held/" + rest_id + "/$release").status == 409);
  CHECK(officer->request("POST", "/_ops/held/" + v2_id + "/$release").status == 409);
  CHECK(snapshot(*gp, "/Patient/" + hidden) == after_release);
  CHECK(audit_intact(p));
}

}  // namespace
}  // namespace fhirgate::testing::security
