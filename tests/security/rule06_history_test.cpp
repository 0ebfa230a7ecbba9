// Issue 17, rule 6: history shows only the versions the caller may see. Type history filters before
// paging (full pages) and counts only those in `total`; instance history checks each version as vread
// does; a deleted record's history goes to whoever could read its last live version, and to no one else.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// "<id>/<versionId>" of every entry that holds a resource.
std::set<std::string> versions_in(const fhir::Node& bundle) {
  std::set<std::string> out;
  if (const auto* entries = at(bundle, "entry"))
    for (const auto& e : entries->items())
      if (at(e, "resource"))
        out.insert(text_at(e, "resource.id") + "/" + text_at(e, "resource.meta.versionId"));
  return out;
}

std::size_t entries_in(const fhir::Node& bundle) {
  const auto* entries = at(bundle, "entry");
  return entries ? entries->items().size() : 0;
}

bool has_deletion(const fhir::Node& bundle) {
  if (const auto* entries = at(bundle, "entry"))
    for (const auto& e : entries->items())
      if (text_at(e, "request.method") == "DELETE") return true;
  return false;
}

std::string next_link(const fhir::Node& bundle) {
  if (const auto* links = at(bundle, "link"))
    for (const auto& l : links->items())
      if (l.string_at("relation") == "next") {
        const std::string url(l.string_at("url"));
        return url.substr(url.find("/Patient"));
      }
  return {};
}

TEST_CASE(
    "rule 6: type history is filtered before paging, its pages stay full and its total counts only what may "
    "be seen") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  std::vector<std::string> shared, hidden;
  for (unsigned i = 0; i < 8; ++i) {
    const std::string id = create_patient(*gp, "Histfamily", nhs_number(600 + i));
    if (i % 2 == 0) {
      record_consent(*gp, id, permit("acute-trust"));
      shared.push_back(id);
    } else {
      hidden.push_back(id);
    }
  }
  // A second version of one shared and one hidden record, and a hidden record deleted.
  REQUIRE(gp->send_json("PUT", "/Patient/" + shared[0],
                        patient_json("Histfamily", nhs_number(600), shared[0], R"("active":true)"))
              .status == 200);
  REQUIRE(gp->send_json("PUT", "/Patient/" + hidden[0],
                        patient_json("Histfamily", nhs_number(601), hidden[0], R"("active":true)"))
              .status == 200);
  REQUIRE(gp->request("DELETE", "/Patient/" + hidden[1]).status == 204);
  const std::string own = create_patient(*trust, "Histown", nhs_number(610));
  REQUIRE(trust
              ->send_json("PUT", "/Patient/" + own,
                          patient_json("Histown", nhs_number(610), own, R"("active":true)"))
              .status == 200);
  // A Consent about a hidden patient is that patient's: hidden too.
  record_consent(*gp, hidden[2], deny("acute-trust"));

  std::set<std::string> expected = {shared[0] + "/2", own + "/1", own + "/2"};
  for (const auto& id : shared) expected.insert(id + "/1");

  // Paged two at a time: every page but the last is full, every page says total 7.
  std::set<std::string> seen;
  std::string next = "/Patient/_history?_count=2";
  int pages = 0;
  while (!next.empty() && pages < 20) {
    const auto r = trust->get(next);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    for (const auto& id : hidden) CHECK(r.body.find(id) == std::string::npos);
    const auto bundle = json(r.body);
    CHECK(text_at(bundle, "total") == std::to_string(expected.size()));
    const auto here = versions_in(bundle);
    seen.insert(here.begin(), here.end());
    next = next_link(bundle);
    if (!next.empty()) CHECK(entries_in(bundle) == 2);
    ++pages;
  }
  CHECK(joined(seen) == joined(expected));
  CHECK(pages == 4);

  // One page of everything: the same seven, and the same total.
  const auto all = json(trust->get("/Patient/_history?_count=100").body);
  CHECK(joined(versions_in(all)) == joined(expected));
  CHECK(entries_in(all) == expected.size());
  CHECK(text_at(all, "total") == std::to_string(expected.size()));
  // The patients' Consents likewise: only those about the shared patients.
  const auto consents = json(trust->get("/Consent/_history?_count=2").body);
  CHECK(text_at(consents, "total") == std::to_string(shared.size()));
  CHECK(entries_in(consents) == 2);
}

TEST_CASE(
    "rule 6: instance history shows each version as vread would; a deletion's history goes to whom could "
    "read the record") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");

  // A Consent whose first version was about a patient the trust may see, and whose second moved to one
  // it may not: its history shows the trust the first version only.
  const std::string seen = create_patient(*gp, "Histseen", nhs_number(621));
  const std::string unseen = create_patient(*gp, "Histunseen", nhs_number(622));
  record_consent(*gp, seen, permit("acute-trust"));
  const std::string moving = record_consent(*gp, seen, permit("acute-trust"));
  REQUIRE(
      gp->send_json("PUT", "/Consent/" + moving, consent_json(unseen, deny("acute-trust"), moving)).status ==
      200);
  CHECK(trust->get("/Consent/" + moving + "/_history/1").status == 200);
  CHECK(trust->get("/Consent/" + moving + "/_history/2").status == 404);
  const auto history = trust->get("/Consent/" + moving + "/_history");
  CHECK_MESSAGE(history.status == 200, history.body);
  CHECK(history.body.find(unseen) == std::string::npos);
  if (history.status == 200) {
    const auto bundle = json(history.body);
    CHECK(joined(versions_in(bundle)) == moving + "/1");
    CHECK(entries_in(bundle) == 1);
    CHECK(text_at(bundle, "total") == "1");
  }

  // Deleted records: the GP's own, never shown to the trust; and one its patient shared with the trust.
  const std::string unshared = create_patient(*gp, "Histdeleted", nhs_number(623));
  const std::string shared = create_patient(*gp, "Histdeleted", nhs_number(624));
  record_consent(*gp, shared, permit("acute-trust"));
  REQUIRE(gp->request("DELETE", "/Patient/" + unshared).status == 204);
  REQUIRE(gp->request("DELETE", "/Patient/" + shared).status == 204);

  const auto supplier_view = gp->get("/Patient/" + unshared + "/_history");
  CHECK_MESSAGE(supplier_view.status == 200, supplier_view.body);
  if (supplier_view.status == 200) {
    const auto bundle = json(supplier_view.body);
    CHECK(has_deletion(bundle));
    CHECK(joined(versions_in(bundle)) == unshared + "/1");
  }
  const auto shared_view = trust->get("/Patient/" + shared + "/_history");
  CHECK_MESSAGE(shared_view.status == 200, shared_view.body);
  if (shared_view.status == 200) CHECK(has_deletion(json(shared_view.body)));
  // To the trust the unshared deletion stays exactly as unknown as an id never used.
  const auto hidden_view = trust->get("/Patient/" + unshared + "/_history");
  CHECK(hidden_view.status == 404);
  CHECK(replaced(hidden_view.body, unshared, "nosuchid") == trust->get("/Patient/nosuchid/_history").body);
}

}  // namespace
}  // namespace fhirgate::testing::security
