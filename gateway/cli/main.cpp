// fhirgate command line: `fhirgate serve` and friends. Usage errors exit 2, start-up failures exit 1.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/profiles.hpp"
#include "gateway/config/config.hpp"
#include "gateway/server/app.hpp"

namespace {

constexpr const char* kUsage = R"(fhirgate - FHIR R4 interoperability gateway

Usage:
  fhirgate serve [--config FILE] [--port N] [--bind ADDR] [--db PATH] [--threads N] [--mllp-port N]
  fhirgate convert --to xml|json|hl7v2 [--pretty] [--config FILE] FILE...
  fhirgate validate [--load FILE|DIR]... [--profile URL]... [--security-checks] [--no-example-urls]
                    [--resolve-references] [--no-reference-types] [--config FILE] FILE...
  fhirgate partner add-token HOLDER --config FILE [--db PATH]
  fhirgate audit verify --config FILE [--db PATH]
  fhirgate ops deliveries --config FILE [--db PATH] [--status S] [--destination PARTNER]
                          [--retry ID | --discard ID]
  fhirgate ops tail --config FILE [--db PATH] [--partner P] [--status S] [--limit N]
  fhirgate ops stats --config FILE [--db PATH] [--window SECONDS]
  fhirgate version
  fhirgate --help | fhirgate COMMAND --help

Commands:
  serve     Run the FHIR REST server (HTTP/1.1, FHIR JSON and XML).
  convert   Convert between FHIR JSON, FHIR XML and HL7 v2 ADT messages.
  validate  Check FHIR resources against R4 (and profiles); exit 0 clean, 1 errors, 2 unusable input.
  partner   add-token: create a bearer token for a partner or role; prints it once, on its last line.
  audit     verify: check the audit trail's hash chain, changing nothing; exit 0 intact, 1 broken (names
            the first bad row), 2 when it cannot be checked (no database, no key).
  ops       deliveries: list, retry or discard outbound deliveries; tail: follow the message journal live
            (the latest 10 entries, then each new one, until interrupted or --limit lines); stats: counts
            per partner, direction and status, queue depths and the latest errors.
  version   Print the version.
)";

constexpr const char* kServeUsage = R"(fhirgate serve - run the FHIR REST server

Usage:
  fhirgate serve [--config FILE] [--port N] [--bind ADDR] [--db PATH] [--threads N] [--mllp-port N]

Options (each overrides the configuration file):
  --config FILE   JSON configuration (see samples/gateway.json). Without it, built-in defaults apply.
  --port N        TCP port to listen on; 0 picks a free port (the URL is printed on start).
  --bind ADDR     Address to bind, e.g. 127.0.0.1 or 0.0.0.0.
  --db PATH       SQLite database file (created, with its folder, when missing).
  --threads N     Number of io threads.
  --mllp-port N   Port of the first HL7 v2 MLLP listener; 0 picks a free port. Without listeners in the
                  configuration it adds one, bound to the first partner (without partners, to a
                  partner "default" with the default v2 mapping).

Configuration file keys:
  server.bind, server.port, server.threads
  server.bodyLimitBytes     larger request bodies are refused with 413
  server.headerLimitBytes   larger request headers are refused with 400
  server.headerTimeoutMs    a request's headers (and keep-alive idle time) must arrive within this
  server.bodyTimeoutMs      a request's body must arrive within this
  server.shutdownGraceMs    on SIGINT/SIGTERM, in-flight requests get this long to finish
  partners[]                the partners: id, name, hl7v2 {sendingFacilities (MSH-4.1 values),
                            nhsNumberAuthority (PID-3.4 marking the NHS number, default NHS),
                            localIdentifierSystem (system for their other PID-3 identifiers)}
  mllp.listeners[]          HL7 v2 ADT over MLLP: bind, port (0 = any free), partner (a partner id;
                            absent = identify each message's partner by MSH-4)
  mllp.idleTimeoutMs        an idle MLLP connection is closed after this
  mllp.maxMessageBytes      larger v2 messages are dropped and the connection closed
  database.path             SQLite file; relative paths are relative to the configuration file
  baseUrl                   public base URL used in Location headers and Bundle links
  cachedTypes               resource types stored and served (default AuditEvent, Consent, Patient)
  profilesDir               folder holding r4/search-parameters.json.gz
  seedOnFirstStart          resource or Bundle files loaded when the database is created
  search.defaultPageSize, search.maxPageSize

Signals: SIGINT or SIGTERM stop accepting, finish in-flight requests and close the database cleanly.
)";

