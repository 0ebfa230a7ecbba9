#include "gateway/config/config.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tests/support/paths.hpp"

namespace fhirgate::gateway {
namespace {

std::string write(const std::string& text) {
  const std::string path = testing::temp_dir() + "/config.json";
  std::ofstream(path) << text;
  return path;
}

std::string load_error(const std::string& text) {
  try {
    load_config(write(text));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("the sample configuration loads, with paths relative to its folder") {
  const Config c = load_config(testing::source_path("samples/gateway.json"));
  CHECK(c.server.port == 8080);
  CHECK(c.server.threads == 2);
  CHECK(c.server.body_limit_bytes == 10485760);
  CHECK(c.database_path == testing::source_path("var/fhirgate.db"));
  REQUIRE(c.seed_files.size() == 1);
  CHECK(c.seed_files[0] == testing::source_path("samples/patients.json"));
  CHECK(c.cached_types == std::vector<std::string>{"Patient", "Consent", "AuditEvent", "Organization"});
  CHECK(c.security.enabled);
  CHECK(c.security.consent_policy == "opt-in");
  // The partners and the two roles of the agreement.
  for (const char* id : {"gp-practice", "acute-trust", "social-care", "operator", "privacy-officer"})
    CHECK_MESSAGE(find_partner(c, id), id);
  CHECK(find_partner(c, "privacy-officer")->role == "privacy-officer");
  CHECK(find_partner(c, "operator")->role == "operator");
  CHECK(find_partner(c, "acute-trust")->ods_code == "RX1");
  CHECK(find_partner(c, "social-care")->access.at("Consent").count("create") == 1);
  CHECK(find_partner(c, "social-care")->access.count("AuditEvent") == 0);
  // The sample's MLLP listener is bound to the GP practice.
  REQUIRE(c.mllp.listeners.size() == 1);
  CHECK(c.mllp.listeners[0].port == 2575);
  CHECK(c.mllp.listeners[0].partner == "gp-practice");
  const PartnerConfig* gp = find_partner(c, "gp-practice");
  REQUIRE(gp);
  CHECK(gp->nhs_number_authority == "NHS");
  CHECK_FALSE(gp->local_identifier_system.empty());
  CHECK(find_partner(c, "acute-trust"));
  CHECK(find_partner(c, "social-care"));
  CHECK_FALSE(find_partner(c, "nobody"));
}

TEST_CASE("partners and MLLP listeners: listeners bound to a partner or identifying senders by MSH-4") {
  const Config c = load_config(write(R"({
    "partners": [{"id": "a", "name": "A", "hl7v2": {"sendingFacilities": ["FA"], "nhsNumberAuthority": "NHSA",
                  "localIdentifierSystem": "https://a.example/id"}}, {"id": "b"}],
    "mllp": {"listeners": [{"port": 0, "partner": "a"}, {"bind": "0.0.0.0", "port": 2600}],
             "idleTimeoutMs": 1000, "maxMessageBytes": 2048}})"));
  REQUIRE(c.partners.size() == 2);
  CHECK(c.partners[0].sending_facilities == std::vector<std::string>{"FA"});
  CHECK(c.partners[0].nhs_number_authority == "NHSA");
  CHECK(c.partners[1].nhs_number_authority == "NHS");
  REQUIRE(c.mllp.listeners.size() == 2);
  CHECK(c.mllp.listeners[0].partner == "a");
  CHECK(c.mllp.listeners[1].partner.empty());
  CHECK(c.mllp.listeners[1].bind == "0.0.0.0");
  CHECK(c.mllp.idle_timeout_ms == 1000);

  CHECK(load_error(R"({"mllp": {"listeners": [{"partner": "x"}]}})")
            .find("mllp.listeners[0].partner: no partner 'x'") != std::string::npos);
  CHECK(load_error(R"({"partners": [{"id": "a"}, {"id": "a"}]})").find("partners[1].id") !=
        std::string::npos);
  CHECK(load_error(R"({"partners": [{"id": "a", "hl7v2": {"sendingFacilities": ["F"]}},
                                    {"id": "b", "hl7v2": {"sendingFacilities": ["F"]}}]})")
            .find("belongs to two partners") != std::string::npos);
  CHECK(load_error(R"({"partners": [{"name": "no id"}]})").find("needs an id") != std::string::npos);
  CHECK(load_error(R"({"partners": [{"id": "a", "hl7v2": {"nhs": 1}}]})").find("partners[0].hl7v2.nhs") !=
        std::string::npos);
  CHECK(load_error(R"({"partners": [{"id": "a", "access": {"Patient": ["peek"]}}]})")
            .find("unknown interaction 'peek'") != std::string::npos);
  CHECK(
      load_error(R"({"roles": [{"id": "r", "role": "king"}]})").find("must be operator or privacy-officer") !=
      std::string::npos);
  CHECK(load_error(R"({"security": {"consentPolicy": "maybe"}})").find("opt-in or opt-out") !=
        std::string::npos);
  CHECK(load_config(write("{}")).security.enabled);  // a configuration file means security on ...
  CHECK_FALSE(default_config().security.enabled);    // ... only running without one turns it off
}

TEST_CASE("configuration mistakes name the file, the key and the problem") {
  CHECK(load_error(R"({"server":{"prot":1}})").find("server.prot: unknown setting") != std::string::npos);
  CHECK(load_error(R"({"server":{"port":"80"}})").find("server.port: expected a number") !=
        std::string::npos);
  CHECK(load_error(R"({"server":{"port":70000}})").find("between 0 and 65535") != std::string::npos);
  CHECK(load_error(R"({"cachedTypes":[]})").find("cachedTypes") != std::string::npos);
  CHECK(load_error("{\n\"server\": {,}\n}").find(":2:") != std::string::npos);
  CHECK(load_error(R"({"database":{"path":"x.db"}})").empty());
}

TEST_CASE("routes: read with their receivers' endpoints; unknown partners, formats and endpoints refused") {
  const std::string partners = R"("partners":[
    {"id":"gp","name":"GP"},
    {"id":"trust","name":"Trust","endpoint":{"fhirBaseUrl":"http://127.0.0.1:9000/fhir/","timeoutMs":2500}}])";
  const Config c = load_config(write("{" + partners + R"(,
    "routes":[{"id":"r1","from":"gp","types":["Patient"],"to":["trust"]}],
    "delivery":{"maxAttempts":3,"baseDelayMs":100}})"));
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].from == "gp");
  CHECK(c.routes[0].types == std::vector<std::string>{"Patient"});
  CHECK(c.routes[0].format == "fhir-rest");
  CHECK(find_partner(c, "trust")->endpoint.fhir_base_url == "http://127.0.0.1:9000/fhir");
  CHECK(find_partner(c, "trust")->endpoint.timeout_ms == 2500);
  CHECK(c.delivery.max_attempts == 3);
  CHECK(c.delivery.base_delay_ms == 100);
  auto route_error = [&](const std::string& route) {
    return load_error("{" + partners + R"(,"routes":[)" + route + "]}");
  };
  CHECK(route_error(R"({"id":"r","from":"lab","to":["trust"]})").find("routes[0].from: no partner 'lab'") !=
        std::string::npos);
  CHECK(route_error(R"({"id":"r","to":["gp"]})").find("partner 'gp' has no endpoint.fhirBaseUrl") !=
        std::string::npos);
  CHECK(route_error(R"({"id":"r","to":["trust"],"format":"hl7v2-mllp","types":["Patient"]})")
            .find("partner 'trust' has no endpoint.mllp") != std::string::npos);
  CHECK(route_error(R"({"id":"r","to":["trust"],"format":"file"})").find("has no endpoint.dropFolder") !=
        std::string::npos);
  CHECK(route_error(R"({"id":"r","to":["trust"],"format":"hl7v2-mllp","types":["Consent"]})")
            .find("for Patients only") != std::string::npos);
  CHECK(route_error(R"({"id":"r","to":["trust"],"events":["admit-notification"]})")
            .find("format fhir-message or file") != std::string::npos);
  CHECK(route_error(R"({"id":"r","to":["trust"],"events":["a"],"types":["Patient"],"format":"file"})")
            .find("either events") != std::string::npos);
  CHECK(route_error(R"({"id":"r","to":["trust"],"format":"fax"})").find("unknown format 'fax'") !=
        std::string::npos);
  CHECK(route_error(R"({"id":"r","to":[]})").find("at least one receiving partner") != std::string::npos);

  // Every endpoint kind, a message route, and the folder resolved against the configuration's.
  const std::string path = write(R"({"partners":[{"id":"gp"},
    {"id":"mh","odsCode":"RXT","endpoint":{"mllp":{"host":"10.0.0.5","port":2575,"receivingApplication":"RIO",
      "receivingFacility":"RXT"},"dropFolder":"drop/mh","fhirBaseUrl":"http://mh.example/fhir"}}],
    "routes":[{"id":"adt","types":["Patient"],"to":["mh"],"format":"hl7v2-mllp"},
              {"id":"files","events":["*"],"to":["mh"],"format":"file"}]})");
  const Config all = load_config(path);
  const auto& e = find_partner(all, "mh")->endpoint;
  CHECK(e.mllp_host == "10.0.0.5");
  CHECK(e.mllp_port == 2575);
  CHECK(e.receiving_application == "RIO");
  CHECK(e.receiving_facility == "RXT");
  CHECK(e.drop_folder == (std::filesystem::path(path).parent_path() / "drop/mh").string());
  CHECK(all.routes[1].events == std::vector<std::string>{"*"});
  CHECK(load_error(R"({"partners":[{"id":"mh","endpoint":{"mllp":{"host":"h"}}}]})")
            .find("needs a host and a port") != std::string::npos);
}

}  // namespace
}  // namespace fhirgate::gateway
