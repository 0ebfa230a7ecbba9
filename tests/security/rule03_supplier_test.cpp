// Issue 17, rule 3: only the partner that created a record is its supplier. The gateway reads that from
// meta.tag alone (a supplier Coding planted anywhere else grants nothing), drops supplier tags a client
// sends, and no update (REST, break-glass, a batch, HL7 v2, a feed row) makes its writer a supplier: once
// the patient withdraws consent, the writer is shown nothing again.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// A Coding with the supplier system naming `partner`, exactly as the gateway writes its tags.
std::string supplier_coding(const std::string& partner) {
  return std::string(R"({"system":")") + kSupplierSystem + R"(","code":")" + partner + R"("})";
}
std::string in_marital_status(const std::string& partner) {
  return R"("maritalStatus":{"coding":[)" + supplier_coding(partner) + "]}";
}
std::string in_meta_security(const std::string& partner) {
  return R"("meta":{"security":[)" + supplier_coding(partner) + "]}";
}
std::string in_meta_tag(const std::string& partner) {
  return R"("meta":{"tag":[)" + supplier_coding(partner) + "]}";
}

std::string created_id(const Response& r) {
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string(json(r.body).string_at("id"));
}

TEST_CASE(
    "rule 3: a supplier Coding planted outside meta.tag grants nothing, whoever plants it, by whichever "
    "door") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto mental = p.client("mental-health");

  // The GP's own record carries, in maritalStatus, a Coding that reads like the trust's supplier tag.
  const std::string gp_record = created_id(gp->send_json(
      "POST", "/Patient", patient_json("Planted", nhs_number(301), {}, in_marital_status("acute-trust"))));
  // The trust's records carry one naming mental health: in maritalStatus, in meta.security, in a
  // transaction entry, in an update-as-create; and, as a control, in meta.tag, where the gateway drops it.
  const std::string marital = created_id(trust->send_json(
      "POST", "/Patient", patient_json("Planted", nhs_number(302), {}, in_marital_status("mental-health"))));
  const std::string security = created_id(trust->send_json(
      "POST", "/Patient", patient_json("Planted", nhs_number(303), {}, in_meta_security("mental-health"))));
  const auto transaction = trust->send_json(
      "POST", "/",
      bundle_json("transaction", {bundle_entry("POST", "Patient",
                                               patient_json("Planted", nhs_number(304), {},
                                                            in_marital_status("mental-health")))}));
  REQUIRE_MESSAGE(transaction.status == 200, transaction.body);
  const std::string location = text_at(json(transaction.body), "entry[0].response.location");
  REQUIRE(location.starts_with("Patient/"));
  const std::string in_bundle = location.substr(8, location.find("/_history") - 8);
  const auto put_created = trust->send_json(
      "PUT", "/Patient/planted-by-put",
      patient_json("Planted", nhs_number(305), "planted-by-put", in_marital_status("mental-health")));
  REQUIRE_MESSAGE(put_created.status == 201, put_created.body);
  const std::string tagged = created_id(trust->send_json(
      "POST", "/Patient", patient_json("Planted", nhs_number(306), {}, in_meta_tag("mental-health"))));

  for (const auto& [who, id] :
       std::vector<std::pair<HttpClient*, std::string>>{{trust.get(), gp_record},
                                                        {mental.get(), marital},
                                                        {mental.get(), security},
                                                        {mental.get(), in_bundle},
                                                        {mental.get(), std::string("planted-by-put")},
                                                        {mental.get(), tagged}}) {
    INFO("Patient/" << id);
    CHECK(who->get("/Patient/" + id).status == 404);
  }
  // The trust's agreement has vread and history too (mental health's has not).
  CHECK(trust->get("/Patient/" + gp_record + "/_history/1").status == 404);
  CHECK(trust->get("/Patient/" + gp_record + "/_history").status == 404);
  CHECK(ids_in(json(trust->get("/Patient?family=Planted&_count=50").body)).count(gp_record) == 0);
  CHECK(ids_in(json(mental->get("/Patient?family=Planted&_count=50").body)).empty());
  // A client's supplier tag is dropped: the trust is the record's only supplier.
  const std::string stored = snapshot(*trust, "/Patient/" + tagged);
  CHECK(stored.find(supplier_coding("mental-health")) == std::string::npos);
  CHECK(stored.find(supplier_coding("acute-trust")) != std::string::npos);
  // Their creators see them, as suppliers.
  CHECK(gp->get("/Patient/" + gp_record).status == 200);
  CHECK(trust->get("/Patient/" + marital).status == 200);
  CHECK(trust->get("/Patient/planted-by-put").status == 200);
}