constexpr const char* kConvertUsage = R"(fhirgate convert - convert between FHIR JSON, FHIR XML and HL7 v2

Usage:
  fhirgate convert --to xml|json|hl7v2 [--pretty] [--config FILE] FILE...

Each FILE (or - for standard input) is read as FHIR JSON, FHIR XML or an HL7 v2 message (detected from
its first characters) and written to standard output: FHIR in the other format (or normalised in the
same one); an ADT A01/A04/A05/A08/A28/A31 as the Patient it maps to (--to json or xml); a Patient as
ADT^A31 (--to hl7v2, segments shown one per line).
Problems are reported on standard error with the file, line:column and element; the exit status is 1
when any file failed. --config names the configuration whose profilesDir holds the R4 definitions.
)";

constexpr const char* kValidateUsage = R"(fhirgate validate - check FHIR resources against R4

Usage:
  fhirgate validate [--load FILE|DIR]... [--profile URL]... [--security-checks] [--no-example-urls]
                    [--resolve-references] [--no-reference-types] [--config FILE] FILE...

Each FILE (or - for standard input) holds FHIR JSON or XML (a resource or a Bundle); a file ending in
.ndjson holds one JSON resource per line. Every issue is printed as
  FILE[:LINE]: severity: message [FHIRPath location]
followed by a summary line. Exit status: 0 no errors, 1 errors found, 2 unreadable input or bad usage.

  --load FILE|DIR   add conformance and definitional resources for this run (StructureDefinitions,
                    ValueSets, CodeSystems, Questionnaires, Measures ..., or Bundles of them); a
                    folder loads every .json/.xml file in it
  --profile URL     also validate against this profile (canonical URL)
  --security-checks strings that look like HTML markup (e.g. <script>) are errors
  --no-example-urls URLs on example.org, example.com or example.net are errors
  --resolve-references  references inside a Bundle or Parameters must resolve there
  --no-reference-types  the type a relative reference names (Patient/1) is not checked against the
                    element's allowed targets when the reference cannot be resolved (as the HL7
                    validator does unless told -assumeValidRestReferences); the gateway checks it
  --config FILE     the configuration whose profilesDir holds the R4 definitions
)";

[[noreturn]] void usage_error(const std::string& message, const char* usage = kServeUsage) {
  std::cerr << "fhirgate: " << message << "\n\n" << usage;
  std::exit(2);
}

long parse_number(const std::string& flag, const std::string& value, long min, long max) {
  try {
    std::size_t used = 0;
    const long n = std::stol(value, &used);
    if (used == value.size() && n >= min && n <= max) return n;
  } catch (const std::exception&) {
  }
  usage_error(flag + " needs a number between " + std::to_string(min) + " and " + std::to_string(max));
}

int run_convert(const std::vector<std::string>& args) {
  std::optional<fhirgate::gateway::ConvertTarget> to;
  bool pretty = false;
  std::string config_path;
  std::vector<std::string> files;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kConvertUsage;
      return 0;
    }
    if (a == "--to" && i + 1 < args.size()) {
      const std::string& f = args[++i];
      if (f == "xml")
        to = fhirgate::gateway::ConvertTarget::xml;
      else if (f == "json")
        to = fhirgate::gateway::ConvertTarget::json;
      else if (f == "hl7v2")
        to = fhirgate::gateway::ConvertTarget::hl7v2;
      else
        usage_error("--to takes xml, json or hl7v2", kConvertUsage);
    } else if (a == "--pretty") {
      pretty = true;
    } else if (a == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      usage_error("unknown option '" + a + "'", kConvertUsage);
    } else {
      files.push_back(a);
    }
  }
  if (!to) usage_error("--to xml|json|hl7v2 is required", kConvertUsage);
  if (files.empty()) usage_error("no input files (use - for standard input)", kConvertUsage);
  const auto config =
      config_path.empty() ? fhirgate::gateway::default_config() : fhirgate::gateway::load_config(config_path);
  const auto model = fhirgate::gateway::load_model(config);
  return fhirgate::gateway::convert_files(*model, *to, pretty, files, std::cout, std::cerr);
}

