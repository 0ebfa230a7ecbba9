// CSV and XML partner feeds against the real gateway: POST /$ingest with the shipped sample files and
// mappings, consent from a register governing what another partner sees, watched folders, and files
// or mappings that cannot be taken.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Security on, the partnership profiles enforced; social-care sends the sample feeds (the consent
// register without a folder), acute-trust reads.
std::string feed_config(const std::string& dir, const std::string& clients_mapping) {
  const std::string feeds = source_path("samples/feeds/social-care");
  return R"({
  "security": {"enabled": true, "consentPolicy": "opt-in"},
  "profilesDir": ")" +
         source_path("profiles") + R"(",
  "profiles": {"Patient": ["https://fhir.partnership.example/StructureDefinition/partnership-patient"],
               "Consent": ["https://fhir.partnership.example/StructureDefinition/partnership-consent"]},
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "feedPollMs": 50,
  "partners": [
    {"id": "social-care", "name": "Westshire Council Adult Social Care", "odsCode": "W00001",
     "consentRegistrar": true,
     "access": {"Patient": ["read", "search-type", "create", "update"],
                "Consent": ["read", "search-type", "create", "update"]},
     "inbound": ["csv", "xml"],
     "feeds": [
       {"id": "clients", "mapping": ")" +
         clients_mapping + R"(", "folder": ")" + dir + R"(/inbound/clients"},
       {"id": "consents", "mapping": ")" +
         feeds + R"(/consents.mapping.json"},
       {"id": "clients-xml", "mapping": ")" +
         feeds + R"(/clients-xml.mapping.json"}]},
    {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
     "access": {"Patient": ["read", "search-type", "create"]}, "inbound": ["fhir-rest"]}
  ],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}}]
})";
}

struct FeedGateway {
  std::string dir = temp_dir();
  std::string config = dir + "/gateway.json";
  std::string social, trust, operator_token;
  std::unique_ptr<GatewayProcess> gateway;

  explicit FeedGateway(
      const std::string& clients_mapping = source_path("samples/feeds/social-care/clients.mapping.json")) {
    std::ofstream(config) << feed_config(dir, clients_mapping);
    social = new_token(config, dir, "social-care");
    trust = new_token(config, dir, "acute-trust");
    operator_token = new_token(config, dir, "operator");
    gateway = std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", config}, dir);
  }
  Response ingest(const std::string& feed, const std::string& content_type, const std::string& body,
                  const std::string& token = {}) {
    HttpClient http(gateway->port());
    return http.request(
        "POST", "/$ingest?feed=" + feed, body,
        {{"Authorization", "Bearer " + (token.empty() ? social : token)}, {"Content-Type", content_type}});
  }
};

// "201 Created" -> 201, per entry, in order.
std::vector<int> statuses(const fhir::Node& bundle) {
  std::vector<int> out;
  if (const auto* entries = bundle.find("entry"))
    for (const auto& e : entries->items()) out.push_back(std::stoi(text_at(e, "response.status")));
  return out;
}

