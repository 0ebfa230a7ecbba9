#pragma once
// Wiring: builds the search parameter table, store, API and server from a Config. Start-up failures
// throw std::runtime_error with a message for the operator.
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "fhir/formats.hpp"
#include "fhir/model.hpp"
#include "fhir/search_params.hpp"
#include "fhir/terminology.hpp"
#include "fhir/validator.hpp"
#include "gateway/config/config.hpp"

namespace fhirgate::gateway {

// Loads the R4 SearchParameter definitions from the profiles folder for the cached types.
fhir::SearchParamRegistry load_search_params(const Config& config);

// Loads the R4 type model (StructureDefinitions) from the profiles folder.
std::shared_ptr<const fhir::Model> load_model(const Config& config);

enum class ConvertTarget { json, xml, hl7v2 };

// `fhirgate convert`: converts each file ("-" = stdin) from FHIR JSON, FHIR XML or HL7 v2 (detected) to
// `to`: FHIR to FHIR, an ADT message to the Patient it maps to, a Patient to ADT^A31. Prints the results
// to `out` and problems (file, location, reason) to `err`. Returns 0 when all converted, else 1.
int convert_files(const fhir::Model& model, ConvertTarget to, bool pretty,
                  const std::vector<std::string>& files, std::ostream& out, std::ostream& err);

// Loads the terminology (ValueSets, CodeSystems, expansions) from the profiles folder.
std::shared_ptr<fhir::Terminology> load_terminology(const Config& config);

// Registers the partnership's profiles (profiles/partnership) with the validator and checks that every
// profile the configuration enforces is known. Throws std::runtime_error naming the problem.
void load_project_profiles(fhir::Validator& validator, const fhir::Model& model, const Config& config);

// `fhirgate validate`: validates each file ("-" = stdin; JSON, XML, ndjson, Bundles) and prints every
// issue and a summary line to `out`, with `options` (profiles, security checks). Returns 0 with no
// errors, 1 with errors, 2 when input is unreadable.
int validate_files(const fhir::Model& model, const fhir::Validator& validator,
                   const fhir::ValidationOptions& options, const std::vector<std::string>& files,
                   std::ostream& out);

// Runs the gateway until SIGINT/SIGTERM. Prints the listening URL on stdout once accepting.
int serve(const Config& config);

// `fhirgate partner add-token HOLDER`: creates a bearer token for a partner or role of the configuration,
// stores its hash in the database and prints the token, alone on the last line. Throws on failure.
int add_token(const Config& config, const std::string& holder, std::ostream& out);
// `fhirgate audit verify`: checks the audit chain; prints the outcome; 0 intact, 1 broken.
int verify_audit(const Config& config, std::ostream& out);
// `fhirgate ops deliveries`: lists the outbox (a line per delivery, newest first, filtered by status and
// destination when given), or retries / discards one delivery (action "retry" or "discard" with its id).
// Returns 0, or 1 when the action is refused (unknown id, wrong state), with the reason.
int ops_deliveries(const Config& config, const std::string& status, const std::string& destination,
                   const std::string& action, std::int64_t id, std::ostream& out);
// `fhirgate ops tail`: the latest 10 journal entries (filtered by partner and status when given), then
// each new one as it is written, one line each, until interrupted or `limit` lines (0: no limit).
int ops_tail(const Config& config, const std::string& partner, const std::string& status, long long limit,
             std::ostream& out);
// `fhirgate ops stats`: journal counts per partner, direction and status over the last `window_seconds`,
// the queues and the latest errors.
int ops_stats(const Config& config, long long window_seconds, std::ostream& out);

}  // namespace fhirgate::gateway