int run_validate(const std::vector<std::string>& args) {
  std::vector<std::string> loads, files;
  fhirgate::fhir::ValidationOptions options;
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kValidateUsage;
      return 0;
    }
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) usage_error(a + " needs a value", kValidateUsage);
      return args[++i];
    };
    if (a == "--load")
      loads.push_back(value());
    else if (a == "--profile")
      options.profiles.push_back(value());
    else if (a == "--security-checks")
      options.security_checks = true;
    else if (a == "--no-example-urls")
      options.allow_example_urls = false;
    else if (a == "--resolve-references")
      options.resolve_references = true;
    else if (a == "--no-reference-types")
      options.check_reference_types = false;
    else if (a == "--config")
      config_path = value();
    else if (a.size() > 1 && a[0] == '-' && a != "-")
      usage_error("unknown option '" + a + "'", kValidateUsage);
    else
      files.push_back(a);
  }
  if (files.empty()) usage_error("no input files (use - for standard input)", kValidateUsage);
  const auto config =
      config_path.empty() ? fhirgate::gateway::default_config() : fhirgate::gateway::load_config(config_path);
  const auto model = fhirgate::gateway::load_model(config);
  auto terminology = fhirgate::gateway::load_terminology(config);
  fhirgate::fhir::Validator validator(model, terminology);
  fhirgate::gateway::load_project_profiles(validator, *model, config);
  // --load: every conformance or definitional resource (or Bundle of them) the checks may use:
  // StructureDefinitions, ValueSets, CodeSystems, Questionnaires, Measures ... (Validator::add_resource).
  for (const auto& path : loads) {
    std::vector<std::string> sources;
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        const auto ext = entry.path().extension();
        if (ext == ".json" || ext == ".xml") sources.push_back(entry.path().string());
      }
      std::sort(sources.begin(), sources.end());
    } else {
      sources.push_back(path);
    }
    for (const auto& source : sources) {
      auto text = fhirgate::fhir::read_file(source);
      auto resource =
          text ? fhirgate::fhir::parse_resource(*model, *text, fhirgate::fhir::detect_format(*text))
               : fhirgate::Result<fhirgate::fhir::Node>(text.error());
      auto added = resource ? validator.add_resource(*resource) : fhirgate::Status(resource.error());
      if (!added) {
        std::cerr << "fhirgate: --load " << source << ": " << added.error().issues.front().diagnostics
                  << "\n";
        return 2;
      }
    }
  }
  for (const auto& issue : validator.unresolved_definitions())
    std::cerr << "fhirgate: --load: " << issue.severity << ": " << issue.diagnostics << "\n";
  return fhirgate::gateway::validate_files(*model, validator, options, files, std::cout);
}