TEST_CASE(
    "rule 3: an update never makes its writer a supplier: once consent is withdrawn the record is 404 to it "
    "again") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");

  auto shared_patient = [&](const std::string& family, unsigned n, std::string& consent) {
    const std::string id = create_patient(*gp, family, nhs_number(n));
    consent = record_consent(*gp, id, permit("acute-trust"));
    REQUIRE(trust->get("/Patient/" + id).status == 200);
    return id;
  };
  std::string c_rest, c_batch, c_v2, c_feed, c_ack;
  const std::string by_rest = shared_patient("Updated", 311, c_rest);
  const std::string by_batch = shared_patient("Updated", 312, c_batch);
  const std::string by_v2 = shared_patient("Updated", 313, c_v2);
  const std::string by_feed = shared_patient("Updated", 314, c_feed);
  const std::string by_enhanced = shared_patient("Updated", 315, c_ack);
  const std::string by_glass = create_patient(*gp, "Updated", nhs_number(316));  // no consent at all

  // Permitted updates through every door.
  CHECK(trust->send_json("PUT", "/Patient/" + by_rest, patient_json("Trustrest", nhs_number(311), by_rest))
            .status == 200);
  const auto batch = trust->send_json(
      "POST", "/",
      bundle_json("batch", {bundle_entry("PUT", "Patient/" + by_batch,
                                         patient_json("Trustbatch", nhs_number(312), by_batch))}));
  REQUIRE_MESSAGE(batch.status == 200, batch.body);
  CHECK(text_at(json(batch.body), "entry[0].response.status") == "200 OK");
  CHECK(msa(send_v2(p.mllp_port(1), adt("A08", "UP1", "RX1", nhs_number(313), "Trustvtwo"))) == "AA|UP1");
  CHECK(msa(send_v2(p.mllp_port(1),
                    enhanced_mode(adt("A08", "UP2", "RX1", nhs_number(315), "Trustenhanced")))) == "CA|UP2");
  const auto fed =
      ingest_feed(p, "acute-trust", "clients",
                  std::string(kClientsHeader) + client_row("UP-3", nhs_number(314), "Trustfeed"));
  REQUIRE_MESSAGE(fed.status == 200, fed.body);
  CHECK(entry_statuses(json(fed.body)) == "200 OK");
  // Break-glass lets the trust update a record it may not see; that makes it no supplier either.
  CHECK(trust
            ->send_json("PUT", "/Patient/" + by_glass, patient_json("Trustglass", nhs_number(316), by_glass),
                        {{"X-Purpose-Of-Use", "ETREAT"}})
            .status == 200);

  // Every update was applied, and none made the trust a supplier.
  for (const auto& [id, family] :
       std::vector<std::pair<std::string, std::string>>{{by_rest, "Trustrest"},
                                                        {by_batch, "Trustbatch"},
                                                        {by_v2, "Trustvtwo"},
                                                        {by_enhanced, "Trustenhanced"},
                                                        {by_feed, "Trustfeed"},
                                                        {by_glass, "Trustglass"}}) {
    const std::string held = snapshot(*gp, "/Patient/" + id);
    INFO(held);
    CHECK(held.find(family) != std::string::npos);
    CHECK(held.find(supplier_coding("acute-trust")) == std::string::npos);
    CHECK(held.find(supplier_coding("gp-practice")) != std::string::npos);
  }

  // The patients withdraw: retired (PUT inactive) or deleted Consents.
  CHECK(gp->send_json("PUT", "/Consent/" + c_rest,
                      consent_json(by_rest, permit("acute-trust"), c_rest, "inactive"))
            .status == 200);
  CHECK(gp->send_json("PUT", "/Consent/" + c_batch,
                      consent_json(by_batch, permit("acute-trust"), c_batch, "inactive"))
            .status == 200);
  CHECK(gp->request("DELETE", "/Consent/" + c_v2).status == 204);
  CHECK(gp->request("DELETE", "/Consent/" + c_ack).status == 204);
  CHECK(gp->send_json("PUT", "/Consent/" + c_feed,
                      consent_json(by_feed, permit("acute-trust"), c_feed, "inactive"))
            .status == 200);

  for (const std::string& id : {by_rest, by_batch, by_v2, by_enhanced, by_feed, by_glass}) {
    INFO("Patient/" << id);
    CHECK(trust->get("/Patient/" + id).status == 404);
    CHECK(trust->get("/Patient/" + id + "/_history/2").status == 404);
  }
  const auto search = json(trust
                               ->get("/Patient?family=Trustrest,Trustbatch,Trustvtwo,Trustenhanced,Trustfeed,"
                                     "Trustglass&_total=accurate")
                               .body);
  CHECK(ids_in(search).empty());
  CHECK(text_at(search, "total") == "0");

  // What the trust created (REST create, or update-as-create of a never-used id) stays its own.
  const std::string own = create_patient(*trust, "Trustown", nhs_number(317));
  CHECK(trust
            ->send_json("PUT", "/Patient/trust-put-created",
                        patient_json("Trustown", nhs_number(318), "trust-put-created"))
            .status == 201);
  CHECK(trust->get("/Patient/" + own).status == 200);
  CHECK(trust->get("/Patient/trust-put-created").status == 200);
}

}  // namespace
}  // namespace fhirgate::testing::security