std::string patient_id_by_nhs(HttpClient& http, const std::string& nhs) {
  const auto r = http.get("/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return text_at(json(r.body), "entry[0].resource.id");
}

TEST_CASE(
    "feeds: a client list CSV is taken row by row; every row is answered; re-ingesting changes nothing") {
  FeedGateway g;
  const std::string csv = slurp(source_path("samples/feeds/social-care/clients.csv"));
  const auto first = g.ingest("clients", "text/csv", csv);
  REQUIRE_MESSAGE(first.status == 200, first.body);
  const auto bundle = json(first.body);
  CHECK(bundle.string_at("type") == "batch-response");
  // Rows 5-7: a bad NHS number, 31 February, no NHS number; row 9: deceased, skipped.
  CHECK(statuses(bundle) == std::vector<int>{201, 201, 201, 201, 422, 422, 422, 201, 204, 201});
  CHECK(text_at(bundle, "entry[4].response.outcome.issue[0].diagnostics") ==
        "row 5 (line 6): column 'NHS Number' (identifier[0].value): '943 476 5910' is not a valid NHS number "
        "(ten "
        "digits with the Modulus 11 check digit)");
  CHECK(
      text_at(bundle, "entry[5].response.outcome.issue[0].diagnostics").find("'31/02/1960' is not a date") !=
      std::string::npos);
  CHECK(text_at(bundle, "entry[8].response.outcome.issue[0].diagnostics") ==
        "row 9 (line 11): column 'Status' is 'Deceased'");
  CHECK(first.header("X-Ingest-Summary") == "rows=10, created=6, rejected=3, skipped=1");

  HttpClient http(g.gateway->port(), bearer(g.social));
  // Row 2: title case, the postcode upper-cased, the quoted address with its comma kept.
  const auto obrien = http.get("/Patient/" + patient_id_by_nhs(http, "9999900089"));
  const auto p = json(obrien.body);
  CHECK(text_at(p, "name[0].family") == "O'Brien");
  CHECK(text_at(p, "name[0].given[0]") == "Patrick");
  CHECK(text_at(p, "birthDate") == "1952-11-03");
  CHECK(text_at(p, "gender") == "male");
  CHECK(text_at(p, "address[0].line[0]") == "Flat 2, Riverside Court");
  CHECK(text_at(p, "address[0].postalCode") == "WS2 7CD");
  CHECK(text_at(p, "identifier[1].value") == "WSC-10232");
  CHECK(text_at(p, "meta.tag[0].code") == "social-care");  // the supplier is recorded
  // Row 8's address holds a line break inside quotes.
  const auto patel = json(http.get("/Patient/" + patient_id_by_nhs(http, "9999900364")).body);
  CHECK(text_at(patel, "address[0].line[0]") == "22 Orchard Way\nRear entrance");

  const auto again = g.ingest("clients", "text/csv", csv);
  REQUIRE(again.status == 200);
  const auto second = json(again.body);
  CHECK(statuses(second) == std::vector<int>{200, 200, 200, 200, 422, 422, 422, 200, 204, 200});
  CHECK(text_at(second, "entry[0].response.location") == text_at(bundle, "entry[0].response.location"));
  CHECK(text_at(second, "entry[0].response.location").ends_with("/_history/1"));
  CHECK(again.header("X-Ingest-Summary") == "rows=10, rejected=3, skipped=1, unchanged=6");

  // A changed row updates the held Patient in place, keeping what the row does not say.
  std::string moved = csv;
  const auto at = moved.find("ws2 7cd");
  REQUIRE(at != std::string::npos);
  moved.replace(at, 7, "WS9 9ZZ");
  const auto third = json(g.ingest("clients", "text/csv", moved).body);
  CHECK(statuses(third)[1] == 200);
  CHECK(text_at(third, "entry[1].response.location").ends_with("/_history/2"));
  const auto updated = json(http.get("/Patient/" + patient_id_by_nhs(http, "9999900089")).body);
  CHECK(text_at(updated, "address[0].postalCode") == "WS9 9ZZ");
  CHECK(text_at(updated, "identifier[0].value") == "9999900089");
}

TEST_CASE(
    "feeds: a row that maps to an invalid resource is refused by validation and counted in the metrics") {
  // The sample mapping with the Sex column copied as it is: "Female" is not an AdministrativeGender code.
  std::string mapping = slurp(source_path("samples/feeds/social-care/clients.mapping.json"));
  const std::size_t gender = mapping.find(R"({ "path": "gender")");
  const std::size_t birth = mapping.find(R"({ "path": "birthDate")");
  REQUIRE((gender != std::string::npos && birth != std::string::npos));
  mapping.replace(gender, birth - gender, R"({ "path": "gender", "column": "Sex", "transforms": ["trim"] },
    )");
  const std::string mapping_file = temp_dir() + "/clients.mapping.json";
  std::ofstream(mapping_file) << mapping;
  FeedGateway g(mapping_file);
  const auto r =
      g.ingest("clients", "text/csv",
               "Client ID,NHS Number,Surname,Forename,Date of Birth,Sex,Address Line 1,Town,Postcode,"
               "Status\r\nWSC-1,999 990 0011,Hargreaves,Margaret,14/02/1941,Female,12 Mill Lane,"
               "Westshire,WS1 4AB,Active\r\n");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto bundle = json(r.body);
  CHECK(statuses(bundle) == std::vector<int>{422});
  CHECK_MESSAGE(
      text_at(bundle, "entry[0].response.outcome.issue[0].diagnostics").find("not a valid Patient") !=
          std::string::npos,
      r.body);
  HttpClient ops(g.gateway->port(), bearer(g.operator_token));
  CHECK(ops.get("/metrics").body.find(R"(fhirgate_validation_failures_total{resource="Patient"} 1)") !=
        std::string::npos);
}

TEST_CASE("feeds: the charset in Content-Type overrides the mapping's encoding") {
  FeedGateway g;
  const std::string header =
      "Client ID,NHS Number,Surname,Forename,Date of Birth,Sex,Address Line 1,Town,Postcode,Status\r\n";
  // "Ren\xE9e Lef\xE8vre" in Windows-1252; the clients mapping says UTF-8.
  const std::string row =
      "WSC-9,943 476 5919,LEF\xC8"
      "VRE,ren\xE9"
      "e,01/02/1950,F,1 Rue,Westshire,WS1 1AA,Active\r\n";
  const auto as_utf8 = g.ingest("clients", "text/csv", header + row);
  REQUIRE(as_utf8.status == 200);
  CHECK(statuses(json(as_utf8.body)) == std::vector<int>{422});
  CHECK(
      text_at(json(as_utf8.body), "entry[0].response.outcome.issue[0].diagnostics").find("not valid UTF-8") !=
      std::string::npos);
  const auto declared = g.ingest("clients", "text/csv; charset=windows-1252", header + row);
  REQUIRE(declared.status == 200);
  CHECK(statuses(json(declared.body)) == std::vector<int>{201});
  HttpClient social(g.gateway->port(), bearer(g.social));
  const auto p = json(social.get("/Patient/" + patient_id_by_nhs(social, "9434765919")).body);
  CHECK(text_at(p, "name[0].family") ==
        "Lef\xC3\xA8"
        "vre");
  CHECK(text_at(p, "name[0].given[0]") ==
        "Ren\xC3\xA9"
        "e");
  CHECK(g.ingest("clients", "text/csv; charset=ebcdic", header + row).status == 415);
}

TEST_CASE(
    "feeds: a row with broken quoting is rejected where the quote opened; the rows after it are taken") {
  FeedGateway g;
  const std::string csv =
      "Client ID,NHS Number,Surname,Forename,Date of Birth,Sex,Address Line 1,Town,Postcode,Status\r\n"
      "WSC-1,999 990 0011,Hargreaves,Margaret,14/02/1941,F,\"12 Mill Lane,Westshire,WS1 4AB,Active\r\n"
      "WSC-2,999 990 0089,O'Brien,Patrick,03/11/1952,M,2 Riverside,Westshire,WS2 7CD,Active\r\n"
      "WSC-3,999 990 0151,Smith,Ann,30/07/1967,F,4 Church \"St\",Northfield,WS3 1EF,Active\r\n"
      "WSC-4,999 990 0224,Okafor,Chidi,21/09/1938,M,9 Station Road,Westshire,WS1 9GH,Active\r\n";
  const auto r = g.ingest("clients", "text/csv", csv);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto bundle = json(r.body);
  CHECK(statuses(bundle) == std::vector<int>{422, 201, 422, 201});
  CHECK(text_at(bundle, "entry[0].response.outcome.issue[0].diagnostics")
            .find("line 2, column 53: quote never closed") != std::string::npos);
  CHECK(text_at(bundle, "entry[2].response.outcome.issue[0].diagnostics")
            .find("a quote inside an unquoted field") != std::string::npos);
}

TEST_CASE("feeds: the consent register (Windows-1252, semicolons) decides what another partner sees") {
  FeedGateway g;
  REQUIRE(
      g.ingest("clients", "text/csv", slurp(source_path("samples/feeds/social-care/clients.csv"))).status ==
      200);
  const auto r =
      g.ingest("consents", "text/csv", slurp(source_path("samples/feeds/social-care/consents.csv")));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto bundle = json(r.body);
  // Row 3 has an unquoted ';' in its notes (ragged), row 5 names a client the gateway does not hold,
  // row 6 says "Yes please".
  CHECK(statuses(bundle) == std::vector<int>{201, 201, 422, 201, 422, 422});
  CHECK(text_at(bundle, "entry[2].response.outcome.issue[0].diagnostics")
            .find("5 fields where the header has 4") != std::string::npos);
  CHECK(
      text_at(bundle, "entry[4].response.outcome.issue[0].diagnostics").find("no Patient with identifier") !=
      std::string::npos);

  HttpClient social(g.gateway->port(), bearer(g.social));
  const std::string opted_in = patient_id_by_nhs(social, "9999900011");
  const std::string not_asked = patient_id_by_nhs(social, "9999900364");
  HttpClient trust(g.gateway->port(), bearer(g.trust));
  CHECK(trust.get("/Patient/" + opted_in).status == 200);   // Y in the register: permit
  CHECK(trust.get("/Patient/" + not_asked).status == 404);  // not in the register: opt-in policy
  const auto consent = json(social.get("/Consent?patient=" + opted_in).body);
  CHECK(text_at(consent, "entry[0].resource.provision.type") == "permit");
  CHECK(text_at(consent, "entry[0].resource.dateTime") == "2024-03-15");
  CHECK(text_at(consent, "entry[0].resource.policyRule.coding[0].code") == "OPTIN");
}

TEST_CASE(
    "feeds: a row updating a record its patient has not let the partner see is held, and opens nothing") {
  FeedGateway g;
  HttpClient trust(g.gateway->port(), bearer(g.trust));
  const auto created = trust.send_json(
      "POST", "/Patient",
      R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9999900011"}],)"
      R"("name":[{"family":"Registered","given":["ByTrust"]}],"birthDate":"1990-05-01"})");
  REQUIRE_MESSAGE(created.status == 201, created.body);
  const std::string id(json(created.body).string_at("id"));
  const auto r = g.ingest("clients", "text/csv", slurp(source_path("samples/feeds/social-care/clients.csv")));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  // The client list's first row is that patient, whose record social care may not see (no Consent):
  // the row is held for a registrar (docs/security.md), the record untouched, nothing opened.
  CHECK(statuses(json(r.body))[0] == 202);
  const auto held = json(trust.get("/Patient/" + id).body);
  CHECK(text_at(held, "meta.versionId") == "1");
  CHECK(text_at(held, "meta.tag[0].code") == "acute-trust");
  CHECK_FALSE(at(held, "meta.tag[1]"));
  HttpClient social(g.gateway->port(), bearer(g.social));
  CHECK(social.get("/Patient/" + id).status == 404);
}

TEST_CASE("feeds: an XML export; malformed files, missing columns and unknown feeds are refused whole") {
  FeedGateway g;
  const auto xml =
      g.ingest("clients-xml", "application/xml", slurp(source_path("samples/feeds/social-care/clients.xml")));
  REQUIRE_MESSAGE(xml.status == 200, xml.body);
  const auto bundle = json(xml.body);
  CHECK(statuses(bundle) == std::vector<int>{201, 201, 422});
  CHECK(text_at(bundle, "entry[2].response.outcome.issue[0].diagnostics") ==
        "row 3 (line 18): xpath 'w:Born' (birthDate): '1990-13-01' is not a date in the form yyyymmdd");
  HttpClient social(g.gateway->port(), bearer(g.social));
  const auto willem = json(social.get("/Patient/" + patient_id_by_nhs(social, "9999900852")).body);
  CHECK(text_at(willem, "name[0].given[1]") == "Johan");
  CHECK(text_at(willem, "birthDate") == "1936-04-19");

  const auto broken = g.ingest("clients-xml", "application/xml",
                               "<ClientExport xmlns=\"urn:westshire:wcms:clients:2\">\n<Client>");
  CHECK(broken.status == 400);
  CHECK(first_issue(broken).find("not well-formed") != std::string::npos);
  const auto hostile =
      g.ingest("clients-xml", "application/xml",
               "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>");
  CHECK(hostile.status == 400);
  CHECK(first_issue(hostile).find("DTD") != std::string::npos);

  const auto columns = g.ingest("clients", "text/csv", "Client ID,Surname\r\nWSC-1,Smith\r\n");
  CHECK(columns.status == 400);
  CHECK(first_issue(columns).find("'NHS Number'") != std::string::npos);
  CHECK(g.ingest("clients", "text/csv", "").status == 400);
  CHECK(g.ingest("payroll", "text/csv", "a\r\n1\r\n").status == 400);
  CHECK(g.ingest("clients", "application/pdf", "%PDF").status == 415);
  // The trust's agreement does not include CSV feeds.
  CHECK(g.ingest("clients", "text/csv", "a\r\n", g.trust).status == 403);
  // Nothing was stored by the refused files.
  CHECK(text_at(json(social.get("/Patient?_count=50").body), "total") == "2");
}

TEST_CASE("feeds: a file dropped in the watched folder is taken, moved to done/ with a result per row") {
  FeedGateway g;
  const std::string inbound = g.dir + "/inbound/clients";
  REQUIRE(fs::is_directory(inbound + "/done"));
  // Written under a .part name, then renamed: the watcher leaves .part files alone.
  std::ofstream(inbound + "/clients-2024-06.csv.part", std::ios::binary)
      << slurp(source_path("samples/feeds/social-care/clients.csv"));
  fs::rename(inbound + "/clients-2024-06.csv.part", inbound + "/clients-2024-06.csv");
  std::ofstream(inbound + "/empty.csv");
  std::string result, failed_result;
  for (int i = 0; i < 200 && (result.empty() || failed_result.empty()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& e : fs::directory_iterator(inbound + "/done"))
      if (e.path().string().ends_with("clients-2024-06.csv.result.csv")) result = slurp(e.path().string());
    for (const auto& e : fs::directory_iterator(inbound + "/failed"))
      if (e.path().string().ends_with("empty.csv.result.csv")) failed_result = slurp(e.path().string());
  }
  REQUIRE_FALSE(result.empty());
  CHECK(result.starts_with("row,line,status,resource,reason\r\n1,2,created,Patient/"));
  CHECK(result.find(
            "\r\n5,6,rejected,,column 'NHS Number' (identifier[0].value): '943 476 5910' is not a valid") !=
        std::string::npos);
  CHECK(result.find("\r\n9,11,skipped,,column 'Status' is 'Deceased'\r\n") != std::string::npos);
  CHECK(std::count(result.begin(), result.end(), '\n') == 11);  // the header and ten rows
  CHECK_FALSE(fs::exists(inbound + "/clients-2024-06.csv"));
  CHECK(failed_result.find("failed") != std::string::npos);
  CHECK(failed_result.find("header row is expected") != std::string::npos);
  HttpClient social(g.gateway->port(), bearer(g.social));
  CHECK_FALSE(patient_id_by_nhs(social, "9999900011").empty());
  CHECK(g.gateway->stderr_text().find("feed social-care/clients took clients-2024-06.csv: 10 rows") !=
        std::string::npos);
}

TEST_CASE("feeds: a file still being written in place is not taken until it stops changing") {
  FeedGateway g;
  const std::string inbound = g.dir + "/inbound/clients";
  const std::string csv = slurp(source_path("samples/feeds/social-care/clients.csv"));
  {
    // Line by line over ~10 polls of the watcher (50 ms), without the .part convention.
    std::ofstream out(inbound + "/slow.csv", std::ios::binary);
    std::size_t from = 0;
    while (from < csv.size()) {
      const std::size_t to = std::min(csv.size(), csv.find('\n', from) + 1);
      out << csv.substr(from, to - from) << std::flush;
      from = to;
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
    }
  }
  std::string result;
  for (int i = 0; i < 200 && result.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& e : fs::directory_iterator(inbound + "/done"))
      if (e.path().string().ends_with("slow.csv.result.csv")) result = slurp(e.path().string());
  }
  REQUIRE_FALSE(result.empty());
  CHECK(std::count(result.begin(), result.end(), '\n') == 11);  // every row, in one go
}