// `partner add-token HOLDER` and `audit verify`: a configuration file and, optionally, another database.
int run_admin(const std::string& command, const std::vector<std::string>& args) {
  std::string config_path, holder;
  std::optional<std::string> db;
  std::vector<std::string> words;
  std::map<std::string, std::string> options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "--config")
      config_path = value();
    else if (a == "--db")
      db = value();
    else if (command == "ops" && (a == "--status" || a == "--destination" || a == "--retry" ||
                                  a == "--discard" || a == "--partner" || a == "--limit" || a == "--window"))
      options[a] = value();
    else if (!a.empty() && a[0] == '-')
      usage_error("unknown option '" + a + "'");
    else
      words.push_back(a);
  }
  if (config_path.empty()) usage_error(command + " needs --config FILE");
  auto config = fhirgate::gateway::load_config(config_path);
  if (db) config.database_path = *db;
  if (command == "partner") {
    if (words.size() != 2 || words[0] != "add-token")
      usage_error("usage: fhirgate partner add-token HOLDER --config FILE [--db PATH]");
    return fhirgate::gateway::add_token(config, words[1], std::cout);
  }
  auto number = [&](const std::string& option, long long fallback) -> long long {
    if (!options.count(option)) return fallback;
    try {
      std::size_t used = 0;
      const long long n = std::stoll(options[option], &used);
      if (used == options[option].size() && n > 0) return n;
    } catch (const std::exception&) {
    }
    usage_error(option + " takes a positive number");
    return fallback;
  };
  if (command == "ops" && words.size() == 1 && words[0] == "tail")
    return fhirgate::gateway::ops_tail(config, options["--partner"], options["--status"],
                                       number("--limit", 0), std::cout);
  if (command == "ops" && words.size() == 1 && words[0] == "stats")
    return fhirgate::gateway::ops_stats(config, number("--window", 3600), std::cout);
  if (command == "ops") {
    if (words.size() != 1 || words[0] != "deliveries" ||
        (options.count("--retry") && options.count("--discard")))
      usage_error(
          "usage: fhirgate ops deliveries --config FILE [--db PATH] [--status S] [--destination PARTNER] "
          "[--retry ID | --discard ID]");
    const std::string action = options.count("--retry")     ? "retry"
                               : options.count("--discard") ? "discard"
                                                            : "";
    std::int64_t id = 0;
    if (!action.empty()) {
      const std::string& text = options["--" + action];
      try {
        id = std::stoll(text);
      } catch (const std::exception&) {
        usage_error("--" + action + " takes a delivery id");
      }
    }
    return fhirgate::gateway::ops_deliveries(config, options["--status"], options["--destination"], action,
                                             id, std::cout);
  }
  if (words.size() != 1 || words[0] != "verify")
    usage_error("usage: fhirgate audit verify --config FILE [--db PATH]");
  return fhirgate::gateway::verify_audit(config, std::cout);
}

int run_serve(const std::vector<std::string>& args) {
  std::string config_path;
  std::optional<long> port, threads, mllp_port;
  std::optional<std::string> db, bind;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kServeUsage;
      return 0;
    }
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "--config")
      config_path = value();
    else if (a == "--port")
      port = parse_number(a, value(), 0, 65535);
    else if (a == "--mllp-port")
      mllp_port = parse_number(a, value(), 0, 65535);
    else if (a == "--threads")
      threads = parse_number(a, value(), 1, 256);
    else if (a == "--db")
      db = value();
    else if (a == "--bind")
      bind = value();
    else
      usage_error("unknown option '" + a + "'");
  }
  auto config =
      config_path.empty() ? fhirgate::gateway::default_config() : fhirgate::gateway::load_config(config_path);
  if (port) config.server.port = static_cast<std::uint16_t>(*port);
  if (threads) config.server.threads = static_cast<unsigned>(*threads);
  if (db) config.database_path = *db;
  if (bind) config.server.bind = *bind;
  if (mllp_port) {
    if (config.mllp.listeners.empty()) {
      if (config.partners.empty()) {
        fhirgate::gateway::PartnerConfig fallback;
        fallback.id = "default";
        fallback.name = "Default HL7 v2 partner";
        config.partners.push_back(std::move(fallback));
      }
      fhirgate::gateway::MllpListenerConfig listener;
      listener.partner = config.partners.front().id;
      config.mllp.listeners.push_back(std::move(listener));
    }
    config.mllp.listeners.front().port = static_cast<std::uint16_t>(*mllp_port);
  }
  return fhirgate::gateway::serve(config);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "serve") return run_serve(args);
    if (command == "convert") return run_convert(args);
    if (command == "validate") return run_validate(args);
    if (command == "partner" || command == "audit" || command == "ops") return run_admin(command, args);
    if (command == "version" || command == "--version") {
      std::cout << "fhirgate " << FHIRGATE_VERSION << "\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "fhirgate: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "fhirgate: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
