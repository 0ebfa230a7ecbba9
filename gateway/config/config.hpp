#pragma once
// The gateway configuration: read once at start-up from a JSON file; immutable afterwards and shared
// by every thread.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fhirgate::gateway {

struct ServerConfig {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned threads = 2;                             // io threads
  std::size_t body_limit_bytes = 16 * 1024 * 1024;  // larger bodies get 413
  std::size_t header_limit_bytes = 16 * 1024;
  unsigned header_timeout_ms = 10000;  // a request's headers must arrive within this (also keep-alive idle)
  unsigned body_timeout_ms = 30000;    // and its body within this
  unsigned shutdown_grace_ms = 10000;  // in-flight requests get this long to finish on SIGTERM
  unsigned validation_budget_ms = 10000;  // the CPU time validating one request or message may take
};

// A credential holder: a partner organisation of the information sharing agreement, or a role
// (operator, privacy officer) given tokens the same way.
// A flat-file feed a partner sends (CSV or XML), mapped by a declarative mapping file.
struct FeedConfig {
  std::string id;       // e.g. clients, consents; names the feed in POST /$ingest?feed=
  std::string mapping;  // mapping file (mappers/feed_mapping.hpp)
  std::string folder;   // watched inbound folder (taken files go to done/ or failed/); empty = none
};

// Where a partner receives what routes send it (docs/routing-plan.md). Which of these it has decides the
// formats routes may send it.
struct EndpointConfig {
  std::string fhir_base_url;  // fhir-rest: PUT <base>/<type>/<id>; fhir-message: POST <base>/$process-message
  std::string mllp_host;      // hl7v2-mllp: ADT messages over MLLP
  std::uint16_t mllp_port = 0;
  std::string receiving_application;  // MSH-5 and MSH-6 of what is sent over MLLP
  std::string receiving_facility;
  std::string drop_folder;  // file: one JSON Bundle per delivery, written whole (.part, then renamed)
  unsigned timeout_ms = 5000;
};

struct PartnerConfig {
  std::string id;                // e.g. gp-practice
  std::string name;              // for people
  std::string role = "partner";  // partner, operator, privacy-officer
  std::string ods_code;          // the Organization's ODS code (partners)
  // A consent registrar may record patients' sharing decisions (patient-privacy Consents); so may the
  // privacy-officer role (docs/security.md).
  bool consent_registrar = false;
  // Resource type ("*" = any) -> FHIR interactions allowed: read, vread, history-instance, history-type,
  // search-type, create, update, delete.
  std::map<std::string, std::set<std::string>> access;
  std::vector<std::string> purposes;  // purposes of use it may claim (v3-ActReason); the first is its default
  std::vector<std::string> inbound;   // formats it sends: fhir-rest, hl7v2-mllp, hl7v2-http, csv, xml
  std::string mapping_variant;        // which declarative mapping its feeds use (CSV/XML feeds)
  // MSH-4.1 (namespace id) values the partner's systems send as; how a listener that is not bound to one
  // partner, and POST /$ingest, tell partners apart.
  std::vector<std::string> sending_facilities;
  std::string nhs_number_authority = "NHS";  // PID-3.4 that marks the NHS number
  std::string local_identifier_system;       // system for the partner's other PID-3 identifiers
  std::vector<FeedConfig> feeds;
  EndpointConfig endpoint;
};

// An outbound route: what `from` (a partner, or anyone: "*") sends that is sent on to `to`, and how.
// A route with `events` routes FHIR messages (POST /$process-message) whose MessageHeader event is one of
// them; otherwise it routes writes of resources of one of `types` (any when empty), stored or passed
// through (types the gateway does not hold, in Bundles). Deliveries are recorded in the write's own
// commit (the outbox). Formats: fhir-rest, fhir-message, hl7v2-mllp (Patient only), file.
struct RouteConfig {
  std::string id;
  std::string from = "*";
  std::vector<std::string> types;
  std::vector<std::string> events;
  std::vector<std::string> to;
  std::string format = "fhir-rest";
};

struct DeliveryConfig {
  unsigned max_attempts = 8;     // then the delivery is a dead letter
  unsigned base_delay_ms = 500;  // retry n waits about base * 2^n (with jitter), at most max
  unsigned max_delay_ms = 300000;
};

// One MLLP port. Bound to a partner, it accepts any sending facility as that partner; unbound, it
// identifies the partner of each message by MSH-4.
struct MllpListenerConfig {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 2575;  // 0 = any free port
  std::string partner;        // empty = identify by MSH-4
};

// The MLLP listeners for inbound HL7 v2 ADT (none = no MLLP).
struct MllpConfig {
  std::vector<MllpListenerConfig> listeners;
  unsigned idle_timeout_ms = 60000;             // a connection silent this long is closed
  std::size_t max_message_bytes = 1024 * 1024;  // a larger message is rejected (AR, HL7 error 104)
};

struct SecurityConfig {
  // Authentication, consent enforcement and audit. Off only without a configuration file (tests, local
  // experiments), and then said loudly at start-up.
  bool enabled = true;
  std::string consent_policy = "opt-in";            // opt-in or opt-out
  std::string purpose_header = "X-Purpose-Of-Use";  // request header naming the purpose of use
  std::string audit_key_file;                       // empty: <database>.audit-key
};

// The message journal's retention (docs/operators.md).
struct JournalConfig {
  unsigned payload_retention_days = 7;  // payloads are purged after this
  unsigned retention_days = 90;         // entries after this
};

struct Config {
  std::string source_path;  // the file it was read from
  SecurityConfig security;
  ServerConfig server;
  std::vector<PartnerConfig> partners;
  MllpConfig mllp;
  std::string database_path = "var/fhirgate.db";
  std::string base_url;  // public base URL for links; empty = http://<Host header>
  std::vector<std::string> cached_types = {"AuditEvent", "Consent", "Patient"};
  std::map<std::string, std::vector<std::string>> profiles;  // resource type -> profiles enforced on write
  std::string profiles_dir = "profiles";
  std::vector<std::string> seed_files;  // loaded into a new database on first start
  int default_page_size = 20;
  int max_page_size = 1000;
  unsigned feed_poll_ms = 1000;  // how often watched inbound folders are looked at
  std::vector<RouteConfig> routes;
  DeliveryConfig delivery;
  JournalConfig journal;
  std::string log_level = "info";  // debug, info, warn, error: the least severe line written to stderr
  std::string dashboard_dir;       // the operators' dashboard's static files
};

// Reads the configuration. Relative paths in it are resolved against the file's folder. Throws
// std::runtime_error naming the file and the problem (unknown key, wrong type, bad value).
Config load_config(const std::string& path);
// The configuration used without a file (tests, `fhirgate serve` without --config).
Config default_config();
// The partner with this id, or null.
const PartnerConfig* find_partner(const Config& config, std::string_view id);

}  // namespace fhirgate::gateway