TEST_CASE("feeds: a mapping with a mistake stops the gateway at start, naming the file and line") {
  const std::string dir = temp_dir();
  const std::string mapping = dir + "/clients.mapping.json";
  std::ofstream(mapping) << R"({"resourceType": "Patient", "format": "csv",
  "csv": {"columns": ["NHS Number", "Surname"]},
  "fields": [
    {"path": "identifier[0].value", "column": "NHS Number"},
    {"path": "name[0].family", "column": "Last Name"}
  ]})";
  const std::string config = dir + "/gateway.json";
  std::ofstream(config) << feed_config(dir, mapping);
  const Run r = run_fhirgate("serve --port 0 --config " + config + " --db " + dir + "/fhirgate.db");
  CHECK(r.status != 0);
  CHECK(r.err.find(mapping + ":5: unknown column 'Last Name' (not in csv.columns)") != std::string::npos);
}

// The mapping fails after the store's writer started calling the metrics observers; unwinding destroyed
// the observers while the writer could still be inside one (run_fhirgate fails on a sanitizer report).
TEST_CASE("tsan: a start stopped by a bad feed mapping no longer destroys the observers under the writer") {
  const std::string dir = temp_dir();
  const std::string mapping = dir + "/clients.mapping.json";
  std::ofstream(mapping) << R"({"resourceType": "Patient", "format": "csv", "csv": {"columns": ["A"]},
  "fields": [{"path": "name[0].family", "column": "B"}]})";
  const std::string config = dir + "/gateway.json";
  std::ofstream(config) << feed_config(dir, mapping);
  for (int i = 0; i < 3; ++i) {
    const Run r = run_fhirgate("serve --port 0 --config " + config + " --db " + dir + "/fhirgate.db");
    CHECK(r.status == 1);
    CHECK(r.err.find("unknown column 'B'") != std::string::npos);
  }
}

}  // namespace
}  // namespace fhirgate::testing
